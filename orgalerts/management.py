"""The management-account side of a run: the opt-in organization trail and guardrail SCP.

Owns: running the same pipeline (desired -> live -> diff -> apply) for the resources that live in the
management account, with the orchestrator's own credentials; the one-time organization settings they
need first (CloudTrail trusted access, the SCP policy type on the root), shown in `plan` and done by
`deploy`, never undone by `teardown` (other services may depend on them); and the side's result, which
never raises past its boundary. Nothing runs (no call at all) unless `trail.create` or `guardrail.scp`
is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tenacity

from orgalerts import guardrail, trail
from orgalerts.apply import Applier, Clients, _eventually_consistent
from orgalerts.aws import MEMBER_REGION, error_code, error_text
from orgalerts.config import Config
from orgalerts.plan import Change, Plan, diff
from orgalerts.resources import Resource

if TYPE_CHECKING:
    from orgalerts.engine import Engine, Mode, SideResult
    from orgalerts.org import Scope

log = logging.getLogger(__name__)

CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"
TRAIL_KINDS = ("bucket", "bucket-policy", "trail")
# CreateTrail right after PutBucketPolicy can see the old (missing) policy for a moment.
TRAIL_CONSISTENCY_CODES = {"InsufficientS3BucketPolicyException"}

Prerequisite = tuple[str, Callable[[], Any]]


def enabled(config: Config) -> bool:
    return config.trail.create or config.guardrail.scp


class ManagementApplier(Applier):
    """The applier's loop and retries, with the trail and guardrail writers behind it."""

    def __init__(
        self, trail_writer: trail.TrailWriter | None, guardrail_writer: guardrail.GuardrailWriter | None, *, wait: Any
    ) -> None:
        super().__init__(Clients(), wait=wait)
        self.trail = trail_writer
        self.guardrail = guardrail_writer
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: _eventually_consistent(exc) or error_code(exc) in TRAIL_CONSISTENCY_CODES
            ),
            wait=wait if wait is not None else tenacity.wait_exponential(multiplier=1, max=20),
            stop=tenacity.stop_after_attempt(6),
            reraise=True,
        )

    def _apply_one(self, change: Change) -> None:
        writer = self.trail if change.kind in TRAIL_KINDS else self.guardrail
        assert writer is not None, f"no writer for {change.kind}"
        writer.apply(change)


def finding(change: Change) -> str:
    """How drift words a management-side change."""
    if change.kind.startswith("scp"):
        return guardrail.finding(change)
    if change.action == "update":
        return trail.field_finding(change)
    return change.finding


def _prerequisites(orgs: Any, plan: Plan) -> list[Prerequisite]:
    """Organization settings the planned changes need and that are not set yet (read-only here)."""
    steps: list[Prerequisite] = []
    needs_trail_access = any(
        c.kind == "trail" and (c.action == "create" or "organization" in c.fields) for c in plan.changes
    )
    if needs_trail_access:
        enabled_services: set[str] = set()
        for page in orgs.get_paginator("list_aws_service_access_for_organization").paginate():
            enabled_services.update(str(s.get("ServicePrincipal")) for s in page.get("EnabledServicePrincipals", []))
        if CLOUDTRAIL_SERVICE not in enabled_services:
            steps.append(
                (
                    "enable trusted access for CloudTrail in AWS Organizations (needed by an organization trail)",
                    lambda: orgs.enable_aws_service_access(ServicePrincipal=CLOUDTRAIL_SERVICE),
                )
            )
    if any(c.kind == "scp-attachment" and c.action == "create" for c in plan.changes):
        root_id, scps_enabled = guardrail.scp_policy_type_enabled(orgs)
        if not scps_enabled and root_id:
            steps.append(
                (
                    f"enable service control policies on root {root_id} (needed to attach the guardrail)",
                    lambda: orgs.enable_policy_type(RootId=root_id, PolicyType=guardrail.SCP_TYPE),
                )
            )
    return steps


def combined_status(a: str, b: str) -> str:
    """The status of one side made of two parts."""
    pair = {a, b}
    for status in ("failed", "drifted", "repaired", "removed"):
        if status in pair:
            return status
    if pair <= {"skipped", "unchanged"}:
        return "unchanged" if "unchanged" in pair else "skipped"
    if pair in ({"created"}, {"created", "skipped"}):
        return "created"
    return "updated"  # something changed, and something existed on that side already


def merge(side: SideResult | None, extra: SideResult | None) -> SideResult | None:
    """One management-account result from two parts (the organization watch, and the trail and guardrail)."""
    if side is None or extra is None:
        return side or extra
    side.status = combined_status(side.status, extra.status)
    side.changes += extra.changes
    side.notes += extra.notes
    side.error = "; ".join(e for e in (side.error, extra.error) if e) or None
    return side


def run_management(engine: Engine, mode: Mode, scope: Scope, side: SideResult | None = None) -> SideResult | None:
    """The management account's opt-in resources, merged into `side` (the organization watch's result).
    Nothing happens (no call) when neither setting is on: `side` comes back as it was."""
    return merge(side, _run(engine, mode, scope))


def _run(engine: Engine, mode: Mode, scope: Scope) -> SideResult | None:
    from orgalerts.engine import UNIT_ERRORS, Mode, SideResult  # at run time: engine imports this module

    config = engine.config
    if not enabled(config):
        return None
    management_id = scope.management_account_id
    result = SideResult(management_id, "unchanged", name="management")
    try:
        gateway = engine.gateway
        caller = gateway.caller_account()
        if config.trail.create and caller != management_id:
            result.status = "failed"
            result.error = (
                f"trail.create: an organization trail can only be created and managed with credentials of the "
                f"management account {management_id}; these credentials belong to account {caller}. Run orgalerts "
                "there, or create the trail yourself and set trail.create: false"
            )
            return result
        access = gateway.base()
        orgs = access.client("organizations", MEMBER_REGION)
        desired: list[Resource] = []
        live: list[Resource] = []
        trail_writer = guardrail_writer = None
        if config.trail.create:
            s3 = access.client("s3", config.region)
            cloudtrail = access.client("cloudtrail", config.region)
            live += trail.read_trail_side(s3, cloudtrail, config, management_id)
            if mode is not Mode.REMOVE:
                desired += trail.trail_resources(config, management_id, scope.organization_id)
            trail_writer = trail.TrailWriter(s3, cloudtrail, config.region)
        if config.guardrail.scp:
            live += guardrail.read_guardrail(orgs, guardrail.policy_name(config))
            if mode is not Mode.REMOVE:
                desired += guardrail.guardrail_resources(config, management_id)
                if scope.find(management_id) is not None:
                    result.notes.append(
                        f"the management account {management_id} is in scope: SCPs never restrict it, "
                        "so the guardrail does not protect its resources"
                    )
            policy_ids = {r.name: r.arn for r in live if r.kind == "scp" and r.managed}
            guardrail_writer = guardrail.GuardrailWriter(orgs, policy_ids)
        plan = diff(desired, live)
        if plan.conflicts:
            result.status = "failed"
            result.error = "; ".join(c.message.replace("this account", "the management side") for c in plan.conflicts)
            return result
        if mode is Mode.DRIFT:
            result.changes = [finding(c) for c in plan.changes]
            result.status = "drifted" if result.changes else "unchanged"
            return result
        steps = _prerequisites(orgs, plan) if mode is not Mode.REMOVE else []
        if mode is Mode.PLAN:
            result.changes = [text for text, _ in steps] + [c.text for c in plan.changes]
            result.status = plan.status if plan.changes else ("updated" if steps else "unchanged")
            return result
        done: list[str] = []
        try:
            for text, step in steps:
                step()
                done.append(text)
            applier = ManagementApplier(trail_writer, guardrail_writer, wait=engine.retry_wait)
            kept_before = 0

            def on_done(change: Change) -> None:
                nonlocal kept_before
                if trail_writer is not None and len(trail_writer.kept) > kept_before:
                    kept_before = len(trail_writer.kept)
                    return  # not deleted after all: the note says why
                done.append(finding(change) if mode is Mode.REPAIR else change.text)

            applier.apply(plan.changes, on_done=on_done)
        finally:
            result.changes = done
            if trail_writer is not None:
                result.notes += trail_writer.kept
        if mode is Mode.REPAIR:
            result.status = "repaired" if plan.changes or steps else "unchanged"
        elif mode is Mode.REMOVE:
            result.status = "removed" if done else "unchanged"
        else:
            result.status = plan.status if plan.changes else ("updated" if steps else "unchanged")
    except UNIT_ERRORS as exc:
        result.status, result.error = "failed", error_text(exc)
    except Exception as exc:  # a bug must not hide the rest of the run's results
        log.debug("unexpected error on the management side", exc_info=True)
        result.status, result.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    return result
