"""The Identity Center watch: IAM Identity Center changes, seen in its account and home region.

Owns: with `identity-center` in `alerts.sources`, the rule on the default bus of the Identity Center
account (`identity_center.account_id`, default the management account) in its home region
(`identity_center.region`, default `region`) forwarding every mutating `sso`, `sso-directory` and
`identitystore` call to the central bus, its role and target, the watchdog rule of the pair (tamper
alerts), and reading all of it back. Reached with the orchestrator's own credentials where the Identity
Center account is the caller's (the management account), else through the member role.

Why its own rule in the home region: Identity Center is a regional service; its CloudTrail events reach
EventBridge in its home region only, where a rule must match them ("Both the EventBridge rule and the
source event that it monitors must exist in the same AWS Region",
https://repost.aws/knowledge-center/use-eventbridge-rule-across-regions). The target is the central bus,
in `region`, which may be another region: EventBridge routes to an event bus in another Region as a rule
target, with an execution role allowed `events:PutEvents` on that bus
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html,
https://repost.aws/knowledge-center/eventbridge-centralized-bus-to-bus); the forwarder role here is that role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orgalerts.config import Config
from orgalerts.model import patterns
from orgalerts.model.addresses import role_arn, rule_arn
from orgalerts.model.resources import Resource, canonical_json
from orgalerts.model.scope import Scope
from orgalerts.sides import forwarding
from orgalerts.sides.base import Clients, Grant, Side, Sleep, Where, Writer


def ic_account(config: Config, scope: Scope) -> str:
    """The Identity Center account: configured, else the management account."""
    return config.identity_center.account_id or scope.management_account_id


def on(config: Config) -> bool:
    return config.source_on("identity-center")


def identity_center_resources(config: Config, account_id: str) -> list[Resource]:
    """The rule forwarding Identity Center changes, its role and target, and (tamper alerts) its watchdog."""
    names = config.names
    rule = {
        "pattern": canonical_json(patterns.identity_center_pattern(config.patterns)),
        "state": patterns.STATE_ENABLED,
        "description": "orgalerts: forward IAM Identity Center changes to the central bus",
    }
    resources = forwarding.forwarding_path(config, account_id, names.ic_forwarder_role, names.ic_rule, rule)
    if config.alerts.tamper_alerts:
        watchdog = {
            "pattern": canonical_json(patterns.identity_center_watchdog_pattern(config.patterns)),
            "state": patterns.STATE_ENABLED,
            "description": "orgalerts: report changes to the Identity Center rule",
        }
        path = forwarding.forwarding_path(config, account_id, names.ic_forwarder_role, names.ic_watchdog_rule, watchdog)
        resources += [r for r in path if r.kind in ("rule", "target")]  # same role as the forwarding rule
    return resources


def read_identity_center(clients: Clients, config: Config, *, everything: bool) -> list[Resource]:
    """The role and both rules; the watchdog rule only when wanted or named by the live rule's pattern."""
    names = config.names
    found = forwarding.read_role(clients.iam, names.ic_forwarder_role, names.forwarder_policy)
    found += forwarding.read_rule(clients.events, "default", names.ic_rule)
    rule = next((r for r in found if r.kind == "rule"), None)
    named = rule is not None and names.ic_watchdog_rule in rule.props.get("pattern", "")
    if everything or (on(config) and config.alerts.tamper_alerts) or named:
        found += forwarding.read_rule(clients.events, "default", names.ic_watchdog_rule)
    return found


# --- permissions ----------------------------------------------------------------------------------------------
# The Identity Center account is the management account (the orchestrator's own credentials) unless
# identity_center.account_id names another one (then the member role there; the member policy is the same in
# every account). An explicitly named account may still be the management account: the orchestrator keeps its
# grants whenever the source is on. Reading and removing are granted in any region and whatever the source
# (`forwarding.path_grants`): a switched-off source and teardown remove what an earlier configuration left.


def _roles(config: Config) -> list[str]:
    return [role_arn("*", config.names.ic_forwarder_role)]


def _rules(region: str, config: Config, watchdog: bool = True) -> list[str]:
    names = config.names
    rules = [names.ic_rule] + ([names.ic_watchdog_rule] if watchdog else [])
    return [rule_arn(region, "*", "default", rule) for rule in rules]


def _grants(principal: str, used: Callable[[Config], bool]) -> tuple[Grant, ...]:
    grants = forwarding.path_grants(
        principal,
        role_sid="IdentityCenterForwarderRole",
        rule_sid="IdentityCenterRules",
        roles=_roles,
        used_roles=_roles,
        rules=lambda c: _rules("*", c),
        used_rules=lambda c: _rules(c.identity_center_region, c, c.alerts.tamper_alerts),
        used=used,
    )
    if principal == "member":  # only when another account is named: see above
        return tuple(Grant(g.principal, g.sid, g.actions, g.resources, _and_named(g.when), g.condition) for g in grants)
    return grants


def _and_named(when: Callable[[Config], bool]) -> Callable[[Config], bool]:
    def check(config: Config) -> bool:
        return config.identity_center.account_id is not None and when(config)

    return check


IDENTITY_CENTER_GRANTS: tuple[Grant, ...] = _grants("orchestrator", on) + _grants("member", on)


class IdentityCenterSide(Side):
    name = "identity-center"
    where = Where.MANAGEMENT  # run once per run, by the orchestrator, like the organization's own sides
    kinds = forwarding.KINDS
    # A forwarding rule, role and target like the member side's; `export cloudformation` puts them into the
    # template of Identity Center's account and region (export/cloudformation.py `_identity_center_file`).
    cloudformation = forwarding.CLOUDFORMATION
    services = ("iam", "events")
    required_actions = IDENTITY_CENTER_GRANTS
    organization_wide = True  # `onboard` (one member account) leaves it alone
    reads_when_off = True  # the source switched off: what an earlier config created is removed

    def region(self, config: Config) -> str:
        return config.identity_center_region

    def home_account(self, config: Config, scope: Scope) -> str:
        return ic_account(config, scope)

    def enabled(self, config: Config, removing: bool) -> bool:
        return on(config) or removing

    def blocked(self, config: Config, scope: Scope, caller: str) -> tuple[str, str] | None:
        account = ic_account(config, scope)
        if account == scope.management_account_id and caller != account:
            return "skipped", (
                "identity-center alerts in the management account need the orchestrator to run there "
                "(or identity_center.account_id set to Identity Center's delegated administrator account)"
            )
        return None

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return identity_center_resources(config, account_id) if on(config) else []

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        return read_identity_center(clients, config, everything=everything)

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return forwarding.ForwardingWriter(clients, wait=wait, sleep=sleep)


IDENTITY_CENTER = IdentityCenterSide()
