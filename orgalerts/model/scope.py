"""The organization as a run sees it: accounts, and which of them are in scope. Pure data.

Owns: `Account`, `Skipped` and `Scope` (organization id, root, management account, the in-scope and
skipped accounts, and the OU facts the bus policy and the account-change watch need). Built by
`orgalerts.engine.scope` from Organizations reads; read by every side's desired state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    state: str  # ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED, ...
    parent_id: str | None = None


@dataclass(frozen=True)
class Skipped:
    account: Account
    reason: str


@dataclass(frozen=True)
class Scope:
    """The result of resolving the config against the organization."""

    organization_id: str
    root_id: str
    management_account_id: str
    in_scope: tuple[Account, ...]
    skipped: tuple[Skipped, ...]
    # aws:PrincipalOrgPaths patterns for the configured OUs, e.g. "o-abc/r-ab12/ou-ab12-cd34ef56/*"
    ou_path_patterns: tuple[str, ...]
    whole_organization: bool  # a root id is configured: every account of the organization
    included_accounts: tuple[str, ...]
    target_ou_ids: tuple[str, ...] = ()  # the configured OUs and every OU below them

    def find(self, account_id: str) -> Account | None:
        return next((a for a in self.in_scope if a.id == account_id), None)
