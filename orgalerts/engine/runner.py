"""The runner: one pipeline (scope -> desired -> live -> plan -> apply) over every side and account.

Owns: the one unit boundary (`run_unit`: a unit never raises past it; whatever goes wrong in one
account becomes that account's `failed` result), the one account pool (`for_each`: bounded threads,
progress, Ctrl-C finishes the accounts in flight and reports the rest as not attempted), running one
side in one account (`run_side`), and the commands' shapes: converge (deploy, plan, drift, repair,
onboard), remove (offboard, teardown) and the orphan search. The central side runs first; members
depend on it. Which end the pipeline has is the `Mode`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from orgalerts.aws import BotoCoreError, ClientError, error_text
from orgalerts.config import Config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Interrupted, Mode, RunReport, SideResult, Status, merge
from orgalerts.engine.scope import all_accounts
from orgalerts.model.plan import Change, Conflict, Plan, diff
from orgalerts.model.resources import Resource
from orgalerts.model.scope import Account, Scope
from orgalerts.sides.adopt import adopt, tag_command
from orgalerts.sides.base import Clients, PartialFailure, Side, Where
from orgalerts.sides.central import CENTRAL
from orgalerts.sides.member import MEMBER
from orgalerts.sides.registry import sides_at

log = logging.getLogger(__name__)

ProgressCallback = Callable[[SideResult], None]
Unit = Callable[[Account], SideResult]

# Errors that stay inside one account: AWS errors, transport errors, partial failures.
UNIT_ERRORS = (ClientError, BotoCoreError, PartialFailure, OSError)
INTERRUPTED = "not attempted: the run was interrupted"
# Regions looked at a time for what an earlier `region` left (run_elsewhere): two reads each, at most 33 regions.
REGION_LOOKS = 8


class Runner:
    """Runs commands over the organization. Constructed with its collaborators; never connects in __init__."""

    def __init__(
        self,
        ctx: Context,
        *,
        workers: int | None = None,
        retry_wait: Any = None,
        progress: ProgressCallback | None = None,
        progress_start: Callable[[int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        self.sleep = sleep  # every wait of a write (retries, polls) goes through it: tests never sleep
        self.config = ctx.config
        self.workers = workers or ctx.config.workers
        self.retry_wait = retry_wait
        self.progress = progress
        self.progress_start = progress_start  # told how many accounts each batch has
        self.cancel = threading.Event()
        # --adopt (deploy, drift --repair): same-named resources without the ownership marker are tagged and
        # converged instead of failing their account. Set by `converge` for one command.
        self.adopting = False

    def scope(self) -> Scope:
        return self.ctx.scope()

    # --- the unit boundary and the pool -------------------------------------------------------------
    def run_unit(self, result: SideResult, work: Callable[[SideResult], None]) -> SideResult:
        """Run `work` on `result`; never raises: a failure becomes the result."""
        if self.cancel.is_set():
            return result.fail(INTERRUPTED)
        try:
            work(result)
        except UNIT_ERRORS as exc:
            result.fail(error_text(exc))
        except Exception as exc:  # a bug must not stop the other accounts either; it is reported
            log.debug("unexpected error in account %s", result.account_id, exc_info=True)
            result.fail(f"internal error: {type(exc).__name__}: {exc}")
        return result

    def for_each(self, accounts: list[Account], unit: Unit) -> list[SideResult]:
        """`unit` for every account, `workers` at a time. Ctrl-C: finish the accounts in flight, start no
        other, and raise `Interrupted` with every account's result (the rest `not attempted`)."""
        results: list[SideResult] = []
        # Every result a worker finishes, by account, written by the worker itself; and no unit starts before
        # every account is queued. Ctrl-C may land anywhere in the main thread, even inside `submit` while it
        # starts a worker thread (which the pool then does not join on shutdown): the accounts that ran must
        # still be reported as they ran, and none may start after the interrupt.
        finished: dict[str, SideResult] = {}
        queued = threading.Event()

        def recorded(account: Account) -> SideResult:
            queued.wait()
            if self.cancel.is_set():
                return SideResult(account.id, Status.FAILED, error=INTERRUPTED, name=account.name)
            finished[account.id] = result = unit(account)
            return result

        if self.progress_start is not None:
            self.progress_start(len(accounts))
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="orgalerts") as pool:
            try:
                futures = [pool.submit(recorded, account) for account in accounts]
                queued.set()
                for future in as_completed(futures):
                    results.append(future.result())
                    if self.progress is not None:
                        self.progress(results[-1])
            except KeyboardInterrupt:
                self.cancel.set()
                queued.set()
                pool.shutdown(wait=True, cancel_futures=True)  # the accounts in flight finish
                raise Interrupted(
                    [
                        finished[a.id]
                        if a.id in finished
                        else SideResult(a.id, Status.FAILED, error=INTERRUPTED, name=a.name)
                        for a in accounts
                    ]
                ) from None
        return results

    # --- one side in one account --------------------------------------------------------------------
    def run_side(
        self,
        side: Side,
        account: Account,
        mode: Mode,
        scope: Scope | None,
        *,
        orphan_check: bool = False,
        tolerate_unreachable: bool = False,
    ) -> SideResult:
        """One side in one account, start to end. Never raises: failures become the result."""
        result = SideResult(account.id, Status.UNCHANGED, name=account.name)

        def work(result: SideResult) -> None:
            if scope is not None and self._blocked(side, scope, result):
                return
            try:
                access = self.ctx.access(side.where, account.id)
            except UNIT_ERRORS as exc:
                if not tolerate_unreachable:
                    raise
                result.status, result.notes = Status.SKIPPED, [f"could not be checked: {error_text(exc)}"]
                return
            clients = self.ctx.clients(side, access)
            everything = mode is Mode.REMOVE or orphan_check
            live = side.read(clients, self.config, account.id, everything=everything)
            desired = [] if everything or scope is None else side.desired(self.config, scope, account.id)
            plan = diff(desired, live, side.kinds)
            adopted: list[str] = []
            if plan.conflicts and self.adopting and mode in (Mode.DEPLOY, Mode.REPAIR):
                adopted = self._adopt(side, plan, clients, live)
                live = side.read(clients, self.config, account.id, everything=everything)
                plan = diff(desired, live, side.kinds)
            if scope is not None:
                result.notes += side.notes(self.config, scope, live, desired)
            if not self._drift_shortcut(result, side, plan, mode, live, orphan_check):
                self._finish(result, side, plan, mode, clients, live)
            if adopted:
                result.changes = adopted + result.changes
                if result.status is Status.UNCHANGED:
                    result.status = Status.REPAIRED if mode is Mode.REPAIR else Status.UPDATED

        return self.run_unit(result, work)

    def _blocked(self, side: Side, scope: Scope, result: SideResult) -> bool:
        blocked = side.blocked(self.config, scope, self.ctx.caller_account())
        if blocked is None:
            return False
        status, why = blocked
        if status == Status.SKIPPED:
            result.status, result.notes = Status.SKIPPED, [why]
        else:
            result.fail(why)
        return True

    @staticmethod
    def _drift_shortcut(
        result: SideResult, side: Side, plan: Plan, mode: Mode, live: list[Resource], orphan_check: bool
    ) -> bool:
        """Drift in an account with nothing deployed, or outside the scope, reads as one finding each."""
        if mode is not Mode.DRIFT:
            return False
        if orphan_check and plan.changes:
            result.status = Status.DRIFTED
            result.changes = [
                f"orphan: account is out of scope but still has {c.text.split(' ', 1)[1]}" for c in plan.changes
            ]
            return True
        if not orphan_check and side.not_deployed and not any(r.managed for r in live) and not plan.conflicts:
            result.status, result.changes = Status.DRIFTED, [side.not_deployed]
            return True
        return False

    @staticmethod
    def _adopt(side: Side, plan: Plan, clients: Clients, live: list[Resource]) -> list[str]:
        """--adopt: put the ownership marker on each same-named resource the plan found without it."""
        by_key = {r.key: r for r in live}
        done = []
        for conflict in plan.conflicts:
            adopt(clients, Change("adopt", None, by_key[(conflict.kind, conflict.name)], label=conflict.label))
            done.append(f"adopted {conflict.label or conflict.kind} {conflict.name}")
        return done

    def _conflict_text(
        self, side: Side, conflict: Conflict, live: list[Resource], config: Config, account_id: str
    ) -> str:
        """The conflict, and the exact fix: tag it (the command), or let orgalerts adopt it."""
        where = "the management side" if side.where is Where.MANAGEMENT else "this account"
        text = conflict.message.replace("this account", where)
        arn = next((r.arn for r in live if r.key == (conflict.kind, conflict.name)), "")
        command = tag_command(conflict.kind, conflict.name, arn, side.region(config))
        fix = f"`{command}` with credentials of account {account_id}, or " if command else ""
        return (
            f"{text}. If orgalerts should manage it, mark it as orgalerts': {fix}"
            "`orgalerts drift --repair --adopt` (tags every such resource, then converges it)"
        )

    def _finish(
        self,
        result: SideResult,
        side: Side,
        plan: Plan,
        mode: Mode,
        clients: Clients,
        live: list[Resource],
        config: Config | None = None,
    ) -> None:
        """The shared end of the pipeline: conflicts, drift findings, plan texts, or the writes."""
        config = config or self.config
        if plan.conflicts:
            texts = [self._conflict_text(side, c, live, config, result.account_id) for c in plan.conflicts]
            result.fail("; ".join(texts))
            return
        waiting = [note for r in live if r.kind == "queue" and r.managed for note in r.notes]
        if mode is Mode.DRIFT:
            result.changes = [side.finding(c) for c in plan.changes] + waiting
            result.status = Status.DRIFTED if result.changes else Status.UNCHANGED
            return
        result.notes += waiting
        steps = side.prerequisites(clients, plan, self.sleep) if mode is not Mode.REMOVE else []
        if mode is Mode.PLAN:
            result.changes = [s.text for s in steps] + [c.text for c in plan.changes]
            result.status = _written_status(plan, bool(steps))
            return
        writer = side.writer(clients, config, live, self.retry_wait, self.sleep)
        done: list[str] = []
        try:
            for step in steps:
                step.run()
                done.append(step.text)
            writer.apply(
                plan.changes, on_done=lambda c: done.append(side.finding(c) if mode is Mode.REPAIR else c.text)
            )
        finally:
            result.changes = done
            result.notes += writer.kept
        if mode is Mode.REPAIR:
            result.status = Status.REPAIRED if plan.changes or steps else Status.UNCHANGED
        elif mode is Mode.REMOVE:
            result.status = Status.REMOVED if done else Status.UNCHANGED
        else:
            result.status = _written_status(plan, bool(steps))

    # --- commands -----------------------------------------------------------------------------------
    def converge(
        self,
        command: str,
        mode: Mode,
        *,
        only: Iterable[str] | None = None,
        orphans: bool = False,
        remove_orphans: bool = False,
        scope: Scope | None = None,
        adopt: bool = False,
    ) -> RunReport:
        """deploy / plan / drift / repair / onboard: central side, management sides, then in-scope members,
        then what a previous `region` left of the central side (removed once every account forwards to the
        configured region).

        `scope` may be passed when the caller already resolved it (onboard checks it first). `adopt`: tag and
        converge same-named resources without the ownership marker instead of failing their account.
        """
        self.adopting = adopt
        try:
            return self._converge(command, mode, only, orphans, remove_orphans, scope)
        finally:
            self.adopting = False

    def _converge(
        self,
        command: str,
        mode: Mode,
        only: Iterable[str] | None,
        orphans: bool,
        remove_orphans: bool,
        scope: Scope | None,
    ) -> RunReport:
        scope = scope or self.scope()
        central = self.run_central(mode, scope)
        management = self.run_management(mode, scope, onboarding=only is not None)
        targets = list(scope.in_scope)
        if only is not None:
            wanted = set(only)
            targets = [a for a in targets if a.id in wanted]
        blocked = mode.writes and central.status == Status.FAILED
        try:
            accounts = self._run_members(targets, mode, scope, blocked=blocked)
        except Interrupted as exc:
            exc.report = RunReport(command, sorted(exc.results, key=lambda r: r.account_id), central, [], management)
            raise
        if only is None:
            accounts += [
                SideResult(s.account.id, Status.SKIPPED, name=s.account.name, notes=[s.reason]) for s in scope.skipped
            ]
        accounts.sort(key=lambda r: r.account_id)
        if only is None:
            failed = [r for r in accounts if r.status == Status.FAILED]
            hold = "" if not mode.writes else self._hold_reason(central, failed)
            merge(central, self.run_elsewhere(CENTRAL, mode, hold=hold))  # into `central`
        found_orphans = self.find_orphans(scope, remove=remove_orphans) if orphans and not blocked else []
        return RunReport(command, accounts, central, found_orphans, management)

    @staticmethod
    def _hold_reason(central: SideResult, failed: list[SideResult]) -> str:
        """Why the previous region's central side must stay for now ("" when it may go)."""
        if central.status == Status.FAILED:
            return "the central side in the configured region failed"
        if failed:
            return f"{len(failed)} account(s) failed and may still forward there"
        return ""

    def remove(self, command: str, account_ids: list[str] | None) -> RunReport:
        """offboard (given accounts: named explicitly, so entered even when excluded) or teardown (None: every
        account it may enter, then the central and management sides)."""
        if account_ids is not None:
            accounts = self._run_members([Account(a, "", "ACTIVE") for a in account_ids], Mode.REMOVE, None)
            return RunReport(command, accounts, None)
        scope = self.scope()
        in_scope = {a.id for a in scope.in_scope}
        everyone = self._enterable(scope, [a for a in all_accounts(self.ctx.orgs_client()) if a.state == "ACTIVE"])
        accounts = self._run_members(everyone, Mode.REMOVE, scope, tolerate=lambda a: a.id not in in_scope)
        accounts += self._not_entered(
            scope, "teardown leaves what an earlier run may have left there; `orgalerts offboard ACCOUNT` removes it"
        )
        central = self.run_central(Mode.REMOVE, scope)
        merge(central, self.run_elsewhere(CENTRAL, Mode.REMOVE))  # into `central`
        management = self.run_management(Mode.REMOVE, scope)
        accounts.sort(key=lambda r: r.account_id)
        return RunReport(command, accounts, central, management=management)

    def find_orphans(self, scope: Scope, *, remove: bool) -> list[SideResult]:
        """Accounts outside the scope that still hold managed member resources (never an excluded account)."""
        in_scope = {a.id for a in scope.in_scope}
        outside = [a for a in all_accounts(self.ctx.orgs_client()) if a.id not in in_scope and a.state == "ACTIVE"]
        mode = Mode.REMOVE if remove else Mode.DRIFT
        results = self._run_members(
            self._enterable(scope, outside), mode, scope, orphan_check=True, tolerate=lambda _: True
        )
        return [r for r in results if r.changes]

    def _enterable(self, scope: Scope, accounts: list[Account]) -> list[Account]:
        """Accounts a run outside the scope may enter: never one in organization.exclude_accounts (a
        break-glass account is "never touched": assuming a role there is an alarm in itself), never the
        management account unless it is in scope."""
        barred = set(self.config.organization.exclude_accounts)
        if scope.find(scope.management_account_id) is None:
            barred.add(scope.management_account_id)
        return [a for a in accounts if a.id not in barred]

    def _not_entered(self, scope: Scope, why: str) -> list[SideResult]:
        excluded = set(self.config.organization.exclude_accounts)
        return [
            SideResult(s.account.id, Status.SKIPPED, name=s.account.name, notes=[f"excluded: not entered; {why}"])
            for s in scope.skipped
            if s.account.id in excluded
        ]

    def run_central(self, mode: Mode, scope: Scope) -> SideResult:
        return self.run_side(CENTRAL, Account(self.config.notification.account_id, "central", "ACTIVE"), mode, scope)

    def run_management(self, mode: Mode, scope: Scope, *, onboarding: bool = False) -> SideResult | None:
        """The management account's sides, as one result. A side whose feature is off still runs (read-only when
        nothing is left) if the caller is the management account, so what an earlier config created is removed;
        with nothing left it reports nothing. None when no side ran or had anything to say."""
        result: SideResult | None = None
        for side in sides_at(Where.MANAGEMENT):
            account = Account(side.home_account(self.config, scope), "management", "ACTIVE")
            if onboarding and side.organization_wide:
                continue
            on = side.enabled(self.config, mode is Mode.REMOVE)
            if not on and not (side.reads_when_off and self.ctx.caller_account() == scope.management_account_id):
                continue
            part = self.run_side(side, account, mode, scope)
            if not on and part.status == Status.UNCHANGED and not part.changes and not part.notes:
                continue  # a feature that is off and left nothing
            result = merge(result, part)
        return result

    def run_elsewhere(self, side: Side, mode: Mode, *, hold: str = "") -> SideResult | None:
        """What an earlier `region` left of `side` in the other regions of the partition: a cheap look in each
        (`side.left_in_region`), and where something is, the side read there and planned for removal (plan,
        drift: listed; deploy, repair, teardown: removed; `hold`: why a write mode keeps it for now).
        None when nothing is left anywhere."""
        account = Account(self.config.notification.account_id, "central", "ACTIVE")
        result = SideResult(account.id, Status.UNCHANGED, name=account.name)
        found = False

        def work(result: SideResult) -> None:
            nonlocal found
            access = self.ctx.access(side.where, account.id)  # the context reuses the central access

            def clients_in(config: Config, services: tuple[str, ...]) -> Clients:
                return Clients(**{s: access.client(s, side.service_region(s, config)) for s in services})

            def look(region: str) -> Config | None:
                config = dataclasses.replace(self.config, region=region)
                return (
                    config
                    if side.left_in_region(clients_in(config, side.look_services or side.services), config)
                    else None
                )

            # The looks go REGION_LOOKS at a time: against AWS each is a cross-region round trip or two, and
            # one after the other they were most of a no-op run's wall time for a small organization.
            regions = side.other_regions(self.config)
            with ThreadPoolExecutor(max_workers=REGION_LOOKS, thread_name_prefix="orgalerts-regions") as pool:
                left = [config for config in pool.map(look, regions) if config is not None]
            for config in left:
                clients = clients_in(config, side.services)
                live = side.read(clients, config, account.id, everything=True)
                plan = diff([], live, side.kinds)
                if not plan.changes:
                    continue
                found = True
                part = SideResult(account.id, Status.UNCHANGED, name=account.name)
                self._finish(part, side, plan, Mode.PLAN if hold else mode, clients, live, config)
                where = f" (in {config.region}, left by a previous `region`; configured: {self.config.region})"
                if hold:
                    part.status = Status.UNCHANGED
                    part.notes += [f"kept for now ({hold}): {c}{where}" for c in part.changes]
                    part.changes = []
                else:
                    part.changes = [f"{c}{where}" for c in part.changes]
                merge(result, part)

        self.run_unit(result, work)
        return result if found or result.status == Status.FAILED else None

    def _run_members(
        self,
        accounts: list[Account],
        mode: Mode,
        scope: Scope | None,
        *,
        blocked: bool = False,
        orphan_check: bool = False,
        tolerate: Callable[[Account], bool] | None = None,
    ) -> list[SideResult]:
        if blocked:
            return [
                SideResult(a.id, Status.FAILED, error="not attempted: the central side failed", name=a.name)
                for a in accounts
            ]

        def unit(account: Account) -> SideResult:
            unreachable_ok = tolerate is not None and tolerate(account)
            return self.run_side(
                MEMBER, account, mode, scope, orphan_check=orphan_check, tolerate_unreachable=unreachable_ok
            )

        return self.for_each(accounts, unit)


def _written_status(plan: Plan, steps: bool) -> Status:
    """created / updated / unchanged, as deploy reports it (organization settings count as an update)."""
    if plan.changes:
        return Status(plan.status)
    return Status.UPDATED if steps else Status.UNCHANGED
