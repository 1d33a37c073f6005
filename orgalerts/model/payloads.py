"""What chat, paging and webhook destinations receive, as EventBridge input transformers. Pure.

Owns: one InputTransformer per destination type (`transformer(kind, message, severity)`), built from the same
`messages.Message` (headline, lines, paths) the e-mail is built from, in the body each service documents:

- Slack incoming webhook: `{"text": ...}` (https://api.slack.com/messaging/webhooks; `text` is the one required
  field, shown as the message and in notifications);
- Teams workflow webhook ("Post to a channel when a webhook request is received"): a message with one Adaptive
  Card attachment (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/
  add-incoming-webhook, "Workflows": `{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {AdaptiveCard}}]}`);
- PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/): `event_action`
  `trigger`, `payload.summary` (at most 1,024 characters), `payload.severity` one of critical / error / warning /
  info, `payload.source`, `links`; `routing_key` is NOT in the template: the connection adds it as a secret body
  parameter (see `sides/destinations.py`), so the key never appears in a rule target;
- webhook: one JSON object with severity, account, action, principal, time, event id, link and text.

Why only some placeholders go into these bodies: EventBridge does not escape a value it places inside a JSON
string ("EventBridge doesn't escape values extracted by Input Path",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html#eb-transform-input-issues):
a quote or a backslash in a value (request parameters holding a policy document, an error message, a user
agent) would break the JSON the service parses. Lines of the message holding any placeholder outside
`JSON_SAFE_PATHS` (values AWS formats itself: ids, ARNs, names, times, regions, error codes) are therefore left
out of these bodies; the e-mail keeps them (plain text cannot break).
"""

from __future__ import annotations

import json
import re
from typing import Any

from orgalerts.model.messages import Message
from orgalerts.model.severity import Severity

# Event paths whose values AWS formats without quotes, backslashes or control characters.
JSON_SAFE_PATHS: frozenset[str] = frozenset(
    {
        "$.account",
        "$.region",
        "$.time",
        "$.id",
        "$.detail.eventTime",
        "$.detail.awsRegion",
        "$.detail.eventName",
        "$.detail.eventSource",
        "$.detail.eventID",
        "$.detail.recipientAccountId",
        "$.detail.userIdentity.arn",
        "$.detail.userIdentity.type",
        "$.detail.userIdentity.accountId",
        "$.detail.userIdentity.invokedBy",
        "$.detail.userIdentity.sessionContext.sessionIssuer.arn",
        "$.detail.sourceIPAddress",
        "$.detail.errorCode",
        "$.detail.requestParameters.accountId",
        "$.detail.requestParameters.destinationParentId",
        "$.detail.serviceEventDetails.accountId",
        "$.detail.serviceEventDetails.createAccountStatus.accountId",
    }
)

# Variables every payload uses besides the message's own (names chosen not to clash with messages.INPUT_PATHS
# values: the same name always means the same path).
PAYLOAD_PATHS: dict[str, str] = {
    "account": "$.account",
    "action": "$.detail.eventName",
    "principal": "$.detail.userIdentity.arn",
    # The envelope's time: ISO 8601 whatever text the record's eventTime holds (messages.INPUT_PATHS).
    "time": "$.time",
    "region": "$.detail.awsRegion",
    "eventId": "$.detail.eventID",
}
LINK = "https://<region>.console.aws.amazon.com/cloudtrail/home?region=<region>#/events/<eventId>"

# Our tiers -> PagerDuty's payload.severity ("critical, error, warning or info").
PAGERDUTY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.INFO: "info",
}
PAGERDUTY_ENDPOINT = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SUMMARY_MAX = 1024
HTTP_TYPES = ("slack", "teams", "pagerduty", "webhook")

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def safe_lines(message: Message) -> list[str]:
    """The headline and the lines whose placeholders are all JSON-safe (see the module docstring)."""
    paths = {**PAYLOAD_PATHS, **message.paths}

    def safe(line: str) -> bool:
        return all(paths.get(name, "") in JSON_SAFE_PATHS for name in _PLACEHOLDER.findall(line))

    kept = [line for line in (message.headline, *message.lines) if safe(line)]
    # No blank runs at either end or twice in a row (a dropped line must not leave a gap).
    out: list[str] = []
    for line in kept:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


# A CloudTrail event's `time` (envelope, ISO 8601) and `detail.eventTime` are the same instant: a message may name
# either as <time> (route messages use the envelope, the account-change message the record) and the payload follows
# the message, so the e-mail and the payloads of one alert show the same text.
SAME_INSTANT: frozenset[str] = frozenset({"$.time", "$.detail.eventTime"})


def _paths(message: Message) -> dict[str, str]:
    merged = dict(PAYLOAD_PATHS)
    for name, path in message.paths.items():
        if name in merged and merged[name] != path and {merged[name], path} - SAME_INSTANT:
            raise ValueError(f"placeholder <{name}> means {path} in the message but {merged[name]} in payloads")
        merged[name] = path
    used = set(_PLACEHOLDER.findall(" ".join(safe_lines(message)) + LINK)) | set(PAYLOAD_PATHS)
    return {name: path for name, path in merged.items() if name in used}


def _template(body: dict[str, Any]) -> str:
    """The body as template text; placeholders stay inside JSON strings, where EventBridge puts values as they are.
    json.dumps escapes the literal text (quotes, newlines) and leaves `<name>` untouched."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _slack(message: Message, severity: Severity) -> dict[str, Any]:
    lines = safe_lines(message)
    return {"text": "\n".join([f"*{severity.value.upper()}* {lines[0]}", *lines[1:], f"CloudTrail: {LINK}"])}


def _teams(message: Message, severity: Severity) -> dict[str, Any]:
    lines = safe_lines(message)
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": f"{severity.value.upper()}: {lines[0]}", "weight": "Bolder", "wrap": True},
            *({"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines[1:] if line),
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in CloudTrail", "url": LINK}],
    }
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def _pagerduty(message: Message, severity: Severity) -> dict[str, Any]:
    lines = safe_lines(message)
    return {
        "event_action": "trigger",
        # One incident per CloudTrail event: a re-sent (redriven) alert joins it instead of paging again.
        "dedup_key": "orgalerts-<eventId>",
        "payload": {
            "summary": lines[0][:PAGERDUTY_SUMMARY_MAX],
            "severity": PAGERDUTY_SEVERITY[severity],
            "source": "aws account <account>",
            "component": "<action>",
            "group": "<account>",
            "class": "orgalerts",
            "custom_details": {"severity": severity.value, "principal": "<principal>", "text": "\n".join(lines)},
        },
        "links": [{"href": LINK, "text": "CloudTrail event"}],
        "client": "orgalerts",
    }


def _webhook(message: Message, severity: Severity) -> dict[str, Any]:
    return {
        "severity": severity.value,
        "account": "<account>",
        "action": "<action>",
        "principal": "<principal>",
        "time": "<time>",
        "event_id": "<eventId>",
        "region": "<region>",
        "link": LINK,
        "text": "\n".join(safe_lines(message)),
    }


_BUILDERS = {"slack": _slack, "teams": _teams, "pagerduty": _pagerduty, "webhook": _webhook}


def transformer(kind: str, message: Message, severity: Severity | str) -> dict[str, Any]:
    """The InputTransformer (InputPathsMap, InputTemplate) of a destination of type `kind` for one rule."""
    body = _BUILDERS[kind](message, Severity(severity))
    return {"InputPathsMap": _paths(message), "InputTemplate": _template(body)}


def message_from_transformer(transformer_: dict[str, Any]) -> Message:
    """A Message from an e-mail transformer written as one JSON string per line (messages._multiline): the
    first line is the headline, blank lines around it dropped. For rules whose message is still a template."""
    texts = [json.loads(line) for line in str(transformer_["InputTemplate"]).split("\n") if line.strip()]
    lines = texts[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return Message(dict(transformer_["InputPathsMap"]), texts[0], tuple(lines))
