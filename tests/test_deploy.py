"""Deploy on moto (in-process), several accounts through assume-role."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import MANAGEMENT, CallLog, SimOrg, make_engine

from orgalerts.cli.render import to_json
from orgalerts.engine.results import Mode, exit_code
from orgalerts.model import routes


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _deny_assume(account_id: str) -> Any:
    def hook(_: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if operation == "AssumeRole" and f"::{account_id}:" in params.get("RoleArn", ""):
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}}, operation
            )

    return hook


def test_deploy__fresh_org_with_nested_ous__every_in_scope_account_converges(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    result = make_engine(sim_org.config(), call_log).converge("deploy", Mode.DEPLOY)
    document = to_json(result)

    assert exit_code(result) == 0
    statuses = {a["account_id"]: a["status"] for a in document["accounts"]}
    assert {a: statuses[a] for a in sim_org.in_scope} == dict.fromkeys(sim_org.in_scope, "created")
    assert statuses[sim_org.accounts["excluded"]] == "skipped"
    assert sim_org.accounts["outside"] not in statuses
    assert document["central"]["status"] == "created"
    assert document["summary"]["created"] == 5 and document["summary"]["failed"] == 0

    for account in sim_org.in_scope:
        iam = sim_org.client("iam", account)
        events = sim_org.client("events", account)
        role = iam.get_role(RoleName="orgalerts-forwarder")["Role"]
        assert {"Key": "managed-by", "Value": "orgalerts"} in role["Tags"]
        rule = events.describe_rule(Name="orgalerts-forward", EventBusName="default")
        assert rule["State"] == "ENABLED"
        (target,) = events.list_targets_by_rule(Rule="orgalerts-forward", EventBusName="default")["Targets"]
        notification = sim_org.accounts["notification"]
        assert target["Arn"] == f"arn:aws:events:us-east-1:{notification}:event-bus/orgalerts-central"
        assert target["RoleArn"] == f"arn:aws:iam::{account}:role/orgalerts-forwarder"

    # Excluded and out-of-scope accounts received no call at all.
    for name in ("excluded", "outside"):
        assert call_log.for_account(sim_org.accounts[name]) == []


def test_deploy__central_side__bus_policy_scoped_to_ous_topic_policy_and_subscription(sim_org: SimOrg) -> None:
    make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)
    notification = sim_org.accounts["notification"]
    events = sim_org.client("events", notification)
    sns = sim_org.client("sns", notification)

    bus = events.describe_event_bus(Name="orgalerts-central")
    policy = json.loads(bus["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"OrgAlertsTargetOUs", "OrgAlertsIncludedAccounts"}
    # The management account (outside the OUs) forwards the account-change events; only it is added.
    assert _as_list(by_sid["OrgAlertsIncludedAccounts"]["Principal"]["AWS"]) == [f"arn:aws:iam::{MANAGEMENT}:root"]
    statement = by_sid["OrgAlertsTargetOUs"]
    assert _as_list(statement["Action"]) == ["events:PutEvents"]
    condition = statement["Condition"]
    assert _as_list(condition["StringEquals"]["aws:PrincipalOrgID"]) == [sim_org.org_id]
    paths = condition["ForAnyValue:StringLike"]["aws:PrincipalOrgPaths"]
    assert sorted(paths) == sorted(
        [
            f"{sim_org.org_id}/{sim_org.root_id}/{sim_org.ous['Security']}/*",
            f"{sim_org.org_id}/{sim_org.root_id}/{sim_org.ous['Workloads']}/*",
        ]
    )

    topic_arn = f"arn:aws:sns:us-east-1:{notification}:orgalerts-alerts"
    route_names = [f"orgalerts-{r.name}" for r in routes.routes(skip_role_prefix="orgalerts-")]
    route_arns = []
    for name in route_names:  # one rule per alert route, each with the topic as its one target
        rule = events.describe_rule(Name=name, EventBusName="orgalerts-central")
        route_arns.append(rule["Arn"])
        (target,) = events.list_targets_by_rule(Rule=name, EventBusName="orgalerts-central")["Targets"]
        assert target["Arn"] == topic_arn and "InputTransformer" in target
    listed = events.list_rules(EventBusName="orgalerts-central", NamePrefix="orgalerts-alert")["Rules"]
    assert sorted(r["Name"] for r in listed) == sorted(route_names)
    topic_policy = json.loads(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["Policy"])
    (publish,) = topic_policy["Statement"]
    assert _as_list(publish["Principal"]["Service"]) == ["events.amazonaws.com"]
    tamper = [events.describe_rule(Name=n, EventBusName="orgalerts-central")["Arn"]
              for n in ("orgalerts-tamper", "orgalerts-tamper-anon")]  # fmt: skip
    watch = [events.describe_rule(Name=n, EventBusName="default")["Arn"]
             for n in ("orgalerts-central-watch", "orgalerts-central-watch-anon")]  # fmt: skip
    joined = events.describe_rule(Name="orgalerts-account-change", EventBusName="orgalerts-central")
    assert sorted(_as_list(publish["Condition"]["ArnEquals"]["aws:SourceArn"])) == sorted(
        [*route_arns, *tamper, *watch, joined["Arn"]]
    )
    subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "secops@example.com")]


def test_deploy__second_run__every_account_unchanged_and_zero_writes(sim_org: SimOrg, call_log: CallLog) -> None:
    make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)

    result = make_engine(sim_org.config(), call_log).converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 0
    assert {a.status for a in result.accounts if a.status != "skipped"} == {"unchanged"}
    assert result.central is not None and result.central.status == "unchanged"
    assert call_log.writes() == []
    # Budget: the floor per member: the one role (GetRole carries its tags, the one-role record among them) and its
    # policy, both rules in one ListRules (ownership in the Description), each rule's targets, the dead-letter queue
    # in one GetQueueAttributes (built URL, ownership in the policy's Id). No look for the earlier versions' second
    # role: the role was made with the record that none was left (sides/member.py).
    per_member = [c.operation for c in call_log.for_account(sim_org.accounts["prod1"])]
    floor = ["GetRole", "GetRolePolicy", "ListRules", "ListTargetsByRule", "ListTargetsByRule"]
    assert sorted(per_member) == sorted([*floor, "GetQueueAttributes"])


def test_deploy__role_cannot_be_assumed_in_one_account__others_still_converge(sim_org: SimOrg) -> None:
    denied = sim_org.accounts["prod2"]
    engine = make_engine(sim_org.config())
    engine.ctx.gateway.add_hook(_deny_assume(denied))

    result = engine.converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 1
    by_id = {a.account_id: a for a in result.accounts}
    assert by_id[denied].status == "failed"
    assert by_id[denied].error is not None and by_id[denied].error.startswith("AccessDenied:")
    others = [a for a in sim_org.in_scope if a != denied]
    assert all(by_id[a].status == "created" for a in others)
    for account in others:
        sim_org.client("events", account).describe_rule(Name="orgalerts-forward")


def test_deploy__unmanaged_rule_with_managed_name__account_fails_and_rule_untouched(sim_org: SimOrg) -> None:
    victim = sim_org.accounts["shared"]
    events = sim_org.client("events", victim)
    events.put_rule(Name="orgalerts-forward", EventPattern='{"source":["my.app"]}', State="DISABLED")
    before = events.describe_rule(Name="orgalerts-forward")

    result = make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)

    by_id = {a.account_id: a for a in result.accounts}
    assert by_id[victim].status == "failed"
    assert "not managed by orgalerts" in (by_id[victim].error or "")
    after = events.describe_rule(Name="orgalerts-forward")
    assert (after["EventPattern"], after["State"]) == (before["EventPattern"], before["State"])
    assert events.list_targets_by_rule(Rule="orgalerts-forward")["Targets"] == []
    with pytest.raises(ClientError):
        sim_org.client("iam", victim).get_role(RoleName="orgalerts-forwarder")
    assert all(by_id[a].status == "created" for a in sim_org.in_scope if a != victim)
    assert exit_code(result) == 1


def test_deploy__management_account_in_scope__no_role_assumed_into_itself(sim_org: SimOrg, call_log: CallLog) -> None:
    config = sim_org.config(organization={"ous": [sim_org.ous["Security"]], "include_accounts": [MANAGEMENT]})
    assumed: list[str] = []
    engine = make_engine(config, call_log)
    engine.ctx.gateway.add_hook(
        lambda _a, _s, op, params: assumed.append(params["RoleArn"]) if op == "AssumeRole" else None
    )

    result = engine.converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 0
    assert {a.account_id: a.status for a in result.accounts}[MANAGEMENT] == "created"
    assert not any(f"::{MANAGEMENT}:" in arn for arn in assumed)
    boto3.client("events", region_name="us-east-1").describe_rule(Name="orgalerts-forward")


def test_deploy__no_email_recipients__said_in_the_report(sim_org: SimOrg) -> None:
    notification = {"account_id": sim_org.accounts["notification"], "emails": []}
    result = make_engine(sim_org.config(notification=notification)).converge("deploy", Mode.DEPLOY)
    assert result.central is not None
    assert any("notification.emails is empty" in note for note in result.central.notes)
