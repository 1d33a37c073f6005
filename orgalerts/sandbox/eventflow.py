"""Event router of the sandbox: a SHIM OVER MOTO that delivers EventBridge events the way AWS does.

Owns: routing one event through the rules of one event bus to their targets (`deliver`), and the
emulated PutEvents API (`put_events`, called by the server's middleware instead of moto's).

Why it exists: moto stores buses, rules, targets and policies faithfully but its delivery has gaps that
matter for orgalerts (see shared/DESIGN.md, "moto gaps"):
- a rule with an SNS target raises NotImplementedError inside moto's put_events;
- a cross-account bus target drops the event's `account` field (and ignores the bus policy and RoleArn);
- moto ignores the rule state (DISABLED rules fire) and knows nothing of read-only CloudTrail events.
This module reads moto's backends (rules, targets, bus and topic policies, IAM roles, the organization)
and writes to moto's SNS and SQS backends directly. It is the only place that knows these internals:
- moto.events.models: events_backends, EventPattern (rule.event_pattern, rule.targets, rule.state,
  rule.arn, EventBus.policy, EventBus.rules)
- moto.sns.models.sns_backends (topics, Topic.policy, SNSBackend.publish)
- moto.sqs.models.sqs_backends (queues, SQSBackend.send_message)
- moto.iam.models.iam_backends (get_role_by_arn)
- moto.organizations.models.organizations_backends (master_accounts, org, accounts, ou)

What is emulated (and what not):
- rule states ENABLED / ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS; only the latter receives
  CloudTrail events whose detail.readOnly is true; scheduled rules never match events;
- targets: event buses (same or other account; other account needs a RoleArn of an existing role in
  the rule's account and an Allow in the target bus's policy; forwarded events keep `account`; an event
  that already crossed a bus is never forwarded again), SNS topics (topic policy must let
  events.amazonaws.com sns:Publish, aws:SourceArn / aws:SourceAccount conditions honoured), SQS queues
  (queue policies are NOT checked); API destinations over real HTTP, only to 127.0.0.1 / localhost (the role
  must trust EventBridge and allow events:InvokeApiDestination; the connection's API-key header and body
  parameters are applied; non-2xx, a timeout or any other host is a failed delivery); other target kinds are
  logged and skipped;
- Input, InputPath and InputTransformer (InputPathsMap + InputTemplate, predefined aws.events.* names);
- DeadLetterConfig: a refused delivery (missing target, policy refusal) goes to the DLQ with the
  ERROR_CODE / ERROR_MESSAGE / RULE_ARN / TARGET_ARN message attributes EventBridge sets. There are no
  retries: a delivery either works at once or is dead-lettered.
Nothing here raises: every failure is logged with logging.getLogger(__name__).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from moto.events.models import EventPattern, events_backends
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

log = logging.getLogger(__name__)

ALL_MANAGEMENT_EVENTS_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
_DELIVERING_STATES = ("ENABLED", ALL_MANAGEMENT_EVENTS_STATE)
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENTS_SERVICE_PRINCIPAL = "events.amazonaws.com"
MAX_PUT_EVENTS_ENTRIES = 10


class DeliveryRefused(Exception):
    """A target refused (or could not take) an event; what EventBridge would report to a DLQ."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --------------------------------------------------------------------------------------------------
# Entry points


def deliver(account_id: str, region: str, bus_name: str, event: Mapping[str, Any], hops: int = 0) -> None:
    """Route `event` through every matching rule of bus `bus_name` of (account, region) to the targets.

    `bus_name` may be a name or an event-bus ARN. `hops` counts the buses the event already crossed
    (0 for an event put on its first bus); an event with hops >= 1 is not forwarded to another bus.
    Never raises.
    """
    try:
        _deliver(account_id, region, _bus_name(bus_name), event, hops)
    except Exception:
        log.exception(
            "sandbox event router: delivering event %s on %s/%s/%s failed",
            event.get("id"),
            account_id,
            region,
            bus_name,
        )


def put_events(account_id: str, region: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Emulate EventBridge PutEvents called by `account_id` in `region`; returns the API response.

    Replaces moto's put_events (which cannot deliver to SNS and drops `account` across accounts).
    Like AWS, a client may not use a source starting with "aws."; an entry for a bus of another
    account is accepted only if that bus's policy allows the caller's account.
    """
    if len(entries) > MAX_PUT_EVENTS_ENTRIES:
        raise ValueError(f"PutEvents takes at most {MAX_PUT_EVENTS_ENTRIES} entries")
    results: list[dict[str, str]] = []
    for entry in entries:
        try:
            event, target = _event_from_entry(account_id, region, entry)
        except DeliveryRefused as refusal:
            results.append({"ErrorCode": refusal.code, "ErrorMessage": refusal.message})
            continue
        results.append({"EventId": event["id"]})
        deliver(target[0], target[1], target[2], event)
    failed = sum(1 for r in results if "ErrorCode" in r)
    return {"FailedEntryCount": failed, "Entries": results}


# --------------------------------------------------------------------------------------------------
# Rules


def _bus_name(name_or_arn: str) -> str:
    return name_or_arn.split(":event-bus/", 1)[1] if name_or_arn.startswith("arn:") else name_or_arn


def _deliver(account_id: str, region: str, bus_name: str, event: Mapping[str, Any], hops: int) -> None:
    bus = events_backends[account_id][region].event_buses.get(bus_name)
    if bus is None:
        log.warning(
            "sandbox event router: no event bus %s in %s/%s; event %s dropped",
            bus_name,
            account_id,
            region,
            event.get("id"),
        )
        return
    # list(): a target may (in another thread) change the rules while we iterate.
    for rule in list(bus.rules.values()):
        if not _rule_accepts(rule, event):
            continue
        log.debug("sandbox event router: rule %s matched event %s", rule.arn, event.get("id"))
        for target in list(rule.targets):
            try:
                _deliver_to_target(rule, target, event, hops)
            except DeliveryRefused as refusal:
                log.warning(
                    "sandbox event router: rule %s target %s refused event %s: %s",
                    rule.arn,
                    target.get("Arn"),
                    event.get("id"),
                    refusal,
                )
                _dead_letter(rule, target, event, refusal)
            except Exception:
                log.exception(
                    "sandbox event router: rule %s target %s failed on event %s",
                    rule.arn,
                    target.get("Arn"),
                    event.get("id"),
                )


def _rule_accepts(rule: Any, event: Mapping[str, Any]) -> bool:
    state = rule.state
    if state not in _DELIVERING_STATES:
        return False
    if state == "ENABLED" and is_read_only_management_event(event):
        # AWS: only ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS rules see read-only management events.
        return False
    pattern = rule.event_pattern
    if not isinstance(pattern, EventPattern):
        pattern = EventPattern.load(pattern)
    if pattern.dump() is None:
        # A rule without a pattern is a scheduled rule: events never match it (moto's empty pattern
        # would match everything).
        return False
    return bool(pattern.matches_event(dict(event)))  # type: ignore[arg-type]


def is_read_only_management_event(event: Mapping[str, Any]) -> bool:
    """True for a CloudTrail API-call event of a read-only call (detail.readOnly true)."""
    detail = event.get("detail")
    return (
        event.get("detail-type") == CLOUDTRAIL_DETAIL_TYPE
        and isinstance(detail, Mapping)
        and detail.get("readOnly") is True
    )


# --------------------------------------------------------------------------------------------------
# Targets


def _split_arn(arn: str) -> tuple[str, str, str, str]:
    """arn:partition:service:region:account:resource -> (service, region, account, resource)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise DeliveryRefused("InvalidArn", f"not an ARN: {arn!r}")
    return parts[2], parts[3], parts[4], parts[5]


def _deliver_to_target(rule: Any, target: Mapping[str, Any], event: Mapping[str, Any], hops: int) -> None:
    service, region, account, resource = _split_arn(str(target.get("Arn", "")))
    if service == "events" and resource.startswith("event-bus/"):
        _to_event_bus(rule, target, event, hops, region, account, resource[len("event-bus/") :])
    elif service == "sns":
        _to_sns(rule, target, event, region, account)
    elif service == "sqs":
        _to_sqs(rule, target, event, region, account, resource)
    elif service == "events" and resource.startswith("api-destination/"):
        _to_api_destination(rule, target, event, region, account, resource)
    else:
        log.info("sandbox event router: target kind %s of rule %s is not emulated; skipped", service, rule.arn)


def _to_event_bus(
    rule: Any, target: Mapping[str, Any], event: Mapping[str, Any], hops: int, region: str, account: str, bus_name: str
) -> None:
    if hops >= 1:
        # EventBridge forwards bus-to-bus once: an event that arrived from another bus stays here.
        log.info(
            "sandbox event router: event %s already crossed a bus; rule %s does not forward it",
            event.get("id"),
            rule.arn,
        )
        return
    target_bus = events_backends[account][region].event_buses.get(bus_name)
    if target_bus is None:
        raise DeliveryRefused("ResourceNotFoundException", f"event bus {target['Arn']} does not exist")
    if account != rule.account_id:
        if any(target.get(k) for k in ("Input", "InputPath", "InputTransformer")):
            raise DeliveryRefused(
                "InvalidParameterException",
                "Input, InputPath and InputTransformer are not allowed on a cross-account event-bus target",
            )
        role_arn = target.get("RoleArn")
        if not role_arn:
            raise DeliveryRefused("NoPermissions", "a cross-account event-bus target needs a RoleArn")
        _require_role(rule.account_id, str(role_arn))
        refusal = bus_policy_refusal(target_bus, rule.account_id, str(role_arn))
        if refusal is not None:
            raise DeliveryRefused("NoPermissions", refusal)
    # The forwarded event is the same event: same id, and above all the original `account` (moto
    # replaces it with the forwarding account; that is the gap this shim closes).
    deliver(account, region, bus_name, copy.deepcopy(dict(event)), hops + 1)


def _require_role(account_id: str, role_arn: str) -> None:
    service, _, role_account, resource = _split_arn(role_arn)
    if service != "iam" or not resource.startswith("role/") or role_account != account_id:
        raise DeliveryRefused("NoPermissions", f"RoleArn {role_arn} is not a role of account {account_id}")
    try:
        iam_backends[account_id]["global"].get_role_by_arn(role_arn)
    except Exception as exc:
        raise DeliveryRefused("NoPermissions", f"role {role_arn} does not exist") from exc


def _to_sns(rule: Any, target: Mapping[str, Any], event: Mapping[str, Any], region: str, account: str) -> None:
    topic_arn = str(target["Arn"])
    backend = sns_backends[account][region]
    topic = backend.topics.get(topic_arn)
    if topic is None:
        raise DeliveryRefused("ResourceNotFoundException", f"SNS topic {topic_arn} does not exist")
    refusal = service_policy_refusal(_load_policy(topic.policy), "sns:Publish", topic_arn, rule.arn, rule.account_id)
    if refusal is not None:
        raise DeliveryRefused("NoPermissions", f"topic policy of {topic_arn}: {refusal}")
    message = render_target_input(target, event, rule.arn, rule.name)
    group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
    backend.publish(
        message=message, arn=topic_arn, group_id=group_id, deduplication_id=str(event.get("id")) if group_id else None
    )


def _to_sqs(
    rule: Any, target: Mapping[str, Any], event: Mapping[str, Any], region: str, account: str, queue_name: str
) -> None:
    backend = sqs_backends[account][region]
    if queue_name not in backend.queues:
        raise DeliveryRefused("ResourceNotFoundException", f"SQS queue {target['Arn']} does not exist")
    body = render_target_input(target, event, rule.arn, rule.name)
    group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
    backend.send_message(
        queue_name=queue_name,
        message_body=body,
        group_id=group_id,
        deduplication_id=str(event.get("id")) if group_id else None,
    )


# --------------------------------------------------------------------------------------------------
# API destinations (chat, paging, webhooks) over real HTTP, to this machine only

LOCAL_HOSTS = ("127.0.0.1", "localhost")
# The sandbox gives a receiver 5 seconds (EventBridge's own invocation timeout is not verified here); a slower
# receiver counts as a failed delivery.
HTTP_TIMEOUT_SECONDS = 5.0
# What was sent (or refused), for tests and `watch`: destination name, endpoint host, status, body. Never the
# connection's secret values: they are merged into the body sent, not into this record.
HTTP_DELIVERIES: list[dict[str, Any]] = []


def _to_api_destination(
    rule: Any, target: Mapping[str, Any], event: Mapping[str, Any], region: str, account: str, resource: str
) -> None:
    """Invoke an API destination as EventBridge does: through the target's role (which must allow
    events:InvokeApiDestination), with the connection's auth header and body parameters, the rendered input as
    the JSON body; non-2xx or a connection error is a failed delivery (dead-lettered by the caller)."""
    backend = events_backends[account][region]
    name = resource.split("/")[1]
    destination = backend.destinations.get(name)
    if destination is None or str(destination.arn) != str(target.get("Arn")):
        raise DeliveryRefused("ResourceNotFoundException", f"API destination {target.get('Arn')} does not exist")
    _require_invoke_permission(rule, target, account, region, name)
    connection = next((c for c in backend.connections.values() if str(c.arn) == destination.connection_arn), None)
    if connection is None:
        raise DeliveryRefused("ResourceNotFoundException", f"connection {destination.connection_arn} does not exist")
    body = render_target_input(target, event, rule.arn, rule.name)
    headers, body = _http_request_parts(connection.auth_parameters or {}, body)
    _send(name, str(destination.invocation_endpoint), str(destination.http_method), headers, body)


def _require_invoke_permission(rule: Any, target: Mapping[str, Any], account: str, region: str, name: str) -> None:
    """The target's role must exist, trust EventBridge for this rule, and allow events:InvokeApiDestination on
    the API destination (named as IAM names it, without the id: list_amazoneventbridge.html, api-destination)."""
    role_arn = str(target.get("RoleArn") or "")
    if not role_arn:
        raise DeliveryRefused("NoPermissions", "an API-destination target needs a RoleArn")
    _require_role(rule.account_id, role_arn)
    role = iam_backends[rule.account_id]["global"].get_role_by_arn(role_arn)
    trust = _load_policy(role.assume_role_policy_document)
    refusal = service_policy_refusal(trust, "sts:AssumeRole", role_arn, str(rule.arn), str(rule.account_id))
    if refusal is not None:
        raise DeliveryRefused("NoPermissions", f"trust policy of {role_arn}: {refusal}")
    documents = [_load_policy(doc) for doc in role.policies.values()]
    documents += [_load_policy(v.document) for p in role.managed_policies.values() for v in p.versions if v.is_default]
    resource = f"arn:aws:events:{region}:{account}:api-destination/{name}"
    if not _identity_allows(documents, "events:InvokeApiDestination", resource):
        raise DeliveryRefused("NoPermissions", f"role {role_arn} may not events:InvokeApiDestination on {resource}")


def _identity_allows(documents: Sequence[Mapping[str, Any]], action: str, resource: str) -> bool:
    allowed = False
    for document in documents:
        for st in _statements(document):
            if not (_action_matches(st, action) and _resource_matches(st, resource) and not st.get("Condition")):
                continue
            if st.get("Effect") == "Deny":
                return False
            allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def _http_request_parts(auth: Mapping[str, Any], body: str) -> tuple[dict[str, str], str]:
    """Headers and body as the connection shapes them: the API key header, the invocation header parameters, and
    the invocation body parameters added to a JSON object body (the connection's values win:
    API_CreateConnectionAuthRequestParameters.html, InvocationHttpParameters)."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Amazon/EventBridge/ApiDestinations"}
    key = auth.get("ApiKeyAuthParameters") or {}
    if key.get("ApiKeyName"):
        headers[str(key["ApiKeyName"])] = str(key.get("ApiKeyValue", ""))
    invocation = auth.get("InvocationHttpParameters") or {}
    for param in invocation.get("HeaderParameters") or []:
        headers[str(param.get("Key"))] = str(param.get("Value", ""))
    extra = {str(p.get("Key")): p.get("Value", "") for p in invocation.get("BodyParameters") or []}
    if extra:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict):
            body = json.dumps({**document, **extra}, separators=(",", ":"))
    return headers, body


def _send(name: str, endpoint: str, method: str, headers: Mapping[str, str], body: str) -> None:
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    host = urlsplit(endpoint).hostname or ""
    record: dict[str, Any] = {"api_destination": name, "host": host, "method": method, "status": None}
    HTTP_DELIVERIES.append(record)
    if host not in LOCAL_HOSTS:
        # The sandbox never reaches the internet: a real Slack or PagerDuty URL is recorded and refused.
        record["refused"] = "not a local endpoint"
        raise DeliveryRefused("SandboxRefused", f"the sandbox sends API-destination calls only to {LOCAL_HOSTS}")
    request = urllib.request.Request(endpoint, data=body.encode(), method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            record["status"] = response.status
    except urllib.error.HTTPError as exc:
        record["status"] = exc.code
        raise DeliveryRefused("SDK_CLIENT_ERROR", f"the API destination endpoint answered HTTP {exc.code}") from None
    except OSError as exc:
        raise DeliveryRefused("SDK_CLIENT_ERROR", f"the API destination endpoint could not be reached: {exc}") from None
    log.info("sandbox event router: delivered to API destination %s (HTTP %s)", name, record["status"])


def _dead_letter(rule: Any, target: Mapping[str, Any], event: Mapping[str, Any], refusal: DeliveryRefused) -> None:
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq_arn:
        log.warning(
            "sandbox event router: event %s dropped (target %s has no dead-letter queue)",
            event.get("id"),
            target.get("Arn"),
        )
        return
    try:
        service, region, account, queue_name = _split_arn(str(dlq_arn))
        backend = sqs_backends[account][region]
        if service != "sqs" or queue_name not in backend.queues:
            log.warning(
                "sandbox event router: dead-letter queue %s does not exist; event %s dropped", dlq_arn, event.get("id")
            )
            return

        def attr(value: str) -> dict[str, str]:
            return {"DataType": "String", "StringValue": value}

        backend.send_message(
            queue_name=queue_name,
            message_body=json.dumps(event),
            message_attributes={
                "ERROR_CODE": attr(refusal.code),
                "ERROR_MESSAGE": attr(refusal.message[:1000]),
                "RULE_ARN": attr(str(rule.arn)),
                "TARGET_ARN": attr(str(target.get("Arn"))),
            },
        )
    except Exception:
        log.exception("sandbox event router: could not dead-letter event %s to %s", event.get("id"), dlq_arn)


# --------------------------------------------------------------------------------------------------
# Resource policies


def _load_policy(raw: object) -> dict[str, Any]:
    if not raw:
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        doc = json.loads(str(raw))
    except ValueError:
        log.warning("sandbox event router: unreadable resource policy %r", raw)
        return {}
    return doc if isinstance(doc, dict) else {}


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    st = policy.get("Statement", [])
    if isinstance(st, Mapping):
        return [st]
    return [s for s in st if isinstance(s, Mapping)] if isinstance(st, list) else []


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _like(value: str, pattern: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run, `?` one character; everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    # IAM action names are case-insensitive ("SNS:Publish" in moto's default topic policy).
    return any(_like(action, a, ignore_case=True) for a in _as_list(statement.get("Action")))


def _resource_matches(statement: Mapping[str, Any], arn: str) -> bool:
    resources = _as_list(statement.get("Resource"))
    return not resources or any(_like(arn, r) for r in resources)


def _principal_matches(principal: object, accepted: Mapping[str, set[str]]) -> bool:
    """`accepted` maps a principal type (AWS, Service) to the values that denote our caller."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    for kind, values in principal.items():
        for value in _as_list(values):
            if value == "*" and kind == "AWS":  # {"AWS": "*"} is everyone, as "*" is.
                return True
            if value in accepted.get(kind, set()):
                return True
    return False


_NEGATED_OPERATORS = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _values_match(base: str, actual: str, wanted: str) -> bool:
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        # ArnEquals behaves like ArnLike in IAM; plain equality is enough for the ARNs we compare
        # unless the policy uses wildcards.
        return actual == wanted or (base.startswith("Arn") and _like(actual, wanted))
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == wanted.lower()
    if base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        return _like(actual, wanted)
    raise KeyError(base)


def _condition_holds(operator: str, actual: list[str] | None, wanted: list[str]) -> bool:
    """One condition (operator, one key) of an IAM policy, with IfExists and ForAnyValue/ForAllValues."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    negated = base in _NEGATED_OPERATORS
    if not actual:
        # Absent key: IfExists and ForAllValues hold vacuously; negated operators hold too (IAM rules).
        return if_exists or qualifier == "ForAllValues" or negated
    try:

        def one(value: str) -> bool:
            hit = any(_values_match(base, value, w) for w in wanted)
            return not hit if negated else hit

        if qualifier == "ForAllValues":
            return all(one(v) for v in actual)
        return any(one(v) for v in actual)
    except KeyError:
        log.warning("sandbox event router: condition operator %s is not emulated; treated as false", operator)
        return False


def _conditions_hold(conditions: object, context: Mapping[str, list[str]]) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, Mapping):
        return False
    for operator, pairs in conditions.items():
        if not isinstance(pairs, Mapping):
            return False
        for key, wanted in pairs.items():
            # Condition keys are case-insensitive (moto's topic policy says "AWS:SourceOwner").
            if not _condition_holds(str(operator), context.get(str(key).lower()), _as_list(wanted)):
                return False
    return True


def _evaluate(
    policy: Mapping[str, Any],
    action: str,
    resource_arn: str,
    principals: Mapping[str, set[str]],
    context: Mapping[str, list[str]],
) -> str | None:
    """None when the policy allows; otherwise the reason it does not. An explicit Deny wins."""
    allowed = False
    for st in _statements(policy):
        if "NotPrincipal" in st or "NotAction" in st or "NotResource" in st:
            log.warning("sandbox event router: NotPrincipal/NotAction/NotResource statement %s ignored", st.get("Sid"))
            continue
        if not (
            _action_matches(st, action)
            and _resource_matches(st, resource_arn)
            and _principal_matches(st.get("Principal"), principals)
            and _conditions_hold(st.get("Condition"), context)
        ):
            continue
        if st.get("Effect") == "Deny":
            return f"denied by statement {st.get('Sid', '(no Sid)')}"
        if st.get("Effect") == "Allow":
            allowed = True
    return None if allowed else f"no statement allows {action} on {resource_arn}"


def bus_policy_refusal(bus: Any, source_account: str, role_arn: str | None = None) -> str | None:
    """Why `source_account` may not put events on `bus` (a moto EventBus), or None if it may.

    Conditions understood: aws:PrincipalOrgID, aws:PrincipalOrgPaths, aws:PrincipalAccount with the
    String*/Arn* operators, IfExists and ForAnyValue/ForAllValues.
    """
    policy = _load_policy(bus.policy)
    if not policy:
        return f"event bus {bus.arn} has no resource policy"
    principals = {"AWS": {source_account, f"arn:aws:iam::{source_account}:root"} | ({role_arn} if role_arn else set())}
    org_id, org_path = organization_of(source_account)
    context: dict[str, list[str]] = {"aws:principalaccount": [source_account]}
    if org_id is not None and org_path is not None:
        context["aws:principalorgid"] = [org_id]
        context["aws:principalorgpaths"] = [org_path]
    refusal = _evaluate(policy, "events:PutEvents", bus.arn, principals, context)
    return None if refusal is None else f"policy of {bus.arn}: {refusal} for account {source_account}"


def service_policy_refusal(
    policy: Mapping[str, Any], action: str, resource_arn: str, source_arn: str, source_account: str
) -> str | None:
    """Why EventBridge (rule `source_arn`) may not do `action` on a resource with `policy`, or None."""
    if not policy:
        return "no resource policy"
    principals = {"Service": {EVENTS_SERVICE_PRINCIPAL}}
    context = {"aws:sourcearn": [source_arn], "aws:sourceaccount": [source_account]}
    return _evaluate(policy, action, resource_arn, principals, context)


def organization_of(account_id: str) -> tuple[str | None, str | None]:
    """(organization id, org path "o-…/r-…/ou-…/") of an account, from moto's Organizations backend."""
    owner = organizations_backends.master_accounts.get(account_id)
    if owner is not None:
        backend = organizations_backends[owner[0]][owner[1]]
    elif account_id in organizations_backends:
        backend = organizations_backends[account_id]["aws"]
    else:
        return None, None
    org = backend.org
    if org is None:
        return None, None
    try:
        parent: str = str(backend.get_account_by_id(account_id).parent_id)
        chain: list[str] = []
        # Walk up to the root; the bound only guards against a corrupted (cyclic) tree.
        for _ in range(100):
            if parent == org.root_id:
                break
            chain.insert(0, parent)
            parent = str(backend.get_organizational_unit_by_id(parent).parent_id)
    except Exception:
        log.exception("sandbox event router: cannot compute the org path of %s", account_id)
        return org.id, None
    path = f"{org.id}/{org.root_id}/" + "".join(f"{ou}/" for ou in chain)
    return org.id, path


# --------------------------------------------------------------------------------------------------
# Target input (Input, InputPath, InputTransformer)

_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """Value at an EventBridge JSON path (`$`, `$.detail.eventName`, `$.a[0].b`), or `_MISSING`."""
    path = path.strip()
    if not path.startswith("$"):
        return _MISSING
    rest, node = path[1:], document
    while rest:
        m = _PATH_TOKEN.match(rest)
        if m is None:
            return _MISSING
        rest = rest[m.end() :]
        name, index = m.group(1) or m.group(3) or m.group(4), m.group(2)
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                return _MISSING
            node = node[int(index)]
        else:
            if not isinstance(node, Mapping) or name not in node:
                return _MISSING
            node = node[name]
    return node


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def _placeholders(template: str) -> list[tuple[str, str, bool]]:
    """Split a template into (literal text before, placeholder name or "", inside a JSON string?)."""
    parts: list[tuple[str, str, bool]] = []
    in_string = escaped = False
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        literal = template[pos : m.start()]
        for ch in literal:
            if escaped:
                escaped = False
            elif ch == "\\" and in_string:
                escaped = True
            elif ch == '"':
                in_string = not in_string
        parts.append((literal, m.group(1), in_string))
        pos = m.end()
    parts.append((template[pos:], "", in_string))
    return parts


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _substitute(value: Any, in_string: bool, json_mode: bool) -> str:
    """One value placed in a template, per AWS's "Common issues with transforming input"
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html#eb-transform-input-issues):
    a missing path "won't appear in the output"; inside quotes strings are not escaped, and an object or
    array loses its internal quotes ("EventBridge removes any internal quotes to ensure a valid string");
    outside quotes in a JSON template strings get quotes and objects go in as JSON. Outside quotes in a
    text (non-JSON) template values go in as text. Null inside quotes is `null` (not documented).
    """
    if value is _MISSING:
        return ""
    if in_string:
        return value if isinstance(value, str) else _compact(value).replace('"', "")
    if not json_mode:
        return "" if value is None else value if isinstance(value, str) else _compact(value)
    return _compact(value)


def render_input_template(template: str, values: Mapping[str, Any]) -> str:
    """Fill `<name>` placeholders of an InputTemplate.

    `values` maps each defined variable to its value, or to `_MISSING` for a path absent from the event
    (rendered as an empty string). Placeholders of undefined names are left as they are.

    A template that is JSON (an object, an array or a quoted string once its placeholders are filled)
    gets values outside JSON strings inserted as JSON, and strings inside JSON strings inserted as
    they are, unescaped, as EventBridge does; JSON objects come out minified. A quoted string template
    such as `"text <x>"` keeps its quotes, as in AWS's tutorial, where the SNS message reads
    "This event was of customerCreated type." with the quotes. Any other template is text: strings go
    in as they are, objects and arrays as compact JSON, null as an empty string.
    """
    parts = _placeholders(template)
    # Is it JSON? Try it with every placeholder outside a string replaced by a harmless value.
    trial = "".join(lit + ("0" if name and not in_str else f"<{name}>" if name else "") for lit, name, in_str in parts)
    try:
        json.loads(trial)
        json_mode = True
    except ValueError:
        json_mode = False

    out: list[str] = []
    for literal, name, in_string in parts:
        out.append(literal)
        if not name:
            continue
        if name not in values:
            out.append(f"<{name}>")
            continue
        out.append(_substitute(values[name], in_string, json_mode))
    result = "".join(out)
    if json_mode and template.lstrip()[:1] in ("{", "["):
        # EventBridge hands JSON to the target minified.
        try:
            return _compact(json.loads(result))
        except ValueError:
            return result
    return result


def render_target_input(target: Mapping[str, Any], event: Mapping[str, Any], rule_arn: str, rule_name: str) -> str:
    """What a target receives: Input, InputPath, InputTransformer, or else the event as JSON."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        value = json_path(event, str(target["InputPath"]))
        return "" if value is _MISSING else json.dumps(value)
    transformer = target.get("InputTransformer")
    if transformer:
        values: dict[str, Any] = {
            name: json_path(event, str(path)) for name, path in (transformer.get("InputPathsMap") or {}).items()
        }
        event_without_detail = {k: v for k, v in event.items() if k != "detail"}
        values.update(
            {
                "aws.events.rule-arn": rule_arn,
                "aws.events.rule-name": rule_name,
                "aws.events.event.ingestion-time": _now_iso(),
                "aws.events.event": event_without_detail,
                "aws.events.event.json": dict(event),
            }
        )
        return render_input_template(str(transformer.get("InputTemplate", "")), values)
    return json.dumps(event)


# --------------------------------------------------------------------------------------------------
# PutEvents


def _event_from_entry(
    account_id: str, region: str, entry: Mapping[str, Any]
) -> tuple[dict[str, Any], tuple[str, str, str]]:
    source, detail_type, detail_raw = entry.get("Source"), entry.get("DetailType"), entry.get("Detail")
    if not source:
        raise DeliveryRefused(
            "InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."
        )
    if str(source).startswith("aws."):
        raise DeliveryRefused("NotAuthorizedForSourceException", f"Not authorized for the source {source}.")
    if not detail_type:
        raise DeliveryRefused(
            "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument."
        )
    if not detail_raw:
        raise DeliveryRefused(
            "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."
        )
    try:
        detail = json.loads(str(detail_raw))
    except ValueError as exc:
        raise DeliveryRefused("MalformedDetail", "Detail is malformed.") from exc
    if not isinstance(detail, dict):
        raise DeliveryRefused("MalformedDetail", "Detail is malformed.")

    bus_ref = str(entry.get("EventBusName") or "default")
    bus_account, bus_region, bus_name = account_id, region, bus_ref
    if bus_ref.startswith("arn:"):
        service, bus_region, bus_account, resource = _split_arn(bus_ref)
        if service != "events" or not resource.startswith("event-bus/"):
            raise DeliveryRefused("InvalidArgument", f"not an event bus ARN: {bus_ref}")
        bus_name = resource[len("event-bus/") :]
    bus = events_backends[bus_account][bus_region].event_buses.get(bus_name)
    if bus is None:
        raise DeliveryRefused("ResourceNotFoundException", f"Event bus {bus_name} does not exist.")
    if bus_account != account_id:
        refusal = bus_policy_refusal(bus, account_id)
        if refusal is not None:
            raise DeliveryRefused("AccessDeniedException", refusal)

    when = entry.get("Time")
    if isinstance(when, (int, float)):
        time_text = datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(when, str) and when:
        time_text = when
    else:
        time_text = _now_iso()
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": str(detail_type),
        "source": str(source),
        "account": account_id,
        "time": time_text,
        "region": region,
        "resources": list(entry.get("Resources") or []),
        "detail": detail,
    }
    return event, (bus_account, bus_region, bus_name)
