"""The CLI as a user drives it: a subprocess against a moto server on 127.0.0.1 via AWS_ENDPOINT_URL.

The server is the sandbox's (moto behind the CloudTrail emulation) in strict mode, unless
ORGALERTS_SANDBOX_STRICT=0: every call is authorized as AWS would. The CLI runs with the keys of an
orchestrator IAM user holding exactly the orchestrator policy `orgalerts permissions` prints, and
assumes a member role holding exactly the member policy (plus the notification policy in the
notification account): each of these tests is a least-privilege proof. The test itself acts as the
management account's root user and, in member accounts, as OrganizationAccountAccessRole (admin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import account_client

from orgalerts.cli.app import sandbox_least_privilege
from orgalerts.config import load_config
from orgalerts.sandbox import SandboxServer
from orgalerts.sandbox.least_privilege import strict_requested
from orgalerts.sandbox.server import reset_moto
from orgalerts.sandbox.strict import (
    SeededPrincipals,
    StrictEngine,
    grant_organization_access_admin,
    seed_least_privilege,
)

MANAGEMENT = "123456789012"
MEMBER_ROLE = "OrgAlertsMemberRole"


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A fresh server per test: moto reset, and a new strict engine (it remembers deleted queue names)."""
    reset_moto()
    with SandboxServer(strict=StrictEngine() if strict_requested() else None) as server:
        yield server.endpoint_url
    reset_moto()


class ServerOrg:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.accounts: dict[str, str] = {}
        self.ous: dict[str, str] = {}
        orgs = self.client("organizations")
        orgs.create_organization(FeatureSet="ALL")
        self.root = orgs.list_roots()["Roots"][0]["Id"]
        for name, parent in [("Sec", None), ("Work", None), ("Nested", "Work"), ("Out", None)]:
            self.ous[name] = orgs.create_organizational_unit(
                ParentId=self.ous[parent] if parent else self.root, Name=name
            )["OrganizationalUnit"]["Id"]
        for name, ou in [("notif", "Sec"), ("a", "Work"), ("b", "Nested"), ("excluded", "Work"), ("out", "Out")]:
            account = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"][
                "AccountId"
            ]
            orgs.move_account(AccountId=account, SourceParentId=self.root, DestinationParentId=self.ous[ou])
            self.accounts[name] = account

    def client(self, service: str, account: str = MANAGEMENT) -> Any:
        return account_client(service, account, endpoint_url=self.endpoint)

    def write_config(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "region": "us-east-1",
                    "organization": {
                        "ous": [self.ous["Sec"], self.ous["Work"]],
                        "exclude_accounts": [self.accounts["excluded"]],
                    },
                    "notification": {"account_id": self.accounts["notif"], "emails": ["secops@example.com"]},
                    "member_role": {"name": MEMBER_ROLE},
                }
            )
        )
        self.seeded = seed_principals(path, [MANAGEMENT, *self.accounts.values()])
        return path

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """`python -m orgalerts ARGS` as the least-privilege orchestrator (write_config seeds it)."""
        env = dict(
            os.environ,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=self.seeded.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.seeded.secret_access_key,
            AWS_DEFAULT_REGION="us-east-1",
        )
        return subprocess.run(
            [sys.executable, "-m", "orgalerts", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
        )


def seed_principals(config_path: Path, account_ids: list[str]) -> SeededPrincipals:
    """Seed the server as the sandbox does: the orchestrator user and the member role, with exactly the
    policies `orgalerts permissions` prints for this config; OrganizationAccountAccessRole stays admin."""
    config = load_config(config_path)
    wanted = sandbox_least_privilege(config)
    grant_organization_access_admin(account_ids)
    return seed_least_privilege(
        wanted.policies,
        wanted.role_name,
        management_account_id=MANAGEMENT,
        account_ids=account_ids,
        notification_account_id=wanted.notification_account_id,
        external_id=wanted.external_id,
    )


def test_cli_deploy__moto_server__exit_0_then_rerun_unchanged(endpoint: str, tmp_path: Path) -> None:
    org = ServerOrg(endpoint)
    config = org.write_config(tmp_path / "accounts.yaml")

    first = org.run("--config", str(config), "deploy", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    statuses = {a["account_id"]: a["status"] for a in document["accounts"]}
    in_scope = [org.accounts[n] for n in ("notif", "a", "b")]
    assert {a: statuses[a] for a in in_scope} == dict.fromkeys(in_scope, "created")
    assert statuses[org.accounts["excluded"]] == "skipped"
    assert org.accounts["out"] not in statuses
    assert document["central"]["status"] == "created"
    assert document["summary"]["created"] == 3
    for account in in_scope:
        assert org.client("events", account).list_targets_by_rule(Rule="orgalerts-forward")["Targets"]
    for name in ("excluded", "out"):
        assert org.client("events", org.accounts[name]).list_rules()["Rules"] == []

    second = org.run("--config", str(config), "deploy", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert {a["status"] for a in again["accounts"]} == {"unchanged", "skipped"}
    assert again["central"]["status"] == "unchanged"

    plan = org.run("--config", str(config), "plan", "--json", cwd=tmp_path)
    assert plan.returncode == 0
    drift = org.run("--config", str(config), "drift", cwd=tmp_path)
    assert drift.returncode == 0, drift.stderr


def test_cli_drift__disabled_rule__exit_3_then_repair_exit_0(endpoint: str, tmp_path: Path) -> None:
    org = ServerOrg(endpoint)
    config = org.write_config(tmp_path / "accounts.yaml")
    assert org.run("--config", str(config), "deploy", cwd=tmp_path).returncode == 0
    org.client("events", org.accounts["b"]).disable_rule(Name="orgalerts-forward")

    drift = org.run("--config", str(config), "drift", "--json", "--markdown", str(tmp_path / "r.md"), cwd=tmp_path)
    assert drift.returncode == 3, drift.stderr
    drifted = [a for a in json.loads(drift.stdout)["accounts"] if a["status"] == "drifted"]
    assert [(a["account_id"], a["changes"]) for a in drifted] == [
        (org.accounts["b"], ["rule default/orgalerts-forward: disabled"])
    ]
    assert "disabled" in (tmp_path / "r.md").read_text()

    repair = org.run("--config", str(config), "drift", "--repair", "--json", cwd=tmp_path)
    assert repair.returncode == 0, repair.stderr
    assert [a["status"] for a in json.loads(repair.stdout)["accounts"] if a["account_id"] == org.accounts["b"]] == [
        "repaired"
    ]
    assert org.run("--config", str(config), "drift", cwd=tmp_path).returncode == 0


def test_cli_teardown__no_terminal_without_yes__exit_2_nothing_changed(endpoint: str, tmp_path: Path) -> None:
    org = ServerOrg(endpoint)
    config = org.write_config(tmp_path / "accounts.yaml")
    assert org.run("--config", str(config), "deploy", cwd=tmp_path).returncode == 0

    refused = org.run("--config", str(config), "teardown", cwd=tmp_path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert org.client("events", org.accounts["a"]).describe_rule(Name="orgalerts-forward")

    done = org.run("--config", str(config), "teardown", "--yes", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["central"]["status"] == "removed"
    again = org.run("--config", str(config), "teardown", "--yes", "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert {a["status"] for a in json.loads(again.stdout)["accounts"]} <= {"unchanged", "skipped"}


def test_cli_onboard__account_outside_ous__exit_2_says_why(endpoint: str, tmp_path: Path) -> None:
    org = ServerOrg(endpoint)
    config = org.write_config(tmp_path / "accounts.yaml")
    result = org.run("--config", str(config), "onboard", org.accounts["out"], cwd=tmp_path)
    assert result.returncode == 2
    assert "not under the configured OUs" in result.stderr and "Traceback" not in result.stderr
