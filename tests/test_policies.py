"""Least privilege, asserted on the deployed state: every policy orgalerts writes admits only what it must."""

from __future__ import annotations

import json
from typing import Any

from conftest import MANAGEMENT, SimOrg, make_engine

from orgalerts.engine.results import Mode, exit_code
from orgalerts.model import routes


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _deploy(sim_org: SimOrg) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0


def test_policy__forwarder_roles__trust_only_eventbridge_for_this_account_and_only_put_events_on_the_bus(
    sim_org: SimOrg,
) -> None:
    _deploy(sim_org)
    member = sim_org.accounts["prod1"]
    bus_arn = f"arn:aws:events:us-east-1:{sim_org.accounts['notification']}:event-bus/orgalerts-central"
    iam = sim_org.client("iam", member)
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("orgalerts-")] == [
        "orgalerts-forwarder"
    ]  # one role serves both member targets
    for role in ("orgalerts-forwarder",):
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        (statement,) = trust["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": _list(statement["Principal"]["Service"])}
        assert _list(statement["Principal"]["Service"]) == ["events.amazonaws.com"]
        assert _list(statement["Action"]) == ["sts:AssumeRole"]
        assert _list(statement["Condition"]["StringEquals"]["aws:SourceAccount"]) == [member]
        assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["orgalerts-put-events"]
        document = iam.get_role_policy(RoleName=role, PolicyName="orgalerts-put-events")["PolicyDocument"]
        (allow,) = document["Statement"]
        assert (allow["Effect"], _list(allow["Action"]), _list(allow["Resource"])) == (
            "Allow",
            ["events:PutEvents"],
            [bus_arn],
        )


def test_policy__bus__admits_only_the_configured_ous_and_included_accounts(sim_org: SimOrg) -> None:
    config = sim_org.raw_config()
    config["organization"]["include_accounts"] = [sim_org.accounts["outside"]]
    from orgalerts.config import validate_config

    assert exit_code(make_engine(validate_config(config, "c.yaml")).converge("deploy", Mode.DEPLOY)) == 0
    notification = sim_org.accounts["notification"]
    policy = json.loads(sim_org.client("events", notification).describe_event_bus(Name="orgalerts-central")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"OrgAlertsTargetOUs", "OrgAlertsIncludedAccounts"}
    for statement in by_sid.values():
        assert statement["Effect"] == "Allow" and _list(statement["Action"]) == ["events:PutEvents"]
    ous = by_sid["OrgAlertsTargetOUs"]
    assert ous["Principal"] == "*"  # bounded by both conditions below, never by account lists
    assert _list(ous["Condition"]["StringEquals"]["aws:PrincipalOrgID"]) == [sim_org.org_id]
    assert sorted(_list(ous["Condition"]["ForAnyValue:StringLike"]["aws:PrincipalOrgPaths"])) == sorted(
        f"{sim_org.org_id}/{sim_org.root_id}/{sim_org.ous[name]}/*" for name in ("Security", "Workloads")
    )
    included = _list(by_sid["OrgAlertsIncludedAccounts"]["Principal"]["AWS"])
    assert sorted(included) == sorted(
        [f"arn:aws:iam::{sim_org.accounts['outside']}:root", f"arn:aws:iam::{MANAGEMENT}:root"]
    )


def test_policy__topic__only_eventbridge_only_for_orgalerts_central_rules(sim_org: SimOrg) -> None:
    _deploy(sim_org)
    notification = sim_org.accounts["notification"]
    topic_arn = f"arn:aws:sns:us-east-1:{notification}:orgalerts-alerts"
    policy = json.loads(
        sim_org.client("sns", notification).get_topic_attributes(TopicArn=topic_arn)["Attributes"]["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": _list(statement["Principal"]["Service"])}
    assert _list(statement["Principal"]["Service"]) == ["events.amazonaws.com"]
    assert _list(statement["Action"]) == ["sns:Publish"] and _list(statement["Resource"]) == [topic_arn]
    rules = sorted(_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"]))
    assert rules and all(f":{notification}:rule/" in r and "/orgalerts-" in r for r in rules)


def test_policy__dead_letter_queues__only_eventbridge_only_for_their_source_rules(sim_org: SimOrg) -> None:
    _deploy(sim_org)
    member, notification = sim_org.accounts["prod2"], sim_org.accounts["notification"]
    for account, queue, expected_rules in [
        (member, "orgalerts-forward-dlq", ["rule/orgalerts-forward", "rule/orgalerts-watchdog"]),
        (
            notification,
            "orgalerts-central-dlq",
            [
                "rule/orgalerts-central-watch",
                "rule/orgalerts-central-watch-anon",
                "rule/orgalerts-central/orgalerts-account-change",
                "rule/orgalerts-central/orgalerts-tamper",
                "rule/orgalerts-central/orgalerts-tamper-anon",
                *(
                    f"rule/orgalerts-central/orgalerts-{route.name}"
                    for route in routes.routes(skip_role_prefix="orgalerts-")
                ),
            ],
        ),
    ]:
        sqs = sim_org.client("sqs", account)
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        (statement,) = json.loads(attributes["Policy"])["Statement"]
        assert _list(statement["Principal"]["Service"]) == ["events.amazonaws.com"]
        assert _list(statement["Action"]) == ["sqs:SendMessage"]
        assert _list(statement["Resource"]) == [attributes["QueueArn"]]
        sources = sorted(_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"]))
        assert sources == sorted(f"arn:aws:events:us-east-1:{account}:{rule}" for rule in expected_rules)
        assert attributes["MessageRetentionPeriod"] == "1209600"
