"""CloudTrail emulation of the sandbox, as a WSGI middleware in front of moto's server.

Owns: recognising IAM, EventBridge and CloudTrail API calls among the requests the sandbox server
receives, turning each successful one into the "AWS API Call via CloudTrail" event that CloudTrail +
EventBridge would deliver, and handing it to the event router (`eventflow.deliver`) for the caller's
default bus: us-east-1 for IAM (a global service whose events only appear there), the request's region
for EventBridge and CloudTrail. It also diverts EventBridge PutEvents to `eventflow.put_events`, because
moto's own PutEvents cannot deliver to SNS and loses `account` across accounts.

moto has no CloudTrail event stream at all: without this, no rule in the sandbox would ever see an IAM
call. Events are delivered synchronously, before the response goes back to the client, so a test can
read the alert right after its API call returns, without waiting.

The emulation must never break a request: anything it fails at is logged and the request proceeds.
moto internals used: moto.iam.models (get_account_id_from, iam_backends) and moto.sts.models
(sts_backends, STSBackend.get_assumed_role_from_access_key) to find who made the call.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from orgalerts.sandbox import eventflow

log = logging.getLogger(__name__)

# What CloudTrail writes in place of the caller's access key id: the sandbox never echoes a key.
REDACTED_ACCESS_KEY_ID = "REDACTED_IN_SANDBOX"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
_SECRET_PARAM = re.compile(r"password|privatekey|secret", re.IGNORECASE)

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


@dataclass(frozen=True)
class _Service:
    source: str
    event_source: str
    read_only_prefixes: tuple[str, ...]
    global_region: str | None  # IAM: events always land in us-east-1, whatever region signed the call
    # Only these operations are emitted (None: all). STS: the two calls orgalerts alerts on, not every
    # AssumeRole the orchestrator itself makes.
    only: frozenset[str] | None = None
    read_only_events: frozenset[str] = frozenset()  # read-only whatever their name says


_SERVICES: dict[str, _Service] = {
    "iam": _Service("aws.iam", "iam.amazonaws.com", ("Get", "List", "Generate", "Simulate"), "us-east-1"),
    "events": _Service("aws.events", "events.amazonaws.com", ("Describe", "List", "Test"), None),
    "cloudtrail": _Service(
        "aws.cloudtrail", "cloudtrail.amazonaws.com", ("Describe", "Get", "List", "LookupEvents"), None
    ),
    # Organizations is global like IAM: its events appear in us-east-1 of the management account.
    "organizations": _Service("aws.organizations", "organizations.amazonaws.com", ("Describe", "List"), "us-east-1"),
    "sns": _Service("aws.sns", "sns.amazonaws.com", ("Get", "List", "CheckIfPhoneNumberIsOptedOut"), None),
    # IAM Identity Center (sso-admin signs as "sso") and its identity store: regional, events in the region
    # of the call (https://docs.aws.amazon.com/singlesignon/latest/userguide/logging-using-cloudtrail.html).
    "sso": _Service("aws.sso", "sso.amazonaws.com", ("Describe", "Get", "List"), None),
    "identitystore": _Service("aws.identitystore", "identitystore.amazonaws.com", ("Describe", "Get", "List"), None),
    # STS is regional: events land in the region of the endpoint called. GetFederationToken is recorded with
    # readOnly false (a real record: shared/corpus/cloudtrail/other/sts_sso_organizations.json). AWS shows no
    # AssumeRoot record; it is emitted read-only, as AssumeRole is recorded, so a rule in state ENABLED misses it
    # here as it may on AWS (orgalerts' member rule takes every management event with the sts source).
    "sts": _Service(
        "aws.sts",
        "sts.amazonaws.com",
        (),
        None,
        only=frozenset({"AssumeRoot", "GetFederationToken"}),
        read_only_events=frozenset({"AssumeRoot"}),
    ),
}

# Services whose API speaks the query protocol (Action=... in a form body) rather than JSON.
_QUERY_PROTOCOL = frozenset({"iam", "sns", "sts"})

# Parameters that are free-form maps: their keys are the user's, not API member names to re-case.
_VERBATIM_MEMBERS = frozenset({"InputPathsMap", "HeaderParameters", "QueryStringParameters"})

Router = Callable[[str, str, str, Mapping[str, Any]], None]


@dataclass
class ApiCall:
    """One recognised API request, before moto has answered it."""

    service: str
    operation: str
    region: str
    access_key_id: str
    account_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    user_agent: str = ""
    raw_body: bytes = b""


# --------------------------------------------------------------------------------------------------
# Recognising calls


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put an equivalent stream back, so moto can read it again."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit():
        body = stream.read(int(length_text)) if int(length_text) else b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _recase(value: Any) -> Any:
    """API member names -> CloudTrail's lowerCamelCase, recursively; secrets hidden."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if _SECRET_PARAM.search(k):
                out[_lower_camel(k)] = HIDDEN
            elif k in _VERBATIM_MEMBERS:
                out[_lower_camel(k)] = v
            else:
                out[_lower_camel(k)] = _recase(v)
        return out
    if isinstance(value, list):
        return [_recase(v) for v in value]
    return value


def query_parameters(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query-protocol pairs (`Tags.member.1.Key=k`) -> nested structure (`{"Tags": [{"Key": "k"}]}`)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        if key in ("Action", "Version"):
            continue
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # a scalar and a structure under one name: keep the first
                break
        else:
            node[parts[-1]] = value

    def collapse(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {k: collapse(v) for k, v in node.items()}
        # "member" (lists) and "entry" (maps) are wire wrappers; numbered keys are list positions.
        if set(node) == {"member"} and isinstance(node["member"], list):
            return node["member"]
        if set(node) == {"entry"} and isinstance(node["entry"], list):
            return {e.get("key"): e.get("value") for e in node["entry"] if isinstance(e, dict)}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node

    result = collapse(root)
    return result if isinstance(result, dict) else {}


def _current_account(environ: Mapping[str, Any], access_key_id: str) -> str:
    # Same order as moto's BaseResponse.get_current_account, so the event names the account moto
    # actually acted in.
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return str(header)
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key_id))


def recognise(environ: dict[str, Any]) -> ApiCall | None:
    """The emulated API call this request is, or None. Reads (and rewinds) the body only if it is one."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    m = _CREDENTIAL.search(auth)
    if m is None or m.group(3) not in _SERVICES:
        return None
    access_key_id, region, service = m.group(1), m.group(2), m.group(3)
    body = _read_body(environ)
    if service in _QUERY_PROTOCOL:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        pairs += parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        operation = next((v for k, v in pairs if k == "Action"), "")
        params: dict[str, Any] = query_parameters(pairs)
    else:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.rsplit(".", 1)[-1]
        loaded = json.loads(body) if body.strip() else {}
        params = loaded if isinstance(loaded, dict) else {}
    only = _SERVICES[service].only
    if not operation or (only is not None and operation not in only):
        return None
    return ApiCall(
        service=service,
        operation=operation,
        region=region,
        access_key_id=access_key_id,
        account_id=_current_account(environ, access_key_id),
        parameters=params,
        user_agent=str(environ.get("HTTP_USER_AGENT", "")),
        raw_body=body,
    )


# --------------------------------------------------------------------------------------------------
# Building events


def user_identity(access_key_id: str, account_id: str) -> dict[str, Any]:
    """CloudTrail's userIdentity for the caller, from moto's STS (assumed roles) and IAM (users).

    A key moto did not issue (such as the sandbox's "testing") gets the identity moto's
    GetCallerIdentity reports for it (arn:aws:sts::ACCOUNT:user/moto), so the two agree.
    """
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    role = sts_backends[account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
    if role is not None:
        role_id = str(role.user_id).split(":", 1)[0]
        return {
            "type": "AssumedRole",
            "principalId": role.user_id,
            "arn": role.arn,
            "accountId": account_id,
            "accessKeyId": REDACTED_ACCESS_KEY_ID,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role.role_arn,
                    "accountId": account_id,
                    "userName": str(role.role_arn).rsplit("/", 1)[-1],
                },
                "attributes": {"creationDate": _iso(datetime.now(timezone.utc)), "mfaAuthenticated": "false"},
            },
        }
    user = iam_backends[account_id]["global"].get_user_from_access_key_id(access_key_id)
    if user is not None:
        return {
            "type": "IAMUser",
            "principalId": user.id,
            "arn": user.arn,
            "accountId": account_id,
            "accessKeyId": REDACTED_ACCESS_KEY_ID,
            "userName": user.name,
        }
    return {
        "type": "IAMUser",
        "principalId": "AKIAIOSFODNN7EXAMPLE",
        "arn": f"arn:aws:sts::{account_id}:user/moto",
        "accountId": account_id,
        "accessKeyId": REDACTED_ACCESS_KEY_ID,
        "userName": "moto",
    }


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_event(
    call: ApiCall, request_id: str | None = None, now: datetime | None = None
) -> tuple[str, str, dict[str, Any]]:
    """(account, region of the receiving bus, event) for a successful call, as EventBridge delivers it."""
    svc = _SERVICES[call.service]
    region = svc.global_region or call.region
    when = _iso(now or datetime.now(timezone.utc))
    params = _recase(call.parameters)
    detail = {
        "eventVersion": "1.08",
        "userIdentity": user_identity(call.access_key_id, call.account_id),
        "eventTime": when,
        "eventSource": svc.event_source,
        "eventName": call.operation,
        "awsRegion": region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": call.user_agent,
        "requestParameters": params or None,
        "responseElements": None,
        "requestID": request_id or str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": call.operation.startswith(svc.read_only_prefixes) or call.operation in svc.read_only_events,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": call.account_id,
        "eventCategory": "Management",
    }
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": eventflow.CLOUDTRAIL_DETAIL_TYPE,
        "source": svc.source,
        "account": call.account_id,
        "time": when,
        "region": region,
        "resources": [],
        "detail": detail,
    }
    return call.account_id, region, event


# --------------------------------------------------------------------------------------------------
# The middleware


def _default_router(account_id: str, region: str, bus: str, event: Mapping[str, Any]) -> None:
    eventflow.deliver(account_id, region, bus, event)


class CloudTrailMiddleware:
    """WSGI middleware: passes every request to moto, then emits the CloudTrail event of the call."""

    def __init__(self, app: Callable[..., Iterable[bytes]], router: Router = _default_router) -> None:
        self.app = app
        self.router = router

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            call = recognise(environ)
        except Exception:
            log.exception("sandbox CloudTrail emulation: could not read the request; passed through")
            call = None
        if call is None:
            return self.app(environ, start_response)
        if call.service == "events" and call.operation == "PutEvents":
            handled = self._put_events(call, start_response)
            if handled is not None:
                return handled
        if call.service == "sts" and call.operation == "AssumeRoot":
            return self._assume_root(call, start_response)

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        # Buffer the (small) API response so the event is delivered before the client gets its answer.
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        try:
            if str(captured.get("status", "")).startswith("2"):
                headers = {k.lower(): v for k, v in captured.get("headers", [])}
                request_id = headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")
                account, region, event = build_event(call, request_id)
                self.router(account, region, "default", event)
        except Exception:
            log.exception("sandbox CloudTrail emulation: no event for %s:%s", call.service, call.operation)
        return [body]

    def _put_events(self, call: ApiCall, start_response: Callable[..., Any]) -> list[bytes] | None:
        """Answer PutEvents with the sandbox's router; None lets moto answer (e.g. a validation error)."""
        try:
            entries = call.parameters.get("Entries")
            if not isinstance(entries, list) or not entries or len(entries) > eventflow.MAX_PUT_EVENTS_ENTRIES:
                return None
            response = eventflow.put_events(call.account_id, call.region, entries)
        except Exception:
            log.exception("sandbox event router: PutEvents failed; moto answers instead")
            return None
        body = json.dumps(response).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [body]

    def _assume_root(self, call: ApiCall, start_response: Callable[..., Any]) -> list[bytes]:
        """SANDBOX-ONLY: moto 5.2.5 has no AssumeRoot. The sandbox answers it with the response shape of
        https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoot.html (placeholder credentials that
        no sandbox API accepts) and emits the CloudTrail event, so a test can raise the sts alert."""
        target = str(call.parameters.get("TargetPrincipal", ""))
        task = call.parameters.get("TaskPolicyArn")
        request_id = str(uuid.uuid4())
        if not re.fullmatch(r"[0-9]{12}", target) or not isinstance(task, dict) or not task.get("arn"):
            body = _sts_error("ValidationError", "TargetPrincipal (an account id) and TaskPolicyArn are required")
            start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        expiration = _iso(datetime.now(timezone.utc))
        body = (
            '<AssumeRootResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRootResult><Credentials>'
            "<AccessKeyId>ASIASANDBOXROOT00000</AccessKeyId><SecretAccessKey>sandbox-placeholder</SecretAccessKey>"
            f"<SessionToken>sandbox-placeholder</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
            f"</AssumeRootResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</AssumeRootResponse>"
        ).encode()
        try:
            account, region, event = build_event(call, request_id)
            self.router(account, region, "default", event)
        except Exception:
            log.exception("sandbox CloudTrail emulation: no event for sts:AssumeRoot")
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]


def _sts_error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}'
        f"</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


# --------------------------------------------------------------------------------------------------
# Root sign-in: SANDBOX-ONLY facility


SIGNIN_DETAIL_TYPE = "AWS Console Sign In via CloudTrail"


def root_sign_in_event(account_id: str, *, success: bool = True, mfa: bool = False) -> dict[str, Any]:
    """The event EventBridge delivers for a root user's console sign-in, shaped as AWS documents it
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html):
    source aws.signin, detail-type "AWS Console Sign In via CloudTrail", eventType AwsConsoleSignIn,
    userIdentity.type Root, responseElements.ConsoleLogin Success/Failure, in us-east-1 (the root user signs
    in through the global endpoint)."""
    when = _iso(datetime.now(timezone.utc))
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "Root",
            "principalId": account_id,
            "arn": f"arn:aws:iam::{account_id}:root",
            "accountId": account_id,
            "accessKeyId": "",
        },
        "eventTime": when,
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "orgalerts-sandbox",
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if success else "Failure"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if mfa else "No",
        },
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if not success:
        detail["errorMessage"] = "Failed authentication"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": SIGNIN_DETAIL_TYPE,
        "source": "aws.signin",
        "account": account_id,
        "time": when,
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def emit_root_sign_in(
    account_id: str, *, success: bool = True, mfa: bool = False, router: Router = _default_router
) -> dict[str, Any]:
    """SANDBOX-ONLY: a root console sign-in cannot be made through an API, so this emits the CloudTrail event
    AWS would deliver for one to the account's default bus in us-east-1, as if the root user had signed in.
    Returns the event."""
    event = root_sign_in_event(account_id, success=success, mfa=mfa)
    router(account_id, "us-east-1", "default", event)
    return event
