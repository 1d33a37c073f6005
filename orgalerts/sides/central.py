"""The central side: the notification account's bus, rules, topic and queue (in `config.region`).

Owns: the central event bus and its policy (who may put events: the target OUs, included accounts),
the alert routes (one rule per severity, outcome and message shape, model/routes.py) with their message
formats, the account-change and tamper rules, the watch on the central
resources themselves, the SNS topic with its policy and e-mail subscriptions, the central dead-letter
queue, reading all of it back, and the writes of the kinds only this side has.
"""

from __future__ import annotations

import time
from typing import Any

from orgalerts.aws import ClientError, error_code, partition_regions, token_pages
from orgalerts.config import Config
from orgalerts.model import messages, patterns, routes
from orgalerts.model.addresses import PARTITION, account_root_arn, bus_arn, queue_arn, rule_arn, topic_arn
from orgalerts.model.payloads import message_from_transformer
from orgalerts.model.plan import Change, Kind
from orgalerts.model.policies import eventbridge_only_policy
from orgalerts.model.resources import (
    MARKER_TEXT,
    Resource,
    canonical_json,
    canonical_policy,
    is_managed_tags,
    managed_tags,
)
from orgalerts.model.scope import Scope
from orgalerts.model.severity import Severity, admits
from orgalerts.sides import cloudformation as cfn
from orgalerts.sides import destinations, forwarding
from orgalerts.sides.base import Clients, Grant, Side, Sleep, Where, Writer, everywhere
from orgalerts.sides.forwarding import absent
from orgalerts.sides.identity_center import ic_account
from orgalerts.sides.org_watch import account_change_carve, account_change_pattern

BUS = Kind("bus", "central bus")
BUS_POLICY = Kind("bus-policy", "bus policy")
TOPIC = Kind("topic", "topic")
TOPIC_POLICY = Kind("topic-policy", "topic policy")
SUBSCRIPTION = Kind("subscription", "subscription")
KINDS = (BUS, BUS_POLICY, TOPIC, TOPIC_POLICY, SUBSCRIPTION, forwarding.QUEUE, forwarding.RULE, forwarding.TARGET)

# --- CloudFormation form of this side's own kinds (`orgalerts export cloudformation`) -------------------------
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-eventbus.html,
# aws-resource-events-eventbuspolicy.html (one resource per statement: `StatementId` becomes the statement's Sid,
# so the bus policy reads back as the one the direct engine writes), aws-resource-sns-topic.html,
# aws-resource-sns-topicpolicy.html, aws-resource-sns-subscription.html.


def _bus_form(r: Resource, stack: cfn.Stack) -> None:
    stack.add(r, "AWS::Events::EventBus", {"Name": r.name, "Tags": cfn.tags()})


def _bus_policy_form(r: Resource, stack: cfn.Stack) -> None:
    for statement in cfn.document(r.props["document"]).get("Statement", []):
        sid = str(statement.pop("Sid"))
        properties = {"EventBusName": stack.ref("bus", r.name), "StatementId": sid, "Statement": statement}
        stack.add(Resource("bus-policy", f"{r.name}/{sid}"), "AWS::Events::EventBusPolicy", properties)


def _topic_form(r: Resource, stack: cfn.Stack) -> None:
    stack.add(r, "AWS::SNS::Topic", {"TopicName": r.name, "Tags": cfn.tags()})


def _topic_policy_form(r: Resource, stack: cfn.Stack) -> None:
    properties = {"Topics": [stack.ref("topic", r.name)], "PolicyDocument": cfn.document(r.props["document"])}
    stack.add(r, "AWS::SNS::TopicPolicy", properties)


def _subscription_form(r: Resource, stack: cfn.Stack) -> None:
    topic = r.name.split("/", 1)[0]
    properties = {
        "TopicArn": stack.ref("topic", topic),
        "Protocol": r.props["protocol"],
        "Endpoint": r.props["endpoint"],
    }
    stack.add(r, "AWS::SNS::Subscription", properties)


CLOUDFORMATION: dict[str, cfn.Form] = {
    **forwarding.CLOUDFORMATION,
    "bus": _bus_form,
    "bus-policy": _bus_policy_form,
    "topic": _topic_form,
    "topic-policy": _topic_policy_form,
    "subscription": _subscription_form,
    # connections, API destinations, their role, and targets that point at an API destination
    **destinations.CLOUDFORMATION,
}

# --- desired -------------------------------------------------------------------------------------------


def bus_policy(config: Config, scope: Scope) -> str:
    """Who may put events on the central bus: the configured OUs (or the whole organization) and the
    explicitly included accounts. Two statements at most, never one per account (10,240-char cap)."""
    central = config.central
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
    # The management account's organization watch and the Identity Center rule put events too (their
    # accounts may be outside the target OUs).
    management = config.alerts.account_changes or config.source_on("organizations")
    extra = {scope.management_account_id} if management else set()
    if config.source_on("identity-center"):
        extra.add(ic_account(config, scope))
    included = sorted((set(scope.included_accounts) | extra) - {central.account_id})
    if included:
        statements.append(
            {
                "Sid": "OrgAlertsIncludedAccounts",
                "Effect": "Allow",
                "Principal": {"AWS": [account_root_arn(a) for a in included]},
                "Action": "events:PutEvents",
                "Resource": central.bus_arn,
            }
        )
    return canonical_policy({"Version": "2012-10-17", "Statement": statements})


def alert_routes(config: Config, scope: Scope) -> list[routes.Route]:
    """The central alert routes of this configuration and scope (the scope decides which organizations events the
    account-change rule takes: `org_watch.account_change_carve`)."""
    return patterns.central_routes(config.patterns, account_change_carve(config, scope))


def route_rule_names(config: Config, scope: Scope) -> list[str]:
    """The central alert rules of this configuration: one per severity, outcome and message shape."""
    return [f"{config.names.prefix}{route.name}" for route in alert_routes(config, scope)]


def central_rule_arns(config: Config, scope: Scope) -> list[str]:
    """Every rule that may publish to the topic or dead-letter into the central queue."""
    central = config.central
    names = central.names
    bus = names.central_bus
    arns = [rule_arn(central.region, central.account_id, bus, r) for r in route_rule_names(config, scope)]
    if config.alerts.account_changes:
        arns.append(rule_arn(central.region, central.account_id, bus, names.account_change_rule))
    if config.alerts.tamper_alerts:
        arns += [
            rule_arn(central.region, central.account_id, bus, r) for r in (names.tamper_rule, names.tamper_anon_rule)
        ]
        arns += [rule_arn(central.region, central.account_id, "default", r)
                 for r in (names.central_watch_rule, names.central_watch_anon_rule)]  # fmt: skip
    return sorted(arns)


def topic_policy(config: Config, scope: Scope) -> str:
    """Only EventBridge may publish, and only for orgalerts' central rules."""
    arns = central_rule_arns(config, scope)
    return eventbridge_only_policy("OrgAlertsEventBridgePublish", "sns:Publish", config.central.topic_arn, arns)


def _alerting_rule(
    config: Config,
    bus: str,
    rule: str,
    pattern: dict[str, Any],
    description: str,
    transformer: dict[str, Any],
    severity: Severity,
    state: str = patterns.STATE_ENABLED,
    message: messages.Message | None = None,
) -> list[Resource]:
    """A central rule and its targets (dead letters to the central queue). `severity` travels with the rule so
    `_rule_targets` can give each rule every destination whose minimum severity admits it."""
    # The ownership marker in the Description (ListRules returns it: no tag read per rule); the severity last
    # (`orgalerts replay` reads it there).
    text = f"{description} ({MARKER_TEXT}) [{severity.value}]"
    props = {"pattern": canonical_json(pattern), "state": state, "description": text}
    key = f"{bus}/{rule}"
    return [Resource("rule", key, props), *_rule_targets(config, key, severity, transformer, message)]


def _rule_targets(
    config: Config, key: str, severity: Severity, transformer: dict[str, Any], message: messages.Message | None
) -> list[Resource]:
    """The targets of one central rule: the alert topic (e-mail, every severity: `notification.emails` is an
    e-mail destination with min_severity info). `message` is the route's text for other destinations."""
    central = config.central
    names = central.names
    dlq_arn = central.queue_arn(names.central_dlq) if config.alerts.dead_letter_queues else ""
    topic = forwarding.target(
        f"{key}/{names.central_target_id}", central.topic_arn, transformer=canonical_json(transformer), dlq_arn=dlq_arn
    )
    topics = [topic] if admits(Severity.INFO, severity) else []
    text = message or message_from_transformer(transformer)
    return [*topics, *destinations.destination_targets(config, key, severity, text)]


def _alert_rules(config: Config, scope: Scope) -> list[Resource]:
    """The alert routes, and the account-change and tamper rules when they are on."""
    names = config.names
    alerts = config.alerts
    bus = names.central_bus
    resources: list[Resource] = []
    for route in alert_routes(config, scope):
        outcome = "denied attempts" if route.denied else "changes"
        resources += _alerting_rule(
            config,
            bus,
            f"{names.prefix}{route.name}",
            route.pattern,
            f"orgalerts: {route.severity.value} {outcome} from member accounts, formatted for the topic",
            route.message.email_transformer(),
            route.severity,
            state=patterns.route_state(route, config.patterns),
            message=route.message,
        )
    if alerts.account_changes:
        # Medium: an account not covered yet is a gap in alerting to close soon (onboard), not an attack.
        resources += _alerting_rule(
            config,
            bus,
            names.account_change_rule,
            account_change_pattern(scope),
            "orgalerts: an account joined a target OU and is not covered yet",
            messages.account_change_input_transformer(),
            Severity.MEDIUM,
        )
    if alerts.tamper_alerts:
        resources += _tamper_rules(config)
    return resources


def _tamper_rules(config: Config) -> list[Resource]:
    """High: someone weakened the alerting itself; whatever they do next may raise no alert. Each rule comes in
    two shapes, callers with and without a principal ARN (messages.tamper_template)."""
    names = config.names
    tamper = patterns.central_tamper_pattern(names.prefix)
    watch = patterns.central_watch_pattern(names.central_bus, config.central.topic_arn)
    resources: list[Resource] = []
    for arn, tamper_rule, watch_rule in ((True, names.tamper_rule, names.central_watch_rule),
                                         (False, names.tamper_anon_rule, names.central_watch_anon_rule)):  # fmt: skip
        transformer = messages.tamper_input_transformer(principal=arn)
        callers = "" if arn else " (callers without a principal ARN)"
        resources += _alerting_rule(
            config, names.central_bus, tamper_rule, patterns.with_principal_shape(tamper, arn),
            f"orgalerts: tamper alerts for member forwarding and CloudTrail logging{callers}", transformer,
            Severity.HIGH,
        )  # fmt: skip
        resources += _alerting_rule(
            config, "default", watch_rule, patterns.with_principal_shape(watch, arn),
            f"orgalerts: tamper alerts for the central bus, its policy, rules and topic{callers}", transformer,
            Severity.HIGH,
        )  # fmt: skip
    return resources


def central_resources(config: Config, scope: Scope) -> list[Resource]:
    """The notification account's resources (in `config.region`)."""
    central = config.central
    names = central.names
    resources = [
        Resource("bus", names.central_bus),
        Resource("bus-policy", names.central_bus, {"document": bus_policy(config, scope)}),
        Resource("topic", names.topic),
        Resource("topic-policy", names.topic, {"document": topic_policy(config, scope)}),
    ]
    resources += [
        Resource("subscription", f"{names.topic}/email/{email}", {"protocol": "email", "endpoint": email})
        for email in config.notification.emails
    ]
    if config.alerts.dead_letter_queues:
        dlq_arn = central.queue_arn(names.central_dlq)
        resources.append(forwarding.queue(names.central_dlq, dlq_arn, central_rule_arns(config, scope)))
    return resources + _alert_rules(config, scope)


# --- live ----------------------------------------------------------------------------------------------


def read_bus(events: Any, bus: str) -> list[Resource]:
    try:
        described = events.describe_event_bus(Name=bus)
    except ClientError as exc:
        if absent(exc):
            return []
        raise
    tags = events.list_tags_for_resource(ResourceARN=described["Arn"]).get("Tags", [])
    managed = is_managed_tags(tags)
    found = [Resource("bus", bus, {}, managed, arn=str(described["Arn"]))]
    if managed and described.get("Policy"):
        found.append(Resource("bus-policy", bus, {"document": canonical_policy(described["Policy"])}))
    return found


def read_topic(sns: Any, topic_arn: str, topic_name: str) -> list[Resource]:
    try:
        attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    except ClientError as exc:
        if absent(exc):
            return []
        raise
    tags = sns.list_tags_for_resource(ResourceArn=topic_arn).get("Tags", [])
    managed = is_managed_tags(tags)
    found = [Resource("topic", topic_name, {}, managed, arn=topic_arn)]
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


# The central bus's rules are read this many at a time (`forwarding.read_rules_where`): about forty rules with the
# shipped config, one ListTargetsByRule each, in the notification account. The pacing still holds them to that
# account's EventBridge bucket (20 requests/s, pacing.QUOTAS); what the concurrency buys is that one rule's
# throttle wait (doubling per consecutive throttle) no longer holds up every rule after it.
RULE_READS = 8


def read_central(clients: Clients, config: Config) -> list[Resource]:
    """The notification account's resources (in the configured region)."""
    central = config.central
    names = central.names
    events = clients.events
    found = read_bus(events, names.central_bus)
    if any(r.kind == "bus" and r.managed for r in found):
        # One ListRules for every central rule on the bus (state, pattern, Description with the ownership
        # marker), then each rule's targets: three calls a rule become one (issue 15's floor, central side).
        fixed = {names.tamper_rule, names.tamper_anon_rule, names.account_change_rule}
        found += forwarding.read_rules_where(
            events,
            names.central_bus,
            names.prefix,
            lambda n: n in fixed or routes.is_route_name(n, names.prefix),
            concurrency=RULE_READS,
        )
    watch = [names.central_watch_rule, names.central_watch_anon_rule]
    found += forwarding.read_rules(events, "default", watch, names.prefix)
    found += read_topic(clients.sns, central.topic_arn, names.topic)
    found += forwarding.read_queue(clients.sqs, names.central_dlq)
    return found


def route_rules_on_bus(events: Any, bus: str, prefix: str) -> list[str]:
    """Every alert route on the central bus, whatever configuration made it: `<prefix>alert-*`, and the single
    `<prefix>alert` rule of versions before severity tiers (so a deploy deletes it and plan/drift show it).
    ListRules with NamePrefix: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListRules.html"""
    pages = token_pages(events.list_rules, EventBusName=bus, NamePrefix=f"{prefix}{routes.ROUTE_PREFIX}")
    names = [str(r["Name"]) for page in pages for r in page.get("Rules", [])]
    return sorted(name for name in names if routes.is_route_name(name, prefix))


# --- a previous `region` ----------------------------------------------------------------------------------

# A region the caller cannot use (an opt-in region not enabled, an SCP denying the region): nothing orgalerts
# made can be there, or orgalerts could not have made it.
REGION_UNUSABLE = {
    "UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", "OptInRequired", "AccessDenied",
    "AccessDeniedException", "AuthorizationError",
}  # fmt: skip


def scanned_regions() -> frozenset[str]:
    """Where the central side may have been: every region of the partition orgalerts writes ARNs for."""
    return partition_regions(PARTITION)


def _exists(call: Any, **params: Any) -> bool:
    try:
        call(**params)
    except ClientError as exc:
        if absent(exc) or error_code(exc) in REGION_UNUSABLE:
            return False
        raise
    return True


def left_in_region(clients: Clients, config: Config) -> bool:
    """Whether the central bus or the topic exists in `config.region` (two reads). Removing the central side
    deletes the bus last, so whatever else a run left there, the bus is still there; the topic is looked for
    too (it is what e-mails people)."""
    central = config.central
    if _exists(clients.events.describe_event_bus, Name=central.names.central_bus):
        return True
    return _exists(clients.sns.get_topic_attributes, TopicArn=central.topic_arn)


# --- writes --------------------------------------------------------------------------------------------


class CentralWriter(forwarding.ForwardingWriter):
    """The forwarding kinds' writes plus the bus, its policy, the topic, its policy and subscriptions."""

    def __init__(self, clients: Clients, topic_arn: str, *, wait: Any = None, sleep: Sleep = time.sleep) -> None:
        super().__init__(clients, wait=wait, sleep=sleep)
        self.topic_arn = topic_arn
        self.handlers.update(
            {
                ("create", "bus"): self.create_bus,
                ("delete", "bus"): self.delete_bus,
                ("create", "bus-policy"): self.put_bus_policy,
                # PutPermission with `Policy` replaces the whole policy: no RemovePermission first, so
                # members are never denied between two calls. Foreign statements go with the replace.
                # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html
                ("update", "bus-policy"): self.put_bus_policy,
                ("delete", "bus-policy"): self.delete_bus_policy,
                ("create", "topic"): self.create_topic,
                ("delete", "topic"): self.delete_topic,
                ("create", "topic-policy"): self.put_topic_policy,
                ("update", "topic-policy"): self.put_topic_policy,
                ("delete", "topic-policy"): lambda _: None,  # deleting the topic removes its policy
                ("create", "subscription"): self.subscribe,
                ("delete", "subscription"): self.unsubscribe,
            }
        )

    def create_bus(self, change: Change) -> None:
        self.clients.events.create_event_bus(Name=change.resource.name, Tags=managed_tags())

    def delete_bus(self, change: Change) -> None:
        self.clients.events.delete_event_bus(Name=change.resource.name)

    def put_bus_policy(self, change: Change) -> None:
        r = change.resource
        self.clients.events.put_permission(EventBusName=r.name, Policy=r.props["document"])

    def delete_bus_policy(self, change: Change) -> None:
        self.clients.events.remove_permission(EventBusName=change.resource.name, RemoveAllPermissions=True)

    def create_topic(self, change: Change) -> None:
        self.clients.sns.create_topic(Name=change.resource.name, Tags=managed_tags())

    def delete_topic(self, change: Change) -> None:
        self.clients.sns.delete_topic(TopicArn=self.topic_arn)

    def put_topic_policy(self, change: Change) -> None:
        document = change.resource.props["document"]
        self.clients.sns.set_topic_attributes(TopicArn=self.topic_arn, AttributeName="Policy", AttributeValue=document)

    def subscribe(self, change: Change) -> None:
        r = change.resource
        self.clients.sns.subscribe(TopicArn=self.topic_arn, Protocol=r.props["protocol"], Endpoint=r.props["endpoint"])

    def unsubscribe(self, change: Change) -> None:
        if change.resource.arn:  # a pending subscription has no ARN yet; it expires on its own after 3 days
            self.clients.sns.unsubscribe(SubscriptionArn=change.resource.arn)


# --- permissions (the member role in the notification account, `config.region`) ------------------------------


def all_central_rule_arns(config: Config, region: str = "*") -> list[str]:
    """Every central rule orgalerts may have created, whatever the configuration (the reader looks for each),
    in any region (`*`: a previous `region` is read and removed too)."""
    central = config.central
    names = central.names
    # `<prefix>alert*`: the alert routes of any configuration and the single alert rule of earlier versions.
    on_bus = [f"{names.prefix}{routes.ROUTE_PREFIX}*", names.account_change_rule, names.tamper_rule,
              names.tamper_anon_rule]  # fmt: skip
    arns = [rule_arn(region, central.account_id, names.central_bus, rule) for rule in on_bus]
    on_default = (names.central_watch_rule, names.central_watch_anon_rule)
    return [*arns, *(rule_arn(region, central.account_id, "default", rule) for rule in on_default)]


def managed_central_rule_arns(config: Config) -> list[str]:
    """What this configuration creates: the routes by one wildcard (their number follows the sources and the
    scope), the rest by name."""
    central = config.central
    names = central.names
    routes_arn = rule_arn(
        central.region, central.account_id, names.central_bus, f"{names.prefix}{routes.ROUTE_PREFIX}-*"
    )
    others = [rule_arn(central.region, central.account_id, names.central_bus, names.account_change_rule)
              ] if config.alerts.account_changes else []  # fmt: skip
    if config.alerts.tamper_alerts:
        others += [rule_arn(central.region, central.account_id, names.central_bus, r)
                   for r in (names.tamper_rule, names.tamper_anon_rule)]  # fmt: skip
        others += [rule_arn(central.region, central.account_id, "default", r)
                   for r in (names.central_watch_rule, names.central_watch_anon_rule)]  # fmt: skip
    return sorted([routes_arn, *others])


def central_dlq_arns(config: Config) -> list[str]:
    return [config.central.queue_arn(config.names.central_dlq)]


def any_region_dlq_arns(config: Config) -> list[str]:
    return [queue_arn("*", config.notification.account_id, config.names.central_dlq)]


def _bus(config: Config) -> list[str]:
    return [config.central.bus_arn]


def _any_region_bus(config: Config) -> list[str]:
    return [bus_arn("*", config.notification.account_id, config.names.central_bus)]


def _topic(config: Config) -> list[str]:
    return [config.central.topic_arn]


def _any_region_topic(config: Config) -> list[str]:
    return [topic_arn("*", config.notification.account_id, config.names.topic)]


# Resource types: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
# (event-bus*: CreateEventBus, DescribeEventBus, DeleteEventBus; event-bus or rule: TagResource,
# ListTagsForResource; PutPermission and RemovePermission have no resource type, so only "*");
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html (topic*: CreateTopic,
# DeleteTopic, GetTopicAttributes, SetTopicAttributes, ListSubscriptionsByTopic, Subscribe, TagResource,
# ListTagsForResource; Unsubscribe has no resource type, so only "*").
# Rules for account changes and tamper alerts, and the dead-letter queue, are created only when their feature
# is on and read and removed always (see `forwarding.path_grants`). Reading and removing are granted in every
# region (`*` in the ARN): what a previous `region` left is found and removed; creating only in `region`.
CENTRAL_GRANTS: tuple[Grant, ...] = (
    Grant("notification", "ReadAndRemoveCentralBus", ("events:DescribeEventBus", "events:ListTagsForResource",
          "events:DeleteEventBus"), _any_region_bus),
    Grant("notification", "ManageCentralBus", ("events:CreateEventBus", "events:TagResource"), _bus),
    Grant("notification", "ManageCentralBusPolicy", ("events:PutPermission", "events:RemovePermission"), everywhere),
    Grant("notification", "ReadAndRemoveCentralRules", forwarding.RULE_READ + forwarding.RULE_REMOVE,
          all_central_rule_arns),
    Grant("notification", "ManageCentralRules", forwarding.RULE_WRITE, managed_central_rule_arns),
    # ListRules has no resource type (list_amazoneventbridge.html): finds the alert routes by name prefix.
    Grant("notification", "ListCentralRules", ("events:ListRules",), everywhere),
    Grant("notification", "ReadAndRemoveAlertTopic", ("sns:GetTopicAttributes", "sns:ListTagsForResource",
          "sns:ListSubscriptionsByTopic", "sns:DeleteTopic"), _any_region_topic),
    Grant("notification", "ManageAlertTopic", ("sns:CreateTopic", "sns:TagResource", "sns:SetTopicAttributes",
          "sns:Subscribe"), _topic),
    Grant("notification", "UnsubscribeFromAlertTopic", ("sns:Unsubscribe",), everywhere),
    Grant("notification", "ReadAndRemoveCentralDeadLetterQueue", forwarding.QUEUE_READ + forwarding.QUEUE_REMOVE,
          any_region_dlq_arns),
    Grant("notification", "ManageCentralDeadLetterQueue", forwarding.QUEUE_WRITE, central_dlq_arns,
          lambda c: c.alerts.dead_letter_queues),
)  # fmt: skip


class CentralSide(Side):
    name = "central"
    where = Where.CENTRAL
    # Chat, paging and webhook destinations (sides/destinations.py) live here too: the central rules target them.
    kinds = (*KINDS[:-2], *destinations.KINDS, *KINDS[-2:])  # before rules and targets
    cloudformation = CLOUDFORMATION
    services = ("events", "sns", "sqs", "iam")
    look_services = ("events", "sns")  # left_in_region: the bus, then the topic
    required_actions = CENTRAL_GRANTS + destinations.GRANTS

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return central_resources(config, scope) + destinations.desired(config)

    def desired_in_template(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        # The destinations' secrets are the template's parameters (destinations.CLOUDFORMATION), never read here.
        return central_resources(config, scope) + destinations.desired(config, destinations.template_environ(config))

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        return destinations.read(clients, config, read_central(clients, config))

    def other_regions(self, config: Config) -> list[str]:
        return sorted(scanned_regions() - {config.region})

    def left_in_region(self, clients: Clients, config: Config) -> bool:
        return left_in_region(clients, config)

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return destinations.writer(CentralWriter(clients, config.central.topic_arn, wait=wait, sleep=sleep), config)

    def notes(self, config: Config, scope: Scope, live: list[Resource], desired: list[Resource]) -> list[str]:
        wanted = {r.key for r in desired}
        nobody = (
            [
                f"notification.emails is empty: alerts reach topic {config.names.topic} but no e-mail subscriber; "
                "add an address, or subscribe your own endpoint to the topic"
            ]
            if desired and not config.notification.emails and not config.destinations
            else []
        )
        return nobody + [
            f"{r.props['endpoint']}: subscription pending confirmation "
            "(the recipient must click the link in the e-mail)"
            for r in live
            if r.kind == "subscription" and "pending confirmation" in r.notes and r.key in wanted
        ]


CENTRAL = CentralSide()
