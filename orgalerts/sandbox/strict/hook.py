"""Strict mode in-process: a botocore before-send hook for moto's `mock_aws`.

Owns: `send_hook(engine)`, a function with the signature of orgalerts' `Gateway.add_send_hook`
(`hook(account_id, service, operation, request) -> AWSResponse | None`), and `register(client, engine)`
for a bare boto3 client. The hook parses the request exactly as the server middleware does (same
`parse_call`: SigV4 credential scope, query/JSON body), runs `StrictEngine.before`, and returns the
refusal (or stand-in reply) as an AWSResponse, which botocore uses instead of sending the request.
botocore calls every before-send handler (botocore/endpoint.py `_do_get_response` uses `emit`, then
the first non-None response), so moto's stub would still execute a refused call; the hook therefore
re-points the refused request at an unroutable URL that no moto backend matches. The caller's account
is derived from the access key as moto does; the gateway's `account_id` argument is not used for that.

Limit: a before-send hook cannot rewrite moto's answer, so `StrictEngine.after` does not run
in-process (only EnablePolicyType's own answer differs; see organizations.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orgalerts.sandbox.strict.engine import StrictEngine
from orgalerts.sandbox.strict.replies import Refusal, aws_response, render
from orgalerts.sandbox.strict.request import call_from_request

SendHook = Callable[[str, str, str, Any], Any]
UNROUTABLE_URL = "https://orgalerts-strict-sandbox.invalid/refused"


def send_hook(engine: StrictEngine | None = None) -> SendHook:
    """A Gateway send hook applying every strict rule that can be applied before the call."""
    strict = engine or StrictEngine()

    def hook(account_id: str, service: str, operation: str, request: Any) -> Any:
        call = call_from_request(request)
        if call is None:
            return None
        if operation and call.service != "s3":
            call.operation = operation  # botocore knows the operation name; trust it over parsing
        outcome = strict.before(call)
        if outcome is None:
            return None
        reply = render(outcome, call.service, call.protocol) if isinstance(outcome, Refusal) else outcome
        response = aws_response(reply, str(request.url))
        # botocore emits before-send to every handler and takes the first response, so moto's stub
        # (another before-send handler) would still execute the refused call. Point the request where
        # moto matches nothing: the call is then answered by this response only, as over HTTP.
        request.url = UNROUTABLE_URL
        return response

    return hook


def register(client: Any, engine: StrictEngine | None = None) -> None:
    """Apply strict mode to one boto3 client (outside the Gateway), e.g. in a test."""
    hook = send_hook(engine)

    def handler(request: Any, event_name: str = "", **_: Any) -> Any:
        return hook("", client.meta.service_model.service_name, event_name.rsplit(".", 1)[-1], request)

    client.meta.events.register_first("before-send", handler)
