"""Strict rule 7: AWS-managed IAM policies (arn:aws:iam::aws:policy/...) exist in the sandbox.

Owns: `load_aws_managed_policies(enabled)`. moto loads its copy of the AWS-managed policies into each
IAM backend only when `moto.settings.load_iam_aws_managed_policies()` is true (config
`iam.load_aws_managed_policies` or env MOTO_IAM_LOAD_MANAGED_POLICIES=true), at backend creation or
reset. The sandbox sets the env var for its process before resetting moto, so every account's backend
(created lazily on first use) has them; AttachUserPolicy/AttachRolePolicy of
arn:aws:iam::aws:policy/AdministratorAccess then works. Cost: see the sandbox server's docstring.
"""

from __future__ import annotations

import os

_ENV = "MOTO_IAM_LOAD_MANAGED_POLICIES"


def load_aws_managed_policies(enabled: bool = True) -> bool:
    """Turn moto's loading of AWS-managed policies on (or off); returns the previous state."""
    previous = os.environ.get(_ENV, "").lower() == "true"
    if enabled:
        os.environ[_ENV] = "true"
    else:
        os.environ.pop(_ENV, None)
    return previous
