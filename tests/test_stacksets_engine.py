"""The StackSets engine (deploy.engine: stacksets) on in-process moto with the sandbox's StackSets emulation.

The member template here is a stand-in (one tagged queue) until `orgalerts export cloudformation` provides the
real one; these tests are about the fan-out: which accounts get an instance, what a second run writes, how
operations are awaited, what offboard and teardown leave.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import MANAGEMENT, CallLog, FakeClock, SimOrg, account_client
from stackset_support import PROBE, probe_member, stackset_clock, stackset_engine  # noqa: F401 (stackset_clock: the `clock` fixture)

from orgalerts.cli import app as cli
from orgalerts.config import Config
from orgalerts.engine.results import Mode, Status, exit_code
from orgalerts.engine.stacksets import Commands, covered
from orgalerts.model.scope import Scope
from orgalerts.sandbox import stacksets
from orgalerts.sandbox.stacksets import StackSetSettings


def probe_templates(config: Config, scope: Scope) -> dict[str, dict[str, Any]]:
    return {"member.yaml": probe_member()}


def _engine(sim: SimOrg, clock: FakeClock, call_log: CallLog | None = None, **overrides: Any) -> Commands:
    return stackset_engine(sim, clock, probe_templates, call_log, **overrides)


def _has_probe(account_id: str) -> bool:
    urls = account_client("sqs", account_id).list_queues().get("QueueUrls", [])
    return any(u.endswith(f"/{PROBE}") for u in urls)


def _statuses(report: Any) -> dict[str, str]:
    return {r.account_id: str(r.status) for r in report.accounts}


def test_covered__management_and_outside_included_accounts_go_direct(sim_org: SimOrg, clock: FakeClock) -> None:
    engine = _engine(
        sim_org, clock, organization={"ous": [sim_org.root_id], "exclude_accounts": [], "include_accounts": []}
    )
    fanned, direct = covered(engine.config, engine.runner.scope())
    assert [a.id for a in direct] == [MANAGEMENT]
    assert MANAGEMENT not in {a.id for a in fanned} and sim_org.accounts["outside"] in {a.id for a in fanned}


def test_deploy__every_in_scope_account_nested_included__excluded_and_management_not__second_run_writes_nothing(
    sim_org: SimOrg, clock: FakeClock, call_log: CallLog
) -> None:
    engine = _engine(sim_org, clock, call_log)
    report = engine.converge("deploy", Mode.DEPLOY)
    statuses = _statuses(report)
    assert {a: statuses[a] for a in sim_org.in_scope} == dict.fromkeys(sim_org.in_scope, "created")
    assert statuses[sim_org.accounts["excluded"]] == "skipped"
    assert exit_code(report) == 0
    for account in sim_org.in_scope:
        assert _has_probe(account)
    for account in (sim_org.accounts["excluded"], sim_org.accounts["outside"], MANAGEMENT):
        assert not _has_probe(account)
    assert "create StackSet orgalerts-member (service-managed, automatic deployment on)" in report.management.changes  # type: ignore[union-attr]
    assert any("SUCCEEDED" in line for line in engine.lines)  # type: ignore[attr-defined]
    assert clock.now > 1000.0  # the operation was awaited on the injected clock, not in real time

    call_log.clear()
    again = engine.converge("deploy", Mode.DEPLOY)
    assert {a: s for a, s in _statuses(again).items() if a in sim_org.in_scope} == dict.fromkeys(
        sim_org.in_scope, "unchanged"
    )
    assert [c.operation for c in call_log.writes()] == []
    plan = engine.converge("plan", Mode.PLAN)
    assert exit_code(plan) == 0


def test_plan__before_deploy__lists_the_stack_set_and_instances_and_writes_nothing(
    sim_org: SimOrg, clock: FakeClock, call_log: CallLog
) -> None:
    engine = _engine(sim_org, clock, call_log)
    report = engine.converge("plan", Mode.PLAN)
    assert exit_code(report) == 3
    row = next(r for r in report.accounts if r.account_id == sim_org.accounts["deep1"])
    assert (row.status, row.changes) == (Status.CREATED, ["create stack instance of StackSet orgalerts-member"])
    assert [c for c in call_log.writes() if c.service == "cloudformation"] == []


def test_deploy__waits_for_an_operation_already_running(sim_org: SimOrg, clock: FakeClock) -> None:
    engine = _engine(sim_org, clock)
    engine.converge("deploy", Mode.DEPLOY)
    cfn = account_client("cloudformation")
    cfn.update_stack_set(StackSetName="orgalerts-member", TemplateBody=cfn.describe_stack_set(
        StackSetName="orgalerts-member")["StackSet"]["TemplateBody"])  # fmt: skip  # running now
    prod1 = sim_org.accounts["prod1"]
    report = engine.offboard(prod1)
    assert any("another operation is running" in line for line in engine.lines)  # type: ignore[attr-defined]
    assert _statuses(report)[prod1] == "removed"
    assert not _has_probe(prod1)


def test_offboard__removes_instance_and_stack__deploy_brings_it_back(sim_org: SimOrg, clock: FakeClock) -> None:
    engine = _engine(sim_org, clock)
    engine.converge("deploy", Mode.DEPLOY)
    prod2 = sim_org.accounts["prod2"]
    report = engine.offboard(prod2)
    row = next(r for r in report.accounts if r.account_id == prod2)
    assert row.status == Status.REMOVED and row.changes[0] == "delete stack instance of StackSet orgalerts-member"
    assert not _has_probe(prod2)
    assert account_client("cloudformation", prod2).describe_stacks()["Stacks"] == []
    assert _has_probe(sim_org.accounts["prod1"])
    onboard = engine.converge("onboard", Mode.DEPLOY, only=[prod2])
    assert _statuses(onboard)[prod2] == "created" and _has_probe(prod2)


def test_teardown__no_stack_set_instance_or_stack_left(sim_org: SimOrg, clock: FakeClock) -> None:
    engine = _engine(sim_org, clock)
    engine.converge("deploy", Mode.DEPLOY)
    report = engine.teardown()
    assert exit_code(report) == 0
    cfn = account_client("cloudformation")
    assert [s["Status"] for s in cfn.list_stack_sets()["Summaries"]] in ([], ["DELETED"])
    for account in sim_org.in_scope:
        assert account_client("cloudformation", account).describe_stacks()["Stacks"] == []
        assert not _has_probe(account)
    assert _statuses(report)[sim_org.accounts["deep1"]] == "removed"
    assert report.management is not None and report.management.account_id == MANAGEMENT
    assert "delete StackSet orgalerts-member" in report.management.changes


def test_stacksets_flows_run_with_exactly_the_printed_policies(sim_org: SimOrg, clock: FakeClock) -> None:
    """deploy, plan, drift, offboard, onboard and teardown through the StackSet, as the seeded least-privilege
    orchestrator, every call authorized by the strict sandbox against exactly what `orgalerts permissions` prints."""
    from test_least_privilege import least_privilege, lp_config

    config = lp_config(sim_org, deploy={"engine": "stacksets"})
    runner = least_privilege(sim_org, config).engine
    runner.sleep = clock.sleep
    engine = Commands(runner, probe_templates, poll_seconds=10.0)
    for command, mode in (("deploy", Mode.DEPLOY), ("plan", Mode.PLAN), ("drift", Mode.DRIFT)):
        report = engine.converge(command, mode)
        denied = [f"{s.account_id}: {s.error}" for s in report.sides() if s.error and "AccessDenied" in s.error]
        assert denied == [], command
    assert _has_probe(sim_org.accounts["deep1"])
    prod1 = sim_org.accounts["prod1"]
    assert engine.offboard(prod1).accounts[0].status == Status.REMOVED
    assert _statuses(engine.converge("onboard", Mode.DEPLOY, only=[prod1]))[prod1] == "created"
    report = engine.teardown()
    assert [s.error for s in report.sides() if s.status == Status.FAILED] == []
    assert not _has_probe(sim_org.accounts["deep1"])


def test_removing_stack_set_permission__access_denied_naming_it(sim_org: SimOrg, clock: FakeClock) -> None:
    from test_least_privilege import _without, least_privilege, lp_config

    from orgalerts.commands.permissions import policies

    config = lp_config(sim_org, deploy={"engine": "stacksets"})
    printed = _without(policies(config), "orchestrator", "cloudformation:CreateStackInstances")
    runner = least_privilege(sim_org, config, printed=printed).engine
    runner.sleep = clock.sleep
    report = Commands(runner, probe_templates, poll_seconds=10.0).converge("deploy", Mode.DEPLOY)
    assert "cloudformation:CreateStackInstances" in (report.management.error or "")  # type: ignore[union-attr]
    assert exit_code(report) == 1


def _config_file(sim: SimOrg, tmp_path: Path, deploy: Any) -> str:
    path = tmp_path / "accounts.yaml"
    path.write_text(yaml.safe_dump(sim.raw_config(deploy=deploy)))
    return str(path)


def test_cli__engine_selected_by_config__json_rows_as_direct_deploy(
    sim_org: SimOrg, clock: FakeClock, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgalerts.engine import stacksets as engine_module

    monkeypatch.setattr(engine_module, "POLL_SECONDS_AWS", 0.0)  # in-process moto: the CLI polls without waiting
    stacksets.configure(StackSetSettings(clock=clock, seconds_per_account=0.0, pending_reads=1))
    config = _config_file(sim_org, tmp_path, {"engine": "stacksets"})

    assert cli.main(["--config", config, "deploy", "--json"]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    rows = {r["account_id"]: r for r in document["accounts"]}
    assert {a: rows[a]["status"] for a in sim_org.in_scope} == dict.fromkeys(sim_org.in_scope, "created")
    assert all(rows[a]["error"] is None for a in sim_org.in_scope)
    assert "StackSet orgalerts-member: operation" in err
    assert account_client("cloudformation").describe_stack_set(StackSetName="orgalerts-member")["StackSet"][
        "AutoDeployment"
    ] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}

    assert cli.main(["--config", config, "plan", "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["--config", config, "teardown", "--yes", "--json"]) == 0
    assert [s for s in account_client("cloudformation").list_stack_sets()["Summaries"] if s["Status"] == "ACTIVE"] == []


@pytest.mark.parametrize(("deploy", "expected"), [({"engine": "cfn"}, "one of direct, stacksets, found 'cfn'"),
                                                  ({"engines": "x"}, "no such key")])  # fmt: skip
def test_cli__bad_deploy_engine__exit_2_naming_file_and_key(
    sim_org: SimOrg, tmp_path: Path, capsys: Any, deploy: Any, expected: str
) -> None:
    config = _config_file(sim_org, tmp_path, deploy)
    assert cli.main(["--config", config, "plan"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: deploy." in err and expected in err


def test_stack_set_without_ownership_tag__deploy_fails_and_touches_nothing(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = account_client("cloudformation")
    cfn.activate_organizations_access()
    cfn.create_stack_set(
        StackSetName="orgalerts-member", TemplateBody='{"Resources": {}}', PermissionModel="SERVICE_MANAGED"
    )
    report = _engine(sim_org, clock).converge("deploy", Mode.DEPLOY)
    assert exit_code(report) == 1
    assert "without the tag managed-by: orgalerts" in (report.management.error or "")  # type: ignore[union-attr]
    assert cfn.list_stack_instances(StackSetName="orgalerts-member")["Summaries"] == []
    assert cfn.describe_stack_set(StackSetName="orgalerts-member")["StackSet"]["TemplateBody"] == '{"Resources": {}}'


def test_root_target__management_account_converged_directly_with_a_note(sim_org: SimOrg, clock: FakeClock) -> None:
    organization = {
        "ous": [sim_org.root_id],
        "exclude_accounts": [sim_org.accounts["excluded"]],
        "include_accounts": [],
    }
    report = _engine(sim_org, clock, organization=organization).converge("deploy", Mode.DEPLOY)
    row = next(r for r in report.accounts if r.account_id == MANAGEMENT)
    assert row.status == Status.CREATED and "StackSets never deploy to the management account" in row.notes[-1]
    assert not _has_probe(MANAGEMENT)  # the direct engine deployed the real member side there, not the StackSet
    assert sim_org.client("events", MANAGEMENT).describe_rule(Name="orgalerts-forward")["State"] == "ENABLED"
    assert _has_probe(sim_org.accounts["outside"])
