"""The AWS gateway: the only module that imports boto3.

Owns: one base session, the retry configuration, assumed-role access to member accounts, a client cache,
and hooks (call observers, fault injection, latency injection) attached to every client it creates.

Why one shared session: a new boto3.Session per account costs ~75 ms of CPU (loader, endpoint data);
clients created from one session with each account's explicit credentials cost a few ms. Client
creation from a shared session is serialised by a lock, since boto3 sessions are not thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

# IAM actions the gateway itself needs (merged by `orgalerts permissions`). AssumeRole's resource is
# narrowed to the member role name in permissions.py.
REQUIRED_ACTIONS: dict[str, tuple[str, ...]] = {"orchestrator": ("sts:GetCallerIdentity", "sts:AssumeRole")}

MEMBER_REGION = "us-east-1"  # IAM (a global service) delivers its CloudTrail events to EventBridge only here
SESSION_NAME = "orgalerts"

ClientError = botocore.exceptions.ClientError
BotoCoreError = botocore.exceptions.BotoCoreError


@cache
def known_regions() -> frozenset[str]:
    """Every region name botocore knows (all partitions). Reads bundled data; makes no AWS call."""
    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("events", partition_name=partition))
    return frozenset(regions)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def error_text(exc: BaseException) -> str:
    """`Code: message`, as reports show it. Never includes credentials (botocore messages do not)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Unknown')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def role_arn(account_id: str, role_name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


@dataclass(frozen=True)
class CallRecord:
    """One API call as the gateway's observers see it."""

    account_id: str
    service: str
    operation: str

    @property
    def is_write(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


READ_PREFIXES = ("Get", "List", "Describe", "Test", "Receive", "Lookup")

CallObserver = Callable[[CallRecord], None]
# A botocore hook: (account_id, service, operation, params) -> None; may raise to inject a fault.
CallHook = Callable[[str, str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class GatewaySettings:
    """How to reach AWS. `endpoint_url` and static keys are how the sandbox (or a test) points us at moto."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    max_attempts: int = 8  # botocore attempts per call (throttling, 5xx, connection errors)
    retry_mode: str = "adaptive"  # client-side rate limiting on top of backoff when throttled
    max_pool_connections: int = 50


@dataclass
class AccountAccess:
    """Clients for one account; created by Gateway.account()."""

    account_id: str
    _gateway: Gateway
    _credentials: dict[str, str] | None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._gateway._new_client(service, region, self.account_id, self._credentials)
        return self._clients[key]


class Gateway:
    """Creates clients for the caller's account and for assumed roles in other accounts."""

    def __init__(self, settings: GatewaySettings | None = None) -> None:
        self.settings = settings or GatewaySettings()
        self._lock = threading.Lock()
        self._session = boto3.session.Session(
            aws_access_key_id=self.settings.access_key_id,
            aws_secret_access_key=self.settings.secret_access_key,
        )
        self._config = botocore.config.Config(
            retries={"mode": self.settings.retry_mode, "max_attempts": self.settings.max_attempts},  # type: ignore[arg-type]
            max_pool_connections=self.settings.max_pool_connections,
            connect_timeout=10,
            read_timeout=60,
        )
        self._observers: list[CallObserver] = []
        self._hooks: list[CallHook] = []
        self._caller_account: str | None = None
        self._base = AccountAccess("", self, None)

    # --- seams for tests, benchmarks and reports -------------------------------------------------
    def add_observer(self, observer: CallObserver) -> None:
        """Called once per API attempt-set (before the call) with account, service and operation."""
        self._observers.append(observer)

    def add_hook(self, hook: CallHook) -> None:
        """Called before every API call; raising a ClientError from it injects a fault."""
        self._hooks.append(hook)

    # --- accounts ---------------------------------------------------------------------------------
    def caller_account(self) -> str:
        """The account the orchestrator's own credentials belong to (one STS call, cached)."""
        if self._caller_account is None:
            identity = self._base.client("sts", MEMBER_REGION).get_caller_identity()
            self._caller_account = str(identity["Account"])
            self._base.account_id = self._caller_account
        return self._caller_account

    def base(self) -> AccountAccess:
        """Clients with the orchestrator's own credentials."""
        self.caller_account()
        return self._base

    def account(self, account_id: str, role_name: str, external_id: str | None) -> AccountAccess:
        """Clients in `account_id`: the caller's own credentials there, else an assumed role."""
        if account_id == self.caller_account():
            return self._base
        params: dict[str, Any] = {
            "RoleArn": role_arn(account_id, role_name),
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": 3600,
        }
        if external_id:
            params["ExternalId"] = external_id
        creds = self._base.client("sts", MEMBER_REGION).assume_role(**params)["Credentials"]
        return AccountAccess(
            account_id,
            self,
            {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            },
        )

    # --- internals --------------------------------------------------------------------------------
    def _new_client(self, service: str, region: str, account_id: str, credentials: dict[str, str] | None) -> Any:
        with self._lock:
            client = self._session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=self.settings.endpoint_url,
                config=self._config,
                **(credentials or {}),
            )
        if self._observers or self._hooks:
            # before-parameter-build sees the API parameters (before-call only sees the serialised request).
            client.meta.events.register("before-parameter-build", self._before_call_handler(client, account_id))
        return client

    def _before_call_handler(self, client: Any, account_id: str) -> Callable[..., None]:
        service = client.meta.service_model.service_name

        def handler(model: Any, params: dict[str, Any], **_: Any) -> None:
            # The base access learns its account id lazily; read it at call time.
            acct = account_id or self._base.account_id
            record = CallRecord(acct, service, model.name)
            for observer in self._observers:
                observer(record)
            for hook in self._hooks:
                hook(acct, service, model.name, params)

        return handler
