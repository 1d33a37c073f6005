"""Service-managed CloudFormation StackSets in the sandbox, as AWS documents them (a SHIM OVER MOTO).

Owns: the emulation of service-managed StackSets (`PermissionModel=SERVICE_MANAGED`): stack instances
for every account below the target OUs, automatic deployment, account filters, one operation at a time,
operations and instances with statuses, and trusted access; applied once per process by
`apply_stackset_semantics`, like `fidelity.apply_aws_semantics`. Self-managed StackSets stay moto's.

Why: moto 5.2.5 (moto/cloudformation/models.py, `StackInstances.create_instances`) creates instances only
one OU level below a target, ignores `AutoDeployment` and `DeploymentTargets.AccountFilterType`, targets the
management account when given the root, reacts to no account move, runs every operation to SUCCEEDED at
once (so none is ever in progress) and hides a service-managed instance's stack from its account. AWS:

- "StackSets doesn't deploy stack instances to the organization management account, even if the
  organization management account is in your organization or in an OU in your organization"; an OU target
  covers its nested OUs; AccountFilterType INTERSECTION / DIFFERENCE / UNION / NONE
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeploymentTargets.html,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/account-level-targets.html); UNION is not
  supported by CreateStackInstances, and a create naming both OUs and Accounts must give the filter
  (https://docs.aws.amazon.com/sdk-for-python/v4/reference/clients/cloudformation/structures/DeploymentTargets/).
- AutoDeployment: "StackSets automatically deploys additional stack instances to AWS Organizations accounts
  that are added to a target organization or organizational unit (OU) ... If an account is removed from a
  target organization or OU, StackSets deletes stack instances from the account"; RetainStacksOnAccountRemoval
  keeps the stack's resources (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_AutoDeployment.html).
- "Only one operation can be performed for a stack set at a given time": OperationInProgressException
  (https://docs.aws.amazon.com/botocore/latest/reference/services/cloudformation/client/exceptions/OperationInProgressException.html);
  with ManagedExecution off (the default) "StackSets performs one operation at a time in request order"
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ManagedExecution.html).
- Operation preferences: by default one account at a time (MaxConcurrentCount 1, FailureToleranceCount 0);
  STRICT_FAILURE_TOLERANCE runs min(MaxConcurrentCount, FailureToleranceCount + 1) at once,
  SOFT_FAILURE_TOLERANCE runs MaxConcurrentCount; preferences do not apply to automatic deployments
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html).
- Instance statuses CURRENT / OUTDATED with DetailedStatus PENDING / RUNNING / SUCCEEDED / FAILED /
  SKIPPED_SUSPENDED_ACCOUNT (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackInstanceComprehensiveStatus.html).
- Service-managed StackSets need trusted access with Organizations (ActivateOrganizationsAccess,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ActivateOrganizationsAccess.html).
- An update that changes neither template nor parameters changes no resource: CloudFormation does not put
  back a resource deleted outside it; drift is corrected outside the update
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html); moto's
  Stack.update would rebuild the resource map.

Time: an operation takes `ceil(accounts / concurrency) * seconds_per_account` on `settings.clock`, and is
RUNNING for at least `pending_reads` reads of it (DescribeStackSetOperation, ListStackSetOperations), so a
caller must wait for it even on the sandbox's instant clock; automatic deployments need no read. Stacks are
created, updated and deleted when the operation starts, so alerts flow at once. Stack instance stacks are
real stacks in the member account (`StackSet-<name>-<uuid>`, as AWS names them), visible to DescribeStacks.
Not emulated: regions beyond what a call names, drift detection operations, ManagedExecution queueing,
delegated administrators (CallAs is accepted and ignored), STOPPED operations.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import CloudFormationBackend, StackSet, cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.organizations.models import OrganizationsBackend, organizations_backends

SERVICE_MANAGED = "SERVICE_MANAGED"
TRUSTED_ACCESS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
FILTERS = ("NONE", "INTERSECTION", "DIFFERENCE", "UNION")


@dataclass
class StackSetSettings:
    """Time of the emulation: injectable clock, modelled duration per account, reads an operation runs for."""

    clock: Callable[[], float] = time.monotonic
    seconds_per_account: float = 0.0
    pending_reads: int = 1
    # "the actual number of accounts acted upon concurrently may be lower due to service throttling" (the
    # preferences page): a cap on accounts at once, None for none. The bench models it.
    max_concurrency: int | None = None


class _Error(CloudFormationError):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def _in_progress(name: str) -> _Error:
    return _Error(
        "OperationInProgressException",
        f"Another Operation on StackSet {name} is in progress: only one operation can be performed for a stack "
        "set at a given time",
    )


@dataclass
class _Operation:
    id: str
    action: str
    started: float
    ends: float
    reads_left: int
    results: list[dict[str, str]] = field(default_factory=list)
    preferences: dict[str, Any] = field(default_factory=dict)
    failure_tolerance: int = 0

    def running(self, now: float) -> bool:
        return self.reads_left > 0 or now < self.ends

    def status(self, now: float) -> str:
        if self.running(now):
            return "RUNNING"
        failed = sum(1 for r in self.results if r["Status"] == "FAILED")
        return "FAILED" if failed > self.failure_tolerance else "SUCCEEDED"


@dataclass
class _Instance:
    account: str
    region: str
    ou: str
    operation: str
    stack_id: str = ""
    failed: str = ""  # the reason its last operation failed there
    suspended: bool = False
    parameters: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _State:
    """What a service-managed StackSet holds beyond moto's object."""

    auto_deployment: dict[str, bool]
    instances: dict[tuple[str, str], _Instance] = field(default_factory=dict)
    targets: dict[str, set[str]] = field(default_factory=dict)  # OU (or root) -> regions, for auto-deployment
    operations: list[_Operation] = field(default_factory=list)


_LOCK = threading.RLock()
_APPLIED = False
SETTINGS = StackSetSettings()


def configure(settings: StackSetSettings) -> None:
    """Replace the emulation's time settings (tests: a FakeClock; the bench: a modelled duration)."""
    global SETTINGS
    SETTINGS = settings


# --------------------------------------------------------------------------------------------------
# The organization as StackSets sees it


def _org(account_id: str) -> OrganizationsBackend | None:
    """The Organizations backend of the management account of `account_id`'s organization."""
    master = organizations_backends.master_accounts.get(account_id)
    owner, partition = master if master else (account_id, "aws")
    backend = organizations_backends[owner][partition]
    return backend if backend.org is not None else None


def _descendants(org: OrganizationsBackend, parent: str) -> set[str]:
    """`parent` and every OU below it, at any depth (AWS targets nested OUs; moto goes one level)."""
    found, pending = {parent}, [parent]
    while pending:
        current = pending.pop()
        for ou in org.ou:
            if getattr(ou, "parent_id", None) == current and ou.id not in found:
                found.add(ou.id)
                pending.append(ou.id)
    return found


def _accounts_below(org: OrganizationsBackend, ou_ids: list[str]) -> dict[str, str]:
    """account -> the target OU it was found under; never the management account."""
    found: dict[str, str] = {}
    for ou_id in ou_ids:
        below = _descendants(org, ou_id)
        for account in org.accounts:
            if account.parent_id in below and account.id != org.org.master_account_id:  # type: ignore[union-attr]
                found.setdefault(account.id, ou_id)
    return found


def _select(org: OrganizationsBackend, targets: dict[str, Any], action: str) -> dict[str, str]:
    """The accounts a DeploymentTargets names, as AWS applies AccountFilterType."""
    ous = [str(o) for o in targets.get("OrganizationalUnitIds") or []]
    accounts = [str(a) for a in targets.get("Accounts") or []]
    kind = str(targets.get("AccountFilterType") or ("UNION" if accounts and ous else "NONE"))
    if kind not in FILTERS:
        raise _Error("ValidationError", f"AccountFilterType must be one of {', '.join(FILTERS)}")
    if action == "CREATE" and ous and accounts and not targets.get("AccountFilterType"):
        raise _Error("ValidationError", "AccountFilterType is required when both OUs and accounts are given")
    if action == "CREATE" and kind == "UNION":
        raise _Error("ValidationError", "AccountFilterType UNION is not supported for CreateStackInstances")
    below = _accounts_below(org, ous)
    if kind == "INTERSECTION":
        return {a: ou for a, ou in below.items() if a in accounts}
    if kind == "DIFFERENCE":
        return {a: ou for a, ou in below.items() if a not in accounts}
    if kind == "UNION":
        management = org.org.master_account_id  # type: ignore[union-attr]
        return {**below, **{a: "" for a in accounts if a not in below and a != management}}
    return below


def _registers_targets(targets: dict[str, Any]) -> bool:
    """Whether the OUs of a create become automatic-deployment targets: not when INTERSECTION picks accounts."""
    return str(targets.get("AccountFilterType") or "NONE") != "INTERSECTION"


# --------------------------------------------------------------------------------------------------
# Stacks in the member accounts


def _params(parameters: list[dict[str, Any]] | dict[str, str]) -> dict[str, str]:
    if isinstance(parameters, dict):
        return dict(parameters)
    return {str(p["ParameterKey"]): str(p["ParameterValue"]) for p in parameters if "ParameterValue" in p}


def _backend(account: str, region: str) -> CloudFormationBackend:
    return cloudformation_backends[account][region]


def _create_stack(stackset: StackSet, instance: _Instance) -> None:
    values = {**stackset.parameters, **_params(instance.parameters)}
    stack = _backend(instance.account, instance.region).create_stack(
        name=f"StackSet-{stackset.name}-{uuid.uuid4()}", template=stackset.template, parameters=values
    )
    instance.stack_id = stack.stack_id


def _update_stack(stackset: StackSet, instance: _Instance) -> None:
    backend = _backend(instance.account, instance.region)
    stack = backend.stacks.get(instance.stack_id)
    if stack is None:  # the stack was deleted outside StackSets: AWS fails the instance
        raise RuntimeError(f"Stack {instance.stack_id} does not exist")
    values = {**stackset.parameters, **_params(instance.parameters)}
    if stack.template == stackset.template and dict(stack.parameters) == values:
        return  # nothing changed: CloudFormation leaves every resource as it is
    stack.update(stackset.template, parameters=values)


def _delete_stack(instance: _Instance, retain: bool) -> None:
    if retain or not instance.stack_id:
        return
    backend = _backend(instance.account, instance.region)
    if instance.stack_id in backend.stacks:
        try:
            backend.delete_stack(instance.stack_id)
        except Exception:  # a resource already gone: AWS's delete succeeds; moto's may raise
            stack = backend.stacks.pop(instance.stack_id, None)
            if stack is not None:
                stack.status = "DELETE_COMPLETE"
                backend.deleted_stacks[stack.stack_id] = stack


# --------------------------------------------------------------------------------------------------
# Operations


def _state(stackset: StackSet) -> _State | None:
    state = getattr(stackset, "orgalerts_state", None)
    return state if isinstance(state, _State) else None


def _concurrency(preferences: dict[str, Any], total: int) -> tuple[int, int]:
    """(accounts at once, failures tolerated) from StackSetOperationPreferences, as AWS defines them."""
    if preferences.get("MaxConcurrentPercentage"):
        most = max(1, math.floor(total * int(preferences["MaxConcurrentPercentage"]) / 100))
    else:
        most = int(preferences.get("MaxConcurrentCount") or 1)
    if preferences.get("FailureTolerancePercentage"):
        tolerance = math.floor(total * int(preferences["FailureTolerancePercentage"]) / 100)
    else:
        tolerance = int(preferences.get("FailureToleranceCount") or 0)
    if preferences.get("ConcurrencyMode", "STRICT_FAILURE_TOLERANCE") == "STRICT_FAILURE_TOLERANCE":
        most = min(most, tolerance + 1)
    if SETTINGS.max_concurrency is not None:
        most = min(most, SETTINGS.max_concurrency)
    return max(1, most), tolerance


def _start(
    stackset: StackSet,
    state: _State,
    action: str,
    work: list[tuple[_Instance, Callable[[], None]]],
    preferences: dict[str, Any] | None = None,
    *,
    automatic: bool = False,
    operation_id: str | None = None,
) -> _Operation:
    """Run `work` (one step per instance) as one operation: refused while another runs."""
    now = SETTINGS.clock()
    running = [op for op in state.operations if op.running(now)]
    if running and not automatic:
        raise _in_progress(stackset.name)
    # An automatic deployment waits for the running operation (AWS queues it): it starts when that one ends.
    start = max([now] + [op.ends for op in running])
    preferences = {} if automatic else dict(preferences or {})
    at_once, tolerance = _concurrency(preferences, len(work))
    duration = math.ceil(len(work) / at_once) * SETTINGS.seconds_per_account if work else 0.0
    op = _Operation(
        operation_id or str(uuid.uuid4()),
        action,
        start,
        start + duration,
        0 if automatic else SETTINGS.pending_reads,
        preferences=preferences,
        failure_tolerance=tolerance,
    )
    for instance, step in work:
        instance.operation = op.id
        status, reason = "SUCCEEDED", ""
        if instance.suspended:
            status = "SKIPPED_SUSPENDED_ACCOUNT"
        else:
            try:
                step()
                instance.failed = ""
            except Exception as exc:  # a failed account fails its instance, never the request
                status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
                instance.failed = reason
        op.results.append(
            {"Account": instance.account, "Region": instance.region, "Status": status, "StatusReason": reason}
        )
    state.operations.append(op)
    return op


def _instances_for(
    org: OrganizationsBackend, state: _State, targets: dict[str, Any], regions: list[str], action: str
) -> Iterator[tuple[str, str, str]]:
    for account, ou in sorted(_select(org, targets, action).items()):
        for region in regions:
            yield account, region, ou


def _suspended(org: OrganizationsBackend, account_id: str) -> bool:
    account = next((a for a in org.accounts if a.id == account_id), None)
    return account is not None and getattr(account, "status", "ACTIVE") != "ACTIVE"


def create_instances(
    stackset: StackSet, org: OrganizationsBackend, targets: dict[str, Any], regions: list[str], params: dict[str, Any]
) -> _Operation:
    state = _state(stackset)
    assert state is not None
    work: list[tuple[_Instance, Callable[[], None]]] = []
    for account, region, ou in _instances_for(org, state, targets, regions, "CREATE"):
        instance = state.instances.get((account, region))
        if instance is None:
            instance = _Instance(account, region, ou, "", suspended=_suspended(org, account))
            instance.parameters = list(params.get("ParameterOverrides") or [])
            work.append((instance, partial(_create_stack, stackset, instance)))
        elif instance.failed or not instance.stack_id:
            work.append((instance, partial(_retry_create, stackset, instance)))
    with _LOCK:
        op = _start(
            stackset, state, "CREATE", work, params.get("OperationPreferences"), operation_id=params.get("OperationId")
        )
        for instance, _ in work:
            state.instances[(instance.account, instance.region)] = instance
        if _registers_targets(targets):
            for ou in targets.get("OrganizationalUnitIds") or []:
                state.targets.setdefault(str(ou), set()).update(regions)
    return op


def _retry_create(stackset: StackSet, instance: _Instance) -> None:
    if instance.stack_id and instance.stack_id in _backend(instance.account, instance.region).stacks:
        _update_stack(stackset, instance)
    else:
        _create_stack(stackset, instance)


def update_instances(
    stackset: StackSet,
    org: OrganizationsBackend | None,
    targets: dict[str, Any] | None,
    regions: list[str],
    params: dict[str, Any],
) -> _Operation:
    """UpdateStackInstances (given targets) or UpdateStackSet (None: every instance)."""
    state = _state(stackset)
    assert state is not None
    chosen = list(state.instances.values())
    if targets is not None and org is not None:
        selected = _select(org, targets, "UPDATE")
        chosen = [i for i in chosen if i.account in selected and (not regions or i.region in regions)]
        missing = [a for a in selected if not any(i.account == a for i in chosen)]
        if targets.get("Accounts") and missing:
            raise _Error("StackInstanceNotFoundException", f"Stack instance for account {missing[0]} does not exist")
    overrides = params.get("ParameterOverrides")
    work: list[tuple[_Instance, Callable[[], None]]] = []
    for instance in chosen:
        if overrides is not None:
            instance.parameters = list(overrides)
        work.append((instance, partial(_retry_create, stackset, instance)))
    with _LOCK:
        return _start(
            stackset, state, "UPDATE", work, params.get("OperationPreferences"), operation_id=params.get("OperationId")
        )


def delete_instances(
    stackset: StackSet, org: OrganizationsBackend, targets: dict[str, Any], regions: list[str], params: dict[str, Any]
) -> _Operation:
    state = _state(stackset)
    assert state is not None
    selected = _select(org, targets, "DELETE")
    retain = bool(params.get("RetainStacks"))
    chosen = [i for i in state.instances.values() if i.account in selected and i.region in regions]
    work: list[tuple[_Instance, Callable[[], None]]] = [(i, partial(_delete_stack, i, retain)) for i in chosen]
    with _LOCK:
        op = _start(
            stackset, state, "DELETE", work, params.get("OperationPreferences"), operation_id=params.get("OperationId")
        )
        for instance in chosen:
            state.instances.pop((instance.account, instance.region), None)
        if _registers_targets(targets):
            for ou in targets.get("OrganizationalUnitIds") or []:
                regions_left = state.targets.get(str(ou), set()) - set(regions)
                if regions_left:
                    state.targets[str(ou)] = regions_left
                else:
                    state.targets.pop(str(ou), None)
    return op


# --------------------------------------------------------------------------------------------------
# Automatic deployment: accounts that join or leave a target OU


def _service_managed_stacksets() -> Iterator[tuple[StackSet, _State]]:
    for account_id in list(cloudformation_backends.keys()):
        for backend in list(cloudformation_backends[account_id].values()):
            for stackset in list(backend.stacksets.values()):
                state = _state(stackset)
                if state is not None and stackset.status == "ACTIVE":
                    yield stackset, state


def _target_of(org: OrganizationsBackend, state: _State, account_id: str) -> str | None:
    """The target OU (or root) that `account_id` now sits below, if any."""
    account = next((a for a in org.accounts if a.id == account_id), None)
    if account is None or account_id == org.org.master_account_id:  # type: ignore[union-attr]
        return None
    for ou in state.targets:
        if account.parent_id in _descendants(org, ou):
            return ou
    return None


def account_changed(org: OrganizationsBackend, account_id: str) -> None:
    """After an account was created, moved or removed: deploy to it, or remove it, per AutoDeployment."""
    with _LOCK:
        for stackset, state in _service_managed_stacksets():
            if not state.auto_deployment.get("Enabled"):
                continue
            target = _target_of(org, state, account_id)
            present = [i for i in state.instances.values() if i.account == account_id]
            if target is not None and not present:
                _auto_deploy(stackset, state, org, account_id, target)
            elif target is None and present:
                _auto_remove(stackset, state, present)


def _auto_deploy(stackset: StackSet, state: _State, org: OrganizationsBackend, account_id: str, ou: str) -> None:
    work: list[tuple[_Instance, Callable[[], None]]] = []
    for region in sorted(state.targets[ou]):
        instance = _Instance(account_id, region, ou, "", suspended=_suspended(org, account_id))
        work.append((instance, partial(_create_stack, stackset, instance)))
    _start(stackset, state, "CREATE", work, automatic=True)
    for instance, _ in work:
        state.instances[(instance.account, instance.region)] = instance


def _auto_remove(stackset: StackSet, state: _State, present: list[_Instance]) -> None:
    retain = bool(state.auto_deployment.get("RetainStacksOnAccountRemoval"))
    _start(stackset, state, "DELETE", [(i, partial(_delete_stack, i, retain)) for i in present], automatic=True)
    for instance in present:
        state.instances.pop((instance.account, instance.region), None)


# --------------------------------------------------------------------------------------------------
# The API: moto's CloudFormationResponse methods, service-managed StackSets answered here


def _iso(seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(time.time() - max(0.0, seconds_ago), tz=timezone.utc)


def _op_json(stackset: StackSet, op: _Operation) -> dict[str, Any]:
    now = SETTINGS.clock()
    status = op.status(now)
    described: dict[str, Any] = {
        "OperationId": op.id,
        "StackSetId": stackset.id,
        "Action": op.action,
        "Status": status,
        "OperationPreferences": op.preferences,
        "CreationTimestamp": _iso(now - op.started),
    }
    if status != "RUNNING":
        described["EndTimestamp"] = _iso(now - op.ends)
    return described


def _instance_json(stackset: StackSet, instance: _Instance) -> dict[str, Any]:
    op = next((o for o in _state(stackset).operations if o.id == instance.operation), None)  # type: ignore[union-attr]
    running = op is not None and op.running(SETTINGS.clock())
    if instance.suspended:
        detailed, status = "SKIPPED_SUSPENDED_ACCOUNT", "OUTDATED"
    elif running:
        detailed, status = "RUNNING", "OUTDATED"
    elif instance.failed:
        detailed, status = "FAILED", "OUTDATED"
    else:
        detailed, status = "SUCCEEDED", "CURRENT"
    described: dict[str, Any] = {
        "StackSetId": stackset.id,
        "Region": instance.region,
        "Account": instance.account,
        "StackId": instance.stack_id or None,
        "Status": status,
        "StackInstanceStatus": {"DetailedStatus": detailed},
        "OrganizationalUnitId": instance.ou or None,
        "LastOperationId": instance.operation,
        "ParameterOverrides": instance.parameters,
    }
    if instance.failed and not running:
        described["StatusReason"] = instance.failed
    return described


def _stackset(response: CloudFormationResponse) -> tuple[StackSet, _State | None]:
    stackset = response.cloudformation_backend.describe_stack_set(response._get_param("StackSetName"))
    return stackset, _state(stackset)


def _org_of(response: CloudFormationResponse) -> OrganizationsBackend:
    org = _org(response.current_account)
    if org is None:
        raise _Error("ValidationError", "Account is not a member of an organization")
    return org


def _trusted(org: OrganizationsBackend) -> bool:
    return any(s.get("ServicePrincipal") == TRUSTED_ACCESS_PRINCIPAL for s in org.services)


def _create_stack_set(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(response: CloudFormationResponse) -> Any:
        if response._get_param("PermissionModel") != SERVICE_MANAGED:
            return original(response)
        org = _org_of(response)
        if not _trusted(org):
            raise _Error(
                "ValidationError",
                "You must enable organizations access to operate a service managed stack set",
            )
        result = original(response)
        stackset = response.cloudformation_backend.describe_stack_set(response._get_param("StackSetName"))
        auto = response._get_params().get("AutoDeployment") or {}
        _attach(stackset, _State(auto_deployment={k: bool(v) for k, v in auto.items()}))
        return result

    return create


def _attach(stackset: StackSet, state: _State) -> None:
    stackset.orgalerts_state = state  # type: ignore[attr-defined]
    stackset.auto_deployment = state.auto_deployment  # type: ignore[attr-defined]  # DescribeStackSet shows it
    stackset.organizational_unit_ids = sorted(state.targets)  # type: ignore[attr-defined]


def _wrap(name: str, handler: Callable[[CloudFormationResponse, StackSet, _State], Any]) -> Callable[..., Any]:
    """moto's method for self-managed StackSets, `handler` for service-managed ones."""
    original = getattr(CloudFormationResponse, name)

    def method(response: CloudFormationResponse) -> Any:
        stackset, state = _stackset(response)
        if state is None:
            return original(response)
        with _LOCK:
            result = handler(response, stackset, state)
            stackset.organizational_unit_ids = sorted(state.targets)  # type: ignore[attr-defined]
            return result

    return method


def _regions(response: CloudFormationResponse) -> list[str]:
    return [str(r) for r in response._get_param("Regions", []) or []]


def _targets(response: CloudFormationResponse) -> dict[str, Any]:
    targets = response._get_params().get("DeploymentTargets") or {}
    if response._get_param("Accounts"):
        raise _Error(
            "ValidationError", "StackSets with SERVICE_MANAGED permission model can only have DeploymentTargets"
        )
    return dict(targets)


def _h_create_instances(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    targets = _targets(response)
    if not targets.get("OrganizationalUnitIds"):
        raise _Error("ValidationError", "OrganizationalUnitIds are required for create operations")
    op = create_instances(stackset, _org_of(response), targets, _regions(response), response._get_params())
    return ActionResult({"OperationId": op.id})


def _h_update_instances(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    op = update_instances(stackset, _org_of(response), _targets(response), _regions(response), response._get_params())
    return ActionResult({"OperationId": op.id})


def _h_delete_instances(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    targets = _targets(response)
    if not targets.get("OrganizationalUnitIds"):
        raise _Error("ValidationError", "OrganizationalUnitIds are required for delete operations")
    op = delete_instances(stackset, _org_of(response), targets, _regions(response), response._get_params())
    return ActionResult({"OperationId": op.id})


def _h_update_stack_set(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    params = response._get_params()
    if any(op.running(SETTINGS.clock()) for op in state.operations):
        raise _in_progress(stackset.name)
    if params.get("TemplateBody"):
        stackset.template = str(params["TemplateBody"])
    if params.get("Parameters"):
        stackset.parameters = _params(params["Parameters"])
    if params.get("Description") is not None:
        stackset.description = params["Description"]
    if params.get("AutoDeployment"):
        state.auto_deployment.update({k: bool(v) for k, v in params["AutoDeployment"].items()})
    if params.get("Tags"):
        stackset.tags = {t["Key"]: t["Value"] for t in params["Tags"]}
    op = update_instances(stackset, None, None, [], params)
    return ActionResult({"OperationId": op.id})


def _h_delete_stack_set(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    if any(op.running(SETTINGS.clock()) for op in state.operations):
        raise _in_progress(stackset.name)
    if state.instances:
        raise _Error("StackSetNotEmptyException", f"StackSet {stackset.name} still has stack instances")
    stackset.delete()
    return EmptyResult()


def _find_op(stackset: StackSet, state: _State, operation_id: str) -> _Operation:
    op = next((o for o in state.operations if o.id == operation_id), None)
    if op is None:
        raise _Error("OperationNotFoundException", f"Operation {operation_id} not found")
    return op


def _read(op: _Operation) -> None:
    op.reads_left = max(0, op.reads_left - 1)


def _h_describe_operation(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    op = _find_op(stackset, state, response._get_param("OperationId"))
    described = _op_json(stackset, op)
    _read(op)
    return ActionResult({"StackSetOperation": described})


def _h_list_operations(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    summaries = [_op_json(stackset, op) for op in reversed(state.operations)]
    for op in state.operations:
        _read(op)
    return ActionResult({"Summaries": summaries})


def _h_operation_results(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    op = _find_op(stackset, state, response._get_param("OperationId"))
    running = op.running(SETTINGS.clock())
    summaries = [
        {**r, "Status": "RUNNING" if running and r["Status"] == "SUCCEEDED" else r["Status"]} for r in op.results
    ]
    return ActionResult({"Summaries": summaries})


def _h_list_instances(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    account = response._get_param("StackInstanceAccount")
    chosen = [i for i in state.instances.values() if account in (None, i.account)]
    return ActionResult({"Summaries": [_instance_json(stackset, i) for i in sorted(chosen, key=lambda i: i.account)]})


def _h_describe_instance(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    key = (response._get_param("StackInstanceAccount"), response._get_param("StackInstanceRegion"))
    instance = state.instances.get(key)
    if instance is None:
        raise _Error("StackInstanceNotFoundException", f"Stack instance {key[0]}/{key[1]} not found")
    return ActionResult({"StackInstance": _instance_json(stackset, instance)})


def _h_list_auto_targets(response: CloudFormationResponse, stackset: StackSet, state: _State) -> Any:
    summaries = [{"OrganizationalUnitId": ou, "Regions": sorted(r)} for ou, r in sorted(state.targets.items())]
    return ActionResult({"Summaries": summaries})


def _activate_organizations_access(response: CloudFormationResponse) -> Any:
    org = _org_of(response)
    if response.current_account != org.org.master_account_id:  # type: ignore[union-attr]
        raise _Error("ValidationError", "Only the management account can activate organizations access")
    org.enable_aws_service_access(ServicePrincipal=TRUSTED_ACCESS_PRINCIPAL)
    return EmptyResult()


def _describe_organizations_access(response: CloudFormationResponse) -> Any:
    org = _org(response.current_account)
    return ActionResult({"Status": "ENABLED" if org is not None and _trusted(org) else "DISABLED"})


_HANDLERS: dict[str, Callable[[CloudFormationResponse, StackSet, _State], Any]] = {
    "create_stack_instances": _h_create_instances,
    "update_stack_instances": _h_update_instances,
    "delete_stack_instances": _h_delete_instances,
    "update_stack_set": _h_update_stack_set,
    "delete_stack_set": _h_delete_stack_set,
    "describe_stack_set_operation": _h_describe_operation,
    "list_stack_set_operations": _h_list_operations,
    "list_stack_set_operation_results": _h_operation_results,
    "list_stack_instances": _h_list_instances,
    "describe_stack_instance": _h_describe_instance,
}


def _organizations_hook(name: str) -> None:
    original = getattr(OrganizationsBackend, name)

    def method(backend: OrganizationsBackend, *args: Any, **kwargs: Any) -> Any:
        result = original(backend, *args, **kwargs)
        created = result.get("CreateAccountStatus", {}) if isinstance(result, dict) else {}
        account_id = kwargs.get("AccountId") or created.get("AccountId")
        if account_id:
            account_changed(backend, str(account_id))
        return result

    setattr(OrganizationsBackend, name, method)


def apply_stackset_semantics() -> None:
    """Patch moto once in this process. Idempotent and thread-safe."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        CloudFormationResponse.create_stack_set = _create_stack_set(CloudFormationResponse.create_stack_set)  # type: ignore[method-assign]
        for name, handler in _HANDLERS.items():
            setattr(CloudFormationResponse, name, _wrap(name, handler))
        CloudFormationResponse.list_stack_set_auto_deployment_targets = _wrap_new(_h_list_auto_targets)  # type: ignore[attr-defined]
        CloudFormationResponse.activate_organizations_access = _activate_organizations_access  # type: ignore[attr-defined]
        CloudFormationResponse.describe_organizations_access = _describe_organizations_access  # type: ignore[attr-defined]
        for name in ("create_account", "move_account", "remove_account_from_organization"):
            _organizations_hook(name)
        _APPLIED = True


def _wrap_new(handler: Callable[[CloudFormationResponse, StackSet, _State], Any]) -> Callable[..., Any]:
    def method(response: CloudFormationResponse) -> Any:
        stackset, state = _stackset(response)
        if state is None:
            return ActionResult({"Summaries": []})
        with _LOCK:
            return handler(response, stackset, state)

    return method
