"""`orgalerts export cloudformation`: the templates are the direct engine's desired state, lint clean, deploy through
moto's CloudFormation (plus the sandbox's emulation of the types moto lacks) into a state `drift` calls
`unchanged`, and the roles of deployer-roles.yaml are enough for every flow under the strict sandbox.

In-process moto with the simulated organization of conftest; the alert flowing end to end through template-deployed
resources is in tests/test_export_sandbox.py.
"""

from __future__ import annotations

import json
import re
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
SOURCES = ["iam", "organizations", "identity-center", "root-activity", "sts"]
EVERY_ALERT = {"pattern": "iam-changes", "dead_letter_queues": True, "account_changes": True, "tamper_alerts": True,
               "sources": SOURCES}  # fmt: skip
# The four destinations of issue 13 (e-mail, Slack, PagerDuty, a webhook with a header), their secrets in the
# environment for the direct engine, and the same secrets as the central template's NoEcho parameters.
DESTINATIONS = [
    {"name": "secops-mail", "type": "email", "emails": ["secops@example.com"], "min_severity": "info"},
    {"name": "chat", "type": "slack", "url_env": "ORGALERTS_SLACK_URL", "min_severity": "high"},
    {"name": "oncall", "type": "pagerduty", "routing_key_env": "ORGALERTS_PD_KEY", "min_severity": "critical"},
    {"name": "hook", "type": "webhook", "url_env": "ORGALERTS_HOOK_URL", "header_name": "X-Api-Key",
     "header_value_env": "ORGALERTS_HOOK_KEY", "min_severity": "medium"},
]  # fmt: skip
SECRETS = {
    "ORGALERTS_SLACK_URL": "https://hooks.slack.example/services/T0/B0/s3cr3t-slack",
    "ORGALERTS_PD_KEY": "pd-routing-key-s3cr3t",
    "ORGALERTS_HOOK_URL": "https://hooks.example.net/orgalerts/s3cr3t-path",
    "ORGALERTS_HOOK_KEY": "hook-header-s3cr3t",
}
SECRET_PARAMETERS = {"DestChatUrl": "ORGALERTS_SLACK_URL", "DestOncallRoutingKey": "ORGALERTS_PD_KEY",
                     "DestHookUrl": "ORGALERTS_HOOK_URL", "DestHookHeaderValue": "ORGALERTS_HOOK_KEY"}  # fmt: skip


@pytest.fixture(autouse=True)
def destination_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, value in SECRETS.items():
        monkeypatch.setenv(env, value)


def every_feature(sim_org: SimOrg, **overrides: Any) -> Config:
    """Trail, guardrail, dead-letter queues, tamper alerts, account changes, every source, the four destinations:
    every kind a side has."""
    overrides.setdefault("destinations", DESTINATIONS)
    return sim_org.config(trail={"create": True}, guardrail={"scp": True}, alerts=EVERY_ALERT, **overrides)


def create_stack(
    sim_org: SimOrg,
    account: str,
    name: str,
    template: dict[str, Any],
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
) -> None:
    """`create_stack` with no parameters (every parameter's default comes from the config), or with the secrets."""
    cfn = sim_org.client("cloudformation", account, region)
    given = [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()]
    cfn.create_stack(
        StackName=name, TemplateBody=render(template), Capabilities=["CAPABILITY_NAMED_IAM"], Parameters=given
    )
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def secret_parameters(template: dict[str, Any]) -> dict[str, str]:
    """The secrets the deployer passes to the central stack (the same the direct engine reads from the env)."""
    return {p: SECRETS[env] for p, env in SECRET_PARAMETERS.items() if p in template.get("Parameters", {})}


def deploy_templates(sim_org: SimOrg, config: Config) -> dict[str, dict[str, Any]]:
    built = templates(config, make_engine(config).ctx.scope())
    central = built["central.yaml"]
    create_stack(sim_org, sim_org.accounts["notification"], "orgalerts-central", central, config.region,
                 secret_parameters(central))  # fmt: skip
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
    # One role serves both member rules' targets (the two-role shape before issue 15 is migrated away).
    roles = {r["Properties"]["RoleName"] for r in member.values() if r["Type"] == "AWS::IAM::Role"}
    assert roles == {"orgalerts-forwarder"}
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


# --- destinations: secrets are parameters, never values ------------------------------------------------------------


def test_central_template__destinations__secrets_are_noecho_parameters_and_targets_follow_them(
    sim_org: SimOrg,
) -> None:
    config = every_feature(sim_org)
    built = templates(config, make_engine(config).ctx.scope(), policies(config))
    text = "".join(render(t) for t in built.values())
    assert [env for env, value in SECRETS.items() if value in text] == []  # the environment holds them; no template
    central = built["central.yaml"]
    parameters = central["Parameters"]
    assert {p: (parameters[p]["NoEcho"], parameters[p]["Default"]) for p in SECRET_PARAMETERS} == {
        p: (True, "") for p in SECRET_PARAMETERS
    }
    resources = central["Resources"]
    connections = {r["Properties"]["Name"]: r for r in resources.values() if r["Type"] == "AWS::Events::Connection"}
    assert sorted(connections) == ["orgalerts-dest-chat", "orgalerts-dest-hook", "orgalerts-dest-oncall"]
    hook = connections["orgalerts-dest-hook"]
    assert hook["Condition"] == "DestHookGiven"
    assert central["Conditions"]["DestHookGiven"]["Fn::And"]  # the URL and the header value, both
    assert hook["Properties"]["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "X-Api-Key", "ApiKeyValue": {"Ref": "DestHookHeaderValue"}}  # fmt: skip
    assert (
        "managed-by=orgalerts" in hook["Properties"]["Description"]
        and "secret" not in hook["Properties"]["Description"]
    )
    oncall = connections["orgalerts-dest-oncall"]["Properties"]["AuthParameters"]["InvocationHttpParameters"]
    assert oncall == {"BodyParameters": [{"Key": "routing_key", "Value": {"Ref": "DestOncallRoutingKey"},
                                          "IsValueSecret": True}]}  # fmt: skip
    # Every API-destination target names the created destination (its ARN has the id AWS appends) under its condition
    api_targets = [t for r in resources.values() if r["Type"] == "AWS::Events::Rule"
                   for t in r["Properties"].get("Targets", []) if "Fn::If" in t]  # fmt: skip
    assert api_targets and all(
        t["Fn::If"][1]["Arn"] == {"Fn::GetAtt": [t["Fn::If"][1]["Arn"]["Fn::GetAtt"][0], "Arn"]}
        and resources[t["Fn::If"][1]["Arn"]["Fn::GetAtt"][0]]["Condition"] == t["Fn::If"][0]
        and t["Fn::If"][2] == {"Ref": "AWS::NoValue"}
        for t in api_targets
    )
    # a resource under no condition never waits for one under a condition (the stack would fail without the secret)
    for logical, resource in resources.items():
        for waited in resource.get("DependsOn", []):
            assert resources[waited].get("Condition") in (None, resource.get("Condition")), (logical, waited)


def test_templates_deployed__destinations__connections_made_and_a_deploy_then_writes_nothing(sim_org: SimOrg) -> None:
    config = every_feature(sim_org)
    deploy_templates(sim_org, config)
    events = sim_org.client("events", sim_org.accounts["notification"])
    described = events.describe_connection(Name="orgalerts-dest-oncall")
    assert "managed-by=orgalerts" in described["Description"]
    assert (
        events.describe_api_destination(Name="orgalerts-dest-hook")["InvocationEndpoint"]
        == SECRETS["ORGALERTS_HOOK_URL"]
    )
    calls = CallLog()
    deploy = make_engine(config, calls).converge("deploy", Mode.DEPLOY)
    assert exit_code(deploy) == 0, statuses(deploy)
    assert deploy.central is not None and deploy.central.status == Status.UNCHANGED
    assert [c for c in calls.writes() if "Connection" in c or "ApiDestination" in c or "PutTargets" in c] == []


def test_templates_deployed__another_webhook_url_passed__drift_reports_the_central_side(sim_org: SimOrg) -> None:
    # The secret URL is compared (through its digest), so drift is not vacuous for template-made destinations.
    config = every_feature(sim_org)
    central = templates(config, make_engine(config).ctx.scope())["central.yaml"]
    given = {**secret_parameters(central), "DestHookUrl": "https://elsewhere.example.net/hook"}
    create_stack(sim_org, sim_org.accounts["notification"], "orgalerts-central", central, parameters=given)
    drift = make_engine(config).converge("drift", Mode.DRIFT, only=[sim_org.accounts["notification"]])
    assert drift.central is not None and drift.central.status == Status.DRIFTED
    assert [c for c in drift.central.changes if "orgalerts-dest" in c] == [
        "API destination orgalerts-dest-hook: endpoint changed"  # what changed, never the URL
    ]


def test_central_template__no_secret_passed__created_without_destinations(sim_org: SimOrg) -> None:
    config = every_feature(sim_org)
    central = templates(config, make_engine(config).ctx.scope())["central.yaml"]
    create_stack(sim_org, sim_org.accounts["notification"], "orgalerts-central", central)  # no parameters at all
    events = sim_org.client("events", sim_org.accounts["notification"])
    assert events.list_connections(NamePrefix="orgalerts-")["Connections"] == []
    assert events.list_api_destinations(NamePrefix="orgalerts-")["ApiDestinations"] == []
    bus = config.names.central_bus
    rules = [r["Name"] for r in events.list_rules(EventBusName=bus, NamePrefix="orgalerts-")["Rules"]]
    targets = [t for rule in rules for t in events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]]
    assert targets and not [t for t in targets if ":api-destination/" in t["Arn"]]


# --- the Identity Center watch: in the template of its account and region ---------------------------------------


def resource_names(template: dict[str, Any]) -> set[str]:
    return {str(r["Properties"].get("Name") or r["Properties"].get("RoleName")) for r in template["Resources"].values()}


def test_identity_center__management_account_us_east_1__in_management_yaml(sim_org: SimOrg) -> None:
    config = every_feature(sim_org)
    built = templates(config, make_engine(config).ctx.scope())
    names = config.names
    assert {names.ic_rule, names.ic_watchdog_rule, names.ic_forwarder_role} <= resource_names(built["management.yaml"])
    assert names.ic_rule not in resource_names(built["central.yaml"])


def test_identity_center__notification_account_and_region__in_central_yaml(sim_org: SimOrg) -> None:
    config = every_feature(sim_org, identity_center={"account_id": sim_org.accounts["notification"]})
    built = templates(config, make_engine(config).ctx.scope(), policies(config))
    assert config.names.ic_rule in resource_names(built["central.yaml"])
    assert config.names.ic_rule not in resource_names(built["management.yaml"])
    assert lint_findings(built) == []


@pytest.mark.parametrize(
    ("where", "key"),
    [({"account_id": "prod1"}, "identity_center.account_id"), ({"region": "eu-west-1"}, "identity_center.region")],
)
def test_identity_center__elsewhere__export_refused_naming_the_key(
    sim_org: SimOrg, where: dict[str, str], key: str
) -> None:
    if "account_id" in where:
        where = {"account_id": sim_org.accounts[where["account_id"]]}
    config = every_feature(sim_org, identity_center=where)
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: for `export cloudformation`, Identity Center in"):
        templates(config, make_engine(config).ctx.scope())
