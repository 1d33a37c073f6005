"""Least-privilege proof: every flow runs with exactly the policies `orgalerts permissions` prints.

In-process moto (`mock_aws`) with the simulated organization of conftest, the strict sandbox's before-send
hook on the orchestrator's Gateway (every call authorized by IAM action and resource ARN, identity policies
evaluated, AssumeRole trust checked), an orchestrator IAM user and a dedicated member role
(`OrgAlertsMemberRole`, not the admin OrganizationAccountAccessRole) seeded with the printed policies.

Then: taking one action out of a printed policy makes the flow that needs it fail with AccessDenied naming
that action, so the proof is not vacuous.

`verify` runs in-process: moto records no CloudTrail event here, so no alert arrives (the e2e sandbox tests
prove delivery); what this proves is that every call verify makes (temporary queue, subscription, the test
policy in each account, the clean-up) is allowed: each account ends "not delivered", none "failed", and the
clean-up reports nothing.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import MANAGEMENT, CallLog, FakeClock, SimOrg, make_engine

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.commands.doctor import FAIL, run_doctor
from orgalerts.commands.lifecycle import check_onboard
from orgalerts.commands.notify import publish_drift
from orgalerts.commands.permissions import policies
from orgalerts.commands.redrive import run_redrive
from orgalerts.commands.verify import run_verify
from orgalerts.commands.watch import run_watch
from orgalerts.config import Config
from orgalerts.engine.results import Mode, RunReport, Status, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.model.addresses import account_root_arn
from orgalerts.sandbox.strict import StrictEngine, StrictSettings, seed_least_privilege, send_hook

ROLE = "OrgAlertsMemberRole"
DENIED = ("AccessDenied", "not authorized")


def lp_config(sim_org: SimOrg, **overrides: Any) -> Config:
    return sim_org.config(member_role={"name": ROLE, "external_id": None}, **overrides)


def all_features(sim_org: SimOrg) -> Config:
    alerts = {"pattern": "iam-changes", "dead_letter_queues": True, "account_changes": True, "tamper_alerts": True}
    return lp_config(sim_org, trail={"create": True}, guardrail={"scp": True}, alerts=alerts)


@dataclass
class LeastPrivilege:
    engine: Runner
    clock: FakeClock
    member_policy: dict[str, Any]


def least_privilege(
    sim_org: SimOrg,
    config: Config,
    call_log: CallLog | None = None,
    *,
    printed: dict[str, dict[str, Any]] | None = None,
    pending_reads: int = 2,
) -> LeastPrivilege:
    """Seed the principals with `printed` (default: what `orgalerts permissions` prints for `config`) and
    build an engine whose every call goes through strict authorization."""
    printed = printed or policies(config)
    seeded = seed_least_privilege(
        printed,
        ROLE,
        management_account_id=MANAGEMENT,
        account_ids=list(sim_org.accounts.values()),
        notification_account_id=sim_org.accounts["notification"],
    )
    clock = FakeClock()
    settings = StrictSettings(
        clock=clock, random=lambda: 1.0, empty_short_poll_probability=0.0, policy_type_pending_reads=pending_reads
    )
    gateway = Gateway(
        GatewaySettings(access_key_id=seeded.access_key_id, secret_access_key=seeded.secret_access_key, max_attempts=1)
    )
    gateway.add_send_hook(send_hook(StrictEngine(settings)))
    return LeastPrivilege(make_engine(config, call_log, gateway, sleep=clock.sleep), clock, printed["member"])


def errors(report: RunReport) -> list[str]:
    return [f"{s.account_id} {s.name}: {s.error}" for s in report.sides() if s.status == Status.FAILED]


def assert_ok(report: RunReport) -> None:
    assert errors(report) == []
    assert exit_code(report) == 0


@pytest.fixture
def sim(sim_org: SimOrg) -> Iterator[SimOrg]:
    yield sim_org


def test_deploy__dead_letter_queues_on__bus_targets_accepted_by_strict_sandbox(sim_org: SimOrg) -> None:
    # Version one gave the member's target (the central bus, another account) a RetryPolicy, which
    # PutTargets refuses for event-bus targets: every member but the notification account failed.
    config = lp_config(sim_org)
    assert_ok(least_privilege(sim_org, config).engine.converge("deploy", Mode.DEPLOY))


def test_every_flow_runs_with_exactly_the_printed_policies(sim: SimOrg, call_log: CallLog) -> None:
    config = lp_config(sim)
    lp = least_privilege(sim, config, call_log)
    engine = lp.engine

    deploy = engine.converge("deploy", Mode.DEPLOY)
    assert_ok(deploy)
    assert {s.status for s in deploy.accounts if s.account_id in sim.in_scope} == {Status.CREATED}
    assert deploy.management is not None and deploy.management.status == Status.CREATED  # the org watch

    call_log.clear()
    assert_ok(engine.converge("deploy", Mode.DEPLOY))
    assert call_log.writes() == []  # converged: a second deploy writes nothing

    assert_ok(engine.converge("drift", Mode.DRIFT, orphans=True))

    prod1 = sim.accounts["prod1"]
    sim.client("events", prod1).disable_rule(Name="orgalerts-forward")
    drifted = engine.converge("drift", Mode.DRIFT, orphans=True)
    assert [s.account_id for s in drifted.sides() if s.status == Status.DRIFTED] == [prod1]
    assert publish_drift(engine.ctx, drifted, repaired=False)  # drift --publish
    repaired = engine.converge("repair", Mode.REPAIR, orphans=True)
    assert_ok(repaired)
    assert [s.account_id for s in repaired.sides() if s.status == Status.REPAIRED] == [prod1]

    # onboard: a new account in a target OU, its member role created by whoever provisions accounts
    new = sim.add_account("new1", "Prod")
    iam = sim.client("iam", new)
    trusted = {"Effect": "Allow", "Principal": {"AWS": account_root_arn(MANAGEMENT)}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [trusted]}
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=ROLE, PolicyName="orgalerts-member", PolicyDocument=json.dumps(lp.member_policy))
    scope = check_onboard(engine.ctx, new)
    onboard = engine.converge("onboard", Mode.DEPLOY, only=[new], scope=scope)
    assert_ok(onboard)
    assert [s.status for s in onboard.accounts] == [Status.CREATED]

    offboard = engine.remove("offboard", [sim.accounts["prod2"]])
    assert_ok(offboard)
    assert [s.status for s in offboard.accounts] == [Status.REMOVED]

    # redrive: events held in the member and central dead-letter queues are re-sent
    notification = sim.accounts["notification"]
    for account, queue in ((prod1, "orgalerts-forward-dlq"), (notification, "orgalerts-central-dlq")):
        sqs = sim.client("sqs", account)
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"], MessageBody='{"detail": {}}')
    redrive = run_redrive(engine)
    assert_ok(redrive)
    assert {s.account_id for s in redrive.sides() if s.status == Status.RESENT} == {prod1, notification}

    verified = run_verify(
        engine.ctx, accounts=None, count=2, timeout=10, clock=lp.clock, sleep=lp.clock.sleep, poll_interval=5
    )
    assert [c.status for c in verified.checks] == ["not delivered", "not delivered"]
    assert all((c.error or "").startswith("no alert within") for c in verified.checks)
    assert verified.cleanup_errors == []
    lp.clock.now += 120  # the strict sandbox refuses a deleted queue's name for 60 s
    assert run_watch(engine.ctx, io.StringIO(), seconds=3, clock=lp.clock, sleep=lp.clock.sleep) == 0

    doctor = run_doctor(engine.ctx)
    assert [c.detail for c in doctor.checks if any(d in c.detail for d in DENIED)] == []
    # moto has no trail: doctor says so (a finding about the organization, not about permissions)
    assert {c.name for c in doctor.checks if c.status == FAIL} <= {"cloudtrail"}

    teardown = engine.remove("teardown", None)
    assert_ok(teardown)
    assert teardown.central is not None and teardown.central.status == Status.REMOVED
    assert teardown.management is not None and teardown.management.status == Status.REMOVED


def test_features_off_then_teardown_of_what_an_earlier_config_left(sim: SimOrg) -> None:
    """Deploy with every alert feature on, then tear down with the policies printed for a config that has
    them all off: reading and removing stay granted, so nothing is left behind."""
    on = lp_config(sim)
    off = lp_config(
        sim, alerts={"pattern": "iam-changes", "dead_letter_queues": False, "account_changes": False,
                     "tamper_alerts": False},
    )  # fmt: skip
    seeded_for_off = policies(off)
    assert "sqs:CreateQueue" not in json.dumps(seeded_for_off["member"])
    deployed_with = least_privilege(sim, on, printed=policies(on))
    assert_ok(deployed_with.engine.converge("deploy", Mode.DEPLOY))
    # re-seed the same principals with the narrower policies
    for account in sim.accounts.values():
        iam = sim.client("iam", account)
        iam.put_role_policy(
            RoleName=ROLE, PolicyName="orgalerts-member", PolicyDocument=json.dumps(seeded_for_off["member"])
        )
        if account == sim.accounts["notification"]:
            iam.put_role_policy(
                RoleName=ROLE,
                PolicyName="orgalerts-notification",
                PolicyDocument=json.dumps(seeded_for_off["notification"]),
            )
    sim.client("iam").put_user_policy(
        UserName="orgalerts-orchestrator", PolicyName="orgalerts-orchestrator",
        PolicyDocument=json.dumps(seeded_for_off["orchestrator"]),
    )  # fmt: skip
    engine = make_engine(off, gateway=deployed_with.engine.ctx.gateway)
    teardown = engine.remove("teardown", None)
    assert_ok(teardown)
    from moto.sqs.models import sqs_backends

    assert [q for a in sim.in_scope for q in sqs_backends[a]["us-east-1"].queues] == []


def test_trail_and_guardrail_with_exactly_the_printed_policies(sim: SimOrg) -> None:
    """trail.create and guardrail.scp on, every alert feature on: deploy, a second deploy, drift --repair of
    a stopped trail, doctor, teardown."""
    config = all_features(sim)
    engine = least_privilege(sim, config).engine
    first = engine.converge("deploy", Mode.DEPLOY)
    # The SCP policy type is PENDING_ENABLE for a while after EnablePolicyType: deploy waits for it.
    assert errors(first) == []
    deploy = engine.converge("deploy", Mode.DEPLOY)
    assert_ok(deploy)
    assert deploy.management is not None and deploy.management.status == Status.UNCHANGED
    sim.client("cloudtrail").stop_logging(Name="orgalerts-trail")
    repaired = engine.converge("repair", Mode.REPAIR)
    assert_ok(repaired)
    assert repaired.management is not None and repaired.management.status == Status.REPAIRED
    doctor = run_doctor(engine.ctx)
    assert [c.detail for c in doctor.checks if any(d in c.detail for d in DENIED)] == []
    assert [c.name for c in doctor.checks if c.status == FAIL] == []
    assert_ok(engine.remove("teardown", None))


def test_guardrail_deploy_waits_for_scps_to_be_enabled(sim: SimOrg) -> None:
    config = all_features(sim)
    engine = least_privilege(sim, config).engine
    report = engine.converge("deploy", Mode.DEPLOY)
    assert not any("PolicyTypeNotEnabledException" in e for e in errors(report))


def _without(printed: dict[str, dict[str, Any]], principal: str, action: str) -> dict[str, dict[str, Any]]:
    narrowed = copy.deepcopy(printed)
    statements = []
    for statement in narrowed[principal]["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        kept = [a for a in actions if a != action]
        if kept:
            statements.append({**statement, "Action": kept})
    assert statements != narrowed[principal]["Statement"], f"{action} not in the {principal} policy"
    narrowed[principal]["Statement"] = statements
    return narrowed


@pytest.mark.parametrize(
    ("principal", "action"),
    [
        ("member", "events:PutTargets"),
        ("member", "iam:PassRole"),
        ("member", "sqs:CreateQueue"),
        ("notification", "sns:CreateTopic"),
        ("orchestrator", "events:PutRule"),
    ],
)
def test_removing_one_action_fails_with_access_denied_naming_it(sim: SimOrg, principal: str, action: str) -> None:
    config = lp_config(sim)
    printed = _without(policies(config), principal, action)
    report = least_privilege(sim, config, printed=printed).engine.converge("deploy", Mode.DEPLOY)
    failed = {s.account_id: s.error or "" for s in report.sides() if s.status == Status.FAILED}
    if principal == "member":
        assert set(failed) == set(sim.in_scope)
    elif principal == "notification":
        assert report.central is not None
        assert report.central.status == Status.FAILED
        failed = {report.central.account_id: report.central.error or ""}
    else:
        assert report.management is not None and report.management.status == Status.FAILED
        failed = {"management": report.management.error or ""}
    for error in failed.values():
        # AWS's denial code per service: AccessDenied (query), AccessDeniedException (JSON), AuthorizationError (SNS)
        assert error.split(":", 1)[0] in ("AccessDenied", "AccessDeniedException", "AuthorizationError"), error
        assert f"not authorized to perform: {action} on resource" in error, error
