"""Must-show of `deploy: {engine: stacksets}` on the sandbox: the shipped organization, strict mode, orgalerts as
the least-privilege orchestrator holding exactly the printed policies, the real templates of
`orgalerts export cloudformation` (member StackSet, central and management stacks), alerts delivered by the
sandbox's CloudTrail and EventBridge emulation.

Time is a FakeClock shared by the engine's waits and the StackSets emulation (each account takes 30 s of it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
from conftest import CallLog, FakeClock, account_client

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.cli.app import sandbox_least_privilege
from orgalerts.config import Config, DeployConfig, load_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, RunReport, Status, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.engine.stacksets import Commands
from orgalerts.sandbox import Sandbox, parse_sandbox_spec, stacksets
from orgalerts.sandbox.stacksets import StackSetSettings
from orgalerts.sandbox.strict import StrictSettings, grant_organization_access_admin

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"
MANAGEMENT = "123456789012"
NOTIFICATION = "222222222222"
EXCLUDED = "333333333399"
SUSPENDED = "333333333303"
PCI = "ou-sbx0-pcizone1"  # three levels below the target OU ou-sbx0-workload
IN_SCOPE = ["222222222222", "222222222223", "333333333301", "333333333302", "333333333304", "333333333305",
            "333333333306", "333333333310"]  # fmt: skip
OUTSIDE = ["444444444401", "444444444402"]


@dataclasses.dataclass
class Env:
    sandbox: Sandbox
    config: Config
    clock: FakeClock

    def engine(self, call_log: CallLog | None = None) -> Commands:
        described = self.sandbox.describe()
        gateway = Gateway(
            GatewaySettings(
                endpoint_url=self.sandbox.endpoint_url,
                access_key_id=described["orchestrator_access_key_id"],
                secret_access_key=described["orchestrator_secret_access_key"],
            )
        )
        if call_log is not None:
            gateway.add_observer(call_log)
        runner = Runner(Context(self.config, gateway), retry_wait=tenacity.wait_none(), sleep=self.clock.sleep)
        return Commands(runner, poll_seconds=10.0)

    def client(self, service: str, account: str | None = None) -> Any:
        return account_client(service, account, endpoint_url=self.sandbox.endpoint_url)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    shipped = load_config(CONFIG_PATH)
    config = dataclasses.replace(shipped, deploy=DeployConfig(engine="stacksets"))
    assert config.sandbox is not None
    clock = FakeClock()
    before = stacksets.SETTINGS
    stacksets.configure(StackSetSettings(clock=clock, seconds_per_account=30.0, pending_reads=1))
    strict = StrictSettings(clock=clock, random=lambda: 1.0, empty_short_poll_probability=0.0)
    spec = parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))
    try:
        with Sandbox(spec, strict=strict, least_privilege=sandbox_least_privilege(config)) as running:
            yield Env(running, config, clock)
    finally:
        stacksets.configure(before)


def _statuses(report: RunReport) -> dict[str, str]:
    return {r.account_id: str(r.status) for r in report.accounts}


def _failures(report: RunReport) -> list[str]:
    return [f"{s.account_id}: {s.error}" for s in report.sides() if s.status == Status.FAILED]


def _stacks(env: Env, account: str) -> list[str]:
    return [s["StackName"] for s in env.client("cloudformation", account).describe_stacks()["Stacks"]]


@pytest.fixture
def deployed(env: Env) -> Env:
    report = env.engine().converge("deploy", Mode.DEPLOY)
    assert _failures(report) == []
    return env


def _member_stacks(env: Env, account: str) -> list[str]:
    return [n for n in _stacks(env, account) if n.startswith("StackSet-orgalerts-member-")]


def _stack(env: Env, account: str, name: str, region: str = "us-east-1") -> dict[str, Any]:
    cfn = account_client("cloudformation", account, region=region, endpoint_url=env.sandbox.endpoint_url)
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    return dict(stack)


def test_deploy_org__every_in_scope_account_nested_ous_included__excluded_and_management_not__second_deploy_no_change(
    env: Env,
) -> None:
    planned_calls = CallLog()
    plan = env.engine(planned_calls).converge("plan", Mode.PLAN)
    assert _failures(plan) == [] and exit_code(plan) == 3 and planned_calls.writes() == []
    assert plan.central is not None and plan.management is not None
    (central_stack,) = [c for c in plan.central.changes if "stack" in c]
    assert re.fullmatch(r"create stack orgalerts-central from central\.yaml \((\d+) resources\)", central_stack)
    assert "create stack orgalerts-management from management.yaml (2 resources)" in plan.management.changes

    first = env.engine().converge("deploy", Mode.DEPLOY)
    assert _failures(first) == [] and exit_code(first) == 0
    statuses = _statuses(first)
    assert {a: statuses[a] for a in IN_SCOPE} == dict.fromkeys(IN_SCOPE, "created")
    assert (statuses[EXCLUDED], statuses[SUSPENDED]) == ("skipped", "skipped")
    assert first.central is not None and str(first.central.status) == "created"
    for account in IN_SCOPE:
        assert len(_member_stacks(env, account)) == 1
    for account, name in ((NOTIFICATION, "orgalerts-central"), (MANAGEMENT, "orgalerts-management")):
        stack = _stack(env, account, name, env.config.region if account == NOTIFICATION else "us-east-1")
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        assert {"Key": "managed-by", "Value": "orgalerts"} in stack["Tags"]
    for account in [EXCLUDED, *OUTSIDE]:
        assert _stacks(env, account) == []
    for account in [EXCLUDED, MANAGEMENT, *OUTSIDE]:
        rules = env.client("events", account).list_rules(NamePrefix="orgalerts-forward")["Rules"]
        assert rules == []
    assert _stacks(env, MANAGEMENT) == ["orgalerts-management"]  # never a member instance there

    calls = CallLog()
    second = env.engine(calls).converge("deploy", Mode.DEPLOY)
    assert {a: s for a, s in _statuses(second).items() if a in IN_SCOPE} == dict.fromkeys(IN_SCOPE, "unchanged")
    assert second.management is not None and second.management.changes == []
    assert second.central is not None and (second.central.status, second.central.changes) == ("unchanged", [])
    assert [f"{c.service}:{c.operation}" for c in calls.writes()] == []  # no stack update either
    drift = env.engine().converge("drift", Mode.DRIFT)
    assert _failures(drift) == [] and exit_code(drift) == 0  # the template makes exactly what direct deploy makes


def test_account_created_in_nested_target_ou__covered_with_no_orgalerts_command__iam_change_alerts(
    deployed: Env,
) -> None:
    orgs = deployed.client("organizations")
    created = orgs.create_account(AccountName="new-pci", Email="new-pci@example.com")["CreateAccountStatus"]
    newcomer = str(created["AccountId"])
    orgs.move_account(AccountId=newcomer, SourceParentId="r-sbx0", DestinationParentId=PCI)
    # AWS gives a created account's OrganizationAccountAccessRole administrator rights; the strict sandbox seeds
    # that for the accounts of its spec, here for the new one (a person's way in, not orgalerts').
    grant_organization_access_admin([newcomer])

    assert [n.startswith("StackSet-orgalerts-member-") for n in _stacks(deployed, newcomer)] == [True]
    sqs = deployed.client("sqs", NOTIFICATION)
    url = sqs.create_queue(QueueName="stacksets-listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deployed.client("sns", NOTIFICATION).subscribe(
        TopicArn=deployed.config.central.topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    deployed.client("iam", newcomer).create_user(UserName="mallory")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert [b for b in bodies if f"[orgalerts] INFO in account {newcomer}: CreateUser by " in b] != []

    # Leaving the target OUs removes its instance and stack (RetainStacksOnAccountRemoval is false).
    orgs.move_account(AccountId=newcomer, SourceParentId=PCI, DestinationParentId="ou-sbx0-research")
    assert _stacks(deployed, newcomer) == []
    assert deployed.client("events", newcomer).list_rules(NamePrefix="orgalerts-")["Rules"] == []


def test_drift_after_deleting_a_rule__exactly_that_account__repair_fixes_it(deployed: Env) -> None:
    victim = "333333333304"
    events = deployed.client("events", victim)
    targets = [t["Id"] for t in events.list_targets_by_rule(Rule="orgalerts-forward")["Targets"]]
    events.remove_targets(Rule="orgalerts-forward", Ids=targets)
    events.delete_rule(Name="orgalerts-forward")

    drift = deployed.engine().converge("drift", Mode.DRIFT)
    assert _failures(drift) == []
    assert [r.account_id for r in drift.accounts if r.status == Status.DRIFTED] == [victim]
    assert exit_code(drift) == 3

    repair = deployed.engine().converge("repair", Mode.REPAIR)
    assert _failures(repair) == []
    assert [r.account_id for r in repair.accounts if r.status == Status.REPAIRED] == [victim]
    assert events.describe_rule(Name="orgalerts-forward")["State"] == "ENABLED"
    again = deployed.engine().converge("drift", Mode.DRIFT)
    assert _failures(again) == [] and exit_code(again) == 0


def test_central_rule_deleted__drift_names_it__repair_puts_it_back_directly__the_stack_still_owns_it(
    deployed: Env,
) -> None:
    events = deployed.client("events", NOTIFICATION)
    bus = "orgalerts-central"
    rule = "orgalerts-tamper"  # a central rule whose name no configuration changes
    targets = [t["Id"] for t in events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]]
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=targets)
    events.delete_rule(Name=rule, EventBusName=bus)

    drift = deployed.engine().converge("drift", Mode.DRIFT)
    assert drift.central is not None and drift.central.status == Status.DRIFTED
    assert [c for c in drift.central.changes if "orgalerts-central/orgalerts-tamper" in c] != []
    assert [c for c in drift.central.changes if "stack" in c] == []  # the stack itself is as deployed
    assert exit_code(drift) == 3

    calls = CallLog()
    repair = deployed.engine(calls).converge("repair", Mode.REPAIR)
    assert _failures(repair) == [] and repair.central is not None and repair.central.status == Status.REPAIRED
    assert [c for c in calls.writes() if c.service == "cloudformation"] == []  # put back directly, no stack update
    assert "orgalerts-tamper" in [r["Name"] for r in events.list_rules(NamePrefix=rule, EventBusName=bus)["Rules"]]
    cfn = deployed.client("cloudformation", NOTIFICATION)
    owned = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName="orgalerts-central")["StackResources"]
    }
    assert owned["RuleOrgalertsCentralOrgalertsTamper"] == rule  # same name: the same physical id
    assert _stack(deployed, NOTIFICATION, "orgalerts-central")["StackStatus"] == "CREATE_COMPLETE"
    again = deployed.engine().converge("drift", Mode.DRIFT)
    assert _failures(again) == [] and exit_code(again) == 0


def test_teardown__no_stack_set_instance_or_stack_left(deployed: Env) -> None:
    report = deployed.engine().teardown()
    assert _failures(report) == []
    cfn = deployed.client("cloudformation")
    assert [s for s in cfn.list_stack_sets()["Summaries"] if s["Status"] != "DELETED"] == []
    for account in [*IN_SCOPE, *OUTSIDE, EXCLUDED, MANAGEMENT]:
        assert _stacks(deployed, account) == []
