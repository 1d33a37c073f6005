"""The building blocks of every forwarding path: roles, their policies, rules, targets and dead-letter queues.

Owns: the kinds shared by the member, central and organization-watch sides (`role`, `role-policy`,
`rule`, `target`, `queue`), their desired shapes (`forwarding_path`, `forwarding_role`, `forwarding_rule`,
`queue`, `target`), their readers (one read per managed resource, or one list for several rules; "not found"
means absent; ownership from the managed-by tag, or from the marker text where a read returns it anyway; never
look inside what is not ours) and their writes (`ForwardingWriter`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orgalerts.aws import ClientError, error_code, token_pages
from orgalerts.config import Config
from orgalerts.model.addresses import role_arn
from orgalerts.model.plan import Change, Kind
from orgalerts.model.policies import forwarder_permissions_policy, forwarder_trust_policy, queue_policy
from orgalerts.model.resources import (
    MANAGED_TAG_KEY,
    MANAGED_TAG_VALUE,
    MARKER_TEXT,
    Resource,
    canonical_json,
    canonical_policy,
    has_marker_text,
    is_managed_tags,
    managed_tags,
)
from orgalerts.sides import cloudformation as cfn
from orgalerts.sides.base import Clients, Grant, Sleep, Writer, raise_failed_entries

# A target names its role and its dead-letter queue: those are deleted only after the targets were re-pointed
# or removed (`Kind.delete_last`), e.g. the second role of earlier versions after both targets use the one role.
QUEUE = Kind("queue", "dead-letter queue", delete_last=True)
ROLE = Kind("role", "forwarder role", delete_last=True)
ROLE_POLICY = Kind("role-policy", "forwarder role permissions", delete_last=True)
RULE = Kind("rule", "rule")
TARGET = Kind("target", "rule target")
# Apply order: parents before children (a target needs its rule, its role and its dead-letter queue).
KINDS = (QUEUE, ROLE, ROLE_POLICY, RULE, TARGET)

# IAM actions of the reads and writes below, in three groups per kind: what reading needs (drift, and the
# reads every run makes), what removing needs (teardown, offboard, a feature switched off), and what creating
# and updating need. Tagging on create and passing a forwarder role to EventBridge are separate authorisations.
# Resource types per action (all resource-level, so every grant names orgalerts' own resources):
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
#   role*: GetRole, ListRoleTags, GetRolePolicy, CreateRole, TagRole, UpdateAssumeRolePolicy, PutRolePolicy,
#   DeleteRolePolicy, DeleteRole, PassRole (condition key iam:PassedToService)
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
#   rule-on-default-event-bus / rule-on-custom-event-bus: DescribeRule, ListTargetsByRule, PutRule, DeleteRule,
#   PutTargets, RemoveTargets, ListTagsForResource, TagResource (the two tag actions: event-bus too);
#   ListRules has no resource type: granted on "*" (`LIST_RULES`)
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
#   queue*: GetQueueUrl, GetQueueAttributes, ListQueueTags, CreateQueue, TagQueue, SetQueueAttributes, DeleteQueue
ROLE_READ = ("iam:GetRole", "iam:ListRoleTags", "iam:GetRolePolicy")
ROLE_REMOVE = ("iam:DeleteRolePolicy", "iam:DeleteRole")
ROLE_WRITE = ("iam:CreateRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy")
RULE_READ = ("events:DescribeRule", "events:ListTagsForResource", "events:ListTargetsByRule")
RULE_REMOVE = ("events:RemoveTargets", "events:DeleteRule")
RULE_WRITE = ("events:PutRule", "events:TagResource", "events:PutTargets")
LIST_RULES = ("events:ListRules",)
QUEUE_READ = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ListQueueTags")
QUEUE_REMOVE = ("sqs:DeleteQueue",)
QUEUE_WRITE = ("sqs:CreateQueue", "sqs:TagQueue", "sqs:SetQueueAttributes")
# PutTargets with a RoleArn needs iam:PassRole on that role; only ever to EventBridge.
PASSED_TO_EVENTBRIDGE = {"StringEquals": {"iam:PassedToService": "events.amazonaws.com"}}

Arns = Callable[[Config], list[str]]


def path_grants(
    principal: str,
    *,
    role_sid: str,
    rule_sid: str,
    roles: Arns,
    used_roles: Arns,
    rules: Arns,
    used_rules: Arns,
    used: Callable[[Config], bool] = lambda _: True,
) -> tuple[Grant, ...]:
    """The grants of forwarding paths (role + rule + target). Reading and removing cover every role and rule
    orgalerts may have created under any configuration (`roles`, `rules`): the readers look for them whatever
    the configuration, and removal of what an earlier configuration left must work. Creating, updating and
    passing a role cover only what this configuration uses (`used_roles`, `used_rules`, when `used`)."""
    return (
        Grant(principal, f"ReadAndRemove{role_sid}", ROLE_READ + ROLE_REMOVE, roles),
        Grant(principal, f"Manage{role_sid}", ROLE_WRITE, used_roles, used),
        Grant(principal, f"Pass{role_sid}ToEventBridge", ("iam:PassRole",), used_roles, used, PASSED_TO_EVENTBRIDGE),
        Grant(principal, f"ReadAndRemove{rule_sid}", RULE_READ + RULE_REMOVE, rules),
        Grant(principal, f"Manage{rule_sid}", RULE_WRITE, used_rules, used),
    )


def queue_grants(principal: str, sid: str, queues: Arns, used: Callable[[Config], bool]) -> tuple[Grant, ...]:
    """A dead-letter queue: read and removed whatever the configuration (see `path_grants`), made when used."""
    return (
        Grant(principal, f"ReadAndRemove{sid}", QUEUE_READ + QUEUE_REMOVE, queues),
        Grant(principal, f"Manage{sid}", QUEUE_WRITE, queues, used),
    )


DLQ_RETENTION_SECONDS = "1209600"
# EventBridge's own maximums, stated explicitly so drift sees it if someone lowers them.
RETRY_POLICY = canonical_json({"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185})


# --- desired -------------------------------------------------------------------------------------------


def queue(name: str, arn: str, rule_arns: list[str], *, marker: bool = False) -> Resource:
    """A dead-letter queue only orgalerts' rules may write to. 14 days, the maximum: undelivered alerts
    must outlive a long weekend and a slow repair. `marker`: the policy's Id carries the ownership marker, so
    the one GetQueueAttributes that reads the policy also proves ownership (no ListQueueTags; `read_queue_at`).
    """
    policy = queue_policy(arn, rule_arns)
    if marker:
        # Id: "an optional identifier for the policy", free text
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_id.html).
        policy = canonical_policy({**json.loads(policy), "Id": MARKER_TEXT})
    return Resource("queue", name, {"policy": policy, "retention": DLQ_RETENTION_SECONDS})


def target(key: str, arn: str, *, role: str = "", transformer: str = "", dlq_arn: str = "") -> Resource:
    """A rule target. An event-bus target (a role, no transformer) carries no RetryPolicy: AWS CDK documents
    RetryPolicy as unsupported on event-bus targets, and the strict sandbox refuses it as AWS does
    (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_events_targets.EventBusProps.html);
    EventBridge then applies its defaults (24 h, 185 attempts) and still dead-letters what it gives up on."""
    bus_target = ":event-bus/" in arn
    return Resource(
        "target",
        key,
        {
            "arn": arn,
            "role_arn": role,
            "input_transformer": transformer,
            "dlq_arn": dlq_arn,
            "retry": RETRY_POLICY if dlq_arn and not bus_target else "",
        },
    )


def forwarding_role(config: Config, account_id: str, role: str) -> list[Resource]:
    """A role EventBridge assumes to put events on the central bus, and its one inline policy."""
    names = config.central.names
    return [
        Resource("role", role, {"trust": forwarder_trust_policy(account_id)}),
        Resource(
            "role-policy",
            f"{role}/{names.forwarder_policy}",
            {"document": forwarder_permissions_policy(config.central.bus_arn)},
        ),
    ]


def forwarding_rule(
    config: Config, account_id: str, role: str, rule: str, rule_props: dict[str, str], *, dlq_arn: str = ""
) -> list[Resource]:
    """A rule on an account's default bus (us-east-1) and its target, the central bus, reached through `role`."""
    central = config.central
    return [
        Resource("rule", f"default/{rule}", rule_props),
        target(
            f"default/{rule}/{central.names.member_target_id}",
            central.bus_arn,
            role=role_arn(account_id, role),
            dlq_arn=dlq_arn,
        ),
    ]


def forwarding_path(
    config: Config, account_id: str, role: str, rule: str, rule_props: dict[str, str], *, dlq_arn: str = ""
) -> list[Resource]:
    """A rule on an account's default bus (us-east-1) sending to the central bus through its own role."""
    return forwarding_role(config, account_id, role) + forwarding_rule(
        config, account_id, role, rule, rule_props, dlq_arn=dlq_arn
    )


# --- live ----------------------------------------------------------------------------------------------

NOT_FOUND = {"NoSuchEntity", "ResourceNotFoundException", "NotFound", "NotFoundException"}


def absent(exc: ClientError) -> bool:
    return error_code(exc) in NOT_FOUND


def read_role(iam: Any, role_name: str, policy_name: str) -> list[Resource]:
    """The role (trust and ownership from one GetRole: its answer carries the role's Tags,
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html and API_Role.html) and, if ours, its
    inline policy (GetRolePolicy)."""
    return read_role_and_tags(iam, role_name, policy_name)[0]


def read_role_and_tags(iam: Any, role_name: str, policy_name: str) -> tuple[list[Resource], list[dict[str, str]]]:
    """`read_role`, and the role's tags (none when it is absent) for a caller that keeps a record in them."""
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except ClientError as exc:
        if absent(exc):
            return [], []
        raise
    tags = role.get("Tags")
    if tags is None:  # some endpoints omit tags from GetRole
        tags = iam.list_role_tags(RoleName=role_name).get("Tags", [])
    managed = is_managed_tags(tags)
    found = [Resource("role", role_name, {"trust": canonical_policy(role["AssumeRolePolicyDocument"])}, managed)]
    if not managed:
        return found, tags  # never look further into what is not ours
    try:
        doc = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        found.append(Resource("role-policy", f"{role_name}/{policy_name}", {"document": canonical_policy(doc)}))
    except ClientError as exc:
        if not absent(exc):
            raise
    return found, tags


def read_rule(events: Any, bus: str, rule_name: str) -> list[Resource]:
    """The rule and every target on it (targets with foreign ids included, so drift sees them)."""
    try:
        rule = events.describe_rule(Name=rule_name, EventBusName=bus)
    except ClientError as exc:
        if absent(exc):
            return []
        raise
    return _rule_and_targets(events, bus, rule, _rule_tagged(events, rule))


def read_rules(events: Any, bus: str, rule_names: list[str], prefix: str) -> list[Resource]:
    """Several rules of one bus with one ListRules (NamePrefix; every page followed), then each one's targets.

    ListRules returns each rule's Name, Arn, EventPattern, State and Description, but neither targets nor tags,
    at most 100 rules a page (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListRules.html).
    Ownership: the marker text in the Description orgalerts writes (`MARKER_TEXT`), else the managed-by tag
    (ListTagsForResource: a rule written by an earlier version, or tagged by hand or by `--adopt`; the next
    deploy writes the Description). Rules with the prefix but another name (someone else's) are ignored.
    """
    wanted = set(rule_names)
    return read_rules_where(events, bus, prefix, lambda name: name in wanted)


def read_rules_where(
    events: Any, bus: str, prefix: str, keep: Callable[[str], bool], *, concurrency: int = 1
) -> list[Resource]:
    """`read_rules` for the rules whose name `keep` accepts (e.g. every alert route, whatever config made it).

    `concurrency` > 1 reads that many rules' targets (and tags, where needed) at once: the central bus holds about
    forty rules, one ListTargetsByRule each, and one after the other they were most of the central side's read
    (and, under throttling, its retries' waits added up in series). Results keep ListRules' order. A member
    account's two rules are read in its own worker (1): a pool per account would cost more than it saves."""
    rules = [
        rule
        for page in token_pages(events.list_rules, NamePrefix=prefix, EventBusName=bus)
        for rule in page.get("Rules", [])
        if keep(str(rule.get("Name")))
    ]

    def read(rule: dict[str, Any]) -> list[Resource]:
        managed = has_marker_text(rule.get("Description")) or _rule_tagged(events, rule)
        return _rule_and_targets(events, bus, rule, managed)

    if concurrency <= 1 or len(rules) <= 1:
        return [resource for rule in rules for resource in read(rule)]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="orgalerts-rules") as pool:
        return [resource for part in pool.map(read, rules) for resource in part]


def _rule_tagged(events: Any, rule: dict[str, Any]) -> bool:
    """DescribeRule and ListRules return no tags: the managed-by tag takes one ListTagsForResource."""
    return is_managed_tags(events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags", []))


def _rule_and_targets(events: Any, bus: str, rule: dict[str, Any], managed: bool) -> list[Resource]:
    rule_name = str(rule["Name"])
    key = f"{bus}/{rule_name}"
    props = {
        "pattern": canonical_json(rule.get("EventPattern") or "{}"),
        "state": str(rule.get("State", "")),
        "description": str(rule.get("Description", "")),
    }
    found = [Resource("rule", key, props, managed, arn=str(rule.get("Arn", "")))]
    if not managed:
        return found  # never look further into what is not ours
    for page in token_pages(events.list_targets_by_rule, Rule=rule_name, EventBusName=bus):
        for entry in page.get("Targets", []):
            transformer = entry.get("InputTransformer")
            found.append(
                Resource(
                    "target",
                    f"{key}/{entry['Id']}",
                    {
                        "arn": str(entry.get("Arn", "")),
                        "role_arn": str(entry.get("RoleArn", "")),
                        "input_transformer": canonical_json(transformer) if transformer else "",
                        "dlq_arn": str((entry.get("DeadLetterConfig") or {}).get("Arn", "")),
                        "retry": canonical_json(entry["RetryPolicy"]) if entry.get("RetryPolicy") else "",
                    },
                )
            )
    return found


QUEUE_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def read_queue(sqs: Any, name: str, *, marker: bool = False) -> list[Resource]:
    """A dead-letter queue; undelivered events waiting in it are noted (drift reports them). `marker`: its
    policy's Id may carry the ownership marker (see `read_queue_at`)."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in QUEUE_MISSING:
            return []
        raise
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return [_queue_resource(sqs, name, url, attributes, marker=marker)]


def queue_url(sqs: Any, account_id: str, name: str) -> str:
    """A queue's URL, built: `https://sqs.<region>.amazonaws.com/<account id>/<queue name>` is the documented form
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-queue-message-identifiers.html),
    the client's endpoint being `https://sqs.<region>.amazonaws.com` (or the sandbox's)."""
    return f"{str(sqs.meta.endpoint_url).rstrip('/')}/{account_id}/{name}"


def read_queue_at(sqs: Any, account_id: str, name: str) -> list[Resource]:
    """A dead-letter queue read with one GetQueueAttributes on its built URL (`queue_url`) instead of GetQueueUrl
    + GetQueueAttributes + ListQueueTags: ownership is the marker in its policy's Id (`queue(..., marker=True)`),
    with ListQueueTags only for a queue whose policy lacks it (an earlier version's; the next deploy writes it).
    Not found at the built URL: GetQueueUrl settles it (absent, or found where AWS says), so a URL form AWS
    might change costs a call, never a wrong answer."""
    url = queue_url(sqs, account_id, name)
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    except ClientError as exc:
        if error_code(exc) not in QUEUE_MISSING:
            raise
        return read_queue(sqs, name, marker=True)
    return [_queue_resource(sqs, name, url, attributes, marker=True)]


def _queue_resource(sqs: Any, name: str, url: str, attributes: dict[str, Any], *, marker: bool) -> Resource:
    policy = str(attributes.get("Policy") or "")
    owned = marker and bool(policy) and json.loads(policy).get("Id") == MARKER_TEXT
    managed = owned or is_managed_tags(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
    waiting = int(attributes.get("ApproximateNumberOfMessages", "0")) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
    )
    props = {
        "policy": canonical_policy(policy) if policy else "",
        "retention": str(attributes.get("MessageRetentionPeriod", "")),
    }
    notes = (
        (f"{waiting} undelivered events waiting in dead-letter queue {name} (re-send: orgalerts redrive)",)
        if waiting
        else ()
    )
    return Resource("queue", name, props, managed, notes=notes, arn=str(url))


# --- writes --------------------------------------------------------------------------------------------


ROLE_DESCRIPTION = "orgalerts: lets EventBridge forward IAM-change events to the central bus"


class ForwardingWriter(Writer):
    """Writes for roles, role policies, rules, targets and queues; sides add their own kinds' handlers."""

    # SQS refuses to reuse a deleted queue's name for 60 s (teardown then deploy, offboard then onboard):
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
    retry_codes = frozenset({"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"})

    def __init__(
        self,
        clients: Clients,
        *,
        wait: Any = None,
        sleep: Sleep = time.sleep,
        role_records: dict[str, list[dict[str, str]]] | None = None,
    ) -> None:
        super().__init__(clients, wait=wait, sleep=sleep)
        # Tags a side records on a role it creates, beside the ownership marker (the member side's one-role record).
        self.role_records = role_records or {}
        self.handlers.update(
            {
                ("create", "role"): self.create_role,
                ("update", "role"): self.update_role,
                ("delete", "role"): self.delete_role,
                ("create", "role-policy"): self.put_role_policy,
                ("update", "role-policy"): self.put_role_policy,
                ("delete", "role-policy"): self.delete_role_policy,
                ("create", "rule"): self.put_rule,
                ("update", "rule"): self.put_rule,
                ("delete", "rule"): self.delete_rule,
                ("create", "target"): self.put_target,
                ("update", "target"): self.put_target,
                ("delete", "target"): self.delete_target,
                ("create", "queue"): self.create_queue,
                ("update", "queue"): self.update_queue,
                ("delete", "queue"): self.delete_queue,
            }
        )

    def create_role(self, change: Change) -> None:
        r, iam = change.resource, self.clients.iam
        try:
            iam.create_role(
                RoleName=r.name,
                AssumeRolePolicyDocument=r.props["trust"],
                Description=ROLE_DESCRIPTION,
                Tags=managed_tags() + self.role_records.get(r.name, []),
            )
        except ClientError as exc:
            # A create whose answer was lost is retried by botocore and meets the role it made. Ours
            # (tagged) means the create happened: make sure of its trust and go on. Anyone else's: stop.
            if error_code(exc) != "EntityAlreadyExists":
                raise
            if not is_managed_tags(iam.get_role(RoleName=r.name)["Role"].get("Tags")):
                raise
            self.update_role(change)

    def update_role(self, change: Change) -> None:
        r = change.resource
        self.clients.iam.update_assume_role_policy(RoleName=r.name, PolicyDocument=r.props["trust"])

    def delete_role(self, change: Change) -> None:
        self.clients.iam.delete_role(RoleName=change.resource.name)

    def put_role_policy(self, change: Change) -> None:
        r = change.resource
        role, policy = r.name.split("/", 1)
        self.clients.iam.put_role_policy(RoleName=role, PolicyName=policy, PolicyDocument=r.props["document"])

    def delete_role_policy(self, change: Change) -> None:
        role, policy = change.resource.name.split("/", 1)
        self.clients.iam.delete_role_policy(RoleName=role, PolicyName=policy)

    def put_rule(self, change: Change) -> None:
        r = change.resource
        bus, name = r.name.split("/", 1)
        # Tags only on create: PutRule without Tags keeps the existing ones.
        tags = {"Tags": managed_tags()} if change.action == "create" else {}
        self.clients.events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=r.props["pattern"],
            State=r.props["state"],
            Description=r.props["description"],
            **tags,
        )

    def delete_rule(self, change: Change) -> None:
        bus, name = change.resource.name.split("/", 1)
        self.clients.events.delete_rule(Name=name, EventBusName=bus)

    def put_target(self, change: Change) -> None:
        r = change.resource
        bus, rule, target_id = r.name.split("/", 2)
        entry: dict[str, Any] = {"Id": target_id, "Arn": r.props["arn"]}
        if r.props.get("role_arn"):
            entry["RoleArn"] = r.props["role_arn"]
        if r.props.get("input_transformer"):
            entry["InputTransformer"] = json.loads(r.props["input_transformer"])
        if r.props.get("dlq_arn"):
            entry["DeadLetterConfig"] = {"Arn": r.props["dlq_arn"]}
        if r.props.get("retry"):
            entry["RetryPolicy"] = json.loads(r.props["retry"])
        raise_failed_entries(
            self.clients.events.put_targets(Rule=rule, EventBusName=bus, Targets=[entry]), "PutTargetsFailed"
        )

    def delete_target(self, change: Change) -> None:
        bus, rule, target_id = change.resource.name.split("/", 2)
        raise_failed_entries(
            self.clients.events.remove_targets(Rule=rule, EventBusName=bus, Ids=[target_id]), "RemoveTargetsFailed"
        )

    def create_queue(self, change: Change) -> None:
        r = change.resource
        self.clients.sqs.create_queue(
            QueueName=r.name,
            Attributes={"Policy": r.props["policy"], "MessageRetentionPeriod": r.props["retention"]},
            tags={MANAGED_TAG_KEY: MANAGED_TAG_VALUE},
        )

    def update_queue(self, change: Change) -> None:
        assert change.live is not None
        r = change.resource
        self.clients.sqs.set_queue_attributes(
            QueueUrl=change.live.arn,
            Attributes={"Policy": r.props["policy"], "MessageRetentionPeriod": r.props["retention"]},
        )

    def delete_queue(self, change: Change) -> None:
        self.clients.sqs.delete_queue(QueueUrl=change.resource.arn)


# --- CloudFormation form (`orgalerts export cloudformation`) ---------------------------------------------------
# Resource types and properties: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/
# aws-resource-iam-role.html (inline `Policies`, `Tags`), aws-resource-events-rule.html (`Targets` with `RoleArn`,
# `InputTransformer`, `DeadLetterConfig`, `RetryPolicy`; `Tags` on the rule: the resource schema marks it taggable,
# tagOnCreate), aws-resource-sqs-queue.html and aws-resource-sqs-queuepolicy.html (a queue's policy is a resource of
# its own). A role's inline policy and a rule's targets belong to their parent, as in the direct engine.


def role_forms(kind: str, description: str) -> tuple[cfn.Form, cfn.Form]:
    """The CloudFormation forms of a role of `kind` and of its inline policies (kind `<kind>-policy`): the role
    with its trust policy, description and ownership tags; each inline policy in the role's `Policies`."""

    def role_form(r: Resource, stack: cfn.Stack) -> None:
        properties = {
            "RoleName": r.name,
            "Description": description,
            "AssumeRolePolicyDocument": cfn.document(r.props["trust"]),
            "Tags": cfn.tags(),
        }
        stack.add(r, "AWS::IAM::Role", properties)

    def role_policy_form(r: Resource, stack: cfn.Stack) -> None:
        role, policy = r.name.split("/", 1)
        stack.holds(kind, role, r)
        inline = {"PolicyName": policy, "PolicyDocument": cfn.document(r.props["document"])}
        stack.properties(kind, role).setdefault("Policies", []).append(inline)

    return role_form, role_policy_form


_role_form, _role_policy_form = role_forms("role", ROLE_DESCRIPTION)


def _rule_form(r: Resource, stack: cfn.Stack) -> None:
    bus, name = r.name.split("/", 1)
    properties = {
        "Name": name,
        "EventBusName": stack.ref("bus", bus) if stack.has("bus", bus) else bus,
        "EventPattern": cfn.document(r.props["pattern"]),
        "State": r.props["state"],
        "Description": r.props["description"],
        "Tags": cfn.tags(),
    }
    stack.add(r, "AWS::Events::Rule", properties)


def _target_form(r: Resource, stack: cfn.Stack) -> None:
    bus, rule, target_id = r.name.split("/", 2)
    rule_key = f"{bus}/{rule}"
    stack.holds("rule", rule_key, r)
    entry: dict[str, Any] = {"Id": target_id, "Arn": r.props["arn"]}
    if r.props.get("role_arn"):
        entry["RoleArn"] = r.props["role_arn"]
    if r.props.get("input_transformer"):
        entry["InputTransformer"] = cfn.document(r.props["input_transformer"])
    if r.props.get("dlq_arn"):
        entry["DeadLetterConfig"] = {"Arn": r.props["dlq_arn"]}
    if r.props.get("retry"):
        entry["RetryPolicy"] = cfn.document(r.props["retry"])
    stack.properties("rule", rule_key).setdefault("Targets", []).append(entry)


def _queue_form(r: Resource, stack: cfn.Stack) -> None:
    properties = {"QueueName": r.name, "MessageRetentionPeriod": int(r.props["retention"]), "Tags": cfn.tags()}
    stack.add(r, "AWS::SQS::Queue", properties)
    policy = {"Queues": [stack.ref("queue", r.name)], "PolicyDocument": cfn.document(r.props["policy"])}
    stack.add(Resource("queue-policy", r.name), "AWS::SQS::QueuePolicy", policy)


CLOUDFORMATION: dict[str, cfn.Form] = {
    "queue": _queue_form,
    "role": _role_form,
    "role-policy": _role_policy_form,
    "rule": _rule_form,
    "target": _target_form,
}
