"""AWS rules the first real deployment would meet, run against the strict sandbox in-process.

Each test here failed on version one: moto accepted what AWS refuses (a RetryPolicy on a cross-account
bus target, a queue name reused within 60 s, an SCP attached while its policy type is still pending,
an empty short poll taken for an empty queue, RemovePermission before the new bus policy). Waits go
through an injected sleep that moves the strict sandbox's clock: nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import tenacity
from conftest import CallLog, FakeClock, SimOrg, build_org
from moto import mock_aws

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.commands.doctor import run_doctor
from orgalerts.commands.redrive import run_redrive
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.sandbox.strict import StrictEngine, StrictSettings, grant_organization_access_admin, send_hook


@dataclass
class Strict:
    sim: SimOrg
    clock: FakeClock
    engine: StrictEngine  # one for the whole test: AWS's memory (deleted queue names, pending types) is global

    def runner(self, call_log: CallLog | None = None, **config: object) -> Runner:
        gateway = Gateway(GatewaySettings(max_attempts=2))
        gateway.add_send_hook(send_hook(self.engine))
        if call_log is not None:
            gateway.add_observer(call_log)
        ctx = Context(self.sim.config(**config), gateway)
        # Default (exponential) waits, slept on the fake clock: the real retry schedule, no real time.
        return Runner(ctx, sleep=self.clock.sleep)


@pytest.fixture
def strict() -> Iterator[Strict]:
    with mock_aws():
        sim = build_org()
        grant_organization_access_admin(sim.accounts.values())
        clock = FakeClock()
        settings = StrictSettings(clock=clock, random=lambda: 0.0, empty_short_poll_probability=0.5)
        yield Strict(sim, clock, StrictEngine(settings))


def test_deploy__strict_sandbox__bus_targets_carry_no_retry_policy_and_deploy_converges(strict: Strict) -> None:
    result = strict.runner().converge("deploy", Mode.DEPLOY)
    assert exit_code(result) == 0, [(a.account_id, a.error) for a in result.accounts if a.error]
    prod1 = strict.sim.accounts["prod1"]
    (target,) = strict.sim.client("events", prod1).list_targets_by_rule(Rule="orgalerts-forward")["Targets"]
    assert ":event-bus/" in target["Arn"] and "RetryPolicy" not in target
    assert "DeadLetterConfig" in target  # undelivered events still go to the member queue
    assert exit_code(strict.runner().converge("drift", Mode.DRIFT)) == 0


def test_teardown_then_deploy__queue_deleted_recently__waits_and_converges(strict: Strict) -> None:
    assert exit_code(strict.runner().converge("deploy", Mode.DEPLOY)) == 0
    assert exit_code(strict.runner().remove("teardown", None)) == 0
    started = strict.clock.now

    redeployed = strict.runner().converge("deploy", Mode.DEPLOY)

    assert exit_code(redeployed) == 0, [(a.account_id, a.error) for a in redeployed.accounts if a.error]
    # The queues came back only once SQS allowed their names again, 60 s after the teardown.
    assert strict.clock.now - started >= 60


def test_redrive__short_polls_come_back_empty_at_random__no_message_left(strict: Strict) -> None:
    assert exit_code(strict.runner().converge("deploy", Mode.DEPLOY)) == 0
    notification = strict.sim.accounts["notification"]
    sqs = strict.sim.client("sqs", notification)
    url = sqs.get_queue_url(QueueName="orgalerts-central-dlq")["QueueUrl"]
    for n in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail": {"eventName": f"Call{n}"}}))

    report = run_redrive(strict.runner())

    assert report.central is not None
    assert report.central.changes == ["re-sent 25 held events from orgalerts-central-dlq"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_guardrail__policy_type_enabled_asynchronously__deploy_waits_for_it(strict: Strict) -> None:
    result = strict.runner(guardrail={"scp": True}).converge("deploy", Mode.DEPLOY)

    assert result.management is not None and result.management.error is None, result.management.error
    assert any("enable service control policies" in c for c in result.management.changes)
    orgs = strict.sim.client("organizations")
    (policy,) = [
        p for p in orgs.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == "orgalerts-guardrail"
    ]
    assert orgs.list_targets_for_policy(PolicyId=policy["Id"])["Targets"]


def test_repair__bus_policy__new_policy_put_without_remove_permission_first(strict: Strict) -> None:
    assert exit_code(strict.runner().converge("deploy", Mode.DEPLOY)) == 0
    notification = strict.sim.accounts["notification"]
    events = strict.sim.client("events", notification)
    bus_arn = events.describe_event_bus(Name="orgalerts-central")["Arn"]
    grant = {"Sid": "anyone", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": bus_arn}
    events.put_permission(
        EventBusName="orgalerts-central", Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]})
    )
    log = CallLog()

    repaired = strict.runner(log).converge("repair", Mode.REPAIR)

    assert repaired.central is not None and repaired.central.status == "repaired"
    central_writes = [c.operation for c in log.writes(notification)]
    assert "PutPermission" in central_writes and "RemovePermission" not in central_writes
    policy = json.loads(events.describe_event_bus(Name="orgalerts-central")["Policy"])
    assert "anyone" not in {s.get("Sid") for s in policy["Statement"]}


def test_runner__retry_wait_injected__strict_sandbox_still_converges(strict: Strict) -> None:
    # The tests' usual wait (none) with the fake clock's sleep: retries happen, time does not pass.
    runner = strict.runner()
    runner.retry_wait = tenacity.wait_none()
    assert exit_code(runner.converge("deploy", Mode.DEPLOY)) == 0


def test_doctor__member_role_that_does_not_exist__fails_with_a_fix(strict: Strict) -> None:
    ctx = strict.runner(member_role={"name": "NoSuchRole", "external_id": None}).ctx

    report = run_doctor(ctx, sample=3)

    (check,) = [c for c in report.checks if c.name == "member-role"]
    assert check.status == "fail" and "cannot assume NoSuchRole" in check.detail
    assert "create role NoSuchRole" in check.fix and "member_role.name" in check.fix
    assert report.exit_code() == 1
