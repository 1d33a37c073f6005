"""EventBridge event patterns for IAM changes, by name.

Owns: the named alert patterns users choose with `alerts.pattern`, the rule state each one needs, and
the blog's verbatim patterns. Pure data; no AWS calls.

Why `iam-changes` uses `detail.readOnly`: the blog's eventName prefix list misses Tag*/Untag*,
Disable*, Reset*, Resync* and other mutating IAM calls (26 of 109 in botocore's model, 2026-11), and
any API AWS adds later. CloudTrail marks every mutating call `readOnly: false`, so matching on it covers
present and future mutating operations. tests/test_patterns_coverage.py checks this against botocore's
IAM model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# EventBridge only delivers read-only CloudTrail management events to rules in this state.
STATE_ALL_MANAGEMENT_EVENTS = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
STATE_ENABLED = "ENABLED"

MAX_PATTERN_CHARS = 2048  # EventBridge's limit on an event pattern

BLOG_IAM_CHANGE_PREFIXES = (
    "Add", "Attach", "Change", "Create", "Deactivate", "Delete", "Detach",
    "Enable", "Put", "Remove", "Set", "Update", "Upload",
)  # fmt: skip
BLOG_AUTH_CHANGE_PREFIXES = (
    "Put", "Attach", "Detach", "Create", "Update", "Upload", "Delete", "Remove", "Set",
)  # fmt: skip
READ_ONLY_PREFIXES = ("Get", "List", "Generate", "Simulate")

_ENVELOPE: dict[str, Any] = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
}


def _with_detail(detail: dict[str, Any]) -> dict[str, Any]:
    return {**_ENVELOPE, "detail": {"eventSource": ["iam.amazonaws.com"], **detail}}


def _prefixes(prefixes: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"prefix": prefix} for prefix in prefixes]


@dataclass(frozen=True)
class AlertPattern:
    """A named pattern, the rule state it needs, and what it documents to match."""

    name: str
    pattern: dict[str, Any]
    state: str
    description: str

    def to_json(self) -> str:
        return json.dumps(self.pattern, sort_keys=True, separators=(",", ":"))


PATTERNS: dict[str, AlertPattern] = {
    "iam-changes": AlertPattern(
        "iam-changes",
        _with_detail({"readOnly": [False]}),
        STATE_ENABLED,
        "every mutating IAM API call, present and future (CloudTrail readOnly=false)",
    ),
    "auth-changes": AlertPattern(
        "auth-changes",
        _with_detail({"readOnly": [False], "eventName": _prefixes((*BLOG_AUTH_CHANGE_PREFIXES, "Tag", "Untag"))}),
        STATE_ENABLED,
        "mutating calls whose name starts with Put, Attach, Detach, Create, Update, Upload, Delete, Remove, "
        "Set (the blog's list) or Tag/Untag (tag-based access control makes them privilege changes)",
    ),
    "all-iam": AlertPattern(
        "all-iam",
        _with_detail({}),
        # Without this state EventBridge never delivers read-only (Get/List) management events.
        STATE_ALL_MANAGEMENT_EVENTS,
        "every IAM API call, read-only ones included (rule state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS)",
    ),
    "blog-iam-changes": AlertPattern(
        "blog-iam-changes",
        _with_detail({"eventName": _prefixes(BLOG_IAM_CHANGE_PREFIXES)}),
        STATE_ENABLED,
        "the AWS Security Blog's iam-changes pattern, verbatim (misses Tag*/Untag*, Disable*, Reset*, ...)",
    ),
    "blog-auth-changes": AlertPattern(
        "blog-auth-changes",
        _with_detail({"eventName": _prefixes(BLOG_AUTH_CHANGE_PREFIXES)}),
        STATE_ENABLED,
        "the AWS Security Blog's auth-changes pattern, verbatim",
    ),
}

PATTERN_NAMES: tuple[str, ...] = tuple(PATTERNS)


def get_pattern(name: str) -> AlertPattern:
    return PATTERNS[name]
