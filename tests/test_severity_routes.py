"""Severity tiers: every event lands on exactly one central route, at the tier the classification table gives,
with a message free of template debris. Derived from botocore's IAM model, so a new IAM API is covered the day
botocore knows it."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern

from orgalerts.model import matching, messages, patterns, routes
from orgalerts.model.patterns import READ_ONLY_PREFIXES
from orgalerts.model.severity import (
    ADMIN_POLICY_ARNS,
    QUARANTINE_POLICY_ARNS,
    SERVICES,
    TABLE,
    Severity,
    classify,
)
from orgalerts.sandbox import fidelity

PREFIX = "orgalerts-"
ALL_SOURCES = ("iam", "organizations", "identity-center", "root-activity", "sts")
ROUTES = routes.routes(skip_role_prefix=PREFIX)
ALL_ROUTES = routes.routes(ALL_SOURCES, skip_role_prefix=PREFIX)
IAM_MUTATING = [
    op
    for op in sorted(botocore.session.get_session().get_service_model("iam").operation_names)
    if not op.startswith(READ_ONLY_PREFIXES)
]


_ABSENT: Any = object()


def _event(name: str, *, source: str = "iam.amazonaws.com", caller: str = "user", error: bool = False,
           params: Any = None, arn: bool = True, event_id: bool = True) -> dict[str, Any]:  # fmt: skip
    identity: dict[str, Any] = {
        "user": {"type": "IAMUser", "arn": "arn:aws:iam::333333333301:user/alice", "accountId": "333333333301"},
        "root": {"type": "Root", "arn": "arn:aws:iam::333333333301:root", "accountId": "333333333301"},
        "service": {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"},
    }[caller]
    if not arn:
        identity.pop("arn", None)
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": "2026-01-02T03:04:05Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "requestParameters": params,
        "responseElements": None,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": "333333333301",
    }
    if params is _ABSENT:
        del detail["requestParameters"]
    if event_id:
        detail["eventID"] = "0f6e1b2a-1111-2222-3333-444455556666"
    if error:
        detail["errorCode"] = "AccessDenied"
        detail["errorMessage"] = "User is not authorized to perform this action"
    service = next(s for s in SERVICES if s.event_source == source)
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": service.source,
        "account": "333333333301",
        "time": "2026-01-02T03:04:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def _hits(event: dict[str, Any], table: list[routes.Route] = ROUTES) -> list[routes.Route]:
    return [r for r in table if matching.matches(r.pattern, event)]


def _one_route(event: dict[str, Any], table: list[routes.Route] = ROUTES) -> routes.Route:
    hits = _hits(event, table)
    assert len(hits) == 1, (event["detail"]["eventName"], [r.name for r in hits])
    return hits[0]


def test_iam_model__read__has_every_mutating_operation() -> None:
    assert len(IAM_MUTATING) >= 100


PARAMS = {"userName": "bob", "roleName": "app", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}


@pytest.mark.parametrize(
    "kind", ["success", "denied", "root", "root-denied", "service", "null-params", "no-params-field", "empty-params"]
)
def test_every_mutating_iam_operation__exactly_one_route__at_its_tier__clean_message(kind: str) -> None:
    params = {"null-params": None, "no-params-field": _ABSENT, "empty-params": {}}.get(kind, PARAMS)
    for op in IAM_MUTATING:
        event = _event(
            op,
            caller={"root": "root", "root-denied": "root", "service": "service"}.get(kind, "user"),
            error=kind in ("denied", "root-denied"),
            params=params,
        )
        route = _one_route(event)
        assert route.severity == classify(event["detail"]), op
        assert route.denied == (kind in ("denied", "root-denied")), op
        text = messages.render(event, route.message.email_transformer())
        assert messages.message_problems(text) == [], (op, text)
        first = text.splitlines()[0]
        assert route.severity.value.upper() in first and "333333333301" in first and op in first
        assert ("FAILED attempt" in first) == route.denied
        if kind.startswith("root"):
            assert route.severity == Severity.CRITICAL
        # Which user, role or policy: the request parameters, without their quotes, when the record has them.
        assert ("{userName:bob,roleName:app,policyArn:arn:aws:iam::aws:policy/ReadOnlyAccess}" in text) == (
            params is PARAMS
        ), (op, text)
        assert route.shape.params == (params is not None), op


def test_tiers__the_issue_s_examples() -> None:
    admin = {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}
    quarantine = {"userName": "bob", "policyArn": QUARANTINE_POLICY_ARNS[0]}
    assert _one_route(_event("CreateAccessKey", caller="root")).severity == Severity.CRITICAL
    assert _one_route(_event("CreateAccessKey", caller="root", error=True)).severity == Severity.CRITICAL
    assert _one_route(_event("AttachUserPolicy", params=admin)).severity == Severity.HIGH
    assert _one_route(_event("AttachUserPolicy", params=admin, error=True)).severity == Severity.MEDIUM
    assert _one_route(_event("AttachUserPolicy", params=quarantine)).severity == Severity.CRITICAL
    assert (
        _one_route(_event("AttachUserPolicy", params={"userName": "b", "policyArn": "x"})).severity == Severity.MEDIUM
    )
    assert _one_route(_event("CreateAccessKey", params={"userName": "bob"})).severity == Severity.HIGH
    assert _one_route(_event("CreateAccessKey", params=None)).severity == Severity.MEDIUM
    assert _one_route(_event("CreateGroup", params={"groupName": "g"})).severity == Severity.INFO
    assert _one_route(_event("CreateGroup", error=True)).severity == Severity.INFO
    assert _one_route(_event("UpdateAssumeRolePolicy", params={"roleName": "app"})).severity == Severity.HIGH
    leave = _event("LeaveOrganization", source="organizations.amazonaws.com", error=True)
    assert _one_route(leave, ALL_ROUTES).severity == Severity.CRITICAL
    assert _one_route(_event("AssumeRoot", source="sts.amazonaws.com"), ALL_ROUTES).severity == Severity.CRITICAL
    assert (
        _one_route(_event("AssumeRoot", source="sts.amazonaws.com", error=True), ALL_ROUTES).severity == Severity.HIGH
    )


def test_table__every_entry_of_every_source__one_route_at_its_tier() -> None:
    for entry in TABLE:
        for name in entry.names:
            params: dict[str, Any] = {"groupName": "g"}  # meets no condition of the table
            if entry.condition:
                params[entry.condition.field] = (entry.condition.values or ("bob",))[0]
            for error in (False, True):
                event = _event(name, source=entry.event_source, error=error, params=params)
                route = _one_route(event, ALL_ROUTES)
                assert route.severity == classify(event["detail"]) == entry.tier_for(error), (name, error)


def test_tamper__calls_on_orgalerts_roles__no_alert_route() -> None:
    for op in ("PutRolePolicy", "AttachRolePolicy", "UpdateAssumeRolePolicy", "DeleteRole"):
        event = _event(op, params={"roleName": "orgalerts-forwarder", "policyArn": ADMIN_POLICY_ARNS[2]})
        assert _hits(event) == []
    without_tamper = routes.routes()
    assert len(_hits(_event("DeleteRole", params={"roleName": "orgalerts-forwarder"}), without_tamper)) == 1


def test_routes__fit_eventbridge_limits__names_fit_with_the_longest_prefix() -> None:
    for route in ALL_ROUTES:
        assert len(route.to_json()) <= routes.MAX_PATTERN_CHARS, route.name
        assert len("p" * 30 + route.name) <= routes.MAX_RULE_NAME, route.name
        assert messages.template_problems(route.message.email_transformer()) == []
    assert len({r.name for r in ALL_ROUTES}) == len(ALL_ROUTES)


def test_routes__sandbox_matcher_agrees_with_matching_on_a_sample() -> None:
    """moto's matcher, as the sandbox patches it to follow AWS (sandbox/fidelity.py), routes like matching.py,
    for every shape of request parameters: an object, null, none at all, an empty object."""
    fidelity.apply_aws_semantics()
    compiled = [(r, EventPattern.load(r.to_json())) for r in ROUTES]
    for op in IAM_MUTATING[::7]:
        for caller, error, params in itertools.product(
            ("user", "root", "service"), (False, True), ({"userName": "x"}, None, _ABSENT, {})
        ):
            event = _event(op, caller=caller, error=error, params=params)
            moto_hits = [r.name for r, p in compiled if p.matches_event(copy.deepcopy(event))]
            assert moto_hits == [r.name for r in _hits(event)], (op, caller, error, params)
            assert len(moto_hits) == 1


def test_matching__exists_false_holds_for_an_object__null_matches_null() -> None:
    """The documented semantics both matchers follow: exists works on leaf nodes only, `[null]` matches null."""
    fidelity.apply_aws_semantics()
    absent = {"detail": {"c-count": [{"exists": False}]}}
    for value, expected in (({"c1": 100}, True), ({}, True), (None, False), (5, False)):
        event = {"detail": {"c-count": value}}
        assert matching.matches(absent, event) is expected, value
        assert EventPattern.load(json.dumps(absent)).matches_event(event) is expected, value
    null = {"detail": {"c-count": [None]}}
    assert matching.matches(null, {"detail": {"c-count": None}})
    assert EventPattern.load(json.dumps(null)).matches_event({"detail": {"c-count": None}})
    assert not matching.matches(null, {"detail": {"c-count": {"c1": 1}}})
    assert not matching.matches(null, {"detail": {}})


_names = st.sampled_from([*IAM_MUTATING, "GetUser", "LeaveOrganization", "AssumeRoot", "CreatePermissionSet"])
_values = st.one_of(st.none(), st.sampled_from([*ADMIN_POLICY_ARNS, *QUARANTINE_POLICY_ARNS, "x", ""]))


@settings(max_examples=300, deadline=None)
@given(
    name=_names,
    source=st.sampled_from([s.event_source for s in SERVICES]),
    caller=st.sampled_from(["user", "root", "service"]),
    error=st.booleans(),
    arn=st.booleans(),
    event_id=st.booleans(),
    params=st.one_of(
        st.none(),
        st.just(_ABSENT),
        st.fixed_dictionaries(
            {},
            optional={"policyArn": _values, "userName": _values, "policyName": _values, "roleName": st.just("app")},
        ),
    ),
)
def test_property__no_event_matches_two_routes__and_each_classified_event_matches_one(
    name: str, source: str, caller: str, error: bool, arn: bool, event_id: bool, params: Any
) -> None:
    event = _event(name, source=source, caller=caller, error=error, params=params, arn=arn, event_id=event_id)
    hits = _hits(event, ALL_ROUTES)
    assert len(hits) == 1, [r.name for r in hits]
    assert hits[0].severity == classify(event["detail"])
    # A record without an eventID (a hand-trimmed sample) still lands on exactly one route; only what its own
    # data explains (problems_of_the_record: the link without an id, its own nulls) may show.
    text = messages.render(event, hits[0].message.email_transformer())
    assert messages.unexplained_problems(text, event["detail"]) == [], messages.message_problems(text)


def test_message_problems__finds_the_debris_the_issue_lists() -> None:
    old = "\n".join(
        json.dumps(line)
        for line in [
            "Who:    arn:x (type AssumedRole; via role ; invoked by )",
            "        parameters: null",
            "Result: error   (empty means it succeeded)",
            "Event:  https://us-east-1.console.aws.amazon.com/cloudtrail/home?region=us-east-1#/events/",
            "Who:    ",
            "User: None",
        ]
    )
    found = "\n".join(messages.message_problems(old))
    for what in ("before punctuation", "null/None", "empty means", "without an event id", "label without a value"):
        assert what in found, what
    assert messages.message_problems('"[orgalerts] INFO in account 1: CreateGroup by arn:aws:iam::1:user/a"') == []


@pytest.mark.parametrize("whole", [False, True])
def test_carve__every_organizations_event__exactly_one_of_account_change_rule_and_routes(whole: bool) -> None:
    """With account changes on, the account-change rule and the routes never match the same event: a move into
    a target OU or a join is the account-change rule's, every other organizations event one route's."""
    targets = ("ou-ab12-target01", "ou-ab12-target02")
    table = routes.routes(ALL_SOURCES, skip_role_prefix=PREFIX, carve=routes.Carve(targets, whole))
    account_change = patterns.account_change_pattern(() if whole else targets, whole)
    names = ["MoveAccount", "AccountJoinedOrganization", "CreateAccountResult", "DetachPolicy", "CreateAccount"]
    destinations: list[Any] = [*targets, "ou-ab12-elsewhere", "r-ab12"]
    for name, caller, error, destination in itertools.product(names, ("user", "root"), (False, True), destinations):
        params = {"accountId": "444444444402", "destinationParentId": destination, "sourceParentId": "r-ab12"}
        for shaped in (params, None):
            event = _event(name, source="organizations.amazonaws.com", caller=caller, error=error, params=shaped)
            hits = [r.name for r in _hits(event, table)]
            taken = matching.matches(account_change, event)
            assert len(hits) + int(taken) == 1, (name, caller, error, destination, shaped, hits, taken)
            if name == "MoveAccount" and shaped is not None:
                assert taken == (whole or destination in targets)


def test_unexplained_problems__the_record_s_own_data_excused_template_debris_still_found() -> None:
    detail = {"requestParameters": {"policyDocument": '{\n    "Version": "2012-10-17"}', "userName": None}}
    text = "\n".join(
        json.dumps(line)
        for line in [
            "        " + messages.substitute(detail["requestParameters"], True),
            "Event:  https://us-east-1.console.aws.amazon.com/cloudtrail/home?region=us-east-1#/events/",
            "Who:    ",
        ]
    )
    assert len(messages.message_problems(text)) >= 3
    unexplained = messages.unexplained_problems(text, detail)
    assert unexplained and all(p.startswith("line 3: ") for p in unexplained), unexplained
    # With an eventID the link without one is the template's fault again.
    assert any("without an event id" in p for p in messages.unexplained_problems(text, {**detail, "eventID": "e-1"}))
