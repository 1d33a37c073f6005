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


def constrains_event_name(name: str) -> bool:
    """True for patterns that select by eventName (exclusions by event name cannot be combined with them)."""
    return "eventName" in PATTERNS[name].pattern["detail"]


# --- exclusions and tamper detection --------------------------------------------------------------

CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
RULE_TAMPER_EVENTS = ["DeleteRule", "DisableRule", "PutRule"]
TARGET_TAMPER_EVENTS = ["PutTargets", "RemoveTargets"]
ROLE_TAMPER_EVENTS = [
    "AttachRolePolicy",
    "DeleteRole",
    "DeleteRolePermissionsBoundary",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "PutRolePermissionsBoundary",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
]
TRAIL_TAMPER_EVENTS = ["DeleteTrail", "PutEventSelectors", "StopLogging", "UpdateTrail"]


def _call(source: str, event_source: str, names: list[str], params: dict[str, Any] | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"eventSource": [event_source], "eventName": sorted(names)}
    if params:
        detail["requestParameters"] = params
    return {"source": [source], "detail-type": [CLOUDTRAIL_API_CALL], "detail": detail}


def alert_pattern(
    name: str,
    *,
    exclude_principals: tuple[str, ...] = (),
    exclude_events: tuple[str, ...] = (),
    skip_roles_with_prefix: str | None = None,
) -> dict[str, Any]:
    """The named pattern with the configured exclusions applied inside it, so excluded events cost nothing.

    `skip_roles_with_prefix` leaves IAM calls on orgalerts' own roles to the tamper rule (no duplicate).
    """
    pattern: dict[str, Any] = json.loads(json.dumps(PATTERNS[name].pattern))
    detail = pattern["detail"]
    if exclude_events:
        # Validated in config: only for patterns that do not already constrain eventName.
        detail["eventName"] = [{"anything-but": sorted(exclude_events)}]
    if exclude_principals:
        # Calls by AWS services carry no principal ARN: keep them (exists: false), drop the excluded ARNs.
        detail["userIdentity"] = {
            "$or": [{"arn": [{"exists": False}]}, {"arn": [{"anything-but": {"wildcard": sorted(exclude_principals)}}]}]
        }
    if skip_roles_with_prefix:
        detail["requestParameters"] = {
            "$or": [
                {"roleName": [{"exists": False}]},
                {"roleName": [{"anything-but": {"prefix": skip_roles_with_prefix}}]},
            ]
        }
    return pattern


def watch_branches(rule_name: str | dict[str, str], role_name: str | dict[str, str]) -> list[dict[str, Any]]:
    """Calls that disable, delete, retarget or weaken a forwarding rule or its role.

    Names may be exact strings or a filter such as {"prefix": "orgalerts-"}.
    """
    rule = [rule_name]
    role = [role_name]
    return [
        _call("aws.events", "events.amazonaws.com", RULE_TAMPER_EVENTS, {"name": rule}),
        _call("aws.events", "events.amazonaws.com", TARGET_TAMPER_EVENTS, {"rule": rule}),
        _call("aws.iam", "iam.amazonaws.com", ROLE_TAMPER_EVENTS, {"roleName": role}),
    ]


def trail_branch() -> dict[str, Any]:
    return _call("aws.cloudtrail", "cloudtrail.amazonaws.com", TRAIL_TAMPER_EVENTS)


def central_watch_pattern(bus_name: str, topic_arn: str) -> dict[str, Any]:
    """Calls in the notification account that change the central bus, its policy, its rules or the topic."""
    bus = [bus_name]
    return {
        "$or": [
            _call("aws.events", "events.amazonaws.com", ["PutPermission", "RemovePermission"], {"eventBusName": bus}),
            _call("aws.events", "events.amazonaws.com", ["DeleteEventBus"], {"name": bus}),
            _call("aws.events", "events.amazonaws.com", RULE_TAMPER_EVENTS, {"eventBusName": bus}),
            _call("aws.events", "events.amazonaws.com", TARGET_TAMPER_EVENTS, {"eventBusName": bus}),
            # Subscribe/Unsubscribe are left out: verify and watch use a temporary subscription each run,
            # and a removed e-mail subscription is drift (`orgalerts drift` names it).
            _call("aws.sns", "sns.amazonaws.com", ["DeleteTopic", "SetTopicAttributes"], {"topicArn": [topic_arn]}),
        ]
    }


def to_json(pattern: dict[str, Any]) -> str:
    return json.dumps(pattern, sort_keys=True, separators=(",", ":"))


def account_change_pattern(target_ou_ids: tuple[str, ...], whole_organization: bool) -> dict[str, Any]:
    """Organizations events that put an account into a target OU (it is not covered until onboarded)."""
    moved: dict[str, Any] = {
        "source": ["aws.organizations"],
        "detail": {"eventSource": ["organizations.amazonaws.com"], "eventName": ["MoveAccount"]},
    }
    if not whole_organization:
        moved["detail"]["requestParameters"] = {"destinationParentId": sorted(target_ou_ids) or ["none"]}
    if not whole_organization:
        return moved
    # With the whole organization in scope, every new account counts, also those created or invited.
    joined = {
        "source": ["aws.organizations"],
        "detail": {
            "eventSource": ["organizations.amazonaws.com"],
            "eventName": ["AcceptHandshake", "CreateAccountResult"],
        },
    }
    return {"$or": [moved, joined]}
