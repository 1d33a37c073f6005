"""The alert a recipient reads, rendered from real-shaped CloudTrail events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from orgalerts.model import patterns, routes
from orgalerts.model.matching import matches
from orgalerts.model.messages import alert_input_transformer, message_problems, render, tamper_input_transformer

FIXTURE_PATHS = [
    Path(__file__).parent / "fixtures" / "cloudtrail-iam-createuser.json",
    Path(__file__).parent.parent.parent / "shared" / "fixtures" / "cloudtrail-iam-createuser.json",
]


def _base_event() -> dict[str, Any]:
    for path in FIXTURE_PATHS:
        if path.exists():
            return dict(json.loads(path.read_text()))
    raise FileNotFoundError(FIXTURE_PATHS[0])


def _assumed_role() -> dict[str, Any]:
    event = copy.deepcopy(_base_event())
    event["detail"]["eventName"] = "AttachRolePolicy"
    event["detail"]["requestParameters"] = {
        "roleName": "app",
        "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
    }
    event["detail"]["userIdentity"] = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123456789012:assumed-role/ci-deploy/gh-run-42",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/ci-deploy"}},
    }
    return event


def _root() -> dict[str, Any]:
    event = copy.deepcopy(_base_event())
    event["detail"]["eventName"] = "CreateAccessKey"
    event["detail"]["userIdentity"] = {"type": "Root", "arn": "arn:aws:iam::123456789012:root"}
    event["detail"]["errorCode"] = "AccessDenied"
    event["detail"]["errorMessage"] = "denied by SCP"
    return event


def _aws_service() -> dict[str, Any]:
    event = copy.deepcopy(_base_event())
    event["detail"]["eventName"] = "CreateServiceLinkedRole"
    event["detail"]["userIdentity"] = {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}
    event["detail"]["sourceIPAddress"] = "autoscaling.amazonaws.com"
    return event


CASES = {
    "iam user": (_base_event, ["CreateUser", "arn:aws:iam::123456789012:user/Alice", "INFO in account"]),
    "assumed role": (
        _assumed_role,
        ["AttachRolePolicy", "assumed-role/ci-deploy/gh-run-42", "HIGH in account"],  # AdministratorAccess
    ),
    "root": (
        _root,
        [
            "CreateAccessKey",
            "arn:aws:iam::123456789012:root",
            "CRITICAL FAILED attempt",
            "AccessDenied",
            "denied by SCP",
        ],
    ),
    "aws service": (_aws_service, ["CreateServiceLinkedRole", "without a principal ARN", "autoscaling.amazonaws.com"]),
}


def _route_text(event: dict[str, Any]) -> str:
    (route,) = [r for r in routes.routes(skip_role_prefix="orgalerts-") if matches(r.pattern, event)]
    return render(event, route.message.email_transformer())


@pytest.mark.parametrize("case", sorted(CASES))
def test_message__real_shaped_event__says_who_what_where_when_from(case: str) -> None:
    build, expected = CASES[case]
    event = build()
    text = _route_text(event)
    first_line = text.splitlines()[0]
    assert first_line.startswith('"[orgalerts] ')
    assert "in account 123456789012: " in first_line
    assert event["detail"]["eventName"] in first_line
    for fragment in expected:
        assert fragment in text, fragment
    assert event["time"] in text
    assert f"#/events/{event['detail']['eventID']}" in text
    assert message_problems(text) == []  # every placeholder substituted, no label without a value


def test_message__success_and_denied_read_differently() -> None:
    success = _route_text(_assumed_role())
    denied_event = _assumed_role()
    denied_event["detail"]["errorCode"] = "AccessDenied"
    denied = _route_text(denied_event)
    assert "FAILED" not in success.splitlines()[0]
    assert "FAILED attempt" in denied.splitlines()[0] and "failed with AccessDenied" in denied.splitlines()[0]
    assert "MEDIUM" in denied.splitlines()[0]  # one tier below the success's HIGH


def test_message__transformer_fits_eventbridge_limits() -> None:
    transformer = alert_input_transformer()
    assert len(transformer["InputPathsMap"]) <= 100
    assert len(transformer["InputTemplate"]) <= 8192
    assert all(path.startswith("$.") for path in transformer["InputPathsMap"].values())


def _tamper(arn: bool) -> dict[str, Any]:
    """A DisableRule on the member forwarding rule; without `arn`, by another account (type AWSAccount, no ARN)."""
    event = copy.deepcopy(_base_event())
    event["source"] = "aws.events"
    event["detail"].update(eventSource="events.amazonaws.com", eventName="DisableRule",
                           requestParameters={"name": "orgalerts-forward"})  # fmt: skip
    event["detail"]["userIdentity"] = (
        {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/mallory", "accountId": "123456789012"}
        if arn
        else {"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "444455556666"}
    )
    return event


@pytest.mark.parametrize("arn", [True, False])
def test_tamper__with_and_without_a_principal_arn__one_tamper_rule_each__clean_text_with_a_who_line(arn: bool) -> None:
    """A tamper call by a caller without an ARN (another account, an AWS service) lands on the anon tamper rule,
    whose text names no principal: no empty "Who" line, no dangling "by"."""
    event = _tamper(arn)
    tamper = patterns.central_tamper_pattern("orgalerts-")
    shaped = {shape: patterns.with_principal_shape(tamper, shape) for shape in (True, False)}
    assert [shape for shape, pattern in shaped.items() if matches(pattern, event)] == [arn]
    text = render(event, tamper_input_transformer(principal=arn))
    assert message_problems(text) == [], text
    (who,) = [line for line in text.splitlines() if line.startswith('"Who:')]
    assert ("user/mallory" in who) if arn else ("no principal ARN" in who)
    assert "{name:orgalerts-forward}" in text
    # The other shape's text over this event shows the debris the split exists for.
    if not arn:
        assert message_problems(render(event, tamper_input_transformer(principal=True)))
