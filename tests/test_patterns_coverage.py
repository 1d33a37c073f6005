"""Coverage of the alert patterns, derived from botocore's IAM service model.

A new botocore release that adds an IAM API cannot silently open a hole: the mutating operations are
read from the installed model, not from a list kept by hand.
"""

from __future__ import annotations

import json

import botocore.session
import pytest
from moto.events.models import EventPattern

from orgalerts.model.patterns import (
    BLOG_AUTH_CHANGE_PREFIXES,
    BLOG_IAM_CHANGE_PREFIXES,
    PATTERNS,
    READ_ONLY_PREFIXES,
    STATE_ALL_MANAGEMENT_EVENTS,
)


def _iam_operations() -> list[str]:
    model = botocore.session.get_session().get_service_model("iam")
    return sorted(model.operation_names)


OPERATIONS = _iam_operations()
MUTATING = [op for op in OPERATIONS if not op.startswith(READ_ONLY_PREFIXES)]
READ_ONLY = [op for op in OPERATIONS if op.startswith(READ_ONLY_PREFIXES)]


def _event(operation: str) -> dict[str, object]:
    # CloudTrail marks Get/List/Generate/Simulate calls readOnly=true and every other call false.
    return {
        "source": "aws.iam",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {"eventSource": "iam.amazonaws.com", "eventName": operation, "readOnly": operation in READ_ONLY},
    }


def _matches(pattern_name: str, operation: str) -> bool:
    return bool(EventPattern.load(PATTERNS[pattern_name].to_json()).matches_event(_event(operation)))


def test_coverage__iam_changes__matches_every_mutating_operation_in_the_model() -> None:
    assert len(MUTATING) >= 100  # the model really was read (109 on botocore 1.44, 2026-11)
    missed = [op for op in MUTATING if not _matches("iam-changes", op)]
    assert missed == []


def test_coverage__iam_changes__matches_no_read_only_operation() -> None:
    assert READ_ONLY
    assert [op for op in READ_ONLY if _matches("iam-changes", op)] == []


def test_coverage__blog_pattern__misses_what_the_design_notes_say() -> None:
    missed = [op for op in MUTATING if not _matches("blog-iam-changes", op)]
    assert "TagRole" in missed and "UntagUser" in missed and "ResyncMFADevice" in missed
    assert all(not op.startswith(BLOG_IAM_CHANGE_PREFIXES) for op in missed)
    assert len(missed) == len(MUTATING) - sum(op.startswith(BLOG_IAM_CHANGE_PREFIXES) for op in MUTATING)


def test_coverage__auth_changes__matches_exactly_its_documented_prefixes() -> None:
    documented = (*BLOG_AUTH_CHANGE_PREFIXES, "Tag", "Untag")
    for op in OPERATIONS:
        assert _matches("auth-changes", op) == (op in MUTATING and op.startswith(documented)), op


def test_coverage__all_iam__matches_read_only_calls_and_needs_the_all_events_state() -> None:
    assert all(_matches("all-iam", op) for op in OPERATIONS)
    assert PATTERNS["all-iam"].state == STATE_ALL_MANAGEMENT_EVENTS


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_patterns__fit_eventbridge_limits(name: str) -> None:
    text = PATTERNS[name].to_json()
    assert len(text) <= 2048
    assert json.loads(text)["source"] == ["aws.iam"]


def test_patterns__other_sources_never_match() -> None:
    event = _event("CreateUser")
    event["source"] = "aws.ec2"
    assert not EventPattern.load(PATTERNS["iam-changes"].to_json()).matches_event(event)
