"""Who is calling, and which identity policies apply to them, read from moto's STS and IAM backends.

Owns: `resolve(access_key_id, account_id) -> Principal`. Resolution order:

1. an assumed-role session moto's STS issued (moto.sts.models STSBackend.assumed_roles): the role's
   inline and attached managed policies (moto.iam.models Role.policies / Role.managed_policies);
2. an IAM user's access key (IAMBackend.get_user_from_access_key_id): the user's inline and attached
   policies plus those of the user's groups;
3. any other key (such as the sandbox's "testing") is the account's root user: unrestricted, as root
   is in AWS (no SCPs are modelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orgalerts.sandbox.strict.policy import load_document

PARTITION = "aws"


@dataclass(frozen=True)
class Principal:
    kind: str  # "root", "role" or "user"
    account_id: str
    arn: str  # role ARN for a session, user ARN, or arn:aws:iam::ACCOUNT:root
    session_arn: str = ""  # arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION for a role session
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def restricted(self) -> bool:
        return self.kind != "root"


def _managed_documents(managed: Any) -> list[dict[str, Any]]:
    docs = []
    for policy in managed.values():
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None and version.document:
            docs.append(load_document(version.document))
    return docs


def _inline_documents(inline: Any) -> list[dict[str, Any]]:
    return [load_document(doc) for doc in inline.values()]


def _role_principal(account_id: str, session: Any) -> Principal:
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id][PARTITION]
    role_arn = str(session.role_arn)
    role = next((r for r in backend.roles.values() if str(r.arn) == role_arn), None)
    documents = [] if role is None else _inline_documents(role.policies) + _managed_documents(role.managed_policies)
    return Principal("role", account_id, role_arn, str(session.arn), documents)


def _user_principal(account_id: str, user: Any) -> Principal:
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id][PARTITION]
    documents = _inline_documents(user.policies) + _managed_documents(user.managed_policies)
    for group in backend.get_groups_for_user(user.name):
        documents += _inline_documents(group.policies) + _managed_documents(group.managed_policies)
    return Principal("user", account_id, str(user.arn), "", documents)


def resolve(access_key_id: str, account_id: str) -> Principal:
    """The principal behind an access key, in the account moto acts in for it."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    session = sts_backends[account_id][PARTITION].get_assumed_role_from_access_key(access_key_id)
    if session is not None:
        return _role_principal(account_id, session)
    user = iam_backends[account_id][PARTITION].get_user_from_access_key_id(access_key_id)
    if user is not None:
        return _user_principal(account_id, user)
    return Principal("root", account_id, f"arn:{PARTITION}:iam::{account_id}:root")
