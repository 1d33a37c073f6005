"""Fault injection: throttling, 5xx, connection errors, AccessDenied, partial failures, SIGINT.

Every test names its fault, checks that the report and the exit code tell the truth about it, then runs
again without the fault and checks that every in-scope account converged with nothing lost or duplicated,
and that one more clean run makes no write at all.

Transport faults (throttling, 5xx, connection errors, AccessDenied answers) are injected at botocore's
`before-send` event through `Gateway.add_send_hook`: the handler answers instead of AWS, once per HTTP
attempt, so botocore's real retry machinery (adaptive mode, the product's attempt count, throttling
detection, retry quota) handles them exactly as it would handle AWS. In-process moto is itself a
`before-send` handler that runs after ours: a request we answered is marked, and moto leaves it alone
(else a throttled CreateRole would still have created the role behind the client's back).
"""

from __future__ import annotations

import io
import json
import random
import signal
import sys
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.retries import bucket, standard
from conftest import CallLog, SimOrg, make_engine
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.models import botocore_stubber

from orgalerts.aws import Gateway, GatewaySettings, Pacer
from orgalerts.aws.pacing import MAX_THROTTLE_WAIT
from orgalerts.cli import app as cli
from orgalerts.cli.render import to_json, write_table
from orgalerts.engine import runner as runner_module
from orgalerts.engine.results import Interrupted, Mode, RunReport, SideResult, Status, exit_code
from orgalerts.engine.runner import INTERRUPTED, Runner
from orgalerts.model.addresses import Names
from orgalerts.model.scope import Account

NAMES = Names()


# --- fixtures ---------------------------------------------------------------------------------------


# Set on a request a send hook answered: in-process moto must not execute it.
ANSWERED = "orgalerts_test_answered"


@pytest.fixture
def sim(sim_org: SimOrg, monkeypatch: pytest.MonkeyPatch) -> SimOrg:
    original = BotocoreStubber.__call__

    def moto_unless_answered(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if getattr(request, ANSWERED, False):
            return None
        return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", moto_unless_answered)
    _probes.clear()
    return sim_org


_probes: dict[tuple[str, str], Any] = {}


def probe(sim: SimOrg, service: str, account: str) -> Any:
    """A client to look at an account directly (not through the gateway); cached: creating one costs ~20 ms."""
    if (service, account) not in _probes:
        _probes[(service, account)] = sim.client(service, account)
    return _probes[(service, account)]


@dataclass
class RetryStats:
    delays: list[float] = field(default_factory=list)
    rate_limited: int = 0
    paced: list[float] = field(default_factory=list)  # what the gateway's pacer would have slept


STATS = RetryStats()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> RetryStats:
    """Keep botocore's retry machinery, minus its real waiting.

    botocore 1.44 (standard and adaptive modes): `ExponentialBackoff.delay_amount` computes the delay that
    `Endpoint._needs_retry` then passes to `time.sleep`; we record it and return 0. In adaptive mode, once
    throttling is seen, `TokenBucket.acquire` blocks on a Condition for real time before each request; we
    record that the rate limiter engaged and grant the token at once.
    """
    stats = RetryStats()
    original_delay = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: standard.ExponentialBackoff, context: Any) -> float:
        stats.delays.append(original_delay(self, context))
        return 0.0

    def acquire(self: bucket.TokenBucket, amount: int = 1, block: bool = True) -> bool:
        stats.rate_limited += 1
        return True

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
    monkeypatch.setattr(bucket.TokenBucket, "acquire", acquire)
    monkeypatch.setattr(sys.modules[__name__], "STATS", stats)
    return stats


# --- fault injection --------------------------------------------------------------------------------

# Chooses the fault for one HTTP attempt: (account, service, operation, request body, attempt index) -> kind.
Chooser = Callable[[str, str, str, str, int], "str | None"]


@cache
def _protocol(service: str) -> str:
    return str(botocore.session.get_session().get_service_model(service).resolved_protocol)


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def aws_answer(service: str, status: int, code: str, message: str) -> AWSResponse:
    """An error (or JSON) answer in the wire format of the service's protocol."""
    if _protocol(service) == "query":
        side = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{side}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault-injected</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    elif _protocol(service) == "rest-xml":  # S3
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-injected</RequestId></Error>"
        headers = {"Content-Type": "application/xml"}
    else:
        body = json.dumps({"__type": code, "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    return AWSResponse("https://fault.invalid/", status, headers, _Body(body.encode()))


def _throttling_code(service: str) -> str:
    if _protocol(service) == "query":
        return "Throttling"
    if _protocol(service) == "rest-xml":
        return "SlowDown"
    return "TooManyRequestsException" if service == "organizations" else "ThrottlingException"


def answer(request: Any, response: AWSResponse) -> AWSResponse:
    setattr(request, ANSWERED, True)
    return response


def fault(kind: str, service: str, request: Any) -> AWSResponse:
    """The answer for one attempt (raising ends the attempt before any other before-send handler runs)."""
    if kind == "lost-response":
        botocore_stubber.process_request(request)  # AWS applies the write; its answer never arrives
        raise ReadTimeoutError(endpoint_url=request.url)
    if kind == "connection":
        raise EndpointConnectionError(endpoint_url=request.url)
    return answer(request, _fault_answer(kind, service))


def _fault_answer(kind: str, service: str) -> AWSResponse:
    if kind == "throttle":
        return aws_answer(service, 400, _throttling_code(service), "Rate exceeded")
    if kind == "500":
        return aws_answer(service, 500, "InternalFailure", "We encountered an internal error. Please try again.")
    if kind == "503":
        return aws_answer(service, 503, "ServiceUnavailable", "Service is unavailable. Please try again later.")
    if kind == "denied":
        code = "AccessDenied" if _protocol(service) == "query" else "AccessDeniedException"
        return aws_answer(service, 403, code, "User is not authorized to perform this action")
    raise AssertionError(kind)


class Injector:
    """A send hook: counts every HTTP attempt and injects the fault `choose` names for it."""

    def __init__(self, choose: Chooser) -> None:
        self.choose = choose
        self.attempts: Counter[tuple[str, str, str]] = Counter()
        self.injected: Counter[tuple[str, str, str, str]] = Counter()
        self._per_request: Counter[tuple[str, str, str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, account: str, service: str, operation: str, request: Any) -> AWSResponse | None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        with self._lock:
            key = (account, service, operation, body)
            index = self._per_request[key]
            self._per_request[key] += 1
            self.attempts[(account, service, operation)] += 1
        kind = self.choose(account, service, operation, body, index)
        if kind is None:
            return None
        with self._lock:
            self.injected[(account, service, operation, kind)] += 1
        return fault(kind, service, request)

    def services_faulted(self) -> set[str]:
        return {service for (_, service, _, _) in self.injected}

    def services_called(self) -> set[str]:
        return {service for (_, service, _) in self.attempts}


def at_rate(kind: str, rate: float, seed: str) -> Chooser:
    """Inject `kind` in `rate` of the attempts; deterministic per request and attempt, whatever the threads do."""

    def choose(account: str, service: str, operation: str, body: str, index: int) -> str | None:
        draw = random.Random(f"{seed}|{account}|{service}|{operation}|{body}|{index}").random()
        return kind if draw < rate else None

    return choose


def every_service_first(kind: str, then: Chooser) -> Chooser:
    """The first attempt on each service gets `kind` (so every service sees it), then `then` decides."""
    seen: set[str] = set()
    lock = threading.Lock()

    def choose(account: str, service: str, operation: str, body: str, index: int) -> str | None:
        with lock:
            first = service not in seen
            seen.add(service)
        return kind if first else then(account, service, operation, body, index)

    return choose


def only_in(account: str, kind: str, operation: str | None = None) -> Chooser:
    """Inject `kind` on every attempt of `operation` (or every call) made inside `account`."""

    def choose(acct: str, service: str, op: str, body: str, index: int) -> str | None:
        return kind if acct == account and op == (operation or op) else None

    return choose


ATTEMPTS = GatewaySettings().max_attempts


def max_attempts_in(injector: Injector, account: str) -> int:
    return max(n for (acct, _, _), n in injector.attempts.items() if acct == account)


def _role_arn_in(body: str) -> str:
    return urllib.parse.parse_qs(body).get("RoleArn", [""])[0]


# --- running and checking ---------------------------------------------------------------------------


def engine_for(sim: SimOrg, *, send_hook: Any = None, call_hook: Any = None, log: CallLog | None = None) -> Runner:
    # the product's retry settings; the pacer's waits recorded, not slept
    gateway = Gateway(GatewaySettings(), pacer=Pacer(sleep=STATS.paced.append))
    if send_hook is not None:
        gateway.add_send_hook(send_hook)
    if call_hook is not None:
        gateway.add_hook(call_hook)
    return make_engine(sim.config(), log, gateway=gateway)


def deploy(engine: Runner) -> RunReport:
    return engine.converge("deploy", Mode.DEPLOY)


def table(result: RunReport) -> str:
    out = io.StringIO()
    write_table(result, out)
    return out.getvalue()


def statuses(result: RunReport) -> dict[str, str]:
    return {a["account_id"]: a["status"] for a in to_json(result)["accounts"]}


def errors(result: RunReport) -> dict[str, str]:
    return {a["account_id"]: a["error"] for a in to_json(result)["accounts"] if a["error"]}


def member_state(sim: SimOrg, account: str) -> dict[str, Any]:
    """What the account holds of the core forwarding resources (None where missing)."""
    iam = probe(sim, "iam", account)
    events = probe(sim, "events", account)
    state: dict[str, Any] = {"role": None, "policy": None, "rule": None, "targets": None}
    try:
        role = iam.get_role(RoleName=NAMES.forwarder_role)["Role"]
        state["role"] = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]}
        state["policy"] = iam.get_role_policy(RoleName=NAMES.forwarder_role, PolicyName=NAMES.forwarder_policy)[
            "PolicyName"
        ]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchEntity", exc
    try:
        state["rule"] = events.describe_rule(Name=NAMES.member_rule, EventBusName="default")["State"]
        state["targets"] = events.list_targets_by_rule(Rule=NAMES.member_rule, EventBusName="default")["Targets"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException", exc
    return state


def assert_untouched(sim: SimOrg, account: str) -> None:
    assert member_state(sim, account) == {"role": None, "policy": None, "rule": None, "targets": None}


def assert_converged_and_quiet(sim: SimOrg) -> None:
    """Every in-scope account holds role, policy, rule and exactly one target; a clean run writes nothing."""
    notification = sim.accounts["notification"]
    bus_arn = f"arn:aws:events:us-east-1:{notification}:event-bus/{NAMES.central_bus}"
    for account in sim.in_scope:
        state = member_state(sim, account)
        assert state["role"] is not None and state["role"].get("managed-by") == "orgalerts", (account, state)
        assert state["policy"] == NAMES.forwarder_policy, (account, state)
        assert state["rule"] is not None, (account, state)
        (target,) = state["targets"]  # exactly one: nothing lost, nothing duplicated
        assert target["Arn"] == bus_arn
        assert target["RoleArn"] == f"arn:aws:iam::{account}:role/{NAMES.forwarder_role}"
    events = probe(sim, "events", notification)
    events.describe_event_bus(Name=NAMES.central_bus)
    info_rule = f"{NAMES.prefix}alert-info"
    (alert_target,) = events.list_targets_by_rule(Rule=info_rule, EventBusName=NAMES.central_bus)["Targets"]
    sns = probe(sim, "sns", notification)
    subs = sns.list_subscriptions_by_topic(TopicArn=alert_target["Arn"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "secops@example.com")]

    log = CallLog()
    result = deploy(engine_for(sim, log=log))
    assert exit_code(result) == 0, table(result)
    assert result.central is not None and result.central.status == "unchanged", table(result)
    assert {a: statuses(result)[a] for a in sim.in_scope} == dict.fromkeys(sim.in_scope, "unchanged")
    assert log.writes() == []


def recover(sim: SimOrg) -> RunReport:
    """The follow-up run without any fault: everything converges."""
    result = deploy(engine_for(sim))
    assert exit_code(result) == 0, table(result)
    assert all(statuses(result)[a] in ("created", "updated", "unchanged") for a in sim.in_scope), table(result)
    assert_converged_and_quiet(sim)
    return result


# --- throttling -------------------------------------------------------------------------------------


def test_fault__throttling_30pct_every_service__run_slower_but_converges(sim: SimOrg, no_backoff: RetryStats) -> None:
    injector = Injector(every_service_first("throttle", at_rate("throttle", 0.30, seed="throttle-30")))
    engine = engine_for(sim, send_hook=injector)

    result = deploy(engine)

    assert exit_code(result) == 0, table(result)
    assert {a: statuses(result)[a] for a in sim.in_scope} == dict.fromkeys(sim.in_scope, "created")
    assert result.central is not None and result.central.status == "created"
    # Every service the run used was throttled, and each throttle was retried after a wait by its quota scope
    # (about one token's time of that service's rate, pacing.QUOTAS), not botocore's backoff or adaptive limiter.
    assert injector.services_faulted() == injector.services_called() >= {"sts", "organizations", "iam", "events"}
    waits = [w for retry in engine.ctx.gateway.retries for w in retry.waited]
    assert len(waits) == sum(injector.injected.values()) > 0
    assert {kind for _, kind, _ in waits} == {"throttled"}
    assert all(0 < seconds <= MAX_THROTTLE_WAIT for _, _, seconds in waits)
    assert no_backoff.delays == [] and no_backoff.rate_limited == 0
    recover(sim)


def test_fault__throttling_in_bursts_every_service__retried_and_converges(sim: SimOrg, no_backoff: RetryStats) -> None:
    counter = iter(range(1_000_000))
    lock = threading.Lock()

    def bursts(account: str, service: str, operation: str, body: str, index: int) -> str | None:
        with lock:
            n = next(counter)
        # 5 attempts in a row out of every 12 are throttled, whoever makes them (below the attempts allowed).
        return "throttle" if n % 12 < 5 else None

    injector = Injector(bursts)
    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 0, table(result)
    assert {a: statuses(result)[a] for a in sim.in_scope} == dict.fromkeys(sim.in_scope, "created")
    assert sum(injector.injected.values()) >= 5 * (sum(injector.attempts.values()) // 12)
    assert len(injector.services_faulted()) >= 4
    recover(sim)


def test_fault__throttling_never_ends_in_one_account__that_account_failed_with_code_others_converge(
    sim: SimOrg,
) -> None:
    victim = sim.accounts["prod1"]
    injector = Injector(only_in(victim, "throttle"))

    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 1
    assert statuses(result)[victim] == "failed"
    assert errors(result)[victim].split(": ", 1) in (
        [code, "Rate exceeded"] for code in ("Throttling", "ThrottlingException", "TooManyRequestsException")
    )
    assert max_attempts_in(injector, victim) == ATTEMPTS  # every attempt allowed on its first call, then it gave up
    others = [a for a in sim.in_scope if a != victim]
    assert {a: statuses(result)[a] for a in others} == dict.fromkeys(others, "created")
    assert_untouched(sim, victim)
    recover(sim)


# --- 5xx and connection errors ----------------------------------------------------------------------


def test_fault__5xx_on_every_service_25pct__retried_and_converges(sim: SimOrg, no_backoff: RetryStats) -> None:
    five_hundreds = at_rate("500", 0.15, seed="5xx-a")
    five_oh_threes = at_rate("503", 0.10, seed="5xx-b")
    injector = Injector(
        every_service_first("503", lambda *attempt: five_hundreds(*attempt) or five_oh_threes(*attempt))
    )

    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 0, table(result)
    assert {a: statuses(result)[a] for a in sim.in_scope} == dict.fromkeys(sim.in_scope, "created")
    kinds = {kind for (*_, kind) in injector.injected}
    assert kinds == {"500", "503"}
    assert injector.services_faulted() == injector.services_called()
    assert len(no_backoff.delays) == sum(injector.injected.values())
    recover(sim)


def test_fault__503_never_ends_on_put_rule_in_one_account__failed_half_configured_then_converges(sim: SimOrg) -> None:
    victim = sim.accounts["deep1"]
    injector = Injector(only_in(victim, "503", "PutRule"))

    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 1
    assert statuses(result)[victim] == "failed"
    assert errors(result)[victim].startswith("ServiceUnavailable: ")
    assert injector.attempts[(victim, "events", "PutRule")] == ATTEMPTS  # every attempt allowed, in all
    done = next(a for a in result.accounts if a.account_id == victim).changes
    assert any(NAMES.forwarder_role in change for change in done)  # the report says what was done before
    state = member_state(sim, victim)
    assert state["role"] is not None and state["rule"] is None
    recover(sim)


def test_fault__connection_errors_30pct__retried_and_converges(sim: SimOrg, no_backoff: RetryStats) -> None:
    injector = Injector(every_service_first("connection", at_rate("connection", 0.30, seed="conn")))

    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 0, table(result)
    assert {a: statuses(result)[a] for a in sim.in_scope} == dict.fromkeys(sim.in_scope, "created")
    assert injector.services_faulted() == injector.services_called()
    recover(sim)


def test_fault__endpoint_unreachable_for_one_account__failed_with_connection_error_then_converges(sim: SimOrg) -> None:
    victim = sim.accounts["shared"]
    injector = Injector(only_in(victim, "connection"))

    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 1
    assert statuses(result)[victim] == "failed"
    assert errors(result)[victim].startswith("EndpointConnectionError: Could not connect to the endpoint URL")
    assert max_attempts_in(injector, victim) == ATTEMPTS
    assert_untouched(sim, victim)
    recover(sim)


def test_fault__response_lost_after_create_role_applied__our_role_found_and_account_converges(sim: SimOrg) -> None:
    victim = sim.accounts["prod2"]
    # The first CreateRole in the victim reaches AWS and is applied, but its answer never comes back.
    injector = Injector(
        lambda acct, _s, op, _b, index: "lost-response" if (acct, op, index) == (victim, "CreateRole", 0) else None
    )

    result = deploy(engine_for(sim, send_hook=injector))

    # botocore retried the create and met the role it had made (tagged ours): nothing duplicated, no failure.
    assert injector.injected, "the fault was injected"
    assert exit_code(result) == 0
    assert statuses(result)[victim] == "created"
    assert member_state(sim, victim)["role"] == {"managed-by": "orgalerts", "orgalerts-shape": "one-role"}
    recover(sim)


# --- AccessDenied -----------------------------------------------------------------------------------


def test_fault__access_denied_on_assume_role__not_retried_account_failed_then_converges(sim: SimOrg) -> None:
    victim = sim.accounts["prod2"]

    def deny_assume(acct: str, service: str, operation: str, body: str, index: int) -> str | None:
        return "denied" if operation == "AssumeRole" and f"::{victim}:" in _role_arn_in(body) else None

    injector = Injector(deny_assume)
    result = deploy(engine_for(sim, send_hook=injector))

    assert exit_code(result) == 1
    assert statuses(result)[victim] == "failed"
    assert errors(result)[victim].startswith("AccessDenied: User is not authorized")
    assert sum(injector.injected.values()) == 1  # AccessDenied is never retried
    others = [a for a in sim.in_scope if a != victim]
    assert {a: statuses(result)[a] for a in others} == dict.fromkeys(others, "created")
    assert_untouched(sim, victim)
    recover(sim)


def test_fault__access_denied_on_put_rule_in_one_account__failed_with_error_then_converges(sim: SimOrg) -> None:
    victim = sim.accounts["shared"]
    attempts: list[str] = []

    def deny_put_rule(acct: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if acct == victim and operation == "PutRule":
            attempts.append(operation)
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform events:PutRule"}},
                operation,
            )

    result = deploy(engine_for(sim, call_hook=deny_put_rule))

    assert exit_code(result) == 1
    assert statuses(result)[victim] == "failed"
    assert errors(result)[victim] == "AccessDeniedException: not authorized to perform events:PutRule"
    assert attempts == ["PutRule"]
    state = member_state(sim, victim)
    assert state["role"] is not None and state["rule"] is None  # half-configured, and the next run fixes it
    others = [a for a in sim.in_scope if a != victim]
    assert {a: statuses(result)[a] for a in others} == dict.fromkeys(others, "created")
    assert to_json(result)["summary"]["failed"] == 1
    recover(sim)


# --- PutTargets partial failure ---------------------------------------------------------------------


def _put_targets_fails(account: str) -> Callable[[str, str, str, Any], AWSResponse | None]:
    def hook(acct: str, service: str, operation: str, request: Any) -> AWSResponse | None:
        if acct != account or operation != "PutTargets":
            return None
        target_id = json.loads(request.body)["Targets"][0]["Id"]
        failed = {
            "FailedEntryCount": 1,
            "FailedEntries": [
                {"TargetId": target_id, "ErrorCode": "ConcurrentModificationException", "ErrorMessage": "try again"}
            ],
        }
        body = _Body(json.dumps(failed).encode())
        return answer(
            request, AWSResponse("https://x.invalid/", 200, {"Content-Type": "application/x-amz-json-1.1"}, body)
        )

    return hook


def test_fault__put_targets_reports_failed_entry_in_one_account__failed_with_code_then_converges(sim: SimOrg) -> None:
    victim = sim.accounts["prod1"]

    result = deploy(engine_for(sim, send_hook=_put_targets_fails(victim)))

    assert exit_code(result) == 1
    assert statuses(result)[victim] == "failed"
    assert errors(result)[victim] == "ConcurrentModificationException: try again"
    assert member_state(sim, victim)["targets"] == []  # the rule exists, its target does not
    others = [a for a in sim.in_scope if a != victim]
    assert {a: statuses(result)[a] for a in others} == dict.fromkeys(others, "created")
    recover(sim)


def test_fault__put_targets_failed_entry_on_central_side__members_not_written_then_converge(sim: SimOrg) -> None:
    notification = sim.accounts["notification"]
    log = CallLog()

    def central_only(acct: str, service: str, operation: str, request: Any) -> AWSResponse | None:
        if NAMES.central_bus not in str(request.body):
            return None
        return _put_targets_fails(notification)(acct, service, operation, request)

    engine = engine_for(sim, send_hook=central_only, log=log)
    result = deploy(engine)

    assert exit_code(result) == 1
    assert result.central is not None and result.central.status == "failed"
    assert result.central.error == "ConcurrentModificationException: try again"
    for account in sim.in_scope:
        assert statuses(result)[account] == "failed"
        assert errors(result)[account] == "not attempted: the central side failed"
    members = set(sim.in_scope) - {notification}
    assert [c for c in log.writes() if c.account_id in members] == []
    recover(sim)


# --- SIGINT -----------------------------------------------------------------------------------------


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as in a terminal (whatever the test runner set)."""
    assert threading.current_thread() is threading.main_thread(), "signals reach only the main thread"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_fault__sigint_in_the_middle_of_a_member_account__exit_130_rest_untouched_next_run_converges(
    sim: SimOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, sigint_raises: None
) -> None:
    config = tmp_path / "accounts.yaml"
    config.write_text(yaml.safe_dump(sim.raw_config()))
    engines: list[Runner] = []
    interrupted: list[str] = []

    def sigint_during_put_rule(acct: str, service: str, operation: str, params: dict[str, Any]) -> None:
        # A member's PutRule, in a worker thread, after its role was created: Ctrl-C now, as a user would.
        if operation == "PutRule" and threading.current_thread() is not threading.main_thread() and not interrupted:
            interrupted.append(acct)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            # Synchronisation, not sleep: continue once the main thread has handled the interrupt.
            assert engines[0].cancel.wait(timeout=30)

    class RecordingEngine(Runner):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            engines.append(self)

    def gateway(settings: GatewaySettings) -> Gateway:
        g = Gateway(settings, pacer=Pacer(sleep=STATS.paced.append))
        g.add_hook(sigint_during_put_rule)
        return g

    monkeypatch.setattr(cli, "Runner", RecordingEngine)
    monkeypatch.setattr(cli, "Gateway", gateway)

    code = cli.main(["--config", str(config), "deploy", "--json", "--workers", "1"])

    out, err = capsys.readouterr()
    assert code == 130
    assert "interrupted; run the same command again" in err and "Traceback" not in err
    (victim,) = interrupted
    # The report tells the truth: the account in flight finished, the others were not attempted.
    partial = {a["account_id"]: a for a in json.loads(out)["accounts"]}
    assert partial[victim]["status"] == "created", json.dumps(partial[victim])
    # The account in flight when Ctrl-C came was finished, not left half-configured.
    state = member_state(sim, victim)
    assert state["policy"] == NAMES.forwarder_policy and len(state["targets"]) == 1
    # Accounts not yet started were not touched.
    not_started = [a for a in sim.in_scope if a not in (victim, sim.accounts["notification"])]
    assert not_started
    for account in not_started:
        assert_untouched(sim, account)
        assert partial[account]["status"] == "failed"
        assert partial[account]["error"] == "not attempted: the run was interrupted"

    monkeypatch.setattr(cli, "Runner", Runner)
    monkeypatch.setattr(cli, "Gateway", Gateway)
    assert cli.main(["--config", str(config), "deploy", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    by_id = {a["account_id"]: a["status"] for a in document["accounts"]}
    assert by_id[victim] == "unchanged"
    assert {by_id[a] for a in not_started} == {"created"}
    assert_converged_and_quiet(sim)


def test_fault__sigint_during_central_side__members_never_touched_next_run_converges(
    sim: SimOrg, sigint_raises: None
) -> None:
    log = CallLog()

    def sigint_during_central_put_rule(acct: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if operation == "PutRule" and params.get("EventBusName") == NAMES.central_bus:
            signal.raise_signal(signal.SIGINT)  # the central side runs in the main thread: handled right here

    engine = engine_for(sim, call_hook=sigint_during_central_put_rule, log=log)
    with pytest.raises(KeyboardInterrupt):
        deploy(engine)

    members = set(sim.in_scope) - {sim.accounts["notification"]}
    assert [c for c in log.calls if c.account_id in members] == []
    for account in sim.in_scope:
        assert_untouched(sim, account)
    recover(sim)


def test_fault__sigint_while_accounts_are_still_being_queued__none_starts_every_one_reported(
    sim: SimOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C can land in the main thread while `for_each` is still submitting accounts (even inside `submit`,
    as it starts a worker thread the pool would then not join): no account may start, and every one is
    reported as not attempted."""
    started: list[str] = []
    submitted = 0

    class InterruptedPool(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            nonlocal submitted
            future = super().submit(fn, *args, **kwargs)  # the worker thread exists and holds this account
            submitted += 1
            if submitted == 3:
                raise KeyboardInterrupt
            return future

    def unit(account: Account) -> SideResult:
        started.append(account.id)
        return SideResult(account.id, Status.CREATED)

    monkeypatch.setattr(runner_module, "ThreadPoolExecutor", InterruptedPool)
    engine = engine_for(sim)
    accounts = [Account(f"{n:012d}", f"a{n}", "ACTIVE") for n in range(1, 6)]
    with pytest.raises(Interrupted) as caught:
        engine.for_each(accounts, unit)
    assert started == []
    assert [(r.account_id, r.status, r.error) for r in caught.value.results] == [
        (a.id, Status.FAILED, INTERRUPTED) for a in accounts
    ]
