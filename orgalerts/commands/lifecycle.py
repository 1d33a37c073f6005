"""Account lifecycle checks: is an account fit to onboard, and why not.

Owns: the scope check for `onboard` (exists, ACTIVE, in a target OU or included, not excluded) and the
check for `offboard` (exists in the organization; its name; whether it is still in scope, so drift would
re-flag it), which read only Organizations in the management account and never call into a member account.
"""

from __future__ import annotations

from dataclasses import dataclass

from orgalerts.engine.context import Context
from orgalerts.engine.scope import account_location
from orgalerts.errors import UsageError
from orgalerts.model.scope import Scope


def check_onboard(ctx: Context, account_id: str) -> Scope:
    """The scope, for the onboarding run to reuse; UsageError (exit 2) says why `account_id` cannot be onboarded."""
    config = ctx.config
    if account_id in config.organization.exclude_accounts:
        raise UsageError(f"account {account_id} is excluded by organization.exclude_accounts in {config.source}")
    where = account_location(ctx.orgs_client(), account_id)
    if where is None:
        raise UsageError(f"account {account_id} is not in this organization")
    if where.state != "ACTIVE":
        raise UsageError(f"account {account_id} is {where.state}, not ACTIVE")
    scope = ctx.scope()
    if scope.find(account_id) is None:
        raise UsageError(
            f"account {account_id} is not under the configured OUs ({', '.join(config.organization.ous) or 'none'}) "
            "nor in organization.include_accounts"
        )
    return scope


@dataclass(frozen=True)
class OffboardCheck:
    account_id: str
    name: str
    notes: tuple[str, ...]


def check_offboard(ctx: Context, account_id: str) -> OffboardCheck:
    """The account's name and the notes its offboarding row carries; UsageError (exit 2) when it is not in
    the organization (nothing to enter: the member role cannot be assumed there)."""
    config = ctx.config
    where = account_location(ctx.orgs_client(), account_id)
    if where is None:
        raise UsageError(f"account {account_id} is not in this organization; nothing to offboard")
    notes: list[str] = []
    if account_id not in config.organization.exclude_accounts and ctx.scope().find(account_id) is not None:
        notes.append(
            f"account {account_id} is still in scope: `orgalerts drift` will report it as not deployed and "
            f"`deploy` or `drift --repair` will deploy it again; to keep it out, add it to "
            f"organization.exclude_accounts in {config.source} (or move it out of the configured OUs)"
        )
    return OffboardCheck(account_id, where.name, tuple(notes))
