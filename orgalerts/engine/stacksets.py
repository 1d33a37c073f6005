"""The StackSets engine (`deploy: {engine: stacksets}`): a service-managed CloudFormation StackSet fans the
member side out, and AWS keeps new accounts covered.

Owns: the StackSet `<prefix>member` in the management account (us-east-1, service-managed, automatic deployment
on, tagged `managed-by: orgalerts`), its stack instances in the in-scope accounts, waiting for its operations
(one at a time, with progress), and the commands' shapes in this mode: deploy, plan, drift, drift --repair,
onboard, offboard, teardown, in the same `RunReport` (`accounts[].status`, `error`) as the direct engine.
The central and management sides are stacks (`engine/stacks.py`), created or updated before the StackSet (members
point at the central bus). What StackSets cannot do stays with the direct engine (`Runner`): the management account
when it is in scope ("StackSets doesn't deploy stack instances to the organization management
account, even if [it] is ... in an OU in your organization",
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeploymentTargets.html) and
`include_accounts` outside the target OUs (an INTERSECTION target would name their whole OU; they are few and
converged directly). Drift reads the live resources exactly as the direct engine does.

AWS facts relied on:
- Service-managed permissions need trusted access between StackSets and Organizations, activated from the
  management account (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ActivateOrganizationsAccess.html);
  a delegated administrator would pass CallAs=DELEGATED_ADMIN
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-delegated-admin.html); orgalerts
  runs with the management account's credentials, as the direct engine does.
- Automatic deployment: accounts added to a target OU get an instance, accounts that leave lose it
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_AutoDeployment.html).
- Excluded accounts: AccountFilterType DIFFERENCE with their ids; one account: INTERSECTION
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/account-level-targets.html).
- One operation at a time per StackSet: OperationInProgressException otherwise, so every operation is awaited
  and a refused one waits for the running one (e.g. an automatic deployment) and is tried again
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ManagedExecution.html).
- Operation preferences: by default one account at a time and the first failure stops the operation; orgalerts
  asks for every account at once (MaxConcurrentPercentage 100) and SOFT_FAILURE_TOLERANCE with 100 % tolerance, so
  one account's failure never stops the others (as in direct mode)
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html).
  Quotas: 50 OUs per CreateStackInstances call
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStackInstances.html); StackSets per
  administrator account and instances per StackSet are in https://docs.aws.amazon.com/general/latest/gr/cfn.html.
- An update that changes neither template nor parameters changes no resource: a resource deleted or altered
  outside CloudFormation is not put back by UpdateStackInstances: CloudFormation compares the template with its own
  record, not with the live resource, and leaves drift to be corrected ("such as updating the drifted resources
  directly", https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html).
  `drift --repair` therefore re-deploys a drifted account's instance: it deletes the instance (RetainStacks false)
  and creates it again.
- Service-managed StackSets live in the management account, also those a delegated administrator creates
  (CallAs, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-delegated-admin.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orgalerts.aws import ClientError, error_code, error_text
from orgalerts.config import Config
from orgalerts.engine.results import Mode, RunReport, SideResult, Status, merge
from orgalerts.engine.runner import Runner
from orgalerts.engine.scope import account_location
from orgalerts.engine.stacks import StackCommands
from orgalerts.errors import OrgAlertsError
from orgalerts.export.cloudformation import MEMBER_FILE
from orgalerts.export.cloudformation import templates as exported
from orgalerts.model.addresses import MEMBER_REGION, PARTITION
from orgalerts.model.scope import Account, Scope
from orgalerts.sides.base import Grant

Templates = Callable[[Config, Scope], dict[str, dict[str, Any]]]

OWNER_TAG = {"Key": "managed-by", "Value": "orgalerts"}
# Every account at once; a failed account does not stop the others.
PREFERENCES = {
    "MaxConcurrentPercentage": 100,
    "FailureTolerancePercentage": 100,
    "ConcurrencyMode": "SOFT_FAILURE_TOLERANCE",
}
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
POLL_SECONDS_AWS = 15.0
POLL_SECONDS_SANDBOX = 0.0  # the sandbox's operations end after being read (sandbox/stacksets.py), not in time
MAX_WAIT_SECONDS = 6 * 3600.0
MAX_POLLS = 10_000


def uses_stacksets(config: Config) -> bool:
    return config.deploy.engine == "stacksets"


def _stack_set_arns(config: Config) -> list[str]:
    # stackset: arn:${Partition}:cloudformation:${Region}:${Account}:stackset/${StackSetName}:${Id}
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html)
    return [f"arn:{PARTITION}:cloudformation:{MEMBER_REGION}:*:stackset/{config.resource_prefix}member:*"]


def _stack_set_targets(config: Config) -> list[str]:
    # Instance operations also name the stackset-target and the resource types of the template (same reference).
    return [
        *_stack_set_arns(config),
        f"arn:{PARTITION}:cloudformation:{MEMBER_REGION}:*:stackset-target/{config.resource_prefix}member:*",
        f"arn:{PARTITION}:cloudformation::aws:type/resource/*",
    ]


REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant(
        "orchestrator",
        "ManageMemberStackSet",
        (
            "cloudformation:CreateStackSet",
            "cloudformation:UpdateStackSet",
            "cloudformation:DeleteStackSet",
            "cloudformation:DescribeStackSet",
            "cloudformation:DescribeStackSetOperation",
            "cloudformation:ListStackSetOperations",
            "cloudformation:ListStackSetOperationResults",
            "cloudformation:ListStackInstances",
            "cloudformation:TagResource",
        ),
        _stack_set_arns,
        uses_stacksets,
    ),
    Grant(
        "orchestrator",
        "ManageMemberStackInstances",
        (
            "cloudformation:CreateStackInstances",
            "cloudformation:UpdateStackInstances",
            "cloudformation:DeleteStackInstances",
        ),
        _stack_set_targets,
        uses_stacksets,
    ),
    # Trusted access (no resource type). Activating it also creates StackSets' service-linked role.
    Grant(
        "orchestrator",
        "StackSetsTrustedAccess",
        ("cloudformation:ActivateOrganizationsAccess", "cloudformation:DescribeOrganizationsAccess"),
        lambda c: ["*"],
        uses_stacksets,
    ),
    Grant(
        "orchestrator",
        "StackSetsServiceLinkedRole",
        ("iam:CreateServiceLinkedRole", "iam:GetRole"),
        lambda c: [f"arn:{PARTITION}:iam::*:role/aws-service-role/stacksets.cloudformation.amazonaws.com/*"],
        uses_stacksets,
    ),
)


@dataclass
class Live:
    """The StackSet as it is: None when absent; its template, tags and instances by account."""

    exists: bool
    template: dict[str, Any] | None = None
    owned: bool = True
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)


class StackSetsEngine:
    """Runs deploy / plan / drift / repair / onboard / offboard / teardown through the member StackSet."""

    def __init__(
        self,
        runner: Runner,
        templates: Templates = exported,
        *,
        notify: Callable[[str], None] | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self.runner = runner
        self.ctx = runner.ctx
        self.config = runner.config
        self.templates = templates
        self.notify = notify or (lambda _: None)
        sandbox = self.config.sandbox is not None
        self.poll = (
            poll_seconds if poll_seconds is not None else (POLL_SECONDS_SANDBOX if sandbox else POLL_SECONDS_AWS)
        )
        self.name = f"{self.config.resource_prefix}member"

    # --- AWS ----------------------------------------------------------------------------------------
    def cfn(self) -> Any:
        return self.ctx.management_access().client("cloudformation", MEMBER_REGION)

    def read(self) -> Live:
        cfn = self.cfn()
        try:
            described = cfn.describe_stack_set(StackSetName=self.name)["StackSet"]
        except ClientError as exc:
            if error_code(exc) in ("StackSetNotFoundException", "StackSetNotFound"):
                return Live(False)
            raise
        tags = {t["Key"]: t["Value"] for t in described.get("Tags") or []}
        owned = tags.get(OWNER_TAG["Key"]) == OWNER_TAG["Value"]
        instances: dict[str, dict[str, Any]] = {}
        for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=self.name):
            for summary in page.get("Summaries", []):
                instances[str(summary["Account"])] = summary
        return Live(True, _parse(described.get("TemplateBody") or ""), owned, instances)

    def desired_template(self, scope: Scope) -> dict[str, Any]:
        return self.templates(self.config, scope)[MEMBER_FILE]

    def ensure_trusted_access(self) -> bool:
        """Activate trusted access with Organizations if needed; True when it was activated now."""
        cfn = self.cfn()
        if cfn.describe_organizations_access().get("Status") == "ENABLED":
            return False
        cfn.activate_organizations_access()
        return True

    def operate(self, call: Callable[..., dict[str, Any]], **params: Any) -> str:
        """Start one operation, waiting for a running one first; returns its final status after waiting."""
        for _ in range(20):
            try:
                op = str(call(StackSetName=self.name, OperationPreferences=PREFERENCES, **params)["OperationId"])
            except ClientError as exc:
                if error_code(exc) != "OperationInProgressException":
                    raise
                self.notify(f"StackSet {self.name}: another operation is running; waiting for it")
                self.wait_running()
                continue
            return self.wait(op)
        raise OrgAlertsError(f"StackSet {self.name}: operations kept colliding; run the command again")

    def wait_running(self) -> None:
        cfn = self.cfn()
        for summary in cfn.list_stack_set_operations(StackSetName=self.name).get("Summaries", []):
            if summary.get("Status") in ("RUNNING", "QUEUED", "STOPPING"):
                self.wait(str(summary["OperationId"]))

    def wait(self, operation_id: str) -> str:
        """Poll the operation until it ends (injectable sleep: tests never wait); progress on `notify`."""
        cfn = self.cfn()
        waited = 0.0
        for polls in range(MAX_POLLS):
            described = cfn.describe_stack_set_operation(StackSetName=self.name, OperationId=operation_id)
            status = str(described["StackSetOperation"]["Status"])
            if status in TERMINAL:
                self.notify(f"StackSet {self.name}: operation {operation_id} {status} after {waited:.0f} s")
                return status
            if waited >= MAX_WAIT_SECONDS:
                raise OrgAlertsError(
                    f"StackSet {self.name}: operation {operation_id} still {status} after {waited:.0f} s"
                )
            if (waited == 0.0 and polls == 0) or int(waited) // 60 != int(waited - self.poll) // 60:
                self.notify(f"StackSet {self.name}: operation {operation_id} {status}, waiting")  # once a minute
            self.runner.sleep(self.poll)
            waited += self.poll
        raise OrgAlertsError(f"StackSet {self.name}: operation {operation_id} did not end after {MAX_POLLS} reads")


def _parse(body: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _body(template: dict[str, Any]) -> str:
    return json.dumps(template, sort_keys=True, separators=(",", ":"))


def covered(config: Config, scope: Scope) -> tuple[list[Account], list[Account]]:
    """(accounts the StackSet covers, accounts the direct engine converges): never the management account, nor an
    included account outside the target OUs, through the StackSet."""
    below = set(scope.target_ou_ids) | ({scope.root_id} if scope.whole_organization else set())
    stackset: list[Account] = []
    direct: list[Account] = []
    for account in scope.in_scope:
        if account.id != scope.management_account_id and account.parent_id in below:
            stackset.append(account)
        else:
            direct.append(account)
    return stackset, direct


def _instance_status(summary: dict[str, Any] | None) -> tuple[str, str]:
    """(Status, DetailedStatus) of an instance, ("", "") when there is none."""
    if summary is None:
        return "", ""
    detailed = str((summary.get("StackInstanceStatus") or {}).get("DetailedStatus") or "")
    return str(summary.get("Status") or ""), detailed


def instance_error(summary: dict[str, Any] | None) -> str | None:
    """Why an instance is not CURRENT (None when it is)."""
    status, detailed = _instance_status(summary)
    if status == "CURRENT":
        return None
    if summary is None:
        return "no stack instance of StackSet (not deployed)"
    reason = str(summary.get("StatusReason") or "").strip()
    return f"stack instance {status} ({detailed}){': ' + reason if reason else ''}"


# --- the commands -------------------------------------------------------------------------------------


@dataclass
class _Work:
    """What the member StackSet needs: the StackSet itself, then instances to create, update and delete."""

    create_stack_set: bool = False
    update_template: bool = False
    create: list[Account] = field(default_factory=list)
    update: list[Account] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # excluded (or no longer wanted) accounts holding an instance

    def texts(self, name: str) -> list[str]:
        texts = [f"create StackSet {name} (service-managed, automatic deployment on)"] if self.create_stack_set else []
        texts += [f"update StackSet {name} template (every instance)"] if self.update_template else []
        return texts + [f"delete stack instance of {name} in excluded account {a}" for a in self.delete]


class Commands(StackSetsEngine):
    """The commands' shapes in stacksets mode: the central and management stacks, the member StackSet, and the
    direct `Runner` for the accounts StackSets cannot reach."""

    def converge(self, command: str, mode: Mode, *, only: list[str] | None = None, scope: Scope | None = None,
                 orphans: bool = False, remove_orphans: bool = False) -> RunReport:  # fmt: skip
        scope = scope or self.runner.scope()
        central, management = self._stacks(mode, scope, onboarding=only is not None)
        fanned, direct = covered(self.config, scope)
        if only is not None:
            fanned, direct = [a for a in fanned if a.id in only], [a for a in direct if a.id in only]
        if mode.writes and central is not None and central.status == Status.FAILED:
            blocked = [SideResult(a.id, Status.FAILED, error="not attempted: the central side failed", name=a.name)
                       for a in fanned + direct]  # fmt: skip
            return RunReport(command, blocked, central, [], management)
        if mode in (Mode.DRIFT, Mode.REPAIR):
            accounts, side = self._drift(mode, scope, fanned)
        else:
            accounts, side = self._deploy(mode, scope, fanned, only is not None)
        accounts += self._direct(direct, mode, scope)
        if only is None:
            accounts += [SideResult(s.account.id, Status.SKIPPED, name=s.account.name, notes=[s.reason])
                         for s in scope.skipped]  # fmt: skip
        found = self.runner.find_orphans(scope, remove=remove_orphans) if orphans else []
        accounts.sort(key=lambda r: r.account_id)
        return RunReport(command, accounts, central, found, merge(management, side))

    def _stacks(self, mode: Mode, scope: Scope, *, onboarding: bool) -> tuple[SideResult | None, SideResult | None]:
        """The central stack, then the management stack (members point at the central bus, so both come before the
        member StackSet); onboarding one account touches no organization-wide side, so not the management stack."""
        built = self.templates(self.config, scope)
        stacks = StackCommands(self.runner, self.notify, self.poll)
        central = stacks.converge(stacks.central(scope, built), mode, scope)
        if onboarding:
            return central, self.runner.run_management(mode, scope, onboarding=True)
        return central, stacks.converge(stacks.management(scope, built), mode, scope)

    def _direct(self, accounts: list[Account], mode: Mode, scope: Scope) -> list[SideResult]:
        results = self.runner._run_members(accounts, mode, scope)
        why = (
            "converged directly: StackSets never deploy to the management account"
            if len(accounts) == 1 and accounts[0].id == scope.management_account_id
            else "converged directly (not below a target OU, or the management account: StackSets cannot reach it)"
        )
        for result in results:
            result.notes.append(why)
        return results

    def _side(self, scope: Scope, status: Status, changes: list[str], error: str | None = None) -> SideResult:
        side = SideResult(scope.management_account_id, status, changes, error, name="management")
        return side

    def _plan(self, live: Live, desired: dict[str, Any], fanned: list[Account]) -> _Work:
        work = _Work(create_stack_set=not live.exists, update_template=live.exists and live.template != desired)
        for account in fanned:
            summary = live.instances.get(account.id)
            if summary is None:
                work.create.append(account)
            elif instance_error(summary) is not None:
                work.update.append(account)
        wanted = {a.id for a in fanned}
        excluded = set(self.config.organization.exclude_accounts)
        work.delete = sorted(a for a in live.instances if a in excluded and a not in wanted)
        return work

    def _deploy(
        self, mode: Mode, scope: Scope, fanned: list[Account], onboarding: bool
    ) -> tuple[list[SideResult], SideResult]:
        if onboarding and not fanned:  # onboarding an account the direct engine converges: the StackSet stays
            return [], self._side(scope, Status.UNCHANGED, [])
        live = self.read()
        if live.exists and not live.owned:
            why = f"StackSet {self.name} exists without the tag managed-by: orgalerts; orgalerts does not touch it"
            failed = [SideResult(a.id, Status.FAILED, error=why, name=a.name) for a in fanned]
            return failed, self._side(scope, Status.FAILED, [], why)
        work = self._plan(live, self.desired_template(scope), fanned)
        if onboarding:
            work.delete = []
        changes = work.texts(self.name)
        side = self._side(
            scope, Status.CREATED if work.create_stack_set else Status.UPDATED if changes else Status.UNCHANGED, changes
        )
        if mode is Mode.PLAN:
            return [self._planned(a, work, live) for a in fanned], side
        if self.runner.progress_start is not None:
            self.runner.progress_start(len(fanned))
        try:
            self._apply(work, scope, onboarding)
        except (ClientError, OrgAlertsError) as exc:
            side.fail(str(exc) if isinstance(exc, OrgAlertsError) else error_text(exc))
        after = self.read()
        results = [self._outcome(a, work, live, after) for a in fanned]
        for result in results:
            if self.runner.progress is not None:
                self.runner.progress(result)
        return results, side

    def _planned(self, account: Account, work: _Work, live: Live) -> SideResult:
        if account in work.create:
            return SideResult(
                account.id, Status.CREATED, [f"create stack instance of StackSet {self.name}"], name=account.name
            )
        if account in work.update or work.update_template:
            why = instance_error(live.instances.get(account.id)) or "new template"
            return SideResult(
                account.id, Status.UPDATED, [f"update stack instance of {self.name} ({why})"], name=account.name
            )
        return SideResult(account.id, Status.UNCHANGED, name=account.name)

    def _outcome(self, account: Account, work: _Work, before: Live, after: Live) -> SideResult:
        result = self._planned(account, work, before)
        error = instance_error(after.instances.get(account.id))
        if error is not None:
            result.fail(error)
        return result

    def _apply(self, work: _Work, scope: Scope, onboarding: bool) -> None:
        """The writes, one operation at a time: StackSet, template, new instances, outdated ones, excluded ones."""
        cfn = self.cfn()
        template = _body(self.desired_template(scope))
        if work.create_stack_set:
            self.ensure_trusted_access()
            cfn.create_stack_set(
                StackSetName=self.name,
                Description="orgalerts member side: forwards IAM changes to the central bus",
                TemplateBody=template,
                Capabilities=["CAPABILITY_NAMED_IAM"],
                PermissionModel="SERVICE_MANAGED",
                AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
                Tags=[OWNER_TAG],
            )
        elif work.update_template:
            self.operate(cfn.update_stack_set, TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"])
        if work.create:
            self.operate(cfn.create_stack_instances, DeploymentTargets=self._targets(work.create, scope, onboarding),
                         Regions=[MEMBER_REGION])  # fmt: skip
        if work.update:
            self.operate(cfn.update_stack_instances, DeploymentTargets=self._only(work.update), Regions=[MEMBER_REGION])
        if work.delete:
            located = [a for a in (self._locate(i) for i in work.delete) if a is not None]
            if located:
                self.operate(cfn.delete_stack_instances, DeploymentTargets=self._only(located),
                             Regions=[MEMBER_REGION], RetainStacks=False)  # fmt: skip

    def _targets(self, accounts: list[Account], scope: Scope, onboarding: bool) -> dict[str, Any]:
        """The configured OUs (automatic deployment watches them) minus the excluded accounts; for one onboarded
        account, just that account."""
        if onboarding:
            return self._only(accounts)
        targets: dict[str, Any] = {"OrganizationalUnitIds": list(self.config.organization.ous)}
        excluded = sorted(self.config.organization.exclude_accounts)
        if excluded:
            targets.update(Accounts=excluded, AccountFilterType="DIFFERENCE")
        return targets

    @staticmethod
    def _only(accounts: list[Account]) -> dict[str, Any]:
        """Exactly these accounts: INTERSECTION of their parent OUs with their ids."""
        parents = sorted({a.parent_id for a in accounts if a.parent_id})
        return {"OrganizationalUnitIds": parents, "Accounts": sorted(a.id for a in accounts),
                "AccountFilterType": "INTERSECTION"}  # fmt: skip

    def _locate(self, account_id: str) -> Account | None:
        return account_location(self.ctx.orgs_client(), account_id)

    # --- drift and repair -----------------------------------------------------------------------------
    def _drift(self, mode: Mode, scope: Scope, fanned: list[Account]) -> tuple[list[SideResult], SideResult]:
        """Live resources read exactly as in direct mode, plus the instance's own status; --repair re-deploys
        the instance of every drifted account (delete, then create: an update would put nothing back)."""
        live = self.read()
        desired = self.desired_template(scope)
        findings = [] if live.exists else [f"StackSet {self.name} not deployed"]
        if live.exists and live.template != desired:
            findings.append(f"StackSet {self.name} template differs from the desired one")
        side = self._side(scope, Status.DRIFTED if findings else Status.UNCHANGED, findings)
        results = self._read_drift(fanned, scope, live)
        if mode is Mode.DRIFT:
            return results, side
        drifted = [a for a in fanned if next(r for r in results if r.account_id == a.id).status == Status.DRIFTED]
        if findings:
            try:
                self._apply(_Work(create_stack_set=not live.exists, update_template=live.exists), scope, False)
                side.status, side.changes = Status.REPAIRED, findings
            except (ClientError, OrgAlertsError) as exc:
                side.fail(str(exc) if isinstance(exc, OrgAlertsError) else error_text(exc))
        if drifted:
            self._redeploy(drifted, live)
        again = {r.account_id: r for r in self._read_drift(drifted, scope, self.read())}
        for result in results:
            if result.account_id in again:
                still = again[result.account_id]
                if still.status == Status.DRIFTED:
                    result.fail("still drifted after re-deploying its stack instance: " + "; ".join(still.changes))
                elif still.status != Status.FAILED:
                    result.status = Status.REPAIRED
                    result.notes.append(f"re-deployed the stack instance of StackSet {self.name}")
        return results, side

    def _read_drift(self, accounts: list[Account], scope: Scope, live: Live) -> list[SideResult]:
        results = self.runner._run_members(accounts, Mode.DRIFT, scope)
        for result in results:
            error = instance_error(live.instances.get(result.account_id)) if live.exists else None
            if error is not None and result.status in (Status.UNCHANGED, Status.DRIFTED):
                result.status = Status.DRIFTED
                result.changes.append(error)
        return results

    def _redeploy(self, accounts: list[Account], live: Live) -> None:
        cfn = self.cfn()
        present = [a for a in accounts if a.id in live.instances]
        if present:
            self.operate(cfn.delete_stack_instances, DeploymentTargets=self._only(present), Regions=[MEMBER_REGION],
                         RetainStacks=False)  # fmt: skip
        self.operate(cfn.create_stack_instances, DeploymentTargets=self._only(accounts), Regions=[MEMBER_REGION])

    # --- offboard and teardown ------------------------------------------------------------------------
    def offboard(self, account_id: str) -> RunReport:
        """Remove the account's stack instance (its stack and resources with it), then whatever a direct deploy
        left there."""
        live = self.read()
        removed: list[str] = []
        if live.exists and live.owned and account_id in live.instances:
            account = self._locate(account_id) or Account(account_id, "", "ACTIVE")
            ou = str(live.instances[account_id].get("OrganizationalUnitId") or account.parent_id or "")
            located = Account(account.id, account.name, account.state, ou or account.parent_id)
            self.operate(self.cfn().delete_stack_instances, DeploymentTargets=self._only([located]),
                         Regions=[MEMBER_REGION], RetainStacks=False)  # fmt: skip
            removed.append(f"delete stack instance of StackSet {self.name}")
        report = self.runner.remove("offboard", [account_id])
        for row in report.accounts:
            if row.account_id == account_id and removed:
                row.changes = removed + row.changes
                if row.status == Status.UNCHANGED:
                    row.status = Status.REMOVED
        return report

    def teardown(self) -> RunReport:
        """Every stack instance (their stacks with them), the StackSet, then everything else as direct teardown."""
        live = self.read()
        side_changes: list[str] = []
        gone: dict[str, str] = {}
        if live.exists and live.owned:
            cfn = self.cfn()
            if live.instances:
                ous = {
                    str(i.get("OrganizationalUnitId")) for i in live.instances.values() if i.get("OrganizationalUnitId")
                }
                ous |= set(self.config.organization.ous)
                self.operate(cfn.delete_stack_instances, DeploymentTargets={"OrganizationalUnitIds": sorted(ous)},
                             Regions=[MEMBER_REGION], RetainStacks=False)  # fmt: skip
                gone = {a: f"delete stack instance of StackSet {self.name}" for a in live.instances}
            self.wait_running()
            cfn.delete_stack_set(StackSetName=self.name)
            side_changes.append(f"delete StackSet {self.name}")
        stacks = StackCommands(self.runner, self.notify, self.poll)
        scope = self.runner.scope()
        central = stacks.delete(stacks.central(scope, {}))
        management = stacks.delete(stacks.management(scope, {}))
        report = self.runner.remove("teardown", None)
        report.central = merge(central, report.central)
        report.management = merge(management, report.management)
        for row in report.accounts:
            if row.account_id in gone:
                row.changes.insert(0, gone[row.account_id])
                row.status = Status.REMOVED if row.status != Status.FAILED else row.status
        if side_changes:
            # The StackSet lives in the orchestrator's own account (the management account).
            stack_set_side = SideResult(self.ctx.caller_account(), Status.REMOVED, side_changes, name="management")
            report.management = merge(report.management, stack_set_side)
        return report
