"""Member forwarding: the side every in-scope account has (us-east-1, through the member role).

Owns: the forwarding rule on the default bus with its target (the central bus), the watchdog rule that
watches the forwarder (`alerts.tamper_alerts`), the one role both targets use, the member dead-letter queue
(`alerts.dead_letter_queues`), the patterns of both rules, and reading all of it back in as few calls as the
checks allow (`read_member`).

Shape since version 2 (bench/RESULTS.md): ONE role, `<prefix>forwarder`, serves both targets. Earlier versions
gave the watchdog its own role, `<prefix>watchdog`; the reader still looks for it, so the next `deploy` re-points
the watchdog target to the one role and only then deletes the old role and its inline policy (`Kind.delete_last`),
and `plan`/`drift` list exactly that (`update rule target ...: role_arn`, `delete forwarder role <prefix>watchdog`).

That look is one GetRole per account and run, for a role that is almost never there. A forwarder role created when
the account held no such role carries a record of it (`ONE_ROLE_RECORD`, a tag set by CreateRole itself, so no
write of its own), and then the look is skipped unless a target names the old role (an earlier version deployed
again) or everything is read (teardown, offboard). A role created while the old one was still there, or by an
earlier version, has no record: its account keeps the look, as before. The record is never written later: a
record set before the old role's deletion would hide that role if the run stopped between re-pointing the target
and deleting it.
"""

from __future__ import annotations

import functools
from typing import Any

from orgalerts.config import Config
from orgalerts.model import patterns
from orgalerts.model.addresses import MEMBER_REGION, Names, queue_arn, role_arn, rule_arn
from orgalerts.model.resources import MARKER_TEXT, Resource, canonical_json
from orgalerts.model.scope import Scope
from orgalerts.sides import forwarding
from orgalerts.sides.base import Clients, Grant, Side, Sleep, Where, Writer, everywhere


def member_pattern(config: Config) -> dict[str, object]:
    """The forwarding rule: the configured alert pattern, plus calls that tamper with the watchdog."""
    return patterns.member_forwarding_pattern(config.patterns)


def watchdog_pattern(config: Config) -> dict[str, object]:
    """The watchdog rule: calls that tamper with the forwarding rule or its role, and CloudTrail logging.

    The two rules watch each other, so disabling, deleting or retargeting one is reported by the other. They
    share one role (issue 15's call floor): a change to that role is reported too, but a change that breaks it
    (trust or policy) also stops that report's own delivery (it lands in the member DLQ); `drift` still finds
    it, and the opt-in guardrail SCP prevents it. README "Tamper alerts" says so.
    """
    return patterns.member_watchdog_pattern(config.patterns)


# Tags (Key/Value) are returned by GetRole (API_Role.html) and may be set by CreateRole with the role's others
# (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html, `Tags`; tagging on create needs
# iam:TagRole, which the member grants already hold: forwarding.ROLE_WRITE). Key and value use only characters
# IAM allows in tags (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html).
ONE_ROLE_RECORD = {"Key": "orgalerts-shape", "Value": "one-role"}

FORWARD_DESCRIPTION = f"orgalerts: forward IAM-change events to the central bus ({MARKER_TEXT})"
WATCHDOG_DESCRIPTION = (
    f"orgalerts: report changes to the forwarding rule, its role and CloudTrail logging ({MARKER_TEXT})"
)


@functools.lru_cache(maxsize=16)
def _patterns_json(inputs: patterns.PatternInputs) -> tuple[str, str]:
    """Both rules' patterns, canonical: the same for every member account, so built once per configuration rather
    than once per account (frozen, hashable inputs; a few KB of JSON per configuration)."""
    return (
        canonical_json(patterns.member_forwarding_pattern(inputs)),
        canonical_json(patterns.member_watchdog_pattern(inputs)),
    )


def member_resources(config: Config, account_id: str) -> list[Resource]:
    """The forwarding resources of one member account (all in us-east-1).

    The rules' Descriptions carry the ownership marker (`MARKER_TEXT`): ListRules returns them, so one call
    reads both rules with their state, pattern, description and ownership (`forwarding.read_rules`). The rules
    are still tagged on create (the tag stays the marker everywhere else, and for rules an earlier version made).
    """
    names = config.names
    alerts = config.alerts
    forward_arn = rule_arn(MEMBER_REGION, account_id, "default", names.member_rule)
    watchdog_arn = rule_arn(MEMBER_REGION, account_id, "default", names.watchdog_rule)
    dlq_arn = queue_arn(MEMBER_REGION, account_id, names.member_dlq) if alerts.dead_letter_queues else ""

    forward_pattern, watchdog_json = _patterns_json(config.patterns)
    resources: list[Resource] = []
    if alerts.dead_letter_queues:
        rule_arns = [forward_arn] + ([watchdog_arn] if alerts.tamper_alerts else [])
        resources.append(forwarding.queue(names.member_dlq, dlq_arn, rule_arns, marker=True))
    role = names.forwarder_role
    forward = {
        "pattern": forward_pattern,
        "state": patterns.member_rule_state(config.patterns),
        "description": FORWARD_DESCRIPTION,
    }
    resources += forwarding.forwarding_role(config, account_id, role)
    resources += forwarding.forwarding_rule(config, account_id, role, names.member_rule, forward, dlq_arn=dlq_arn)
    if alerts.tamper_alerts:
        watchdog = {
            "pattern": watchdog_json,
            "state": patterns.STATE_ENABLED,
            "description": WATCHDOG_DESCRIPTION,
        }
        resources += forwarding.forwarding_rule(
            config, account_id, role, names.watchdog_rule, watchdog, dlq_arn=dlq_arn
        )
    return resources


def read_member(
    clients: Clients,
    names: Names,
    account_id: str,
    *,
    watchdog: bool = True,
    dead_letters: bool = True,
    earlier_role: bool = False,
) -> list[Resource]:
    """A member account's forwarding resources (us-east-1), in as few calls as the checks allow.

    Calls for the shipped profile, nothing changed: GetRole + GetRolePolicy (the one role; GetRole carries its
    tags), one ListRules for both rules (state, pattern, description, ownership), one ListTargetsByRule per rule,
    one GetQueueAttributes (built URL; ownership in the policy's Id): 6, plus the AssumeRole. One more, GetRole on
    the second role of earlier versions (NoSuchEntity once migrated), unless the one role records that none was
    left when it was made (`ONE_ROLE_RECORD`) and no target names it; `earlier_role` looks whatever the record says.
    `watchdog` costs nothing (ListRules returns the watchdog rule if it exists, on or off); with `dead_letters` off
    the queue is read only when a live target still names a dead-letter queue.
    """
    iam, events = clients.iam, clients.events
    role, tags = forwarding.read_role_and_tags(iam, names.forwarder_role, names.forwarder_policy)
    rules = forwarding.read_rules(events, "default", [names.member_rule, names.watchdog_rule], names.prefix)
    earlier: list[Resource] = []
    if earlier_role or not _one_role_recorded(role, tags) or _names_role(rules, names.watchdog_role):
        earlier = forwarding.read_role(iam, names.watchdog_role, names.forwarder_policy)
    found = role + earlier + rules
    if dead_letters or any(r.kind == "target" and r.props.get("dlq_arn") for r in found):
        found = forwarding.read_queue_at(clients.sqs, account_id, names.member_dlq) + found
    return found


def _one_role_recorded(role: list[Resource], tags: list[dict[str, str]]) -> bool:
    """Whether the forwarder role is ours and was made when no role of an earlier version was left."""
    return bool(role) and role[0].managed and ONE_ROLE_RECORD in tags


def _names_role(rules: list[Resource], role_name: str) -> bool:
    """Whether a target uses `role_name` (in any account and partition: the ARN ends `:role/<name>`)."""
    return any(r.kind == "target" and r.props.get("role_arn", "").endswith(f":role/{role_name}") for r in rules)


def one_role_records(config: Config, live: list[Resource]) -> dict[str, list[dict[str, str]]]:
    """The record a forwarder role created now may carry: only if no role of an earlier version is live (then the
    read that found none was made, as a role without a record is always followed by that look)."""
    names = config.names
    if any(r.kind == "role" and r.name == names.watchdog_role for r in live):
        return {}
    return {names.forwarder_role: [ONE_ROLE_RECORD]}


# --- permissions (the member role, in every in-scope account, us-east-1; `*` for the account id) -------------


def _roles(config: Config, *, used: bool = False) -> list[str]:
    """The one role; reading and removing also the second role of earlier versions (migration, teardown)."""
    names = config.names
    return [role_arn("*", names.forwarder_role)] + ([] if used else [role_arn("*", names.watchdog_role)])


def _rules(config: Config, *, used: bool = False) -> list[str]:
    names = config.names
    rules = [names.member_rule] + ([names.watchdog_rule] if not used or config.alerts.tamper_alerts else [])
    return [rule_arn(MEMBER_REGION, "*", "default", rule) for rule in rules]


def member_dlq_arns(config: Config) -> list[str]:
    return [queue_arn(MEMBER_REGION, "*", config.names.member_dlq)]


# The watchdog rule (alerts.tamper_alerts) and the dead-letter queue (alerts.dead_letter_queues) are created only
# when on; read and removed always (`forwarding.path_grants`): the reader sees them whenever they exist, and
# teardown or turning the feature off must remove them; the earlier versions' watchdog role: read and removed only.
# ListRules has no resource type (Service Authorization Reference, list_amazoneventbridge.html): "*".
MEMBER_GRANTS: tuple[Grant, ...] = (
    forwarding.path_grants(
        "member",
        role_sid="ForwarderRoles",
        rule_sid="ForwardingRules",
        roles=_roles,
        used_roles=lambda c: _roles(c, used=True),
        rules=_rules,
        used_rules=lambda c: _rules(c, used=True),
    )
    + forwarding.queue_grants("member", "MemberDeadLetterQueue", member_dlq_arns, lambda c: c.alerts.dead_letter_queues)
    + (Grant("member", "ListForwardingRules", forwarding.LIST_RULES, everywhere),)
)


class MemberSide(Side):
    name = "member"
    where = Where.MEMBER
    kinds = forwarding.KINDS
    cloudformation = forwarding.CLOUDFORMATION
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
            account_id,
            watchdog=everything or alerts.tamper_alerts,
            dead_letters=everything or alerts.dead_letter_queues,
            earlier_role=everything,
        )

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return forwarding.ForwardingWriter(clients, wait=wait, sleep=sleep, role_records=one_role_records(config, live))


MEMBER = MemberSide()
