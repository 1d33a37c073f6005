"""The AWS gateway: sessions, shared clients, retries and call hooks (the package is the only boto3 user).

Owns: one base session, assumed-role access to member accounts, a client cache, the pacing and retries of
every client (by quota scope: per account or shared, see pacing.py), and hooks (call observers, fault
injection, latency injection) attached to every client it creates.

Why one shared session: a new boto3.Session per account costs ~75 ms of CPU (loader, endpoint data).
Why one shared client per service and region, for every account: a client created per account (even
from the shared session) costs 2-3 ms of CPU, and its first calls another ~0.8 ms each on cold model
caches; at three clients per account that alone broke the 10 ms-per-account CPU budget (bench/RESULTS.md).
Each account's calls go through an `_AccountClient` that binds the account for the duration of the call
(or of each page), and the shared client signs them with that account's credentials (botocore's
per-request `request_credentials` signing context). Against AWS this also reuses HTTP connections
across accounts instead of a TLS handshake per account and service. Clients are created under a lock,
since boto3 sessions are not thread-safe; botocore clients themselves are.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import ipaddress
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import botocore.credentials
import botocore.errorfactory
import botocore.exceptions
import botocore.loaders
import botocore.session
import botocore.utils

from orgalerts.aws.pacing import ORGANIZATIONS_MODELLED_RATE, QUOTAS, Pacer, Quota, QuotaRetry, RateLimiter

STS_REGION = "us-east-1"  # where the caller's own STS calls go (STS is global; any region answers)
SESSION_NAME = "orgalerts"


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
# A botocore send hook: (account_id, service, operation, request) -> an AWSResponse to use instead of sending,
# or None to send. Runs once per HTTP attempt inside botocore's retry loop (fault injection: throttling, 5xx,
# connection errors are then retried exactly as real ones).
SendHook = Callable[[str, str, str, Any], Any]


@dataclass(frozen=True)
class GatewaySettings:
    """How to reach AWS. `endpoint_url` and static keys are how the sandbox (or a test) points us at moto."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    # Attempts per call (throttling, 5xx, connection errors), first included. 12 so that a 30% throttle rate
    # slows a 1,000-account run but does not fail it: 0.3**12 per call is ~0.01 failed calls per run, where 8
    # attempts left about one account failed per run (bench/RESULTS.md). Which errors are retried is botocore's
    # standard decision; how long to wait, and the pacing before each attempt, are by quota scope (pacing.py).
    max_attempts: int = 12
    # One client per service is shared by every account: room for as many connections as the most workers.
    max_pool_connections: int = 256
    # STS allows 600 AssumeRole calls per second per calling account (pacing.QUOTAS), shared with whatever else
    # runs there: paced at a sixth.
    assume_role_rate: float = 100.0
    # Organizations' listing calls, shared by the run (pacing.QUOTAS: modelled, AWS publishes no figure).
    organizations_rate: float = ORGANIZATIONS_MODELLED_RATE

    def quotas(self) -> dict[str, Quota]:
        """pacing.QUOTAS with these settings' STS and Organizations rates."""
        quotas = dict(QUOTAS)
        quotas["sts"] = Quota(self.assume_role_rate, False, QUOTAS["sts"].source)
        quotas["organizations"] = Quota(self.organizations_rate, False, QUOTAS["organizations"].source)
        return quotas


@dataclass
class AccountAccess:
    """Clients for one account; created by Gateway.account()."""

    account_id: str
    _gateway: Gateway
    _credentials: dict[str, str] | None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _signing: botocore.credentials.Credentials | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self._credentials is not None:
            self._signing = botocore.credentials.Credentials(
                self._credentials["aws_access_key_id"],
                self._credentials["aws_secret_access_key"],
                self._credentials.get("aws_session_token"),
            )

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            shared, paginators = self._gateway._shared_client(service, region, member=self._signing is not None)
            self._clients[key] = _AccountClient(shared, self, paginators)
        return self._clients[key]


# The account whose call is in progress in this thread: set by _AccountClient around each call or page.
_CURRENT: contextvars.ContextVar[AccountAccess | None] = contextvars.ContextVar("orgalerts_account", default=None)


class _AccountClient:
    """One account's view of a shared botocore client: API methods and paginators run bound to the account
    (signed with its credentials, reported to hooks under its id); everything else is the client's own."""

    def __init__(self, client: Any, access: AccountAccess, paginators: dict[str, Any]) -> None:
        self._client = client
        self._access = access
        self._paginators = paginators  # the shared client's, one per operation (see `get_paginator`)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in self._client.meta.method_to_api_mapping:
            bound = self._bound(attribute)
            self.__dict__[name] = bound  # found directly next time, without __getattr__
            return bound
        return attribute

    def get_paginator(self, operation: str) -> _AccountPaginator:
        """botocore builds a new paginator class per `get_paginator` (docstring included); its paginator holds no
        per-pagination state (`paginate` makes a new iterator), so one per shared client and operation serves
        every account and thread."""
        paginator = self._paginators.get(operation)
        if paginator is None:
            paginator = self._paginators.setdefault(operation, self._client.get_paginator(operation))
        return _AccountPaginator(paginator, self._access)

    def _bound(self, method: Callable[..., Any]) -> Callable[..., Any]:
        access = self._access

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            token = _CURRENT.set(access)
            try:
                return method(*args, **kwargs)
            finally:
                _CURRENT.reset(token)

        return call


class _AccountPaginator:
    def __init__(self, paginator: Any, access: AccountAccess) -> None:
        self._paginator = paginator
        self._access = access

    def __getattr__(self, name: str) -> Any:
        return getattr(self._paginator, name)

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        return _bound_pages(self._paginator.paginate(**kwargs), self._access)


def _bound_pages(pages: Iterable[Any], access: AccountAccess) -> Iterator[Any]:
    iterator = iter(pages)
    while True:
        token = _CURRENT.set(access)  # each page is fetched inside next()
        try:
            page = next(iterator)
        except StopIteration:
            return
        finally:
            _CURRENT.reset(token)
        yield page


_SHARED_LOADER = botocore.loaders.create_loader()
_SHARED_EXCEPTIONS = botocore.errorfactory.ClientExceptionsFactory()


def on_loopback(endpoint_url: str | None) -> bool:
    """Whether `endpoint_url` is this machine (127.0.0.0/8, ::1, localhost): a simulator, not AWS."""
    if not endpoint_url:
        return False
    host = (urllib.parse.urlsplit(endpoint_url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Gateway:
    """Creates clients for the caller's account and for assumed roles in other accounts."""

    def __init__(
        self,
        settings: GatewaySettings | None = None,
        *,
        assume_role_limiter: RateLimiter | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.settings = settings or GatewaySettings()
        self._lock = threading.Lock()
        self._shared: dict[tuple[str, str, bool], tuple[Any, dict[str, Any]]] = {}
        quotas = self.settings.quotas()
        # A simulator on this machine (the sandbox, moto or LocalStack on 127.0.0.1) has no request quotas to keep:
        # its calls are not paced before they are sent. Throttling errors are still retried with their waits
        # (QuotaRetry), so an endpoint on loopback that does throttle is handled, only less politely. The endpoint
        # may also come from the environment (AWS_ENDPOINT_URL, as the sandbox's banner suggests exporting, or
        # AWS_ENDPOINT_URL_<SERVICE>, or the config file), which botocore resolves per client: each client is
        # judged by the endpoint it was given (`_unpaced`). A pacer or limiter passed in always paces.
        self._auto_pacing = pacer is None and assume_role_limiter is None
        # Whether a call is paced is `_unpaced`'s decision alone. The settings naming a simulator only leave its
        # pacer without quotas, so a throttle wait there assumes pacing.DEFAULT_RATE, not an AWS quota.
        local = self._auto_pacing and on_loopback(self.settings.endpoint_url)
        self.pacer = pacer or Pacer({} if local else quotas)
        # AssumeRole (and the run's other STS calls) go through the shared STS bucket.
        self.assume_role_limiter = assume_role_limiter or RateLimiter(self.settings.assume_role_rate)
        self.pacer._buckets[("sts", "", "")] = self.assume_role_limiter
        self.retries: list[QuotaRetry] = []  # one per client: what each waited (tests, bench)
        self._session = boto3.session.Session(
            aws_access_key_id=self.settings.access_key_id,
            aws_secret_access_key=self.settings.secret_access_key,
        )
        # The service models (JSON files of several MB, parsed once per botocore session) and the exception
        # classes built from them are read-only: every Gateway of the process shares one loader and one factory,
        # so a second Gateway (onboard after deploy, a sandbox command, every test) does not parse them again.
        botocore_session = self._session._session
        botocore_session.register_component("data_loader", _SHARED_LOADER)
        botocore_session.register_component("exceptions_factory", _SHARED_EXCEPTIONS)
        parsers = botocore_session.get_component("response_parser_factory")
        parsers.set_parser_defaults(timestamp_parser=parse_timestamp)
        self._config = botocore.config.Config(
            # total_max_attempts counts the first attempt; botocore's `max_attempts` here would count retries only.
            # `standard` only installs the handler that `_shared_client` replaces with a QuotaRetry.
            retries={"mode": "standard", "total_max_attempts": self.settings.max_attempts},
            max_pool_connections=self.settings.max_pool_connections,
            connect_timeout=10,
            read_timeout=60,
        )
        self._observers: list[CallObserver] = []
        self._hooks: list[CallHook] = []
        self._send_hooks: list[SendHook] = []
        self._caller_account: str | None = None
        self._base = AccountAccess("", self, None)

    # --- seams for tests, benchmarks and reports -------------------------------------------------
    def add_observer(self, observer: CallObserver) -> None:
        """Called once per API attempt-set (before the call) with account, service and operation."""
        self._observers.append(observer)

    def add_hook(self, hook: CallHook) -> None:
        """Called before every API call; raising a ClientError from it injects a fault."""
        self._hooks.append(hook)

    def add_send_hook(self, hook: SendHook) -> None:
        """Called before every HTTP attempt (botocore `before-send`)."""
        self._send_hooks.append(hook)

    # --- accounts ---------------------------------------------------------------------------------
    def caller_account(self) -> str:
        """The account the orchestrator's own credentials belong to (one STS call, cached)."""
        if self._caller_account is None:
            identity = self._base.client("sts", STS_REGION).get_caller_identity()
            self._caller_account = str(identity["Account"])
            self._base.account_id = self._caller_account
        return self._caller_account

    def base(self) -> AccountAccess:
        """Clients with the orchestrator's own credentials."""
        self.caller_account()
        return self._base

    def account(self, account_id: str, role_arn: str, external_id: str | None) -> AccountAccess:
        """Clients in `account_id`: the caller's own credentials there, else the assumed role `role_arn`."""
        if account_id == self.caller_account():
            return self._base
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": 3600,
        }
        if external_id:
            params["ExternalId"] = external_id
        creds = self._base.client("sts", STS_REGION).assume_role(**params)["Credentials"]
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
    def _shared_client(self, service: str, region: str, *, member: bool) -> tuple[Any, dict[str, Any]]:
        """The one client for (service, region) and side, created on first use with the base credentials, and its
        paginators by operation."""
        key = (service, region, member)
        with self._lock:
            shared = self._shared.get(key)
            if shared is None:
                client = self._session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.settings.endpoint_url,
                    config=self._config,
                )
                self._replace_retries(client)
                # before-parameter-build sees the API parameters (before-call only sees the serialised request).
                client.meta.events.register("before-parameter-build", self._before_call_handler(client))
                client.meta.events.register("before-sign", _signer(member=member))
                # First: a send hook's answer replaces the request, so no other before-send handler (a stubber,
                # in-process moto) may act on it before the hook decides.
                client.meta.events.register_first("before-send", self._before_send_handler(client))
                shared = self._shared[key] = (client, {})
        return shared

    def _replace_retries(self, client: Any) -> None:
        """botocore's standard retry handler out, a QuotaRetry (pacing.py) in: same decision, waits by quota scope."""
        event = client.meta.service_model.service_id.hyphenize()
        client.meta.events.unregister(f"needs-retry.{event}", unique_id=f"retry-config-{event}")
        retry = QuotaRetry(
            client.meta.service_model.service_name, self.pacer, self.settings.max_attempts, _current_account_id
        )
        client.meta.events.register(f"needs-retry.{event}", retry, unique_id=f"orgalerts-retry-{event}")
        self.retries.append(retry)

    def _unpaced(self, client: Any) -> bool:
        """Whether `client`'s calls go unpaced: a simulator on this machine, wherever its endpoint was set."""
        return self._auto_pacing and on_loopback(str(client.meta.endpoint_url))

    def _before_send_handler(self, client: Any) -> Callable[..., Any]:
        service = client.meta.service_model.service_name
        region = str(client.meta.region_name)
        paced = not self._unpaced(client)

        def handler(request: Any, event_name: str = "", **_: Any) -> Any:
            # Every HTTP attempt, retries included, takes a token of its quota scope (pacing.QUOTAS).
            # (STS: AssumeRole only; the one GetCallerIdentity of a run is not worth a token.)
            acct = _current_account_id()
            operation = event_name.rsplit(".", 1)[-1]
            if paced and (service != "sts" or operation == "AssumeRole"):
                self.pacer.acquire(service, acct, region)
            if not self._send_hooks:
                return None
            for hook in self._send_hooks:
                response = hook(acct, service, operation, request)
                if response is not None:
                    return response
            return None

        return handler

    def _before_call_handler(self, client: Any) -> Callable[..., None]:
        service = client.meta.service_model.service_name

        def handler(model: Any, params: dict[str, Any], **_: Any) -> None:
            if not (self._observers or self._hooks):
                return
            acct = _current_account_id()
            record = CallRecord(acct, service, model.name)
            for observer in self._observers:
                observer(record)
            for hook in self._hooks:
                hook(acct, service, model.name, params)

        return handler


def token_pages(call: Callable[..., dict[str, Any]], **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of an operation paged by `NextToken` in both its request and its answer (e.g. EventBridge's
    ListRules and ListTargetsByRule: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListRules.html,
    API_ListTargetsByRule.html), calling `call` (an account client's method) directly.

    What botocore's paginator does, for a third less CPU per page: its PageIterator and the deep copy of the call
    context it makes per page cost about 60 us a call on this machine, back to back (direct ListTargetsByRule
    234-240 us, paginated 292-299 us), and a member account's re-run reads three pages. A token that comes back
    unchanged would loop forever: it stops the read with botocore's own PaginationError, as its paginator does
    (a BotoCoreError: the runner reports that account failed, with the message, and goes on)."""
    token = ""
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        yield page
        following = str(page.get("NextToken") or "")
        if not following:
            return
        if following == token:
            name = getattr(call, "__name__", "a call")
            raise botocore.exceptions.PaginationError(message=f"the same NextToken came back twice from {name}")
        token = following


def parse_timestamp(value: Any) -> datetime.datetime:
    """botocore's timestamp parser, without dateutil for the ISO 8601 form with a zone that IAM and STS answer
    (`2024-01-01T00:00:00Z`): `datetime.fromisoformat` reads it in microseconds where dateutil's general parser
    takes ~0.1 ms (two timestamps per member account: AssumeRole's Expiration, GetRole's CreateDate). Anything
    else (no zone, RFC 822, epoch seconds) goes to botocore's own parser."""
    if isinstance(value, str) and (value.endswith("Z") or value[-6:-5] in ("+", "-")) and "T" in value:
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return botocore.utils.parse_timestamp(value)  # type: ignore[no-any-return]


def _current_account_id() -> str:
    # Read at call time: the base access learns its account id lazily (its first call finds it).
    access = _CURRENT.get()
    return access.account_id if access is not None else ""


class UnboundMemberCall(RuntimeError):
    """A member-side client was used outside an account binding: it would have signed as the orchestrator."""


def _signer(*, member: bool) -> Callable[..., None]:
    """botocore `before-sign`: sign with the bound account's credentials.

    A member-side client has no credentials of its own worth using: were a call ever made on it
    without an account bound, it would run as the orchestrator in the wrong account. Refuse instead.
    """

    def sign(request: Any, **_: Any) -> None:
        access = _CURRENT.get()
        if access is not None and access._signing is not None:
            request.context.setdefault("signing", {})["request_credentials"] = access._signing
        elif member:
            raise UnboundMemberCall("a member-account call was made without its account's credentials")

    return sign
