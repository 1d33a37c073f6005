"""`orgalerts permissions`: the least-privilege IAM policies the tool needs, from what the code declares.

Owns: merging the `REQUIRED_ACTIONS` each AWS-calling module declares next to its calls into three
policies (orchestrator in the management account, member role, notification account), with resources
narrowed where the names are known. tests/test_permissions.py fails if the code makes a call whose
action is missing here.
"""

from __future__ import annotations

import json
from typing import Any

from orgalerts import apply, aws, doctor, guardrail, listener, live, notify, org, redrive, trail, verify
from orgalerts.config import Config
from orgalerts.resources import Names

MODULES = (aws, org, live, apply, verify, listener, redrive, notify, trail, guardrail, doctor)
PRINCIPALS = ("orchestrator", "member", "notification")


def required_actions() -> dict[str, list[str]]:
    merged: dict[str, set[str]] = {p: set() for p in PRINCIPALS}
    for module in MODULES:
        for principal, actions in module.REQUIRED_ACTIONS.items():
            merged[principal].update(actions)
    return {p: sorted(actions) for p, actions in merged.items()}


def policies(config: Config) -> dict[str, dict[str, Any]]:
    """The three policy documents, resources narrowed to orgalerts' own names where IAM allows it."""
    names = Names(config.resource_prefix)
    actions = required_actions()
    orchestrator_actions = [a for a in actions["orchestrator"] if a != "sts:AssumeRole"]
    member_role_actions = [
        a
        for a in actions["member"]
        if a.startswith("iam:") and a not in ("iam:CreatePolicy", "iam:TagPolicy", "iam:DeletePolicy")
    ]
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
                    "Resource": f"arn:aws:iam::*:role/{config.member_role.name}",
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
                    "Resource": f"arn:aws:iam::*:role/{names.forwarder_role}",
                },
                {
                    "Sid": "ForwardingRuleAndVerify",
                    "Effect": "Allow",
                    "Action": member_other,
                    "Resource": [
                        f"arn:aws:events:us-east-1:*:rule/{names.prefix}*",
                        f"arn:aws:iam::*:policy/{names.prefix}verify-*",
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
                        f"arn:aws:events:{config.region}:*:event-bus/{names.prefix}*",
                        f"arn:aws:events:{config.region}:*:rule/{names.prefix}*",
                        f"arn:aws:sns:{config.region}:*:{names.prefix}*",
                        f"arn:aws:sqs:{config.region}:*:{names.prefix}verify-*",
                    ],
                }
            ],
        },
    }


def render(config: Config) -> str:
    return json.dumps(policies(config), indent=2)
