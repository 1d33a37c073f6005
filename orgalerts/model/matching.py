"""An EventBridge event-pattern matcher, written from AWS's documentation. Pure.

Owns: `matches(pattern, event)`, used by `orgalerts replay` (and tests) to decide which rules an event would
trigger without an AWS account. The sandbox routes events with moto's matcher instead, so the corpus check
(replay vs sandbox) compares two independent implementations.

Semantics, each from https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
(and eb-create-pattern-operators.html, eb-event-patterns.html):
- a pattern is a JSON object; every key must be matched (AND); the values listed for a field are ORed;
  "For a pattern to match an event, the event must contain all the field names listed in the event pattern";
- a field's value in the event is its leaf values: a scalar, or the elements of an array ("If the value in the
  event is an array, then the event pattern matches if the intersection of the event pattern array and the
  event array is non-empty"); objects are intermediate nodes, never values ("Exists matching only works on
  leaf nodes. It does not work on intermediate nodes");
- exact values: strings are case-sensitive and compared as they are; numbers compare as numbers; `null`
  matches a JSON null ("null-value matching"), an empty string only an empty string;
- `prefix`, `suffix` (optionally `{"equals-ignore-case": ...}`), `equals-ignore-case`, `wildcard` (`*` any
  run of characters, `\\*` a literal star), `numeric` (ranges of `<`, `<=`, `=`, `>=`, `>`), `cidr`;
- `anything-but`: a value, a list of values, or `{"prefix"|"suffix"|"wildcard"|"equals-ignore-case": ...}`;
  it asks about a value, so an absent field does not match it (only `{"exists": false}` matches absence);
- `exists`: true when the field has a leaf value (null counts: it is a value), false when it has none;
- `$or`: a list of patterns, at least one of which must match; it may sit beside other fields.
An operator this module does not know raises ValueError (better than a silent wrong answer).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_NO_VALUE: list[Any] = []


def _leaves(node: Any, path: list[str]) -> list[Any]:
    """The leaf values of the event at `path` (arrays are flattened; objects on the way are walked through)."""
    if not path:
        if isinstance(node, list):
            return [v for item in node for v in _leaves(item, [])]
        return [] if isinstance(node, dict) else [node]
    if isinstance(node, list):
        return [v for item in node for v in _leaves(item, path)]
    if not isinstance(node, dict) or path[0] not in node:
        return _NO_VALUE
    return _leaves(node[path[0]], path[1:])


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether EventBridge would deliver `event` to a rule with `pattern`."""
    return _object_matches(pattern, event, [])


def _object_matches(pattern: dict[str, Any], event: dict[str, Any], path: list[str]) -> bool:
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or not any(_object_matches(p, event, path) for p in value):
                return False
        elif isinstance(value, dict):
            if not _object_matches(value, event, [*path, key]):
                return False
        elif isinstance(value, list):
            if not _field_matches(value, _leaves(event, [*path, key])):
                return False
        else:
            raise ValueError(f"pattern field {'.'.join([*path, key])} must be an object or an array")
    return True


def _field_matches(filters: list[Any], values: list[Any]) -> bool:
    for f in filters:
        if isinstance(f, dict):
            if _operator_matches(f, values):
                return True
        elif any(_equal(f, v) for v in values):
            return True
    return False


def _equal(wanted: Any, value: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(value, bool) or wanted is None or value is None:
        return wanted is value or (wanted == value and type(wanted) is type(value))
    if isinstance(wanted, (int, float)) and isinstance(value, (int, float)):
        return float(wanted) == float(value)
    return type(wanted) is type(value) and bool(wanted == value)


def _operator_matches(f: dict[str, Any], values: list[Any]) -> bool:
    if len(f) != 1:
        raise ValueError(f"a filter object has exactly one operator, found {sorted(f)}")
    ((name, arg),) = f.items()
    if name == "exists":
        return bool(values) == bool(arg)
    if name == "anything-but":
        return any(not _anything_but_excludes(arg, v) for v in values)
    return any(_value_operator(name, arg, v) for v in values)


def _anything_but_excludes(arg: Any, value: Any) -> bool:
    """Whether `value` is one of the things `anything-but` lists (then it does not match)."""
    if isinstance(arg, dict):
        ((name, inner),) = arg.items()
        options = inner if isinstance(inner, list) else [inner]
        return any(_value_operator(name, option, value) for option in options)
    options = arg if isinstance(arg, list) else [arg]
    return any(_equal(option, value) for option in options)


def _value_operator(name: str, arg: Any, value: Any) -> bool:
    if name in ("prefix", "suffix"):
        if isinstance(arg, dict):
            ((mode, text),) = arg.items()
            if mode != "equals-ignore-case":
                raise ValueError(f"unknown {name} option {mode}")
            return isinstance(value, str) and _affix(name, value.lower(), str(text).lower())
        return isinstance(value, str) and _affix(name, value, str(arg))
    if name == "equals-ignore-case":
        options = arg if isinstance(arg, list) else [arg]
        return isinstance(value, str) and any(value.lower() == str(o).lower() for o in options)
    if name == "wildcard":
        options = arg if isinstance(arg, list) else [arg]
        return isinstance(value, str) and any(_wildcard(str(o)).fullmatch(value) is not None for o in options)
    if name == "numeric":
        return _numeric(arg, value)
    if name == "cidr":
        return _cidr(str(arg), value)
    raise ValueError(f"unknown event pattern operator {name!r}")


def _affix(name: str, value: str, text: str) -> bool:
    return value.startswith(text) if name == "prefix" else value.endswith(text)


def _wildcard(text: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "*\\":
            out.append(re.escape(text[i + 1]))
            i += 2
        elif text[i] == "*":
            out.append(".*")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def _numeric(arg: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    pairs = list(zip(arg[::2], arg[1::2], strict=True))
    return all(_COMPARE[op](float(value), float(bound)) for op, bound in pairs)


def _cidr(network: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
