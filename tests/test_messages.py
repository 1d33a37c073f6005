"""The alert a recipient reads, rendered from real-shaped CloudTrail events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from orgalerts.model.messages import alert_input_transformer, render

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
    "iam user": (_base_event, ["CreateUser", "arn:aws:iam::123456789012:user/Alice", "IAMUser", "userName:Bob"]),
    "assumed role": (
        _assumed_role,
        ["AttachRolePolicy", "assumed-role/ci-deploy/gh-run-42", "role/ci-deploy", "AdministratorAccess"],
    ),
    "root": (_root, ["CreateAccessKey", "arn:aws:iam::123456789012:root", "Root", "AccessDenied", "denied by SCP"]),
    "aws service": (_aws_service, ["CreateServiceLinkedRole", "AWSService", "autoscaling.amazonaws.com"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_message__real_shaped_event__says_who_what_where_when_from(case: str) -> None:
    build, expected = CASES[case]
    event = build()
    text = render(event)
    first_line = text.splitlines()[0]
    assert first_line.startswith('"[orgalerts] IAM change in account 123456789012: ')
    assert event["detail"]["eventName"] in first_line
    for fragment in expected:
        assert fragment in text, fragment
    assert event["detail"]["eventTime"] in text
    assert f"#/events/{event['detail']['eventID']}" in text
    assert "<" not in text.replace("<br>", "")  # every placeholder was substituted


def test_message__transformer_fits_eventbridge_limits() -> None:
    transformer = alert_input_transformer()
    assert len(transformer["InputPathsMap"]) <= 100
    assert len(transformer["InputTemplate"]) <= 8192
    assert all(path.startswith("$.") for path in transformer["InputPathsMap"].values())
