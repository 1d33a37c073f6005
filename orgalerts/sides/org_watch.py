"""The organization watch: account moves into target OUs and, with the organizations source, every
Organizations change, seen in the management account (us-east-1).

Owns: the rule on the management account's default bus that forwards Organizations events which add
an account to a target OU (`alerts.account_changes`) and, with `organizations` in `alerts.sources`, every
mutating Organizations call (SCP/RCP/declarative policies, account moves, removals and closures, delegated
administrators) to the central bus, its role and target, the pattern (shared with the central
account-change rule), and the watchdog rule that watches it (organizations source with tamper alerts).
Runs with the orchestrator's own credentials, so only when they belong to the management account.

Why one rule, extended, and not a second side: both carry `aws.organizations` events from the same
account and region, and one rule sends a matching event once, so a MoveAccount into a target OU reaches
the central bus once; there the account-change rule takes the moves into target OUs and joins, and the
organizations alert everything else (`patterns.organizations_alert_pattern`, disjoint by construction).
Organizations events are delivered to EventBridge in us-east-1 only: "AWS global services, such as AWS
Identity and Access Management (IAM), AWS Organizations, and AWS Account Management deliver events only to
us-east-1 Region" (https://repost.aws/knowledge-center/use-eventbridge-rule-across-regions).
"""

from __future__ import annotations

from typing import Any

from orgalerts.config import Config
from orgalerts.model import patterns, routes
from orgalerts.model.addresses import MEMBER_REGION, role_arn, rule_arn
from orgalerts.model.resources import Resource, canonical_json
from orgalerts.model.scope import Scope
from orgalerts.sides import forwarding
from orgalerts.sides.base import Clients, Grant, Side, Sleep, Where, Writer


def account_change_pattern(scope: Scope) -> dict[str, object]:
    pattern = patterns.account_change_pattern(scope.target_ou_ids, scope.whole_organization)
    if len(patterns.to_json(pattern)) > patterns.MAX_PATTERN_CHARS:
        # Too many OUs to list: alert on every move; the message says to check the destination.
        pattern = patterns.account_change_pattern((), True)
    return pattern


def _whole(scope: Scope) -> bool:
    """Whether the account-change rule takes every move (the whole organization, or the OU list fell back)."""
    fallback = patterns.to_json(patterns.account_change_pattern((), True))
    return scope.whole_organization or patterns.to_json(account_change_pattern(scope)) == fallback


def organizations_alert_pattern(config: Config, scope: Scope) -> dict[str, object]:
    """At the central bus: the organizations source's events less those the account-change rule alerts on
    (same OU list and same fallback as `account_change_pattern`), so each event is alerted once."""
    if not config.alerts.account_changes:
        return patterns.organizations_branch()
    return patterns.organizations_alert_pattern(scope.target_ou_ids, _whole(scope))


def account_change_carve(config: Config, scope: Scope) -> routes.Carve | None:
    """What the central alert routes leave to the account-change rule (joins, moves into target OUs), when both
    that rule and the organizations source are on: the routes and the rule never match the same event."""
    if not (config.alerts.account_changes and config.source_on("organizations")):
        return None
    return routes.Carve(scope.target_ou_ids, _whole(scope))


def watching(config: Config) -> bool:
    """The organization watch has a watchdog rule (organizations source with tamper alerts)."""
    return config.source_on("organizations") and config.alerts.tamper_alerts


def org_watch_resources(config: Config, scope: Scope) -> list[Resource]:
    """In the management account (us-east-1): forward the Organizations events that add accounts and, with the
    organizations source, every Organizations change; and the watchdog rule of the pair."""
    names = config.names
    changes = account_change_pattern(scope) if config.alerts.account_changes else None
    rule = {
        "pattern": canonical_json(patterns.org_watch_pattern(changes, config.patterns)),
        "state": patterns.STATE_ENABLED,
        "description": "orgalerts: forward account moves into target OUs to the central bus"
        if not config.source_on("organizations")
        else "orgalerts: forward Organizations changes and account moves to the central bus",
    }
    management = scope.management_account_id
    resources = forwarding.forwarding_path(config, management, names.org_forwarder_role, names.org_watch_rule, rule)
    if watching(config):
        watchdog = {
            "pattern": canonical_json(patterns.org_watchdog_pattern(config.patterns)),
            "state": patterns.STATE_ENABLED,
            "description": "orgalerts: report changes to the organization watch rule",
        }
        path = forwarding.forwarding_path(
            config, management, names.org_forwarder_role, names.org_watchdog_rule, watchdog
        )
        resources += [r for r in path if r.kind in ("rule", "target")]  # same role as the watch rule
    return resources


def _on(config: Config) -> bool:
    return config.alerts.account_changes or config.source_on("organizations")


# Permissions of the orchestrator (management account, us-east-1; `*` for the account id, which the config
# does not name). Created only with alerts.account_changes; read and removed always: teardown runs this side
# whatever the configuration and removes what an earlier one left.
ORG_WATCH_GRANTS: tuple[Grant, ...] = forwarding.path_grants(
    "orchestrator",
    role_sid="OrgForwarderRole",
    rule_sid="OrgWatchRule",
    roles=lambda c: [role_arn("*", c.names.org_forwarder_role)],
    used_roles=lambda c: [role_arn("*", c.names.org_forwarder_role)],
    rules=lambda c: [
        rule_arn(MEMBER_REGION, "*", "default", r) for r in (c.names.org_watch_rule, c.names.org_watchdog_rule)
    ],
    used_rules=lambda c: [
        rule_arn(MEMBER_REGION, "*", "default", r)
        for r in (c.names.org_watch_rule, *([c.names.org_watchdog_rule] if watching(c) else []))
    ],
    used=_on,
)


class OrgWatchSide(Side):
    name = "org-watch"
    where = Where.MANAGEMENT
    kinds = forwarding.KINDS
    cloudformation = forwarding.CLOUDFORMATION
    services = ("iam", "events")
    required_actions = ORG_WATCH_GRANTS

    def region(self, config: Config) -> str:
        return MEMBER_REGION  # Organizations events are delivered in us-east-1

    reads_when_off = True  # account_changes set back to false: the watch an earlier config created is removed

    def enabled(self, config: Config, removing: bool) -> bool:
        return _on(config) or removing  # teardown removes what an earlier run left

    def blocked(self, config: Config, scope: Scope, caller: str) -> tuple[str, str] | None:
        if caller != scope.management_account_id:
            what = "organizations alerts" if config.source_on("organizations") else "account-change alerts"
            return "skipped", f"{what} need the orchestrator to run in the management account"
        return None

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return org_watch_resources(config, scope) if _on(config) else []

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        """The role and both rules. The watchdog rule is looked for only when wanted, or when the live watch
        rule's pattern names it (a switched-off organizations source is removed; steady state pays nothing)."""
        names = config.names
        found = forwarding.read_role(clients.iam, names.org_forwarder_role, names.forwarder_policy)
        found += forwarding.read_rule(clients.events, "default", names.org_watch_rule)
        rule = next((r for r in found if r.kind == "rule"), None)
        named = rule is not None and names.org_watchdog_rule in rule.props.get("pattern", "")
        if everything or watching(config) or named:
            found += forwarding.read_rule(clients.events, "default", names.org_watchdog_rule)
        return found

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return forwarding.ForwardingWriter(clients, wait=wait, sleep=sleep)


ORG_WATCH = OrgWatchSide()
