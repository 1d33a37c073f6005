"""The least-privilege principals the sandbox is seeded with, and whether strict mode is on.

Owns: `LeastPrivilege` (what to seed: the member role's name, the notification account, the three
policy documents `orgalerts permissions` prints, as plain dicts, plus a digest so the background
sandbox can tell when they changed) and `strict_requested()` (the `ORGALERTS_SANDBOX_STRICT` switch).

The sandbox computes no policy itself (it imports nothing of orgalerts but `orgalerts.errors`): the
command line computes them from the config and hands them over. Seeding them (strict rule 8,
`orgalerts.sandbox.strict.seeding`) makes every sandbox run a least-privilege proof: orgalerts acts as
an IAM user holding exactly the orchestrator policy and assumes, in each account, a role holding
exactly the member policy (plus the notification policy in the notification account), while strict
mode refuses whatever those policies do not allow, as AWS would.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STRICT_ENV = "ORGALERTS_SANDBOX_STRICT"
_OFF = {"0", "false", "no", "off"}


def strict_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Strict mode unless `ORGALERTS_SANDBOX_STRICT` is 0/false/no/off (a transition switch)."""
    value = (os.environ if environ is None else environ).get(STRICT_ENV, "")
    return value.strip().lower() not in _OFF


@dataclass(frozen=True)
class LeastPrivilege:
    role_name: str
    notification_account_id: str
    policies: Mapping[str, Mapping[str, Any]]  # {"orchestrator": doc, "member": doc, "notification": doc}
    external_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "role_name": self.role_name,
            "notification_account_id": self.notification_account_id,
            "policies": {k: dict(v) for k, v in self.policies.items()},
            "external_id": self.external_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeastPrivilege:
        return cls(
            role_name=str(data["role_name"]),
            notification_account_id=str(data["notification_account_id"]),
            policies={str(k): dict(v) for k, v in dict(data["policies"]).items()},
            external_id=None if data.get("external_id") is None else str(data["external_id"]),
        )

    def digest(self) -> str:
        """Changes whenever anything to seed changes (policies, role name, notification account)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]
