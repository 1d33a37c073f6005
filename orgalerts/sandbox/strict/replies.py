"""What a strict refusal (or a strict stand-in answer) looks like on the wire, per service protocol.

Owns: `Refusal` (an AWS error: code, message, HTTP status, extra modeled fields), `Reply` (status,
headers, body) and `render`, which shapes a refusal the way the real service does so that botocore
parses the same `Error.Code` as against AWS:

* JSON services (events, organizations, cloudtrail): `{"__type": CODE, "message": ...}`; botocore takes
  the code from `__type` (after any `#`).
* SQS (JSON, "awsQueryCompatible"): `__type` is the JSON shape name and the header
  `x-amzn-query-error: CODE;Sender` carries the query-era code, which botocore reports as Error.Code
  (botocore/parsers.py `_do_query_compatible_error_parse`): e.g. `AccessDenied`,
  `AWS.SimpleQueueService.QueueDeletedRecently`.
* Query services (iam, sts, sns, and SQS when a client speaks query): `<ErrorResponse><Error><Code>`.
* S3 (rest-xml): `<Error><Code>AccessDenied</Code>...`.

Also `aws_response`, the same reply as a botocore `AWSResponse` for in-process (before-send) use.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

# The access-denied code each service answers with (query services: AccessDenied; JSON: ...Exception).
ACCESS_DENIED = {
    "iam": "AccessDenied",
    "sts": "AccessDenied",
    "sns": "AuthorizationError",
    "sqs": "AccessDenied",
    "s3": "AccessDenied",
    "events": "AccessDeniedException",
    "organizations": "AccessDeniedException",
    "cloudtrail": "AccessDeniedException",
    "dynamodb": "AccessDeniedException",  # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html
}
# SNS reports an IAM denial as AuthorizationError (HTTP 403): botocore's SNS model declares it as the
# AuthorizationErrorException shape with code "AuthorizationError"; SNS has no AccessDenied code.
# https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors

# JSON shape names of SQS errors whose query-era code differs (botocore's sqs service-2.json).
_SQS_JSON_TYPES = {
    "AccessDenied": "com.amazon.coral.service#AccessDeniedException",
    "AWS.SimpleQueueService.QueueDeletedRecently": "com.amazonaws.sqs#QueueDeletedRecently",
}

_QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
}


@dataclass(frozen=True)
class Refusal:
    """An AWS error answer."""

    code: str
    message: str
    status: int = 400
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A complete HTTP answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def access_denied(service: str, message: str) -> Refusal:
    return Refusal(ACCESS_DENIED.get(service, "AccessDenied"), message, 403)


def _json_reply(refusal: Refusal, service: str) -> Reply:
    request_id = str(uuid.uuid4())
    headers = [("Content-Type", "application/x-amz-json-1.1" if service != "sqs" else "application/x-amz-json-1.0")]
    type_name = refusal.code
    if service == "sqs":
        type_name = _SQS_JSON_TYPES.get(refusal.code, f"com.amazonaws.sqs#{refusal.code}")
        headers.append(("x-amzn-query-error", f"{refusal.code};Sender"))
    body = json.dumps({"__type": type_name, "message": refusal.message, **refusal.extra}).encode()
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return Reply(refusal.status, headers, body)


def _query_reply(refusal: Refusal, service: str) -> Reply:
    namespace = _QUERY_NAMESPACES.get(service, "")
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{escape(refusal.code)}</Code>'
        f"<Message>{escape(refusal.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return Reply(refusal.status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body)


def _s3_reply(refusal: Refusal) -> Reply:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(refusal.code)}</Code>'
        f"<Message>{escape(refusal.message)}</Message><RequestId>{uuid.uuid4().hex[:16]}</RequestId></Error>"
    ).encode()
    return Reply(refusal.status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body)


def render(refusal: Refusal, service: str, protocol: str) -> Reply:
    """The refusal as the service would send it, for a request that spoke `protocol`."""
    if protocol == "rest-xml":
        return _s3_reply(refusal)
    if protocol == "query":
        return _query_reply(refusal, service)
    return _json_reply(refusal, service)


class _RawBody:
    """The minimal urllib3-like raw response botocore's AWSResponse reads from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def aws_response(reply: Reply, url: str) -> Any:
    """`reply` as a botocore AWSResponse (what a before-send handler returns to skip the HTTP call)."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    headers = HTTPHeaders()
    for name, value in reply.headers:
        headers[name] = value
    return AWSResponse(url, reply.status, headers, _RawBody(reply.body))
