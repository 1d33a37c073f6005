"""`orgalerts permissions`: the least-privilege IAM policies the tool needs, from what the code declares.

Owns: merging the actions each side declares (the registry) and the `REQUIRED_ACTIONS` each engine and
command module declares next to its calls (found by walking those packages, so no list is kept by
hand) into three policies (orchestrator in the management account, member role, notification
account), with resources narrowed where the names are known. tests/test_permissions.py fails if the
code makes a call whose action is missing here.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

from orgalerts import commands, engine
from orgalerts.config import Config
from orgalerts.model.addresses import arn, role_arn
from orgalerts.sides.registry import SIDES

PRINCIPALS = ("orchestrator", "member", "notification")
Declared = dict[str, tuple[str, ...]]


def _declarations() -> Iterator[Declared]:
    """Every side's required actions, and every engine or command module's REQUIRED_ACTIONS."""
    for side in SIDES:
        yield side.required_actions
    for package in (engine, commands):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            declared = getattr(importlib.import_module(info.name), "REQUIRED_ACTIONS", None)
            if declared is not None:
                yield declared


def required_actions() -> dict[str, list[str]]:
    merged: dict[str, set[str]] = {p: set() for p in PRINCIPALS}
    for declared in _declarations():
        for principal, actions in declared.items():
            merged[principal].update(actions)
    return {p: sorted(actions) for p, actions in merged.items()}


def policies(config: Config) -> dict[str, dict[str, Any]]:
    """The three policy documents, resources narrowed to orgalerts' own names where IAM allows it."""
    names = config.names
    actions = required_actions()
    orchestrator_actions = [a for a in actions["orchestrator"] if a != "sts:AssumeRole"]
    verify_actions = ("iam:CreatePolicy", "iam:TagPolicy", "iam:DeletePolicy")
    member_role_actions = [a for a in actions["member"] if a.startswith("iam:") and a not in verify_actions]
    member_other = [a for a in actions["member"] if a not in member_role_actions]
    return {
        "orchestrator": {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "ReadOrganization", "Effect": "Allow", "Action": orchestrator_actions, "Resource": "*"},
                {
                    "Sid": "AssumeMemberRole",
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": role_arn("*", config.member_role.name),
                },
            ],
        },
        "member": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ForwarderRole",
                    "Effect": "Allow",
                    "Action": member_role_actions,
                    "Resource": role_arn("*", names.forwarder_role),
                },
                {
                    "Sid": "ForwardingRuleAndVerify",
                    "Effect": "Allow",
                    "Action": member_other,
                    "Resource": [
                        arn("events", "us-east-1", "*", f"rule/{names.prefix}*"),
                        arn("iam", "", "*", f"policy/{names.prefix}verify-*"),
                    ],
                },
            ],
        },
        "notification": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CentralBusRuleTopicAndVerifyQueue",
                    "Effect": "Allow",
                    "Action": actions["notification"],
                    "Resource": [
                        arn("events", config.region, "*", f"event-bus/{names.prefix}*"),
                        arn("events", config.region, "*", f"rule/{names.prefix}*"),
                        arn("sns", config.region, "*", f"{names.prefix}*"),
                        arn("sqs", config.region, "*", f"{names.prefix}verify-*"),
                    ],
                }
            ],
        },
    }


def render(config: Config) -> str:
    return json.dumps(policies(config), indent=2)
