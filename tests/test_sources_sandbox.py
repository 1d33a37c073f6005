"""`alerts.sources` end to end on the sandbox: with every source on, one change of each kind reaches the
central bus exactly once; a deleted or disabled rule of each source is found by drift, repaired, and raises a
tamper alert; a second deploy writes nothing; switching sources off removes their rules; teardown removes all.

What reaches the central bus is read from a test-only rule on it (every event, all management events) with
an SQS target, so each assertion counts arrivals on the bus itself, whatever the central rules make of them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tenacity
from conftest import CallLog, account_client

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.config import Config, IdentityCenterConfig, load_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, RunReport, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.model.messages import message_problems
from orgalerts.sandbox import Sandbox, parse_sandbox_spec
from orgalerts.sandbox.cloudtrail import emit_root_sign_in

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"
MANAGEMENT = "123456789012"
MEMBER = "333333333301"
NOTIFICATION = "222222222222"
IC_REGION = "eu-west-1"  # not the central bus's region: the Identity Center rule's target crosses regions
ALL = ("iam", "organizations", "identity-center", "root-activity", "sts")
CAPTURE = "sources-test-capture"


def with_sources(config: Config, sources: tuple[str, ...]) -> Config:
    return dataclasses.replace(
        config,
        alerts=dataclasses.replace(config.alerts, sources=sources),
        identity_center=IdentityCenterConfig(region=IC_REGION),
    )


@dataclass
class Deployed:
    sandbox: Sandbox
    config: Config
    calls: CallLog

    def client(self, service: str, account: str | None = None, region: str = "us-east-1") -> Any:
        return account_client(service, account, endpoint_url=self.sandbox.endpoint_url, region=region)

    def engine(self, config: Config | None = None) -> Runner:
        gateway = Gateway(
            GatewaySettings(
                endpoint_url=self.sandbox.endpoint_url, access_key_id="testing", secret_access_key="testing"
            )
        )
        gateway.add_observer(self.calls)
        return Runner(Context(config or self.config, gateway), retry_wait=tenacity.wait_none())

    def bus_events(self) -> list[dict[str, Any]]:
        """Every event that reached the central bus since the last call (read and deleted)."""
        sqs = self.client("sqs", NOTIFICATION)
        url = sqs.get_queue_url(QueueName=CAPTURE)["QueueUrl"]
        events: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return events
            for message in got:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def topic_messages(self, sqs: Any, url: str) -> list[str]:
        bodies: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def subscribe_topic(self) -> tuple[Any, str]:
        sqs = self.client("sqs", NOTIFICATION)
        url = sqs.create_queue(QueueName="sources-topic-listener")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns", NOTIFICATION).subscribe(
            TopicArn=self.config.central.topic_arn, Protocol="sqs", Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )  # fmt: skip
        self.topic_messages(sqs, url)
        return sqs, url


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Sandbox, Config]]:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
        yield running, with_sources(config, ALL)


def _capture_rule(deployed: Deployed) -> None:
    """A rule on the central bus that copies every event arriving there to a queue (idempotent)."""
    sqs = deployed.client("sqs", NOTIFICATION)
    url = sqs.create_queue(QueueName=CAPTURE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = deployed.client("events", NOTIFICATION)
    bus = deployed.config.names.central_bus
    pattern = {"source": [{"prefix": "aws."}]}
    # Every management event, read-only ones too (AssumeRoot is emitted read-only).
    events.put_rule(
        Name=CAPTURE, EventBusName=bus, EventPattern=json.dumps(pattern),
        State="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
    )  # fmt: skip
    events.put_targets(Rule=CAPTURE, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])


@pytest.fixture
def deployed(sandbox: tuple[Sandbox, Config]) -> Deployed:
    running, config = sandbox
    deployed = Deployed(running, config, CallLog())
    assert _errors(deployed.engine().converge("deploy", Mode.DEPLOY)) == []
    _capture_rule(deployed)
    deployed.bus_events()
    return deployed


def _errors(report: RunReport) -> list[str]:
    return [f"{s.account_id}: {s.error}" for s in report.sides() if s.error]


def _names(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail"]["eventName"] for e in events)


_HEADLINE = re.compile(r'^"\[orgalerts\] (CRITICAL|HIGH|MEDIUM|INFO)( FAILED attempt)? in account (\d{12}): (\w+) ')


def _alerts(deployed: Deployed, sqs: Any, url: str) -> list[tuple[str, str, str]]:
    """(tier, account, action) of every alert the topic delivered since the last call, sorted; each a clean text."""
    found = []
    for text in deployed.topic_messages(sqs, url):
        match = _HEADLINE.match(text)
        assert match, text
        assert message_problems(text) == [], text
        found.append((match.group(1), match.group(3), match.group(4)))
    return sorted(found)


def test_organizations__scp_and_delegated_admin_changes__each_one_event_and_one_alert_at_its_tier(
    deployed: Deployed,
) -> None:
    sqs, url = deployed.subscribe_topic()
    orgs = deployed.client("organizations")
    root = orgs.list_roots()["Roots"][0]["Id"]
    if not any(
        t["Type"] == "SERVICE_CONTROL_POLICY" and t["Status"] == "ENABLED"
        for t in orgs.list_roots()["Roots"][0]["PolicyTypes"]
    ):
        orgs.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    deployed.bus_events()
    deployed.topic_messages(sqs, url)
    content = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    )
    policy = orgs.create_policy(Content=content, Description="t", Name="sources-scp", Type="SERVICE_CONTROL_POLICY")
    policy_id = policy["Policy"]["PolicySummary"]["Id"]
    orgs.attach_policy(PolicyId=policy_id, TargetId="ou-sbx0-research")
    orgs.detach_policy(PolicyId=policy_id, TargetId="ou-sbx0-research")
    orgs.register_delegated_administrator(AccountId=MEMBER, ServicePrincipal="access-analyzer.amazonaws.com")
    orgs.deregister_delegated_administrator(AccountId=MEMBER, ServicePrincipal="access-analyzer.amazonaws.com")
    orgs.delete_policy(PolicyId=policy_id)

    events = deployed.bus_events()
    assert _names(events) == sorted(
        ["CreatePolicy", "AttachPolicy", "DetachPolicy", "RegisterDelegatedAdministrator",
         "DeregisterDelegatedAdministrator", "DeletePolicy"]
    )  # fmt: skip
    assert {e["account"] for e in events} == {MANAGEMENT}
    assert _alerts(deployed, sqs, url) == sorted(
        [("INFO", MANAGEMENT, "CreatePolicy"), ("INFO", MANAGEMENT, "AttachPolicy"),
         ("HIGH", MANAGEMENT, "DetachPolicy"), ("MEDIUM", MANAGEMENT, "RegisterDelegatedAdministrator"),
         ("MEDIUM", MANAGEMENT, "DeregisterDelegatedAdministrator"), ("HIGH", MANAGEMENT, "DeletePolicy")]
    )  # fmt: skip


def test_organizations__move_into_target_ou__one_event_and_one_account_change_alert__move_out_one_info_alert(
    deployed: Deployed,
) -> None:
    sqs, url = deployed.subscribe_topic()
    orgs = deployed.client("organizations")
    newcomer, research, development = "444444444402", "ou-sbx0-research", "ou-sbx0-develop1"
    orgs.move_account(AccountId=newcomer, SourceParentId=research, DestinationParentId=development)
    try:
        assert _names(deployed.bus_events()) == ["MoveAccount"]
        (alert,) = deployed.topic_messages(sqs, url)
        assert "ACCOUNT NOT COVERED YET" in alert
    finally:
        orgs.move_account(AccountId=newcomer, SourceParentId=development, DestinationParentId=research)
    # Out of the target OU: forwarded, no account change; the organizations source alerts on it, once.
    assert _names(deployed.bus_events()) == ["MoveAccount"]
    assert _alerts(deployed, sqs, url) == [("INFO", MANAGEMENT, "MoveAccount")]


def test_identity_center__permission_set_assignment_and_user__each_one_event_and_one_alert_at_its_tier(
    deployed: Deployed,
) -> None:
    sqs, url = deployed.subscribe_topic()
    sso = deployed.client("sso-admin", region=IC_REGION)
    instance = "arn:aws:sso:::instance/ssoins-sandbox00000001"
    created = sso.create_permission_set(InstanceArn=instance, Name="sources-admins")
    ps_arn = created["PermissionSet"]["PermissionSetArn"]
    sso.create_account_assignment(
        InstanceArn=instance, TargetId=MEMBER, TargetType="AWS_ACCOUNT", PermissionSetArn=ps_arn,
        PrincipalType="USER", PrincipalId="user-1",
    )  # fmt: skip
    sso.list_permission_sets(InstanceArn=instance)  # read-only: never forwarded
    store = deployed.client("identitystore", region=IC_REGION)
    store.create_user(
        IdentityStoreId="d-sandbox0001", UserName="mallory", DisplayName="Mallory",
        Name={"GivenName": "M", "FamilyName": "Allory"},
    )  # fmt: skip

    events = deployed.bus_events()
    assert _names(events) == ["CreateAccountAssignment", "CreatePermissionSet", "CreateUser"]
    assert {(e["account"], e["region"]) for e in events} == {(MANAGEMENT, IC_REGION)}
    assert _alerts(deployed, sqs, url) == sorted(
        [("MEDIUM", MANAGEMENT, "CreatePermissionSet"), ("MEDIUM", MANAGEMENT, "CreateAccountAssignment"),
         ("INFO", MANAGEMENT, "CreateUser")]
    )  # fmt: skip


def test_root_activity__root_sign_in__one_event_and_one_critical_alert(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_topic()
    emit_root_sign_in(MEMBER)  # SANDBOX-ONLY: a root console sign-in cannot be made through an API
    (event,) = deployed.bus_events()
    assert (event["source"], event["detail-type"], event["account"]) == (
        "aws.signin", "AWS Console Sign In via CloudTrail", MEMBER,
    )  # fmt: skip
    assert _alerts(deployed, sqs, url) == [("CRITICAL", MEMBER, "ConsoleLogin")]
    emit_root_sign_in("333333333399")  # the excluded account has no forwarding rule: nothing arrives
    assert deployed.bus_events() == []
    assert _alerts(deployed, sqs, url) == []


def test_sts__assume_root_and_federation_token__each_one_event_and_one_alert_at_its_tier(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_topic()
    sts = deployed.client("sts", MEMBER)  # e.g. the delegated administrator for IAM, in scope
    sts.assume_root(
        TargetPrincipal="333333333302",
        TaskPolicyArn={"arn": "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"},
    )
    sts.get_federation_token(Name="contractor")
    sts.get_caller_identity()  # not an sts source call
    events = deployed.bus_events()
    assert _names(events) == ["AssumeRoot", "GetFederationToken"]
    assert {e["account"] for e in events} == {MEMBER}
    # AssumeRoot is recorded read-only: the central route carrying it takes every management event.
    assert _alerts(deployed, sqs, url) == [("CRITICAL", MEMBER, "AssumeRoot"), ("HIGH", MEMBER, "GetFederationToken")]


def test_iam__one_change__one_event_and_one_alert_at_its_tier(deployed: Deployed) -> None:
    sqs, url = deployed.subscribe_topic()
    iam = deployed.client("iam", MEMBER)
    iam.create_group(GroupName="sources-group")
    iam.delete_group(GroupName="sources-group")
    assert _names(deployed.bus_events()) == ["CreateGroup", "DeleteGroup"]
    assert _alerts(deployed, sqs, url) == [("INFO", MEMBER, "CreateGroup"), ("INFO", MEMBER, "DeleteGroup")]


def test_second_deploy__every_source_on__makes_no_write(deployed: Deployed) -> None:
    deployed.calls.clear()
    report = deployed.engine().converge("deploy", Mode.DEPLOY)
    assert exit_code(report) == 0
    assert deployed.calls.writes() == []


def _delete_rule(client: Any, name: str) -> None:
    ids = [t["Id"] for t in client.list_targets_by_rule(Rule=name)["Targets"]]
    if ids:
        client.remove_targets(Rule=name, Ids=ids)
    client.delete_rule(Name=name)


def test_drift__a_deleted_rule_of_each_source__found_repaired_and_reported_as_tamper(deployed: Deployed) -> None:
    names = deployed.config.names
    sqs, url = deployed.subscribe_topic()
    _delete_rule(deployed.client("events"), names.org_watch_rule)  # organizations
    _delete_rule(deployed.client("events", region=IC_REGION), names.ic_rule)  # identity-center
    member_events = deployed.client("events", MEMBER)  # root-activity and sts: branches of the member rule
    iam_only = {"source": ["aws.iam"]}
    member_events.put_rule(Name=names.member_rule, EventPattern=json.dumps(iam_only), State="ENABLED")
    # Each rule's watchdog reports it, once: per deleted rule RemoveTargets and DeleteRule (the organization
    # watch in us-east-1, Identity Center in its region), and the member rule's PutRule.
    messages = deployed.topic_messages(sqs, url)
    tamper = [m.split(" by ", 1)[0] for m in messages if "TAMPER ALERT" in m]
    assert sorted(tamper) == sorted(
        [f'"[orgalerts] TAMPER ALERT (HIGH) in account {MANAGEMENT}: {action}' for action in
         ("RemoveTargets", "DeleteRule", "RemoveTargets", "DeleteRule")]
        + [f'"[orgalerts] TAMPER ALERT (HIGH) in account {MEMBER}: PutRule']
    )  # fmt: skip
    assert len(tamper) == len(messages)  # each change once, as TAMPER, and no other alert
    drift = deployed.engine().converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 3
    found = " | ".join(c for s in drift.sides() for c in s.changes)
    assert f"default/{names.org_watch_rule}" in found and f"default/{names.ic_rule}" in found
    assert any(s.account_id == MEMBER and s.changes for s in drift.accounts)
    repaired = deployed.engine().converge("repair", Mode.REPAIR)
    assert _errors(repaired) == [] and exit_code(repaired) == 0
    assert exit_code(deployed.engine().converge("drift", Mode.DRIFT)) == 0


def _rule_names(client: Any) -> set[str]:
    return {r["Name"] for r in client.list_rules(NamePrefix="orgalerts-")["Rules"]}


def test_sources_off__next_deploy_removes_their_rules__then_teardown_removes_the_rest(deployed: Deployed) -> None:
    names = deployed.config.names
    management, ic = deployed.client("events"), deployed.client("events", region=IC_REGION)
    assert {names.org_watch_rule, names.org_watchdog_rule} <= _rule_names(management)
    assert _rule_names(ic) == {names.ic_rule, names.ic_watchdog_rule}

    off = with_sources(deployed.config, ("iam",))
    plan = deployed.engine(off).converge("plan", Mode.PLAN)
    assert exit_code(plan) == 3
    assert _errors(deployed.engine(off).converge("deploy", Mode.DEPLOY)) == []
    assert _rule_names(ic) == set()
    assert names.org_watchdog_rule not in _rule_names(management)
    member = deployed.client("events", MEMBER).describe_rule(Name=names.member_rule)
    assert "aws.signin" not in member["EventPattern"] and "aws.sts" not in member["EventPattern"]
    assert member["State"] == "ENABLED"
    assert exit_code(deployed.engine(off).converge("drift", Mode.DRIFT)) == 0

    assert _errors(deployed.engine().converge("deploy", Mode.DEPLOY)) == []  # back on, then teardown
    assert _errors(deployed.engine().remove("teardown", None)) == []
    assert _rule_names(ic) == set() and _rule_names(management) == set()
