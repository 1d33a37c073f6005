"""Strict mode for the sandbox server: a WSGI middleware in front of the CloudTrail emulation and moto.

Owns: `StrictMiddleware`. A refused request never reaches moto (nor the CloudTrail emulation, so no
event is delivered for it); a stand-in reply is answered directly; anything else goes through and
`StrictEngine.after` may rewrite the answer. A failure inside the strict rules is logged and the
request is refused with HTTP 500 (InternalFailure) rather than silently allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from orgalerts.sandbox.strict.engine import StrictEngine
from orgalerts.sandbox.strict.replies import Refusal, Reply, render
from orgalerts.sandbox.strict.request import call_from_environ

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}


def _send(reply: Reply, start_response: Callable[..., Any]) -> list[bytes]:
    start_response(f"{reply.status} {_REASONS.get(reply.status, 'Error')}", reply.headers)
    return [reply.body]


class StrictMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]], engine: StrictEngine) -> None:
        self.app = app
        self.engine = engine

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        call = call_from_environ(environ)
        if call is None:
            return self.app(environ, start_response)
        try:
            outcome = self.engine.before(call)
        except Exception:
            log.exception("strict sandbox: rule evaluation failed for %s:%s", call.service, call.operation)
            outcome = Refusal("InternalFailure", "strict sandbox rule evaluation failed; see the server log", 500)
        if isinstance(outcome, Refusal):
            return _send(render(outcome, call.service, call.protocol), start_response)
        if isinstance(outcome, Reply):
            return _send(outcome, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None  # the body is returned, not written

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status = int(str(captured.get("status", "500")).split(" ", 1)[0])
        new_body = self.engine.after(call, status, body)
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        start_response(str(captured.get("status", "500")), [*headers, ("Content-Length", str(len(new_body)))])
        return [new_body]
