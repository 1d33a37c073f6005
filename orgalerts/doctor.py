"""`orgalerts doctor`: is this organization ready for a deploy, and will alerts be able to fire?

Owns: the pre-deploy checks, each a finding with a status (ok / warn / fail), what was found, and a
concrete fix: credentials and Organizations access (management account or delegated administrator);
CloudTrail actually recording management events for the target accounts (an organization trail, or
per-account trails in a sample of accounts) since without a trail no alert can ever fire; the member role
assumable in a sample of in-scope accounts; the region; and the opt-in settings (trail.create,
guardrail.scp). Read-only: doctor makes no write call.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from orgalerts import guardrail, org
from orgalerts.aws import MEMBER_REGION, AccountAccess, BotoCoreError, ClientError, error_code, error_text
from orgalerts.engine import Engine
from orgalerts.errors import UsageError

# IAM actions doctor needs, by principal (merged by `orgalerts permissions`). AssumeRole and the
# Organizations reads of the scope are declared by aws.py and org.py. In member accounts doctor reads
# trails only when there is no organization trail (cloudtrail:DescribeTrails, GetTrailStatus,
# GetEventSelectors: OrganizationAccountAccessRole has them).
REQUIRED_ACTIONS: dict[str, tuple[str, ...]] = {
    "orchestrator": (
        "sts:GetCallerIdentity",
        "organizations:DescribeOrganization",
        "organizations:ListRoots",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
    ),
    "notification": ("events:DescribeEventBus",),
}

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

    def write_table(self, stream: TextIO) -> None:
        stream.write("orgalerts doctor\n")
        width = max((len(c.name) for c in self.checks), default=10)
        for check in self.checks:
            stream.write(f"  {check.status:<5} {check.name:<{width}}  {check.detail}\n")
            if check.fix and check.status != OK:
                stream.write(f"  {'':<5} {'':<{width}}  fix: {check.fix}\n")
        counts = ", ".join(f"{k} {v}" for k, v in self.summary().items() if v)
        stream.write(f"  checks: {counts or 'none'}\n")

    def emit(self, *, as_json: bool) -> int:
        self.write_table(sys.stderr)
        if as_json:
            json.dump(self.to_json(), sys.stdout, indent=2)
            sys.stdout.write("\n")
        return self.exit_code()


# --- CloudTrail: does a trail record the management events IAM alerts need? -------------------------------


@dataclass
class TrailFinding:
    name: str
    arn: str
    home_region: str
    organization: bool
    problems: list[str]
    fixes: list[str]
    read_write: str  # All | WriteOnly | ReadOnly | "" (no management events)

    @property
    def good(self) -> bool:
        return not self.problems


def management_coverage(selectors: dict[str, Any]) -> str:
    """Which management events of IAM a trail records: All, WriteOnly, ReadOnly or "" (none).

    A trail without custom selectors records every management event (AWS's default)."""
    basic = selectors.get("EventSelectors") or []
    advanced = selectors.get("AdvancedEventSelectors") or []
    reads = writes = False
    if not basic and not advanced:
        return "All"
    for selector in basic:
        if not selector.get("IncludeManagementEvents", True):
            continue
        if "iam.amazonaws.com" in (selector.get("ExcludeManagementEventSources") or []):
            continue
        kind = selector.get("ReadWriteType", "All")
        reads = reads or kind in ("All", "ReadOnly")
        writes = writes or kind in ("All", "WriteOnly")
    for selector in advanced:
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors", [])}
        if "Management" not in (fields.get("eventCategory", {}).get("Equals") or []):
            continue
        source = fields.get("eventSource", {})
        if source.get("Equals") and "iam.amazonaws.com" not in source["Equals"]:
            continue
        if "iam.amazonaws.com" in (source.get("NotEquals") or []):
            continue
        read_only = fields.get("readOnly", {}).get("Equals") or ["true", "false"]
        reads = reads or "true" in read_only
        writes = writes or "false" in read_only
    if reads and writes:
        return "All"
    return "WriteOnly" if writes else ("ReadOnly" if reads else "")


def evaluate_trail(
    described: dict[str, Any], status: dict[str, Any], selectors: dict[str, Any], *, need_reads: bool
) -> TrailFinding:
    """What keeps this trail from feeding IAM events to EventBridge, each problem with its fix."""
    name = str(described.get("Name", ""))
    arn = str(described.get("TrailARN", name))
    home = str(described.get("HomeRegion", MEMBER_REGION))
    problems: list[str] = []
    fixes: list[str] = []
    if not status.get("IsLogging"):
        problems.append("logging is stopped")
        fixes.append(f"aws cloudtrail start-logging --name {arn} --region {home}")
    if not described.get("IsMultiRegionTrail") and home != MEMBER_REGION:
        problems.append(f"single-region trail in {home}: IAM events are recorded in us-east-1 only")
        fixes.append(f"aws cloudtrail update-trail --name {arn} --region {home} --is-multi-region-trail")
    if not described.get("IncludeGlobalServiceEvents", True):
        problems.append("global service events (IAM) are excluded")
        fixes.append(f"aws cloudtrail update-trail --name {arn} --region {home} --include-global-service-events")
    coverage = management_coverage(selectors)
    if coverage in ("", "ReadOnly") or (coverage == "WriteOnly" and need_reads):
        problems.append(
            "management events are not recorded"
            if not coverage
            else f"only {coverage} management events are recorded"
            + (" (the all-iam pattern needs read events too)" if coverage == "WriteOnly" else "")
        )
        fixes.append(
            f"aws cloudtrail put-event-selectors --trail-name {arn} --region {home} "
            """--event-selectors '[{"ReadWriteType":"All","IncludeManagementEvents":true}]'"""
        )
    return TrailFinding(name, arn, home, bool(described.get("IsOrganizationTrail")), problems, fixes, coverage)


def read_trails(access: AccountAccess, *, need_reads: bool) -> list[TrailFinding]:
    """Every trail that can record us-east-1 events in this account (shadow copies of multi-region and
    organization trails included), evaluated. Status and selectors are read in each trail's home region."""
    listed = access.client("cloudtrail", MEMBER_REGION).describe_trails(includeShadowTrails=True)
    found = []
    for described in listed.get("trailList", []):
        home = str(described.get("HomeRegion", MEMBER_REGION))
        client = access.client("cloudtrail", home)
        arn = str(described["TrailARN"])
        try:
            status = client.get_trail_status(Name=arn)
            selectors = client.get_event_selectors(TrailName=arn)
        except ClientError:
            owner = arn.split(":")[4] if arn.count(":") >= 5 else ""
            if not (described.get("IsOrganizationTrail") and owner and owner != access.account_id):
                raise
            # An organization trail seen from a member account: its status is the management account's to
            # read. It is there, so it covers this account; the management-account check judges the rest.
            status, selectors = {"IsLogging": True}, {}
        found.append(evaluate_trail(described, status, selectors, need_reads=need_reads))
    return found


# --- the checks ---------------------------------------------------------------------------------------------


def sample_accounts(scope: org.Scope, notification: str, caller: str, size: int) -> list[str]:
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


def run_doctor(engine: Engine, sample: int = DEFAULT_SAMPLE) -> DoctorReport:
    """Every check, in order; a check the others depend on stops the run when it fails."""
    report = DoctorReport()
    config = engine.config
    gateway = engine.gateway
    need_reads = config.alerts.pattern == "all-iam"

    # 1. credentials
    try:
        identity = gateway.base().client("sts", MEMBER_REGION).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        report.add(
            "credentials",
            FAIL,
            f"no working AWS credentials: {error_text(exc)}",
            "configure credentials of the management account (AWS_PROFILE, `aws sso login`, or environment "
            "variables) and run doctor again",
        )
        return report
    caller = str(identity["Account"])
    report.add("credentials", OK, f"{identity.get('Arn', '?')} (account {caller})")

    # 2. organization access, and the scope
    orgs = engine.orgs_client()
    try:
        organization = orgs.describe_organization()["Organization"]
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
        return report
    management = str(organization["MasterAccountId"])
    features = str(organization.get("FeatureSet", "ALL"))
    needs_all_features = config.trail.create or config.guardrail.scp
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
    try:
        scope = engine.scope()
    except UsageError as exc:
        report.add("scope", FAIL, str(exc), "fix organization.ous / include_accounts in the config")
        return report
    except (ClientError, BotoCoreError) as exc:
        report.add(
            "scope",
            FAIL,
            f"cannot list the accounts of the target OUs: {error_text(exc)}",
            "grant organizations:ListRoots, ListParents, ListAccountsForParent, ListOrganizationalUnitsForParent, "
            "DescribeAccount (see `orgalerts permissions`)",
        )
        return report
    skipped = f", {len(scope.skipped)} skipped (excluded or not active)" if scope.skipped else ""
    report.add(
        "scope",
        OK if scope.in_scope else WARN,
        f"{len(scope.in_scope)} accounts in scope{skipped}",
        "" if scope.in_scope else "check organization.ous: no active account is in scope",
    )

    # 3. the member role in a sample of accounts
    chosen = sample_accounts(scope, config.notification.account_id, caller, sample)
    reached: dict[str, AccountAccess] = {}
    failures: list[str] = []
    for account_id in chosen:
        try:
            reached[account_id] = gateway.account(account_id, config.member_role.name, config.member_role.external_id)
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
            f"create role {role} in those accounts, trusting account {caller} (accounts created by Organizations "
            f"have OrganizationAccountAccessRole; invited accounts need it created), or correct member_role.name"
            f"{external}",
        )
    else:
        report.add("member-role", OK, f"assumed {role} in {len(chosen)} sampled accounts: {', '.join(chosen)}")

    # 4. CloudTrail
    _check_cloudtrail(report, engine, scope, caller, management, reached, need_reads)

    # 5. region
    _check_region(report, engine, caller, reached)

    # 6. the opt-in settings
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
        _check_guardrail(report, orgs, scope, management)
    return report


def _check_cloudtrail(
    report: DoctorReport,
    engine: Engine,
    scope: org.Scope,
    caller: str,
    management: str,
    reached: dict[str, AccountAccess],
    need_reads: bool,
) -> None:
    config = engine.config
    org_trails: list[TrailFinding] = []
    if caller == management:
        try:
            trails = read_trails(engine.gateway.base(), need_reads=need_reads)
        except (ClientError, BotoCoreError) as exc:
            report.add(
                "cloudtrail",
                FAIL,
                f"cannot read the management account's trails: {error_text(exc)}",
                "grant cloudtrail:DescribeTrails, GetTrailStatus, GetEventSelectors to the orchestrator",
            )
            return
        org_trails = [t for t in trails if t.organization]
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
            return
        if org_trails:
            broken = org_trails[0]
            report.add(
                "cloudtrail",
                FAIL,
                f"organization trail {broken.name} does not feed IAM events to EventBridge: "
                f"{'; '.join(broken.problems)} (no alert can fire)",
                "; ".join(broken.fixes),
            )
            return
    # No organization trail seen: every target account needs a trail of its own. Check the sample.
    covered: list[str] = []
    missing: list[str] = []
    unreadable: list[str] = []
    for account_id, access in reached.items():
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
        detail += f" in {len(missing)} of {len(reached)} sampled accounts ({', '.join(missing)})" if missing else ""
        if unreadable:
            detail += f"; could not read trails in {', '.join(unreadable)}"
        report.add(
            "cloudtrail", FAIL, detail + ": without a trail EventBridge receives no IAM event, no alert can fire", fix
        )
        return
    every = len(covered) >= len([a for a in scope.in_scope if a.id != caller])
    report.add(
        "cloudtrail",
        OK if every and not unreadable else WARN,
        f"{where}; each of the {len(covered)} sampled accounts has a trail recording management events"
        + ("" if every else " (accounts outside the sample were not checked)"),
        "" if every else f"an organization trail covers every account, new ones included: {fix}",
    )


def _check_region(report: DoctorReport, engine: Engine, caller: str, reached: dict[str, AccountAccess]) -> None:
    config = engine.config
    region = config.region
    forward = "" if region == MEMBER_REGION else f"; member events are forwarded from us-east-1 to {region}"
    detail = (
        f"central bus, rule and topic in {region}; member rules always in us-east-1 (IAM events reach "
        f"EventBridge only there){forward}"
    )
    notification = config.notification.account_id
    access = reached.get(notification) or (engine.gateway.base() if notification == caller else None)
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


def _check_guardrail(report: DoctorReport, orgs: Any, scope: org.Scope, management: str) -> None:
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
