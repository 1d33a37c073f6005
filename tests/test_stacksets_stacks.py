"""The central and management stacks of `deploy: {engine: stacksets}` (orgalerts/engine/stacks.py) on in-process
moto with the sandbox's CloudFormation emulation: the real `central.yaml` and `management.yaml` of the export, a
stand-in member template (the StackSet's fan-out is tested elsewhere).

What can fail here: a stack without the ownership tag is touched; a failed stack operation is not reported (or the
members go on without their central bus); a directly deployed central side is broken by a stack that cannot be
created; a template change is not applied; a too-large template is sent; the waits sleep for real; the policies
`orgalerts permissions` prints do not allow the stack calls (or allow them without engine stacksets).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from conftest import MANAGEMENT, CallLog, FakeClock, SimOrg, account_client, make_engine
from stackset_support import PROBE, probe_member, stackset_clock, stackset_engine  # noqa: F401 (stackset_clock: the `clock` fixture)

from orgalerts.commands.permissions import policies
from orgalerts.config import Config
from orgalerts.engine import stacks as stacks_module
from orgalerts.engine.results import Mode, Status, exit_code
from orgalerts.engine.stacks import StackCommands, StackSide
from orgalerts.engine.stacksets import Commands
from orgalerts.errors import OrgAlertsError
from orgalerts.export.cloudformation import templates as exported
from orgalerts.model.scope import Scope
from orgalerts.sides.base import Where

CENTRAL_STACK = "orgalerts-central"
MANAGEMENT_STACK = "orgalerts-management"


def real_sides(config: Config, scope: Scope) -> dict[str, dict[str, Any]]:
    """The exported central and management templates; a one-queue member template."""
    return {**exported(config, scope), "member.yaml": probe_member()}


def _engine(sim: SimOrg, clock: FakeClock, call_log: CallLog | None = None, **overrides: Any) -> Commands:
    return stackset_engine(sim, clock, real_sides, call_log, **overrides)


def _cfn(account: str) -> Any:
    return account_client("cloudformation", account)


def _stack_names(account: str) -> list[str]:
    return [s["StackName"] for s in _cfn(account).describe_stacks()["Stacks"] if s["StackName"].startswith("orgalerts")]


def test_deploy__central_and_management_stacks_before_the_stack_set__tagged__second_run_zero_writes(
    sim_org: SimOrg, clock: FakeClock, call_log: CallLog
) -> None:
    notification = sim_org.accounts["notification"]
    engine = _engine(sim_org, clock)
    report = engine.converge("deploy", Mode.DEPLOY)
    assert exit_code(report) == 0
    assert f"stack {CENTRAL_STACK}: CREATE_COMPLETE after 0 s" in engine.lines  # type: ignore[attr-defined]
    assert report.central is not None and report.central.status == Status.CREATED
    assert report.central.changes[0].startswith(f"create stack {CENTRAL_STACK} from central.yaml")
    (central,) = _cfn(notification).describe_stacks(StackName=CENTRAL_STACK)["Stacks"]
    (management,) = _cfn(MANAGEMENT).describe_stacks(StackName=MANAGEMENT_STACK)["Stacks"]
    for stack in (central, management):
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        assert {"Key": "managed-by", "Value": "orgalerts"} in stack["Tags"]

    again = _engine(sim_org, clock, call_log).converge("deploy", Mode.DEPLOY)
    assert again.central is not None and (again.central.status, again.central.changes) == (Status.UNCHANGED, [])
    assert call_log.writes() == []
    plan = _engine(sim_org, clock).converge("plan", Mode.PLAN)
    assert exit_code(plan) == 0
    assert _stack_rows(_engine(sim_org, clock).converge("drift", Mode.DRIFT)) == ("unchanged", "unchanged")


def _stack_rows(report: Any) -> tuple[str, str]:
    """The central and management rows' statuses (the member side is a stand-in here: its drift is not read)."""
    return str(report.central.status), str(report.management.status)


def test_stack_without_ownership_tag__refused_and_untouched__members_not_attempted(
    sim_org: SimOrg, clock: FakeClock
) -> None:
    notification = sim_org.accounts["notification"]
    body = '{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}'
    _cfn(notification).create_stack(StackName=CENTRAL_STACK, TemplateBody=body)
    report = _engine(sim_org, clock).converge("deploy", Mode.DEPLOY)
    assert report.central is not None and report.central.status == Status.FAILED
    assert "exists without the tag managed-by: orgalerts" in (report.central.error or "")
    assert exit_code(report) == 1
    assert {r.error for r in report.accounts if r.account_id in sim_org.in_scope} == {
        "not attempted: the central side failed"
    }
    (stack,) = _cfn(notification).describe_stacks(StackName=CENTRAL_STACK)["Stacks"]
    assert (stack["StackStatus"] == "CREATE_COMPLETE" and "Tags" not in stack) or stack.get("Tags") == []
    assert "Handle" in str(_cfn(notification).get_template(StackName=CENTRAL_STACK)["TemplateBody"])
    teardown = _engine(sim_org, clock).teardown()
    assert teardown.central is not None and "does not touch it" in (teardown.central.error or "")
    assert _stack_names(notification) == [CENTRAL_STACK]


def test_stack_creation_fails__row_failed_with_cloudformation_reason__next_deploy_recreates_it(
    sim_org: SimOrg, clock: FakeClock
) -> None:
    notification = sim_org.accounts["notification"]
    events = account_client("events", notification)
    events.create_event_bus(Name="orgalerts-central")  # someone's bus of that name, without the ownership marker
    report = _engine(sim_org, clock).converge("deploy", Mode.DEPLOY)
    assert report.central is not None and report.central.status == Status.FAILED
    assert f"stack {CENTRAL_STACK} ROLLBACK_COMPLETE" in (report.central.error or "")
    assert "CREATE_FAILED" in (report.central.error or "") and "orgalerts-central" in (report.central.error or "")
    assert exit_code(report) == 1
    assert {str(r.status) for r in report.accounts if r.account_id in sim_org.in_scope} == {"failed"}
    drift = _engine(sim_org, clock).converge("drift", Mode.DRIFT)
    assert drift.central is not None and f"stack {CENTRAL_STACK} is ROLLBACK_COMPLETE" in drift.central.changes

    events.delete_event_bus(Name="orgalerts-central")
    plan = _engine(sim_org, clock).converge("plan", Mode.PLAN)
    assert plan.central is not None and plan.central.changes[0].startswith(f"re-create stack {CENTRAL_STACK}")
    fixed = _engine(sim_org, clock).converge("deploy", Mode.DEPLOY)
    assert exit_code(fixed) == 0 and fixed.central is not None and fixed.central.status == Status.CREATED
    (stack,) = _cfn(notification).describe_stacks(StackName=CENTRAL_STACK)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def test_switching_a_direct_deployment_to_stacksets__central_and_management_stay_direct_with_a_note(
    sim_org: SimOrg, clock: FakeClock
) -> None:
    direct = make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)
    assert exit_code(direct) == 0
    report = _engine(sim_org, clock).converge("deploy", Mode.DEPLOY)
    assert exit_code(report) == 0
    assert report.central is not None and report.central.status == Status.UNCHANGED
    assert any(n.startswith("kept converged directly") for n in report.central.notes)
    assert report.management is not None and any(
        n.startswith("kept converged directly") for n in report.management.notes
    )
    assert _stack_names(sim_org.accounts["notification"]) == [] and _stack_names(MANAGEMENT) == []
    drift = _engine(sim_org, clock).converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 0 and _stack_rows(drift) == ("unchanged", "unchanged")


def test_template_change__plan_names_the_resources__deploy_updates_the_stack(sim_org: SimOrg, clock: FakeClock) -> None:
    notification = sim_org.accounts["notification"]
    assert exit_code(_engine(sim_org, clock).converge("deploy", Mode.DEPLOY)) == 0
    two = {"account_id": notification, "emails": ["secops@example.com", "oncall@example.com"]}
    plan = _engine(sim_org, clock, notification=two).converge("plan", Mode.PLAN)
    assert plan.central is not None and plan.central.status == Status.UPDATED
    (text,) = plan.central.changes
    assert text.startswith(f"update stack {CENTRAL_STACK} from central.yaml: add Subscription") and "Oncall" in text

    report = _engine(sim_org, clock, notification=two).converge("deploy", Mode.DEPLOY)
    assert exit_code(report) == 0 and report.central is not None and report.central.status == Status.UPDATED
    (stack,) = _cfn(notification).describe_stacks(StackName=CENTRAL_STACK)["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    subscribed = account_client("sns", notification).list_subscriptions()["Subscriptions"]
    assert sorted(s["Endpoint"] for s in subscribed) == ["oncall@example.com", "secops@example.com"]
    assert _stack_rows(_engine(sim_org, clock, notification=two).converge("drift", Mode.DRIFT)) == (
        "unchanged", "unchanged",
    )  # fmt: skip


def test_template_over_the_request_limit__sent_through_s3__bucket_private_and_tagged__teardown_removes_it(
    sim_org: SimOrg, clock: FakeClock, call_log: CallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stacks_module, "MAX_BODY_BYTES", 1000)  # the real templates are bigger than that
    notification = sim_org.accounts["notification"]
    bucket = f"orgalerts-templates-{notification}-us-east-1"
    report = _engine(sim_org, clock).converge("deploy", Mode.DEPLOY)
    assert exit_code(report) == 0 and report.central is not None and report.central.status == Status.CREATED
    s3 = account_client("s3", notification)
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "managed-by", "Value": "orgalerts"}]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert key.startswith(f"{CENTRAL_STACK}/") and key.endswith(".json")
    assert "RuleOrgalertsCentralOrgalertsAlert" in str(_cfn(notification).get_template(StackName=CENTRAL_STACK))

    _engine(sim_org, clock, call_log).converge("deploy", Mode.DEPLOY)
    assert call_log.writes() == []  # nothing uploaded when nothing changed
    _engine(sim_org, clock).teardown()
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert _stack_names(notification) == []


def test_template_over_the_s3_limit__refused_before_any_write(
    sim_org: SimOrg, clock: FakeClock, call_log: CallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stacks_module, "MAX_BODY_BYTES", 1000)
    monkeypatch.setattr(stacks_module, "MAX_URL_BYTES", 2000)
    report = _engine(sim_org, clock, call_log).converge("deploy", Mode.DEPLOY)
    assert report.central is not None and report.central.status == Status.FAILED
    assert "over CloudFormation's 2000-byte limit of a template in S3" in (report.central.error or "")
    assert [c for c in call_log.writes() if c.service in ("cloudformation", "s3")] == []
    assert _stack_names(sim_org.accounts["notification"]) == []


class _Described:
    """A CloudFormation client whose stack goes through `statuses`, one per DescribeStacks."""

    def __init__(self, statuses: list[str], events: list[dict[str, str]] | None = None) -> None:
        self.statuses = statuses
        self.events = events or []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Stacks": [{"StackStatus": status}]}

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        return {"StackEvents": self.events}


def _waiting(clock: FakeClock, client: _Described) -> tuple[StackCommands, StackSide, list[str]]:
    """The waits alone: a runner with the fake clock's sleep, a client that answers `client`'s statuses."""
    runner = SimpleNamespace(ctx=None, config=None, sleep=clock.sleep)
    lines: list[str] = []
    stacks = StackCommands(runner, lines.append, 10.0)  # type: ignore[arg-type]
    stacks.client = lambda stack: client  # type: ignore[method-assign]
    side = StackSide(CENTRAL_STACK, "central.yaml", Where.CENTRAL, "1", "us-east-1", "central", lambda m: None)
    return stacks, side, lines


def test_wait__polls_through_the_injected_sleep_with_progress() -> None:
    clock = FakeClock()
    client = _Described(["CREATE_IN_PROGRESS"] * 7 + ["CREATE_COMPLETE"])
    stacks, side, lines = _waiting(clock, client)
    start = clock.now
    stacks.wait(side, "id", "CREATE_COMPLETE")
    assert clock.now - start == 70.0  # seven polls of 10 s, on the fake clock
    assert lines[0] == f"stack {CENTRAL_STACK}: CREATE_IN_PROGRESS, waiting"
    assert lines[-1] == f"stack {CENTRAL_STACK}: CREATE_COMPLETE after 70 s"
    assert len([line for line in lines if "waiting" in line]) == 2  # at the start, then once a minute


def test_wait__rollback_raises_with_the_first_resource_failure() -> None:
    events = [  # newest first, as DescribeStackEvents returns them
        {"LogicalResourceId": "TopicX", "ResourceStatus": "DELETE_FAILED", "ResourceStatusReason": "later"},
        {"LogicalResourceId": "RuleY", "ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "Rule exists"},
    ]
    stacks, side, _ = _waiting(FakeClock(), _Described(["ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"], events))
    with pytest.raises(OrgAlertsError, match="ROLLBACK_COMPLETE: RuleY CREATE_FAILED: Rule exists"):
        stacks.wait(side, "id", "CREATE_COMPLETE")


def test_permissions__stack_calls_printed_only_for_engine_stacksets(sim_org: SimOrg) -> None:
    def actions(config: Config, principal: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for statement in policies(config)[principal]["Statement"]:
            listed = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
            for action in listed:
                found.setdefault(action, []).extend(resources)
        return found

    direct = sim_org.config()
    assert "cloudformation:CreateStack" not in actions(direct, "notification")
    assert "cloudformation:CreateStack" not in actions(direct, "orchestrator")
    stacked = sim_org.config(deploy={"engine": "stacksets"})
    notification = sim_org.accounts["notification"]
    assert actions(stacked, "notification")["cloudformation:UpdateStack"] == [
        f"arn:aws:cloudformation:us-east-1:{notification}:stack/orgalerts-central/*"
    ]
    assert actions(stacked, "orchestrator")["cloudformation:DeleteStack"] == [
        "arn:aws:cloudformation:*:*:stack/orgalerts-management/*"
    ]


def test_stacks_run_with_exactly_the_printed_policies(
    sim_org: SimOrg, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the template bucket (TemplateURL), so the S3 calls are authorized too; TemplateBody runs as the
    least-privilege orchestrator in test_stacksets_sandbox.py."""
    from test_least_privilege import least_privilege, lp_config

    monkeypatch.setattr(stacks_module, "MAX_BODY_BYTES", 1000)

    config = lp_config(sim_org, deploy={"engine": "stacksets"})
    runner = least_privilege(sim_org, config).engine
    runner.sleep = clock.sleep
    engine = Commands(runner, real_sides, poll_seconds=10.0)
    for command, mode in (("deploy", Mode.DEPLOY), ("plan", Mode.PLAN), ("drift", Mode.DRIFT), ("repair", Mode.REPAIR)):
        report = engine.converge(command, mode)
        assert [report.central.error, report.management.error] == [None, None], command  # type: ignore[union-attr]
    assert _stack_names(sim_org.accounts["notification"]) == [CENTRAL_STACK]
    assert _stack_names(MANAGEMENT) == [MANAGEMENT_STACK]
    report = engine.teardown()
    assert [s.error for s in report.sides() if s.status == Status.FAILED] == []
    assert _stack_names(sim_org.accounts["notification"]) == [] and _stack_names(MANAGEMENT) == []


def test_without_create_stack__access_denied_naming_it(sim_org: SimOrg, clock: FakeClock) -> None:
    from test_least_privilege import _without, least_privilege, lp_config

    config = lp_config(sim_org, deploy={"engine": "stacksets"})
    printed = _without(policies(config), "notification", "cloudformation:CreateStack")
    runner = least_privilege(sim_org, config, printed=printed).engine
    runner.sleep = clock.sleep
    report = Commands(runner, real_sides, poll_seconds=10.0).converge("deploy", Mode.DEPLOY)
    assert report.central is not None and "cloudformation:CreateStack" in (report.central.error or "")
    assert exit_code(report) == 1
