"""Account lifecycle checks: is an account fit to onboard, and why not.

Owns: the scope check for `onboard` (exists, ACTIVE, in a target OU or included, not excluded), which
reads only Organizations in the management account and never calls into a member account.
"""

from __future__ import annotations

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
