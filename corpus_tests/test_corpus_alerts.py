"""Real CloudTrail IAM records (not in this repository) two ways, compared record by record: `orgalerts replay` on
the files, and the deployed sandbox receiving each record as CloudTrail would deliver it in a member account.

Checked for every record: replay and the sandbox agree (alert or not, the rule that fired, the text the e-mail
recipient reads); read-only calls never alert and every successful mutating call raises exactly one alert; no
alert carries template debris (messages.message_problems); the first line names severity, account, action and
principal; root CreateAccessKey is CRITICAL, AttachUserPolicy of AdministratorAccess HIGH or above, CreateGroup
INFO.

Corpus: $ORGALERTS_CORPUS or ../shared/corpus/cloudtrail (relative to the repository). A missing corpus fails
loudly: `make corpus` exists to run this check (and `make replay-corpus` runs replay on it alone).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import account_client  # noqa: E402
from replay_support import Taps, in_account, install_taps  # noqa: E402

from orgalerts.aws import Gateway, GatewaySettings  # noqa: E402
from orgalerts.cli import app  # noqa: E402
from orgalerts.config import Config, load_config  # noqa: E402
from orgalerts.engine.context import Context  # noqa: E402
from orgalerts.engine.results import Mode, exit_code  # noqa: E402
from orgalerts.engine.runner import Runner  # noqa: E402
from orgalerts.model.messages import unexplained_problems  # noqa: E402
from orgalerts.model.severity import Severity  # noqa: E402
from orgalerts.sandbox import Sandbox, parse_sandbox_spec  # noqa: E402
from orgalerts.sandbox.eventflow import deliver  # noqa: E402

CORPUS = Path(os.environ.get("ORGALERTS_CORPUS", REPO.parent / "shared" / "corpus" / "cloudtrail"))
CONFIG_PATH = REPO / "config" / "accounts.yaml"
MEMBER = "333333333301"
NOTIFICATION = "222222222222"
ADMIN_SUFFIX = ":iam::aws:policy/AdministratorAccess"


def _records() -> list[tuple[str, dict[str, Any]]]:
    iam = CORPUS / "iam"
    if not iam.is_dir():
        raise FileNotFoundError(f"CloudTrail corpus not found at {iam} (set ORGALERTS_CORPUS)")
    return [(p.name, json.loads(p.read_text())) for p in sorted(iam.glob("*.json"))]


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Config, Taps]]:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
        gateway = Gateway(
            GatewaySettings(endpoint_url=running.endpoint_url, access_key_id="testing", secret_access_key="testing")
        )
        engine = Runner(Context(config, gateway), retry_wait=tenacity.wait_none())
        assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0

        def client(service: str) -> Any:
            return account_client(service, NOTIFICATION, endpoint_url=running.endpoint_url)

        yield config, install_taps(config, client, "corpus")


def _replayed(directory: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """`orgalerts replay --json DIR` with the shipped config, by file name."""
    capsys.readouterr()
    assert app.main(["--config", str(CONFIG_PATH), "replay", "--json", str(directory)]) == 0
    document = json.loads(capsys.readouterr().out)
    return {Path(r["file"]).name: r for r in document["records"]}


def _mail_text(replayed: dict[str, Any]) -> list[str]:
    return [d["text"] for d in replayed["destinations"] if d["type"] == "email"]


def _headline_problems(text: str, detail: dict[str, Any], severity: str) -> list[str]:
    """The first line names the severity, the account, the action and the principal (or says there is none)."""
    first = json.loads(text.splitlines()[0])
    principal = (detail.get("userIdentity") or {}).get("arn") or "without a principal ARN"
    wanted = [severity.upper(), f"account {MEMBER}", str(detail["eventName"]), str(principal)]
    return [f"first line lacks {w!r}: {first}" for w in wanted if w not in first]


def _expectations(detail: dict[str, Any], severity: str | None) -> list[str]:
    """The issue's must-shows for the corpus: root CreateAccessKey critical, admin attach high+, CreateGroup info."""
    name, identity = detail.get("eventName"), detail.get("userIdentity") or {}
    params = detail.get("requestParameters") or {}
    if detail.get("errorCode") or severity is None:
        return []
    if name == "CreateAccessKey" and identity.get("type") == "Root" and severity != "critical":
        return [f"root CreateAccessKey is {severity}, not critical"]
    admin = str(params.get("policyArn", "")).endswith(ADMIN_SUFFIX)
    if name == "AttachUserPolicy" and admin and Severity(severity).rank < Severity.HIGH.rank:
        return [f"AttachUserPolicy of AdministratorAccess is {severity}, below high"]
    if name == "CreateGroup" and identity.get("type") != "Root" and severity != "info":
        return [f"CreateGroup is {severity}, not info"]
    return []


def _compare(name: str, event: dict[str, Any], replayed: dict[str, Any], taps: Taps) -> list[str]:
    """Everything wrong with one record: replay vs sandbox, debris, first line, the must-shows."""
    detail = event["detail"]
    deliver(MEMBER, "us-east-1", "default", event)
    mails, rules = taps.take()
    problems = []
    if rules != sorted(replayed["rules"]):
        problems.append(f"sandbox fired {rules}, replay says {replayed['rules']}")
    if mails != _mail_text(replayed):
        problems.append(f"e-mail text differs: sandbox {mails!r} / replay {_mail_text(replayed)!r}")
    if detail.get("readOnly") is True and mails:
        problems.append(f"read-only call raised {len(mails)} alert(s)")
    if detail.get("readOnly") is not True and not detail.get("errorCode") and len(mails) != 1:
        problems.append(f"mutating call raised {len(mails)} alerts, not one")
    for mail in mails:
        problems += unexplained_problems(mail, detail)
        problems += _headline_problems(mail, detail, str(replayed["severity"]))
    problems += _expectations(detail, replayed["severity"])
    return [f"{name}: {detail['eventName']}: {p}" for p in problems]


def test_corpus__replay_and_sandbox_agree_record_by_record(
    deployed: tuple[Config, Taps], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, taps = deployed
    events = {name: in_account(record, MEMBER) for name, record in _records()}
    for name, event in events.items():
        (tmp_path / name).write_text(json.dumps(event))
    replayed = _replayed(tmp_path, capsys)
    assert sorted(replayed) == sorted(events)

    failures = [f for name, event in events.items() for f in _compare(name, event, replayed[name], taps)]

    severities = {
        (e["detail"]["eventName"], replayed[n]["severity"]) for n, e in events.items() if replayed[n]["alert"]
    }
    with capsys.disabled():
        alerts = sum(1 for r in replayed.values() if r["alert"])
        print(f"\ncorpus {CORPUS / 'iam'}: {len(events)} records, {alerts} alerts, replay and sandbox compared")
    assert not failures, "\n".join(failures)
    # The must-show records are in the corpus (the checks above ran on them, not on nothing).
    assert ("CreateAccessKey", "critical") in severities and ("CreateGroup", "info") in severities
    assert {("AttachUserPolicy", "high"), ("AttachUserPolicy", "critical")} & severities
