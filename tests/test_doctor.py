"""`orgalerts doctor`: on the sandbox (missing trail -> fail, a trail -> pass, the trail setting + deploy ->
pass) and on moto in-process for the ways a trail can exist and still never feed an alert."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import tenacity
import yaml
from botocore.exceptions import ClientError
from conftest import MANAGEMENT, CallLog, SimOrg, make_context

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.commands.doctor import DoctorReport, run_doctor, sample_accounts
from orgalerts.commands.doctor_trails import management_coverage, read_trails
from orgalerts.config import Config, load_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.model.scope import Account, Scope
from orgalerts.sandbox import Sandbox, parse_sandbox_spec

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"


def _check(report: DoctorReport, name: str) -> dict[str, str]:
    (check,) = [c.to_json() for c in report.checks if c.name == name]
    return check


def _statuses(report: DoctorReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


# --- on the sandbox -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Running:
    sandbox: Sandbox
    config: Config

    def context(self, call_log: CallLog | None = None, **overrides: Any) -> Context:
        return self.engine(call_log, **overrides).ctx

    def engine(self, call_log: CallLog | None = None, **overrides: Any) -> Runner:
        gateway = Gateway(
            GatewaySettings(
                endpoint_url=self.sandbox.endpoint_url, access_key_id="testing", secret_access_key="testing"
            )
        )
        if call_log is not None:
            gateway.add_observer(call_log)
        return Runner(Context(dataclasses.replace(self.config, **overrides), gateway), retry_wait=tenacity.wait_none())

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.sandbox.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def running() -> Iterator[Running]:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    # The shipped sandbox has an organization trail; these tests start from an organization without one.
    spec = dataclasses.replace(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH)), organization_trail=False)
    with Sandbox(spec) as sandbox:
        yield Running(sandbox, config)


def test_doctor__shipped_sandbox__every_check_passes() -> None:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as sandbox:
        report = run_doctor(Running(sandbox, config).context())

    assert {c.name: c.status for c in report.checks} == {
        "credentials": "ok",
        "organization": "ok",
        "scope": "ok",
        "member-role": "ok",
        "cloudtrail": "ok",
        "region": "ok",
    }
    assert report.exit_code() == 0


def test_doctor_sandbox__no_trail__cloudtrail_fails_with_a_fix_and_nothing_is_written(running: Running) -> None:
    call_log = CallLog()

    report = run_doctor(running.context(call_log))

    assert report.exit_code() == 1
    cloudtrail = _check(report, "cloudtrail")
    assert cloudtrail["status"] == "fail"
    assert "no organization trail" in cloudtrail["detail"] and "no alert can fire" in cloudtrail["detail"]
    assert "trail: {create: true}" in cloudtrail["fix"] and "--is-organization-trail" in cloudtrail["fix"]
    statuses = _statuses(report)
    assert statuses == {
        "credentials": "ok",
        "organization": "ok",
        "scope": "ok",
        "member-role": "ok",
        "cloudtrail": "fail",
        "region": "ok",
    }
    assert "5 sampled accounts" in _check(report, "member-role")["detail"]
    assert "us-east-1" in _check(report, "region")["detail"]
    assert call_log.writes() == []
    document = report.to_json()
    assert document["command"] == "doctor" and document["summary"] == {"ok": 5, "warn": 0, "fail": 1}


def test_doctor_sandbox__organization_trail_created_with_boto3__passes(running: Running) -> None:
    running.client("s3").create_bucket(Bucket="my-org-trail-logs")
    cloudtrail = running.client("cloudtrail")
    cloudtrail.create_trail(
        Name="org-trail", S3BucketName="my-org-trail-logs", IsOrganizationTrail=True, IsMultiRegionTrail=True
    )
    assert run_doctor(running.context()).exit_code() == 1  # created, but not logging yet
    cloudtrail.start_logging(Name="org-trail")

    report = run_doctor(running.context())

    assert report.exit_code() == 0, [c.to_json() for c in report.checks]
    assert _check(report, "cloudtrail")["status"] == "ok"
    assert "organization trail org-trail" in _check(report, "cloudtrail")["detail"]


def test_doctor_sandbox__trail_setting_on__deploy_creates_the_trail_doctor_passes_second_deploy_unchanged(
    running: Running,
) -> None:
    config = dataclasses.replace(running.config, trail=dataclasses.replace(running.config.trail, create=True))
    assert run_doctor(running.context(trail=config.trail)).exit_code() == 1
    fix = _check(run_doctor(running.context(trail=config.trail)), "cloudtrail")["fix"]
    assert "run `orgalerts deploy`: trail.create is on" in fix

    first = running.engine(trail=config.trail).converge("deploy", Mode.DEPLOY)
    assert exit_code(first) == 0
    assert first.management is not None and "create organization trail orgalerts-trail" in first.management.changes

    report = run_doctor(running.context(trail=config.trail))
    assert report.exit_code() == 0, [c.to_json() for c in report.checks]
    assert "managed by orgalerts" in _check(report, "cloudtrail")["detail"]

    call_log = CallLog()
    second = running.engine(call_log, trail=config.trail).converge("deploy", Mode.DEPLOY)
    assert exit_code(second) == 0
    assert second.management is not None and second.management.status == "unchanged"
    assert call_log.writes() == []


def test_doctor_cli__json_document_on_stdout_table_on_stderr_exit_1(running: Running, tmp_path: Path) -> None:
    raw = yaml.safe_load(CONFIG_PATH.read_text())
    del raw["sandbox"]
    config_path = tmp_path / "doctor.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": running.sandbox.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    result = subprocess.run(
        [sys.executable, "-m", "orgalerts", "--config", str(config_path), "doctor", "--json", "--sample", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )

    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "doctor"
    assert {c["name"]: c["status"] for c in document["checks"]}["cloudtrail"] == "fail"
    assert set(document["checks"][0]) == {"name", "status", "detail", "fix"}
    assert document["summary"]["fail"] == 1
    assert "fail  cloudtrail" in result.stderr and "fix: create an organization trail" in result.stderr
    assert "2 sampled accounts" in result.stderr


# --- on moto, in-process -------------------------------------------------------------------------------------


def _org_trail(sim_org: SimOrg, region: str = "us-east-1", *, multi_region: bool = True, logging: bool = True) -> Any:
    sim_org.client("s3", region=region).create_bucket(
        Bucket="trail-logs",
        **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}),
    )
    cloudtrail = sim_org.client("cloudtrail", region=region)
    cloudtrail.create_trail(
        Name="org-trail", S3BucketName="trail-logs", IsOrganizationTrail=True, IsMultiRegionTrail=multi_region
    )
    if logging:
        cloudtrail.start_logging(Name="org-trail")
    return cloudtrail


def test_doctor__stopped_organization_trail__fails_with_start_logging_fix(sim_org: SimOrg) -> None:
    _org_trail(sim_org, logging=False)

    check = _check(run_doctor(make_context(sim_org.config())), "cloudtrail")

    assert check["status"] == "fail"
    assert "organization trail org-trail" in check["detail"] and "logging is stopped" in check["detail"]
    assert check["fix"].startswith("aws cloudtrail start-logging --name arn:aws:cloudtrail:us-east-1:")


def test_doctor__single_region_trail_outside_us_east_1__fails(sim_org: SimOrg) -> None:
    _org_trail(sim_org, region="eu-west-1", multi_region=False)

    check = _check(run_doctor(make_context(sim_org.config())), "cloudtrail")

    # A single-region trail in eu-west-1 is not even visible from us-east-1: no trail covers IAM events.
    assert check["status"] == "fail"


def test_doctor__multi_region_trail_homed_elsewhere__passes(sim_org: SimOrg) -> None:
    _org_trail(sim_org, region="eu-west-1", multi_region=True)

    check = _check(run_doctor(make_context(sim_org.config())), "cloudtrail")

    assert check["status"] == "ok" and "home region eu-west-1" in check["detail"]


@pytest.mark.parametrize(
    ("selectors", "pattern", "problem"),
    [
        ({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}, "all-iam", "WriteOnly"),
        (
            {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]},
            "iam-changes",
            "not recorded",
        ),
        (
            {"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]},
            "iam-changes",
            "ReadOnly",
        ),
        (
            {
                "AdvancedEventSelectors": [
                    {"Name": "s3 only", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}
                ]
            },
            "iam-changes",
            "not recorded",
        ),
    ],
)
def test_doctor__selectors_that_miss_the_events_the_pattern_needs__fail_with_put_event_selectors_fix(
    sim_org: SimOrg, selectors: dict[str, Any], pattern: str, problem: str
) -> None:
    _org_trail(sim_org).put_event_selectors(TrailName="org-trail", **selectors)

    check = _check(run_doctor(make_context(sim_org.config(alerts={"pattern": pattern}))), "cloudtrail")

    assert check["status"] == "fail" and problem in check["detail"]
    assert "put-event-selectors" in check["fix"]


def test_doctor__write_only_trail_is_enough_for_iam_changes(sim_org: SimOrg) -> None:
    _org_trail(sim_org).put_event_selectors(
        TrailName="org-trail", EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]
    )

    check = _check(run_doctor(make_context(sim_org.config())), "cloudtrail")

    assert check["status"] == "ok" and "(WriteOnly)" in check["detail"]


def _account_trail(sim_org: SimOrg, account_id: str) -> None:
    bucket = f"trail-{account_id}"
    sim_org.client("s3", account_id).create_bucket(Bucket=bucket)
    cloudtrail = sim_org.client("cloudtrail", account_id)
    cloudtrail.create_trail(Name="account-trail", S3BucketName=bucket, IsMultiRegionTrail=True)
    cloudtrail.start_logging(Name="account-trail")


def test_doctor__per_account_trails__ok_when_the_sample_is_every_account_warn_otherwise(sim_org: SimOrg) -> None:
    for account_id in sim_org.in_scope:
        _account_trail(sim_org, account_id)

    full = _check(run_doctor(make_context(sim_org.config()), sample=10), "cloudtrail")
    partial = _check(run_doctor(make_context(sim_org.config()), sample=2), "cloudtrail")

    assert full["status"] == "ok" and "each of the 5 sampled accounts has a trail" in full["detail"]
    assert partial["status"] == "warn" and "not checked" in partial["detail"]
    assert "organization trail" in partial["fix"]


def test_doctor__per_account_trail_missing_in_one_sampled_account__fails_naming_it(sim_org: SimOrg) -> None:
    without = sim_org.accounts["prod2"]
    for account_id in sim_org.in_scope:
        if account_id != without:
            _account_trail(sim_org, account_id)

    check = _check(run_doctor(make_context(sim_org.config()), sample=10), "cloudtrail")

    assert check["status"] == "fail" and f"1 of 5 sampled accounts ({without})" in check["detail"]


def test_doctor__member_role_not_assumable__fails_naming_the_account_and_the_fix(sim_org: SimOrg) -> None:
    blocked = sim_org.accounts["prod1"]
    gateway = Gateway(GatewaySettings(max_attempts=1))

    def deny(_: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if operation == "AssumeRole" and f"::{blocked}:" in params.get("RoleArn", ""):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, operation)

    gateway.add_hook(deny)
    _org_trail(sim_org)

    report = run_doctor(make_context(sim_org.config(), gateway=gateway), sample=10)

    check = _check(report, "member-role")
    assert check["status"] == "fail" and f"{blocked} (AccessDenied: not authorized)" in check["detail"]
    assert "create role OrganizationAccountAccessRole" in check["fix"] and MANAGEMENT in check["fix"]
    assert report.exit_code() == 1
    assert _check(report, "cloudtrail")["status"] == "ok"


def test_doctor__no_credentials__one_failing_check_and_stop(sim_org: SimOrg) -> None:
    gateway = Gateway(GatewaySettings(max_attempts=1))

    def expired(_: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if operation == "GetCallerIdentity":
            raise ClientError({"Error": {"Code": "ExpiredToken", "Message": "token expired"}}, operation)

    gateway.add_hook(expired)

    report = run_doctor(make_context(sim_org.config(), gateway=gateway))

    assert [c.to_json()["name"] for c in report.checks] == ["credentials"]
    assert report.exit_code() == 1 and "ExpiredToken" in report.checks[0].detail


def test_doctor__guardrail_on_and_scps_not_enabled__warns_that_deploy_enables_them(sim_org: SimOrg) -> None:
    _org_trail(sim_org)

    report = run_doctor(make_context(sim_org.config(guardrail={"scp": True})))

    check = _check(report, "guardrail")
    assert check["status"] == "warn" and "deploy enables them" in check["detail"]
    assert "enable-policy-type" in check["fix"]
    assert report.exit_code() == 0


def test_doctor__trail_setting_on_with_another_organization_trail__warns_about_a_second_copy(sim_org: SimOrg) -> None:
    _org_trail(sim_org)

    report = run_doctor(make_context(sim_org.config(trail={"create": True})))

    assert _check(report, "cloudtrail")["status"] == "ok"
    assert _check(report, "trail-setting")["status"] == "warn"


# --- pure -------------------------------------------------------------------------------------------------------


def test_management_coverage__selector_shapes() -> None:
    assert management_coverage({}) == "All"  # AWS's default: no custom selectors
    assert management_coverage({"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}) == "WriteOnly"
    both = [{"ReadWriteType": "WriteOnly"}, {"ReadWriteType": "ReadOnly"}]
    assert management_coverage({"EventSelectors": both}) == "All"
    excluded = [{"ReadWriteType": "All", "ExcludeManagementEventSources": ["iam.amazonaws.com"]}]
    assert management_coverage({"EventSelectors": excluded}) == ""
    management = {"Field": "eventCategory", "Equals": ["Management"]}
    assert management_coverage({"AdvancedEventSelectors": [{"FieldSelectors": [management]}]}) == "All"
    writes = {"Field": "readOnly", "Equals": ["false"]}
    assert management_coverage({"AdvancedEventSelectors": [{"FieldSelectors": [management, writes]}]}) == "WriteOnly"
    not_iam = {"Field": "eventSource", "NotEquals": ["iam.amazonaws.com"]}
    assert management_coverage({"AdvancedEventSelectors": [{"FieldSelectors": [management, not_iam]}]}) == ""


def test_sample_accounts__notification_first_then_spread_caller_left_out() -> None:
    accounts = tuple(Account(f"{i:012d}", f"a{i}", "ACTIVE") for i in range(1, 101))
    scope = Scope("o-x", "r-x", "000000000001", accounts, (), (), False, ())

    chosen = sample_accounts(scope, notification="000000000050", caller="000000000001", size=5)

    assert chosen[0] == "000000000050" and len(chosen) == 5 and len(set(chosen)) == 5
    assert "000000000001" not in chosen
    assert max(chosen[1:]) > "000000000070"  # not just the first few
    assert sample_accounts(scope, notification="000000000050", caller="000000000001", size=0) == []


class _FakeCloudTrail:
    """A member account's view of the management account's organization trail (status not readable there)."""

    def describe_trails(self, includeShadowTrails: bool) -> dict[str, Any]:
        arn = f"arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/org-trail"
        trail = {"Name": "org-trail", "TrailARN": arn, "HomeRegion": "us-east-1", "IsOrganizationTrail": True}
        return {"trailList": [{**trail, "IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": True}]}

    def get_trail_status(self, Name: str) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "TrailNotFoundException", "Message": "not yours"}}, "GetTrailStatus")


@dataclasses.dataclass
class _FakeAccess:
    account_id: str

    def client(self, service: str, region: str) -> Any:
        return _FakeCloudTrail()


def test_read_trails__organization_trail_seen_from_a_member_account__counts_as_covering_it() -> None:
    (trail,) = read_trails(_FakeAccess("333333333301"), need_reads=False)  # type: ignore[arg-type]

    assert trail.good and trail.organization
    with pytest.raises(ClientError):  # the management account itself must be able to read its own trail
        read_trails(_FakeAccess(MANAGEMENT), need_reads=False)  # type: ignore[arg-type]
