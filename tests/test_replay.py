"""`orgalerts replay`: synthetic CloudTrail records in every input shape, decisions and severities, the text each
destination would receive (equal to what the sandbox delivers for the same event), --json fields, noise-preset
attribution, and exit 2 with one line on an input replay cannot use. No AWS credentials are needed.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
import yaml
from conftest import account_client
from replay_support import ISSUE_DESTINATIONS as DESTINATIONS
from replay_support import Receiver, Taps, install_taps

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.cli import app
from orgalerts.commands.replay import Replayer
from orgalerts.commands.replay_input import Item, as_event
from orgalerts.config import Config, validate_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.model.messages import message_problems
from orgalerts.sandbox import Sandbox, eventflow, parse_sandbox_spec

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"
MEMBER = "333333333301"
EXCLUDED = "333333333399"
NOTIFICATION = "222222222222"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
PD_KEY = "pd-routing-key-replay-s3cr3t"
HOOK_KEY = "hook-header-replay-s3cr3t"


def raw_config(**alerts: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(CONFIG_PATH.read_text())
    raw["notification"].pop("emails")
    raw["destinations"] = copy.deepcopy(DESTINATIONS)
    raw["alerts"].update(alerts)
    return raw


def config_of(**alerts: Any) -> Config:
    return validate_config(raw_config(**alerts), str(CONFIG_PATH))


def user(account: str = MEMBER, **extra: Any) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{account}:user/alice",
            "accountId": account, "userName": "alice", **extra}  # fmt: skip


def root(account: str = MEMBER) -> dict[str, Any]:
    return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account}


def record(name: str, params: dict[str, Any] | None = None, *, identity: dict[str, Any] | None = None,
           account: str = MEMBER, read_only: bool = False, error: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A CloudTrail record of an IAM call, shaped as CloudTrail writes one (record-contents page)."""
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity or user(account),
        "eventTime": "2026-11-30T10:15:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "requestParameters": params,
        "responseElements": None,
        "requestID": f"req-{name}",
        "eventID": f"0000-{name}-{account}",
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error:
        rec["errorCode"], rec["errorMessage"] = error, f"User is not authorized to perform: iam:{name}"
    return rec


ROOT_KEY = record("CreateAccessKey", None, identity=root())
ADMIN_ATTACH = record("AttachUserPolicy", {"userName": "bob", "policyArn": ADMIN})
GROUP = record("CreateGroup", {"groupName": "readers"})
DENIED_ROLE = record("CreateRole", {"roleName": "x", "assumeRolePolicyDocument": "{}"}, error="AccessDenied")
READ = record("GetUser", {"userName": "bob"}, read_only=True)
SERVICE = record("CreateGroup", {"groupName": "by-cfn"}, identity=user(invokedBy="cloudformation.amazonaws.com"))
SLR = record(
    "CreateRole",
    {"roleName": "from-sso"},
    identity={
        "type": "AssumedRole",
        "principalId": "AROA:sso",
        "arn": f"arn:aws:sts::{MEMBER}:assumed-role/AWSServiceRoleForSSO/sso",
        "accountId": MEMBER,
        "invokedBy": "sso.amazonaws.com",
    },
)
IN_EXCLUDED = record("CreateGroup", {"groupName": "x"}, account=EXCLUDED)


def write_inputs(base: Path) -> Path:
    """Every input shape: one record, a Records log, a gzipped org-trail log, an EventBridge event, nested dirs."""
    (base / "a").mkdir(parents=True)
    (base / "b").mkdir()
    (base / "c" / "AWSLogs" / "o-x" / MEMBER / "CloudTrail" / "us-east-1").mkdir(parents=True)
    (base / "a" / "root-key.json").write_text(json.dumps(ROOT_KEY))
    (base / "b" / "log.json").write_text(json.dumps({"Records": [ADMIN_ATTACH, GROUP, READ]}))
    gz = base / "c" / "AWSLogs" / "o-x" / MEMBER / "CloudTrail" / "us-east-1" / f"{MEMBER}_CloudTrail_x.json.gz"
    gz.write_bytes(gzip.compress(json.dumps({"Records": [DENIED_ROLE, IN_EXCLUDED]}).encode()))
    (base / "event.json").write_text(json.dumps(as_event(SERVICE, "hand-made")))
    (base / "notes.md").write_text("not a trail log: ignored in a directory")
    return base


def run_cli(tmp_path: Path, *args: str, **alerts: Any) -> int:
    config = tmp_path / "replay-config.yaml"
    config.write_text(yaml.safe_dump(raw_config(**alerts)))
    return app.main(["--config", str(config), "replay", *args])


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay is local: no credentials, no sandbox, no gateway (each would fail the test if used)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("replay must not reach AWS or start the sandbox")

    monkeypatch.setattr(app, "environment", refuse)
    monkeypatch.setattr(app, "Gateway", refuse)


def test_replay__every_input_shape__records_in_path_order_with_decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_inputs(tmp_path / "logs")

    assert run_cli(tmp_path, "--json", str(base)) == 0

    doc = json.loads(capsys.readouterr().out)
    rows = [(Path(r["file"]).name, r["index"], r["event_name"], r["alert"], r["severity"], r["rule"])
            for r in doc["records"]]  # fmt: skip
    assert rows == [
        ("root-key.json", 0, "CreateAccessKey", True, "critical", "orgalerts-alert-critical-bare"),  # null parameters
        ("log.json", 0, "AttachUserPolicy", True, "high", "orgalerts-alert-high"),
        ("log.json", 1, "CreateGroup", True, "info", "orgalerts-alert-info"),
        ("log.json", 2, "GetUser", False, None, None),
        (f"{MEMBER}_CloudTrail_x.json.gz", 0, "CreateRole", True, "medium", "orgalerts-alert-medium-denied"),
        (f"{MEMBER}_CloudTrail_x.json.gz", 1, "CreateGroup", False, None, None),
        ("event.json", 0, "CreateGroup", True, "info", "orgalerts-alert-info"),
    ]
    reasons = {(Path(r["file"]).name, r["index"]): r["reason"] for r in doc["records"] if not r["alert"]}
    assert reasons[("log.json", 2)] == "read-only call (readOnly true), not matched by the member pattern"
    assert f"account {EXCLUDED} is excluded" in reasons[(f"{MEMBER}_CloudTrail_x.json.gz", 1)]
    summary = doc["summary"]
    assert (summary["files"], summary["records"], summary["alerts"], summary["silent"]) == (4, 7, 5, 2)
    assert summary["by_severity"] == {"critical": 1, "high": 1, "medium": 1, "info": 2}
    assert summary["by_event_name"]["CreateGroup"] == {"records": 3, "alerts": 2}
    assert summary["by_preset"] == {f"exclude_accounts: {EXCLUDED}": 1}


def test_replay__destinations_by_min_severity__each_text_clean_and_in_its_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORGALERTS_PD_KEY", PD_KEY)  # set or not, replay never reads or prints it
    base = write_inputs(tmp_path / "logs")

    assert run_cli(tmp_path, "--json", str(base)) == 0

    out = capsys.readouterr()
    assert PD_KEY not in out.out + out.err
    records = {r["event_name"]: r for r in json.loads(out.out)["records"] if r["alert"]}  # one alerting record each
    reached = {name: [d["name"] for d in r["destinations"]] for name, r in records.items()}
    assert reached == {
        "CreateAccessKey": ["secops-mail", "chat", "oncall", "hook"],
        "AttachUserPolicy": ["secops-mail", "chat", "hook"],
        "CreateGroup": ["secops-mail"],
        "CreateRole": ["secops-mail", "hook"],
    }
    texts = {d["name"]: d["text"] for d in records["CreateAccessKey"]["destinations"]}
    assert texts["secops-mail"].splitlines()[0] == (
        f'"[orgalerts] CRITICAL in account {MEMBER}: CreateAccessKey by arn:aws:iam::{MEMBER}:root"'
    )
    assert message_problems(texts["secops-mail"]) == []
    assert json.loads(texts["chat"])["text"].startswith("*CRITICAL* [orgalerts] CRITICAL")
    pagerduty = json.loads(texts["oncall"])
    assert pagerduty["event_action"] == "trigger" and pagerduty["payload"]["severity"] == "critical"
    assert "routing_key" not in pagerduty  # the connection adds it (a secret body parameter)
    hook = json.loads(texts["hook"])
    assert (hook["severity"], hook["account"], hook["action"]) == ("critical", MEMBER, "CreateAccessKey")


def test_replay__noise_presets_and_exclusions__named_as_what_silenced_each_record(tmp_path: Path) -> None:
    config = config_of(ignore=["aws-service-calls", "service-linked-roles"], exclude_events=["CreateGroup"])
    replayer = Replayer(config)

    def silenced(rec: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
        decision = replayer.decide(Item("f.json", 0, as_event(rec, "f.json")))
        return bool(decision.alerts), decision.silenced_by

    assert silenced(SERVICE) == (False, ("aws-service-calls", "exclude_events: CreateGroup"))
    assert silenced(SLR) == (False, ("aws-service-calls", "service-linked-roles"))
    assert silenced(GROUP) == (False, ("exclude_events: CreateGroup",))
    assert silenced(ADMIN_ATTACH) == (True, ())
    assert silenced(READ) == (False, ())  # read-only: no filter is the reason

    plain = Replayer(config_of())
    assert plain.decide(Item("f.json", 0, as_event(SERVICE, "f.json"))).alerts  # without the filters it alerts


def test_replay__rule_state_enabled__read_only_call_matching_the_pattern_is_not_received() -> None:
    """blog-iam-changes selects by name only (Update*): a read-only Update call matches its pattern, but the rule's
    state ENABLED keeps read-only management events away; all-iam's state receives them."""
    update = record("UpdateAccountName", {"accountName": "x"}, read_only=True)
    event = as_event(update, "f.json")

    blog = Replayer(config_of(pattern="blog-iam-changes")).decide(Item("f.json", 0, event))
    every = Replayer(config_of(pattern="all-iam")).decide(Item("f.json", 0, event))

    assert not blog.alerts and "state ENABLED" in blog.reason and "does not receive read-only" in blog.reason
    assert [a.rule for a in every.alerts] == ["orgalerts-alert-info"]


def test_replay__text_output__decision_text_per_destination_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_inputs(tmp_path / "logs")

    assert run_cli(tmp_path, str(base), ignore=["aws-service-calls"]) == 0

    out = capsys.readouterr().out
    assert "b/log.json [record 1]: CreateGroup (iam.amazonaws.com) in account 333333333301" in out
    assert "  ALERT HIGH by rule orgalerts-alert-high -> secops-mail (email), chat (slack), hook (webhook)" in out
    assert "  no alert: silenced by aws-service-calls" in out
    assert "replay: 7 records from 4 files: 4 would alert, 3 would not" in out
    assert f"  silenced by: aws-service-calls 1, exclude_accounts: {EXCLUDED} 1" in out


def test_replay__record_without_event_id__note_says_its_console_link_has_no_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trimmed = {k: v for k, v in GROUP.items() if k != "eventID"}
    (tmp_path / "trimmed.json").write_text(json.dumps(trimmed))
    (tmp_path / "whole.json").write_text(json.dumps(GROUP))

    assert run_cli(tmp_path, "--json", str(tmp_path / "trimmed.json"), str(tmp_path / "whole.json")) == 0

    notes = {Path(r["file"]).name: r["notes"] for r in json.loads(capsys.readouterr().out)["records"]}
    assert notes["whole.json"] == []
    assert len(notes["trimmed.json"]) == 1 and "no eventID" in notes["trimmed.json"][0]


def test_replay__wrapping__source_detail_type_account_region_and_iso_time() -> None:
    signin = {"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn",
              "awsRegion": "us-east-1", "recipientAccountId": MEMBER,
              "eventTime": "2022-12-12 21:46:17.000000000"}  # fmt: skip
    service = {"eventSource": "sso.amazonaws.com", "eventName": "X", "eventType": "AwsServiceEvent",
               "awsRegion": "eu-west-1", "userIdentity": {"accountId": NOTIFICATION}}  # fmt: skip

    a, b = as_event(signin, "a"), as_event(service, "b")

    assert (a["source"], a["detail-type"], a["account"], a["time"]) == (
        "aws.signin", "AWS Console Sign In via CloudTrail", MEMBER, "2022-12-12T21:46:17Z")  # fmt: skip
    assert (b["source"], b["detail-type"], b["account"], b["region"]) == (
        "aws.sso", "AWS Service Event via CloudTrail", NOTIFICATION, "eu-west-1")  # fmt: skip
    assert as_event(ROOT_KEY, "x")["detail-type"] == "AWS API Call via CloudTrail" and a["detail"] is signin
    assert as_event(ROOT_KEY, "x")["id"] == as_event(ROOT_KEY, "x")["id"] != as_event(ROOT_KEY, "y")["id"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.json", b'{"Records": [', "invalid JSON"),
        ("shape.json", b'{"hello": "world"}', "not a CloudTrail record, an EventBridge event or a CloudTrail log"),
        ("records.json", b'{"Records": [{"eventName": "X"}]}', "Records[0] is not a CloudTrail record"),
        ("broken.json.gz", b"not gzip", "cannot read"),
        ("latin.json", '{"a": "\xe9"}'.encode("latin-1"), "not UTF-8"),
    ],
)
def test_replay__unusable_input__exit_2_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert run_cli(tmp_path, str(path)) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"orgalerts: error: replay: {path}: ") and expected in err


def test_replay__missing_path_or_empty_directory__exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, str(tmp_path / "nowhere")) == 2
    assert capsys.readouterr().err == f"orgalerts: error: replay: {tmp_path / 'nowhere'}: no such file or directory\n"
    (tmp_path / "empty").mkdir()
    assert run_cli(tmp_path, "--json", str(tmp_path / "empty")) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "no .json or .json.gz file" in captured.err
    assert json.loads(captured.out)["exit_code"] == 2


def test_replay__digest_files__skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest = {"awsAccountId": MEMBER, "digestStartTime": "2026-01-01T00:00:00Z", "logFiles": []}
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "digest.json.gz").write_bytes(gzip.compress(json.dumps(digest).encode()))
    (tmp_path / "logs" / "one.json").write_text(json.dumps(GROUP))

    assert run_cli(tmp_path, "--json", str(tmp_path / "logs")) == 0

    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["files"], summary["digest_files_skipped"], summary["records"]) == (1, 1, 1)


# --- replay and the sandbox agree ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Config, Taps, dict[str, Receiver]]]:
    receivers = {"chat": Receiver(), "oncall": Receiver(), "hook": Receiver()}
    env = {"ORGALERTS_PD_KEY": PD_KEY, "ORGALERTS_HOOK_KEY": HOOK_KEY,
           "ORGALERTS_SLACK_URL": receivers["chat"].url("/slack"),
           "ORGALERTS_PD_URL": receivers["oncall"].url("/v2/enqueue"),
           "ORGALERTS_HOOK_URL": receivers["hook"].url("/hook")}  # fmt: skip
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    config = config_of()
    assert config.sandbox is not None
    try:
        with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
            settings = GatewaySettings(endpoint_url=running.endpoint_url, access_key_id="testing",
                                       secret_access_key="testing")  # fmt: skip
            engine = Runner(Context(config, Gateway(settings)), retry_wait=tenacity.wait_none())
            assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0

            def client(service: str) -> Any:
                return account_client(service, NOTIFICATION, endpoint_url=running.endpoint_url)

            taps = install_taps(config, client, "replay")
            for r in receivers.values():
                r.take()  # the deploy's own calls raised tamper alerts
            yield config, taps, receivers
    finally:
        patch.undo()
        for r in receivers.values():
            r.close()


@pytest.mark.parametrize(
    "rec", [ROOT_KEY, ADMIN_ATTACH, GROUP, DENIED_ROLE, READ, SERVICE, SLR], ids=lambda r: r["eventName"]
)
def test_replay__same_event_through_the_sandbox__same_decision_rule_and_texts(
    deployed: tuple[Config, Taps, dict[str, Receiver]], rec: dict[str, Any]
) -> None:
    config, taps, receivers = deployed
    event = as_event(rec, "sandbox")
    decision = Replayer(config).decide(Item("x.json", 0, event))

    eventflow.deliver(MEMBER, "us-east-1", "default", event)
    mails, rules = taps.take()
    http = {name: r.take() for name, r in receivers.items()}

    assert rules == sorted(a.rule for a in decision.alerts)
    expected = {r.name: r.text for a in decision.alerts for r in a.received}
    assert mails == ([expected["secops-mail"]] if decision.alerts else [])
    for name, bodies in http.items():
        if name not in expected:
            assert bodies == [], name
            continue
        (body,) = bodies
        if name == "oncall":
            assert body.pop("routing_key") == PD_KEY  # merged in by the connection, as EventBridge does
        assert body == json.loads(expected[name]), name
