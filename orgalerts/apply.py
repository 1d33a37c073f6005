"""The applier: changes -> AWS write calls.

Owns: one writer per resource kind (create/update/delete), the eventual-consistency retries (tenacity,
on explicit error codes only, with an injectable wait so tests never sleep), and checking
partial failures that AWS reports without raising (PutTargets' FailedEntryCount).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tenacity

from orgalerts.aws import ClientError, error_code
from orgalerts.plan import Change
from orgalerts.resources import (
    MANAGED_TAG_KEY,
    MANAGED_TAG_VALUE,
    Resource,
    is_managed_tags,
    managed_tags,
    statement_ids,
)

# IAM actions the writes below need, by principal (merged by `orgalerts permissions`). Tagging on
# create and passing the forwarder role to EventBridge are separate authorisations in IAM.
REQUIRED_ACTIONS: dict[str, tuple[str, ...]] = {
    "member": (
        "iam:CreateRole",
        "iam:TagRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRole",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:PassRole",
        "events:PutRule",
        "events:TagResource",
        "events:DeleteRule",
        "events:PutTargets",
        "events:RemoveTargets",
        "sqs:CreateQueue",
        "sqs:TagQueue",
        "sqs:SetQueueAttributes",
        "sqs:DeleteQueue",
    ),
    "notification": (
        "sqs:CreateQueue",
        "sqs:TagQueue",
        "sqs:SetQueueAttributes",
        "sqs:DeleteQueue",
        "events:CreateEventBus",
        "events:TagResource",
        "events:DeleteEventBus",
        "events:PutPermission",
        "events:RemovePermission",
        "events:PutRule",
        "events:DeleteRule",
        "events:PutTargets",
        "events:RemoveTargets",
        "sns:CreateTopic",
        "sns:TagResource",
        "sns:DeleteTopic",
        "sns:SetTopicAttributes",
        "sns:Subscribe",
        "sns:Unsubscribe",
    ),
}

# Codes AWS returns while a just-created IAM role or policy has not propagated yet. Never AccessDenied.
EVENTUAL_CONSISTENCY_CODES = {"InvalidParameterValue", "MalformedPolicyDocument", "ValidationException"}


class PartialFailure(Exception):
    """AWS accepted the call but reported a failed entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _eventually_consistent(exc: BaseException) -> bool:
    return (
        isinstance(exc, ClientError)
        and error_code(exc) in EVENTUAL_CONSISTENCY_CODES
        and ("role" in str(exc).lower() or "principal" in str(exc).lower())
    )


@dataclass
class Clients:
    """The clients one side's writes need; any may be None when that side does not use the service."""

    iam: Any = None
    events: Any = None
    sns: Any = None
    sqs: Any = None


class Applier:
    """Applies changes for one account. `wait` is tenacity's wait strategy (tests pass wait_none())."""

    def __init__(
        self, clients: Clients, *, topic_arns: dict[str, str] | None = None, wait: Any = None, attempts: int = 6
    ) -> None:
        self.clients = clients
        self._arns = topic_arns or {}
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_eventually_consistent),
            wait=wait if wait is not None else tenacity.wait_exponential(multiplier=1, max=20),
            stop=tenacity.stop_after_attempt(attempts),
            reraise=True,
        )

    def apply(self, changes: Sequence[Change], on_done: Callable[[Change], None] | None = None) -> None:
        for change in changes:
            self._retry(self._apply_one, change)
            if on_done is not None:
                on_done(change)

    def _apply_one(self, change: Change) -> None:
        handler = getattr(self, f"_{change.action}_{change.kind.replace('-', '_')}")
        handler(change.resource, change)

    # --- member and central: roles -------------------------------------------------------------
    def _create_role(self, r: Resource, _: Change) -> None:
        try:
            self.clients.iam.create_role(
                RoleName=r.name,
                AssumeRolePolicyDocument=r.props["trust"],
                Description="orgalerts: lets EventBridge forward IAM-change events to the central bus",
                Tags=managed_tags(),
            )
        except ClientError as exc:
            # A create whose answer was lost is retried by botocore and meets the role it made. Ours
            # (tagged) means the create happened: make sure of its trust and go on. Anyone else's: stop.
            if error_code(exc) != "EntityAlreadyExists":
                raise
            existing = self.clients.iam.get_role(RoleName=r.name)["Role"]
            if not is_managed_tags(existing.get("Tags")):
                raise
            self.clients.iam.update_assume_role_policy(RoleName=r.name, PolicyDocument=r.props["trust"])

    def _update_role(self, r: Resource, _: Change) -> None:
        self.clients.iam.update_assume_role_policy(RoleName=r.name, PolicyDocument=r.props["trust"])

    def _delete_role(self, r: Resource, _: Change) -> None:
        self.clients.iam.delete_role(RoleName=r.name)

    def _create_role_policy(self, r: Resource, _: Change) -> None:
        role, policy = r.name.split("/", 1)
        self.clients.iam.put_role_policy(RoleName=role, PolicyName=policy, PolicyDocument=r.props["document"])

    _update_role_policy = _create_role_policy

    def _delete_role_policy(self, r: Resource, _: Change) -> None:
        role, policy = r.name.split("/", 1)
        self.clients.iam.delete_role_policy(RoleName=role, PolicyName=policy)

    # --- rules and targets ---------------------------------------------------------------------
    def _create_rule(self, r: Resource, change: Change) -> None:
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

    _update_rule = _create_rule

    def _delete_rule(self, r: Resource, _: Change) -> None:
        bus, name = r.name.split("/", 1)
        self.clients.events.delete_rule(Name=name, EventBusName=bus)

    def _create_target(self, r: Resource, _: Change) -> None:
        bus, rule, target_id = r.name.split("/", 2)
        target: dict[str, Any] = {"Id": target_id, "Arn": r.props["arn"]}
        if r.props.get("role_arn"):
            target["RoleArn"] = r.props["role_arn"]
        if r.props.get("input_transformer"):
            target["InputTransformer"] = json.loads(r.props["input_transformer"])
        if r.props.get("dlq_arn"):
            target["DeadLetterConfig"] = {"Arn": r.props["dlq_arn"]}
        if r.props.get("retry"):
            target["RetryPolicy"] = json.loads(r.props["retry"])
        result = self.clients.events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
        if result.get("FailedEntryCount"):
            entry = result.get("FailedEntries", [{}])[0]
            raise PartialFailure(str(entry.get("ErrorCode", "PutTargetsFailed")), str(entry.get("ErrorMessage", "")))

    _update_target = _create_target

    def _delete_target(self, r: Resource, _: Change) -> None:
        bus, rule, target_id = r.name.split("/", 2)
        result = self.clients.events.remove_targets(Rule=rule, EventBusName=bus, Ids=[target_id])
        if result.get("FailedEntryCount"):
            entry = result.get("FailedEntries", [{}])[0]
            raise PartialFailure(str(entry.get("ErrorCode", "RemoveTargetsFailed")), str(entry.get("ErrorMessage", "")))

    # --- dead-letter queues ---------------------------------------------------------------------
    def _create_queue(self, r: Resource, _: Change) -> None:
        self.clients.sqs.create_queue(
            QueueName=r.name,
            Attributes={"Policy": r.props["policy"], "MessageRetentionPeriod": r.props["retention"]},
            tags={MANAGED_TAG_KEY: MANAGED_TAG_VALUE},
        )

    def _update_queue(self, r: Resource, change: Change) -> None:
        assert change.live is not None
        self.clients.sqs.set_queue_attributes(
            QueueUrl=change.live.arn,
            Attributes={"Policy": r.props["policy"], "MessageRetentionPeriod": r.props["retention"]},
        )

    def _delete_queue(self, r: Resource, _: Change) -> None:
        self.clients.sqs.delete_queue(QueueUrl=r.arn)

    # --- central bus ---------------------------------------------------------------------------
    def _create_bus(self, r: Resource, _: Change) -> None:
        self.clients.events.create_event_bus(Name=r.name, Tags=managed_tags())

    def _delete_bus(self, r: Resource, _: Change) -> None:
        self.clients.events.delete_event_bus(Name=r.name)

    def _create_bus_policy(self, r: Resource, _: Change) -> None:
        self.clients.events.put_permission(EventBusName=r.name, Policy=r.props["document"])

    def _update_bus_policy(self, r: Resource, change: Change) -> None:
        # Statements we do not want (a foreign grant, one for a dropped feature) are removed by Sid
        # first, so they go whether PutPermission's `Policy` form replaces the document (AWS) or
        # merges into it (moto); one without a Sid can only go with all of them.
        assert change.live is not None
        unwanted = statement_ids(change.live.props.get("document", "")) - statement_ids(r.props["document"])
        if "" in unwanted:
            self.clients.events.remove_permission(EventBusName=r.name, RemoveAllPermissions=True)
        else:
            for sid in sorted(unwanted):
                self.clients.events.remove_permission(EventBusName=r.name, StatementId=sid)
        self.clients.events.put_permission(EventBusName=r.name, Policy=r.props["document"])

    def _delete_bus_policy(self, r: Resource, _: Change) -> None:
        self.clients.events.remove_permission(EventBusName=r.name, RemoveAllPermissions=True)

    # --- topic ----------------------------------------------------------------------------------
    def _create_topic(self, r: Resource, _: Change) -> None:
        self.clients.sns.create_topic(Name=r.name, Tags=managed_tags())

    def _delete_topic(self, r: Resource, _: Change) -> None:
        self.clients.sns.delete_topic(TopicArn=self._arns[r.name])

    def _create_topic_policy(self, r: Resource, _: Change) -> None:
        self.clients.sns.set_topic_attributes(
            TopicArn=self._arns[r.name], AttributeName="Policy", AttributeValue=r.props["document"]
        )

    _update_topic_policy = _create_topic_policy

    def _delete_topic_policy(self, r: Resource, _: Change) -> None:
        pass  # deleting the topic removes its policy; a topic always has one

    def _create_subscription(self, r: Resource, _: Change) -> None:
        topic = r.name.split("/", 1)[0]
        self.clients.sns.subscribe(
            TopicArn=self._arns[topic], Protocol=r.props["protocol"], Endpoint=r.props["endpoint"]
        )

    def _delete_subscription(self, r: Resource, _: Change) -> None:
        if r.arn:  # a pending subscription has no ARN yet; it expires on its own after 3 days
            self.clients.sns.unsubscribe(SubscriptionArn=r.arn)
