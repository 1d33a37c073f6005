"""Desired state: config + organization scope -> the resources each side should have. Pure.

Owns: every policy document orgalerts writes (least privilege, see each builder), the member forwarding
resources, and the central bus, its policy, the alert rule with its message format, the topic and the
subscriptions. No AWS calls, so `plan`, `drift` and `deploy` share it and tests run on literal data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from orgalerts.aws import MEMBER_REGION
from orgalerts.config import Config
from orgalerts.messages import alert_input_transformer
from orgalerts.org import Scope
from orgalerts.patterns import get_pattern
from orgalerts.resources import Names, Resource, canonical_json, canonical_policy

PARTITION = "aws"


@dataclass(frozen=True)
class CentralAddress:
    """Where the central side lives; members need it to point their targets and role policy at it."""

    account_id: str
    region: str
    names: Names

    @property
    def bus_arn(self) -> str:
        return f"arn:{PARTITION}:events:{self.region}:{self.account_id}:event-bus/{self.names.central_bus}"

    @property
    def rule_arn(self) -> str:
        return (
            f"arn:{PARTITION}:events:{self.region}:{self.account_id}:rule/"
            f"{self.names.central_bus}/{self.names.central_rule}"
        )

    @property
    def topic_arn(self) -> str:
        return f"arn:{PARTITION}:sns:{self.region}:{self.account_id}:{self.names.topic}"


def central_address(config: Config) -> CentralAddress:
    return CentralAddress(config.notification.account_id, config.region, Names(config.resource_prefix))


def forwarder_trust_policy(account_id: str) -> str:
    """Only EventBridge, and only on behalf of rules in this same account, may assume the role."""
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        }
    )


def forwarder_permissions_policy(bus_arn: str) -> str:
    """The role may do one thing: put events on the one central bus."""
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "PutEventsOnCentralBus", "Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn}
            ],
        }
    )


def member_resources(config: Config, account_id: str) -> list[Resource]:
    """The forwarding resources of one member account (all in us-east-1)."""
    central = central_address(config)
    names = central.names
    pattern = get_pattern(config.alerts.pattern)
    role_arn = f"arn:{PARTITION}:iam::{account_id}:role/{names.forwarder_role}"
    return [
        Resource("role", names.forwarder_role, {"trust": forwarder_trust_policy(account_id)}),
        Resource(
            "role-policy",
            f"{names.forwarder_role}/{names.forwarder_policy}",
            {"document": forwarder_permissions_policy(central.bus_arn)},
        ),
        Resource(
            "rule",
            f"default/{names.member_rule}",
            {
                "pattern": canonical_json(pattern.pattern),
                "state": pattern.state,
                "description": "orgalerts: forward IAM-change events to the central bus",
            },
        ),
        Resource(
            "target",
            f"default/{names.member_rule}/{names.member_target_id}",
            {"arn": central.bus_arn, "role_arn": role_arn, "input_transformer": ""},
        ),
    ]


def bus_policy(config: Config, scope: Scope) -> str:
    """Who may put events on the central bus: the configured OUs (or the whole organization) and the
    explicitly included accounts. Two statements at most, never one per account (10,240-char cap)."""
    central = central_address(config)
    statements: list[dict[str, object]] = []
    condition: dict[str, dict[str, object]] = {"StringEquals": {"aws:PrincipalOrgID": scope.organization_id}}
    if not scope.whole_organization and scope.ou_path_patterns:
        condition["ForAnyValue:StringLike"] = {"aws:PrincipalOrgPaths": sorted(scope.ou_path_patterns)}
    if scope.whole_organization or scope.ou_path_patterns:
        statements.append(
            {
                "Sid": "OrgAlertsTargetOUs",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": central.bus_arn,
                "Condition": condition,
            }
        )
    included = sorted(set(scope.included_accounts) - {central.account_id})
    if included:
        statements.append(
            {
                "Sid": "OrgAlertsIncludedAccounts",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{PARTITION}:iam::{a}:root" for a in included]},
                "Action": "events:PutEvents",
                "Resource": central.bus_arn,
            }
        )
    return canonical_policy({"Version": "2012-10-17", "Statement": statements})


def topic_policy(config: Config) -> str:
    """Only EventBridge may publish, and only for the central alert rule."""
    central = central_address(config)
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OrgAlertsEventBridgePublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": central.topic_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": central.rule_arn}},
                }
            ],
        }
    )


def central_resources(config: Config, scope: Scope) -> list[Resource]:
    """The notification account's resources (in `config.region`)."""
    central = central_address(config)
    names = central.names
    pattern = get_pattern(config.alerts.pattern)
    bus = names.central_bus
    resources = [
        Resource("bus", bus),
        Resource("bus-policy", bus, {"document": bus_policy(config, scope)}),
        Resource("topic", names.topic),
        Resource("topic-policy", names.topic, {"document": topic_policy(config)}),
    ]
    resources += [
        Resource("subscription", f"{names.topic}/email/{email}", {"protocol": "email", "endpoint": email})
        for email in config.notification.emails
    ]
    resources += [
        Resource(
            "rule",
            f"{bus}/{names.central_rule}",
            {
                "pattern": canonical_json(pattern.pattern),
                "state": pattern.state,
                "description": "orgalerts: format IAM-change events from member accounts and send them to the topic",
            },
        ),
        Resource(
            "target",
            f"{bus}/{names.central_rule}/{names.central_target_id}",
            {
                "arn": central.topic_arn,
                "role_arn": "",
                "input_transformer": canonical_json(alert_input_transformer()),
            },
        ),
    ]
    return resources


def member_region() -> str:
    return MEMBER_REGION


def describe(resources: list[Resource]) -> str:
    return json.dumps([{"kind": r.kind, "name": r.name, "props": r.props} for r in resources], indent=2)
