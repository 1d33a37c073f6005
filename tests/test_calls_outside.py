"""Calls per member account, counted OUTSIDE orgalerts: at a moto server on 127.0.0.1, by a WSGI middleware.

The shipped profile (config/accounts.yaml's `alerts` and defaults: tamper alerts and dead-letter queues on)
against a small nested organization. Each HTTP request the server receives is attributed to the account it
acts in: the account of the signing access key (moto's own key -> account map), or, for AssumeRole, the
account of the role assumed. orgalerts' own observers and counters play no part. Budgets (issue 15): a no-op
`deploy` and a `drift` make at most 9 calls per member account, AssumeRole included, and no write; a fresh
`deploy` at most 13.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from conftest import MANAGEMENT, account_client
from moto.iam.models import get_account_id_from
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.config import validate_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.sandbox.server import reset_moto

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "accounts.yaml"
READ_PREFIXES = ("Get", "List", "Describe", "AssumeRole", "Receive", "Test")


@dataclass
class Request:
    account_id: str
    operation: str

    @property
    def is_write(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


@dataclass
class RequestLog:
    """WSGI middleware in front of moto: one `Request` per HTTP request the server answers."""

    app: Callable[..., Iterable[bytes]]
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        request = _describe(environ, body)
        if request is not None:
            with self._lock:
                self.requests.append(request)
        return self.app(environ, start_response)

    def per_account(self) -> dict[str, list[Request]]:
        with self._lock:
            found: dict[str, list[Request]] = {}
            for request in self.requests:
                found.setdefault(request.account_id, []).append(request)
            return found

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


def _describe(environ: dict[str, Any], body: bytes) -> Request | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")  # JSON protocols: "AWSEvents.ListRules"
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()} if not target else {}
    operation = target.rsplit(".", 1)[-1] if target else form.get("Action", "")
    if not operation:
        return None  # moto's own API (reset), not an AWS call
    if operation == "AssumeRole":
        return Request(form.get("RoleArn", "::::?").split(":")[4], operation)
    auth = environ.get("HTTP_AUTHORIZATION", "")
    key = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""
    return Request(get_account_id_from(key) if key else "?", operation)


@pytest.fixture
def server() -> Iterator[tuple[str, RequestLog]]:
    reset_moto()
    log = RequestLog(DomainDispatcherApplication(create_backend_app))
    httpd = make_server("127.0.0.1", 0, log, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", log
    finally:
        httpd.shutdown()
        thread.join()
        reset_moto()


def _organization(endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
    orgs = account_client("organizations", endpoint_url=endpoint)
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    ous: dict[str, str] = {}
    for name, parent in [("Security", root), ("Workloads", root), ("Prod", "Workloads")]:
        ous[name] = orgs.create_organizational_unit(ParentId=ous.get(parent, parent), Name=name)["OrganizationalUnit"][
            "Id"
        ]
    accounts: dict[str, str] = {}
    for name, ou in [("notification", "Security"), ("shared", "Workloads"), ("prod1", "Prod"), ("prod2", "Prod")]:
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        accounts[name] = str(status["AccountId"])
        orgs.move_account(AccountId=accounts[name], SourceParentId=root, DestinationParentId=ous[ou])
    return ous, accounts


def _shipped_config(ous: dict[str, str], accounts: dict[str, str]) -> Any:
    """config/accounts.yaml as shipped, pointed at this organization (its `sandbox:` block left out)."""
    raw = yaml.safe_load(SHIPPED.read_text())
    raw.pop("sandbox", None)
    raw["organization"] = {"ous": [ous["Security"], ous["Workloads"]]}
    raw["notification"]["account_id"] = accounts["notification"]
    raw["member_role"] = {"name": "OrganizationAccountAccessRole"}  # the role moto creates with each account
    return validate_config(raw, str(SHIPPED))


def test_calls__shipped_profile__counted_at_the_server__within_the_floor(server: tuple[str, RequestLog]) -> None:
    endpoint, log = server
    ous, accounts = _organization(endpoint)
    config = _shipped_config(ous, accounts)
    gateway = Gateway(GatewaySettings(endpoint_url=endpoint, access_key_id="testing", secret_access_key="testing"))
    runner = Runner(Context(config, gateway))
    members = [accounts[n] for n in ("shared", "prod1", "prod2")]  # not the notification account (central too)

    log.clear()
    fresh = runner.converge("deploy", Mode.DEPLOY)
    assert exit_code(fresh) == 0, [(a.account_id, a.error) for a in fresh.accounts]
    counted = log.per_account()
    fresh_calls = {m: len(counted[m]) for m in members}
    assert max(fresh_calls.values()) <= 13, {m: Counter(r.operation for r in counted[m]) for m in members}

    for command, mode in (("deploy", Mode.DEPLOY), ("drift", Mode.DRIFT)):
        log.clear()
        report = runner.converge(command, mode)
        assert exit_code(report) == 0, (command, [(a.account_id, a.changes) for a in report.accounts])
        counted = log.per_account()
        for member in members:
            operations = Counter(r.operation for r in counted[member])
            assert sum(operations.values()) <= 9, (command, member, operations)
            # This version's floor (README "Calls per member account"): the look for the earlier versions' second
            # role is skipped, the role having been made with the record that none was left.
            assert sum(operations.values()) == 7 and operations["GetRole"] == 1, (command, member, operations)
            assert operations["AssumeRole"] == 1, (command, member, operations)
            assert [r.operation for r in counted[member] if r.is_write] == [], (command, member)
        assert [r for r in log.requests if r.is_write and r.account_id != accounts["notification"]] == []
        # the notification account: the central side reads only (the run lock is the CLI's, not the runner's)
        assert [r.operation for r in counted[accounts["notification"]] if r.is_write] == []
    assert MANAGEMENT not in members
