"""Strict rule 6: Organizations policy types settle asynchronously; at most 5 SCPs per target.

Owns: `OrganizationsRules` (state: policy types enabled but still pending, and how many more reads
each stays pending for).

* EnablePolicyType is asynchronous: "the policy type ... is PENDING_ENABLE ... until the operation
  completes" (https://docs.aws.amazon.com/organizations/latest/APIReference/API_EnablePolicyType.html,
  https://docs.aws.amazon.com/organizations/latest/APIReference/API_PolicyTypeSummary.html). moto
  enables at once; the sandbox marks the type PENDING_ENABLE in moto's root (so ListRoots shows it)
  and flips it to ENABLED after `policy_type_pending_reads` further ListRoots/DescribeOrganization
  calls. Over HTTP the EnablePolicyType answer itself shows PENDING_ENABLE; in-process (before-send
  hook, which cannot rewrite moto's answer) only the later reads do.
* AttachPolicy of a type that is not ENABLED on the root (pending, or never enabled: moto does not
  check) fails with PolicyTypeNotEnabledException
  (https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html).
* "Maximum number of SCPs attached to a root, OU, or account: 5" (FullAWSAccess included,
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html). Refused
  with ConstraintViolationException, Reason MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED ("You attempted
  to exceed the number of policies of a certain type that can be attached to an entity at one time",
  botocore's ConstraintViolationExceptionReason; POLICY_NUMBER_LIMIT_EXCEEDED is the organization-wide
  count of policies, not this). AWS attaches FullAWSAccess to every root, OU and account when SCPs
  are enabled; moto only to the root and the management account, so a target without it in moto is
  counted as if it had it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from orgalerts.sandbox.strict.replies import Refusal
from orgalerts.sandbox.strict.request import StrictCall
from orgalerts.sandbox.strict.settings import StrictSettings

SCP = "SERVICE_CONTROL_POLICY"
FULL_AWS_ACCESS = "p-FullAWSAccess"
_READS = frozenset({"ListRoots", "DescribeOrganization"})


def _org_backend(account_id: str) -> Any:
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[account_id]["aws"]
    if backend.org is None and account_id in organizations_backends.master_accounts:
        master, partition = organizations_backends.master_accounts[account_id]
        backend = organizations_backends[master][partition]
    return backend if backend.org is not None else None


def _roots(backend: Any) -> list[Any]:
    return [ou for ou in backend.ou if getattr(ou, "type", "") == "ROOT"]


def _target(backend: Any, target_id: str) -> Any:
    found = next((ou for ou in backend.ou if ou.id == target_id), None)
    return found or next((a for a in backend.accounts if a.id == target_id), None)


class OrganizationsRules:
    def __init__(self, settings: StrictSettings) -> None:
        self.settings = settings
        self._pending: dict[tuple[str, str], int] = {}  # (root id, policy type) -> reads left
        self._lock = threading.Lock()

    def _settle(self, backend: Any, count_read: bool) -> None:
        """Mirror pending types into moto's roots; on a read, count down and enable the due ones."""
        for root in _roots(backend):
            for entry in root.policy_types:
                key = (root.id, entry["Type"])
                if key not in self._pending:
                    continue
                if count_read and self._pending[key] <= 0:
                    entry["Status"] = "ENABLED"
                    del self._pending[key]
                    continue
                entry["Status"] = "PENDING_ENABLE"
                if count_read:
                    self._pending[key] -= 1

    def _attach(self, backend: Any, call: StrictCall) -> Refusal | None:
        policy = next((p for p in backend.policies if p.id == call.parameters.get("PolicyId")), None)
        target = _target(backend, str(call.parameters.get("TargetId", "")))
        if policy is None or target is None:
            return None  # moto answers PolicyNotFound / TargetNotFound
        enabled = any(
            t["Type"] == policy.type and t["Status"] == "ENABLED" for r in _roots(backend) for t in r.policy_types
        )
        if not enabled:
            return Refusal(
                "PolicyTypeNotEnabledException", "This operation can be performed only for enabled policy types."
            )
        if policy.type != SCP or policy in target.attached_policies:
            return None
        attached = [p for p in target.attached_policies if p.type == SCP]
        count = len(attached) + (0 if any(p.id == FULL_AWS_ACCESS for p in attached) else 1)
        if count >= self.settings.max_scps_per_target:
            return Refusal(
                "ConstraintViolationException",
                "You attempted to exceed the number of policies of a certain type that can be attached to an entity "
                "at one time.",
                extra={"Reason": "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"},
            )
        return None

    def before(self, call: StrictCall) -> Refusal | None:
        if call.service != "organizations":
            return None
        backend = _org_backend(call.account_id)
        if backend is None:
            return None
        with self._lock:
            self._settle(backend, count_read=call.operation in _READS)
            if call.operation == "EnablePolicyType":
                root = next((r for r in _roots(backend) if r.id == call.parameters.get("RootId")), None)
                kind = call.parameters.get("PolicyType")
                if root is not None and all(t["Type"] != kind for t in root.policy_types):
                    self._pending[(root.id, str(kind))] = self.settings.policy_type_pending_reads
            elif call.operation == "DisablePolicyType":
                key = (str(call.parameters.get("RootId")), str(call.parameters.get("PolicyType")))
                if self._pending.pop(key, None) is not None:
                    self._force_enabled(backend, key)
            elif call.operation == "AttachPolicy":
                return self._attach(backend, call)
        return None

    @staticmethod
    def _force_enabled(backend: Any, key: tuple[str, str]) -> None:
        # moto's DisablePolicyType removes {"Type": T, "Status": "ENABLED"} exactly.
        for root in _roots(backend):
            for entry in root.policy_types:
                if (root.id, entry["Type"]) == key:
                    entry["Status"] = "ENABLED"

    def after(self, call: StrictCall, status: int, body: bytes) -> bytes:
        """Over HTTP: EnablePolicyType's own answer shows the type pending, as AWS's does."""
        if call.service != "organizations" or call.operation != "EnablePolicyType" or status != 200:
            return body
        backend = _org_backend(call.account_id)
        if backend is None:
            return body
        with self._lock:
            self._settle(backend, count_read=False)
            root = next((r for r in _roots(backend) if r.id == call.parameters.get("RootId")), None)
            return body if root is None else json.dumps({"Root": root.describe()}).encode()
