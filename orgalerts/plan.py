"""The planner: desired vs live resources -> changes. Pure; never touches AWS.

Owns: the diff, ownership conflicts (a resource with a managed name but without the marker), the
order changes are applied in, how each change reads in a report (`text` for deploy/plan, `finding` for
drift), and the status a side ends with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orgalerts.resources import KIND_ORDER, Resource, statement_ids

LABELS = {
    "bus": "central bus",
    "bus-policy": "bus policy",
    "topic": "topic",
    "topic-policy": "topic policy",
    "subscription": "subscription",
    "role": "forwarder role",
    "role-policy": "forwarder role permissions",
    "rule": "rule",
    "target": "rule target",
    "bucket": "trail bucket",
    "bucket-policy": "trail bucket policy",
    "trail": "organization trail",
    "scp": "guardrail SCP",
    "scp-attachment": "guardrail SCP attachment",
}


@dataclass(frozen=True)
class Change:
    """One write orgalerts would make."""

    action: str  # "create" | "update" | "delete"
    desired: Resource | None
    live: Resource | None
    fields: tuple[str, ...] = ()

    @property
    def resource(self) -> Resource:
        resource = self.desired or self.live
        assert resource is not None
        return resource

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def text(self) -> str:
        """What deploy/plan does, e.g. `update rule default/orgalerts-forward: state`."""
        label = f"{LABELS.get(self.kind, self.kind)} {self.name}"
        if self.action == "update":
            return f"update {label}: {', '.join(self.fields)}"
        return f"{self.action} {label}"

    @property
    def finding(self) -> str:
        """What drift found, in words a security engineer reads at a glance."""
        label = f"{LABELS.get(self.kind, self.kind)} {self.name}"
        if self.action == "create":
            return f"{label} missing"
        if self.action == "delete":
            if self.kind == "target":
                return (
                    f"{label} is a foreign target on a managed rule (points to {self.resource.props.get('arn', '?')})"
                )
            return f"{label} is not configured (stale)"
        assert self.desired is not None and self.live is not None
        details = [self._field_finding(f, self.desired, self.live) for f in self.fields]
        return f"{label}: {'; '.join(details)}"

    @staticmethod
    def _field_finding(field: str, desired: Resource, live: Resource) -> str:
        want, have = desired.props.get(field, ""), live.props.get(field, "")
        if field == "state":
            return "disabled" if have == "DISABLED" else f"state {have} (want {want})"
        if field == "arn":
            return f"points elsewhere ({have or 'nothing'} instead of {want})"
        if field == "role_arn":
            return f"RoleArn changed ({have or 'none'} instead of {want})"
        if field == "pattern":
            return "pattern changed"
        if field == "trust":
            return "trust policy changed"
        if field == "document":
            foreign = sorted(statement_ids(have) - statement_ids(want)) if have else []
            if foreign and desired.kind == "bus-policy":
                return f"policy widened (foreign statements: {', '.join(s or '(no Sid)' for s in foreign)})"
            return "policy changed" if have else "policy missing"
        if field == "input_transformer":
            return "message format changed"
        return f"{field} changed"


@dataclass(frozen=True)
class Conflict:
    """A same-named resource orgalerts does not own: it refuses to touch the account."""

    kind: str
    name: str

    @property
    def message(self) -> str:
        return (
            f"{LABELS.get(self.kind, self.kind)} {self.name} exists but is not managed by orgalerts "
            "(no managed-by=orgalerts tag); refusing to touch this account"
        )


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    conflicts: tuple[Conflict, ...]
    live_existed: bool  # any managed resource existed before (created vs updated)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def status(self) -> str:
        """created / updated / unchanged, as deploy would report it."""
        if not self.changes:
            return "unchanged"
        if not self.live_existed and all(c.action == "create" for c in self.changes):
            return "created"
        return "updated"


def _order(change: Change) -> tuple[int, int]:
    index = KIND_ORDER.index(change.kind)
    # Deletes first, children before parents; then creates/updates, parents before children.
    return (0, -index) if change.action == "delete" else (1, index)


def diff(desired: Sequence[Resource], live: Sequence[Resource]) -> Plan:
    """Changes that turn `live` into `desired`, touching only managed resources."""
    live_by_key = {r.key: r for r in live}
    desired_keys = {r.key for r in desired}
    conflicts = tuple(Conflict(r.kind, r.name) for r in live if not r.managed and r.key in desired_keys)
    changes: list[Change] = []
    for want in desired:
        have = live_by_key.get(want.key)
        if have is None:
            changes.append(Change("create", want, None))
        elif have.managed:
            fields = tuple(
                sorted(k for k in set(want.props) | set(have.props) if want.props.get(k) != have.props.get(k))
            )
            if fields:
                changes.append(Change("update", want, have, fields))
    for have in live:
        if have.key not in desired_keys and have.managed:
            changes.append(Change("delete", None, have))
    return Plan(
        changes=tuple(sorted(changes, key=_order)),
        conflicts=conflicts,
        live_existed=any(r.managed for r in live),
    )


def removal(live: Sequence[Resource]) -> Plan:
    """Changes that remove every managed resource and nothing else (offboard, teardown)."""
    return diff([], live)
