"""Desired state: config + organization scope -> the resources each side should have. Pure.

Owns: every policy document orgalerts writes (least privilege, see each builder), the member forwarding
resources, and the central bus, its policy, the alert rule with its message format, the topic and the
subscriptions. No AWS calls, so `plan`, `drift` and `deploy` share it and tests run on literal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from orgalerts import patterns
from orgalerts.aws import MEMBER_REGION
from orgalerts.config import Config
from orgalerts.messages import (
    account_change_input_transformer,
    alert_input_transformer,
    tamper_input_transformer,
)
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


def _rule_arn(region: str, account_id: str, bus: str, rule: str) -> str:
    path = rule if bus == "default" else f"{bus}/{rule}"
    return f"arn:{PARTITION}:events:{region}:{account_id}:rule/{path}"


def eventbridge_only_policy(sid: str, action: str, resource: str, rule_arns: list[str]) -> str:
    """Only EventBridge, and only on behalf of the given rules, may do `action` on `resource`."""
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": action,
                    "Resource": resource,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
                }
            ],
        }
    )


def queue_policy(queue_arn: str, rule_arns: list[str]) -> str:
    """Only EventBridge, and only for orgalerts' own rules, may put dead letters in the queue."""
    return eventbridge_only_policy("OrgAlertsDeadLetters", "sqs:SendMessage", queue_arn, rule_arns)


def _queue(name: str, region: str, account_id: str, rule_arns: list[str]) -> Resource:
    arn = f"arn:{PARTITION}:sqs:{region}:{account_id}:{name}"
    # 14 days, the maximum: undelivered alerts must outlive a long weekend and a slow repair.
    return Resource("queue", name, {"policy": queue_policy(arn, rule_arns), "retention": DLQ_RETENTION_SECONDS})


DLQ_RETENTION_SECONDS = "1209600"
# EventBridge's own maximums, stated explicitly so drift sees it if someone lowers them.
RETRY_POLICY = canonical_json({"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185})


def _target(key: str, arn: str, *, role_arn: str = "", transformer: str = "", dlq_arn: str = "") -> Resource:
    return Resource(
        "target",
        key,
        {
            "arn": arn,
            "role_arn": role_arn,
            "input_transformer": transformer,
            "dlq_arn": dlq_arn,
            "retry": RETRY_POLICY if dlq_arn else "",
        },
    )


def member_pattern(config: Config) -> dict[str, object]:
    """The forwarding rule: the configured alert pattern, plus calls that tamper with the watchdog."""
    names = Names(config.resource_prefix)
    alerts = config.alerts
    base = patterns.alert_pattern(
        alerts.pattern, exclude_principals=alerts.exclude_principals, exclude_events=alerts.exclude_events
    )
    if not alerts.tamper_alerts:
        return base
    return {"$or": [base, *patterns.watch_branches(names.watchdog_rule, names.watchdog_role)]}


def watchdog_pattern(config: Config) -> dict[str, object]:
    """The watchdog rule: calls that tamper with the forwarding rule or its role, and CloudTrail logging.

    Two rules with two roles watch each other: no single change (disabling or deleting one rule,
    retargeting it, weakening one role) silences the account unnoticed.
    """
    names = Names(config.resource_prefix)
    return {"$or": [*patterns.watch_branches(names.member_rule, names.forwarder_role), patterns.trail_branch()]}


def forwarding_path(
    config: Config, account_id: str, role: str, rule: str, rule_props: dict[str, str], *, dlq_arn: str = ""
) -> list[Resource]:
    """A rule on an account's default bus (us-east-1) sending to the central bus through its own role."""
    central = central_address(config)
    names = central.names
    role_arn = f"arn:{PARTITION}:iam::{account_id}:role/{role}"
    return [
        Resource("role", role, {"trust": forwarder_trust_policy(account_id)}),
        Resource(
            "role-policy",
            f"{role}/{names.forwarder_policy}",
            {"document": forwarder_permissions_policy(central.bus_arn)},
        ),
        Resource("rule", f"default/{rule}", rule_props),
        _target(f"default/{rule}/{names.member_target_id}", central.bus_arn, role_arn=role_arn, dlq_arn=dlq_arn),
    ]


def member_resources(config: Config, account_id: str) -> list[Resource]:
    """The forwarding resources of one member account (all in us-east-1)."""
    central = central_address(config)
    names = central.names
    alerts = config.alerts
    state = get_pattern(alerts.pattern).state
    region = MEMBER_REGION
    forward_arn = _rule_arn(region, account_id, "default", names.member_rule)
    watchdog_arn = _rule_arn(region, account_id, "default", names.watchdog_rule)
    dlq_arn = f"arn:{PARTITION}:sqs:{region}:{account_id}:{names.member_dlq}" if alerts.dead_letter_queues else ""

    resources: list[Resource] = []
    if alerts.dead_letter_queues:
        rule_arns = [forward_arn] + ([watchdog_arn] if alerts.tamper_alerts else [])
        resources.append(_queue(names.member_dlq, region, account_id, rule_arns))
    resources += forwarding_path(
        config,
        account_id,
        names.forwarder_role,
        names.member_rule,
        {
            "pattern": canonical_json(member_pattern(config)),
            "state": state,
            "description": "orgalerts: forward IAM-change events to the central bus",
        },
        dlq_arn=dlq_arn,
    )
    if alerts.tamper_alerts:
        resources += forwarding_path(
            config,
            account_id,
            names.watchdog_role,
            names.watchdog_rule,
            {
                "pattern": canonical_json(watchdog_pattern(config)),
                "state": patterns.STATE_ENABLED,
                "description": "orgalerts: report changes to the forwarding rule, its role and CloudTrail logging",
            },
            dlq_arn=dlq_arn,
        )
    return resources


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
    extra = {scope.management_account_id} if config.alerts.account_changes else set()
    included = sorted((set(scope.included_accounts) | extra) - {central.account_id})
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


def central_rule_arns(config: Config) -> list[str]:
    """Every rule that may publish to the topic or dead-letter into the central queue."""
    central = central_address(config)
    names = central.names
    arns = [central.rule_arn]
    if config.alerts.account_changes:
        arns.append(_rule_arn(central.region, central.account_id, names.central_bus, names.account_change_rule))
    if config.alerts.tamper_alerts:
        arns.append(_rule_arn(central.region, central.account_id, names.central_bus, names.tamper_rule))
        arns.append(_rule_arn(central.region, central.account_id, "default", names.central_watch_rule))
    return sorted(arns)


def topic_policy(config: Config) -> str:
    """Only EventBridge may publish, and only for orgalerts' central rules."""
    topic_arn = central_address(config).topic_arn
    return eventbridge_only_policy("OrgAlertsEventBridgePublish", "sns:Publish", topic_arn, central_rule_arns(config))


def central_resources(config: Config, scope: Scope) -> list[Resource]:
    """The notification account's resources (in `config.region`)."""
    central = central_address(config)
    names = central.names
    alerts = config.alerts
    bus = names.central_bus
    dlq_arn = (
        f"arn:{PARTITION}:sqs:{central.region}:{central.account_id}:{names.central_dlq}"
        if alerts.dead_letter_queues
        else ""
    )
    alert_transformer = canonical_json(alert_input_transformer())
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
    if alerts.dead_letter_queues:
        resources.append(_queue(names.central_dlq, central.region, central.account_id, central_rule_arns(config)))
    alert = patterns.alert_pattern(
        alerts.pattern,
        exclude_principals=alerts.exclude_principals,
        exclude_events=alerts.exclude_events,
        # With tamper alerts on, calls on orgalerts' own roles get one TAMPER message, not two.
        skip_roles_with_prefix=names.prefix if alerts.tamper_alerts else None,
    )
    resources += [
        Resource(
            "rule",
            f"{bus}/{names.central_rule}",
            {
                "pattern": canonical_json(alert),
                "state": get_pattern(alerts.pattern).state,
                "description": "orgalerts: format IAM-change events from member accounts and send them to the topic",
            },
        ),
        _target(
            f"{bus}/{names.central_rule}/{names.central_target_id}",
            central.topic_arn,
            transformer=alert_transformer,
            dlq_arn=dlq_arn,
        ),
    ]
    if alerts.account_changes:
        resources += [
            Resource(
                "rule",
                f"{bus}/{names.account_change_rule}",
                {
                    "pattern": canonical_json(account_change_pattern(scope)),
                    "state": patterns.STATE_ENABLED,
                    "description": "orgalerts: an account joined a target OU and is not covered yet",
                },
            ),
            _target(
                f"{bus}/{names.account_change_rule}/{names.central_target_id}",
                central.topic_arn,
                transformer=canonical_json(account_change_input_transformer()),
                dlq_arn=dlq_arn,
            ),
        ]
    if alerts.tamper_alerts:
        tamper_transformer = canonical_json(tamper_input_transformer())
        prefix_filter = {"prefix": names.prefix}
        tamper = {"$or": [*patterns.watch_branches(prefix_filter, prefix_filter), patterns.trail_branch()]}
        resources += [
            Resource(
                "rule",
                f"{bus}/{names.tamper_rule}",
                {
                    "pattern": canonical_json(tamper),
                    "state": patterns.STATE_ENABLED,
                    "description": "orgalerts: tamper alerts for member forwarding and CloudTrail logging",
                },
            ),
            _target(
                f"{bus}/{names.tamper_rule}/{names.central_target_id}",
                central.topic_arn,
                transformer=tamper_transformer,
                dlq_arn=dlq_arn,
            ),
            Resource(
                "rule",
                f"default/{names.central_watch_rule}",
                {
                    "pattern": canonical_json(patterns.central_watch_pattern(bus, central.topic_arn)),
                    "state": patterns.STATE_ENABLED,
                    "description": "orgalerts: tamper alerts for the central bus, its policy, rules and topic",
                },
            ),
            _target(
                f"default/{names.central_watch_rule}/{names.central_target_id}",
                central.topic_arn,
                transformer=tamper_transformer,
                dlq_arn=dlq_arn,
            ),
        ]
    return resources


def account_change_pattern(scope: Scope) -> dict[str, object]:
    pattern = patterns.account_change_pattern(scope.target_ou_ids, scope.whole_organization)
    if len(patterns.to_json(pattern)) > patterns.MAX_PATTERN_CHARS:
        # Too many OUs to list: alert on every move; the message says to check the destination.
        pattern = patterns.account_change_pattern((), True)
    return pattern


def org_watch_resources(config: Config, scope: Scope) -> list[Resource]:
    """In the management account (us-east-1): forward the Organizations events that add accounts."""
    names = Names(config.resource_prefix)
    return forwarding_path(
        config,
        scope.management_account_id,
        names.org_forwarder_role,
        names.org_watch_rule,
        {
            "pattern": canonical_json(account_change_pattern(scope)),
            "state": patterns.STATE_ENABLED,
            "description": "orgalerts: forward account moves into target OUs to the central bus",
        },
    )
