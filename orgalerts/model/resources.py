"""The resource model shared by desired state, live state and the planner. Pure.

Owns: `Resource` (one frozen type for both sides of a diff), the ownership marker, and canonical JSON
so that a policy AWS returns reformatted still compares equal. Managed names live in `addresses`.

A resource is orgalerts' own only when it has the managed name *and* the ownership marker: the tag
`managed-by: orgalerts`, or, where a read returns it without a tags call, the same words in a field that read
returns (`MARKER_TEXT`: a member rule's Description, from ListRules; the member dead-letter queue's policy Id,
from GetQueueAttributes). Children such as a rule's targets or a role's inline policy inherit their parent's
ownership.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MANAGED_TAG_KEY = "managed-by"
MANAGED_TAG_VALUE = "orgalerts"
# The marker written into a field orgalerts sets anyway, read back with no extra call (see the module docstring).
MARKER_TEXT = f"{MANAGED_TAG_KEY}={MANAGED_TAG_VALUE}"
# A live property AWS does not return and nothing recorded (a secret's digest on a resource a CloudFormation
# template created): it matches any desired value, so the plan neither reports nor rewrites it.
UNKNOWN = "(unknown)"


def has_marker_text(text: str | None) -> bool:
    return bool(text) and MARKER_TEXT in str(text)


@dataclass(frozen=True)
class Resource:
    """One resource, desired or live. `props` hold canonical strings, so `==` is the comparison."""

    kind: str
    name: str
    props: dict[str, str] = field(default_factory=dict)
    managed: bool = True
    # Observed facts that are reported but never diffed (e.g. a subscription pending confirmation).
    notes: tuple[str, ...] = ()
    # The live resource's ARN where a later write needs it (e.g. to unsubscribe); never diffed.
    arn: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


def managed_tags() -> list[dict[str, str]]:
    return [{"Key": MANAGED_TAG_KEY, "Value": MANAGED_TAG_VALUE}]


def is_managed_tags(tags: list[dict[str, str]] | dict[str, str] | None) -> bool:
    """True when the tag set carries the ownership marker (IAM/SNS/Events tag shapes all accepted)."""
    if not tags:
        return False
    if isinstance(tags, dict):
        return tags.get(MANAGED_TAG_KEY) == MANAGED_TAG_VALUE
    return any(t.get("Key") == MANAGED_TAG_KEY and t.get("Value") == MANAGED_TAG_VALUE for t in tags)


def canonical_json(value: Any) -> str:
    """Stable JSON text: sorted keys, no whitespace."""
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical_policy(document: Any) -> str:
    """A policy document in a form that ignores AWS's reformatting.

    AWS may return `"Action": "x"` for `["x"]`, reorder lists, or URL-decode documents; we compare
    statement sets with every scalar-or-list value as a sorted list.
    """
    if isinstance(document, str):
        document = json.loads(document)

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return value

    doc = dict(document)
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    normalised = []
    for statement in statements:
        stmt = {}
        for key, value in statement.items():
            if key in ("Action", "NotAction", "Resource", "NotResource") and isinstance(value, str):
                value = [value]
            if key == "Principal" and isinstance(value, dict):
                value = {k: [v] if isinstance(v, str) else v for k, v in value.items()}
            if key == "Condition" and isinstance(value, dict):
                value = {
                    op: {ck: [cv] if isinstance(cv, str) else cv for ck, cv in conds.items()}
                    for op, conds in value.items()
                }
            stmt[key] = norm(value)
        normalised.append(stmt)
    doc["Statement"] = sorted(normalised, key=lambda s: json.dumps(s, sort_keys=True))
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def statement_ids(document: str) -> set[str]:
    """The Sids of a (canonical) policy document."""
    doc = json.loads(document) if document else {}
    return {str(s.get("Sid", "")) for s in doc.get("Statement", [])}
