"""Shared fixtures: a simulated organization on moto (in-process), configs built for it, call counting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import tenacity
from moto import mock_aws

from orgalerts.aws import CallRecord, Gateway, GatewaySettings, Pacer
from orgalerts.config import Config, validate_config
from orgalerts.engine.context import Context
from orgalerts.engine.runner import Runner
from orgalerts.sandbox.fidelity import apply_aws_semantics

MANAGEMENT = "123456789012"

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_name, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
apply_aws_semantics()  # in-process moto behaves as AWS where orgalerts relies on it (the sandbox does the same)


def account_client(
    service: str,
    account_id: str | None = None,
    *,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    session_name: str = "test",
) -> Any:
    """A boto3 client acting in `account_id` through its OrganizationAccountAccessRole, as a person would
    (None or the management account: the management account's own "testing" keys). `endpoint_url`
    points it at a moto server or the sandbox; without it, in-process moto answers."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if account_id is None or account_id == MANAGEMENT:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url, **keys)
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint_url, **keys)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName=session_name
    )["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@dataclass
class FakeClock:
    """Injected time that moves only when the code under test sleeps: tests never wait."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class CallLog:
    """Every API call the gateway made, by account."""

    calls: list[CallRecord] = field(default_factory=list)

    def __call__(self, record: CallRecord) -> None:
        self.calls.append(record)

    def writes(self, account_id: str | None = None) -> list[CallRecord]:
        return [
            c
            for c in self.calls
            if c.is_write and c.operation != "AssumeRole" and (account_id is None or c.account_id == account_id)
        ]

    def for_account(self, account_id: str) -> list[CallRecord]:
        return [c for c in self.calls if c.account_id == account_id]

    def clear(self) -> None:
        self.calls.clear()


@dataclass
class SimOrg:
    """An organization with nested OUs, built with real Organizations calls on moto.

    root
      Security (ou)           : notification
      Workloads (ou)          : shared, excluded
        Prod (ou, nested)     : prod1, prod2
          Deep (ou, nested)   : deep1
      Outside (ou, not targeted): outside
    """

    org_id: str
    root_id: str
    ous: dict[str, str]
    accounts: dict[str, str]

    def client(self, service: str, account_id: str = MANAGEMENT, region: str = "us-east-1") -> Any:
        return account_client(service, account_id, region=region)

    def add_account(self, name: str, ou: str) -> str:
        orgs = self.client("organizations")
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        account_id = str(status["AccountId"])
        orgs.move_account(AccountId=account_id, SourceParentId=self.root_id, DestinationParentId=self.ous[ou])
        self.accounts[name] = account_id
        return account_id

    def raw_config(self, **overrides: Any) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "region": "us-east-1",
            "organization": {
                "ous": [self.ous["Security"], self.ous["Workloads"]],
                "exclude_accounts": [self.accounts["excluded"]],
                "include_accounts": [],
            },
            "member_role": {"name": "OrganizationAccountAccessRole", "external_id": None},
            "notification": {"account_id": self.accounts["notification"], "emails": ["secops@example.com"]},
            "alerts": {"pattern": "iam-changes"},
        }
        for key, value in overrides.items():
            raw[key] = value
        return raw

    def config(self, **overrides: Any) -> Config:
        return validate_config(self.raw_config(**overrides), "test-config.yaml")

    @property
    def in_scope(self) -> list[str]:
        return [self.accounts[n] for n in ("notification", "shared", "prod1", "prod2", "deep1")]


def build_org() -> SimOrg:
    orgs = boto3.client("organizations", region_name="us-east-1")
    org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root_id = orgs.list_roots()["Roots"][0]["Id"]
    sim = SimOrg(org_id, root_id, {}, {})

    def ou(name: str, parent: str) -> str:
        sim.ous[name] = orgs.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]
        return sim.ous[name]

    ou("Security", root_id)
    ou("Workloads", root_id)
    ou("Prod", sim.ous["Workloads"])
    ou("Deep", sim.ous["Prod"])
    ou("Outside", root_id)
    for name, where in [
        ("notification", "Security"),
        ("shared", "Workloads"),
        ("excluded", "Workloads"),
        ("prod1", "Prod"),
        ("prod2", "Prod"),
        ("deep1", "Deep"),
        ("outside", "Outside"),
    ]:
        sim.add_account(name, where)
    return sim


@pytest.fixture
def sim_org() -> Iterator[SimOrg]:
    with mock_aws():
        yield build_org()


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


def make_context(config: Config, call_log: CallLog | None = None, gateway: Gateway | None = None) -> Context:
    # Pacing and throttle waits go through the pacer's sleep: tests never sleep.
    gateway = gateway or Gateway(GatewaySettings(max_attempts=3), pacer=Pacer(sleep=lambda _: None))
    if call_log is not None:
        gateway.add_observer(call_log)
    return Context(config, gateway)


def make_engine(
    config: Config, call_log: CallLog | None = None, gateway: Gateway | None = None, **kwargs: Any
) -> Runner:
    return Runner(make_context(config, call_log, gateway), retry_wait=tenacity.wait_none(), **kwargs)


# The central side looks for what a previous `region` left in every region of the partition (34 today); the
# in-process tests look in three, so each engine does not build a hundred clients. The code path is the same.
TEST_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})


@pytest.fixture(autouse=True)
def _scanned_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    from orgalerts.sides import central

    monkeypatch.setattr(central, "scanned_regions", lambda: TEST_REGIONS)


@pytest.fixture(autouse=True)
def _pacing_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Gateway built without a pacer (the CLI's, most engines') paces through one whose sleep returns at once:
    tests never sleep. The buckets still count (test_rate_limit checks the waits they ask for, with a clock)."""
    from orgalerts.aws import gateway as gateway_module
    from orgalerts.aws import pacing

    class NonSleepingPacer(pacing.Pacer):
        def __init__(self, quotas: dict[str, pacing.Quota] | None = None, **kwargs: Any) -> None:
            kwargs.setdefault("sleep", lambda _seconds: None)
            super().__init__(quotas, **kwargs)

    monkeypatch.setattr(gateway_module, "Pacer", NonSleepingPacer)
