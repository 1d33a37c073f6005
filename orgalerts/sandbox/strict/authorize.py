"""Strict rule 1 and 3: IAM authorization of every call, and AssumeRole's trust-policy check.

Owns: `authorize(call) -> Refusal | None`. The caller is resolved from its access key
(`principals.resolve`); the root user is not restricted. For everyone else the call's
(action, resource) pairs come from `actions.required` and are evaluated against the caller's identity
policies (`policy.evaluate`); an operation the table does not know is refused, naming it.

AssumeRole additionally needs the target role to exist and its trust policy to allow the caller, as in
AWS (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html and
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html): a
principal matches by `*`, by account id or `arn:aws:iam::ACCOUNT:root` (any principal of that
account), or by its exact role/user ARN (or the session's assumed-role ARN). `Service` and `Federated`
principals never match an IAM caller. Conditions may test `sts:ExternalId`, `aws:PrincipalAccount`,
`aws:PrincipalArn`. moto itself lets anyone assume any role name, existing or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orgalerts.sandbox.strict.actions import Ctx, required
from orgalerts.sandbox.strict.policy import (
    action_matches,
    as_list,
    conditions_hold,
    evaluate,
    load_document,
    statements,
)
from orgalerts.sandbox.strict.principals import PARTITION, Principal, resolve
from orgalerts.sandbox.strict.replies import Refusal, access_denied
from orgalerts.sandbox.strict.request import StrictCall


def _context(call: StrictCall, principal: Principal) -> dict[str, Sequence[str]]:
    context: dict[str, Sequence[str]] = {
        "aws:principalaccount": [principal.account_id],
        "aws:principalarn": [principal.arn],
        "aws:requestedregion": [call.region],
        "aws:principaltype": [{"root": "Account", "role": "AssumedRole", "user": "User"}[principal.kind]],
        # The service a role is passed to (PutTargets hands the target's role to EventBridge):
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PassedToService
        "iam:passedtoservice": [f"{call.service}.amazonaws.com"],
    }
    external_id = call.parameters.get("ExternalId")
    if isinstance(external_id, str):
        context["sts:externalid"] = [external_id]
    return context


def _caller(principal: Principal) -> str:
    return principal.session_arn or principal.arn


def principal_matches(element: Any, principal: Principal) -> bool:
    """Whether a trust statement's Principal element names the caller."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    for value in as_list(element.get("AWS")):
        if not isinstance(value, str):
            continue
        if value == "*" or value == principal.account_id:
            return True
        if value == f"arn:{PARTITION}:iam::{principal.account_id}:root":
            return True
        if principal.kind != "root" and value in (principal.arn, principal.session_arn):
            return True
    return False


def _trusts(document: Mapping[str, Any], principal: Principal, context: Mapping[str, Sequence[str]]) -> bool:
    allowed = False
    for statement in statements(document):
        effect = str(statement.get("Effect", ""))
        if not action_matches(statement, "sts:AssumeRole"):
            continue
        if "NotPrincipal" in statement:
            names_caller = not principal_matches(statement["NotPrincipal"], principal)
        else:
            names_caller = principal_matches(statement.get("Principal"), principal)
        if not names_caller or not conditions_hold(statement, context, effect):
            continue
        if effect == "Deny":
            return False
        allowed = allowed or effect == "Allow"
    return allowed


def check_trust(call: StrictCall, principal: Principal) -> Refusal | None:
    """AssumeRole: the role must exist and trust the caller."""
    from moto.iam.models import iam_backends

    role_arn = str(call.parameters.get("RoleArn", ""))
    denied = access_denied(
        "sts", f"User: {_caller(principal)} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return denied
    backend = iam_backends[parts[4]][PARTITION]
    role = next((r for r in backend.roles.values() if str(r.arn) == role_arn), None)
    if role is None:
        return denied
    trust = load_document(role.assume_role_policy_document or "{}")
    return None if _trusts(trust, principal, _context(call, principal)) else denied


def authorize(call: StrictCall) -> Refusal | None:
    """None when AWS would let this caller make this call; else the AccessDenied AWS would answer."""
    principal = resolve(call.access_key_id, call.account_id)
    if principal.restricted:
        needed = required(call.service, call.operation, call.parameters, Ctx(call.account_id, call.region))
        if needed is None:
            return access_denied(
                call.service,
                f"strict sandbox: {call.service}:{call.operation} is not in the authorization table "
                "(orgalerts/sandbox/strict/actions.py), so it is refused for every restricted principal; "
                "add the operation there",
            )
        decision = evaluate(principal.documents, needed, _context(call, principal))
        if not decision.allowed:
            return access_denied(
                call.service,
                f"User: {_caller(principal)} is not authorized to perform: {decision.action} on resource: "
                f"{decision.resource} {decision.reason}",
            )
    if call.service == "sts" and call.operation == "AssumeRole":
        return check_trust(call, principal)
    return None
