"""The orchestrator: one pipeline (scope -> desired -> live -> plan -> apply) with different ends.

Owns: running the central side first and then every member account as an isolated unit of work in a
bounded thread pool. A unit never raises past its boundary: whatever goes wrong in one account becomes
that account's `failed` result, and every other account still runs. Which end the pipeline has
(write or not, converge or remove, how statuses are worded) is the `Mode`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orgalerts import org
from orgalerts.apply import Applier, Clients, PartialFailure
from orgalerts.aws import MEMBER_REGION, BotoCoreError, ClientError, Gateway, error_text
from orgalerts.config import Config
from orgalerts.desired import central_address, central_resources, member_resources, org_watch_resources
from orgalerts.live import read_central, read_member, read_org_watch
from orgalerts.management import run_management
from orgalerts.plan import Plan, diff
from orgalerts.resources import Names, Resource

log = logging.getLogger(__name__)


class Mode(Enum):
    """Which end of the pipeline a command uses."""

    DEPLOY = "deploy"  # converge and write
    PLAN = "plan"  # converge, no write
    DRIFT = "drift"  # converge, no write, findings worded as drift
    REPAIR = "repair"  # converge and write, statuses `repaired`
    REMOVE = "remove"  # remove managed resources and write (offboard, teardown)

    @property
    def writes(self) -> bool:
        return self in (Mode.DEPLOY, Mode.REPAIR, Mode.REMOVE)


@dataclass
class SideResult:
    """The outcome for one account (or for the central side)."""

    account_id: str
    status: str
    changes: list[str] = field(default_factory=list)
    error: str | None = None
    name: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "status": self.status,
            "changes": list(self.changes),
            "error": self.error,
            "notes": list(self.notes),
        }


@dataclass
class RunReport:
    command: str
    accounts: list[SideResult]
    central: SideResult | None
    orphans: list[SideResult] = field(default_factory=list)
    # The management account's organization watch (account moves into target OUs), when enabled.
    management: SideResult | None = None


class Interrupted(Exception):
    """Ctrl-C during the member phase: carries every account's result so far (the rest `not attempted`)."""

    def __init__(self, results: list[SideResult], report: RunReport | None = None) -> None:
        super().__init__("interrupted")
        self.results = results
        self.report = report


ProgressCallback = Callable[[SideResult], None]

# Errors that stay inside one account: AWS errors, transport errors, partial failures.
UNIT_ERRORS = (ClientError, BotoCoreError, PartialFailure, OSError)


class Engine:
    """Runs commands over the organization. Constructed with its collaborators; never connects in __init__."""

    def __init__(
        self,
        config: Config,
        gateway: Gateway,
        *,
        workers: int | None = None,
        retry_wait: Any = None,
        progress: ProgressCallback | None = None,
        progress_start: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.workers = workers or config.workers
        self.retry_wait = retry_wait
        self.progress = progress
        self.progress_start = progress_start  # told how many accounts each batch of members has
        self.names = Names(config.resource_prefix)
        self.central = central_address(config)
        self.cancel = threading.Event()

    # --- scope ------------------------------------------------------------------------------------
    def orgs_client(self) -> Any:
        return self.gateway.base().client("organizations", MEMBER_REGION)

    def scope(self) -> org.Scope:
        return org.resolve_scope(self.orgs_client(), self.config)

    # --- commands -----------------------------------------------------------------------------------
    def converge(
        self,
        command: str,
        mode: Mode,
        *,
        only: Iterable[str] | None = None,
        orphans: bool = False,
        remove_orphans: bool = False,
        scope: org.Scope | None = None,
    ) -> RunReport:
        """deploy / plan / drift / repair / onboard: central side, then the in-scope members.

        `scope` may be passed when the caller already resolved it (onboard checks it first).
        """
        scope = scope or self.scope()
        central = self.run_central(mode, scope)
        management = self.run_org_watch(mode, scope)
        if only is None:  # opt-in organization trail and guardrail SCP (orgalerts/management.py)
            management = run_management(self, mode, scope, management)
        targets = list(scope.in_scope)
        if only is not None:
            wanted = set(only)
            targets = [a for a in targets if a.id in wanted]
        blocked = mode.writes and central.status == "failed"
        try:
            accounts = self._run_members(targets, mode, blocked=blocked)
        except Interrupted as exc:
            exc.report = RunReport(command, sorted(exc.results, key=lambda r: r.account_id), central, [], management)
            raise
        if only is None:
            accounts += [
                SideResult(s.account.id, "skipped", error=None, name=s.account.name, notes=[s.reason])
                for s in scope.skipped
            ]
        accounts.sort(key=lambda r: r.account_id)
        found_orphans: list[SideResult] = []
        if orphans and not blocked:
            found_orphans = self.find_orphans(scope, remove=remove_orphans)
        return RunReport(command, accounts, central, found_orphans, management)

    def remove(self, command: str, account_ids: list[str] | None) -> RunReport:
        """offboard (given accounts) or teardown (None: every account, then the central side)."""
        if account_ids is not None:
            accounts = self._run_members([org.Account(a, "", "ACTIVE") for a in account_ids], Mode.REMOVE)
            return RunReport(command, accounts, None)
        scope = self.scope()
        in_scope = {a.id for a in scope.in_scope}
        everyone = [a for a in org.all_accounts(self.orgs_client()) if a.state == "ACTIVE"]
        accounts = self._run_members(everyone, Mode.REMOVE, tolerate_unreachable=lambda a: a.id not in in_scope)
        central = self.run_central(Mode.REMOVE, scope)
        management = self.run_org_watch(Mode.REMOVE, scope, force=True)
        management = run_management(self, Mode.REMOVE, scope, management)
        accounts.sort(key=lambda r: r.account_id)
        return RunReport(command, accounts, central, management=management)

    def find_orphans(self, scope: org.Scope, *, remove: bool) -> list[SideResult]:
        """Accounts outside the scope that still hold managed member resources."""
        in_scope = {a.id for a in scope.in_scope}
        outside = [a for a in org.all_accounts(self.orgs_client()) if a.id not in in_scope and a.state == "ACTIVE"]
        results = self._run_members(
            outside, Mode.REMOVE if remove else Mode.DRIFT, orphan_check=True, tolerate_unreachable=lambda _: True
        )
        return [r for r in results if r.changes]

    # --- central ------------------------------------------------------------------------------------
    def run_central(self, mode: Mode, scope: org.Scope) -> SideResult:
        account_id = self.config.notification.account_id
        result = SideResult(account_id, "unchanged", name="central")
        try:
            access = self.gateway.account(account_id, self.config.member_role.name, self.config.member_role.external_id)
            events = access.client("events", self.central.region)
            sns = access.client("sns", self.central.region)
            sqs = access.client("sqs", self.central.region)
            live = read_central(events, sns, sqs, self.central)
            desired = [] if mode is Mode.REMOVE else central_resources(self.config, scope)
            plan = diff(desired, live)
            result.notes += _subscription_notes(live, desired)
            self._finish(result, plan, mode, lambda: Clients(events=events, sns=sns, sqs=sqs), live)
        except UNIT_ERRORS as exc:
            result.status, result.error = "failed", error_text(exc)
        return result

    def run_org_watch(self, mode: Mode, scope: org.Scope, *, force: bool = False) -> SideResult | None:
        """The management account's rule that forwards account moves into target OUs (alerts.account_changes)."""
        if not (self.config.alerts.account_changes or force):
            return None
        account_id = scope.management_account_id
        result = SideResult(account_id, "unchanged", name="management")
        if self.gateway.caller_account() != account_id:
            result.status = "skipped"
            result.notes = ["account-change alerts need the orchestrator to run in the management account"]
            return result
        try:
            access = self.gateway.base()
            iam = access.client("iam", MEMBER_REGION)
            events = access.client("events", MEMBER_REGION)
            live = read_org_watch(iam, events, self.names)
            wanted = self.config.alerts.account_changes and mode is not Mode.REMOVE
            desired = org_watch_resources(self.config, scope) if wanted else []
            self._finish(result, diff(desired, live), mode, lambda: Clients(iam=iam, events=events), live)
        except UNIT_ERRORS as exc:
            result.status, result.error = "failed", error_text(exc)
        return result

    # --- members ------------------------------------------------------------------------------------
    def _run_members(
        self,
        accounts: list[org.Account],
        mode: Mode,
        *,
        blocked: bool = False,
        orphan_check: bool = False,
        tolerate_unreachable: Callable[[org.Account], bool] | None = None,
    ) -> list[SideResult]:
        if blocked:
            return [
                SideResult(a.id, "failed", error="not attempted: the central side failed", name=a.name)
                for a in accounts
            ]
        results: list[SideResult] = []
        if self.progress_start is not None:
            self.progress_start(len(accounts))
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="orgalerts") as pool:
            futures = {pool.submit(self.run_member, a, mode, orphan_check, tolerate_unreachable): a for a in accounts}
            try:
                for future in as_completed(futures):
                    result = future.result()
                    results.append(result)
                    if self.progress is not None:
                        self.progress(result)
            except KeyboardInterrupt:
                # Finish the accounts in flight (never leave one half-written), start no other.
                self.cancel.set()
                pool.shutdown(wait=True, cancel_futures=True)
                done = {r.account_id for r in results}
                for future, account in futures.items():
                    if account.id in done:
                        continue
                    if future.done() and not future.cancelled():
                        results.append(future.result())
                    else:
                        results.append(
                            SideResult(
                                account.id, "failed", error="not attempted: the run was interrupted", name=account.name
                            )
                        )
                raise Interrupted(results) from None
        return results

    def run_member(
        self,
        account: org.Account,
        mode: Mode,
        orphan_check: bool = False,
        tolerate_unreachable: Callable[[org.Account], bool] | None = None,
    ) -> SideResult:
        """One account, start to end. Never raises: failures become the result."""
        result = SideResult(account.id, "unchanged", name=account.name)
        if self.cancel.is_set():
            result.status, result.error = "failed", "not attempted: the run was interrupted"
            return result
        try:
            try:
                access = self.gateway.account(
                    account.id, self.config.member_role.name, self.config.member_role.external_id
                )
            except UNIT_ERRORS as exc:
                if tolerate_unreachable is not None and tolerate_unreachable(account):
                    result.status, result.notes = "skipped", [f"could not be checked: {error_text(exc)}"]
                    return result
                raise
            iam = access.client("iam", MEMBER_REGION)
            events = access.client("events", MEMBER_REGION)
            sqs = access.client("sqs", MEMBER_REGION)
            # Removal and orphan checks look for everything; converging looks for what the config uses.
            everything = mode is Mode.REMOVE or orphan_check
            alerts = self.config.alerts
            live = read_member(
                iam,
                events,
                sqs,
                self.names,
                watchdog=everything or alerts.tamper_alerts,
                dead_letters=everything or alerts.dead_letter_queues,
            )
            if orphan_check:
                desired: list[Resource] = []
            else:
                desired = [] if mode is Mode.REMOVE else member_resources(self.config, account.id)
            plan = diff(desired, live)
            if mode is Mode.DRIFT and not orphan_check and not any(r.managed for r in live) and not plan.conflicts:
                result.status = "drifted"
                result.changes = ["account not deployed (new account?): forwarder role, rule and target missing"]
                return result
            if orphan_check and plan.changes and mode is Mode.DRIFT:
                result.status = "drifted"
                result.changes = [
                    f"orphan: account is out of scope but still has {c.text.split(' ', 1)[1]}" for c in plan.changes
                ]
                return result
            self._finish(result, plan, mode, lambda: Clients(iam=iam, events=events, sqs=sqs), live)
        except UNIT_ERRORS as exc:
            result.status, result.error = "failed", error_text(exc)
        except Exception as exc:  # a bug must not stop the other accounts either; it is reported
            log.debug("unexpected error in account %s", account.id, exc_info=True)
            result.status, result.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        return result

    # --- shared end of the pipeline -------------------------------------------------------------------
    def _finish(
        self, result: SideResult, plan: Plan, mode: Mode, clients: Callable[[], Clients], live: list[Resource]
    ) -> None:
        if plan.conflicts:
            result.status = "failed"
            result.error = "; ".join(c.message for c in plan.conflicts)
            return
        waiting = [note for r in live if r.kind == "queue" and r.managed for note in r.notes]
        if mode is Mode.DRIFT:
            findings = [c.finding for c in plan.changes] + waiting
            result.status = "drifted" if findings else "unchanged"
            result.changes = findings
            return
        result.notes += waiting
        if mode is Mode.PLAN:
            result.status = plan.status
            result.changes = [c.text for c in plan.changes]
            return
        done: list[str] = []
        applier = Applier(clients(), topic_arns={self.names.topic: self.central.topic_arn}, wait=self.retry_wait)
        try:
            applier.apply(plan.changes, on_done=lambda c: done.append(c.text if mode is not Mode.REPAIR else c.finding))
        finally:
            result.changes = done
        if mode is Mode.REPAIR:
            result.status = "repaired" if plan.changes else "unchanged"
        elif mode is Mode.REMOVE:
            result.status = "removed" if plan.changes else "unchanged"
        else:
            result.status = plan.status


def _subscription_notes(live: list[Resource], desired: list[Resource]) -> list[str]:
    wanted = {r.key for r in desired}
    return [
        f"{r.props['endpoint']}: subscription pending confirmation (the recipient must click the link in the e-mail)"
        for r in live
        if r.kind == "subscription" and "pending confirmation" in r.notes and r.key in wanted
    ]
