"""Where moto's behaviour differs from AWS's in a way orgalerts relies on, the sandbox behaves as AWS does.

Owns: patches to moto's backends, applied once per process (`apply_aws_semantics`), each with the AWS
documentation it follows. Always on (not only in strict mode): these are facts of the API, not checks.

- EventBridge `PutPermission` with `Policy` REPLACES the bus's resource policy (AWS); moto merges the new
  statements into the old ones. https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html
  ("Policy: A JSON string that describes the permission policy statement. You can include a Policy parameter
  in the request instead of using the StatementId, Action, Principal, or Condition parameters.") and
  shared/DESIGN.md "Learned since version one".
- DynamoDB conditional writes (PutItem, UpdateItem, DeleteItem with a ConditionExpression) are atomic: the
  condition is evaluated against the item as stored and the write happens only if it holds, with no other
  write in between (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html;
  the run lock relies on it). moto checks, then writes, with no lock: two server threads may both pass the
  check. Item writes are serialized here.
- CloudFormation: the resource types and properties orgalerts' templates use that moto lacks
  (`orgalerts.sandbox.cloudformation`).
- EventBridge pattern matching: "Exists matching only works on leaf nodes. It does not work on intermediate
  nodes" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html, "Exists
  matching"); EventBridge's matcher flattens an event into the paths of its leaf values (aws/event-ruler), so an
  object is never a value of its own path, empty or not. moto agrees for a non-empty object, but keeps an EMPTY
  object as a leaf value: `{"exists": false}` then fails on `"requestParameters": {}` and `{"exists": true}`
  holds. The central routes split on exactly that path (model/routes.py), so moto's flattening is made to drop
  empty objects, as model/matching.py does.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import EventPattern, EventsBackend

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


_ITEM_WRITES = threading.RLock()


def _serialized(method: Any) -> Any:
    def write(*args: Any, **kwargs: Any) -> Any:
        with _ITEM_WRITES:
            return method(*args, **kwargs)

    return write


def _flatten_leaves(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
    """moto's EventPattern._flatten_dict, except that an empty object is an intermediate node without leaves."""
    if result is None:
        result = {}
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                _flatten_leaves(value, path, result)
            else:
                result[path] = value
    return result


def apply_aws_semantics() -> None:
    """Patch moto once in this process. Idempotent and thread-safe."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        EventsBackend._put_permission_from_policy = staticmethod(_replace_policy)  # type: ignore[method-assign,assignment]
        EventPattern._flatten_dict = staticmethod(_flatten_leaves)  # type: ignore[method-assign,assignment]
        for name in ("put_item", "update_item", "delete_item"):
            setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
        from orgalerts.sandbox import cloudformation

        cloudformation.install()  # the CloudFormation resource types moto lacks (orgalerts export cloudformation)
        _APPLIED = True
