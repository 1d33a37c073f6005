"""End to end on the sandbox: deploy with the shipped config, then IAM calls become (or do not become)
alerts on a queue subscribed to the topic; `verify` proves delivery and always cleans up."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tenacity
from conftest import account_client

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.commands.verify import DRIFT_HINT, run_verify
from orgalerts.config import Config, load_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.sandbox import Sandbox, parse_sandbox_spec

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"
MEMBER = "333333333301"  # payments-prod, nested OU
EXCLUDED = "333333333399"  # break-glass
NOTIFICATION = "222222222222"


@dataclass
class Deployed:
    sandbox: Sandbox
    config: Config
    engine: Runner

    def client(self, service: str, account: str | None = None, session_name: str = "alice") -> Any:
        return account_client(service, account, endpoint_url=self.sandbox.endpoint_url, session_name=session_name)

    def subscribe_queue(self, name: str = "e2e-listener") -> tuple[Any, str]:
        sqs = self.client("sqs", NOTIFICATION)
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns", NOTIFICATION).subscribe(
            TopicArn=self.engine.ctx.central.topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return sqs, url

    @staticmethod
    def drain(sqs: Any, url: str) -> list[str]:
        bodies: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Sandbox, Config]]:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
        yield running, config


@pytest.fixture
def deployed(sandbox: tuple[Sandbox, Config]) -> Deployed:
    """The shipped config deployed; each test starts converged (deploy repairs what a previous test changed)."""
    running, config = sandbox
    gateway = Gateway(
        GatewaySettings(endpoint_url=running.endpoint_url, access_key_id="testing", secret_access_key="testing")
    )
    engine = Runner(Context(config, gateway), retry_wait=tenacity.wait_none())
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    return Deployed(running, config, engine)


def test_e2e__iam_write_in_member__exactly_one_alert_naming_account_and_action(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)

    deployed.client("iam", MEMBER).create_user(UserName="mallory")

    (alert,) = deployed.drain(sqs, url)
    assert alert.startswith(f'"[orgalerts] INFO in account {MEMBER}: CreateUser by ')
    assert f"arn:aws:sts::{MEMBER}:assumed-role/OrganizationAccountAccessRole/alice" in alert
    assert "userName:mallory" in alert


def test_e2e__read_only_call__no_alert(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    iam = deployed.client("iam", MEMBER)
    iam.create_user(UserName="bob")
    deployed.drain(sqs, url)

    iam.get_user(UserName="bob")
    iam.list_roles()

    assert deployed.drain(sqs, url) == []


def test_e2e__excluded_account__no_alert(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)

    deployed.client("iam", EXCLUDED).create_user(UserName="eve")

    assert deployed.drain(sqs, url) == []


def test_e2e__tag_role_and_attach_role_policy__one_readable_alert_each(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    iam = deployed.client("iam", MEMBER)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    admin = iam.create_policy(
        PolicyName="TeamAdmin",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    deployed.drain(sqs, url)

    iam.tag_role(RoleName="app", Tags=[{"Key": "access-tier", "Value": "admin"}])
    iam.attach_role_policy(RoleName="app", PolicyArn=admin)

    alerts = deployed.drain(sqs, url)
    assert [a.splitlines()[0] for a in alerts] == [
        f'"[orgalerts] INFO in account {MEMBER}: TagRole by {deployed_caller(alerts[0])}"',
        f'"[orgalerts] MEDIUM in account {MEMBER}: AttachRolePolicy by {deployed_caller(alerts[1])}"',
    ]
    assert "roleName:app" in alerts[1] and "TeamAdmin" in alerts[1]


def deployed_caller(alert: str) -> str:
    """The principal ARN an alert's Who line names (the caller of the test's IAM calls)."""
    (who,) = [line for line in alert.splitlines() if line.startswith('"Who:    ')]
    return who.removeprefix('"Who:    ').removesuffix('"')


class FakeClock:
    """Time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.001)


def _leftovers(deployed: Deployed, account: str) -> dict[str, list[str]]:
    sqs = deployed.client("sqs", NOTIFICATION)
    subs = deployed.client("sns", NOTIFICATION).list_subscriptions_by_topic(
        TopicArn=deployed.engine.ctx.central.topic_arn
    )
    policies = deployed.client("iam", account).list_policies(Scope="Local")["Policies"]
    return {
        "queues": [q for q in sqs.list_queues().get("QueueUrls", []) if "verify" in q],
        "subscriptions": [s["Endpoint"] for s in subs["Subscriptions"] if "verify" in s["Endpoint"]],
        "policies": [p["PolicyName"] for p in policies if "verify" in p["PolicyName"]],
    }


def test_verify__deployed_sandbox__delivered_with_latency_and_cleaned_up(deployed: Deployed) -> None:
    clock = FakeClock()
    result = run_verify(deployed.engine.ctx, accounts=[MEMBER], count=1, timeout=30, clock=clock, sleep=clock.sleep)

    assert result.ok
    (check,) = result.checks
    assert (check.account_id, check.status) == (MEMBER, "delivered")
    assert check.latency_seconds is not None and check.message is not None and "CreatePolicy" in check.message
    assert _leftovers(deployed, MEMBER) == {"queues": [], "subscriptions": [], "policies": []}


def test_verify__bus_policy_removed__not_delivered_exit_1_names_account_and_cleans_up(deployed: Deployed) -> None:
    deployed.client("events", NOTIFICATION).remove_permission(
        EventBusName="orgalerts-central", RemoveAllPermissions=True
    )
    clock = FakeClock()

    result = run_verify(deployed.engine.ctx, accounts=[MEMBER], count=1, timeout=30, clock=clock, sleep=clock.sleep)

    assert not result.ok
    assert result.to_json()["accounts"] == [
        {
            "account_id": MEMBER,
            "status": "not delivered",
            "latency_seconds": None,
            "error": f"no alert within 30s; {DRIFT_HINT}",
            "message": None,
        }
    ]
    assert clock.now >= 1030.0 and sum(clock.sleeps) <= 30.0  # bounded wait, on the injected clock
    assert _leftovers(deployed, MEMBER) == {"queues": [], "subscriptions": [], "policies": []}


def test_verify__default_choice__an_ordinary_member_not_the_notification_account(deployed: Deployed) -> None:
    clock = FakeClock()
    result = run_verify(deployed.engine.ctx, accounts=None, count=2, timeout=5, clock=clock, sleep=clock.sleep)
    assert result.ok
    assert len(result.checks) == 2
    assert NOTIFICATION not in [c.account_id for c in result.checks]


def test_e2e__excluded_principal__no_alert_while_others_still_alert(deployed: Deployed) -> None:
    alerts = dataclasses.replace(
        deployed.config.alerts,
        exclude_principals=("arn:aws:sts::*:assumed-role/OrganizationAccountAccessRole/ci-*",),
    )
    config = dataclasses.replace(deployed.config, alerts=alerts)
    engine = Runner(Context(config, deployed.engine.ctx.gateway), retry_wait=tenacity.wait_none())
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)

    deployed.client("iam", MEMBER, session_name="ci-pipeline").create_user(UserName="from-ci")
    assert deployed.drain(sqs, url) == []

    deployed.client("iam", MEMBER, session_name="alice").create_user(UserName="from-alice")
    (alert,) = deployed.drain(sqs, url)
    assert "CreateUser" in alert and "from-alice" in alert


def test_e2e__forwarding_rule_disabled__tamper_alert_names_account_and_action(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)

    deployed.client("events", MEMBER).disable_rule(Name="orgalerts-forward")

    alerts = deployed.drain(sqs, url)
    assert len(alerts) == 1
    assert alerts[0].startswith(f'"[orgalerts] TAMPER ALERT (HIGH) in account {MEMBER}: DisableRule')
    assert "name:orgalerts-forward" in alerts[0]


def test_e2e__watchdog_disabled__the_forwarding_rule_reports_it(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)

    deployed.client("events", MEMBER).disable_rule(Name="orgalerts-watchdog")

    (alert,) = deployed.drain(sqs, url)
    assert alert.startswith(f'"[orgalerts] TAMPER ALERT (HIGH) in account {MEMBER}: DisableRule')


def test_e2e__topic_unreachable__events_held_in_dlq_then_redrive_delivers_and_empties_it(deployed: Deployed) -> None:
    from orgalerts.commands.redrive import run_redrive

    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)
    sns = deployed.client("sns", NOTIFICATION)
    topic = deployed.engine.ctx.central.topic_arn
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": []})
    )

    deployed.client("iam", MEMBER).create_user(UserName="while-broken")
    assert deployed.drain(sqs, url) == []

    drift = deployed.engine.converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 3
    assert drift.central is not None
    assert any(
        "undelivered events waiting in dead-letter queue orgalerts-central-dlq" in c for c in drift.central.changes
    )
    assert exit_code(deployed.engine.converge("repair", Mode.REPAIR)) == 0
    live_after_repair = deployed.drain(sqs, url)
    # The repair rewrote the topic policy: the central watch reports that change as it happens.
    assert any(
        a.startswith('"[orgalerts] TAMPER ALERT (HIGH) in account 222222222222: SetTopicAttributes')
        for a in live_after_repair
    )

    redriven = run_redrive(deployed.engine)

    assert redriven.central is not None and redriven.central.status == "resent"
    resent = deployed.drain(sqs, url)
    assert all(a.startswith("[re-sent by orgalerts redrive") for a in resent)
    # Earlier tests in this module may have left member dead letters (they are re-sent too).
    (alert,) = [a for a in resent if "while-broken" in a]
    assert alert.startswith("[re-sent by orgalerts redrive")
    assert f"INFO in account {MEMBER}: CreateUser" in alert and "while-broken" in alert
    dlq = deployed.client("sqs", NOTIFICATION)
    dlq_url = dlq.get_queue_url(QueueName="orgalerts-central-dlq")["QueueUrl"]
    attributes = dlq.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert exit_code(deployed.engine.converge("drift", Mode.DRIFT)) == 0


def test_e2e__account_moved_into_nested_target_ou__alert_says_not_covered_yet(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)
    orgs = deployed.client("organizations")
    newcomer, research, development = "444444444402", "ou-sbx0-research", "ou-sbx0-develop1"

    orgs.move_account(AccountId=newcomer, SourceParentId=research, DestinationParentId=development)
    try:
        (alert,) = deployed.drain(sqs, url)
        assert alert.startswith(
            f'"[orgalerts] ACCOUNT NOT COVERED YET: account {newcomer} joined the organization or a target OU '
            "(MoveAccount)"
        )
        assert development in alert and f"orgalerts onboard {newcomer}" in alert
    finally:
        orgs.move_account(AccountId=newcomer, SourceParentId=development, DestinationParentId=research)
    # A move out of (or between non-target) OUs says nothing.
    assert deployed.drain(sqs, url) == []


def test_e2e__drift_publish__recipients_learn_the_alerting_was_changed(deployed: Deployed) -> None:
    from orgalerts.commands.notify import publish_drift

    sqs, url = deployed.subscribe_queue()
    deployed.client("events", MEMBER).disable_rule(Name="orgalerts-watchdog")
    deployed.drain(sqs, url)

    drift = deployed.engine.converge("drift", Mode.DRIFT)
    assert publish_drift(deployed.engine.ctx, drift, repaired=False)

    (summary,) = deployed.drain(sqs, url)
    assert summary.startswith("[orgalerts] DRIFT FOUND")
    assert f"drifted   {MEMBER}" in summary and "rule default/orgalerts-watchdog: disabled" in summary


def test_watch__prints_alerts_as_they_arrive_and_removes_its_queue(deployed: Deployed) -> None:
    import io

    from orgalerts.commands.watch import run_watch

    out = io.StringIO()
    clock = FakeClock()
    made: list[bool] = []

    def sleep_and_act(seconds: float) -> None:
        # The first idle poll is when a person makes an IAM change in a member account.
        if not made:
            made.append(True)
            deployed.client("iam", MEMBER).create_user(UserName="watched")
        clock.sleep(seconds)

    received = run_watch(deployed.engine.ctx, out, seconds=5, clock=clock, sleep=sleep_and_act)

    assert received == 1
    assert out.getvalue().startswith(f'"[orgalerts] INFO in account {MEMBER}: CreateUser by ')
    subs = deployed.client("sns", NOTIFICATION).list_subscriptions_by_topic(
        TopicArn=deployed.engine.ctx.central.topic_arn
    )
    assert [s for s in subs["Subscriptions"] if "watch" in s["Endpoint"]] == []
    assert [q for q in deployed.client("sqs", NOTIFICATION).list_queues().get("QueueUrls", []) if "watch" in q] == []


@pytest.mark.parametrize("role", ["orgalerts-forwarder"])  # the one role of both member targets (version 2)
def test_e2e__put_role_policy_on_own_role__exactly_one_tamper_alert(deployed: Deployed, role: str) -> None:
    try:
        assert exit_code(deployed.engine.converge("deploy", Mode.DEPLOY)) == 0
        sqs, url = deployed.subscribe_queue()
        deployed.drain(sqs, url)

        deployed.client("iam", MEMBER).put_role_policy(
            RoleName=role,
            PolicyName="backdoor",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )

        alerts = deployed.drain(sqs, url)
        assert len(alerts) == 1, alerts
        assert alerts[0].startswith(f'"[orgalerts] TAMPER ALERT (HIGH) in account {MEMBER}: PutRolePolicy')
        assert f"roleName:{role}" in alerts[0]
    finally:
        iam = deployed.client("iam", MEMBER)
        if "backdoor" in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName="backdoor")

        deployed.engine.converge("deploy", Mode.DEPLOY)


def test_e2e__tag_role_on_own_role__one_tamper_alert(deployed: Deployed) -> None:
    try:
        assert exit_code(deployed.engine.converge("deploy", Mode.DEPLOY)) == 0
        sqs, url = deployed.subscribe_queue()
        deployed.drain(sqs, url)
        deployed.client("iam", MEMBER).tag_role(RoleName="orgalerts-forwarder", Tags=[{"Key": "x", "Value": "y"}])
        (alert,) = deployed.drain(sqs, url)
        assert alert.startswith(f'"[orgalerts] TAMPER ALERT (HIGH) in account {MEMBER}: TagRole')
    finally:
        deployed.client("iam", MEMBER).untag_role(RoleName="orgalerts-forwarder", TagKeys=["x"])

        deployed.engine.converge("deploy", Mode.DEPLOY)


def test_watch__ctrl_c__stops_cleanly_with_the_count_and_removes_its_queue(deployed: Deployed) -> None:
    import io

    from orgalerts.commands.watch import run_watch

    out = io.StringIO()
    polls: list[float] = []

    def sleep_then_ctrl_c(seconds: float) -> None:
        # First idle poll: a person makes an IAM change; second: they press Ctrl-C (the documented way out).
        polls.append(seconds)
        if len(polls) == 1:
            deployed.client("iam", MEMBER).create_user(UserName="watched-then-stopped")
        elif "CreateUser" in out.getvalue():
            raise KeyboardInterrupt

    received = run_watch(deployed.engine.ctx, out, seconds=None, sleep=sleep_then_ctrl_c)

    assert received == 1
    assert [q for q in deployed.client("sqs", NOTIFICATION).list_queues().get("QueueUrls", []) if "watch" in q] == []


def test_e2e__invited_account_joins__management_account_event_raises_not_covered_yet(deployed: Deployed) -> None:
    from orgalerts.sandbox.eventflow import deliver

    sqs, url = deployed.subscribe_queue()
    deployed.drain(sqs, url)
    invited = "555566667777"
    # What the management account's CloudTrail records when an invited account accepts the handshake
    # (https://docs.aws.amazon.com/organizations/latest/APIReference/API_AcceptHandshake.html).
    event = {
        "version": "0",
        "id": "joined-1",
        "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.organizations",
        "account": "123456789012",
        "time": "2026-12-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "eventSource": "organizations.amazonaws.com",
            "eventName": "AccountJoinedOrganization",
            "eventType": "AwsServiceEvent",
            "recipientAccountId": "123456789012",
            "serviceEventDetails": {"accountId": invited, "joinedMethod": "INVITED"},
            "eventTime": "2026-12-01T00:00:00Z",
        },
    }

    deliver("123456789012", "us-east-1", "default", event)

    (alert,) = deployed.drain(sqs, url)
    assert alert.startswith(f'"[orgalerts] ACCOUNT NOT COVERED YET: account {invited} joined the organization')
    assert f"orgalerts onboard {invited}" in alert
