"""Strict rule 7: AWS-managed IAM policies (arn:aws:iam::aws:policy/...) exist in the sandbox.

Owns: `ensure_aws_managed_policy` (used by the engine) and `load_aws_managed_policies` (moto's own
switch).

moto can load its copy of the AWS-managed policies into every IAM backend (config
`iam.load_aws_managed_policies` / env MOTO_IAM_LOAD_MANAGED_POLICIES=true, read by
`moto.settings.load_iam_aws_managed_policies()` when a backend is built or reset). Measured here:
it turns a 3-account sandbox's start from ~0.3 s into ~8-10 s, because moto parses ~1,300 policies
for each IAM backend (one per account and partition). Too slow to switch on always, so strict mode
loads a managed policy on first reference instead: before an IAM call naming
`arn:aws:iam::aws:policy/...` (AttachUserPolicy, AttachRolePolicy, AttachGroupPolicy, GetPolicy,
GetPolicyVersion, ...), the policy is added to the caller's IAM backend from moto's data (parsed
once per process). `attach-user-policy --policy-arn arn:aws:iam::aws:policy/AdministratorAccess`
then works; `ListPolicies --scope AWS` only shows the ones referenced so far.
`load_aws_managed_policies(True)` remains available for a run that wants them all.
"""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from typing import Any

from orgalerts.sandbox.strict.request import StrictCall

_ENV = "MOTO_IAM_LOAD_MANAGED_POLICIES"
_PREFIX = "arn:aws:iam::aws:policy/"
_LOCK = threading.Lock()


def load_aws_managed_policies(enabled: bool = True) -> bool:
    """Turn moto's loading of all AWS-managed policies on (or off); returns the previous state."""
    previous = os.environ.get(_ENV, "").lower() == "true"
    if enabled:
        os.environ[_ENV] = "true"
    else:
        os.environ.pop(_ENV, None)
    return previous


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    loaded = json.loads(aws_managed_policies_data)
    return loaded if isinstance(loaded, dict) else {}


def ensure_aws_managed_policy(account_id: str, policy_arn: str, region: str = "us-east-1") -> bool:
    """Make `policy_arn` (an AWS-managed policy) exist in the account's IAM backend. True if it does."""
    if not policy_arn.startswith(_PREFIX):
        return False
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account_id]["aws"]
    with _LOCK:
        if policy_arn in backend.managed_policies:
            return True
        name = policy_arn.rsplit("/", 1)[-1]
        data = _data().get(name)
        if data is None:
            return False
        policy = AWSManagedPolicy.from_data(name, account_id, region, data)
        if policy.arn != policy_arn:
            return False
        backend.managed_policies[policy.arn] = policy
        return True


def before(call: StrictCall) -> None:
    """Engine step: load the AWS-managed policy an IAM call names, if any."""
    if call.service == "iam":
        arn = call.parameters.get("PolicyArn")
        if isinstance(arn, str):
            ensure_aws_managed_policy(call.account_id, arn)
