"""Destinations end to end on the sandbox: the issue's four destinations, three real HTTP receivers on 127.0.0.1
plus e-mail (the alert topic), deploy, alerts of known severity, verify, drift on a changed secret and a deleted
API destination, the secrets nowhere in output or logs, teardown.

The issue's routing, through the central tier rules: a root CreateAccessKey (critical) reaches all four, an
AttachUserPolicy of AdministratorAccess (high) mail, chat and the webhook, a CreateGroup (info) mail only; each HTTP
body parses as its service documents it; a tamper alert (high) routes like any high alert.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
import yaml
from conftest import account_client
from replay_support import ISSUE_DESTINATIONS, Receiver

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.cli import render
from orgalerts.commands.verify import run_verify
from orgalerts.config import Config, validate_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.sandbox import Sandbox, eventflow, parse_sandbox_spec
from orgalerts.sandbox.strict.managed_policies import ensure_aws_managed_policy

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"
MEMBER = "333333333301"
NOTIFICATION = "222222222222"
SECRETS = {"ORGALERTS_PD_KEY": "pd-routing-key-s3cr3t-0001", "ORGALERTS_HOOK_KEY": "hook-header-s3cr3t-0002"}


@dataclasses.dataclass
class World:
    config: Config
    engine: Runner
    sandbox: Sandbox
    chat: Receiver
    pager: Receiver
    hook: Receiver

    def client(self, service: str, account: str) -> Any:
        return account_client(service, account, endpoint_url=self.sandbox.endpoint_url, session_name="alice")

    def clear(self) -> None:
        for r in (self.chat, self.pager, self.hook):
            r.requests.clear()


def _config(chat: Receiver, pager: Receiver, hook: Receiver) -> Config:
    raw = yaml.safe_load(CONFIG_PATH.read_text())
    raw["notification"].pop("emails")
    raw["destinations"] = copy.deepcopy(ISSUE_DESTINATIONS)
    return validate_config(raw, str(CONFIG_PATH))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    chat, pager, hook = Receiver(), Receiver(), Receiver()
    env = {**SECRETS, "ORGALERTS_SLACK_URL": chat.url("/slack"), "ORGALERTS_PD_URL": pager.url("/v2/enqueue"),
           "ORGALERTS_HOOK_URL": hook.url("/hook")}  # fmt: skip
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    config = _config(chat, pager, hook)
    assert config.sandbox is not None
    try:
        with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
            settings = GatewaySettings(
                endpoint_url=running.endpoint_url, access_key_id="testing", secret_access_key="testing"
            )
            engine = Runner(Context(config, Gateway(settings)), retry_wait=tenacity.wait_none())
            deployed = engine.converge("deploy", Mode.DEPLOY)
            assert exit_code(deployed) == 0, str(deployed.central.error if deployed.central else "")
            yield World(config, engine, running, chat, pager, hook)
    finally:
        patch.undo()
        for r in (chat, pager, hook):
            r.close()


def _mail_queue(world: World, name: str) -> tuple[Any, str]:
    sqs = world.client("sqs", NOTIFICATION)
    url = sqs.create_queue(QueueName=f"dest-e2e-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    world.client("sns", NOTIFICATION).subscribe(
        TopicArn=world.engine.ctx.central.topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return sqs, url


def _mails(sqs: Any, url: str) -> list[str]:
    return [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]


def _root_create_access_key(account: str) -> dict[str, Any]:
    """SANDBOX-ONLY: the sandbox has no root credentials, so the test puts on the member's default bus the event AWS
    delivers for a root user's CreateAccessKey (userIdentity type Root, no userName: a key for the root user;
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)."""
    return {
        "version": "0", "id": "7f1c0f3e-0000-4000-8000-000000000001", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam", "account": account, "time": "2026-01-02T03:04:05Z", "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09", "eventTime": "2026-01-02T03:04:05Z", "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
            "userAgent": "console.amazonaws.com", "requestParameters": None,
            "userIdentity": {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                             "accountId": account, "accessKeyId": "ASIAEXAMPLE"},
            "responseElements": {"accessKey": {"accessKeyId": "AKIAEXAMPLE", "status": "Active"}},
            "eventID": "0c5b8f4e-1111-4222-8333-444455556666", "readOnly": False, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
        },
    }  # fmt: skip


def _documented_bodies(world: World) -> dict[str, dict[str, Any]]:
    """The one body each HTTP receiver got, checked against its service's documented format."""
    got: dict[str, dict[str, Any]] = {}
    for name, receiver in (("chat", world.chat), ("oncall", world.pager), ("hook", world.hook)):
        assert len(receiver.requests) <= 1, (name, receiver.requests)
        if receiver.requests:
            got[name] = receiver.bodies()[0]
    if "chat" in got:  # Slack incoming webhook: `text` (https://api.slack.com/messaging/webhooks)
        assert isinstance(got["chat"]["text"], str) and got["chat"]["text"]
    if "oncall" in got:  # PagerDuty Events API v2 (developer.pagerduty.com/docs/events-api-v2/trigger-events)
        body = got["oncall"]
        assert body["routing_key"] == SECRETS["ORGALERTS_PD_KEY"] and body["event_action"] == "trigger"
        payload = body["payload"]
        assert payload["severity"] in ("critical", "error", "warning", "info")
        assert 0 < len(payload["summary"]) <= 1024 and payload["source"]
    if "hook" in got:
        assert {"severity", "account", "action", "principal", "link", "text"} <= set(got["hook"])
        assert world.hook.requests[0]["headers"]["X-Api-Key"] == SECRETS["ORGALERTS_HOOK_KEY"]
    return got


def _mailed(sqs: Any, url: str, action: str) -> list[str]:
    return [m for m in _mails(sqs, url) if f": {action} " in m.splitlines()[0]]


def test_destinations__the_issue_s_three_events__each_reaches_exactly_the_destinations_admitting_its_tier(
    world: World,
) -> None:
    sqs, url = _mail_queue(world, "tiers")
    iam = world.client("iam", MEMBER)
    iam.create_user(UserName="bob-tiers")
    _mails(sqs, url)
    # Root CreateAccessKey: CRITICAL -> mail, chat (high), PagerDuty (critical), webhook (medium).
    world.clear()
    eventflow.deliver(MEMBER, "us-east-1", "default", _root_create_access_key(MEMBER))
    (mail,) = _mailed(sqs, url, "CreateAccessKey")
    assert mail.startswith(f'"[orgalerts] CRITICAL in account {MEMBER}: CreateAccessKey by arn:aws:iam::{MEMBER}:root')
    got = _documented_bodies(world)
    assert sorted(got) == ["chat", "hook", "oncall"]
    assert got["oncall"]["payload"]["severity"] == "critical" and got["hook"]["severity"] == "critical"
    assert got["chat"]["text"].startswith("*CRITICAL* [orgalerts] CRITICAL in account")
    # AttachUserPolicy of AdministratorAccess: HIGH -> mail, chat, webhook; not PagerDuty.
    world.clear()
    ensure_aws_managed_policy(MEMBER, "arn:aws:iam::aws:policy/AdministratorAccess")  # as strict mode does
    iam.attach_user_policy(UserName="bob-tiers", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    (mail,) = _mailed(sqs, url, "AttachUserPolicy")
    assert mail.startswith(f'"[orgalerts] HIGH in account {MEMBER}: AttachUserPolicy by ')
    assert "policyArn:arn:aws:iam::aws:policy/AdministratorAccess" in mail and "userName:bob-tiers" in mail
    got = _documented_bodies(world)
    assert sorted(got) == ["chat", "hook"] and got["hook"]["severity"] == "high"
    # CreateGroup: INFO -> mail only.
    world.clear()
    iam.create_group(GroupName="tiers-readers")
    (mail,) = _mailed(sqs, url, "CreateGroup")
    assert mail.startswith(f'"[orgalerts] INFO in account {MEMBER}: CreateGroup by ')
    assert _documented_bodies(world) == {}
    iam.detach_user_policy(UserName="bob-tiers", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")


def test_destinations__info_event__reaches_mail_only(world: World) -> None:
    sqs, url = _mail_queue(world, "info")
    world.clear()

    world.client("iam", MEMBER).create_group(GroupName="readers")

    assert any("CreateGroup" in m for m in _mails(sqs, url))
    assert (world.chat.requests, world.pager.requests, world.hook.requests) == ([], [], [])


def test_destinations__high_event__reaches_mail_chat_and_webhook_not_pagerduty(world: World) -> None:
    """A tamper alert (high): chat admits high, the webhook medium, PagerDuty only critical."""
    sqs, url = _mail_queue(world, "high")
    world.clear()

    world.client("events", MEMBER).disable_rule(Name="orgalerts-watchdog")
    try:
        assert any("TAMPER ALERT" in m for m in _mails(sqs, url))
        (slack,) = world.chat.bodies()
        assert (
            slack["text"].startswith("*HIGH* [orgalerts] TAMPER ALERT (HIGH) in account")
            and "DisableRule" in slack["text"]
        )
        (hook,) = world.hook.bodies()
        assert {hook["severity"], hook["account"], hook["action"]} == {"high", MEMBER, "DisableRule"}
        assert hook["link"].endswith(f"#/events/{hook['event_id']}") and hook["event_id"]
        assert world.hook.requests[0]["headers"]["X-Api-Key"] == SECRETS["ORGALERTS_HOOK_KEY"]
        assert world.pager.requests == []
    finally:
        world.client("events", MEMBER).enable_rule(Name="orgalerts-watchdog")


def test_verify__every_destination_proved_one_test_alert_each(world: World) -> None:
    world.clear()
    clock = iter(range(0, 10_000, 5))
    result = run_verify(world.engine.ctx, accounts=None, count=1, timeout=30, clock=lambda: float(next(clock)),
                        sleep=lambda _: None)  # fmt: skip

    assert [(d.name, d.status) for d in result.destinations] == [("chat", "delivered"), ("oncall", "delivered"),
                                                                  ("hook", "delivered")]  # fmt: skip
    assert result.ok and result.to_json()["destinations"][1] == {"name": "oncall", "type": "pagerduty",
                                                                  "status": "delivered", "error": None}  # fmt: skip
    (pd,) = world.pager.bodies()
    assert pd["routing_key"] == SECRETS["ORGALERTS_PD_KEY"]  # merged in from the connection's secret body parameter
    assert pd["event_action"] == "trigger" and pd["payload"]["severity"] == "info" and pd["payload"]["summary"]
    assert pd["payload"]["source"] == f"aws account {NOTIFICATION}" and pd["links"][0]["href"].startswith("https://")
    assert len(world.chat.requests) == 1 and len(world.hook.requests) == 1


def test_verify__receiver_answers_500__destination_not_delivered_with_the_reason(world: World) -> None:
    world.hook.status = 500
    try:
        clock = iter(range(0, 10_000, 5))
        result = run_verify(world.engine.ctx, accounts=None, count=1, timeout=30, clock=lambda: float(next(clock)),
                            sleep=lambda _: None)  # fmt: skip
    finally:
        world.hook.status = 200
    statuses = {d.name: (d.status, d.error) for d in result.destinations}
    assert statuses["hook"][0] == "not delivered" and "HTTP 500" in str(statuses["hook"][1])
    assert statuses["chat"] == ("delivered", None) and not result.ok and result.exit_code() == 1


def test_drift__changed_secret_and_deleted_api_destination__named_without_the_secret(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # as `--debug` does: orgalerts' and the sandbox's debug lines, botocore at INFO
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "moto"):
        caplog.set_level(logging.INFO, logger=noisy)
    monkeypatch.setenv("ORGALERTS_HOOK_KEY", "hook-header-r0tated-0003")
    world.client("events", NOTIFICATION).delete_api_destination(Name="orgalerts-dest-chat")

    report = world.engine.converge("drift", Mode.DRIFT)
    findings = report.central.changes if report.central else []
    assert "destination connection orgalerts-dest-hook: secret changed" in findings
    assert "API destination orgalerts-dest-chat missing" in findings
    assert exit_code(report) == 3

    repaired = world.engine.converge("drift", Mode.REPAIR)
    assert exit_code(repaired) == 0
    assert exit_code(world.engine.converge("plan", Mode.PLAN)) == 0  # converged: a second deploy writes nothing
    out = io.StringIO()
    render.write_json(report, out)
    render.write_json(repaired, out)
    render.write_table(repaired, out)
    text = out.getvalue() + caplog.text + "\n".join(str(r) for r in eventflow.HTTP_DELIVERIES)
    for secret in [*SECRETS.values(), "hook-header-r0tated-0003"]:
        assert secret not in text


def test_teardown__removes_connections_api_destinations_and_role(world: World) -> None:
    world.engine.remove("teardown", None)
    events = world.client("events", NOTIFICATION)
    assert events.list_connections(NamePrefix="orgalerts-")["Connections"] == []
    assert events.list_api_destinations(NamePrefix="orgalerts-")["ApiDestinations"] == []
    roles = [r["RoleName"] for r in world.client("iam", NOTIFICATION).list_roles()["Roles"]]
    assert "orgalerts-api-destinations" not in roles
