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
from dataclasses import dataclass
from typing import Any

# variable -> JSON path in the event (EventBridge allows up to 100). Every path a route's message uses is
# present in every event the route matches: `account` and `time` are in every EventBridge event's envelope
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html; `time` is ISO 8601,
# whatever text the CloudTrail record's eventTime has); eventName, eventSource, awsRegion and
# sourceIPAddress are "Optional: False" in every CloudTrail record
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html);
# so is eventID ("Optional: False"; a link to the event in the CloudTrail console needs it). The principal's ARN
# and errorCode are not guaranteed, and requestParameters may be null, so the routes split on them (routes.py)
# and only a route whose pattern requires one uses it.
INPUT_PATHS: dict[str, str] = {
    "account": "$.account",
    "time": "$.time",
    "region": "$.detail.awsRegion",
    "action": "$.detail.eventName",
    "service": "$.detail.eventSource",
    "principal": "$.detail.userIdentity.arn",
    "sourceIp": "$.detail.sourceIPAddress",
    "errorCode": "$.detail.errorCode",
    "errorMessage": "$.detail.errorMessage",
    "eventId": "$.detail.eventID",
    "params": "$.detail.requestParameters",
}
ALWAYS_PRESENT = ("account", "time", "region", "action", "service", "sourceIp")

# The account's NAME is not in the event (only its id, `account`), and EventBridge cannot look it up: an input
# transformer's placeholders are JSON paths into the event or a few predefined variables (rule ARN and name,
# ingestion time, the event itself; https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html),
# and the member rule, which could carry a per-account constant, targets the central bus in another account,
# where "Input, InputPath, and InputTransformer are not available"
# (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutTargets.html). So the e-mail names the
# account by id only; it does not pretend to know the name.

CONSOLE_LINK = "https://<region>.console.aws.amazon.com/cloudtrail/home?region=<region>#/events/<eventId>"
FOOTER = "Sent by orgalerts. Changes made by orgalerts itself show a role session named 'orgalerts'."
TIER_SUMMARY: dict[str, str] = {
    "critical": "root activity, an account leaving the organization, a root session, a leaked-key quarantine",
    "high": "administrator access, credentials for a named user, role trust, federation, MFA, password policy, "
    "Roles Anywhere, Identity Center identity source, organization policies weakened",
    "medium": "managed and inline policies, policy versions, permissions boundaries, own credentials, "
    "delegated administrators, Identity Center permission sets and assignments",
    "info": "any other change of a classified service",
}


NO_PRINCIPAL = "no principal ARN in the record (an AWS service, or a caller AWS did not name)"
# The request parameters (which user, role, policy), on a line of their own under "What": an object placed inside
# a quoted template string "loses its inner quotes" (substitute), so it reads {roleName:app,policyArn:...}. Only
# routes whose events have non-null requestParameters show it (null would read "null"); where the record has
# none at all (EventBridge then creates no variable), the line is left blank rather than a label without a value.
PARAMS_LINE = "        <params>"


def _call_details(*, principal: bool, denied: bool, params: bool = False) -> list[str]:
    lines = [
        f"Who:    {'<principal>' if principal else NO_PRINCIPAL}",
        "What:   <action> on <service>",
        *([PARAMS_LINE] if params else []),
        "Where:  account <account>, region <region>",
        "When:   <time>",
        "From:   <sourceIp>",
    ]
    if denied:
        lines.append("Error:  <errorCode> <errorMessage>")
    lines.append(f"Event:  {CONSOLE_LINK}")
    return lines


def alert_message(severity: Any, *, denied: bool, principal: bool, params: bool) -> Message:
    """The message of one central route: its tier, outcome and the fields its events are sure to carry."""
    tier = str(getattr(severity, "value", severity)).upper()
    by = "by <principal>" if principal else "by a caller without a principal ARN"
    if denied:
        headline = f"[orgalerts] {tier} FAILED attempt in account <account>: <action> {by} failed with <errorCode>"
    else:
        headline = f"[orgalerts] {tier} in account <account>: <action> {by}"
    why = f"Severity: {tier}{' (one tier lower: the call failed)' if denied else ''}, for {TIER_SUMMARY[tier.lower()]}"
    lines = (why, "", *_call_details(principal=principal, denied=denied, params=params), "", FOOTER)
    used = {name for line in (headline, *lines) for name in _PLACEHOLDER_NAMES.findall(line)}
    return Message({k: v for k, v in INPUT_PATHS.items() if k in used}, headline, lines)


# AWS documents string placeholders inside quotes ("For Strings, quotes are required",
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html#eb-transform-input-issues).
# A text message is therefore written as one JSON string literal per line, exactly what AWS CDK's
# RuleTargetInput.fromMultilineText emits (aws-cdk-lib/aws-events/lib/input.ts, FieldAwareEventInput.bind:
# `resolved.split('\n').map(stack.toJsonString).join('\n')`). EventBridge passes the text on as it is:
# e-mail recipients see each line in its quotes (CDK's docs: "every line is wrapped in double quotes").
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PLACEHOLDER_NAMES = re.compile(r"<([A-Za-z][A-Za-z0-9]*)>")
MAX_TEMPLATE_CHARS = 8192  # InputTemplate length constraint (API_InputTransformer.html)
MAX_INPUT_PATHS = 100  # "You can define up to 100 variables" (eb-transform-target-input.html)


@dataclass(frozen=True)
class Message:
    """One alert's text before it becomes a target's input: what every destination's payload is built from.

    `headline` and `lines` are plain text holding `<placeholders>` of `paths` (variable -> JSON path in the
    event). The e-mail form is `email_transformer()`; chat, paging and webhook payloads are built from the
    same three fields, so every destination says the same thing.
    """

    paths: dict[str, str]
    headline: str
    lines: tuple[str, ...]

    def email_transformer(self) -> dict[str, Any]:
        return {"InputPathsMap": dict(self.paths), "InputTemplate": _multiline([self.headline, "", *self.lines])}


def _multiline(lines: list[str]) -> str:
    """Lines of text -> the InputTemplate AWS CDK's fromMultilineText would write for them."""
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)


# The message of the most common route (info, success, principal ARN and request parameters present): what
# `verify` shows when it cannot tell the route, and what tests render by default.
TEMPLATE_MESSAGE = alert_message("info", denied=False, principal=True, params=True)
TEMPLATE = TEMPLATE_MESSAGE.email_transformer()["InputTemplate"]

# Tamper events are calls on orgalerts' own rules, roles, bus and topic, or on CloudTrail logging, made by people,
# automation or another account: the caller's ARN is not guaranteed (a cross-account caller is recorded as type
# AWSAccount with an account id and no ARN, an AWS service as AWSService:
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html), so
# the tamper rules come in two shapes too (patterns.with_principal_shape) and each has its own text.


def tamper_template(principal: bool = True) -> str:
    by = "by <principal>" if principal else "by a caller without a principal ARN"
    return _multiline(
        [
            f"[orgalerts] TAMPER ALERT (HIGH) in account <account>: <action> {by} changed orgalerts' own alerting",
            "",
            "Someone changed the path that carries IAM-change alerts (a forwarding rule, its role, the central",
            "bus, its policy, rules or topic) or CloudTrail logging. Alerts from this account may stop.",
            "",
            # Every tamper call names what it changes: the tamper patterns select on a request parameter (rule,
            # role, bus, topic name), and the trail calls' trail name is a required parameter (Name of StopLogging,
            # DeleteTrail, UpdateTrail; TrailName of PutEventSelectors: CloudTrail API reference), so the
            # parameters are an object, never null.
            *_call_details(principal=principal, denied=False, params=True),
            "",
            "If this was not orgalerts itself (role session 'orgalerts'), run `orgalerts drift --repair` and "
            "investigate.",
        ]
    )


TAMPER_TEMPLATE = tamper_template()

ACCOUNT_CHANGE_PATHS: dict[str, str] = {
    "action": "$.detail.eventName",
    "movedAccount": "$.detail.requestParameters.accountId",
    "destination": "$.detail.requestParameters.destinationParentId",
    "createdAccount": "$.detail.serviceEventDetails.createAccountStatus.accountId",
    # AccountJoinedOrganization (an invited account joined), logged in the management account; the
    # joining account's id is in serviceEventDetails (recipientAccountId is the management account).
    "joinedAccount": "$.detail.serviceEventDetails.accountId",
    "principal": "$.detail.userIdentity.arn",
    "time": "$.time",  # as INPUT_PATHS: one name, one path, in every message and payload
}

_NEW_ACCOUNT = "<movedAccount><createdAccount><joinedAccount>"  # whichever the event has
ACCOUNT_CHANGE_TEMPLATE = _multiline(
    [
        f"[orgalerts] ACCOUNT NOT COVERED YET: account {_NEW_ACCOUNT} joined the organization or a target OU "
        "(<action>)",
        "",
        f"Account {_NEW_ACCOUNT} was moved into a target OU <destination>, or created in or invited to the",
        "organization.",
        "Its IAM changes raise no alert until it is in scope (a target OU or organization.include_accounts)",
        "and onboarded:",
        f"    orgalerts onboard {_NEW_ACCOUNT}",
        "(or wait for the next scheduled `orgalerts drift --repair`).",
        "",
        "Who:    <principal>",
        "When:   <time>",
    ]
)


def account_change_input_transformer() -> dict[str, Any]:
    return {"InputPathsMap": dict(ACCOUNT_CHANGE_PATHS), "InputTemplate": ACCOUNT_CHANGE_TEMPLATE}


def alert_input_transformer() -> dict[str, Any]:
    return TEMPLATE_MESSAGE.email_transformer()


def tamper_input_transformer(principal: bool = True) -> dict[str, Any]:
    """The tamper rules' text; `principal`: the rule's events carry the caller's ARN."""
    template = tamper_template(principal)
    used = set(_PLACEHOLDER_NAMES.findall(template))
    return {"InputPathsMap": {k: v for k, v in INPUT_PATHS.items() if k in used}, "InputTemplate": template}


def is_tamper_event(event: dict[str, Any], prefix: str) -> bool:
    """Whether a (re-sent) event is about orgalerts' own resources or CloudTrail, as the tamper rules decide."""
    source = event.get("source")
    params = (event.get("detail") or {}).get("requestParameters") or {}
    if source in ("aws.events", "aws.cloudtrail", "aws.sns"):
        return True
    return str(params.get("roleName", "")).startswith(prefix)


_MISSING = object()


def _lookup(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _inside_string(text: str, in_string: bool) -> bool:
    """Whether a JSON string literal is open after `text`, starting from `in_string`."""
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and in_string:
            escaped = True
        elif ch == '"':
            in_string = not in_string
    return in_string


def substitute(value: Any, in_string: bool) -> str:
    """One value as EventBridge places it in a template (eb-transform-target-input.html, "Common issues").

    - a path absent from the event: "that variable isn't created and won't appear in the output" -> nothing;
    - inside quotes, a string goes in as it is: "EventBridge doesn't escape values extracted by Input Path";
    - inside quotes, an object or array loses its inner quotes: "If a JSON path references a JSON object or
      array, but the variable is referenced in a string, EventBridge removes any internal quotes";
    - outside quotes, a string gets quotes ("EventBridge automatically adds quotes to string variable
      values"), objects and arrays go in as JSON.
    Numbers, booleans and null are their JSON text (null inside quotes: `null`; not documented).
    """
    if value is _MISSING:
        return ""
    if isinstance(value, str):
        return value if in_string else json.dumps(value, ensure_ascii=False)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace('"', "") if in_string else text


def render(event: dict[str, Any], transformer: dict[str, Any] | None = None) -> str:
    """Apply an input transformer to an event as EventBridge does; the text a recipient reads.

    Placeholders of names not in InputPathsMap stay as they are. The template text around the
    placeholders is passed on unchanged (each line keeps its quotes, as e-mail recipients see it).
    """
    transformer = transformer or alert_input_transformer()
    paths: dict[str, str] = transformer["InputPathsMap"]
    template: str = transformer["InputTemplate"]
    out: list[str] = []
    pos, in_string = 0, False
    for match in _PLACEHOLDER.finditer(template):
        literal = template[pos : match.start()]
        in_string = _inside_string(literal, in_string)
        out.append(literal)
        name = match.group(1)
        out.append(substitute(_lookup(event, paths[name]), in_string) if name in paths else match.group(0))
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def template_problems(transformer: dict[str, Any]) -> list[str]:
    """What breaks EventBridge's input transformer limits (8,192-char template, 100 variables)."""
    problems = []
    if len(transformer["InputTemplate"]) > MAX_TEMPLATE_CHARS:
        problems.append(f"InputTemplate of {len(transformer['InputTemplate'])} characters > {MAX_TEMPLATE_CHARS}")
    if len(transformer["InputPathsMap"]) > MAX_INPUT_PATHS:
        problems.append(f"{len(transformer['InputPathsMap'])} InputPathsMap variables > {MAX_INPUT_PATHS}")
    return problems


# --- debris: what a message must never show ---------------------------------------------------------------------

_DEBRIS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(null|None|undefined)\b"), "a null/None value"),
    (re.compile(r"\w[ \t]+[;,)]"), "a missing value before punctuation (like 'via role ;' or 'invoked by )')"),
    (re.compile(r"\(\s*\)|\(\s"), "empty or opening-blank parentheses"),
    (re.compile(r"[^:\s][ \t]{2,}\S"), "a run of blanks where a value is missing (like 'error   (')"),
    (re.compile(r"empty means", re.IGNORECASE), "an 'empty means ...' note instead of a value"),
    (re.compile(r"/events/(\s|$)"), "a console link without an event id"),
    (re.compile(r"https?://\S*=(&|#|$|\s)"), "a link with an empty query value"),
    (re.compile(r"^\s*[A-Za-z][\w ]*:\s*$"), "a label without a value"),
    (re.compile(r"[:;,]\s*$"), "a line ending in dangling punctuation"),
    (re.compile(r"<[A-Za-z][\w.-]*>"), "an unsubstituted placeholder"),
)


def _unquoted(line: str) -> str:
    """A line of the e-mail form is one JSON string literal (email_transformer): read what is inside the quotes."""
    if len(line) >= 2 and line.startswith('"') and line.endswith('"'):
        return line[1:-1]
    return line


def problems_of_the_record(detail: dict[str, Any]) -> list[str]:
    """The debris a record's own data puts into its message, which no template can avoid: the prefixes of the
    message_problems it may show. CloudTrail writes an eventID in every record ("Optional: False",
    cloudtrail-event-reference-record-contents.html), so only a hand-trimmed sample lacks one, and then the console
    link has no id. The parameters line shows the record's own object ({...}): a null in it, or a policy document
    the caller indented (runs of blanks inside its string), is the caller's data, shown as sent."""
    allowed = [] if detail.get("eventID") else ["a console link without an event id"]
    params = detail.get("requestParameters")
    if isinstance(params, dict):
        shown = json.dumps(params)
        if re.search(r"\bnull\b", shown):
            allowed.append("a null/None value: {")
        if re.search(r"[ \t]{2,}", shown):
            allowed.append("a run of blanks where a value is missing (like 'error   ('): {")
    return allowed


def unexplained_problems(text: str, detail: dict[str, Any]) -> list[str]:
    """message_problems less those the record's own data explains (problems_of_the_record)."""
    allowed = problems_of_the_record(detail)
    return [p for p in message_problems(text) if not any(a in p for a in allowed)]


def message_problems(text: str) -> list[str]:
    """Template debris in a rendered alert: a label without a value, dangling punctuation, null/None, an empty
    link, an unsubstituted placeholder. Each problem names its line; an empty list means the text is clean."""
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _unquoted(raw)
        for pattern, what in _DEBRIS:
            if pattern.search(line):
                problems.append(f"line {number}: {what}: {line.strip()[:120]}")
    return problems
