"""What every command runs with: the configuration, the gateway, and how to reach each account.

Owns: the managed names and the central side's address, the member role's ARN in an account, access
to a member account, to the notification account and to the management account (the orchestrator's
own credentials), the clients a side needs there, and resolving the scope. Constructing a context
makes no AWS call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orgalerts.aws import AccountAccess, Gateway
from orgalerts.config import Config
from orgalerts.engine.scope import resolve_scope
from orgalerts.model.addresses import MEMBER_REGION, CentralAddress, Names, role_arn
from orgalerts.model.scope import Scope
from orgalerts.sides.base import Clients, Grant, Side, Where

# IAM permissions of the orchestrator's own calls here (merged by `orgalerts permissions`): the member role in
# each account (role*: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
# sts:GetCallerIdentity needs no permission
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html), so it is not granted.
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant("orchestrator", "AssumeMemberRole", ("sts:AssumeRole",), lambda c: [role_arn("*", c.member_role.name)]),
)


# Assumed-role sessions last an hour (the gateway asks for 3600 s): reuse the notification account's for 45 min.
CENTRAL_ACCESS_REUSE_SECONDS = 45 * 60


class Context:
    """Config + gateway, and the one place that knows which credentials reach which account."""

    def __init__(self, config: Config, gateway: Gateway, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.gateway = gateway
        self._clock = clock
        self._central_lock = threading.Lock()
        self._central: tuple[float, AccountAccess] | None = None

    @property
    def names(self) -> Names:
        return self.config.names

    @property
    def central(self) -> CentralAddress:
        return self.config.central

    def member_role_arn(self, account_id: str) -> str:
        return role_arn(account_id, self.config.member_role.name)

    def member_access(self, account_id: str) -> AccountAccess:
        """Clients in `account_id` through the member role (the caller's own where it is that account)."""
        role = self.config.member_role
        return self.gateway.account(account_id, self.member_role_arn(account_id), role.external_id)

    def central_access(self) -> AccountAccess:
        """Clients in the notification account: one AssumeRole per command, not one per use (the central side,
        the run lock, the previous-region search, verify's listener and redrive all need it). Renewed well before the
        role session's hour runs out, so a long run's lock renewals keep working."""
        with self._central_lock:
            now = self._clock()
            if self._central is None or now - self._central[0] > CENTRAL_ACCESS_REUSE_SECONDS:
                role = self.config.member_role
                account_id = self.config.notification.account_id
                access = self.gateway.account(account_id, self.member_role_arn(account_id), role.external_id)
                self._central = (now, access)
            return self._central[1]

    def management_access(self) -> AccountAccess:
        """Clients with the orchestrator's own credentials."""
        return self.gateway.base()

    def caller_account(self) -> str:
        return self.gateway.caller_account()

    def access(self, where: Where, account_id: str) -> AccountAccess:
        if where is Where.MANAGEMENT:
            # A management side living in another account (Identity Center's delegated administrator) is
            # reached through the member role there; the management account with the caller's own credentials.
            if account_id == self.caller_account():
                return self.management_access()
            return self.member_access(account_id)
        if where is Where.CENTRAL:
            return self.central_access()
        return self.member_access(account_id)

    def clients(self, side: Side, access: AccountAccess) -> Clients:
        """The clients `side` reads and writes with, in its regions."""
        made = {service: access.client(service, side.service_region(service, self.config)) for service in side.services}
        return Clients(**made)

    def central_client(self, service: str) -> Any:
        """One client in the notification account, in the configured region."""
        return self.central_access().client(service, self.config.region)

    def orgs_client(self) -> Any:
        return self.management_access().client("organizations", MEMBER_REGION)

    def scope(self) -> Scope:
        return resolve_scope(self.orgs_client(), self.config)
