"""Strict rule 4: EventBridge PutRule patterns and PutTargets target settings that AWS refuses.

Owns: `check(call) -> Refusal | None` for events:PutRule, PutTargets, Create/UpdateConnection and
Create/UpdateApiDestination.

PutRule (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html):
* EventPattern longer than 2,048 characters, counted on the string as sent: "Event pattern size,
  default 2,048, maximum size of an event pattern in characters"
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html) ->
  InvalidEventPatternException.
* Pattern syntax (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html and
  eb-create-pattern-operators.html): JSON object; every leaf an array (no empty array); array elements
  scalars or one-key objects naming a known comparison operator -> InvalidEventPatternException.

PutTargets (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutTargets.html,
API_InputTransformer.html):
* InputTransformer: InputTemplate at most 8,192 characters; InputPathsMap at most 100 entries, each
  value a JSON path starting with `$`; every `<placeholder>` of the template a key of InputPathsMap or
  a predefined variable (`aws.events.rule-arn`, `aws.events.rule-name`,
  `aws.events.event.ingestion-time`, `aws.events.event`, `aws.events.event.json`; see
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html).
* A target that is an event bus in another account: "Input, InputPath, and InputTransformer are not
  available with PutTarget if the target is an event bus of a different Amazon Web Services account"
  (API_PutTargets.html), and no RetryPolicy: "Retry policy is not supported for Event bus targets"
  (aws-cdk-lib/aws-events-targets/lib/event-bus.ts, EventBusProps).

Choice: these are refused as a ValidationException raised for the whole request (HTTP 400), not as
FailedEntries. FailedEntries report per-target failures of an otherwise valid request (the
PutTargets response documents ErrorCode/ErrorMessage per entry for e.g. concurrent modification);
a malformed target is a request validation error, and ValidationException is the common error AWS
APIs return for input that fails validation
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/CommonErrors.html).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from orgalerts.sandbox.strict.replies import Refusal
from orgalerts.sandbox.strict.request import StrictCall

MAX_EVENT_PATTERN_CHARS = 2048
MAX_INPUT_TEMPLATE_CHARS = 8192
MAX_INPUT_PATHS = 100
PREDEFINED_VARIABLES = frozenset(
    {
        "aws.events.rule-arn",
        "aws.events.rule-name",
        "aws.events.event.ingestion-time",
        "aws.events.event",
        "aws.events.event.json",
    }
)
OPERATORS = frozenset(
    {"prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "equals-ignore-case", "wildcard"}
)
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_EVENT_BUS_ARN = re.compile(r"^arn:[^:]+:events:[^:]*:(\d{12}):event-bus/.+$")


def _bad_pattern(reason: str) -> Refusal:
    return Refusal("InvalidEventPatternException", f"Event pattern is not valid. Reason: {reason}")


def _operator_problem(element: Mapping[str, Any]) -> str | None:
    if len(element) != 1:
        return "a comparison object must have exactly one operator"
    ((name, value),) = element.items()
    if name not in OPERATORS:
        return f"Unrecognized match type {name}"
    if name == "exists" and not isinstance(value, bool):
        return "exists match pattern must be either true or false"
    if name == "numeric" and not (isinstance(value, list) and value):
        return "Value of numeric must be an array"
    if name in ("cidr", "wildcard", "equals-ignore-case") and not isinstance(value, str):
        return f"{name} match pattern must be a string"
    return None


def _pattern_problem(node: Any, path: str) -> str | None:
    if not isinstance(node, dict):
        return f"{path or 'the pattern'} must be a JSON object"
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                return "$or must be an array of at least two patterns"
            problem = next((p for v in value if (p := _pattern_problem(v, where))), None)
        elif isinstance(value, dict):
            problem = _pattern_problem(value, where)
        elif not isinstance(value, list):
            problem = f"Match value for {where} must be an array"
        elif not value:
            problem = f"Empty arrays are not allowed (at {where})"
        else:
            problem = next((p for e in value if isinstance(e, dict) and (p := _operator_problem(e))), None)
            if problem is None and any(isinstance(e, list) for e in value):
                problem = f"Match value for {where} must be an array of scalars or operators"
        if problem:
            return problem
    return None


def check_put_rule(params: Mapping[str, Any]) -> Refusal | None:
    pattern = params.get("EventPattern")
    if not isinstance(pattern, str):
        return None
    if len(pattern) > MAX_EVENT_PATTERN_CHARS:
        return Refusal(
            "InvalidEventPatternException",
            f"Event pattern is not valid. Reason: the pattern is {len(pattern)} characters; "
            f"the maximum is {MAX_EVENT_PATTERN_CHARS}",
        )
    try:
        parsed = json.loads(pattern)
    except ValueError as exc:
        return _bad_pattern(f"Filter is not valid JSON: {exc}")
    problem = _pattern_problem(parsed, "")
    return _bad_pattern(problem) if problem else None


def _transformer_problem(target_id: str, transformer: Mapping[str, Any]) -> str | None:
    template = transformer.get("InputTemplate")
    if not isinstance(template, str):
        return f"InputTemplate is required for the InputTransformer of target {target_id}"
    if len(template) > MAX_INPUT_TEMPLATE_CHARS:
        return f"InputTemplate of target {target_id} is longer than {MAX_INPUT_TEMPLATE_CHARS} characters"
    paths = transformer.get("InputPathsMap") or {}
    if not isinstance(paths, Mapping):
        return f"InputPathsMap of target {target_id} must be a map"
    if len(paths) > MAX_INPUT_PATHS:
        return f"InputPathsMap of target {target_id} has {len(paths)} entries; at most {MAX_INPUT_PATHS} are allowed"
    for key, value in paths.items():
        if not isinstance(value, str) or not value.startswith("$"):
            return f"InputPathsMap value for {key} of target {target_id} must be a JSON path starting with $"
    for name in _PLACEHOLDER.findall(template):
        if name not in paths and name not in PREDEFINED_VARIABLES:
            return f"InputTemplate for target {target_id} contains invalid placeholder {name}."
    return None


def _target_problem(target: Mapping[str, Any], caller_account: str) -> str | None:
    target_id = str(target.get("Id", ""))
    transformer = target.get("InputTransformer")
    if isinstance(transformer, Mapping):
        problem = _transformer_problem(target_id, transformer)
        if problem:
            return problem
    m = _EVENT_BUS_ARN.match(str(target.get("Arn", "")))
    if m and m.group(1) != caller_account:
        refused = [k for k in ("Input", "InputPath", "InputTransformer", "RetryPolicy") if target.get(k) is not None]
        if refused:
            return (
                f"Parameter(s) {', '.join(refused)} not supported for target {target_id}: "
                "an event bus in another account"
            )
    return None


def check_put_targets(params: Mapping[str, Any], caller_account: str) -> Refusal | None:
    for target in params.get("Targets") or []:
        if isinstance(target, Mapping):
            problem = _target_problem(target, caller_account)
            if problem:
                return Refusal("ValidationException", problem)
    return None


# Connections and API destinations (https://docs.aws.amazon.com/eventbridge/latest/APIReference/
# API_CreateConnection.html, API_CreateApiDestination.html): Name 1-64 of [\.\-_A-Za-z0-9]; Description at most
# 512 characters; AuthorizationType BASIC | OAUTH_CLIENT_CREDENTIALS | API_KEY with the parameters of that type
# only ("You must include only authorization parameters for the AuthorizationType you specify",
# API_CreateConnectionAuthRequestParameters.html); InvocationRateLimitPerSecond at least 1 (300 by default, the
# quota); HttpMethod one of the listed verbs. InvocationEndpoint: AWS requires an HTTPS endpoint ("API destinations
# are HTTPS endpoints", eb-api-destinations.html). SANDBOX CHOICE: http:// is also accepted for 127.0.0.1 and
# localhost, so a test's local receiver can stand in for Slack or PagerDuty; any other http:// is refused as AWS.
_NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
_AUTH_KEYS = {
    "BASIC": "BasicAuthParameters",
    "OAUTH_CLIENT_CREDENTIALS": "OAuthParameters",
    "API_KEY": "ApiKeyAuthParameters",
}
_METHODS = {"POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}
MAX_INVOCATION_RATE = 300
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _invalid(message: str) -> Refusal:
    return Refusal("ValidationException", message)


def check_connection(params: Mapping[str, Any], creating: bool) -> Refusal | None:
    if not _NAME.match(str(params.get("Name", ""))):
        return _invalid("Name must be 1-64 characters of [.-_A-Za-z0-9]")
    if len(str(params.get("Description", ""))) > 512:
        return _invalid("Description must be at most 512 characters")
    kind = params.get("AuthorizationType")
    if kind is None and not creating:
        return None
    if kind not in _AUTH_KEYS:
        return _invalid(f"AuthorizationType must be one of {', '.join(sorted(_AUTH_KEYS))}")
    auth = params.get("AuthParameters") or {}
    given = {k for k in _AUTH_KEYS.values() if k in auth}
    if given != {_AUTH_KEYS[str(kind)]}:
        return _invalid(f"AuthParameters must hold {_AUTH_KEYS[str(kind)]} (and no other authorization parameters)")
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """Why an API destination's InvocationEndpoint is refused, or None (see the comment above)."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return None
    return "InvocationEndpoint must be an HTTPS URL (the sandbox also takes http:// on 127.0.0.1 and localhost)"


def check_api_destination(params: Mapping[str, Any], creating: bool) -> Refusal | None:
    if not _NAME.match(str(params.get("Name", ""))):
        return _invalid("Name must be 1-64 characters of [.-_A-Za-z0-9]")
    if len(str(params.get("Description", ""))) > 512:
        return _invalid("Description must be at most 512 characters")
    endpoint = params.get("InvocationEndpoint")
    if endpoint is not None or creating:
        problem = endpoint_problem(str(endpoint or ""))
        if problem:
            return _invalid(problem)
    method = params.get("HttpMethod")
    if (method is not None or creating) and method not in _METHODS:
        return _invalid(f"HttpMethod must be one of {', '.join(sorted(_METHODS))}")
    rate = params.get("InvocationRateLimitPerSecond")
    if rate is not None and not (isinstance(rate, int) and 1 <= rate <= MAX_INVOCATION_RATE):
        return _invalid(f"InvocationRateLimitPerSecond must be from 1 to {MAX_INVOCATION_RATE}")
    return None


def check(call: StrictCall) -> Refusal | None:
    if call.service != "events":
        return None
    if call.operation == "PutRule":
        return check_put_rule(call.parameters)
    if call.operation == "PutTargets":
        return check_put_targets(call.parameters, call.account_id)
    if call.operation in ("CreateConnection", "UpdateConnection"):
        return check_connection(call.parameters, call.operation == "CreateConnection")
    if call.operation in ("CreateApiDestination", "UpdateApiDestination"):
        return check_api_destination(call.parameters, call.operation == "CreateApiDestination")
    return None
