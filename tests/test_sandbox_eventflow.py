"""The event router (shim over moto's EventBridge) and the CloudTrail emulation, piece by piece."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import account_client

from orgalerts.sandbox import Sandbox, SandboxAccount, SandboxOU, SandboxSpec
from orgalerts.sandbox.cloudtrail import REDACTED_ACCESS_KEY_ID, query_parameters
from orgalerts.sandbox.eventflow import deliver, json_path, render_input_template, render_target_input

ORG, ROOT = "o-flowtest01", "r-flow"
OU_APPS, OU_PROD = "ou-flow-apps0001", "ou-flow-prod0001"
CENTRAL = "210000000001"  # root
ROOT_MEMBER = "210000000002"  # root, outside the OUs
PROD = "210000000003"  # Apps/Prod

SPEC = SandboxSpec(
    organization_id=ORG,
    root_id=ROOT,
    management_account_id="123456789012",
    root_accounts=(SandboxAccount(CENTRAL, "central"), SandboxAccount(ROOT_MEMBER, "loose")),
    ous=(SandboxOU(OU_APPS, "Apps", (), (SandboxOU(OU_PROD, "Prod", (SandboxAccount(PROD, "prod"),), ()),)),),
)

# shared/fixtures/cloudtrail-iam-createuser.json (envelope as EventBridge delivers it), with the
# account set per test.
FIXTURE: dict[str, Any] = {
    "version": "0",
    "id": "d0fbe1ff-e281-4f61-ea20-b493c9a47826",
    "detail-type": "AWS API Call via CloudTrail",
    "source": "aws.iam",
    "account": "123456789012",
    "time": "2026-03-24T21:12:02Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "EX_PRINCIPAL_ID",
            "arn": "arn:aws:iam::123456789012:user/Alice",
            "accountId": "123456789012",
            "accessKeyId": "EXAMPLE_KEY_ID",
            "userName": "Alice",
        },
        "eventTime": "2026-03-24T21:11:59Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"userName": "Bob"},
        "responseElements": None,
        "requestID": "a4b9f149-7e58-4bf1-9d28-e56ddfda1392",
        "eventID": "38c92063-09e4-4397-a96a-6a506188965f",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    },
}

PATTERN = json.dumps({"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"]})


def fixture_event(account: str, read_only: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(FIXTURE)
    event["account"] = account
    event["detail"]["readOnly"] = read_only
    return event


# --------------------------------------------------------------------------------------------------
# Pure pieces


def test_input_template_json_and_strings() -> None:
    values = {"instance": "i-0123456789", "state": "RUNNING", "n": 9, "gone": json_path({}, "$.x")}
    assert (
        render_input_template('"instance <instance> is in <state>"', values) == '"instance i-0123456789 is in RUNNING"'
    )
    out = render_input_template('{"instance": <instance>, "msg": "<instance> is \\"<state>\\"", "n": <n>}', values)
    assert json.loads(out) == {"instance": "i-0123456789", "msg": 'i-0123456789 is "RUNNING"', "n": 9}
    assert out.startswith('{"instance":"i-0123456789","msg"')  # minified
    assert render_input_template('"x<gone>y <undefined>"', values) == '"xy <undefined>"'
    assert render_input_template("<instance> is in state <state>", values) == "i-0123456789 is in state RUNNING"


def test_text_template_starting_with_a_bracket_is_text() -> None:
    values = {"a": "x", "p": {"userName": "Bob"}, "none": None}
    assert render_input_template("[tag] <a> did <p> <none>.", values) == '[tag] x did {"userName":"Bob"} .'


def test_shipped_alert_template_renders_like_the_product_renderer() -> None:
    from orgalerts.model import messages

    event = fixture_event("210000000009")
    target = {"InputTransformer": messages.alert_input_transformer()}
    assert render_target_input(target, event, "arn:r", "r") == messages.render(event)


def test_target_input_variants() -> None:
    event = fixture_event("210000000009")
    assert json.loads(render_target_input({}, event, "arn:r", "r")) == event
    assert render_target_input({"Input": '{"a":1}'}, event, "arn:r", "r") == '{"a":1}'
    assert json.loads(render_target_input({"InputPath": "$.detail.requestParameters"}, event, "a", "r")) == {
        "userName": "Bob"
    }
    transformer = {
        "InputPathsMap": {"acct": "$.account", "who": "$.detail.userIdentity.arn"},
        "InputTemplate": '{"text": "<acct> <who> <aws.events.rule-name>", "raw": <aws.events.event.json>}',
    }
    out = json.loads(render_target_input({"InputTransformer": transformer}, event, "arn:r", "alert"))
    assert out["text"] == "210000000009 arn:aws:iam::123456789012:user/Alice alert"
    assert out["raw"]["detail"]["eventName"] == "CreateUser"


def test_json_path() -> None:
    doc = {"a": {"b-c": [{"d": 1}]}}
    assert json_path(doc, "$.a.b-c[0].d") == 1
    assert json_path(doc, "$") == doc
    assert json_path(doc, "$.a.x") is json_path(doc, "$.nope")


def test_query_parameters_nest_members() -> None:
    pairs = [
        ("Action", "CreateUser"),
        ("Version", "2010-05-08"),
        ("UserName", "Bob"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "x"),
        ("Tags.member.2.Key", "b"),
    ]
    assert query_parameters(pairs) == {"UserName": "Bob", "Tags": [{"Key": "team", "Value": "x"}, {"Key": "b"}]}


# --------------------------------------------------------------------------------------------------
# Against a sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SPEC) as sb:
        yield sb


def client(sb: Sandbox, service: str, account: str | None = None, region: str = "us-east-1") -> Any:
    return account_client(service, account, endpoint_url=sb.endpoint_url, region=region, session_name="flow")


class Queue:
    def __init__(self, sb: Sandbox, account: str | None, name: str) -> None:
        self.sqs = client(sb, "sqs", account)
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def drain(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            )
            if not got.get("Messages"):
                return out
            for m in got["Messages"]:
                out.append(m)
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="module")
def central(sandbox: Sandbox) -> dict[str, Any]:
    """Central bus scoped to OU Apps by org path; its rule sends the raw event to a queue."""
    events = client(sandbox, "events", CENTRAL)
    bus_arn = events.create_event_bus(Name="central")["EventBusArn"]
    apps_path = f"{ORG}/{ROOT}/{OU_APPS}/*"
    events.put_permission(
        EventBusName="central",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Apps",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "events:PutEvents",
                        "Resource": bus_arn,
                        "Condition": {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [apps_path]}},
                    }
                ],
            }
        ),
    )
    inbox = Queue(sandbox, CENTRAL, "central-inbox")
    events.put_rule(
        Name="all", EventBusName="central", EventPattern=PATTERN, State="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    )
    events.put_targets(Rule="all", EventBusName="central", Targets=[{"Id": "q", "Arn": inbox.arn}])
    return {"bus_arn": bus_arn, "inbox": inbox, "events": events}


def forwarder(
    sb: Sandbox,
    account: str,
    central: dict[str, Any],
    *,
    role: bool = True,
    state: str = "ENABLED",
    dlq: Queue | None = None,
) -> None:
    events = client(sb, "events", account)
    target: dict[str, Any] = {"Id": "central", "Arn": central["bus_arn"]}
    if role:
        iam = client(sb, "iam", account)
        try:
            target["RoleArn"] = iam.get_role(RoleName="fwd")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            target["RoleArn"] = iam.create_role(RoleName="fwd", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    if dlq is not None:
        target["DeadLetterConfig"] = {"Arn": dlq.arn}
    events.put_rule(Name="fwd", EventPattern=PATTERN, State=state)
    events.remove_targets(Rule="fwd", Ids=["central"])
    events.put_targets(Rule="fwd", Targets=[target])


def test_forwarded_fixture_event_keeps_its_account(sandbox: Sandbox, central: dict[str, Any]) -> None:
    forwarder(sandbox, PROD, central)
    central["inbox"].drain()
    deliver(PROD, "us-east-1", "default", fixture_event(PROD))
    got = [json.loads(m["Body"]) for m in central["inbox"].drain()]
    assert len(got) == 1
    assert got[0]["account"] == PROD and got[0]["id"] == FIXTURE["id"]
    assert got[0]["detail"] == fixture_event(PROD)["detail"]


def test_org_path_condition_refuses_account_outside_the_ou(sandbox: Sandbox, central: dict[str, Any]) -> None:
    dlq = Queue(sandbox, ROOT_MEMBER, "fwd-dlq")
    forwarder(sandbox, ROOT_MEMBER, central, dlq=dlq)
    central["inbox"].drain()
    deliver(ROOT_MEMBER, "us-east-1", "default", fixture_event(ROOT_MEMBER))
    assert central["inbox"].drain() == []
    dead = dlq.drain()
    assert len(dead) == 1
    assert json.loads(dead[0]["Body"])["id"] == FIXTURE["id"]
    attrs = dead[0]["MessageAttributes"]
    assert attrs["ERROR_CODE"]["StringValue"] == "NoPermissions"
    assert attrs["TARGET_ARN"]["StringValue"] == central["bus_arn"]


def test_cross_account_bus_target_needs_a_role(sandbox: Sandbox, central: dict[str, Any]) -> None:
    dlq = Queue(sandbox, PROD, "norole-dlq")
    forwarder(sandbox, PROD, central, role=False, dlq=dlq)
    try:
        central["inbox"].drain()
        deliver(PROD, "us-east-1", "default", fixture_event(PROD))
        assert central["inbox"].drain() == []
        assert "RoleArn" in dlq.drain()[0]["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]
    finally:
        forwarder(sandbox, PROD, central)


def test_read_only_events_need_the_all_management_events_state(sandbox: Sandbox, central: dict[str, Any]) -> None:
    central["inbox"].drain()
    forwarder(sandbox, PROD, central, state="ENABLED")
    deliver(PROD, "us-east-1", "default", fixture_event(PROD, read_only=True))
    assert central["inbox"].drain() == []
    forwarder(sandbox, PROD, central, state="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")
    try:
        deliver(PROD, "us-east-1", "default", fixture_event(PROD, read_only=True))
        assert len(central["inbox"].drain()) == 1
    finally:
        # (the GetRole call inside forwarder() is itself a read-only IAM event, forwarded by that state)
        forwarder(sandbox, PROD, central)
    client(sandbox, "events", PROD).disable_rule(Name="fwd")
    central["inbox"].drain()
    try:
        deliver(PROD, "us-east-1", "default", fixture_event(PROD))
        assert central["inbox"].drain() == []
    finally:
        client(sandbox, "events", PROD).enable_rule(Name="fwd")


def test_an_event_crosses_one_bus_only(sandbox: Sandbox, central: dict[str, Any]) -> None:
    """A central rule that forwards again (to a bus that would accept it) does not forward."""
    events = client(sandbox, "events", PROD)
    third_arn = events.create_event_bus(Name="third")["EventBusArn"]
    third_inbox = Queue(sandbox, PROD, "third-inbox")
    events.put_rule(Name="t", EventBusName="third", EventPattern=PATTERN)
    events.put_targets(Rule="t", EventBusName="third", Targets=[{"Id": "q", "Arn": third_inbox.arn}])
    central["events"].put_rule(Name="again", EventBusName="central", EventPattern=PATTERN)
    central["events"].put_targets(Rule="again", EventBusName="central", Targets=[{"Id": "b", "Arn": third_arn}])
    try:
        forwarder(sandbox, PROD, central)
        central["inbox"].drain()
        deliver(PROD, "us-east-1", "default", fixture_event(PROD))
        assert len(central["inbox"].drain()) == 1
        assert third_inbox.drain() == []
        deliver(PROD, "us-east-1", "third", fixture_event(PROD))  # the bus itself works
        assert len(third_inbox.drain()) == 1
    finally:
        central["events"].remove_targets(Rule="again", EventBusName="central", Ids=["b"])
        central["events"].delete_rule(Name="again", EventBusName="central")


def test_deliver_never_raises() -> None:
    deliver("999999999999", "us-east-1", "no-such-bus", {"id": "x"})
    deliver("999999999999", "us-east-1", "default", {"weird": object()})


def test_put_events_reaches_sns_and_keeps_the_caller_account(sandbox: Sandbox, central: dict[str, Any]) -> None:
    """moto's PutEvents raises on SNS targets; the sandbox routes it through the shim instead."""
    sns = client(sandbox, "sns", CENTRAL)
    topic = sns.create_topic(Name="custom")["TopicArn"]
    events = central["events"]
    pattern = json.dumps({"source": ["orgalerts.test"]})
    rule_arn = events.put_rule(Name="custom", EventBusName="central", EventPattern=pattern)["RuleArn"]
    events.put_targets(Rule="custom", EventBusName="central", Targets=[{"Id": "t", "Arn": topic}])
    inbox = Queue(sandbox, CENTRAL, "custom-inbox")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox.arn)
    entry = {"Source": "orgalerts.test", "DetailType": "ping", "Detail": '{"n": 1}', "EventBusName": central["bus_arn"]}

    # Default topic policy: EventBridge may not publish.
    assert client(sandbox, "events", CENTRAL).put_events(Entries=[entry])["FailedEntryCount"] == 0
    assert inbox.drain() == []

    sns.set_topic_attributes(
        TopicArn=topic,
        AttributeName="Policy",
        AttributeValue=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                    }
                ]
            }
        ),
    )
    result = client(sandbox, "events", PROD).put_events(Entries=[entry])  # cross-account, allowed by org path
    assert result["FailedEntryCount"] == 0
    [message] = inbox.drain()
    event = json.loads(json.loads(message["Body"])["Message"])  # SNS envelope (not raw delivery)
    assert event["account"] == PROD and event["detail"] == {"n": 1}

    denied = client(sandbox, "events", ROOT_MEMBER).put_events(Entries=[entry])
    assert denied["FailedEntryCount"] == 1 and denied["Entries"][0]["ErrorCode"] == "AccessDeniedException"
    aws_source = client(sandbox, "events", CENTRAL).put_events(Entries=[{**entry, "Source": "aws.iam"}])
    assert aws_source["Entries"][0]["ErrorCode"] == "NotAuthorizedForSourceException"


def test_cloudtrail_event_shape(sandbox: Sandbox) -> None:
    """Every IAM call of the management account, read-only ones included, straight to a queue."""
    inbox = Queue(sandbox, None, "trail")
    events = client(sandbox, "events")
    events.put_rule(
        Name="trail",
        EventPattern=json.dumps({"source": ["aws.iam"]}),
        State="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
    )
    events.put_targets(Rule="trail", Targets=[{"Id": "q", "Arn": inbox.arn}])
    iam = client(sandbox, "iam")
    iam.create_user(UserName="Zed", Tags=[{"Key": "team", "Value": "sec"}])
    iam.get_user(UserName="Zed")
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName="Zed")  # a failed call: no event
    got = [json.loads(m["Body"]) for m in inbox.drain()]
    assert [e["detail"]["eventName"] for e in got] == ["CreateUser", "GetUser"]
    create, read = got
    assert create["source"] == "aws.iam" and create["detail-type"] == "AWS API Call via CloudTrail"
    assert create["account"] == "123456789012" and create["region"] == "us-east-1"
    d = create["detail"]
    assert d["requestParameters"] == {"userName": "Zed", "tags": [{"key": "team", "value": "sec"}]}
    assert d["readOnly"] is False and read["detail"]["readOnly"] is True
    assert d["eventSource"] == "iam.amazonaws.com" and d["eventType"] == "AwsApiCall"
    assert d["managementEvent"] is True and d["recipientAccountId"] == "123456789012"
    assert d["userIdentity"]["accessKeyId"] == REDACTED_ACCESS_KEY_ID
    assert d["userIdentity"]["arn"] == client(sandbox, "sts").get_caller_identity()["Arn"]
    assert "testing" not in json.dumps(create)
    assert set(create) == set(FIXTURE) and set(d) == set(FIXTURE["detail"])
    events.remove_targets(Rule="trail", Ids=["q"])


def test_events_api_calls_emit_aws_events_in_their_region(sandbox: Sandbox) -> None:
    west = client(sandbox, "events", PROD, region="eu-west-1")
    west_queue = Queue(sandbox, PROD, "unused")  # us-east-1: must stay empty
    sqs_west = client(sandbox, "sqs", PROD, region="eu-west-1")
    west_url = sqs_west.create_queue(QueueName="w")["QueueUrl"]
    west_arn = sqs_west.get_queue_attributes(QueueUrl=west_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    west.put_rule(Name="ev", EventPattern=json.dumps({"source": ["aws.events"]}))
    west.put_targets(Rule="ev", Targets=[{"Id": "q", "Arn": west_arn}])  # PutTargets: first event
    west.put_rule(Name="other", EventPattern=json.dumps({"source": ["x"]}))
    west.list_rules()  # read-only: not for an ENABLED rule
    got = sqs_west.receive_message(QueueUrl=west_url, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in got]
    assert [b["detail"]["eventName"] for b in bodies] == ["PutTargets", "PutRule"]
    body = bodies[1]
    assert body["region"] == "eu-west-1" and body["source"] == "aws.events" and body["account"] == PROD
    assert body["detail"]["eventSource"] == "events.amazonaws.com"
    assert body["detail"]["requestParameters"]["name"] == "other"
    assert body["detail"]["userIdentity"]["type"] == "AssumedRole"
    issuer = body["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]
    assert issuer["arn"] == f"arn:aws:iam::{PROD}:role/OrganizationAccountAccessRole"
    assert west_queue.drain() == []
