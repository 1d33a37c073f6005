"""Live state readers: AWS -> `Resource`s of the same shape desired state uses.

Owns: the read calls (one per managed resource, no more: see the call budget in bench/), mapping
"not found" errors to absence, and deciding ownership from the managed-by tag. Never writes.
"""

from __future__ import annotations

from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.desired import CentralAddress
from orgalerts.resources import Names, Resource, canonical_json, canonical_policy, is_managed_tags

# IAM actions the reads below need, by principal (merged by `orgalerts permissions`).
REQUIRED_ACTIONS: dict[str, tuple[str, ...]] = {
    "member": (
        "iam:GetRole",
        "iam:ListRoleTags",
        "iam:GetRolePolicy",
        "events:DescribeRule",
        "events:ListTagsForResource",
        "events:ListTargetsByRule",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "sqs:ListQueueTags",
    ),
    "notification": (
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "sqs:ListQueueTags",
        "events:DescribeEventBus",
        "events:DescribeRule",
        "events:ListTagsForResource",
        "events:ListTargetsByRule",
        "sns:GetTopicAttributes",
        "sns:ListTagsForResource",
        "sns:ListSubscriptionsByTopic",
    ),
}

NOT_FOUND = {"NoSuchEntity", "ResourceNotFoundException", "NotFound", "NotFoundException"}


def _absent(exc: ClientError) -> bool:
    return error_code(exc) in NOT_FOUND


def read_role(iam: Any, role_name: str, policy_name: str) -> list[Resource]:
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except ClientError as exc:
        if _absent(exc):
            return []
        raise
    tags = role.get("Tags")
    if tags is None:  # some endpoints omit tags from GetRole
        tags = iam.list_role_tags(RoleName=role_name).get("Tags", [])
    managed = is_managed_tags(tags)
    found = [Resource("role", role_name, {"trust": canonical_policy(role["AssumeRolePolicyDocument"])}, managed)]
    if not managed:
        return found  # never look further into what is not ours
    try:
        doc = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        found.append(Resource("role-policy", f"{role_name}/{policy_name}", {"document": canonical_policy(doc)}))
    except ClientError as exc:
        if not _absent(exc):
            raise
    return found


def read_rule(events: Any, bus: str, rule_name: str) -> list[Resource]:
    """The rule and every target on it (targets with foreign ids included, so drift sees them)."""
    try:
        rule = events.describe_rule(Name=rule_name, EventBusName=bus)
    except ClientError as exc:
        if _absent(exc):
            return []
        raise
    tags = events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags", [])
    managed = is_managed_tags(tags)
    key = f"{bus}/{rule_name}"
    props = {
        "pattern": canonical_json(rule.get("EventPattern") or "{}"),
        "state": str(rule.get("State", "")),
        "description": str(rule.get("Description", "")),
    }
    found = [Resource("rule", key, props, managed)]
    if not managed:
        return found
    paginator = events.get_paginator("list_targets_by_rule")
    for page in paginator.paginate(Rule=rule_name, EventBusName=bus):
        for target in page.get("Targets", []):
            transformer = target.get("InputTransformer")
            found.append(
                Resource(
                    "target",
                    f"{key}/{target['Id']}",
                    {
                        "arn": str(target.get("Arn", "")),
                        "role_arn": str(target.get("RoleArn", "")),
                        "input_transformer": canonical_json(transformer) if transformer else "",
                        "dlq_arn": str((target.get("DeadLetterConfig") or {}).get("Arn", "")),
                        "retry": canonical_json(target["RetryPolicy"]) if target.get("RetryPolicy") else "",
                    },
                )
            )
    return found


QUEUE_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def read_queue(sqs: Any, name: str) -> list[Resource]:
    """A dead-letter queue; undelivered events waiting in it are noted (drift reports them)."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in QUEUE_MISSING:
            return []
        raise
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    managed = is_managed_tags(tags)
    waiting = int(attributes.get("ApproximateNumberOfMessages", "0")) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
    )
    props = {
        "policy": canonical_policy(attributes["Policy"]) if attributes.get("Policy") else "",
        "retention": str(attributes.get("MessageRetentionPeriod", "")),
    }
    notes = (
        (f"{waiting} undelivered events waiting in dead-letter queue {name} (re-send: orgalerts redrive)",)
        if waiting
        else ()
    )
    return [Resource("queue", name, props, managed, notes=notes, arn=str(url))]


def read_member(
    iam: Any, events: Any, sqs: Any, names: Names, *, watchdog: bool = True, dead_letters: bool = True
) -> list[Resource]:
    """A member account's forwarding resources (us-east-1): forwarder and watchdog, and the DLQ.

    With a feature off (`watchdog`, `dead_letters` False) its resources are read only when the live
    forwarding rule shows it was on (its pattern names the watchdog, its target has a dead-letter
    queue): turning a feature off still removes what it left, and a steady state pays no extra reads.
    """
    found = read_role(iam, names.forwarder_role, names.forwarder_policy) + read_rule(
        events, "default", names.member_rule
    )
    forward_key = f"default/{names.member_rule}"
    rule = next((r for r in found if r.kind == "rule" and r.name == forward_key), None)
    if watchdog or (rule is not None and names.watchdog_rule in rule.props.get("pattern", "")):
        found += read_role(iam, names.watchdog_role, names.forwarder_policy)
        found += read_rule(events, "default", names.watchdog_rule)
    if dead_letters or any(r.kind == "target" and r.props.get("dlq_arn") for r in found):
        found = read_queue(sqs, names.member_dlq) + found
    return found


def read_bus(events: Any, bus: str) -> list[Resource]:
    try:
        described = events.describe_event_bus(Name=bus)
    except ClientError as exc:
        if _absent(exc):
            return []
        raise
    tags = events.list_tags_for_resource(ResourceARN=described["Arn"]).get("Tags", [])
    managed = is_managed_tags(tags)
    found = [Resource("bus", bus, {}, managed)]
    if managed and described.get("Policy"):
        found.append(Resource("bus-policy", bus, {"document": canonical_policy(described["Policy"])}))
    return found


def read_topic(sns: Any, topic_arn: str, topic_name: str) -> list[Resource]:
    try:
        attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    except ClientError as exc:
        if _absent(exc):
            return []
        raise
    tags = sns.list_tags_for_resource(ResourceArn=topic_arn).get("Tags", [])
    managed = is_managed_tags(tags)
    found = [Resource("topic", topic_name, {}, managed)]
    if not managed:
        return found
    if attributes.get("Policy"):
        found.append(Resource("topic-policy", topic_name, {"document": canonical_policy(attributes["Policy"])}))
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    for page in paginator.paginate(TopicArn=topic_arn):
        for sub in page.get("Subscriptions", []):
            # Only e-mail subscriptions are orgalerts' to manage; a team's own (chat, queue, ...)
            # subscriptions to the topic are theirs and are never read, reported or removed.
            if sub.get("Protocol") != "email":
                continue
            pending = sub.get("SubscriptionArn") == "PendingConfirmation"
            found.append(
                Resource(
                    "subscription",
                    f"{topic_name}/email/{sub['Endpoint']}",
                    {"protocol": "email", "endpoint": str(sub["Endpoint"])},
                    notes=("pending confirmation",) if pending else (),
                    arn="" if pending else str(sub["SubscriptionArn"]),
                )
            )
    return found


def read_org_watch(iam: Any, events: Any, names: Names) -> list[Resource]:
    """The management account's organization watch (us-east-1)."""
    return read_role(iam, names.org_forwarder_role, names.forwarder_policy) + read_rule(
        events, "default", names.org_watch_rule
    )


def read_central(events: Any, sns: Any, sqs: Any, central: CentralAddress) -> list[Resource]:
    """The notification account's resources (in the configured region)."""
    names = central.names
    found = read_bus(events, names.central_bus)
    if any(r.kind == "bus" and r.managed for r in found):
        found += read_rule(events, names.central_bus, names.central_rule)
        found += read_rule(events, names.central_bus, names.tamper_rule)
        found += read_rule(events, names.central_bus, names.account_change_rule)
    found += read_rule(events, "default", names.central_watch_rule)
    found += read_topic(sns, central.topic_arn, names.topic)
    found += read_queue(sqs, names.central_dlq)
    return found
