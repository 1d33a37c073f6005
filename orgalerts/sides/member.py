"""Member forwarding: the side every in-scope account has (us-east-1, through the member role).

Owns: the forwarding rule on the default bus with its role and target (the central bus), the watchdog
rule and role that watch the forwarder (`alerts.tamper_alerts`), the member dead-letter queue
(`alerts.dead_letter_queues`), the patterns of both rules, and reading all of it back.
"""

from __future__ import annotations

from typing import Any

from orgalerts.config import Config
from orgalerts.model import patterns
from orgalerts.model.addresses import MEMBER_REGION, Names, queue_arn, role_arn, rule_arn
from orgalerts.model.resources import Resource, canonical_json
from orgalerts.model.scope import Scope
from orgalerts.sides import forwarding
from orgalerts.sides.base import Clients, Grant, Side, Sleep, Where, Writer


def member_pattern(config: Config) -> dict[str, object]:
    """The forwarding rule: the configured alert pattern, plus calls that tamper with the watchdog."""
    return patterns.member_forwarding_pattern(config.patterns)


def watchdog_pattern(config: Config) -> dict[str, object]:
    """The watchdog rule: calls that tamper with the forwarding rule or its role, and CloudTrail logging.

    Two rules with two roles watch each other: no single change (disabling or deleting one rule,
    retargeting it, weakening one role) silences the account unnoticed.
    """
    return patterns.member_watchdog_pattern(config.patterns)


def member_resources(config: Config, account_id: str) -> list[Resource]:
    """The forwarding resources of one member account (all in us-east-1)."""
    names = config.names
    alerts = config.alerts
    forward_arn = rule_arn(MEMBER_REGION, account_id, "default", names.member_rule)
    watchdog_arn = rule_arn(MEMBER_REGION, account_id, "default", names.watchdog_rule)
    dlq_arn = queue_arn(MEMBER_REGION, account_id, names.member_dlq) if alerts.dead_letter_queues else ""

    resources: list[Resource] = []
    if alerts.dead_letter_queues:
        rule_arns = [forward_arn] + ([watchdog_arn] if alerts.tamper_alerts else [])
        resources.append(forwarding.queue(names.member_dlq, dlq_arn, rule_arns))
    forward = {
        "pattern": canonical_json(member_pattern(config)),
        "state": patterns.member_rule_state(config.patterns),
        "description": "orgalerts: forward IAM-change events to the central bus",
    }
    resources += forwarding.forwarding_path(
        config, account_id, names.forwarder_role, names.member_rule, forward, dlq_arn=dlq_arn
    )
    if alerts.tamper_alerts:
        watchdog = {
            "pattern": canonical_json(watchdog_pattern(config)),
            "state": patterns.STATE_ENABLED,
            "description": "orgalerts: report changes to the forwarding rule, its role and CloudTrail logging",
        }
        resources += forwarding.forwarding_path(
            config, account_id, names.watchdog_role, names.watchdog_rule, watchdog, dlq_arn=dlq_arn
        )
    return resources


def read_member(clients: Clients, names: Names, *, watchdog: bool = True, dead_letters: bool = True) -> list[Resource]:
    """A member account's forwarding resources (us-east-1): forwarder and watchdog, and the DLQ.

    With a feature off (`watchdog`, `dead_letters` False) its resources are read only when the live
    forwarding rule shows it was on (its pattern names the watchdog, its target has a dead-letter
    queue): turning a feature off still removes what it left, and a steady state pays no extra reads.
    """
    iam, events = clients.iam, clients.events
    found = forwarding.read_role(iam, names.forwarder_role, names.forwarder_policy)
    found += forwarding.read_rule(events, "default", names.member_rule)
    forward_key = f"default/{names.member_rule}"
    rule = next((r for r in found if r.kind == "rule" and r.name == forward_key), None)
    if watchdog or (rule is not None and names.watchdog_rule in rule.props.get("pattern", "")):
        found += forwarding.read_role(iam, names.watchdog_role, names.forwarder_policy)
        found += forwarding.read_rule(events, "default", names.watchdog_rule)
    if dead_letters or any(r.kind == "target" and r.props.get("dlq_arn") for r in found):
        found = forwarding.read_queue(clients.sqs, names.member_dlq) + found
    return found


# --- permissions (the member role, in every in-scope account, us-east-1; `*` for the account id) -------------


def _roles(config: Config, *, used: bool = False) -> list[str]:
    names = config.names
    watchdog = not used or config.alerts.tamper_alerts
    return [role_arn("*", names.forwarder_role)] + ([role_arn("*", names.watchdog_role)] if watchdog else [])


def _rules(config: Config, *, used: bool = False) -> list[str]:
    names = config.names
    rules = [names.member_rule] + ([names.watchdog_rule] if not used or config.alerts.tamper_alerts else [])
    return [rule_arn(MEMBER_REGION, "*", "default", rule) for rule in rules]


def member_dlq_arns(config: Config) -> list[str]:
    return [queue_arn(MEMBER_REGION, "*", config.names.member_dlq)]


# The watchdog role and rule (alerts.tamper_alerts) and the dead-letter queue (alerts.dead_letter_queues) are
# created only when on; read and removed always (`forwarding.path_grants`): the readers look for them when the
# forwarding rule shows they were on, and teardown or turning the feature off must remove them.
MEMBER_GRANTS: tuple[Grant, ...] = forwarding.path_grants(
    "member",
    role_sid="ForwarderRoles",
    rule_sid="ForwardingRules",
    roles=_roles,
    used_roles=lambda c: _roles(c, used=True),
    rules=_rules,
    used_rules=lambda c: _rules(c, used=True),
) + forwarding.queue_grants("member", "MemberDeadLetterQueue", member_dlq_arns, lambda c: c.alerts.dead_letter_queues)


class MemberSide(Side):
    name = "member"
    where = Where.MEMBER
    kinds = forwarding.KINDS
    services = ("iam", "events", "sqs")
    required_actions = MEMBER_GRANTS
    not_deployed = "account not deployed (new account?): forwarder role, rule and target missing"

    def region(self, config: Config) -> str:
        return MEMBER_REGION  # IAM's CloudTrail events reach EventBridge only in us-east-1

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return member_resources(config, account_id)

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        alerts = config.alerts
        return read_member(
            clients,
            config.names,
            watchdog=everything or alerts.tamper_alerts,
            dead_letters=everything or alerts.dead_letter_queues,
        )

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return forwarding.ForwardingWriter(clients, wait=wait, sleep=sleep)


MEMBER = MemberSide()
