"""Which IAM action, on which resource ARN(s), each API operation orgalerts calls is authorized as.

Owns: `ACTIONS`, the table (service, operation) -> (IAM action, resource builder), and `required`
which applies it to a call. Each builder derives the resource ARN(s) from the request parameters, the
caller's account and the request's region, as the Service Authorization Reference defines the
resource types of each action. Operations the reference lists without a resource type can only be
granted on `*`: their builder returns `["*"]`, so a policy must say `"Resource": "*"` for them
(as in AWS). An operation missing from the table is refused for restricted principals (fail closed);
add it here, with the reference's resource type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Ctx:
    account: str
    region: str
    partition: str = "aws"


Builder = Callable[[Mapping[str, Any], Ctx], list[str]]


def _star(_: Mapping[str, Any], __: Ctx) -> list[str]:
    return ["*"]


def _str(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return value if isinstance(value, str) else ""


# --- EventBridge ----------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
# rule-on-default-event-bus: arn:${Partition}:events:${Region}:${Account}:rule/${RuleName}
# rule-on-custom-event-bus:  arn:${Partition}:events:${Region}:${Account}:rule/${EventBusName}/${RuleName}
# event-bus:                 arn:${Partition}:events:${Region}:${Account}:event-bus/${EventBusName}
# PutPermission / RemovePermission / List* have no resource type: "*".


def _bus(params: Mapping[str, Any], ctx: Ctx, key: str = "EventBusName") -> tuple[str, str, str]:
    """(account, region, bus name) of an EventBusName that may be a name or an ARN."""
    raw = _str(params, key) or "default"
    if raw.startswith("arn:"):
        parts = raw.split(":", 5)
        return parts[4], parts[3], parts[5].split("/", 1)[-1]
    return ctx.account, ctx.region, raw


def _rule(name_key: str) -> Builder:
    def build(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
        account, region, bus = _bus(params, ctx)
        path = _str(params, name_key) if bus == "default" else f"{bus}/{_str(params, name_key)}"
        return [f"arn:{ctx.partition}:events:{region}:{account}:rule/{path}"]

    return build


def _event_bus(key: str) -> Builder:
    def build(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
        account, region, bus = _bus(params, ctx, key)
        return [f"arn:{ctx.partition}:events:{region}:{account}:event-bus/{bus}"]

    return build


def _named(resource_type: str) -> Builder:
    """connection: arn:${Partition}:events:${Region}:${Account}:connection/${ConnectionName};
    api-destination: arn:${Partition}:events:${Region}:${Account}:api-destination/${ApiDestinationName}."""

    def build(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
        return [f"arn:{ctx.partition}:events:{ctx.region}:{ctx.account}:{resource_type}/{_str(params, 'Name')}"]

    return build


def _put_events(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    entries = [e for e in params.get("Entries") or [] if isinstance(e, Mapping)]
    return sorted({_event_bus("EventBusName")(e, ctx)[0] for e in entries}) or _event_bus("EventBusName")({}, ctx)


def _arn_param(key: str) -> Builder:
    def build(params: Mapping[str, Any], _: Ctx) -> list[str]:
        return [_str(params, key) or "*"]

    return build


# --- SNS ------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
# topic: arn:${Partition}:sns:${Region}:${Account}:${TopicName}. Unsubscribe, ListTopics,
# ListSubscriptions, Get/SetSubscriptionAttributes have no resource type: "*".


def _topic_from_name(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    return [f"arn:{ctx.partition}:sns:{ctx.region}:{ctx.account}:{_str(params, 'Name')}"]


def _topic(params: Mapping[str, Any], _: Ctx) -> list[str]:
    return [_str(params, "TopicArn") or _str(params, "TargetArn") or "*"]


# --- SQS ------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
# queue: arn:${Partition}:sqs:${Region}:${Account}:${QueueName}. ListQueues has no resource type.


def _queue(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    url = _str(params, "QueueUrl")
    if url:
        parts = [p for p in urlsplit(url).path.split("/") if p]
        account, name = (parts[0], parts[-1]) if len(parts) >= 2 else (ctx.account, parts[-1] if parts else "")
    else:
        account, name = ctx.account, _str(params, "QueueName")
    return [f"arn:{ctx.partition}:sqs:{ctx.region}:{account}:{name}"]


# --- IAM ------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
# role: arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}
# user: arn:${Partition}:iam::${Account}:user/${UserNameWithPath}
# policy: arn:${Partition}:iam::${Account}:policy/${PolicyNameWithPath}
# The path is part of the ARN: for an existing role/user it is read from moto's IAM backend.


def _iam_path(params: Mapping[str, Any]) -> str:
    path = _str(params, "Path") or "/"
    return path if path.endswith("/") else path + "/"


def _existing_arn(kind: str, name: str, ctx: Ctx) -> str | None:
    from moto.iam.models import iam_backends

    backend = iam_backends[ctx.account][ctx.partition]
    entity = (backend.roles if kind == "role" else backend.users).values()
    return next((str(e.arn) for e in entity if e.name == name), None)


def _iam_entity(kind: str, key: str) -> Builder:
    def build(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
        name = _str(params, key)
        if kind == "user" and not name:  # e.g. CreateAccessKey without UserName: the caller itself
            return ["*"]
        existing = _existing_arn(kind, name, ctx)
        return [existing or f"arn:{ctx.partition}:iam::{ctx.account}:{kind}{_iam_path(params)}{name}"]

    return build


def _new_policy(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    return [f"arn:{ctx.partition}:iam::{ctx.account}:policy{_iam_path(params)}{_str(params, 'PolicyName')}"]


def _service_linked_role(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    service = _str(params, "AWSServiceName")
    return [f"arn:{ctx.partition}:iam::{ctx.account}:role/aws-service-role/{service}/*"]


# --- STS ------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html
# AssumeRole: role ARN. GetCallerIdentity needs no permission
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html): see NO_PERMISSION.

# --- S3 -------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
# bucket: arn:${Partition}:s3:::${BucketName}; ListAllMyBuckets: "*".


def _bucket(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    return [f"arn:{ctx.partition}:s3:::{_str(params, 'Bucket')}"]


def _object(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    # object: arn:${Partition}:s3:::${BucketName}/${ObjectName}
    return [f"arn:{ctx.partition}:s3:::{_str(params, 'Bucket')}/{_str(params, 'Key')}"]


# --- CloudTrail -----------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudtrail.html
# trail: arn:${Partition}:cloudtrail:${Region}:${Account}:trail/${TrailName}; DescribeTrails,
# LookupEvents, ListTrails have no resource type.


def _trail(key: str) -> Builder:
    def build(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
        raw = _str(params, key)
        if raw.startswith("arn:"):
            return [raw]
        return [f"arn:{ctx.partition}:cloudtrail:{ctx.region}:{ctx.account}:trail/{raw}"]

    return build


# --- DynamoDB -------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
# table: arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName} (TableName may also be the ARN).
# CreateTable with Tags also needs dynamodb:TagResource on the table (tag-on-create): see _tags_on_create.


def _table(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    raw = _str(params, "TableName")
    if raw.startswith("arn:"):
        return [raw]
    return [f"arn:{ctx.partition}:dynamodb:{ctx.region}:{ctx.account}:table/{raw}"]


_DYNAMODB: dict[str, Builder] = {
    **{op: _table for op in (
        "CreateTable", "DescribeTable", "DeleteTable", "GetItem", "PutItem", "UpdateItem", "DeleteItem",
    )},
    "TagResource": _arn_param("ResourceArn"), "UntagResource": _arn_param("ResourceArn"),
    "ListTagsOfResource": _arn_param("ResourceArn"), "ListTables": _star,
}  # fmt: skip


# --- Organizations --------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html
# Most read actions have no resource type. The ones that do (policy, account, ou, root ARNs, which
# embed the organization id) are authorized here on "*" only: a policy naming Organizations resources
# by ARN is refused in the sandbox (fail closed). orgalerts grants Organizations actions on "*".
ORGANIZATIONS_OPERATIONS = (
    "AttachPolicy", "CreatePolicy", "DeletePolicy", "DescribeAccount", "DescribeOrganization", "DescribePolicy",
    "DetachPolicy", "EnableAWSServiceAccess", "EnablePolicyType", "DisablePolicyType",
    "ListAWSServiceAccessForOrganization", "ListAccounts", "ListAccountsForParent", "ListOrganizationalUnitsForParent",
    "ListParents", "ListPolicies", "ListPoliciesForTarget", "ListRoots", "ListTagsForResource", "ListTargetsForPolicy",
    "TagResource", "UntagResource", "UpdatePolicy", "DescribeOrganizationalUnit", "ListChildren",
    "ListDelegatedAdministrators", "CreateAccount", "CreateOrganizationalUnit", "MoveAccount", "CloseAccount",
    "CreateOrganization", "DescribeCreateAccountStatus",
)  # fmt: skip

NO_PERMISSION = frozenset({("sts", "GetCallerIdentity")})

_EVENTS: dict[str, Builder] = {
    "PutRule": _rule("Name"), "DescribeRule": _rule("Name"), "DeleteRule": _rule("Name"),
    "EnableRule": _rule("Name"), "DisableRule": _rule("Name"), "PutTargets": _rule("Rule"),
    "RemoveTargets": _rule("Rule"), "ListTargetsByRule": _rule("Rule"),
    "ListTagsForResource": _arn_param("ResourceARN"), "TagResource": _arn_param("ResourceARN"),
    "UntagResource": _arn_param("ResourceARN"), "CreateEventBus": _event_bus("Name"),
    "DescribeEventBus": _event_bus("Name"), "DeleteEventBus": _event_bus("Name"), "PutEvents": _put_events,
    "PutPermission": _star, "RemovePermission": _star, "ListRules": _star, "ListEventBuses": _star,
    "ListRuleNamesByTarget": _star, "TestEventPattern": _star,
    **{op: _named("connection") for op in (
        "CreateConnection", "DescribeConnection", "UpdateConnection", "DeleteConnection")},
    **{op: _named("api-destination") for op in (
        "CreateApiDestination", "DescribeApiDestination", "UpdateApiDestination", "DeleteApiDestination")},
    "ListConnections": _star, "ListApiDestinations": _star,
}  # fmt: skip
_SNS: dict[str, Builder] = {
    "CreateTopic": _topic_from_name, "DeleteTopic": _topic, "GetTopicAttributes": _topic,
    "SetTopicAttributes": _topic, "ListSubscriptionsByTopic": _topic, "Publish": _topic, "Subscribe": _topic,
    "ConfirmSubscription": _topic, "ListTagsForResource": _arn_param("ResourceArn"),
    "TagResource": _arn_param("ResourceArn"), "UntagResource": _arn_param("ResourceArn"), "Unsubscribe": _star,
    "ListTopics": _star, "ListSubscriptions": _star, "GetSubscriptionAttributes": _star,
    "SetSubscriptionAttributes": _star,
}  # fmt: skip
_SQS_QUEUE_OPS = (
    "CreateQueue", "GetQueueUrl", "GetQueueAttributes", "SetQueueAttributes", "ListQueueTags", "TagQueue",
    "UntagQueue", "DeleteQueue", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "SendMessage",
    "SendMessageBatch", "PurgeQueue", "ChangeMessageVisibility",
)  # fmt: skip
_IAM: dict[str, Builder] = {
    **{op: _iam_entity("role", "RoleName") for op in (
        "CreateRole", "GetRole", "DeleteRole", "UpdateRole", "UpdateAssumeRolePolicy", "TagRole", "UntagRole",
        "ListRoleTags", "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy", "ListRolePolicies",
        "AttachRolePolicy", "DetachRolePolicy", "ListAttachedRolePolicies",
    )},
    **{op: _iam_entity("user", "UserName") for op in (
        "CreateUser", "GetUser", "DeleteUser", "TagUser", "PutUserPolicy", "DeleteUserPolicy", "AttachUserPolicy",
        "DetachUserPolicy", "CreateAccessKey", "DeleteAccessKey", "ListAccessKeys", "ListAttachedUserPolicies",
        "ListUserPolicies",
    )},
    **{op: _arn_param("PolicyArn") for op in (
        "GetPolicy", "GetPolicyVersion", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
        "ListPolicyVersions", "TagPolicy", "UntagPolicy", "SetDefaultPolicyVersion",
    )},
    "CreatePolicy": _new_policy, "CreateServiceLinkedRole": _service_linked_role, "ListPolicies": _star,
    "ListRoles": _star, "ListUsers": _star, "GetAccountAuthorizationDetails": _star,
}  # fmt: skip
_S3: dict[str, Builder] = {
    **{op: _bucket for op in (
        "CreateBucket", "DeleteBucket", "DeleteBucketPolicy", "GetBucketPolicy", "PutBucketPolicy",
        "GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "GetBucketTagging", "PutBucketTagging",
        "HeadBucket", "ListObjects", "ListObjectsV2",
    )},
    "ListBuckets": _star,
    # The stacks' templates over the request limit (engine/stacks.py) are objects in a bucket.
    "PutObject": _object, "GetObject": _object, "DeleteObject": _object,
}  # fmt: skip
_S3_ACTION_NAMES = {
    "ListBuckets": "ListAllMyBuckets",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
}
_CLOUDTRAIL: dict[str, Builder] = {
    **{op: _trail("Name") for op in ("CreateTrail", "DeleteTrail", "StartLogging", "StopLogging", "UpdateTrail")},
    # Get/PutEventSelectors name the trail in `TrailName` (botocore's CloudTrail model), not `Name`.
    "GetEventSelectors": _trail("TrailName"), "PutEventSelectors": _trail("TrailName"),
    "GetTrailStatus": _trail("Name"), "GetTrail": _trail("Name"), "AddTags": _trail("ResourceId"),
    "RemoveTags": _trail("ResourceId"), "DescribeTrails": _star, "ListTrails": _star, "LookupEvents": _star,
}  # fmt: skip


def _cloudtrail_list_tags(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    return [a for a in params.get("ResourceIdList") or [] if isinstance(a, str)] or ["*"]


_CLOUDTRAIL["ListTags"] = _cloudtrail_list_tags

# --- CloudFormation StackSets ---------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html
# stackset: arn:${Partition}:cloudformation:${Region}:${Account}:stackset/${StackSetName}:${Id}. The id is read from
# moto for an existing StackSet ("new" before it exists). Instance operations also take the stackset-target and
# type resource types on AWS; the sandbox authorizes them on the stackset ARN only.
# Activate/DescribeOrganizationsAccess and ListStackSets have no resource type.


def _stack_set(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    from moto.cloudformation.models import cloudformation_backends

    name = _str(params, "StackSetName")
    if ":" in name:  # the StackSet id (name:uuid) given for the name
        name, stack_set_id = name.split(":", 1)
    else:
        backend = cloudformation_backends[ctx.account][ctx.region]
        found = [s.id for s in backend.stacksets.values() if s.name == name and s.status != "DELETED"]
        stack_set_id = found[0].split(":", 1)[1] if found else "new"
    return [f"arn:{ctx.partition}:cloudformation:{ctx.region}:{ctx.account}:stackset/{name}:{stack_set_id}"]


_STACK_SET_OPERATIONS = (
    "CreateStackSet", "UpdateStackSet", "DeleteStackSet", "DescribeStackSet", "DescribeStackSetOperation",
    "ListStackSetOperations", "ListStackSetOperationResults", "ListStackInstances", "CreateStackInstances",
    "UpdateStackInstances", "DeleteStackInstances", "DescribeStackInstance", "ListStackSetAutoDeploymentTargets",
)  # fmt: skip


def _stack(params: Mapping[str, Any], ctx: Ctx) -> list[str]:
    """stack: arn:${Partition}:cloudformation:${Region}:${Account}:stack/${StackName}/${Id}; "*" without a name."""
    name = _str(params, "StackName")
    if not name:
        return ["*"]
    if name.startswith("arn:"):
        return [name]
    return [f"arn:{ctx.partition}:cloudformation:{ctx.region}:{ctx.account}:stack/{name}/*"]


_CLOUDFORMATION: dict[str, Builder] = {
    **{op: _stack_set for op in _STACK_SET_OPERATIONS},
    # The central and management stacks (engine/stacks.py): named, or by their stack id (an ARN).
    **{op: _stack for op in ("DescribeStacks", "CreateStack", "UpdateStack", "DeleteStack", "DescribeStackEvents",
                             "GetTemplate", "DescribeStackResources")},
    "ActivateOrganizationsAccess": _star, "DescribeOrganizationsAccess": _star, "ListStackSets": _star,
}  # fmt: skip

ACTIONS: dict[tuple[str, str], tuple[str, Builder]] = {
    **{("events", op): (f"events:{op}", b) for op, b in _EVENTS.items()},
    **{("sns", op): (f"sns:{op}", b) for op, b in _SNS.items()},
    **{("sqs", op): (f"sqs:{op}", _queue) for op in _SQS_QUEUE_OPS},
    ("sqs", "ListQueues"): ("sqs:ListQueues", _star),
    **{("iam", op): (f"iam:{op}", b) for op, b in _IAM.items()},
    ("sts", "AssumeRole"): ("sts:AssumeRole", _arn_param("RoleArn")),
    **{("s3", op): (f"s3:{_S3_ACTION_NAMES.get(op, op)}", b) for op, b in _S3.items()},
    **{("cloudtrail", op): (f"cloudtrail:{op}", b) for op, b in _CLOUDTRAIL.items()},
    **{("dynamodb", op): (f"dynamodb:{op}", b) for op, b in _DYNAMODB.items()},
    **{("organizations", op): (f"organizations:{op}", _star) for op in ORGANIZATIONS_OPERATIONS},
    **{("cloudformation", op): (f"cloudformation:{op}", b) for op, b in _CLOUDFORMATION.items()},
}
# SQS batch operations are authorized as their single-message action.
ACTIONS[("sqs", "DeleteMessageBatch")] = ("sqs:DeleteMessage", _queue)
ACTIONS[("sqs", "SendMessageBatch")] = ("sqs:SendMessage", _queue)


def required(service: str, operation: str, params: Mapping[str, Any], ctx: Ctx) -> list[tuple[str, str]] | None:
    """The (action, resource) pairs the call needs; [] for none; None when the table does not know it."""
    if (service, operation) in NO_PERMISSION:
        return []
    entry = ACTIONS.get((service, operation))
    if entry is None:
        return None
    action, build = entry
    extra = _passed_roles(service, operation, params) + _tags_on_create(service, operation, params, ctx)
    return [(action, resource) for resource in build(params, ctx)] + extra


def _passed_roles(service: str, operation: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Handing a role to a service is its own authorization: PutTargets with a target RoleArn needs
    iam:PassRole on that role. https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
    (the condition key iam:PassedToService is set by `authorize._context`)."""
    if (service, operation) != ("events", "PutTargets"):
        return []
    targets = params.get("Targets") or []
    roles = [t.get("RoleArn") for t in targets if isinstance(t, Mapping)]
    return [("iam:PassRole", role) for role in roles if isinstance(role, str) and role]


def _tags_on_create(service: str, operation: str, params: Mapping[str, Any], ctx: Ctx) -> list[tuple[str, str]]:
    """DynamoDB CreateTable with Tags is also authorized as dynamodb:TagResource on the new table (the
    reference's API-operations table maps CreateTable to it)."""
    if (service, operation) != ("dynamodb", "CreateTable") or not params.get("Tags"):
        return []
    return [("dynamodb:TagResource", resource) for resource in _table(params, ctx)]
