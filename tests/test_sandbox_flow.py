"""The sandbox end to end: a seeded organization on a local endpoint, and an IAM call that becomes an
alert on a queue through member rule -> central bus -> central rule -> SNS -> SQS."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import account_client

from orgalerts.sandbox import Sandbox, SandboxAccount, SandboxOU, SandboxSpec

ORG = "o-sandbox001"
ROOT = "r-sbx0"
OU_WORKLOADS = "ou-sbx0-workload"
OU_PROD = "ou-sbx0-prod0001"
NOTIFY = "222222222222"  # notification account, in the root
MEMBER = "333333333333"  # member in the nested OU
CLOSED = "444444444444"  # suspended, in the parent OU

SPEC = SandboxSpec(
    organization_id=ORG,
    root_id=ROOT,
    management_account_id="123456789012",
    root_accounts=(SandboxAccount(NOTIFY, "notifications"),),
    ous=(
        SandboxOU(
            OU_WORKLOADS,
            "Workloads",
            accounts=(SandboxAccount(CLOSED, "retired", "SUSPENDED"),),
            ous=(SandboxOU(OU_PROD, "Prod", accounts=(SandboxAccount(MEMBER, "app"),)),),
        ),
    ),
)

FORWARD_PATTERN = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"readOnly": [False]},
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SPEC) as sb:
        yield sb


def client(sb: Sandbox, service: str, account: str | None = None) -> Any:
    """A client for `account` (assumed OrganizationAccountAccessRole) or the management account."""
    return account_client(service, account, endpoint_url=sb.endpoint_url)


# --------------------------------------------------------------------------------------------------
# The organization


def test_listens_on_loopback_only(sandbox: Sandbox) -> None:
    url = urlparse(sandbox.endpoint_url)
    assert url.scheme == "http" and url.hostname == "127.0.0.1" and url.port
    with socket.create_connection(("127.0.0.1", url.port), timeout=2):
        pass
    assert "127.0.0.1" in sandbox.banner() and "no AWS account is touched" in sandbox.banner()


def test_organization_has_exactly_the_spec_ids(sandbox: Sandbox) -> None:
    org = client(sandbox, "organizations")
    described = org.describe_organization()["Organization"]
    assert described["Id"] == ORG
    assert described["MasterAccountId"] == "123456789012"
    assert [r["Id"] for r in org.list_roots()["Roots"]] == [ROOT]
    accounts = {a["Id"]: a for a in org.list_accounts()["Accounts"]}
    assert set(accounts) == {"123456789012", NOTIFY, MEMBER, CLOSED}
    assert accounts[CLOSED]["Status"] == "SUSPENDED"
    assert accounts[MEMBER]["Status"] == "ACTIVE" and accounts[MEMBER]["Name"] == "app"


def test_nested_ou_parentage(sandbox: Sandbox) -> None:
    org = client(sandbox, "organizations")
    top = org.list_organizational_units_for_parent(ParentId=ROOT)["OrganizationalUnits"]
    assert [(o["Id"], o["Name"]) for o in top] == [(OU_WORKLOADS, "Workloads")]
    nested = org.list_organizational_units_for_parent(ParentId=OU_WORKLOADS)["OrganizationalUnits"]
    assert [o["Id"] for o in nested] == [OU_PROD]
    assert org.list_parents(ChildId=MEMBER)["Parents"] == [{"Id": OU_PROD, "Type": "ORGANIZATIONAL_UNIT"}]
    assert org.list_parents(ChildId=CLOSED)["Parents"][0]["Id"] == OU_WORKLOADS
    assert org.list_parents(ChildId=NOTIFY)["Parents"][0]["Id"] == ROOT
    # A member account sees the same organization.
    assert client(sandbox, "organizations", MEMBER).describe_organization()["Organization"]["Id"] == ORG


# --------------------------------------------------------------------------------------------------
# The alert pipeline, set up by hand


@pytest.fixture(scope="module")
def pipeline(sandbox: Sandbox) -> dict[str, Any]:
    events_c = client(sandbox, "events", NOTIFY)
    sns_c = client(sandbox, "sns", NOTIFY)
    sqs_c = client(sandbox, "sqs", NOTIFY)

    bus_arn = events_c.create_event_bus(Name="orgalerts-central")["EventBusArn"]
    bus_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowOrg",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            }
        ],
    }
    events_c.put_permission(EventBusName="orgalerts-central", Policy=json.dumps(bus_policy))

    topic_arn = sns_c.create_topic(Name="orgalerts")["TopicArn"]
    rule_arn = events_c.put_rule(
        Name="orgalerts-alert", EventBusName="orgalerts-central", EventPattern=json.dumps(FORWARD_PATTERN)
    )["RuleArn"]
    sns_c.set_topic_attributes(
        TopicArn=topic_arn,
        AttributeName="Policy",
        AttributeValue=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "events",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                    }
                ],
            }
        ),
    )
    queue_url = sqs_c.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs_c.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns_c.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    events_c.put_targets(
        Rule="orgalerts-alert",
        EventBusName="orgalerts-central",
        Targets=[
            {
                "Id": "sns",
                "Arn": topic_arn,
                "InputTransformer": {
                    "InputPathsMap": {
                        "account": "$.account",
                        "event": "$.detail.eventName",
                        "who": "$.detail.userIdentity.arn",
                        "user": "$.detail.requestParameters.userName",
                    },
                    "InputTemplate": '"IAM change in <account>: <event> by <who> (user <user>)"',
                },
            }
        ],
    )

    member_events = client(sandbox, "events", MEMBER)
    member_iam = client(sandbox, "iam", MEMBER)
    role_arn = member_iam.create_role(
        RoleName="orgalerts-forwarder",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    member_events.put_rule(Name="orgalerts-forward", EventPattern=json.dumps(FORWARD_PATTERN))
    member_events.put_targets(
        Rule="orgalerts-forward", Targets=[{"Id": "central", "Arn": bus_arn, "RoleArn": role_arn}]
    )
    return {
        "queue_url": queue_url,
        "sqs": sqs_c,
        "events": events_c,
        "bus_policy": bus_policy,
        "member_iam": member_iam,
        "member_arn": client(sandbox, "sts", MEMBER).get_caller_identity()["Arn"],
    }


def drain(p: dict[str, Any]) -> list[str]:
    out: list[str] = []
    while True:
        got = p["sqs"].receive_message(QueueUrl=p["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(m["Body"])
            p["sqs"].delete_message(QueueUrl=p["queue_url"], ReceiptHandle=m["ReceiptHandle"])


def test_create_user_in_member_account_alerts_once(pipeline: dict[str, Any]) -> None:
    drain(pipeline)
    pipeline["member_iam"].create_user(UserName="Bob")
    messages = drain(pipeline)
    assert len(messages) == 1, messages
    body = messages[0]
    assert MEMBER in body and "CreateUser" in body and "user Bob" in body
    assert pipeline["member_arn"] in body  # arn:aws:sts::333333333333:assumed-role/OrganizationAccountAccessRole/test
    assert "assumed-role/OrganizationAccountAccessRole" in body


def test_read_only_call_does_not_alert(pipeline: dict[str, Any]) -> None:
    drain(pipeline)
    pipeline["member_iam"].create_user(UserName="Carol")
    drain(pipeline)
    pipeline["member_iam"].get_user(UserName="Carol")
    pipeline["member_iam"].list_users()
    assert drain(pipeline) == []


def test_without_bus_policy_nothing_arrives(pipeline: dict[str, Any]) -> None:
    drain(pipeline)
    pipeline["events"].remove_permission(EventBusName="orgalerts-central", RemoveAllPermissions=True)
    try:
        pipeline["member_iam"].create_user(UserName="Dave")
        assert drain(pipeline) == []
    finally:
        pipeline["events"].put_permission(EventBusName="orgalerts-central", Policy=json.dumps(pipeline["bus_policy"]))
    pipeline["member_iam"].create_user(UserName="Erin")
    assert len(drain(pipeline)) == 1
