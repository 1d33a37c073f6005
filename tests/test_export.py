"""`orgalerts export cloudformation`: the templates are the direct engine's desired state, lint clean, deploy through
moto's CloudFormation (plus the sandbox's emulation of the types moto lacks) into a state `drift` calls
`unchanged`, and the roles of deployer-roles.yaml are enough for every flow under the strict sandbox.

In-process moto with the simulated organization of conftest; the alert flowing end to end through template-deployed
resources is in tests/test_export_sandbox.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import lint
from conftest import MANAGEMENT, CallLog, FakeClock, SimOrg, make_engine

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.cli.app import main
from orgalerts.commands.export import run_export
from orgalerts.commands.permissions import policies
from orgalerts.commands.verify import run_verify
from orgalerts.config import Config, load_config
from orgalerts.engine.results import Mode, RunReport, Status, exit_code
from orgalerts.errors import ConfigError
from orgalerts.export.cloudformation import FILES, render, templates
from orgalerts.model.scope import Scope
from orgalerts.sandbox import parse_sandbox_spec
from orgalerts.sandbox.strict import StrictEngine, StrictSettings, send_hook
from orgalerts.sides.registry import SIDES

SHIPPED = Path(__file__).parent.parent / "config" / "accounts.yaml"
ROLE = "OrgAlertsMemberRole"
EVERY_ALERT = {"pattern": "iam-changes", "dead_letter_queues": True, "account_changes": True, "tamper_alerts": True}


def every_feature(sim_org: SimOrg, **overrides: Any) -> Config:
    """Trail, guardrail, dead-letter queues, tamper alerts, account changes: every kind a side has."""
    return sim_org.config(trail={"create": True}, guardrail={"scp": True}, alerts=EVERY_ALERT, **overrides)


def create_stack(sim_org: SimOrg, account: str, name: str, template: dict[str, Any], region: str = "us-east-1") -> None:
    """`create_stack` with no parameters: every parameter's default comes from the config."""
    cfn = sim_org.client("cloudformation", account, region)
    cfn.create_stack(StackName=name, TemplateBody=render(template), Capabilities=["CAPABILITY_NAMED_IAM"])
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def deploy_templates(sim_org: SimOrg, config: Config) -> dict[str, dict[str, Any]]:
    built = templates(config, make_engine(config).ctx.scope())
    create_stack(sim_org, sim_org.accounts["notification"], "orgalerts-central", built["central.yaml"], config.region)
    create_stack(sim_org, MANAGEMENT, "orgalerts-management", built["management.yaml"])
    for account in sim_org.in_scope:
        create_stack(sim_org, account, "orgalerts-member", built["member.yaml"])
    return built


def statuses(report: RunReport) -> dict[tuple[str, str], str]:
    return {(s.account_id, s.name): f"{s.status.value} {s.changes} {s.error or ''}".strip() for s in report.sides()}


# --- one source of truth ---------------------------------------------------------------------------------------


def test_every_registered_kind_has_a_cloudformation_form() -> None:
    # A kind added to a side later (by anyone) without its CloudFormation form fails here.
    missing = [
        f"{side.name}: {kind.name}" for side in SIDES for kind in side.kinds if kind.name not in side.cloudformation
    ]
    assert missing == []


def test_templates__hold_exactly_the_desired_names__and_every_resource_is_marked(sim_org: SimOrg) -> None:
    config = every_feature(sim_org)
    built = templates(config, make_engine(config).ctx.scope())
    member = built["member.yaml"]["Resources"]
    assert {r["Properties"].get("RoleName") for r in member.values()} >= {"orgalerts-forwarder", "orgalerts-watchdog"}
    assert {r["Properties"].get("Name") for r in member.values()} >= {"orgalerts-forward", "orgalerts-watchdog"}
    taggable = {"AWS::IAM::Role", "AWS::Events::Rule", "AWS::Events::EventBus", "AWS::SNS::Topic", "AWS::SQS::Queue",
                "AWS::S3::Bucket", "AWS::CloudTrail::Trail", "AWS::Organizations::Policy"}  # fmt: skip
    for name in ("member.yaml", "central.yaml", "management.yaml"):
        for logical, resource in built[name]["Resources"].items():
            if resource["Type"] in taggable:
                assert {"Key": "managed-by", "Value": "orgalerts"} in resource["Properties"]["Tags"], (name, logical)
    # The member template serves every account: its account id is the stack's, never a literal one.
    text = render(member)
    assert not [a for a in sim_org.accounts.values() if a in text]
    assert built["member.yaml"]["Parameters"]["CentralBusArn"]["Default"] == config.central.bus_arn


def test_export__trail_outside_us_east_1__refused_with_the_key(sim_org: SimOrg) -> None:
    config = every_feature(sim_org, region="eu-west-1")
    with pytest.raises(ConfigError, match=r"trail\.create: false, or region us-east-1"):
        templates(config, make_engine(config).ctx.scope())


# --- the command ----------------------------------------------------------------------------------------------


def test_export__writes_exactly_the_four_files(sim_org: SimOrg, tmp_path: Path) -> None:
    out = tmp_path / "templates"
    result = run_export(make_engine(sim_org.config()).ctx, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES) == sorted(result.files)
    for name in FILES:
        assert yaml.safe_load((out / name).read_text())["Resources"]
    assert result.parameters["deployer-roles.yaml"]["ManagementAccountId"] == MANAGEMENT


def test_export_cli__out_is_a_file__exit_2_before_any_aws_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    config = tmp_path / "c.yaml"
    raw = yaml.safe_load(SHIPPED.read_text())
    raw.pop("sandbox")  # no sandbox is started either
    config.write_text(yaml.safe_dump(raw))
    code = main(["--config", str(config), "export", "cloudformation", "--out", str(taken)])
    assert code == 2
    assert f"--out {taken}: is a file" in capsys.readouterr().err
    assert taken.read_text() == "x"


# --- cfn-lint ------------------------------------------------------------------------------------------------


def shipped_scope(config: Config) -> Scope:
    """The shipped config's organization (its sandbox block) as `resolve_scope` sees it: top-level target OUs."""
    assert config.sandbox is not None
    spec = parse_sandbox_spec(config.sandbox, str(SHIPPED))
    paths = tuple(f"{spec.organization_id}/{spec.root_id}/{ou}/*" for ou in config.organization.ous)
    return Scope(spec.organization_id, spec.root_id, spec.management_account_id, (), (), paths, False, (),
                 tuple(config.organization.ous))  # fmt: skip


def lint_findings(built: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"{name}: {match}"
        for name, template in built.items()
        for match in lint(render(template), regions=["us-east-1"])
    ]


def test_cfn_lint__shipped_config__every_template_clean() -> None:
    config = load_config(SHIPPED)
    built = templates(config, shipped_scope(config), policies(config))
    assert sorted(built) == sorted(FILES)
    assert lint_findings(built) == []


def test_cfn_lint__every_feature_on__every_template_clean(sim_org: SimOrg) -> None:
    config = every_feature(sim_org, member_role={"name": ROLE, "external_id": "x-7"})
    built = templates(config, make_engine(config).ctx.scope(), policies(config))
    assert {r["Type"] for r in built["management.yaml"]["Resources"].values()} >= {
        "AWS::CloudTrail::Trail", "AWS::Organizations::Policy", "AWS::Events::Rule"}  # fmt: skip
    assert lint_findings(built) == []


def test_cfn_lint__a_broken_template_is_found() -> None:
    # The lint is not vacuous: a rule whose state CloudFormation does not know is an error.
    config = load_config(SHIPPED)
    member = templates(config, shipped_scope(config))["member.yaml"]
    rule = next(r for r in member["Resources"].values() if r["Type"] == "AWS::Events::Rule")
    rule["Properties"]["State"] = "SOMETIMES"
    assert lint_findings({"member.yaml": member})


# --- deployed through CloudFormation, drift says unchanged ---------------------------------------------------------


def test_templates_deployed__drift_unchanged_everywhere__every_feature_on(sim_org: SimOrg) -> None:
    config = every_feature(sim_org)
    deploy_templates(sim_org, config)

    drift = make_engine(config).converge("drift", Mode.DRIFT, orphans=True)

    assert exit_code(drift) == 0, statuses(drift)
    assert {s.status for s in drift.sides() if s.account_id in sim_org.in_scope} == {Status.UNCHANGED}
    assert drift.central is not None and drift.central.status == Status.UNCHANGED
    assert drift.management is not None and drift.management.status == Status.UNCHANGED


def test_templates_deployed__default_config__a_deploy_then_writes_nothing(sim_org: SimOrg) -> None:
    config = sim_org.config()
    deploy_templates(sim_org, config)
    calls = CallLog()
    deploy = make_engine(config, calls).converge("deploy", Mode.DEPLOY)
    assert exit_code(deploy) == 0, statuses(deploy)
    assert calls.writes() == []  # the templates created exactly what deploy would have

    # drift sees a change made to a template-created resource, as to any other
    sim_org.client("events", sim_org.accounts["prod1"]).disable_rule(Name="orgalerts-forward")
    drift = make_engine(config).converge("drift", Mode.DRIFT)
    assert [s.account_id for s in drift.sides() if s.status == Status.DRIFTED] == [sim_org.accounts["prod1"]]


# --- deployer-roles.yaml: enough for every flow, with IAM enforced ------------------------------------------------


def orchestrator_gateway(sim_org: SimOrg, clock: FakeClock) -> Gateway:
    """The orchestrator role deployer-roles.yaml created in the management account, assumed by an admin there, and
    every call of orgalerts authorized by the strict sandbox against the roles' policies."""
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{MANAGEMENT}:role/OrgAlertsOrchestrator", RoleSessionName="orgalerts"
    )["Credentials"]
    gateway = Gateway(
        GatewaySettings(access_key_id=creds["AccessKeyId"], secret_access_key=creds["SecretAccessKey"], max_attempts=1)
    )
    settings = StrictSettings(clock=clock, random=lambda: 1.0, empty_short_poll_probability=0.0)
    gateway.add_send_hook(send_hook(StrictEngine(settings)))
    return gateway


def assert_ok(report: RunReport) -> None:
    assert [f"{s.account_id} {s.name}: {s.error}" for s in report.sides() if s.status == Status.FAILED] == []
    assert exit_code(report) == 0


def test_deployer_roles__deploy_repair_verify_teardown_with_iam_enforced(sim_org: SimOrg) -> None:
    config = every_feature(sim_org, member_role={"name": ROLE, "external_id": None})
    roles = templates(config, make_engine(config).ctx.scope(), policies(config))["deployer-roles.yaml"]
    for account in sim_org.accounts.values():  # the StackSet: every member account
        create_stack(sim_org, account, "orgalerts-deployer-roles", roles)
    create_stack(sim_org, MANAGEMENT, "orgalerts-deployer-roles", roles)  # the management account's stack
    notification_role = sim_org.client("iam", sim_org.accounts["notification"]).list_role_policies(RoleName=ROLE)
    assert sorted(notification_role["PolicyNames"]) == ["orgalerts-member", "orgalerts-notification"]
    assert sim_org.client("iam", sim_org.accounts["prod1"]).list_role_policies(RoleName=ROLE)["PolicyNames"] == [
        "orgalerts-member"
    ]
    clock = FakeClock()
    engine = make_engine(config, gateway=orchestrator_gateway(sim_org, clock), sleep=clock.sleep)

    assert_ok(engine.converge("deploy", Mode.DEPLOY))
    events = sim_org.client("events", sim_org.accounts["prod2"])
    events.remove_targets(Rule="orgalerts-watchdog", Ids=["orgalerts-central-bus"])
    events.delete_rule(Name="orgalerts-watchdog")
    repaired = engine.converge("repair", Mode.REPAIR, orphans=True)
    assert_ok(repaired)
    assert [s.account_id for s in repaired.sides() if s.status == Status.REPAIRED] == [sim_org.accounts["prod2"]]
    verified = run_verify(
        engine.ctx, accounts=None, count=1, timeout=10, clock=clock, sleep=clock.sleep, poll_interval=5
    )
    # in-process moto records no CloudTrail event, so no alert arrives; every call verify makes was allowed
    assert [c.status for c in verified.checks] == ["not delivered"] and verified.cleanup_errors == []
    teardown = engine.remove("teardown", None)
    assert_ok(teardown)
    assert teardown.management is not None and teardown.management.status == Status.REMOVED


def test_deployer_roles__without_the_notification_policy__the_central_side_is_denied(sim_org: SimOrg) -> None:
    # The proof above is not vacuous: the same flow with the member policy only in the notification account fails.
    config = sim_org.config(member_role={"name": ROLE, "external_id": None})
    printed = policies(config)
    roles = templates(config, make_engine(config).ctx.scope(), {**printed, "notification": printed["member"]})
    for account in [*sim_org.accounts.values(), MANAGEMENT]:
        create_stack(sim_org, account, "orgalerts-deployer-roles", roles["deployer-roles.yaml"])
    clock = FakeClock()
    engine = make_engine(config, gateway=orchestrator_gateway(sim_org, clock), sleep=clock.sleep)
    deploy = engine.converge("deploy", Mode.DEPLOY)
    assert deploy.central is not None and deploy.central.status == Status.FAILED
    assert "AccessDenied" in json.dumps(deploy.central.error)
