"""Reading an API request the same way whether it arrives over HTTP (WSGI) or in-process (botocore).

Owns: `StrictCall` (service, operation, region, caller's access key and account, parameters, wire
protocol) and the two constructors `call_from_environ` (the sandbox server's WSGI environ) and
`call_from_request` (a botocore `AWSPreparedRequest`, as a `before-send` hook sees it). The service
and region come from the SigV4 credential scope; the parameters from the query/JSON body, reusing the
query-protocol decoding of the CloudTrail emulation so both read requests identically.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from orgalerts.sandbox.cloudtrail import _read_body, query_parameters

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")

# Services whose requests carry Action=... (query protocol). SQS speaks JSON with current botocore,
# but older clients (and the AWS CLI v1) still send the query protocol: both are recognised.
QUERY_SERVICES = frozenset({"iam", "sts", "sns", "sqs", "cloudformation"})


@dataclass
class StrictCall:
    """One API request, before moto answers it."""

    service: str
    operation: str
    region: str
    access_key_id: str
    account_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    protocol: str = "json"  # "json", "query" or "rest-xml"
    path: str = "/"


def account_for_key(access_key_id: str, header_account: str | None = None) -> str:
    """The account moto acts in for this key (same order as moto's BaseResponse.get_current_account)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if header_account:
        return header_account
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key_id))


def _s3_operation(method: str, path: str, query: Mapping[str, str]) -> str:
    """The S3 operation of a path-style request (the sandbox's endpoint is an IP: always path-style)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "ListBuckets"
    sub = {"policy": "BucketPolicy", "publicAccessBlock": "PublicAccessBlock", "tagging": "BucketTagging"}
    for key, noun in sub.items():
        if key in query:
            if len(parts) > 1 and key == "tagging":
                noun = "ObjectTagging"
            verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method.title())
            return f"{verb}{noun}" if noun != "PublicAccessBlock" else f"{verb}BucketPublicAccessBlock"
    if len(parts) == 1:
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, "ListObjects")
    return {"PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}.get(method, "GetObject")


_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3[.-]")


def _path_style(host: str, path: str) -> str:
    """A virtual-hosted S3 request (bucket in the host name, as boto3 sends to AWS and in-process moto sees it)
    as the path-style request it is equivalent to, so the bucket is found the same way."""
    m = _VIRTUAL_HOST.match(host.split(":")[0])
    return f"/{m.group('bucket')}{path}" if m else path


def parse_call(
    headers: Mapping[str, str], method: str, url_path: str, query_string: str, body: bytes
) -> StrictCall | None:
    """The call a signed request makes, or None if it is not a SigV4-signed AWS API call."""
    lowered = {k.lower(): v for k, v in headers.items()}
    query_pairs = parse_qsl(query_string, keep_blank_values=True)
    # SigV4 in the Authorization header, or in the query string of a presigned URL (X-Amz-Credential).
    presigned = next((v for k, v in query_pairs if k == "X-Amz-Credential"), "")
    m = _CREDENTIAL.search(lowered.get("authorization", "") or f"Credential={presigned}")
    sigv2_key = next((v for k, v in query_pairs if k == "AWSAccessKeyId"), "")
    if m is not None:
        access_key_id, region, service = m.group(1), m.group(2), m.group(3)
    elif sigv2_key:  # an S3 presigned URL signed with SigV2 (boto3's default for S3 presigning)
        access_key_id, region, service = sigv2_key, "us-east-1", "s3"
    else:
        return None
    target = lowered.get("x-amz-target", "")
    params: dict[str, Any]
    if service == "s3":
        url_path = _path_style(lowered.get("host", ""), url_path)
        operation, protocol = _s3_operation(method, url_path, dict(query_pairs)), "rest-xml"
        parts = [p for p in url_path.split("/") if p]
        params = {"Bucket": parts[0] if parts else "", "Key": "/".join(parts[1:])}
    elif target:
        operation, protocol = target.rsplit(".", 1)[-1], "json"
        loaded = json.loads(body) if body.strip() else {}
        params = loaded if isinstance(loaded, dict) else {}
    else:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True) + query_pairs
        operation, protocol = next((v for k, v in pairs if k == "Action"), ""), "query"
        params = query_parameters(pairs)
    if not operation:
        return None
    account = account_for_key(access_key_id, lowered.get("x-moto-account-id"))
    return StrictCall(service, operation, region, access_key_id, account, params, protocol, url_path)


def call_from_environ(environ: dict[str, Any]) -> StrictCall | None:
    """The call of a WSGI request. Reads the body and puts an equivalent stream back for moto."""
    headers = {k[5:].replace("_", "-"): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    query = str(environ.get("QUERY_STRING", ""))
    if "HTTP_AUTHORIZATION" not in environ and "X-Amz-Credential" not in query and "AWSAccessKeyId" not in query:
        return None
    body = _read_body(environ)
    path = str(environ.get("PATH_INFO", "/"))
    return parse_call(
        headers, str(environ.get("REQUEST_METHOD", "GET")), path, str(environ.get("QUERY_STRING", "")), body
    )


def call_from_request(request: Any) -> StrictCall | None:
    """The call of a botocore AWSPreparedRequest (what a `before-send` handler receives)."""
    body = request.body
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:  # a file-like body (uploads): no parameters we need live there
        raw = b""
    headers = {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
    url = urlsplit(str(request.url))
    if not any(k.lower() == "host" for k in headers):  # botocore adds Host when sending: take it from the URL
        headers["Host"] = url.netloc
    return parse_call(headers, str(request.method), url.path or "/", url.query, raw)
