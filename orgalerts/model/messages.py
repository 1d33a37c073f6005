"""The alert message recipients read, as an EventBridge input transformer.

Owns: the InputPathsMap and InputTemplate of the central rule's topic target, and `render()`, a local
rendering of the same template used by tests and by `verify` to show what a recipient reads.

Why at the central rule: EventBridge refuses Input/InputPath/InputTransformer on a cross-account
event-bus target, so the member rules forward raw events and the message is shaped here. EventBridge
cannot set the SNS subject, so the first line of the body carries the meaning.
"""

from __future__ import annotations

import json
import re
from typing import Any

# variable -> JSON path in the event (EventBridge allows up to 100)
INPUT_PATHS: dict[str, str] = {
    "account": "$.account",
    "time": "$.detail.eventTime",
    "region": "$.detail.awsRegion",
    "action": "$.detail.eventName",
    "service": "$.detail.eventSource",
    "principal": "$.detail.userIdentity.arn",
    "principalType": "$.detail.userIdentity.type",
    "sessionIssuer": "$.detail.userIdentity.sessionContext.sessionIssuer.arn",
    "invokedBy": "$.detail.userIdentity.invokedBy",
    "sourceIp": "$.detail.sourceIPAddress",
    "userAgent": "$.detail.userAgent",
    "errorCode": "$.detail.errorCode",
    "errorMessage": "$.detail.errorMessage",
    "parameters": "$.detail.requestParameters",
    "eventId": "$.detail.eventID",
}

# What every alert says about the call, whatever its headline.
_CALL_DETAILS = [
    "Who:    <principal> (type <principalType>; via role <sessionIssuer>; invoked by <invokedBy>)",
    "What:   <action> on <service>",
    "        parameters: <parameters>",
    "Where:  account <account>, region <region>",
    "When:   <time>",
    "From:   <sourceIp> (<userAgent>)",
    "Result: error <errorCode> <errorMessage> (empty means it succeeded)",
    "Event:  https://<region>.console.aws.amazon.com/cloudtrail/home?region=<region>#/events/<eventId>",
]

# Plain-text templates (not JSON): EventBridge substitutes <variables> and sends the text as is.
TEMPLATE = "\n".join(
    [
        "[orgalerts] IAM change in account <account>: <action>",
        "",
        *_CALL_DETAILS,
        "",
        "Sent by orgalerts. Changes made by orgalerts itself show a role session named 'orgalerts'.",
    ]
)

TAMPER_TEMPLATE = "\n".join(
    [
        "[orgalerts] TAMPER ALERT in account <account>: <action> changed orgalerts' own alerting",
        "",
        "Someone changed the path that carries IAM-change alerts (a forwarding rule, its role, the central",
        "bus, its policy, rules or topic) or CloudTrail logging. Alerts from this account may stop.",
        "",
        *_CALL_DETAILS,
        "",
        "If this was not orgalerts itself (role session 'orgalerts'), run `orgalerts drift --repair` and investigate.",
    ]
)

ACCOUNT_CHANGE_PATHS: dict[str, str] = {
    "action": "$.detail.eventName",
    "movedAccount": "$.detail.requestParameters.accountId",
    "destination": "$.detail.requestParameters.destinationParentId",
    "createdAccount": "$.detail.serviceEventDetails.createAccountStatus.accountId",
    "handshakeAccount": "$.detail.recipientAccountId",
    "principal": "$.detail.userIdentity.arn",
    "time": "$.detail.eventTime",
}

ACCOUNT_CHANGE_TEMPLATE = "\n".join(
    [
        "[orgalerts] ACCOUNT NOT COVERED YET: account <movedAccount><createdAccount> joined a target OU (<action>)",
        "",
        "Account <movedAccount><createdAccount> was moved into or created in <destination>, which orgalerts watches.",
        "Its IAM changes raise no alert until it is onboarded:",
        "    orgalerts onboard <movedAccount><createdAccount>",
        "(or wait for the next scheduled `orgalerts drift --repair`).",
        "",
        "Who:    <principal>",
        "When:   <time>",
    ]
)


def account_change_input_transformer() -> dict[str, Any]:
    return {"InputPathsMap": dict(ACCOUNT_CHANGE_PATHS), "InputTemplate": ACCOUNT_CHANGE_TEMPLATE}


def alert_input_transformer() -> dict[str, Any]:
    return {"InputPathsMap": dict(INPUT_PATHS), "InputTemplate": TEMPLATE}


def tamper_input_transformer() -> dict[str, Any]:
    return {"InputPathsMap": dict(INPUT_PATHS), "InputTemplate": TAMPER_TEMPLATE}


def is_tamper_event(event: dict[str, Any], prefix: str) -> bool:
    """Whether a (re-sent) event is about orgalerts' own resources or CloudTrail, as the tamper rules decide."""
    source = event.get("source")
    params = (event.get("detail") or {}).get("requestParameters") or {}
    if source in ("aws.events", "aws.cloudtrail", "aws.sns"):
        return True
    return str(params.get("roleName", "")).startswith(prefix)


def _lookup(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(event: dict[str, Any], transformer: dict[str, Any] | None = None) -> str:
    """Apply an input transformer to an event the way EventBridge does for a text template."""
    transformer = transformer or alert_input_transformer()
    values: dict[str, str] = {}
    for name, path in transformer["InputPathsMap"].items():
        value = _lookup(event, path)
        if value is None:
            values[name] = ""
        elif isinstance(value, (dict, list)):
            values[name] = json.dumps(value, separators=(",", ":"))
        else:
            values[name] = str(value)
    return re.sub(r"<([A-Za-z0-9_.-]+)>", lambda m: values.get(m.group(1), m.group(0)), transformer["InputTemplate"])
