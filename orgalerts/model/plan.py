"""The planner: desired vs live resources -> changes. Pure; never touches AWS.

Owns: the diff, ownership conflicts (a resource with a managed name but without the marker), the
order changes are applied in (the order of the side's `Kind`s), how each change reads in a report
(`text` for deploy/plan, `finding` for drift), and the status a side ends with. Which kinds exist, and
their labels, is each side's to declare (`orgalerts/sides/`): the planner takes them as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orgalerts.model.resources import UNKNOWN, Resource, statement_ids


@dataclass(frozen=True)
class Kind:
    """A resource kind of one side: its name in `Resource.kind` and how reports call it."""

    name: str
    label: str
    # Deleted only after every create and update of the plan: live resources may still point at it (a role or
    # a dead-letter queue a target names), and the target is re-pointed or removed first.
    delete_last: bool = False


@dataclass(frozen=True)
class Change:
    """One write orgalerts would make."""

    action: str  # "create" | "update" | "delete"
    desired: Resource | None
    live: Resource | None
    fields: tuple[str, ...] = ()
    label: str = field(default="", compare=False)  # the kind's label, e.g. "forwarder role"

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
        label = f"{self.label or self.kind} {self.name}"
        if self.action == "update":
            return f"update {label}: {', '.join(self.fields)}"
        return f"{self.action} {label}"

    @property
    def finding(self) -> str:
        """What drift found, in words a security engineer reads at a glance."""
        label = f"{self.label or self.kind} {self.name}"
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
    label: str = field(default="", compare=False)

    @property
    def message(self) -> str:
        return (
            f"{self.label or self.kind} {self.name} exists but is not managed by orgalerts "
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


def diff(desired: Sequence[Resource], live: Sequence[Resource], kinds: Sequence[Kind]) -> Plan:
    """Changes that turn `live` into `desired`, touching only managed resources.

    `kinds` is the side's kinds, parents before children: creates and updates run in that order,
    deletes in the reverse one (those of `delete_last` kinds after every create and update). A resource of a kind
    not listed is a bug in the side (KeyError).
    """
    rank = {k.name: i for i, k in enumerate(kinds)}
    labels = {k.name: k.label for k in kinds}
    live_by_key = {r.key: r for r in live}
    desired_keys = {r.key for r in desired}
    conflicts = tuple(Conflict(r.kind, r.name, labels[r.kind]) for r in live if not r.managed and r.key in desired_keys)
    changes: list[Change] = []
    for want in desired:
        have = live_by_key.get(want.key)
        if have is None:
            changes.append(Change("create", want, None, label=labels[want.kind]))
        elif have.managed:
            fields = tuple(
                sorted(
                    k
                    for k in set(want.props) | set(have.props)
                    if want.props.get(k) != have.props.get(k) and have.props.get(k) != UNKNOWN
                )
            )
            if fields:
                changes.append(Change("update", want, have, fields, label=labels[want.kind]))
    for have in live:
        if have.key not in desired_keys and have.managed:
            changes.append(Change("delete", None, have, label=labels[have.kind]))

    late = {k.name for k in kinds if k.delete_last}

    def order(change: Change) -> tuple[int, int]:
        # Deletes first, children before parents; then creates/updates, parents before children; then deletes of
        # kinds something may still point at (`Kind.delete_last`), children before parents.
        index = rank[change.kind]
        if change.action != "delete":
            return (1, index)
        return (2, -index) if change.kind in late else (0, -index)

    return Plan(
        changes=tuple(sorted(changes, key=order)),
        conflicts=conflicts,
        live_existed=any(r.managed for r in live),
    )
