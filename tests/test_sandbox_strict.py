"""Strict sandbox over HTTP: for each rule, a call plain moto accepts that strict mode refuses with AWS's
error code, and an allowed counterpart. Real boto3 clients against a strict `Sandbox` on 127.0.0.1;
the clock and the random source are injected (no sleeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import account_client

from orgalerts.aws import error_code
from orgalerts.sandbox import Sandbox, SandboxAccount, SandboxOU, SandboxSpec
from orgalerts.sandbox.strict import StrictSettings, seed_least_privilege

MGMT = "123456789012"
NOTIFY = "222222222222"
MEMBER = "333333333333"
ROOT = "r-sbx0"
SPEC = SandboxSpec(
    organization_id="o-sandbox001",
    root_id=ROOT,
    management_account_id=MGMT,
    root_accounts=(SandboxAccount(NOTIFY, "notifications"),),
    ous=(SandboxOU("ou-sbx0-workload", "Workloads", accounts=(SandboxAccount(MEMBER, "app"),)),),
)
REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Dice:
    """The injectable random source: returns `value` until changed."""

    def __init__(self) -> None:
        self.value = 0.99

    def __call__(self) -> float:
        return self.value


CLOCK = Clock()
DICE = Dice()


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    settings = StrictSettings(clock=CLOCK, random=DICE, policy_type_pending_reads=2)
    with Sandbox(SPEC, strict=settings) as sandbox:
        yield sandbox


def root_client(sb: Sandbox, service: str) -> Any:
    return account_client(service, None, endpoint_url=sb.endpoint_url)


def code_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return error_code(caught.value)


def role_with_policy(sb: Sandbox, name: str, policy: dict[str, Any] | None) -> dict[str, str]:
    """A role in the management account trusting it, holding `policy`; returns assumed credentials."""
    iam = root_client(sb, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MGMT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    creds = root_client(sb, "sts").assume_role(RoleArn=f"arn:aws:iam::{MGMT}:role/{name}", RoleSessionName="test")
    c = creds["Credentials"]
    return {
        "aws_access_key_id": c["AccessKeyId"],
        "aws_secret_access_key": c["SecretAccessKey"],
        "aws_session_token": c["SessionToken"],
    }


def as_(sb: Sandbox, service: str, creds: dict[str, str]) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=sb.endpoint_url, **creds)


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


# --------------------------------------------------------------------------------------------------
# Rule 1: IAM authorization by action and resource ARN


def test_put_rule_allowed_only_on_the_resource_pattern(sb: Sandbox) -> None:
    creds = role_with_policy(
        sb, "rules-only", allow("events:PutRule", f"arn:aws:events:{REGION}:{MGMT}:rule/orgalerts-*")
    )
    events = as_(sb, "events", creds)
    events.put_rule(Name="orgalerts-forward", EventPattern=json.dumps({"source": ["aws.iam"]}))
    assert code_of(events.put_rule, Name="other-rule", EventPattern='{"source": ["x"]}') == "AccessDeniedException"
    # a custom bus puts the bus name in the rule ARN: rule/BUS/NAME does not match rule/orgalerts-*
    root_client(sb, "events").create_event_bus(Name="custom")
    assert code_of(events.put_rule, Name="orgalerts-x", EventBusName="custom", EventPattern='{"a": [1]}') == (
        "AccessDeniedException"
    )
    # removing the action: denied
    root_client(sb, "iam").delete_role_policy(RoleName="rules-only", PolicyName="p")
    assert code_of(events.put_rule, Name="orgalerts-forward", EventPattern='{"a": [1]}') == "AccessDeniedException"


def test_access_denied_code_per_protocol(sb: Sandbox) -> None:
    creds = role_with_policy(sb, "nothing-allowed", None)
    assert as_(sb, "sts", creds).get_caller_identity()["Account"] == MGMT  # needs no permission
    assert code_of(as_(sb, "iam", creds).get_role, RoleName="nothing-allowed") == "AccessDenied"
    assert code_of(as_(sb, "sns", creds).list_topics) == "AuthorizationError"
    assert code_of(as_(sb, "sqs", creds).list_queues) == "AccessDenied"
    assert code_of(as_(sb, "organizations", creds).list_roots) == "AccessDeniedException"
    assert code_of(as_(sb, "cloudtrail", creds).describe_trails) == "AccessDeniedException"
    assert code_of(as_(sb, "events", creds).describe_event_bus) == "AccessDeniedException"
    assert code_of(as_(sb, "s3", creds).list_buckets) == "AccessDenied"
    with pytest.raises(ClientError) as caught:
        as_(sb, "sqs", creds).get_queue_url(QueueName="q")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_explicit_deny_wins_and_not_action(sb: Sandbox) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": f"arn:aws:sqs:{REGION}:{MGMT}:keep-*"},
            {"Effect": "Allow", "NotAction": ["iam:*", "sts:*", "organizations:*"], "Resource": "*"},
        ],
    }
    creds = role_with_policy(sb, "deny-wins", policy)
    sqs = as_(sb, "sqs", creds)
    url = sqs.create_queue(QueueName="keep-me")["QueueUrl"]
    assert code_of(sqs.delete_queue, QueueUrl=url) == "AccessDenied"
    sqs.delete_queue(QueueUrl=sqs.create_queue(QueueName="drop-me")["QueueUrl"])
    as_(sb, "sns", creds).list_topics()  # NotAction allows sns
    assert code_of(as_(sb, "iam", creds).list_roles) == "AccessDenied"


def test_conditions_fail_closed_on_unknown_operators(sb: Sandbox) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sns:ListTopics", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": REGION}}},
            {"Effect": "Allow", "Action": "sns:ListSubscriptions", "Resource": "*",
             "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}},
        ],
    }  # fmt: skip
    sns = as_(sb, "sns", role_with_policy(sb, "conditional", policy))
    sns.list_topics()
    assert code_of(sns.list_subscriptions) == "AuthorizationError"


def test_unknown_operation_is_refused_naming_it(sb: Sandbox) -> None:
    events = as_(sb, "events", role_with_policy(sb, "events-admin", allow("events:*")))
    events.list_rules()
    with pytest.raises(ClientError) as caught:
        events.list_archives()
    assert error_code(caught.value) == "AccessDeniedException"
    assert "events:ListArchives is not in the authorization table" in caught.value.response["Error"]["Message"]


# --------------------------------------------------------------------------------------------------
# Rule 7: AWS-managed policies; IAM users resolved from their access keys


def test_user_with_aws_managed_administrator_access(sb: Sandbox) -> None:
    iam = root_client(sb, "iam")
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    assert code_of(as_(sb, "iam", creds).list_users) == "AccessDenied"
    iam.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    assert any(u["UserName"] == "alice" for u in as_(sb, "iam", creds).list_users()["Users"])


def test_organization_access_role_stays_admin(sb: Sandbox) -> None:
    account_client("iam", MEMBER, endpoint_url=sb.endpoint_url).create_user(UserName="bob")


# --------------------------------------------------------------------------------------------------
# Rule 3: AssumeRole needs an existing role whose trust policy names the caller


def test_assume_role_refused_for_missing_role_and_untrusted_caller(sb: Sandbox) -> None:
    sts = root_client(sb, "sts")
    missing = f"arn:aws:iam::{MEMBER}:role/does-not-exist"
    assert code_of(sts.assume_role, RoleArn=missing, RoleSessionName="ss") == "AccessDenied"
    iam = root_client(sb, "iam")
    elsewhere = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"},
    ]}  # fmt: skip
    iam.create_role(RoleName="untrusting", AssumeRolePolicyDocument=json.dumps(elsewhere))
    arn = f"arn:aws:iam::{MGMT}:role/untrusting"
    assert code_of(sts.assume_role, RoleArn=arn, RoleSessionName="ss") == "AccessDenied"
    with_external_id = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "secret-1"}},
    }]}  # fmt: skip
    iam.create_role(RoleName="with-external-id", AssumeRolePolicyDocument=json.dumps(with_external_id))
    arn = f"arn:aws:iam::{MGMT}:role/with-external-id"
    assert code_of(sts.assume_role, RoleArn=arn, RoleSessionName="ss") == "AccessDenied"
    sts.assume_role(RoleArn=arn, RoleSessionName="ss", ExternalId="secret-1")
    sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="ss")


def test_assume_role_needs_the_callers_permission_too(sb: Sandbox) -> None:
    creds = role_with_policy(sb, "no-assume", allow("sns:ListTopics"))
    sts = as_(sb, "sts", creds)
    arn = f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole"
    assert code_of(sts.assume_role, RoleArn=arn, RoleSessionName="ss") == "AccessDenied"


# --------------------------------------------------------------------------------------------------
# Rule 4: EventBridge patterns and targets


def test_put_rule_pattern_size_and_syntax(sb: Sandbox) -> None:
    events = root_client(sb, "events")
    long_pattern = json.dumps({"source": ["aws.iam"], "detail": {"eventName": [f"Name{i:05d}" for i in range(200)]}})
    assert len(long_pattern) > 2048
    assert code_of(events.put_rule, Name="big", EventPattern=long_pattern) == "InvalidEventPatternException"
    for bad in ('{"source": "aws.iam"}', "not json", '{"source": [{"startswith": "aws."}]}', '{"source": []}'):
        assert code_of(events.put_rule, Name="bad", EventPattern=bad) == "InvalidEventPatternException", bad
    fits = json.dumps({"source": ["aws.iam"], "detail": {"eventName": [{"prefix": "Create"}], "x": [{"exists": True}]}})
    events.put_rule(Name="fits", EventPattern=fits)


def test_put_targets_input_transformer_rules(sb: Sandbox) -> None:
    events = root_client(sb, "events")
    events.put_rule(Name="transform", EventPattern='{"source": ["aws.iam"]}')
    queue = f"arn:aws:sqs:{REGION}:{MGMT}:anything"

    def target(template: str, paths: dict[str, str]) -> dict[str, Any]:
        return {"Id": "t", "Arn": queue, "InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}

    bad = [
        target('"<who> did <what>"', {"who": "$.detail.userIdentity.arn"}),
        target('"<who>"', {"who": "detail.userIdentity.arn"}),
        target('"x"', {f"k{i}": "$.id" for i in range(101)}),
        target('"' + "x" * 8200 + '"', {}),
    ]
    for t in bad:
        assert code_of(events.put_targets, Rule="transform", Targets=[t]) == "ValidationException"
    good = target('"<who> via <aws.events.rule-name>"', {"who": "$.detail.userIdentity.arn"})
    assert events.put_targets(Rule="transform", Targets=[good])["FailedEntryCount"] == 0


def test_cross_account_bus_target_refuses_input_and_retry_policy(sb: Sandbox) -> None:
    events = root_client(sb, "events")
    events.put_rule(Name="forward", EventPattern='{"source": ["aws.iam"]}')
    bus = f"arn:aws:events:{REGION}:{NOTIFY}:event-bus/central"
    role = f"arn:aws:iam::{MGMT}:role/forwarder"
    for extra in ({"Input": "{}"}, {"InputPath": "$.detail"}, {"RetryPolicy": {"MaximumRetryAttempts": 2}}):
        t = {"Id": "bus", "Arn": bus, "RoleArn": role, **extra}
        assert code_of(events.put_targets, Rule="forward", Targets=[t]) == "ValidationException", extra
    same_account = {"Id": "own", "Arn": f"arn:aws:events:{REGION}:{MGMT}:event-bus/custom", "Input": "{}"}
    plain = {"Id": "bus", "Arn": bus, "RoleArn": role, "DeadLetterConfig": {"Arn": f"arn:aws:sqs:{REGION}:{MGMT}:dlq"}}
    assert events.put_targets(Rule="forward", Targets=[plain, same_account])["FailedEntryCount"] == 0


# --------------------------------------------------------------------------------------------------
# Rule 5: SQS


def test_create_queue_too_soon_after_delete(sb: Sandbox) -> None:
    sqs = root_client(sb, "sqs")
    sqs.delete_queue(QueueUrl=sqs.create_queue(QueueName="recycled")["QueueUrl"])
    CLOCK.now += 59
    assert code_of(sqs.create_queue, QueueName="recycled") == "AWS.SimpleQueueService.QueueDeletedRecently"
    sqs.create_queue(QueueName="another-name")
    CLOCK.now += 2
    sqs.create_queue(QueueName="recycled")


def test_short_poll_may_come_back_empty(sb: Sandbox) -> None:
    sqs = root_client(sb, "sqs")
    url = sqs.create_queue(QueueName="polled")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    DICE.value = 0.0  # below the probability: the short poll samples servers that hold nothing
    try:
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "hello"
    finally:
        DICE.value = 0.99
    sqs.send_message(QueueUrl=url, MessageBody="again")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "again"


# --------------------------------------------------------------------------------------------------
# Rule 6: Organizations


def _scp(org: Any, name: str) -> str:
    content = json.dumps(allow("*"))
    created = org.create_policy(Name=name, Description="", Type="SERVICE_CONTROL_POLICY", Content=content)
    return str(created["Policy"]["PolicySummary"]["Id"])


def _scp_status(org: Any) -> str:
    types = org.list_roots()["Roots"][0]["PolicyTypes"]
    return next(t["Status"] for t in types if t["Type"] == "SERVICE_CONTROL_POLICY")


def test_policy_type_enabling_is_asynchronous_and_scps_are_limited(sb: Sandbox) -> None:
    org = root_client(sb, "organizations")
    first = _scp(org, "scp-0")
    assert code_of(org.attach_policy, PolicyId=first, TargetId=MEMBER) == "PolicyTypeNotEnabledException"
    root = org.enable_policy_type(RootId=ROOT, PolicyType="SERVICE_CONTROL_POLICY")["Root"]
    assert {"Type": "SERVICE_CONTROL_POLICY", "Status": "PENDING_ENABLE"} in root["PolicyTypes"]
    assert code_of(org.attach_policy, PolicyId=first, TargetId=MEMBER) == "PolicyTypeNotEnabledException"
    assert [_scp_status(org) for _ in range(3)] == ["PENDING_ENABLE", "PENDING_ENABLE", "ENABLED"]
    # FullAWSAccess counts: it plus four more make five
    for i in range(4):
        org.attach_policy(PolicyId=first if i == 0 else _scp(org, f"scp-{i}"), TargetId=MEMBER)
    sixth = _scp(org, "scp-5")
    with pytest.raises(ClientError) as caught:
        org.attach_policy(PolicyId=sixth, TargetId=MEMBER)
    assert error_code(caught.value) == "ConstraintViolationException"
    assert caught.value.response["Reason"] == "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
    org.attach_policy(PolicyId=sixth, TargetId=NOTIFY)


# --------------------------------------------------------------------------------------------------
# Rule 8: least-privilege seeding


def test_seed_least_privilege(sb: Sandbox) -> None:
    policies = {
        "orchestrator": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["organizations:ListAccounts"], "Resource": "*"},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/orgalerts-member"},
        ]},
        "member": allow(["events:PutRule", "events:DescribeRule"], "arn:aws:events:*:*:rule/orgalerts-*"),
        "notification": allow("sns:CreateTopic", "arn:aws:sns:*:*:orgalerts-*"),
    }  # fmt: skip
    seeded = seed_least_privilege(
        policies, "orgalerts-member", management_account_id=MGMT, account_ids=[NOTIFY, MEMBER],
        notification_account_id=NOTIFY,
    )  # fmt: skip
    keys = {"aws_access_key_id": seeded.access_key_id, "aws_secret_access_key": seeded.secret_access_key}
    as_(sb, "organizations", keys).list_accounts()
    assert code_of(as_(sb, "organizations", keys).list_roots) == "AccessDeniedException"
    assert set(seeded.role_arns) == {MGMT, NOTIFY, MEMBER}
    sts = as_(sb, "sts", keys)

    def member(account: str, service: str) -> Any:
        c = sts.assume_role(RoleArn=seeded.role_arns[account], RoleSessionName="oo")["Credentials"]
        creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                 "aws_session_token": c["SessionToken"]}  # fmt: skip
        return as_(sb, service, creds)

    member(MEMBER, "events").put_rule(Name="orgalerts-forward", EventPattern='{"source": ["aws.iam"]}')
    assert code_of(member(MEMBER, "sns").create_topic, Name="orgalerts-alerts") == "AuthorizationError"
    member(NOTIFY, "sns").create_topic(Name="orgalerts-alerts")
    assert code_of(sts.assume_role, RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole",
                   RoleSessionName="oo") == "AccessDenied"  # fmt: skip


def test_strict_is_off_by_default() -> None:
    assert Sandbox(SPEC).strict is None


def test_presigned_url_is_authorized_as_its_signer(sb: Sandbox) -> None:
    import urllib.error
    import urllib.request

    root_client(sb, "s3").create_bucket(Bucket="presigned")
    creds = role_with_policy(sb, "no-s3", allow("sns:ListTopics"))
    url = as_(sb, "s3", creds).generate_presigned_url("list_objects", Params={"Bucket": "presigned"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url)
    assert caught.value.code == 403 and b"<Code>AccessDenied</Code>" in caught.value.read()
    allowed = role_with_policy(sb, "s3-reader", allow("s3:ListBucket", "arn:aws:s3:::presigned"))
    url = as_(sb, "s3", allowed).generate_presigned_url("list_objects", Params={"Bucket": "presigned"})
    with urllib.request.urlopen(url) as response:
        assert response.status == 200
