"""The sandbox's local AWS endpoint and its lifecycle.

Owns: `SandboxServer` (moto's WSGI application behind the CloudTrail middleware, served by werkzeug on
127.0.0.1 and a free port, in a daemon thread) and `Sandbox` (reset moto, start the server, seed the
organization of a `SandboxSpec`, describe itself). The rest of orgalerts only ever sees an endpoint
URL and a pair of credentials.

moto keeps every backend in process-global state, so there can be only one live sandbox per process:
entering a second one while another is open raises RuntimeError, and entering one resets moto first
so a sandbox never sees what an earlier one created.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from orgalerts.sandbox.cloudtrail import CloudTrailMiddleware
from orgalerts.sandbox.fidelity import apply_aws_semantics
from orgalerts.sandbox.least_privilege import LeastPrivilege
from orgalerts.sandbox.seed import (
    SANDBOX_ACCESS_KEY_ID,
    SANDBOX_REGION,
    SANDBOX_SECRET_ACCESS_KEY,
    seed_organization,
    seed_organization_trail,
)
from orgalerts.sandbox.spec import SandboxSpec
from orgalerts.sandbox.stacksets import apply_stackset_semantics
from orgalerts.sandbox.strict import (
    SeededPrincipals,
    StrictEngine,
    StrictMiddleware,
    StrictSettings,
    grant_organization_access_admin,
    load_aws_managed_policies,
    seed_least_privilege,
)
from orgalerts.sandbox.strict.seeding import ORCHESTRATOR_USER

LOOPBACK = "127.0.0.1"  # never anything else: the sandbox must not be reachable from the network


class _QuietRequestHandler(MotoRequestHandler):
    """moto's handler without werkzeug's per-request access log line (noise in a CLI's output)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """moto's server app, wrapped in the CloudTrail emulation, on 127.0.0.1:<free port>.

    With `strict` (a `StrictEngine`), the strict rules (orgalerts.sandbox.strict) run in front of both.
    """

    def __init__(self, port: int = 0, strict: StrictEngine | None = None) -> None:
        self._port = port
        self.strict = strict
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox server is not running")
        # server_address is (host, port) for an AF_INET socket; we always bind LOOPBACK.
        port = self._server.server_address[1]
        return f"http://{LOOPBACK}:{port}"

    def start(self) -> str:
        """Start serving; returns the endpoint URL (http://127.0.0.1:PORT)."""
        if self._server is not None:
            return self.endpoint_url
        apply_aws_semantics()
        apply_stackset_semantics()  # service-managed StackSets as AWS documents them (sandbox/stacksets.py)
        app: Any = CloudTrailMiddleware(DomainDispatcherApplication(create_backend_app))
        if self.strict is not None:
            app = StrictMiddleware(app, self.strict)
        # make_server binds (and picks the port) here, in the caller's thread, so the URL is known and
        # the socket accepts connections before start() returns; no readiness polling needed.
        self._server = make_server(LOOPBACK, self._port, app, threaded=True, request_handler=_QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="orgalerts-sandbox", daemon=True)
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def reset_moto() -> None:
    """Forget every resource in moto's process-global backends (what POST /moto-api/reset does)."""
    from moto.moto_api._internal.models import moto_api_backend
    from moto.organizations.models import organizations_backends

    moto_api_backend.reset()
    # moto's reset clears the backends but not this member -> management account map, which outlives
    # the organizations it describes and would make accounts of an earlier sandbox look organized.
    organizations_backends.master_accounts.clear()


_ACTIVE_LOCK = threading.Lock()
_active: Sandbox | None = None


class Sandbox:
    """An embedded, simulated AWS Organization: `with Sandbox(spec) as sb: ... sb.endpoint_url ...`.

    `least_privilege` seeds the principals orgalerts should run as (an orchestrator IAM user and a
    member role in every account, holding exactly the given policies); `seed_principals` re-seeds
    them on a running sandbox. Its access keys are `describe()["orchestrator_access_key_id"]`; the
    `testing` keys stay the management account's root user, for people.
    """

    access_key_id = SANDBOX_ACCESS_KEY_ID
    secret_access_key = SANDBOX_SECRET_ACCESS_KEY
    region = SANDBOX_REGION

    def __init__(
        self,
        spec: SandboxSpec,
        strict: bool | StrictSettings = False,
        least_privilege: LeastPrivilege | None = None,
    ) -> None:
        self.spec = spec
        self.least_privilege = least_privilege
        self.seeded: SeededPrincipals | None = None
        settings = strict if isinstance(strict, StrictSettings) else StrictSettings() if strict else None
        # Strict mode (off by default): refuse what AWS refuses; see orgalerts.sandbox.strict.
        self.strict: StrictEngine | None = StrictEngine(settings) if settings is not None else None
        self._server = SandboxServer(strict=self.strict)
        self._endpoint_url: str | None = None
        self._managed_policies_before: bool | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("the sandbox is not running (use it as a context manager, or start())")
        return self._endpoint_url

    @property
    def management_account_id(self) -> str:
        return self.spec.management_account_id

    def start(self) -> str:
        """Reset moto, start the server, seed the organization; returns the endpoint URL."""
        global _active
        with _ACTIVE_LOCK:
            if _active is not None and _active is not self:
                raise RuntimeError("another sandbox is running in this process (moto's state is global)")
            if _active is self:
                return self.endpoint_url
            _active = self
        try:
            if self.strict is not None and self.strict.settings.load_all_managed_policies:
                # Before the reset: moto loads AWS-managed policies when a backend is (re)built.
                self._managed_policies_before = load_aws_managed_policies(True)
            reset_moto()
            self._endpoint_url = self._server.start()
            seed_organization(self._endpoint_url, self.spec)
            if self.spec.organization_trail:
                seed_organization_trail(self._endpoint_url, self.spec)
            if self.strict is not None:
                grant_organization_access_admin(a.id for a in self.spec.all_accounts())
            if self.least_privilege is not None:
                self.seed_principals(self.least_privilege)
        except BaseException:
            self.stop()
            raise
        return self._endpoint_url

    def seed_principals(self, least_privilege: LeastPrivilege) -> SeededPrincipals:
        """Create, or bring up to date, the least-privilege principals (idempotent; keys are kept)."""
        self.seeded = seed_least_privilege(
            least_privilege.policies,
            least_privilege.role_name,
            management_account_id=self.spec.management_account_id,
            account_ids=[a.id for a in self.spec.all_accounts()],
            notification_account_id=least_privilege.notification_account_id,
            region=self.region,
            external_id=least_privilege.external_id,
        )
        self.least_privilege = least_privilege
        return self.seeded

    def stop(self) -> None:
        global _active
        self._server.stop()
        self._endpoint_url = None
        if self._managed_policies_before is not None:
            load_aws_managed_policies(self._managed_policies_before)
            self._managed_policies_before = None
        with _ACTIVE_LOCK:
            if _active is self:
                _active = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def banner(self) -> str:
        """What a person should read before anything runs against the sandbox."""
        url = self.endpoint_url if self._endpoint_url else "(not started)"
        members = self.spec.all_accounts()
        suspended = sum(1 for a in members if a.status == "SUSPENDED")
        lines = [
            "SANDBOX: embedded, simulated AWS Organization (moto) - no AWS account is touched.",
            f"  endpoint     {url} (this machine only)",
            f"  organization {self.spec.organization_id}, root {self.spec.root_id}, "
            f"management account {self.spec.management_account_id}",
            f"  members      {len(members)} accounts ({suspended} suspended) in {len(self.spec.all_ous())} OUs",
            "  Everything created here lives in the sandbox server's memory and is gone when it stops;",
            "  alerts are delivered by an emulation of CloudTrail and EventBridge, not by AWS.",
        ]
        if self.strict is not None:
            lines.append(
                "  strict       on: IAM authorization and AWS's checks enforced (ORGALERTS_SANDBOX_STRICT=0: off)"
            )
        else:
            lines.append("  strict       off: any caller may do anything (not a least-privilege proof)")
        if self.least_privilege is not None:
            lines.append(
                f"  orgalerts    runs as IAM user {ORCHESTRATOR_USER} and role {self.least_privilege.role_name} in each"
            )
            lines.append("               account, holding exactly the policies `orgalerts permissions` prints")
        return "\n".join(lines)

    def describe(self) -> dict[str, Any]:
        """Connection facts for tooling: endpoint URL, credentials, region, management account."""
        described: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "region": self.region,
            "management_account_id": self.management_account_id,
            "strict": self.strict is not None,
        }
        if self.seeded is not None and self.least_privilege is not None:
            described.update(
                orchestrator_access_key_id=self.seeded.access_key_id,
                orchestrator_secret_access_key=self.seeded.secret_access_key,
                orchestrator_arn=self.seeded.user_arn,
                member_role_name=self.least_privilege.role_name,
                principals_digest=self.least_privilege.digest(),
            )
        return described
