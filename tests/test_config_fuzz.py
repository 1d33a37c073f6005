"""Bad input, fuzzed: whatever the config holds, the answer is a ConfigError (exit 2, one line naming the
file and the key), never another exception, never an AWS call, and unsafe YAML is never constructed.

Hypothesis drives the bulk through `validate_config` (parsed values) and `parse_config` (YAML text); a few
CLI runs in a subprocess check the process boundary, with AWS_ENDPOINT_URL pointing at a closed port so
that any AWS call would fail differently (exit 1, another message).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orgalerts.config import MAX_LIST_ITEMS, AlertsConfig, Config, load_config, parse_config, validate_config
from orgalerts.errors import ConfigError
from orgalerts.sandbox.spec import parse_sandbox_spec

SOURCE = "fuzz.yaml"

_ALERT_EXTRAS: dict[str, Any] = {
    "exclude_principals": ["arn:aws:sts::*:assumed-role/ci-deploy/*"],
    "exclude_events": ["CreateServiceLinkedRole"],
    "tamper_alerts": True,
    "dead_letter_queues": True,
}

# Every key the config knows, each with a valid value (alerts extras only where this version has them).
GOOD: dict[str, Any] = {
    "region": "us-east-1",
    "organization": {
        "ous": ["ou-ab12-cd34ef56", "r-ab12"],
        "exclude_accounts": ["111111111111"],
        "include_accounts": ["333333333333"],
    },
    "member_role": {"name": "OrganizationAccountAccessRole", "external_id": "orgalerts-ext-1"},
    "notification": {"account_id": "222222222222", "emails": ["secops@example.com", "oncall@example.org"]},
    "alerts": {
        "pattern": "iam-changes",
        **{k: v for k, v in _ALERT_EXTRAS.items() if k in {f.name for f in dataclasses.fields(AlertsConfig)}},
    },
    "resource_prefix": "orgalerts-",
    "workers": 16,
}
_SECTIONS: dict[str, Any] = {"trail": {"create": True, "name": "orgalerts-trail"}, "guardrail": {"scp": True}}
GOOD.update({k: v for k, v in _SECTIONS.items() if k in {f.name for f in dataclasses.fields(Config)}})


def _paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _paths(child, path)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield f"{prefix}[{index}]"
            yield from _paths(child, f"{prefix}[{index}]")


PATHS = list(_paths(GOOD))
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _STEP.findall(path)]


def _get(document: Any, path: str) -> Any:
    for step in _steps(path):
        document = document[step]
    return document


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with the value at `path` replaced."""
    result = copy.deepcopy(document)
    *parents, last = _steps(path)
    target: Any = result
    for step in parents:
        target = target[step]
    target[last] = value
    return result


def _delete(document: dict[str, Any], path: str) -> dict[str, Any]:
    result = copy.deepcopy(document)
    *parents, last = _steps(path)
    target: Any = result
    for step in parents:
        target = target[step]
    del target[last]
    return result


LIST_PATHS = [p for p in PATHS if isinstance(_get(GOOD, p), list)]
TOP_KEYS = [*GOOD, "sandbox"]


# --- no AWS call, ever ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, operation: str, params: Any) -> None:
        raise AssertionError(f"config handling made an AWS call: {operation}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)


# --- checks -----------------------------------------------------------------------------------------


def check_outcome(make: Any, touched: str) -> Config | ConfigError:
    """Run `make()`: a Config, or a ConfigError that is one line naming the file and a key under `touched`."""
    try:
        return make()  # type: ignore[no-any-return]
    except ConfigError as error:
        message = str(error)
        assert message.startswith(f"{SOURCE}: ") and error.expected, message
        assert "\n" not in message and "\r" not in message, message
        assert len(message) < 2000, message
        top = _steps(touched)[0] if touched else ""
        assert error.key.startswith(str(top)) or error.key in ("(yaml)", "(top level)"), (touched, message)
        return error


# --- strategies -------------------------------------------------------------------------------------

# Text YAML can carry: every Unicode category but surrogates; plus a few shapes validators get wrong.
texts = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["", " ", "\t", "\n", "null", "~", "yes", "0", "-1", "1e999", ".nan"]),
    st.sampled_from(["222222222222\n", "\n222222222222", "\uff12" * 12, "\u0662" * 12, "us-east-1\x00"]),
    st.sampled_from(["Rôle", "ロール", "orgalerts-\n", "ou-ab12-cd34ef56\n", "a@b.co\n", "x" * 5000]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**20, max_value=10**5000),  # beyond Python's 4300-digit int-to-str limit
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
keys = st.one_of(texts, st.integers(), st.booleans(), st.none())
junk = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=4)),
    max_leaves=12,
)
# What the config loader can hand over: string keys, ints of at most 40 characters (it refuses longer ones).
loaded_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**38), 10**38), st.floats(allow_nan=True, allow_infinity=True), texts
)
loaded = st.recursive(
    loaded_scalars,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(texts, children, max_size=4)),
    max_leaves=12,
)
# Values yaml.safe_dump can write and read back as the same kind of value.
dumpable_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts.filter(lambda t: "\x00" not in t)
)
dumpable = st.recursive(
    dumpable_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(dumpable_scalars.map(str), children, max_size=4)
    ),
    max_leaves=12,
)


# --- parsed values: every field, wrong types, empty values, unicode, huge values ---------------------


def test_fuzz__good_document__is_valid() -> None:
    config = validate_config(GOOD, SOURCE)
    assert config.member_role.external_id == "orgalerts-ext-1"


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), value=junk)
def test_fuzz__any_value_in_any_field__config_or_config_error(path: str, value: Any) -> None:
    check_outcome(lambda: validate_config(_set(GOOD, path, value), SOURCE), path)


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(TOP_KEYS), value=junk)
def test_fuzz__any_value_as_a_whole_section__config_or_config_error(path: str, value: Any) -> None:
    check_outcome(lambda: validate_config(_set(GOOD, path, value), SOURCE), path)


@settings(max_examples=60, deadline=None)
@given(document=junk)
def test_fuzz__any_document__config_error_never_a_crash(document: Any) -> None:
    check_outcome(lambda: validate_config(document, SOURCE), "")


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(PATHS), key=keys.filter(lambda k: not isinstance(k, str) or k not in GOOD))
def test_fuzz__unknown_or_non_string_key_anywhere__config_error_names_it(path: str, key: Any) -> None:
    parent_path = path.rsplit(".", 1)[0] if "." in path else ""
    parent = _get(GOOD, parent_path) if parent_path else GOOD
    if not isinstance(parent, dict) or key in parent:
        return
    document = copy.deepcopy(GOOD)
    target = _get(document, parent_path) if parent_path else document
    target[key] = "value"
    outcome = check_outcome(lambda: validate_config(document, SOURCE), parent_path)
    assert isinstance(outcome, ConfigError)
    assert "no such key" in outcome.expected


@pytest.mark.parametrize("path", PATHS)
def test_fuzz__field_missing__default_or_config_error_names_it(path: str) -> None:
    outcome = check_outcome(lambda: validate_config(_delete(GOOD, path), SOURCE), path)
    if isinstance(outcome, ConfigError):
        assert outcome.key.startswith(_steps(path)[0])  # type: ignore[arg-type]


@pytest.mark.parametrize("path", LIST_PATHS)
def test_fuzz__huge_list__refused_with_the_limit(path: str) -> None:
    value = [_get(GOOD, path)[0]] * (MAX_LIST_ITEMS + 1) if _get(GOOD, path) else ["x"] * (MAX_LIST_ITEMS + 1)
    outcome = check_outcome(lambda: validate_config(_set(GOOD, path, value), SOURCE), path)
    assert isinstance(outcome, ConfigError) and outcome.key == path
    assert f"at most {MAX_LIST_ITEMS} items" in outcome.expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("notification.account_id", "222222222222\n"),  # `$` matches before a trailing newline
        ("organization.exclude_accounts", ["111111111111\n"]),
        ("organization.ous", ["ou-ab12-cd34ef56\n"]),
        ("notification.emails", ["secops@example.com\n"]),
        ("resource_prefix", "orgalerts-\n"),
        ("member_role.name", "Rôle"),  # IAM's \w is ASCII; Python's is Unicode
        ("member_role.name", "Role\n"),
        ("member_role.external_id", "ext-ïd"),
        ("notification.account_id", "\uff12" * 12),  # full-width digits
        ("workers", 10**5000),  # too long to print in an error message
        ("workers", math.nan),
        ("notification.account_id", 16**5000),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else type(v).__name__,
)
def test_fuzz__lookalike_values__refused(path: str, value: Any) -> None:
    outcome = check_outcome(lambda: validate_config(_set(GOOD, path, value), SOURCE), path)
    assert isinstance(outcome, ConfigError), f"{path}={value!r} was accepted"
    assert outcome.key.startswith(path)


# --- YAML text ----------------------------------------------------------------------------------------


def _yaml(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(PATHS), value=dumpable)
def test_fuzz__yaml_with_any_value_in_any_field__config_or_config_error(path: str, value: Any) -> None:
    check_outcome(lambda: parse_config(_yaml(_set(GOOD, path, value)), SOURCE), path)


def _replace_line(text: str, path: str, new_value: str) -> str:
    """Put `new_value` (raw YAML) as the value of `path` (keys only) in block-style `text`."""
    lines = text.splitlines()
    index = -1
    keys = [str(step) for step in _steps(path)]
    for depth, key in enumerate(keys):  # find each key below its parent's line
        index = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("  " * depth + f"{key}:"))
    depth = len(keys) - 1
    lines[index] = "  " * depth + f"{keys[-1]}: {new_value}"
    end = index + 1  # drop the block children of the replaced key
    while end < len(lines) and lines[end].startswith(("  " * (depth + 1), "  " * depth + "- ")):
        end += 1
    del lines[index + 1 : end]
    return "\n".join(lines) + "\n"


BLOCK = yaml.safe_dump(GOOD, sort_keys=False, default_flow_style=False, indent=2)
KEY_PATHS = [p for p in PATHS if not p.endswith("]")]


def test_fuzz__harness__replacing_any_field_with_its_own_value_stays_valid() -> None:
    for path in KEY_PATHS:
        text = _replace_line(BLOCK, path, json.dumps(_get(GOOD, path)))  # JSON is YAML (flow style)
        assert parse_config(text, SOURCE) == validate_config(GOOD, SOURCE), path


UNSAFE_SNIPPETS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!custom {{a: 1}}",
    "!!binary aGVsbG8=",
    "!!int abc",
    "!!float abc",
    "!!timestamp 'x'",
    "!!set {{a, b}}",
    "!!omap [a: 1]",
    "!!str",
    "&anchor value",
    "*anchor",
    "2024-13-45",  # an implicit timestamp that is not a date
    "0x" + "f" * 5000,  # an int that cannot be printed
    "[" * 1500,  # nesting deeper than the parser's recursion (slow to parse: three fields only)
    "{{a: 1, a: 2}}",
    "'unterminated",
    "\x00",
    "\ufeffus-east-1",
]


@pytest.mark.parametrize("snippet", UNSAFE_SNIPPETS, ids=[s[:24] for s in UNSAFE_SNIPPETS])
def test_fuzz__tags_anchors_and_broken_yaml_in_every_field__config_error_nothing_executed(
    snippet: str, tmp_path: Path
) -> None:
    marker = tmp_path / "executed"
    paths = KEY_PATHS if not snippet.startswith("[[") else ["region", "organization.ous", "workers"]
    for path in paths:  # every field, exhaustively
        text = _replace_line(BLOCK, path, snippet.format(marker=marker))
        outcome = check_outcome(lambda text=text: parse_config(text, SOURCE), path)  # type: ignore[misc]
        assert not marker.exists(), f"unsafe YAML was constructed at {path}"
        if not snippet.startswith(("!!str", "\x00", "\ufeff")):
            assert isinstance(outcome, ConfigError), text


@pytest.mark.parametrize("where", [*GOOD, *(p for p in KEY_PATHS if "." in p)])
def test_fuzz__duplicate_key_at_any_level__config_error(where: str) -> None:
    key = str(_steps(where)[-1])
    depth = where.count(".")
    lines = BLOCK.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("  " * depth + f"{key}:"))
    lines.insert(index, "  " * depth + f"{key}: null")
    with pytest.raises(ConfigError) as caught:
        parse_config("\n".join(lines) + "\n", SOURCE)
    assert caught.value.key == "(yaml)" and "duplicate key" in caught.value.expected


@pytest.mark.parametrize(
    "text",
    [
        _yaml([GOOD]),
        _yaml(list(GOOD)),
        "just a string\n",
        "42\n",
        "null\n",
        "",
        "---\n...\n",
        _yaml(GOOD) + "---\n" + _yaml(GOOD),  # two documents
        "base: &b {a: 1}\n" + "x: *b\n" * 5,  # billion laughs, first step
        "? [a, b]\n: 1\n",  # a non-string key
        "<<: {region: us-east-1}\n",  # merge keys
        "\t" + _yaml(GOOD),
        "region: us-east-1\x85\n",
    ],
    ids=[
        "list",
        "list-of-keys",
        "string",
        "number",
        "null",
        "empty",
        "empty-document",
        "two-documents",
        "aliases",
        "non-string-key",
        "merge-key",
        "tab-indent",
        "next-line-char",
    ],
)
def test_fuzz__whole_document_shapes__config_error(text: str) -> None:
    outcome = check_outcome(lambda: parse_config(text, SOURCE), "")
    assert isinstance(outcome, ConfigError)


# --- the sandbox block (parsed by the sandbox package when the CLI starts) ---------------------------


SANDBOX: dict[str, Any] = {
    "organization_id": "o-sandbox001",
    "management_account_id": "123456789012",
    "root_id": "r-sbx0",
    "root_accounts": [{"id": "444444444401", "name": "experiments"}],
    "ous": [{"id": "ou-sbx0-security", "name": "Security", "accounts": [{"id": "222222222222", "name": "n"}]}],
}
SANDBOX_PATHS = list(_paths(SANDBOX))


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(SANDBOX_PATHS), value=loaded)
def test_fuzz__sandbox_block_any_value__config_error_never_a_crash(path: str, value: Any) -> None:
    try:
        parse_sandbox_spec(_set(SANDBOX, path, value), SOURCE)
    except ConfigError as error:
        assert "\n" not in str(error)


# --- files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ten-mb.yaml", None),  # built below: a valid-looking 10 MB config
        ("latin1.yaml", _yaml(GOOD).replace("secops", "s\u00e9cops").encode("latin-1")),
        ("binary.yaml", bytes(range(256)) * 10),
        ("utf16.yaml", _yaml(GOOD).encode("utf-16")),
    ],
)
def test_fuzz__bad_files__config_error(tmp_path: Path, name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is None:  # 600,000 excluded accounts
        accounts = "".join(f"  - '{n:012d}'\n" for n in range(600_000))
        content = _yaml(GOOD).replace("  exclude_accounts:\n", "  exclude_accounts:\n" + accounts, 1).encode()
        assert len(content) > 10_000_000
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key in ("(file)", "(yaml)", "(top level)")
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_fuzz__config_is_an_endless_device__refused_without_reading_it_all() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/zero")
    assert caught.value.key == "(file)"


def test_fuzz__config_is_a_directory__config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.key == "(file)"


# --- the CLI, as a process ------------------------------------------------------------------------------

CLI_CASES = {
    "top-level-list": (_yaml([GOOD]).encode(), "(top level)"),
    "ten-mb": (b"#" * 10_500_000 + b"\n" + _yaml(GOOD).encode(), "(file)"),
    "python-tag": (
        _yaml(GOOD).replace("region: us-east-1", "region: !!python/object/apply:os.system ['echo pwned']").encode(),
        "(yaml)",
    ),
    "alias": (_yaml(GOOD).replace("workers: 16", "workers: &w 16\nx: *w").encode(), "(yaml)"),
    "deep-nesting": (_yaml(GOOD).replace("workers: 16", "workers: " + "[" * 50_000).encode(), "(yaml)"),
    "huge-int": (_yaml(GOOD).replace("workers: 16", "workers: 0x" + "f" * 5000).encode(), "(yaml)"),
    "sandbox-huge-int": (
        (_yaml(GOOD) + "sandbox:\n  management_account_id: 0x" + "f" * 5000 + "\n").encode(),
        "(yaml)",
    ),
    "unicode-role": (_yaml(GOOD).replace("OrganizationAccountAccessRole", "ロール").encode(), "member_role.name"),
    "account-id-newline": (
        _yaml(GOOD).replace("account_id: '222222222222'", 'account_id: "222222222222\\n"').encode(),
        "notification.account_id",
    ),
}


def test_cli__fuzzed_configs__exit_2_one_line_naming_file_and_key_no_aws_call(tmp_path: Path) -> None:
    env = dict(os.environ)
    # Any AWS call would go to a closed port and fail with another message and exit code 1.
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    env.pop("AWS_PROFILE", None)
    runs = {}
    for name, (content, _) in CLI_CASES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(content)
        runs[name] = (
            path,
            subprocess.Popen(
                [sys.executable, "-m", "orgalerts", "--config", str(path), "deploy", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
                env=env,
            ),
        )
    for name, (path, process) in runs.items():
        out, err = process.communicate(timeout=120)
        key = CLI_CASES[name][1]
        assert process.returncode == 2, (name, err)
        (line,) = err.strip().splitlines()
        assert line.startswith(f"orgalerts: error: {path}: {key}: "), (name, line)
        # --json: the same error as one JSON document on stdout
        error = line.removeprefix("orgalerts: error: ")
        assert json.loads(out) == {"command": "deploy", "error": error, "exit_code": 2}, name
        assert "Traceback" not in err and "pwned" not in err + out
