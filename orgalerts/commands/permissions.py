"""`orgalerts permissions`: the least-privilege IAM policies the tool needs, from what the code declares.

Owns: merging the grants each side declares (the registry) and the `REQUIRED_ACTIONS` grants each engine and
command module declares next to its calls (found by walking those packages, so no list is kept by hand) into
three policies: `orchestrator` (the management account's credentials), `member` (the member role in every
in-scope account) and `notification` (the same role in the notification account, additionally).

A grant (`orgalerts.sides.base.Grant`) names a principal, a Sid saying what it allows, its actions, the
resources built from the configuration (`*` only for actions without a resource type) and whether the
configuration uses it. Grants of one principal with the same Sid merge into one statement.

What a configuration does not use is left out: the trail without trail.create, the guardrail without
guardrail.scp, creating the dead-letter queues without alerts.dead_letter_queues, the organization watch's
creation without alerts.account_changes, the watchdog and tamper rules' creation without alerts.tamper_alerts.
Reading and removing orgalerts' own resources are granted whatever the configuration: the readers look for
them (drift reports leftovers), and teardown, offboard or switching a feature off must remove what an earlier
configuration created. The trail and the guardrail are the exception: their sides run only while switched on
(teardown too), so removing them needs the policy printed with them on.

tests/test_permissions.py fails if the code makes a call the printed policy does not allow, and lints every
policy with parliament; tests/test_least_privilege.py runs the flows with exactly these policies.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

from orgalerts import commands, engine
from orgalerts.config import Config
from orgalerts.sides.base import Grant
from orgalerts.sides.registry import SIDES

PRINCIPALS = ("orchestrator", "member", "notification")


def _declarations() -> Iterator[tuple[Grant, ...]]:
    """Every side's grants, and every engine or command module's REQUIRED_ACTIONS."""
    for side in SIDES:
        yield side.required_actions
    for package in (engine, commands):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            declared = getattr(importlib.import_module(info.name), "REQUIRED_ACTIONS", None)
            if declared is not None:
                yield declared


def grants() -> list[Grant]:
    found = [grant for declared in _declarations() for grant in declared]
    unknown = {g.principal for g in found} - set(PRINCIPALS)
    if unknown:
        raise ValueError(f"grants for unknown principals: {sorted(unknown)}")
    return found


def required_actions() -> dict[str, list[str]]:
    """Every action the code may need, by principal, whatever the configuration."""
    merged: dict[str, set[str]] = {p: set() for p in PRINCIPALS}
    for grant in grants():
        merged[grant.principal].update(grant.actions)
    return {p: sorted(actions) for p, actions in merged.items()}


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


# In its own account the orchestrator is its own member role: `Context.member_access` uses the caller's
# credentials there (no AssumeRole), and teardown and the orphan check visit every account, the management
# account included, whatever the scope. So the orchestrator holds the member grants too; its identity policy
# only acts in its own account, so `*` for the account in them reaches no other.
ACTS_AS = {"orchestrator": ("orchestrator", "member"), "member": ("member",), "notification": ("notification",)}


def policy_statements(config: Config, principal: str) -> list[dict[str, Any]]:
    """The statements of one principal: its grants this configuration uses, merged by Sid."""
    merged: dict[str, dict[str, Any]] = {}
    for grant in grants():
        if grant.principal not in ACTS_AS[principal] or not grant.when(config):
            continue
        resources = grant.resources(config)
        if not resources:
            continue
        entry = merged.setdefault(grant.sid, {"actions": set(), "resources": [], "condition": grant.condition})
        if entry["condition"] != grant.condition:
            raise ValueError(f"{principal} statement {grant.sid}: grants with different conditions")
        entry["actions"].update(grant.actions)
        entry["resources"] += [r for r in resources if r not in entry["resources"]]
    statements = []
    for sid, entry in merged.items():
        if "*" in entry["resources"] and len(entry["resources"]) > 1:
            raise ValueError(f"{principal} statement {sid}: `*` mixed with resource ARNs")
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": _one_or_list(sorted(entry["actions"])),
            "Resource": _one_or_list(entry["resources"]),
        }
        if entry["condition"]:
            statement["Condition"] = entry["condition"]
        statements.append(statement)
    return statements


def policies(config: Config) -> dict[str, dict[str, Any]]:
    """The three policy documents for this configuration."""
    return {p: {"Version": "2012-10-17", "Statement": policy_statements(config, p)} for p in PRINCIPALS}


def render(config: Config) -> str:
    return json.dumps(policies(config), indent=2)
