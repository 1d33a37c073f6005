"""The organization watch: account moves into target OUs, seen in the management account (us-east-1).

Owns: the rule on the management account's default bus that forwards Organizations events which add
an account to a target OU (`alerts.account_changes`) to the central bus, its role and target, and the
pattern (shared with the central account-change rule). Runs with the orchestrator's own credentials,
so only when they belong to the management account.
"""

from __future__ import annotations

from typing import Any

from orgalerts.config import Config
from orgalerts.model import patterns
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


def org_watch_resources(config: Config, scope: Scope) -> list[Resource]:
    """In the management account (us-east-1): forward the Organizations events that add accounts."""
    names = config.names
    rule = {
        "pattern": canonical_json(account_change_pattern(scope)),
        "state": patterns.STATE_ENABLED,
        "description": "orgalerts: forward account moves into target OUs to the central bus",
    }
    return forwarding.forwarding_path(
        config, scope.management_account_id, names.org_forwarder_role, names.org_watch_rule, rule
    )


# Permissions of the orchestrator (management account, us-east-1; `*` for the account id, which the config
# does not name). Created only with alerts.account_changes; read and removed always: teardown runs this side
# whatever the configuration and removes what an earlier one left.
ORG_WATCH_GRANTS: tuple[Grant, ...] = forwarding.path_grants(
    "orchestrator",
    role_sid="OrgForwarderRole",
    rule_sid="OrgWatchRule",
    roles=lambda c: [role_arn("*", c.names.org_forwarder_role)],
    used_roles=lambda c: [role_arn("*", c.names.org_forwarder_role)],
    rules=lambda c: [rule_arn(MEMBER_REGION, "*", "default", c.names.org_watch_rule)],
    used_rules=lambda c: [rule_arn(MEMBER_REGION, "*", "default", c.names.org_watch_rule)],
    used=lambda c: c.alerts.account_changes,
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
        return config.alerts.account_changes or removing  # teardown removes what an earlier run left

    def blocked(self, config: Config, scope: Scope, caller: str) -> tuple[str, str] | None:
        if caller != scope.management_account_id:
            return "skipped", "account-change alerts need the orchestrator to run in the management account"
        return None

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return org_watch_resources(config, scope) if config.alerts.account_changes else []

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        names = config.names
        found = forwarding.read_role(clients.iam, names.org_forwarder_role, names.forwarder_policy)
        return found + forwarding.read_rule(clients.events, "default", names.org_watch_rule)

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return forwarding.ForwardingWriter(clients, wait=wait, sleep=sleep)


ORG_WATCH = OrgWatchSide()
