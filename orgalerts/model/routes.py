"""The central alert routes: one EventBridge rule per (severity, outcome, message shape), disjoint by construction.

Owns: turning the classification table (severity.TABLE) into event patterns, one `Route` per central rule,
each with its severity and its message. Pure; no AWS calls.

Why disjoint by construction: EventBridge delivers an event to every rule that matches it and a pattern
cannot say "not matched by another rule", so one event must never match two routes. Every route's pattern
is a conjunction of choices made on separate fields, each split into cases that exclude each other and
together cover everything:
- caller: `userIdentity.type` is `Root` / anything but `Root` or absent;
- outcome: `errorCode` exists (a FAILED attempt) / does not;
- call: per eventSource, the names the table tiers explicitly / `anything-but` all of them (info); a name
  with a request-parameter condition is split into the condition and its complement (`anything-but` the
  values, or the parameter absent);
- message shape: `userIdentity.arn` exists / does not, and `requestParameters` is null / is not (an object, or
  absent), so every placeholder of a route's message is a field present in every event the route matches
  (EventBridge drops a missing path silently, which is where "via role ;" came from; see messages.substitute),
  and a null never reaches a message ("parameters: null"). `[null]` matches a null value
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-null-values.html); `{"exists":
  false}` matches an absent field and an object, because "Exists matching only works on leaf nodes. It does not
  work on intermediate nodes" (eb-create-pattern-operators.html, "Exists matching"). The `eventID` is not split
  on: CloudTrail writes it in every record ("eventID ... Optional: False",
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html),
  and a split would double the rules.
- account changes: with `alerts.account_changes` on, the organizations events the central account-change rule
  alerts on (joins, and moves into a target OU: patterns.account_change_pattern) are carved out of every
  organizations branch (`Carve`), so such an event is that rule's alone.
A route's pattern holds the outcome and the request-parameters shape under `detail`, and the calls as one branch
or a `$or` of branches under `detail` (each branch: eventSource, names, request conditions, caller type and
principal-ARN shape). The request-parameters shape (path `detail.requestParameters`) may sit beside branches that
test fields under it (`detail.requestParameters.roleName`): EventBridge's matcher compiles a pattern into
field paths, one map per `$or` branch, and these are two different paths (aws/event-ruler,
src/main/software/amazon/event/ruler/JsonRuleCompiler.java, `parseIntoOrRelationship`/`writeRules`); so such a
route always keeps a `$or` of at least two branches. A route is cut into several rules where one would pass
EventBridge's 2,048-character limit. Operators used: exact values, `anything-but` (list,
prefix), `exists`, `$or`; every one of them is documented for event buses in
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
and evaluated the same way by model/matching.py (replay) and moto's matcher (the sandbox).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orgalerts.model import messages
from orgalerts.model.severity import (
    CONFIG_SOURCES,
    SERVICE_BY_EVENT_SOURCE,
    SERVICES,
    TABLE,
    Entry,
    Service,
    Severity,
)

MAX_PATTERN_CHARS = 2048  # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
MAX_RULE_NAME = 64  # PutRule Name: 1-64 characters (API_PutRule.html)
ROUTE_PREFIX = "alert"  # every route's rule is named <resource_prefix>alert-...; the old single rule was <prefix>alert
DEFAULT_SOURCES: tuple[str, ...] = ("iam",)


@dataclass(frozen=True)
class Shape:
    """Which optional fields a route's events carry, so its message uses only those: the principal's ARN, and
    request parameters that are not null (an object; or absent, which renders as nothing)."""

    suffix: str
    arn: bool
    params: bool


SHAPES: tuple[Shape, ...] = (
    Shape("", True, True),
    Shape("-anon", False, True),
    Shape("-bare", True, False),
    Shape("-anon-bare", False, False),
)


@dataclass(frozen=True)
class Carve:
    """Organizations events another central rule alerts on (the account-change rule), carved out of every
    organizations branch: the `names` entirely, and `MoveAccount` into one of `target_ou_ids` (every move when
    `whole_organization`). Mirrors patterns.account_change_pattern."""

    target_ou_ids: tuple[str, ...]
    whole_organization: bool
    names: tuple[str, ...] = ("AccountJoinedOrganization", "CreateAccountResult")
    move: str = "MoveAccount"

    def carved_names(self) -> list[str]:
        return sorted({*self.names, self.move})

    def elsewhere(self, params: bool) -> dict[str, Any] | None:
        """The calls of `move` the carve leaves to the routes: moves to a parent outside the target OUs."""
        if self.whole_organization:
            return None
        if not params:  # null requestParameters: no destination, so not a move into a target OU
            return {"eventName": [self.move]}
        destination = [{"anything-but": sorted(self.target_ou_ids) or ["none"]}, {"exists": False}]
        return {"eventName": [self.move], "requestParameters": {"destinationParentId": destination}}


@dataclass(frozen=True)
class Route:
    """One central rule: its name (after the resource prefix), severity, outcome, shape, pattern and message."""

    name: str
    severity: Severity
    denied: bool
    shape: Shape
    pattern: dict[str, Any]
    message: messages.Message

    def to_json(self) -> str:
        return to_json(self.pattern)

    @property
    def sources(self) -> list[str]:
        return list(self.pattern.get("source", []))


def to_json(pattern: dict[str, Any]) -> str:
    return json.dumps(pattern, sort_keys=True, separators=(",", ":"))


# --- the call part of each branch: which names of which eventSource, at which tier -------------------------

ORGANIZATIONS = "organizations.amazonaws.com"


def _conditional(entries: list[Entry]) -> tuple[str, tuple[Entry, ...]]:
    conditional = tuple(e for e in entries if e.condition is not None)
    fields = {e.condition.field for e in conditional if e.condition is not None}
    presence = [e for e in conditional if e.condition is not None and not e.condition.values]
    if len(fields) > 1 or (presence and len(conditional) > 1):
        raise ValueError(f"conditions of {entries[0].names} must be on one field, and only one presence condition")
    return (fields.pop() if fields else ""), conditional


def _name_cases(service: Service, name: str, denied: bool, params: bool) -> list[tuple[Severity, dict[str, Any]]]:
    """(tier, extra detail fields) for every case of one explicitly tiered name; the cases exclude each other.
    With null request parameters (`params` false) no condition on a parameter can hold: one case."""
    entries = [e for e in TABLE if e.event_source == service.event_source and name in e.names]
    field, conditional = _conditional(entries)
    plain = [e for e in entries if e.condition is None]
    otherwise = plain[0].tier_for(denied) if plain else Severity.INFO
    if not conditional or not params:
        return [(otherwise, {})]
    cases: list[tuple[Severity, dict[str, Any]]] = []
    values: list[str] = []
    for entry in conditional:
        assert entry.condition is not None
        cases.append((entry.tier_for(denied), {"requestParameters": {field: entry.condition.pattern()}}))
        values += entry.condition.values
    complement: list[Any] = [{"exists": False}]
    if values:
        # A string parameter is either one of the values or not; absent is the rest.
        complement.insert(0, {"anything-but": sorted(values)})
    cases.append((otherwise, {"requestParameters": {field: complement}}))
    return cases


def explicit_names(service: Service) -> list[str]:
    return sorted({name for e in TABLE if e.event_source == service.event_source for name in e.names})


def _calls(service: Service, tier: Severity, denied: bool, params: bool, carve: Carve | None) -> list[dict[str, Any]]:
    """Detail fields of the calls of one service that are `tier` (for the outcome); grouped by identical case."""
    grouped: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for name in explicit_names(service):
        for case_tier, extra in _name_cases(service, name, denied, params):
            if case_tier == tier:
                grouped.setdefault(to_json(extra), (extra, []))[1].append(name)
    calls = [{"eventName": sorted(names), **extra} for extra, names in grouped.values()]
    if tier == Severity.INFO:
        calls += _unlisted(service, explicit_names(service), params, carve)
    return sorted(calls, key=to_json)


def _unlisted(service: Service, listed: list[str], params: bool, carve: Carve | None) -> list[dict[str, Any]]:
    """The calls of `service` not named in `listed` (less what the carve gives another rule)."""
    if carve is None or service.event_source != ORGANIZATIONS:
        return [{"eventName": [{"anything-but": listed}]}] if listed else [{}]
    if set(listed) & set(carve.carved_names()):
        raise ValueError(f"the severity table names {sorted(set(listed) & set(carve.carved_names()))}, "
                         "which the account-change rule alerts on")  # fmt: skip
    elsewhere = carve.elsewhere(params)
    return [{"eventName": [{"anything-but": sorted({*listed, *carve.carved_names()})}]},
            *([elsewhere] if elsewhere else [])]  # fmt: skip


# --- branches and routes --------------------------------------------------------------------------------

NOT_ROOT: list[Any] = [{"anything-but": ["Root"]}, {"exists": False}]
# `detail.requestParameters` of each shape: null, or not null (an object is an intermediate node, so `exists:
# false` holds for it, as for an absent field; eb-create-pattern-operators.html, "Exists matching").
PARAMS_NULL: list[Any] = [None]
PARAMS_NOT_NULL: list[Any] = [{"exists": False}]


def _branch(
    service: Service, call: dict[str, Any], *, root: bool, shape: Shape, skip_role_prefix: str
) -> dict[str, Any]:
    """One `$or` branch (fields under `detail`): the calls, the caller, the principal-ARN shape."""
    branch: dict[str, Any] = {"eventSource": [service.event_source], **json.loads(json.dumps(call))}
    branch["userIdentity"] = {"type": ["Root"] if root else list(NOT_ROOT), "arn": [{"exists": shape.arn}]}
    if skip_role_prefix and service.source == "aws.iam" and shape.params:
        # Calls on orgalerts' own roles are the tamper rule's (one alert each, as TAMPER). With null request
        # parameters there is no role name: nothing to skip.
        branch.setdefault("requestParameters", {})["roleName"] = [
            {"anything-but": {"prefix": skip_role_prefix}},
            {"exists": False},
        ]
    return branch


def services_for(sources: Iterable[str]) -> list[Service]:
    wanted = set(sources)
    unknown = wanted - set(CONFIG_SOURCES)
    if unknown:
        raise ValueError(f"unknown alert sources {sorted(unknown)}")
    return [s for s in SERVICES if s.config_source in wanted]


def _split(branch: dict[str, Any]) -> list[dict[str, Any]]:
    """One branch testing fields under requestParameters as two disjoint branches (its first field's first
    alternative, and the others; else its names), so the request-parameters shape can sit beside a `$or`."""
    params = branch["requestParameters"]
    for field, alternatives in sorted(params.items()):
        if len(alternatives) > 1:
            return [{**branch, "requestParameters": {**params, field: part}}
                    for part in (alternatives[:1], alternatives[1:])]  # fmt: skip
    names = branch.get("eventName", [])
    if len(names) > 1 and all(isinstance(n, str) for n in names):
        return [{**branch, "eventName": names[:1]}, {**branch, "eventName": names[1:]}]
    raise ValueError(f"cannot split branch {to_json(branch)}")


def _pattern(branches: list[dict[str, Any]], denied: bool, shape: Shape) -> dict[str, Any]:
    """Branches -> one pattern: the outcome and request-parameters shape are common to every branch."""
    by_source = {SERVICE_BY_EVENT_SOURCE[b["eventSource"][0]].source for b in branches}
    detail: dict[str, Any] = {
        "errorCode": [{"exists": denied}],
        "requestParameters": list(PARAMS_NOT_NULL if shape.params else PARAMS_NULL),
    }
    identities = {to_json(b["userIdentity"]) for b in branches}
    if len(identities) == 1:  # the same caller condition in every branch: said once, beside the `$or`
        detail["userIdentity"] = branches[0]["userIdentity"]
        branches = [{k: v for k, v in b.items() if k != "userIdentity"} for b in branches]
    if len(branches) == 1 and "requestParameters" in branches[0]:
        branches = _split(branches[0])
    if len(branches) == 1:
        detail.update(branches[0])
    else:
        detail["$or"] = branches
    return {"source": sorted(by_source), "detail": detail}


def _pack(branches: list[dict[str, Any]], denied: bool, shape: Shape) -> list[dict[str, Any]]:
    """Branches -> as few patterns as fit EventBridge's size limit, in order (stable names across runs)."""
    chunks: list[list[dict[str, Any]]] = []
    for branch in branches:
        if chunks and len(to_json(_pattern([*chunks[-1], branch], denied, shape))) <= MAX_PATTERN_CHARS:
            chunks[-1].append(branch)
        else:
            chunks.append([branch])
    return [_pattern(chunk, denied, shape) for chunk in chunks]


def _root_calls(service: Service, params: bool, carve: Carve | None) -> list[dict[str, Any]]:
    """Every call of `service` by the root user, less what the carve gives another rule."""
    return _unlisted(service, [], params, carve) if carve and service.event_source == ORGANIZATIONS else [{}]


def _tier_branches(
    services: list[Service], tier: Severity, denied: bool, shape: Shape, skip: str, carve: Carve | None
) -> list[dict[str, Any]]:
    branches = []
    if tier == Severity.CRITICAL:  # any call by the root user, failed or not
        for s in services:
            branches += [_branch(s, call, root=True, shape=shape, skip_role_prefix=skip)
                         for call in _root_calls(s, shape.params, carve)]  # fmt: skip
    for service in services:
        for call in _calls(service, tier, denied, shape.params, carve):
            branches.append(_branch(service, call, root=False, shape=shape, skip_role_prefix=skip))
    return branches


def routes(
    sources: Iterable[str] = DEFAULT_SOURCES, *, skip_role_prefix: str = "", carve: Carve | None = None
) -> list[Route]:
    """Every central alert route for the configured sources, in a stable order. Built once per set of inputs
    (every central read, plan and message check asks; ~30 ms each), handed out as a copy: patterns are dicts."""
    return copy.deepcopy(_routes(tuple(sources), skip_role_prefix, carve))


@functools.lru_cache(maxsize=32)
def _routes(sources: tuple[str, ...], skip_role_prefix: str, carve: Carve | None) -> list[Route]:
    services = services_for(sources)
    out: list[Route] = []
    for tier in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.INFO):
        for denied in (False, True):
            for shape in SHAPES:
                branches = _tier_branches(services, tier, denied, shape, skip_role_prefix, carve)
                patterns = _pack(branches, denied, shape)
                base = f"{ROUTE_PREFIX}-{tier.value}{'-denied' if denied else ''}{shape.suffix}"
                message = messages.alert_message(tier, denied=denied, principal=shape.arn, params=shape.params)
                for index, pattern in enumerate(patterns, start=1):
                    name = f"{base}-{index}" if len(patterns) > 1 else base
                    out.append(Route(name, tier, denied, shape, pattern, message))
    return out


def is_route_name(name: str, prefix: str) -> bool:
    """Whether a rule name on the central bus is (or was) an alert route of orgalerts: `<prefix>alert` (the single
    rule before tiers) or `<prefix>alert-...`."""
    base = f"{prefix}{ROUTE_PREFIX}"
    return name == base or name.startswith(f"{base}-")
