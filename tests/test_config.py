"""Config validation: every kind of bad input exits 2 with one clear message and makes no AWS call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orgalerts.config import load_config, parse_config
from orgalerts.errors import ConfigError

GOOD = """\
region: us-east-1
organization:
  ous: [ou-ab12-cd34ef56]
  exclude_accounts: ["111111111111"]
  include_accounts: []
member_role:
  name: OrganizationAccountAccessRole
  external_id: null
notification:
  account_id: "222222222222"
  emails: [secops@example.com]
alerts:
  pattern: iam-changes
"""


def test_config__documented_example__loads_into_typed_objects() -> None:
    config = parse_config(GOOD, "c.yaml")
    assert config.organization.ous == ("ou-ab12-cd34ef56",)
    assert config.organization.exclude_accounts == ("111111111111",)
    assert config.notification.account_id == "222222222222"
    assert config.alerts.pattern == "iam-changes"
    assert config.sandbox is None


def test_config__shipped_file__is_valid_and_uses_the_sandbox() -> None:
    config = load_config(Path(__file__).parent.parent / "config" / "accounts.yaml")
    assert config.sandbox is not None


BAD = [
    # (description, replace this, with this, key named in the error)
    ("unquoted account id", '"222222222222"', "222222222222", "notification.account_id"),
    ("octal-looking account id", '"222222222222"', "012345670123", "notification.account_id"),
    ("short account id", '"222222222222"', '"2222"', "notification.account_id"),
    ("excluded id as number", '["111111111111"]', "[111111111111]", "organization.exclude_accounts[0]"),
    ("bad OU id", "ou-ab12-cd34ef56", "ou-BAD", "organization.ous[0]"),
    ("OU list is a string", "[ou-ab12-cd34ef56]", "ou-ab12-cd34ef56", "organization.ous"),
    ("bad e-mail", "secops@example.com", "not-an-email", "notification.emails[0]"),
    ("unknown pattern", "pattern: iam-changes", "pattern: everything", "alerts.pattern"),
    ("unknown region", "region: us-east-1", "region: us-middle-7", "region"),
    ("unknown top-level key", "region: us-east-1", "regoin: us-east-1", "regoin"),
    ("unknown nested key", "  exclude_accounts:", "  exclude_acounts:", "organization.exclude_acounts"),
    ("unknown key in member_role", "  external_id: null", "  externalid: null", "member_role.externalid"),
    ("missing notification", "notification:\n", "notifications:\n", "notifications"),
    ("empty role name", "name: OrganizationAccountAccessRole", 'name: ""', "member_role.name"),
    (
        "include list of mappings",
        "include_accounts: []",
        "include_accounts: [{a: 1}]",
        "organization.include_accounts[0]",
    ),
    ("emails not a list", "emails: [secops@example.com]", "emails: secops@example.com", "notification.emails"),
    ("duplicate e-mails", "emails: [secops@example.com]", "emails: [a@b.co, a@b.co]", "notification.emails"),
]


@pytest.mark.parametrize(("what", "old", "new", "key"), BAD, ids=[b[0] for b in BAD])
def test_config__bad_value__config_error_names_the_key(what: str, old: str, new: str, key: str) -> None:
    assert old in GOOD, what
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD.replace(old, new, 1), "c.yaml")
    assert caught.value.key == key
    assert str(caught.value).startswith("c.yaml: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "(top level)"),
        ("", "(top level)"),
        (GOOD + "region: eu-west-1\n", "(yaml)"),  # duplicate key
        ("base: &b {a: 1}\nother: *b\n", "(yaml)"),  # alias
        ("region: !!python/object/apply:os.system ['true']\n", "(yaml)"),  # unsafe tag
        ("region: [unclosed\n", "(yaml)"),
    ],
    ids=["list", "empty", "duplicate-key", "alias", "python-tag", "syntax"],
)
def test_config__unsafe_or_malformed_yaml__config_error(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert caught.value.key == expected


def test_config__huge_file__refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(GOOD + "#" * 10_000_000 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "(file)"


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # Any AWS call would go to a closed port and fail with a different message and exit code.
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    return subprocess.run(
        [sys.executable, "-m", "orgalerts", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


@pytest.mark.parametrize(("what", "old", "new", "key"), BAD[:9], ids=[b[0] for b in BAD[:9]])
def test_cli__bad_config__exit_2_one_line_no_traceback(tmp_path: Path, what: str, old: str, new: str, key: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    result = _run_cli("--config", str(path), "deploy", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and key in lines[0]
    # --json: the same error as one JSON document on stdout
    assert json.loads(result.stdout) == {
        "command": "deploy",
        "error": lines[0].removeprefix("orgalerts: error: "),
        "exit_code": 2,
    }
    assert "Traceback" not in result.stderr


def test_cli__missing_config_file__exit_2(tmp_path: Path) -> None:
    result = _run_cli("--config", str(tmp_path / "nope.yaml"), "plan", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr
