"""The CloudFormation form of orgalerts' resources: the vocabulary each side uses to say how its kinds look in a
template. Pure (no AWS call).

Owns: `Form` (how one desired `Resource` is written into a template: a new CloudFormation resource, or a property
merged into its parent's, as a rule's targets or a role's inline policies), `Stack` (the Resources section being
assembled: logical ids derived from kind and name, lookup of a parent, the kind rank each resource came from),
the ownership tags, and the small converters the forms share.

Each side declares the forms of its own kinds next to its `KINDS` (`Side.cloudformation`), so adding a kind still
touches one side module; `orgalerts.export` only assembles. The values are the desired state's own (names, ARNs,
documents): a template creates exactly what the direct engine would, with the managed names and the managed-by
tag, so `drift` sees template-created resources as orgalerts' own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orgalerts.config import Config
from orgalerts.model.resources import Resource, managed_tags

# CloudFormation logical ids: alphanumeric, at most 255 characters.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resources-section-structure.html
MAX_LOGICAL_ID = 255


def logical_id(kind: str, name: str) -> str:
    """`rule` + `default/orgalerts-forward` -> `RuleDefaultOrgalertsForward`: stable across exports, so a
    re-exported template updates resources in place instead of replacing them."""
    words = re.split(r"[^A-Za-z0-9]+", f"{kind} {name}")
    return "".join(w[:1].upper() + w[1:] for w in words if w)[:MAX_LOGICAL_ID]


@dataclass
class Stack:
    """The Resources section of one template, assembled from desired resources by the sides' forms."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (kind, name) of the desired resource -> logical id of the CloudFormation resource that holds it
    logical: dict[tuple[str, str], str] = field(default_factory=dict)
    # logical id -> rank of the kind that created it (the side's apply order; see `export` for DependsOn)
    rank: dict[str, int] = field(default_factory=dict)
    current_rank: int = 0
    # The configuration the desired state came from (forms that need more than a resource's props: a destination's
    # type and the environment variables holding its secrets).
    config: Config | None = None
    # Parameters and Conditions sections a form adds to (secrets are parameters, never values in the template).
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)

    def add(self, resource: Resource, cfn_type: str, properties: dict[str, Any], **attributes: Any) -> str:
        """A new CloudFormation resource for `resource`; its logical id is returned."""
        base = logical_id(resource.kind, resource.name)
        logical = base
        if logical in self.resources:  # two names folding to the same id: tell them apart, stably
            digest = hashlib.sha256(f"{resource.kind}/{resource.name}".encode()).hexdigest()[:8]
            logical = f"{base[: MAX_LOGICAL_ID - 8]}{digest}"
        self.resources[logical] = {"Type": cfn_type, **attributes, "Properties": properties}
        self.logical[resource.key] = logical
        self.rank[logical] = self.current_rank
        return logical

    def holds(self, kind: str, name: str, resource: Resource) -> str:
        """`resource` is written inside the CloudFormation resource of (kind, name); its logical id."""
        logical = self.logical[(kind, name)]
        self.logical[resource.key] = logical
        return logical

    def properties(self, kind: str, name: str) -> dict[str, Any]:
        """The properties of the CloudFormation resource holding (kind, name), to merge a child into."""
        props: dict[str, Any] = self.resources[self.logical[(kind, name)]]["Properties"]
        return props

    def ref(self, kind: str, name: str) -> dict[str, str]:
        return {"Ref": self.logical[(kind, name)]}

    def has(self, kind: str, name: str) -> bool:
        return (kind, name) in self.logical

    def get_att(self, kind: str, name: str, attribute: str) -> dict[str, list[str]]:
        return {"Fn::GetAtt": [self.logical[(kind, name)], attribute]}

    def merge(self, other: Stack) -> None:
        """Another side's resources, parameters and conditions into this one (a template holds several sides)."""
        for section, theirs in (("resources", other.resources), ("parameters", other.parameters),
                                ("conditions", other.conditions)):  # fmt: skip
            mine: dict[str, Any] = getattr(self, section)
            clash = set(mine) & set(theirs)
            if clash:
                raise ValueError(f"{section}: logical ids used twice: {sorted(clash)}")
            mine.update(theirs)
        self.rank.update(other.rank)


Form = Callable[[Resource, Stack], None]


def tags() -> list[dict[str, str]]:
    """orgalerts' ownership marker, as CloudFormation's Tags property takes it."""
    return managed_tags()


def document(text: str) -> Any:
    """A policy or pattern held as canonical JSON text -> the JSON object a template embeds."""
    return json.loads(text) if text else {}


def flag(value: str) -> bool:
    return value == "true"
