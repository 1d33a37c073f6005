"""`orgalerts doctor`: is this organization ready for a deploy, and will alerts be able to fire?

Owns: the pre-deploy checks, each a finding with a status (ok / warn / fail), what was found, and a
concrete fix: credentials and Organizations access (management account or delegated administrator);
CloudTrail actually recording management events for the target accounts (an organization trail, or
per-account trails in a sample of accounts) since without a trail no alert can ever fire; the member role
assumable in a sample of in-scope accounts; the region; and the opt-in settings (trail.create,
guardrail.scp). Read-only: doctor makes no write call.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orgalerts.aws import AccountAccess, BotoCoreError, ClientError, error_code, error_text
from orgalerts.commands.doctor_trails import TrailFinding, read_trails
from orgalerts.config import Config
from orgalerts.engine.context import Context
from orgalerts.errors import UsageError
from orgalerts.model.addresses import MEMBER_REGION, bus_arn, trail_arn
from orgalerts.model.scope import Scope
from orgalerts.sides import guardrail
from orgalerts.sides.base import Grant, everywhere


# IAM permissions doctor needs (merged by `orgalerts permissions`). AssumeRole, the Organizations reads
# (DescribeOrganization, ListRoots: ReadOrganizationStructure) and the guardrail's reads are declared next to
# those calls; GetCallerIdentity needs no permission. Doctor reads every trail (not only orgalerts'): in the
# management account, and in the sampled member accounts when there is no organization trail. DescribeTrails
# has no resource type ("*"); GetTrailStatus and GetEventSelectors take trail*
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudtrail.html). The region
# check reads the notification account's default bus (event-bus*:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html).
def _any_trail(config: Config) -> list[str]:
    return [trail_arn("*", "*", "*")]


TRAIL_READS = ("cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors")
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant("orchestrator", "ListTrails", ("cloudtrail:DescribeTrails",), everywhere),
    Grant("orchestrator", "ReadTrailSettings", TRAIL_READS, _any_trail),
    Grant("member", "ListTrails", ("cloudtrail:DescribeTrails",), everywhere),
    Grant("member", "ReadTrailSettings", TRAIL_READS, _any_trail),
    Grant(
        "notification",
        "ReadDefaultEventBus",
        ("events:DescribeEventBus",),
        lambda c: [bus_arn(c.region, c.notification.account_id, "default")],
    ),
)

OK, WARN, FAIL = "ok", "warn", "fail"
STATUSES = (OK, WARN, FAIL)
DEFAULT_SAMPLE = 5

CREATE_TRAIL_FIX = (
    "create an organization trail: set `trail: {create: true}` in the config and run `orgalerts deploy` "
    "(management-account credentials), or: aws cloudtrail create-trail --name org-trail --s3-bucket-name BUCKET "
    "--is-organization-trail --is-multi-region-trail && aws cloudtrail start-logging --name org-trail"
)


@dataclass
class Check:
    """One finding."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, fix)
        self.checks.append(check)
        return check

    def summary(self) -> dict[str, int]:
        counts = Counter(c.status for c in self.checks)
        return {status: counts.get(status, 0) for status in STATUSES}

    def exit_code(self) -> int:
        return 1 if any(c.status == FAIL for c in self.checks) else 0

    def to_json(self) -> dict[str, Any]:
        return {"command": "doctor", "checks": [c.to_json() for c in self.checks], "summary": self.summary()}


# --- the checks ---------------------------------------------------------------------------------------------


def sample_accounts(scope: Scope, notification: str, caller: str, size: int) -> list[str]:
    """Up to `size` in-scope accounts: the notification account first, then accounts spread evenly over the
    (sorted) rest, so a sample of 5 among 500 does not look at neighbours only. The caller's own account
    needs no role and is left out."""
    ids = [a.id for a in scope.in_scope if a.id != caller]
    chosen = [notification] if notification in ids and size > 0 else []
    rest = [a for a in ids if a != notification]
    room = size - len(chosen)
    if room > 0 and rest:
        step = max(1, len(rest) / room)
        picks = sorted({rest[min(int(i * step), len(rest) - 1)] for i in range(min(room, len(rest)))})
        chosen += picks
    return chosen


@dataclass
class Findings:
    """What the checks learn and later checks build on."""

    caller: str = ""
    management: str = ""
    orgs: Any = None
    scope: Scope | None = None
    reached: dict[str, AccountAccess] = field(default_factory=dict)


def run_doctor(ctx: Context, sample: int = DEFAULT_SAMPLE) -> DoctorReport:
    """Every check, in order; a check the others depend on stops the run when it fails."""
    report = DoctorReport()
    found = Findings()
    for check in (_check_credentials, _check_organization, _check_scope):
        if not check(report, ctx, found):
            return report
    assert found.scope is not None
    _check_member_role(report, ctx, found, sample)
    _check_cloudtrail(report, ctx, found)
    _check_region(report, ctx, found.caller, found.reached)
    _check_settings(report, ctx, found)
    return report


def _check_credentials(report: DoctorReport, ctx: Context, found: Findings) -> bool:
    try:
        identity = ctx.management_access().client("sts", MEMBER_REGION).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        report.add(
            "credentials",
            FAIL,
            f"no working AWS credentials: {error_text(exc)}",
            "configure credentials of the management account (AWS_PROFILE, `aws sso login`, or environment "
            "variables) and run doctor again",
        )
        return False
    found.caller = str(identity["Account"])
    report.add("credentials", OK, f"{identity.get('Arn', '?')} (account {found.caller})")
    return True


def _check_organization(report: DoctorReport, ctx: Context, found: Findings) -> bool:
    found.orgs = ctx.orgs_client()
    caller = found.caller
    try:
        organization = found.orgs.describe_organization()["Organization"]
    except (ClientError, BotoCoreError) as exc:
        not_in_org = error_code(exc) == "AWSOrganizationsNotInUseException"
        report.add(
            "organization",
            FAIL,
            f"account {caller} is not in an organization"
            if not_in_org
            else f"cannot read the organization: {error_text(exc)}",
            "run with credentials of the organization's management account (or a delegated administrator "
            "for AWS Organizations allowed organizations:Describe*/List*)",
        )
        return False
    management = found.management = str(organization["MasterAccountId"])
    features = str(organization.get("FeatureSet", "ALL"))
    needs_all_features = ctx.config.trail.create or ctx.config.guardrail.scp
    if features != "ALL":
        report.add(
            "organization",
            FAIL if needs_all_features else WARN,
            f"organization {organization['Id']} has feature set {features}: organization trails and SCPs need "
            "all features",
            "enable all features in AWS Organizations (Settings > Enable all features)",
        )
    elif caller == management:
        report.add("organization", OK, f"organization {organization['Id']}; caller is the management account")
    else:
        report.add(
            "organization",
            WARN,
            f"organization {organization['Id']}; caller {caller} is not the management account {management}: this "
            "works only if it is a delegated administrator for AWS Organizations (account-change alerts and "
            "trail.create need the management account)",
            f"run with credentials of the management account {management}",
        )
    return True


def _check_scope(report: DoctorReport, ctx: Context, found: Findings) -> bool:
    try:
        scope = found.scope = ctx.scope()
    except UsageError as exc:
        report.add("scope", FAIL, str(exc), "fix organization.ous / include_accounts in the config")
        return False
    except (ClientError, BotoCoreError) as exc:
        report.add(
            "scope",
            FAIL,
            f"cannot list the accounts of the target OUs: {error_text(exc)}",
            "grant organizations:ListRoots, ListParents, ListAccountsForParent, ListOrganizationalUnitsForParent, "
            "DescribeAccount (see `orgalerts permissions`)",
        )
        return False
    skipped = f", {len(scope.skipped)} skipped (excluded or not active)" if scope.skipped else ""
    report.add(
        "scope",
        OK if scope.in_scope else WARN,
        f"{len(scope.in_scope)} accounts in scope{skipped}",
        "" if scope.in_scope else "check organization.ous: no active account is in scope",
    )
    return True


def _check_member_role(report: DoctorReport, ctx: Context, found: Findings, sample: int) -> None:
    config = ctx.config
    assert found.scope is not None
    chosen = sample_accounts(found.scope, config.notification.account_id, found.caller, sample)
    failures: list[str] = []
    for account_id in chosen:
        try:
            found.reached[account_id] = ctx.member_access(account_id)
        except (ClientError, BotoCoreError) as exc:
            failures.append(f"{account_id} ({error_text(exc)})")
    role = config.member_role.name
    if not chosen:
        report.add("member-role", WARN, "no in-scope account other than the caller's own to try", "")
    elif failures:
        external = " and member_role.external_id" if config.member_role.external_id else ""
        report.add(
            "member-role",
            FAIL,
            f"cannot assume {role} in {len(failures)} of {len(chosen)} sampled accounts: {', '.join(failures)}",
            f"create role {role} in those accounts, trusting account {found.caller} (accounts created by "
            f"Organizations have OrganizationAccountAccessRole; invited accounts need it created), or correct "
            f"member_role.name{external}",
        )
    else:
        report.add("member-role", OK, f"assumed {role} in {len(chosen)} sampled accounts: {', '.join(chosen)}")


def _check_settings(report: DoctorReport, ctx: Context, found: Findings) -> None:
    """The opt-in settings: trail.create needs the management account; the guardrail needs SCPs."""
    config = ctx.config
    caller, management = found.caller, found.management
    if config.trail.create and caller != management:
        report.add(
            "trail-setting",
            FAIL,
            f"trail.create is on, but an organization trail can only be created with credentials of the "
            f"management account {management} (caller: {caller})",
            f"run deploy with credentials of account {management}, or create the trail yourself and set "
            "trail.create: false",
        )
    if config.guardrail.scp:
        assert found.scope is not None
        _check_guardrail(report, found.orgs, found.scope, management)


def _check_cloudtrail(report: DoctorReport, ctx: Context, found: Findings) -> None:
    """An organization trail that feeds IAM events to EventBridge, or else a trail in each sampled account."""
    need_reads = ctx.config.alerts.pattern == "all-iam"
    if found.caller == found.management:
        try:
            trails = read_trails(ctx.management_access(), need_reads=need_reads)
        except (ClientError, BotoCoreError) as exc:
            report.add(
                "cloudtrail",
                FAIL,
                f"cannot read the management account's trails: {error_text(exc)}",
                "grant cloudtrail:DescribeTrails, GetTrailStatus, GetEventSelectors to the orchestrator",
            )
            return
        if _judge_org_trails(report, ctx, [t for t in trails if t.organization]):
            return
    _check_sampled_trails(report, ctx, found, need_reads)


def _judge_org_trails(report: DoctorReport, ctx: Context, org_trails: list[TrailFinding]) -> bool:
    """Report on the organization trails; False when there is none (per-account trails decide)."""
    config = ctx.config
    good = next((t for t in org_trails if t.good), None)
    if good is not None:
        managed = " (managed by orgalerts)" if good.name == config.trail.name and config.trail.create else ""
        report.add(
            "cloudtrail",
            OK,
            f"organization trail {good.name}{managed} (home region {good.home_region}) records management "
            f"events ({good.read_write}) of every account, logging",
        )
        if config.trail.create and good.name != config.trail.name:
            report.add(
                "trail-setting",
                WARN,
                f"trail.create is on although organization trail {good.name} already records management events: "
                "a second copy of management events is charged by CloudTrail",
                "set trail.create: false (the existing organization trail is enough)",
            )
        return True
    if org_trails:
        broken = org_trails[0]
        report.add(
            "cloudtrail",
            FAIL,
            f"organization trail {broken.name} does not feed IAM events to EventBridge: "
            f"{'; '.join(broken.problems)} (no alert can fire)",
            "; ".join(broken.fixes),
        )
        return True
    return False


def _check_sampled_trails(report: DoctorReport, ctx: Context, found: Findings, need_reads: bool) -> None:
    """No organization trail seen: every target account needs a trail of its own. Check the sample."""
    config = ctx.config
    caller, management = found.caller, found.management
    covered: list[str] = []
    missing: list[str] = []
    unreadable: list[str] = []
    for account_id, access in found.reached.items():
        try:
            trails = read_trails(access, need_reads=need_reads)
        except (ClientError, BotoCoreError) as exc:
            unreadable.append(f"{account_id} ({error_text(exc)})")
            continue
        (covered if any(t.good for t in trails) else missing).append(account_id)
    where = (
        "no organization trail in the management account"
        if caller == management
        else (f"the management account's trails cannot be read from account {caller}")
    )
    fix = CREATE_TRAIL_FIX
    if config.trail.create and caller == management:
        fix = f"run `orgalerts deploy`: trail.create is on and creates organization trail {config.trail.name}"
    if missing or not covered:
        detail = f"{where}, and no trail recording management events"
        detail += (
            f" in {len(missing)} of {len(found.reached)} sampled accounts ({', '.join(missing)})" if missing else ""
        )
        if unreadable:
            detail += f"; could not read trails in {', '.join(unreadable)}"
        report.add(
            "cloudtrail", FAIL, detail + ": without a trail EventBridge receives no IAM event, no alert can fire", fix
        )
        return
    assert found.scope is not None
    every = len(covered) >= len([a for a in found.scope.in_scope if a.id != caller])
    report.add(
        "cloudtrail",
        OK if every and not unreadable else WARN,
        f"{where}; each of the {len(covered)} sampled accounts has a trail recording management events"
        + ("" if every else " (accounts outside the sample were not checked)"),
        "" if every else f"an organization trail covers every account, new ones included: {fix}",
    )


def _check_region(report: DoctorReport, ctx: Context, caller: str, reached: dict[str, AccountAccess]) -> None:
    config = ctx.config
    region = config.region
    forward = "" if region == MEMBER_REGION else f"; member events are forwarded from us-east-1 to {region}"
    detail = (
        f"central bus, rule and topic in {region}; member rules always in us-east-1 (IAM events reach "
        f"EventBridge only there){forward}"
    )
    notification = config.notification.account_id
    access = reached.get(notification) or (ctx.management_access() if notification == caller else None)
    if access is not None:
        try:
            access.client("events", region).describe_event_bus(Name="default")
        except (ClientError, BotoCoreError) as exc:
            report.add(
                "region",
                FAIL,
                f"EventBridge in {region} cannot be reached in the notification account {notification}: "
                f"{error_text(exc)}",
                f"enable region {region} for account {notification} (Account > AWS Regions), or choose another "
                "`region` in the config",
            )
            return
    report.add("region", OK, detail)


def _check_guardrail(report: DoctorReport, orgs: Any, scope: Scope, management: str) -> None:
    try:
        root_id, enabled = guardrail.scp_policy_type_enabled(orgs)
    except (ClientError, BotoCoreError) as exc:
        report.add("guardrail", FAIL, f"cannot read the organization root: {error_text(exc)}", "")
        return
    notes = []
    if scope.find(management) is not None:
        notes.append(f"the management account {management} is in scope and SCPs never restrict it")
    if enabled:
        report.add("guardrail", WARN if notes else OK, "; ".join(["SCPs are enabled on the root", *notes]))
    else:
        report.add(
            "guardrail",
            WARN,
            "; ".join(
                [
                    f"SCPs are not enabled on root {root_id}: deploy enables them (AWS attaches FullAWSAccess "
                    "everywhere, so no access changes by that alone)",
                    *notes,
                ]
            ),
            f"or enable them yourself: aws organizations enable-policy-type --root-id {root_id} "
            "--policy-type SERVICE_CONTROL_POLICY",
        )
