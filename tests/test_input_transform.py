"""Input transformer rendering against AWS's documented examples, for the product renderer
(messages.render, what `verify --show-message` shows) and the sandbox's EventBridge emulation alike.

Source: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
(examples table and "Common issues with transforming input"); the multi-line form is AWS CDK's
RuleTargetInput.fromMultilineText (its test: 'I have\\nmultiple lines' -> '"I have"\\n"multiple lines"').
"""

from __future__ import annotations

from typing import Any

import pytest

from orgalerts.model import messages
from orgalerts.sandbox.eventflow import json_path, render_input_template

EVENT: dict[str, Any] = {
    "time": "2015-11-11T21:29:54Z",
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "obj": {"key1": "value1"}, "q": 'say "hi"'},
}
PATHS = {
    "instance": "$.detail.instance-id",
    "state": "$.detail.state",
    "detail": "$.detail.obj",
    "gone": "$.detail.nothing",
    "q": "$.detail.q",
}

DOCUMENTED = [
    # simple string (examples table)
    ('"instance <instance> is in <state>"', '"instance i-0123456789 is in RUNNING"'),
    # an object referenced in a string loses its internal quotes
    ('"Detail is <detail>"', '"Detail is {key1:value1}"'),
    # a path missing from the event does not appear in the output
    ('"x<gone>y"', '"xy"'),
    # values are not escaped
    ('"<q>"', '"say "hi""'),
    # one JSON string literal per line, as fromMultilineText writes; text between stays as it is
    ('"a <instance>"\n""\n"b <detail>"', '"a i-0123456789"\n""\n"b {key1:value1}"'),
    # undefined names stay
    ('"<undefined>"', '"<undefined>"'),
]


@pytest.mark.parametrize(("template", "expected"), DOCUMENTED)
def test_product_renderer__documented_examples(template: str, expected: str) -> None:
    assert messages.render(EVENT, {"InputPathsMap": PATHS, "InputTemplate": template}) == expected


@pytest.mark.parametrize(("template", "expected"), DOCUMENTED)
def test_sandbox_renderer__documented_examples(template: str, expected: str) -> None:
    values = {name: json_path(EVENT, path) for name, path in PATHS.items()}
    assert render_input_template(template, values) == expected


def test_templates__cdk_multiline_form_and_within_limits() -> None:
    assert messages._multiline(["I have", "multiple lines"]) == '"I have"\n"multiple lines"'
    for transformer in (
        messages.alert_input_transformer(),
        messages.tamper_input_transformer(),
        messages.account_change_input_transformer(),
    ):
        lines = transformer["InputTemplate"].split("\n")
        assert all(line.startswith('"') and line.endswith('"') for line in lines)
        assert messages.template_problems(transformer) == []
    big = {"InputPathsMap": {f"v{n}": "$.a" for n in range(101)}, "InputTemplate": "x" * 8193}
    assert len(messages.template_problems(big)) == 2


def test_account_change_message__account_joined_organization__names_the_account() -> None:
    event = {
        "account": "111111111111",
        "detail": {
            "eventName": "AccountJoinedOrganization",
            "eventSource": "organizations.amazonaws.com",
            "recipientAccountId": "111111111111",
            "serviceEventDetails": {"accountId": "444455556666", "joinedMethod": "INVITED"},
            "eventTime": "2026-01-01T00:00:00Z",
        },
    }
    text = messages.render(event, messages.account_change_input_transformer())
    assert text.splitlines()[0] == (
        '"[orgalerts] ACCOUNT NOT COVERED YET: account 444455556666 joined the organization or a target OU '
        '(AccountJoinedOrganization)"'
    )
    assert "orgalerts onboard 444455556666" in text
