"""Onboard, offboard, teardown, and ownership: nothing unmanaged is ever touched."""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import MANAGEMENT, CallLog, SimOrg, make_context, make_engine

from orgalerts.cli.render import to_json
from orgalerts.commands.lifecycle import check_onboard
from orgalerts.engine.results import Mode, exit_code
from orgalerts.errors import UsageError

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def _deploy(sim_org: SimOrg) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0


def _user_resources(sim_org: SimOrg, account: str) -> None:
    sim_org.client("events", account).put_rule(Name="team-rule", EventPattern='{"source":["my.app"]}')
    sim_org.client("iam", account).create_role(RoleName="team-role", AssumeRolePolicyDocument=TRUST)
    sim_org.client("sns", account).create_topic(Name="team-topic")


def _assert_user_resources(sim_org: SimOrg, account: str) -> None:
    assert sim_org.client("events", account).describe_rule(Name="team-rule")["EventPattern"] == '{"source":["my.app"]}'
    sim_org.client("iam", account).get_role(RoleName="team-role")
    topics = [t["TopicArn"] for t in sim_org.client("sns", account).list_topics()["Topics"]]
    assert any(t.endswith(":team-topic") for t in topics)


def test_onboard__new_account_in_nested_ou__deployed_and_no_other_member_called(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    _deploy(sim_org)
    newcomer = sim_org.add_account("newcomer", "Deep")
    engine = make_engine(sim_org.config(), call_log)

    scope = check_onboard(engine.ctx, newcomer)
    result = engine.converge("onboard", Mode.DEPLOY, only=[newcomer], scope=scope)

    assert exit_code(result) == 0
    document = to_json(result)
    assert [(a["account_id"], a["status"]) for a in document["accounts"]] == [(newcomer, "created")]
    sim_org.client("events", newcomer).describe_rule(Name="orgalerts-forward")
    notification = sim_org.accounts["notification"]
    touched = {c.account_id for c in call_log.calls} - {MANAGEMENT, newcomer, ""}  # "" = GetCallerIdentity
    assert touched == {notification}  # the central side's reads, nothing else
    # The central side's reads: its bus, rules, topic, queues, and the API-destination role (iam; read whatever
    # the config, so a removed destination's role is found and removed).
    assert {c.service for c in call_log.for_account(notification)} <= {"events", "sns", "sqs", "iam"}
    assert call_log.writes(notification) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [("excluded", "excluded"), ("outside", "not under the configured OUs")],
)
def test_onboard__account_not_in_scope__usage_error_says_why(sim_org: SimOrg, name: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        check_onboard(make_context(sim_org.config()), sim_org.accounts[name])


def test_onboard__unknown_or_suspended_account__usage_error(sim_org: SimOrg) -> None:
    engine = make_engine(sim_org.config())
    with pytest.raises(UsageError, match="not in this organization"):
        check_onboard(engine.ctx, "000000000000")
    closed = sim_org.add_account("closing", "Prod")
    sim_org.client("organizations").close_account(AccountId=closed)
    with pytest.raises(UsageError, match="SUSPENDED"):
        check_onboard(engine.ctx, closed)


def test_offboard__removes_that_accounts_managed_resources_only(sim_org: SimOrg) -> None:
    _deploy(sim_org)
    leaver = sim_org.accounts["prod1"]
    _user_resources(sim_org, leaver)

    result = make_engine(sim_org.config()).remove("offboard", [leaver])

    assert exit_code(result) == 0
    assert [(a.account_id, a.status) for a in result.accounts] == [(leaver, "removed")]
    assert sim_org.client("events", leaver).list_rules(NamePrefix="orgalerts-")["Rules"] == []
    assert [
        r["RoleName"]
        for r in sim_org.client("iam", leaver).list_roles()["Roles"]
        if r["RoleName"].startswith("orgalerts")
    ] == []
    _assert_user_resources(sim_org, leaver)
    sim_org.client("events", sim_org.accounts["prod2"]).describe_rule(Name="orgalerts-forward")


def test_teardown__removes_everything_managed_keeps_user_resources_and_is_idempotent(sim_org: SimOrg) -> None:
    _deploy(sim_org)
    member, notification = sim_org.accounts["deep1"], sim_org.accounts["notification"]
    for account in (member, notification):
        _user_resources(sim_org, account)
    # A same-named but unmanaged rule in an out-of-scope account must survive too.
    sim_org.client("events", sim_org.accounts["outside"]).put_rule(
        Name="orgalerts-forward", EventPattern='{"source":["x"]}'
    )

    first = make_engine(sim_org.config()).remove("teardown", None)
    assert exit_code(first) == 0
    assert first.central is not None and first.central.status == "removed"

    for account in [*sim_org.in_scope, MANAGEMENT]:
        events = sim_org.client("events", account)
        assert events.list_rules(NamePrefix="orgalerts-")["Rules"] == []
        assert [b["Name"] for b in events.list_event_buses()["EventBuses"] if b["Name"].startswith("orgalerts")] == []
        roles = sim_org.client("iam", account).list_roles()["Roles"]
        assert [r["RoleName"] for r in roles if r["RoleName"].startswith("orgalerts")] == []
        topics = sim_org.client("sns", account).list_topics()["Topics"]
        assert [t for t in topics if "orgalerts" in t["TopicArn"]] == []
    assert sim_org.client("sns", notification).list_subscriptions()["Subscriptions"] == []
    for account in (member, notification):
        _assert_user_resources(sim_org, account)
    assert (
        sim_org.client("events", sim_org.accounts["outside"]).describe_rule(Name="orgalerts-forward")["EventPattern"]
        == '{"source":["x"]}'
    )

    second = make_engine(sim_org.config()).remove("teardown", None)
    assert exit_code(second) == 0
    assert {a.status for a in second.accounts} <= {"unchanged", "skipped"}
    assert second.central is not None and second.central.status == "unchanged"
    boto3.client("sts", region_name="us-east-1").get_caller_identity()
