"""Strict rule 8: principals for running orgalerts with least privilege in the sandbox.

Owns: `seed_least_privilege` (an orchestrator IAM user with an access key in the management account,
a member role of the given name in every account, trusting the management account) and
`grant_organization_access_admin` (the inline AdministratorAccess policy AWS gives the
OrganizationAccountAccessRole it creates in a new member account, which moto omits, so humans and
tests keep an admin way in under strict authorization:
https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html).

Both write moto's IAM backends directly (the sandbox server and `mock_aws` run in this process), so
they work for the server and in-process alike, without going through strict authorization.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PARTITION = "aws"
ORCHESTRATOR_USER = "orgalerts-orchestrator"
ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class SeededPrincipals:
    access_key_id: str
    secret_access_key: str
    user_arn: str
    role_arns: dict[str, str] = field(default_factory=dict)  # account id -> member role ARN


def _iam(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id][PARTITION]


def _trust(management_account_id: str, external_id: str | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{PARTITION}:iam::{management_account_id}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


SEEDED_ROLE_DESCRIPTION = "orgalerts member role (sandbox least-privilege seeding)"


def _member_role(account_id: str, role_name: str, management_account_id: str, external_id: str | None) -> Any:
    backend = _iam(account_id)
    trust = _trust(management_account_id, external_id)
    existing = next((r for r in backend.roles.values() if r.name == role_name), None)
    if existing is not None:
        if existing.description == SEEDED_ROLE_DESCRIPTION:  # ours: keep its trust current; others' stay as they are
            existing.assume_role_policy_document = trust
        return existing
    return backend.create_role(
        role_name=role_name,
        assume_role_policy_document=trust,
        path="/",
        permissions_boundary=None,
        description=SEEDED_ROLE_DESCRIPTION,
        tags=[],
        max_session_duration="3600",
    )


def _orchestrator_key(backend: Any, user_name: str, region: str) -> Any:
    """The user's (first) access key; the user and key are created when missing."""
    user = backend.users.get(user_name)
    if user is None:
        user = backend.create_user(region_name=region, user_name=user_name, path="/")
    keys = list(getattr(user, "access_keys", []))
    return keys[0] if keys else backend.create_access_key(user_name)


def seed_least_privilege(
    policies: Mapping[str, Mapping[str, Any]],
    role_name: str,
    *,
    management_account_id: str,
    account_ids: Iterable[str],
    notification_account_id: str,
    user_name: str = ORCHESTRATOR_USER,
    region: str = "us-east-1",
    external_id: str | None = None,
) -> SeededPrincipals:
    """Create (or bring up to date) the orchestrator user + access key and the member role in every account.

    `policies` is `{"orchestrator": doc, "member": doc, "notification": doc}` (as `orgalerts
    permissions` prints them). The member role of `notification_account_id` also holds the
    notification policy. Idempotent: a second call overwrites the inline policies (and the trust of
    the roles it created), removes the notification policy from accounts that no longer are the
    notification account, and keeps the user's access key, so callers holding it keep working.
    """
    backend = _iam(management_account_id)
    key = _orchestrator_key(backend, user_name, region)
    backend.put_user_policy(user_name, "orgalerts-orchestrator", json.dumps(policies["orchestrator"]))
    role_arns: dict[str, str] = {}
    for account_id in dict.fromkeys([management_account_id, *account_ids]):
        role = _member_role(account_id, role_name, management_account_id, external_id)
        _iam(account_id).put_role_policy(role_name, "orgalerts-member", json.dumps(policies["member"]))
        if account_id == notification_account_id and policies.get("notification"):
            _iam(account_id).put_role_policy(role_name, "orgalerts-notification", json.dumps(policies["notification"]))
        elif "orgalerts-notification" in role.policies:
            _iam(account_id).delete_role_policy(role_name, "orgalerts-notification")
        role_arns[account_id] = str(role.arn)
    user_arn = str(backend.get_user(user_name).arn)
    return SeededPrincipals(str(key.access_key_id), str(key.secret_access_key), user_arn, role_arns)


def grant_organization_access_admin(account_ids: Iterable[str], role_name: str = ORGANIZATION_ACCESS_ROLE) -> None:
    """Give each account's OrganizationAccountAccessRole (where it exists) AWS's inline admin policy."""
    for account_id in account_ids:
        backend = _iam(account_id)
        if any(r.name == role_name for r in backend.roles.values()):
            backend.put_role_policy(role_name, "AdministratorAccess", json.dumps(ADMIN_POLICY))
