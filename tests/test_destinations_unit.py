"""Destinations without AWS: config validation (exit-2 errors naming the key) and payloads that parse as JSON
in each service's format, also when event values hold quotes and backslashes."""

from __future__ import annotations

import json

import pytest

from orgalerts.config import destination_secrets, parse_config
from orgalerts.errors import ConfigError
from orgalerts.model import messages, payloads

BASE = """\
organization: {ous: [ou-ab12-cd34ef56]}
notification: {account_id: "222222222222"}
"""
ISSUE = (
    BASE
    + """destinations:
  - {name: secops-mail, type: email, emails: [secops@example.com], min_severity: info}
  - {name: chat, type: slack, url_env: ORGALERTS_SLACK_URL, min_severity: high}
  - {name: oncall, type: pagerduty, routing_key_env: ORGALERTS_PD_KEY, min_severity: critical}
  - {name: hook, type: webhook, url_env: ORGALERTS_HOOK_URL, header_name: X-Api-Key,
     header_value_env: ORGALERTS_HOOK_KEY, min_severity: medium}
"""
)


def test_config__issue_example__four_destinations_and_the_mail_on_the_alert_topic() -> None:
    config = parse_config(ISSUE, "c.yaml")
    assert [(d.name, d.type, d.min_severity) for d in config.destinations] == [
        ("secops-mail", "email", "info"), ("chat", "slack", "high"), ("oncall", "pagerduty", "critical"),
        ("hook", "webhook", "medium"),
    ]  # fmt: skip
    assert config.notification.emails == ("secops@example.com",)
    assert [d.name for d in config.http_destinations] == ["chat", "oncall", "hook"]


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("{name: x, type: sms, url_env: A}", "destinations[0].type"),
        ("{name: x, type: slack, url_env: A, min_severity: urgent}", "destinations[0].min_severity"),
        ("{name: Bad_Name, type: slack, url_env: A}", "destinations[0].name"),
        ("{name: x, type: slack}", "destinations[0].url_env"),
        ("{name: x, type: slack, url_env: 'not a var'}", "destinations[0].url_env"),
        ("{name: x, type: webhook, url_env: A, header_name: X-Key}", "destinations[0].header_name"),
        ("{name: x, type: email, emails: [a@example.com], min_severity: high}", "destinations[0].min_severity"),
        ("{name: x, type: slack, url_env: A, secret: s}", "destinations[0].secret"),
    ],
)
def test_config__bad_destination__one_line_naming_the_key(entry: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + f"destinations:\n  - {entry}\n", "c.yaml")
    assert err.value.key == key and "\n" not in str(err.value)


def test_config__duplicate_names_and_five_destinations__refused() -> None:
    dup = BASE + "destinations:\n  - {name: a, type: slack, url_env: A}\n  - {name: a, type: teams, url_env: B}\n"
    with pytest.raises(ConfigError, match="unique"):
        parse_config(dup, "c.yaml")
    five = BASE + "destinations:\n" + "".join(f"  - {{name: d{i}, type: slack, url_env: A}}\n" for i in range(5))
    with pytest.raises(ConfigError, match="at most 5 targets"):
        parse_config(five, "c.yaml")


def test_config__no_destinations__notification_emails_still_required() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE, "c.yaml")
    assert err.value.key == "notification.emails"


def test_secrets__unset_variable__names_destination_and_variable_never_a_value() -> None:
    config = parse_config(ISSUE, "c.yaml")
    env = {"ORGALERTS_SLACK_URL": "https://hooks.slack.com/x", "ORGALERTS_PD_KEY": "k", "ORGALERTS_HOOK_URL": "u"}
    with pytest.raises(ConfigError) as err:
        destination_secrets(config, env)
    assert err.value.key == "destinations[3].header_value_env" and "ORGALERTS_HOOK_KEY" in str(err.value)
    assert "hooks.slack.com" not in str(err.value)


def _event() -> dict[str, object]:
    detail = {
        "eventName": "AttachUserPolicy", "eventTime": "2026-01-01T00:00:00Z", "awsRegion": "us-east-1",
        "eventSource": "iam.amazonaws.com", "eventID": "e-1", "sourceIPAddress": "203.0.113.9",
        "userAgent": 'curl "quoted" \\ back', "errorMessage": 'say "no"',
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
        "requestParameters": {"policyDocument": '{"Statement": "x\\\\y"}', "userName": "bob"},
    }  # fmt: skip
    return {"account": "111122223333", "detail": detail}


@pytest.mark.parametrize("kind", payloads.HTTP_TYPES)
def test_payloads__rendered_with_quotes_in_the_event__parse_as_the_service_format(kind: str) -> None:
    message = messages.alert_message("high", denied=False, principal=True, params=True)  # the high route's text
    body = json.loads(messages.render(_event(), payloads.transformer(kind, message, "high")))
    if kind == "slack":
        assert body["text"].startswith("*HIGH* [orgalerts] HIGH in account 111122223333: AttachUserPolicy by ")
    elif kind == "teams":
        card = body["attachments"][0]
        assert body["type"] == "message" and card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["text"].startswith("HIGH:")
    elif kind == "pagerduty":
        assert body["event_action"] == "trigger" and body["payload"]["severity"] == "error"
        assert "routing_key" not in body and body["links"][0]["href"].endswith("#/events/e-1")
    else:
        assert (body["severity"], body["account"], body["action"], body["event_id"]) == (
            "high", "111122223333", "AttachUserPolicy", "e-1")  # fmt: skip
    text = json.dumps(body)
    assert 'say "no"' not in text and "curl" not in text and "policyDocument" not in text  # unsafe values left out


def test_payloads__pagerduty_severity_mapping() -> None:
    assert {k.value: v for k, v in payloads.PAGERDUTY_SEVERITY.items()} == {
        "critical": "critical", "high": "error", "medium": "warning", "info": "info"}  # fmt: skip
