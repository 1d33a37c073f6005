"""Where moto's behaviour differs from AWS's in a way orgalerts relies on, the sandbox behaves as AWS does.

Owns: patches to moto's backends, applied once per process (`apply_aws_semantics`), each with the AWS
documentation it follows. Always on (not only in strict mode): these are facts of the API, not checks.

- EventBridge `PutPermission` with `Policy` REPLACES the bus's resource policy (AWS); moto merges the new
  statements into the old ones. https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html
  ("Policy: A JSON string that describes the permission policy statement. You can include a Policy parameter
  in the request instead of using the StatementId, Action, Principal, or Condition parameters.") and
  shared/DESIGN.md "Learned since version one".
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.events.models import EventsBackend

_LOCK = threading.Lock()
_APPLIED = False


def _replace_policy(event_bus: Any, policy: str) -> None:
    from moto.core.exceptions import JsonRESTError

    try:
        document = json.loads(policy)
    except json.JSONDecodeError:
        raise JsonRESTError("ValidationException", "This policy contains invalid Json") from None
    event_bus.remove_statements()
    event_bus.add_policy(document)


def apply_aws_semantics() -> None:
    """Patch moto once in this process. Idempotent and thread-safe."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        EventsBackend._put_permission_from_policy = staticmethod(_replace_policy)  # type: ignore[method-assign,assignment]
        _APPLIED = True
