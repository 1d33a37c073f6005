"""Validation of the `sandbox:` configuration block."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from orgalerts.errors import ConfigError
from orgalerts.sandbox import SandboxAccount, SandboxOU, parse_sandbox_spec

GOOD_YAML = """
sandbox:
  organization_id: o-sandbox001
  root_id: r-sbx0
  root_accounts: [{id: "444444444401", name: outside}]
  ous:
    - id: ou-sbx0-security
      name: Security
      accounts: [{id: "222222222222", name: notifications}]
      ous: []
    - id: ou-sbx0-workload
      name: Workloads
      ous:
        - id: ou-sbx0-prod0001
          name: Prod
          accounts:
            - {id: "333333333333", name: app}
            - {id: "333333333334", name: old, status: SUSPENDED}
"""


def good() -> Any:
    return yaml.safe_load(GOOD_YAML)["sandbox"]


def test_parses_nested_spec() -> None:
    spec = parse_sandbox_spec(good(), "orgalerts.yaml")
    assert spec.organization_id == "o-sandbox001" and spec.root_id == "r-sbx0"
    assert spec.management_account_id == "123456789012"
    assert spec.root_accounts == (SandboxAccount("444444444401", "outside"),)
    assert spec.ous[0] == SandboxOU(
        "ou-sbx0-security", "Security", (SandboxAccount("222222222222", "notifications"),), ()
    )
    prod = spec.ous[1].ous[0]
    assert prod.accounts[1] == SandboxAccount("333333333334", "old", "SUSPENDED")
    assert [a.id for a in spec.all_accounts()] == ["444444444401", "222222222222", "333333333333", "333333333334"]
    assert [o.id for o in spec.all_ous()] == ["ou-sbx0-security", "ou-sbx0-workload", "ou-sbx0-prod0001"]


def error(raw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_sandbox_spec(raw, "orgalerts.yaml")
    assert info.value.source == "orgalerts.yaml"
    return info.value


def test_unquoted_account_id_names_the_key() -> None:
    raw = yaml.safe_load(GOOD_YAML.replace('{id: "222222222222"', "{id: 222222222222"))["sandbox"]
    err = error(raw)
    assert err.key == "sandbox.ous[0].accounts[0].id"
    assert "quote" in err.expected
    assert "orgalerts.yaml: sandbox.ous[0].accounts[0].id:" in str(err)


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"),
    [
        (lambda r: r.update(extra=1), "sandbox.extra", "no such key"),
        (lambda r: r["ous"][1]["ous"][0].update(acounts=[]), "sandbox.ous[1].ous[0].acounts", "no such key"),
        (lambda r: r.update(organization_id="o-short"), "sandbox.organization_id", "o-"),
        (lambda r: r.update(root_id="root"), "sandbox.root_id", "r-"),
        (lambda r: r["ous"][0].update(id="ou-abcd-security"), "sandbox.ous[0].id", "ou-sbx0-"),
        (
            lambda r: r["ous"][1]["ous"][0]["accounts"][0].update(id="22222222222"),
            "sandbox.ous[1].ous[0].accounts[0].id",
            "12 digits",
        ),
        (
            lambda r: r["ous"][1]["ous"][0]["accounts"][0].update(id="444444444401"),
            "sandbox.ous[1].ous[0].accounts[0].id",
            "sandbox.root_accounts[0].id",
        ),
        (lambda r: r["root_accounts"][0].update(status="CLOSED"), "sandbox.root_accounts[0].status", "SUSPENDED"),
        (lambda r: r.update(management_account_id="111111111111"), "sandbox.management_account_id", "123456789012"),
        (
            lambda r: r["root_accounts"][0].update(id="123456789012"),
            "sandbox.root_accounts[0].id",
            "management account",
        ),
        (lambda r: r["ous"][1].update(name="Security"), "sandbox.ous[1].name", "unique"),
        (lambda r: r["ous"][1]["ous"][0].update(id="ou-sbx0-security"), "sandbox.ous[1].ous[0].id", "unique"),
        (lambda r: r["ous"][0].pop("name"), "sandbox.ous[0].name", "required"),
        (lambda r: r.update(ous={"id": "x"}), "sandbox.ous", "a list"),
    ],
)
def test_errors_name_the_key(mutate: Any, key: str, fragment: str) -> None:
    raw = good()
    mutate(raw)
    err = error(raw)
    assert err.key == key
    assert fragment in err.expected


def test_not_a_mapping() -> None:
    assert error(["x"]).key == "sandbox"


def test_management_account_default_may_be_written_out() -> None:
    raw = good()
    raw["management_account_id"] = "123456789012"
    assert parse_sandbox_spec(raw, "x").management_account_id == "123456789012"
