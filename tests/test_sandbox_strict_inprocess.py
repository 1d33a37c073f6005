"""Strict mode in-process: the before-send hook with moto's `mock_aws`, through orgalerts' Gateway
(`add_send_hook`) and on bare boto3 clients (`register`). Same rules, same error codes as over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from orgalerts.aws import Gateway, GatewaySettings, error_code
from orgalerts.model.addresses import role_arn
from orgalerts.sandbox.strict import StrictEngine, StrictSettings, register, seed_least_privilege, send_hook

MGMT = "123456789012"
MEMBER = "333333333333"
REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


def code_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return error_code(caught.value)


def strict_client(service: str, engine: StrictEngine) -> Any:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    register(client, engine)
    return client


def test_gateway_with_least_privilege_principals(moto: None) -> None:
    policies = {
        "orchestrator": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/orgalerts-member"}
            ],
        },
        "member": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "events:PutRule", "Resource": "arn:aws:events:*:*:rule/orgalerts-*"}
            ],
        },
        "notification": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sns:ListTopics", "Resource": "*"}],
        },
    }
    seeded = seed_least_privilege(
        policies, "orgalerts-member", management_account_id=MGMT, account_ids=[MEMBER], notification_account_id=MEMBER
    )
    gateway = Gateway(
        GatewaySettings(access_key_id=seeded.access_key_id, secret_access_key=seeded.secret_access_key, max_attempts=1)
    )
    gateway.add_send_hook(send_hook(StrictEngine()))
    events = gateway.account(MEMBER, role_arn(MEMBER, "orgalerts-member"), None).client("events", REGION)
    events.put_rule(Name="orgalerts-forward", EventPattern='{"source": ["aws.iam"]}')
    assert code_of(events.put_rule, Name="other-rule", EventPattern='{"source": ["aws.iam"]}') == (
        "AccessDeniedException"
    )
    from moto.events.models import events_backends

    # the refused call did not reach moto: only the allowed rule exists in the member account
    assert sorted(events_backends[MEMBER][REGION].event_buses["default"].rules) == ["orgalerts-forward"]
    # moto alone lets anyone assume any role name; the role does not exist here
    assert code_of(gateway.account, MEMBER, role_arn(MEMBER, "OrganizationAccountAccessRole"), None) == "AccessDenied"


def test_sqs_rules_in_process(moto: None) -> None:
    clock = Clock()
    sqs = strict_client("sqs", StrictEngine(StrictSettings(clock=clock, random=lambda: 0.0)))
    url = sqs.create_queue(QueueName="recycled")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hi")
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # short poll, dice says empty
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "hi"
    sqs.delete_queue(QueueUrl=url)
    clock.now += 30
    assert code_of(sqs.create_queue, QueueName="recycled") == "AWS.SimpleQueueService.QueueDeletedRecently"
    clock.now += 31
    sqs.create_queue(QueueName="recycled")


def test_eventbridge_rules_in_process(moto: None) -> None:
    events = strict_client("events", StrictEngine())
    assert code_of(events.put_rule, Name="r", EventPattern='{"source": "aws.iam"}') == "InvalidEventPatternException"
    events.put_rule(Name="r", EventPattern='{"source": ["aws.iam"]}')
    target = {
        "Id": "t",
        "Arn": f"arn:aws:events:{REGION}:999999999999:event-bus/central",
        "InputTransformer": {"InputPathsMap": {}, "InputTemplate": '"x"'},
    }
    assert code_of(events.put_targets, Rule="r", Targets=[target]) == "ValidationException"


def test_organizations_rules_in_process(moto: None) -> None:
    org = strict_client("organizations", StrictEngine(StrictSettings(policy_type_pending_reads=1)))
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    content = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    policy = org.create_policy(Name="p", Description="", Type="SERVICE_CONTROL_POLICY", Content=content)
    policy_id = policy["Policy"]["PolicySummary"]["Id"]
    org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    assert code_of(org.attach_policy, PolicyId=policy_id, TargetId=root) == "PolicyTypeNotEnabledException"
    statuses = [org.list_roots()["Roots"][0]["PolicyTypes"][0]["Status"] for _ in range(2)]
    assert statuses == ["PENDING_ENABLE", "ENABLED"]
    org.attach_policy(PolicyId=policy_id, TargetId=root)


def test_assumed_role_denied_in_process(moto: None) -> None:
    engine = StrictEngine()
    iam = strict_client("iam", engine)  # the root: unrestricted; the hook loads AWS-managed policies
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="reader", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    sts = strict_client("sts", engine)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{MGMT}:role/reader", RoleSessionName="test")["Credentials"]
    creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
             "aws_session_token": c["SessionToken"]}  # fmt: skip
    sns = boto3.client("sns", region_name=REGION, **creds)
    register(sns, engine)
    sns.list_topics()  # ReadOnlyAccess (AWS-managed, loaded on reference) allows sns:List*
    assert code_of(sns.create_topic, Name="t") == "AuthorizationError"
