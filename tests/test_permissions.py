"""The printed least-privilege policies cover every call the code makes (recorded, not listed by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import MANAGEMENT, CallLog, SimOrg, make_engine

from orgalerts.commands.permissions import policies, required_actions
from orgalerts.engine.results import Mode


def _actions(policy: dict[str, object]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:  # type: ignore[attr-defined]
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def test_permissions__every_recorded_call_is_in_the_printed_policy(sim_org: SimOrg, call_log: CallLog) -> None:
    config = sim_org.config(
        organization={"ous": [sim_org.ous["Security"], sim_org.ous["Workloads"]], "include_accounts": [MANAGEMENT]}
    )
    engine = make_engine(config, call_log)
    engine.converge("deploy", Mode.DEPLOY)
    sim_org.client("events", sim_org.accounts["prod1"]).disable_rule(Name="orgalerts-forward")
    engine.converge("repair", Mode.REPAIR, orphans=True)
    engine.remove("offboard", [sim_org.accounts["prod2"]])
    engine.remove("teardown", None)

    printed = {name: _actions(doc) for name, doc in policies(config).items()}
    notification = sim_org.accounts["notification"]
    missing = set()
    for call in call_log.calls:
        action = f"{call.service}:{call.operation}"
        allowed = set(printed["member"])
        if call.account_id in (MANAGEMENT, ""):
            allowed |= printed["orchestrator"]
        if call.account_id == notification:
            allowed |= printed["notification"]
        if action not in allowed:
            missing.add((call.account_id or "caller", action))
    assert missing == set()
    assert len({c.operation for c in call_log.calls}) > 20  # the flows really exercised the code


def test_permissions__member_policy_scoped_to_managed_names() -> None:
    actions = required_actions()
    assert "iam:PassRole" in actions["member"]
    assert "sts:AssumeRole" in actions["orchestrator"]
    assert not any(a.endswith(":*") or a == "*" for group in actions.values() for a in group)


def test_cli_permissions__prints_three_policies(tmp_path: Path) -> None:
    config = Path(__file__).parent.parent / "config" / "accounts.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "orgalerts", "--config", str(config), "permissions"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"orchestrator", "member", "notification"}
    (assume,) = [s for s in document["orchestrator"]["Statement"] if s["Action"] == "sts:AssumeRole"]
    assert assume["Resource"] == "arn:aws:iam::*:role/OrgAlertsMemberRole"
