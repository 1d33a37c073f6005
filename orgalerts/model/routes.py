"""The central alert routes: one EventBridge rule per (severity, outcome, message shape), disjoint by construction.

Owns: turning the classification table (severity.TABLE) into event patterns, one `Route` per central rule,
each with its severity and its message. Pure; no AWS calls.

Why disjoint by construction: EventBridge delivers an event to every rule that matches it and a pattern
cannot say "not matched by another rule", so one event must never match two routes. Every route's pattern
is a conjunction of choices made on separate fields, each split into cases that exclude each other and
together cover everything:
- caller: `userIdentity.type` is `Root` / anything but `Root` or absent;
- outcome: `errorCode` exists (a DENIED attempt) / does not;
- call: per eventSource, the names the table tiers explicitly / `anything-but` all of them (info); a name
  with a request-parameter condition is split into the condition and its complement (`anything-but` the
  values, or the parameter absent);
- message shape: `userIdentity.arn` and `eventID` each exists / does not, so every placeholder of a
  route's message is a field present in every event the route matches (EventBridge drops a missing path
  silently, which is where "via role ;" came from; see messages.substitute).
A route's pattern holds the outcome and eventID shape under `detail`, and the calls as one branch or a `$or`
of branches under `detail` (each branch: eventSource, names, request condition, caller type and principal-ARN
shape; branches never share a field with the fields beside the `$or`); a route is cut into several rules where
one would pass EventBridge's 2,048-character limit. Operators used: exact values, `anything-but` (list,
prefix), `exists`, `$or`; every one of them is documented for event buses in
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
and evaluated the same way by model/matching.py (replay) and moto's matcher (the sandbox).
"""

from __future__ import annotations

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
    """Which optional fields a route's events carry, so its message uses only those."""

    suffix: str
    arn: bool
    event_id: bool


SHAPES: tuple[Shape, ...] = (
    Shape("", True, True),
    Shape("-anon", False, True),
    Shape("-noid", True, False),
    Shape("-anon-noid", False, False),
)


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


def to_json(pattern: dict[str, Any]) -> str:
    return json.dumps(pattern, sort_keys=True, separators=(",", ":"))


# --- the call part of each branch: which names of which eventSource, at which tier -------------------------

Call = tuple[Service, dict[str, Any]]  # (service, detail fields selecting the calls)


def _conditional(entries: list[Entry]) -> tuple[str, tuple[Entry, ...]]:
    conditional = tuple(e for e in entries if e.condition is not None)
    fields = {e.condition.field for e in conditional if e.condition is not None}
    presence = [e for e in conditional if e.condition is not None and not e.condition.values]
    if len(fields) > 1 or (presence and len(conditional) > 1):
        raise ValueError(f"conditions of {entries[0].names} must be on one field, and only one presence condition")
    return (fields.pop() if fields else ""), conditional


def _name_cases(service: Service, name: str, denied: bool) -> list[tuple[Severity, dict[str, Any]]]:
    """(tier, extra detail fields) for every case of one explicitly tiered name; the cases exclude each other."""
    entries = [e for e in TABLE if e.event_source == service.event_source and name in e.names]
    field, conditional = _conditional(entries)
    plain = [e for e in entries if e.condition is None]
    otherwise = plain[0].tier_for(denied) if plain else Severity.INFO
    if not conditional:
        return [(otherwise, {})]
    cases: list[tuple[Severity, dict[str, Any]]] = []
    values: list[str] = []
    for entry in conditional:
        assert entry.condition is not None
        cases.append((entry.tier_for(denied), {"requestParameters": {field: entry.condition.pattern()}}))
        values += entry.condition.values
    complement: list[Any] = [{"exists": False}]
    if values:
        # A string parameter is either one of the values or not; absent (or null requestParameters) is the rest.
        complement.insert(0, {"anything-but": sorted(values)})
    cases.append((otherwise, {"requestParameters": {field: complement}}))
    return cases


def explicit_names(service: Service) -> list[str]:
    return sorted({name for e in TABLE if e.event_source == service.event_source for name in e.names})


def _calls(service: Service, tier: Severity, denied: bool) -> list[dict[str, Any]]:
    """Detail fields of the calls of one service that are `tier` (for the outcome); grouped by identical case."""
    grouped: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for name in explicit_names(service):
        for case_tier, extra in _name_cases(service, name, denied):
            if case_tier == tier:
                grouped.setdefault(to_json(extra), (extra, []))[1].append(name)
    calls = [{"eventName": sorted(names), **extra} for extra, names in grouped.values()]
    if tier == Severity.INFO:
        calls.append({"eventName": [{"anything-but": explicit_names(service)}]})
    return sorted(calls, key=to_json)


# --- branches and routes --------------------------------------------------------------------------------

NOT_ROOT: list[Any] = [{"anything-but": ["Root"]}, {"exists": False}]


def _branch(
    service: Service, call: dict[str, Any], *, root: bool, shape: Shape, skip_role_prefix: str
) -> dict[str, Any]:
    """One `$or` branch (fields under `detail`): the calls, the caller, the principal-ARN shape."""
    branch: dict[str, Any] = {"eventSource": [service.event_source], **json.loads(json.dumps(call))}
    branch["userIdentity"] = {"type": ["Root"] if root else list(NOT_ROOT), "arn": [{"exists": shape.arn}]}
    if skip_role_prefix and service.source == "aws.iam":
        # Calls on orgalerts' own roles are the tamper rule's (one alert each, as TAMPER).
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


def _pattern(branches: list[dict[str, Any]], denied: bool, shape: Shape) -> dict[str, Any]:
    """Branches -> one pattern: the outcome and eventID shape are common to every branch."""
    by_source = {SERVICE_BY_EVENT_SOURCE[b["eventSource"][0]].source for b in branches}
    detail: dict[str, Any] = {"errorCode": [{"exists": denied}], "eventID": [{"exists": shape.event_id}]}
    identities = {to_json(b["userIdentity"]) for b in branches}
    if len(identities) == 1:  # the same caller condition in every branch: said once, beside the `$or`
        detail["userIdentity"] = branches[0]["userIdentity"]
        branches = [{k: v for k, v in b.items() if k != "userIdentity"} for b in branches]
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


def _tier_branches(
    services: list[Service], tier: Severity, denied: bool, shape: Shape, skip: str
) -> list[dict[str, Any]]:
    branches = []
    if tier == Severity.CRITICAL:  # any call by the root user, failed or not
        branches += [_branch(s, {}, root=True, shape=shape, skip_role_prefix=skip) for s in services]
    for service in services:
        for call in _calls(service, tier, denied):
            branches.append(_branch(service, call, root=False, shape=shape, skip_role_prefix=skip))
    return branches


def routes(sources: Iterable[str] = DEFAULT_SOURCES, *, skip_role_prefix: str = "") -> list[Route]:
    """Every central alert route for the configured sources, in a stable order."""
    services = services_for(sources)
    out: list[Route] = []
    for tier in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.INFO):
        for denied in (False, True):
            for shape in SHAPES:
                patterns = _pack(_tier_branches(services, tier, denied, shape, skip_role_prefix), denied, shape)
                base = f"{ROUTE_PREFIX}-{tier.value}{'-denied' if denied else ''}{shape.suffix}"
                message = messages.alert_message(tier, denied=denied, principal=shape.arn, event_id=shape.event_id)
                for index, pattern in enumerate(patterns, start=1):
                    name = f"{base}-{index}" if len(patterns) > 1 else base
                    out.append(Route(name, tier, denied, shape, pattern, message))
    return out


def is_route_name(name: str, prefix: str) -> bool:
    """Whether a rule name on the central bus is (or was) an alert route of orgalerts: `<prefix>alert` (the single
    rule before tiers) or `<prefix>alert-...`."""
    base = f"{prefix}{ROUTE_PREFIX}"
    return name == base or name.startswith(f"{base}-")
