"""IAM policy evaluation for the strict sandbox: identity policies, explicit Deny first.

Owns: `evaluate(documents, requests, context)` and the matching rules it uses, following the IAM
policy evaluation logic (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
a request is allowed only if some statement allows it and none denies it; an explicit Deny wins.

* Action / NotAction: `*` and `?` wildcards, case-insensitive
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
* Resource / NotResource: `*` and `?` wildcards, case-sensitive
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
* Principal / NotPrincipal (trust policies only; see `principal_matches`).
* Condition: String(Not)Equals, String(Not)Like, StringEqualsIgnoreCase, Arn(Not)Equals/Like, Bool,
  Null, each optionally ...IfExists, with ForAnyValue/ForAllValues prefixes not supported. An
  operator this module does not know makes an Allow statement NOT match and a Deny statement match:
  the sandbox fails closed rather than granting what AWS might refuse.

Not modelled: permission boundaries, session policies, SCPs/RCPs, resource-based policies; policy
variables (`${aws:username}`) are compared literally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # as AWS words it: "with an explicit deny ...", "because no identity-based policy allows ..."
    action: str = ""
    resource: str = ""


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(glob: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(glob, ignore_case).match(value) is not None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def load_document(raw: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy document from moto's storage (a JSON string, sometimes URL-encoded) or a mapping."""
    if isinstance(raw, Mapping):
        return dict(raw)
    text = raw
    if text.lstrip().startswith("%7B") or text.lstrip().startswith("%7b"):
        from urllib.parse import unquote

        text = unquote(text)
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else {}


def statements(document: Document) -> list[Mapping[str, Any]]:
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _matches_any(patterns: Iterable[Any], value: str, ignore_case: bool) -> bool:
    return any(isinstance(p, str) and wildcard_match(p, value, ignore_case) for p in patterns)


def action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not _matches_any(as_list(statement["NotAction"]), action, True)
    return _matches_any(as_list(statement.get("Action")), action, True)


def resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not _matches_any(as_list(statement["NotResource"]), resource, False)
    if "Resource" not in statement:  # trust policies have no Resource element
        return True
    return _matches_any(as_list(statement.get("Resource")), resource, False)


def _str_eq(a: str, b: str) -> bool:
    return a == b


def _str_eq_ci(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _like(value: str, pattern: str) -> bool:
    return wildcard_match(pattern, value)


def _bool(value: str, expected: str) -> bool:
    return value.lower() == expected.lower()


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # operator -> (value/pattern test, negated)
    "StringEquals": (_str_eq, False),
    "StringNotEquals": (_str_eq, True),
    "StringEqualsIgnoreCase": (_str_eq_ci, False),
    "StringNotEqualsIgnoreCase": (_str_eq_ci, True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "ArnEquals": (_like, False),
    "ArnLike": (_like, False),
    "ArnNotEquals": (_like, True),
    "ArnNotLike": (_like, True),
    "Bool": (_bool, False),
}


def _condition_key_holds(operator: str, key: str, expected: Any, context: Mapping[str, Sequence[str]]) -> bool | None:
    """True/False for a known operator; None when the operator is unknown."""
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    values = context.get(key.lower())
    if base == "Null":
        return (values is None) == _bool(str(expected), "true") if not isinstance(expected, list) else None
    if base not in _OPERATORS:
        return None
    test, negated = _OPERATORS[base]
    if values is None:
        return if_exists or negated
    hit = any(test(str(v), str(e)) for v in values for e in as_list(expected))
    return not hit if negated else hit


def conditions_hold(statement: Mapping[str, Any], context: Mapping[str, Sequence[str]], effect: str) -> bool:
    """Whether every condition of the statement holds (unknown operators: fail closed per effect)."""
    block = statement.get("Condition") or {}
    if not isinstance(block, Mapping):
        return effect == "Deny"
    for operator, keys in block.items():
        if not isinstance(keys, Mapping):
            return effect == "Deny"
        for key, expected in keys.items():
            held = _condition_key_holds(str(operator), str(key), expected, context)
            if held is None:
                return effect == "Deny"
            if not held:
                return False
    return True


def evaluate(
    documents: Iterable[Document],
    requests: Sequence[tuple[str, str]],
    context: Mapping[str, Sequence[str]],
) -> Decision:
    """Whether every (action, resource) pair in `requests` is allowed by `documents`."""
    docs = list(documents)
    for action, resource in requests:
        allowed = False
        for document in docs:
            for statement in statements(document):
                effect = str(statement.get("Effect", ""))
                if not (action_matches(statement, action) and resource_matches(statement, resource)):
                    continue
                if not conditions_hold(statement, context, effect):
                    continue
                if effect == "Deny":
                    return Decision(False, "with an explicit deny in an identity-based policy", action, resource)
                if effect == "Allow":
                    allowed = True
        if not allowed:
            return Decision(False, f"because no identity-based policy allows the {action} action", action, resource)
    return Decision(True, "allowed")
