"""The AssumeRole rate limiter: a token bucket on a fake clock (nothing sleeps), alone and in the gateway."""

from __future__ import annotations

import threading

import pytest
from conftest import CallLog, SimOrg, make_engine

from orgalerts.aws import Gateway, GatewaySettings, Pacer, RateLimiter
from orgalerts.aws.pacing import MAX_THROTTLE_WAIT
from orgalerts.engine.results import Mode, exit_code
from orgalerts.sandbox import SandboxServer
from orgalerts.sandbox.server import reset_moto


class FakeTime:
    """A clock that moves only when someone 'sleeps' (or the test advances it)."""

    def __init__(self, advance_on_sleep: bool = True) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.advance_on_sleep = advance_on_sleep
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            if self.advance_on_sleep:
                self.now += seconds


def test_rate_limiter__burst_then_steady_rate__never_faster_than_rate_plus_burst() -> None:
    fake = FakeTime()
    limiter = RateLimiter(100.0, burst=10, clock=fake.clock, sleep=fake.sleep)
    start = fake.now

    waits = [limiter.acquire() for _ in range(1000)]

    assert waits[:10] == [0.0] * 10  # the burst goes at once
    assert all(w == pytest.approx(0.01) for w in waits[10:])  # then one every 1/rate seconds
    assert fake.now - start == pytest.approx((1000 - 10) / 100)


def test_rate_limiter__idle_time_refills_the_bucket_up_to_the_burst_only() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10.0, burst=5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        limiter.acquire()
    fake.now += 3600  # an hour idle earns 5 tokens, not 36,000

    waits = [limiter.acquire() for _ in range(6)]

    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.1)


def test_rate_limiter__concurrent_callers__each_reserves_its_own_slot() -> None:
    # Clock frozen: every caller past the burst must wait one slot longer than the one before it, whatever
    # the interleaving. A lost update (two callers taking the same token) would show as a repeated wait.
    fake = FakeTime(advance_on_sleep=False)
    limiter = RateLimiter(50.0, burst=4, clock=fake.clock, sleep=fake.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([0.0] * 4 + [k / 50 for k in range(1, 200 - 4 + 1)])
    assert len(fake.slept) == 200 - 4


def test_rate_limiter__default_rate_is_well_under_the_sts_quota() -> None:
    limiter = Gateway(GatewaySettings()).assume_role_limiter
    assert limiter.rate <= 100 < 600
    assert limiter.burst <= limiter.rate


def test_throttle_wait__full_jitter_below_one_token__ceiling_doubles_per_throttle__capped() -> None:
    draws = iter([0.5, 0.5, 0.5, 0.999999, 0.0])
    pacer = Pacer(rng=lambda: next(draws))
    # IAM is paced at 20/s per account: one token is 50 ms; the draw is uniform below the ceiling.
    assert pacer.throttle_wait("iam", 1) == pytest.approx(0.5 * 0.05)
    assert pacer.throttle_wait("iam", 2) == pytest.approx(0.5 * 0.10)
    assert pacer.throttle_wait("iam", 3) == pytest.approx(0.5 * 0.20)
    assert pacer.throttle_wait("iam", 30) == pytest.approx(MAX_THROTTLE_WAIT, rel=1e-5)  # capped, not 2**29 tokens
    assert pacer.throttle_wait("sqs", 1) == 0.0  # full jitter may retry at once (the pacer still takes a token)


def test_rate_limiter__rejects_a_rate_of_zero() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_gateway__every_assume_role_takes_a_token__run_paced_not_failed(sim_org: SimOrg, call_log: CallLog) -> None:
    fake = FakeTime()
    limiter = RateLimiter(2.0, burst=1, clock=fake.clock, sleep=fake.sleep)  # absurdly low: every call waits
    gateway = Gateway(GatewaySettings(max_attempts=3), assume_role_limiter=limiter)

    result = make_engine(sim_org.config(), call_log, gateway=gateway, workers=4).converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 0
    assumed = [c for c in call_log.calls if c.operation == "AssumeRole"]
    assert len(assumed) == len(sim_org.in_scope) + 1  # every member and the central side
    assert len(fake.slept) == len(assumed) - 1  # all but the burst's one token waited
    assert sum(fake.slept) == pytest.approx((len(assumed) - 1) / 2.0)


class _WaitingOrgs:
    """An Organizations client whose two OUs' account listings each hold their caller until the other OU's listing
    has started: what a throttle wait does to a walk that lists one OU after the other. Listed concurrently, both
    go on at once; listed one after the other, the first gives up after 10 s and says so (`met` False)."""

    def __init__(self, first: str, second: str) -> None:
        self.started = {first: threading.Event(), second: threading.Event()}
        self.met: dict[str, bool] = {}
        self.children = {"ou-root-top": [first, second], first: [], second: []}
        self.account = {first: "111111111111", second: "222222222222"}

    def get_paginator(self, operation: str) -> _WaitingOrgs._Paginator:
        return _WaitingOrgs._Paginator(self, operation)

    class _Paginator:
        def __init__(self, orgs: _WaitingOrgs, operation: str) -> None:
            self.orgs, self.operation = orgs, operation

        def paginate(self, ParentId: str) -> list[dict[str, list[dict[str, str]]]]:
            orgs = self.orgs
            if self.operation == "list_organizational_units_for_parent":
                return [{"OrganizationalUnits": [{"Id": child} for child in orgs.children[ParentId]]}]
            if ParentId in orgs.started:
                orgs.started[ParentId].set()
                other = next(ou for ou in orgs.started if ou != ParentId)
                orgs.met[ParentId] = orgs.started[other].wait(timeout=10)  # a synchronisation, not a sleep
            number = orgs.account.get(ParentId)
            return [{"Accounts": [{"Id": number, "Name": number}] if number else []}]


def test_discovery__one_ou_held_by_a_throttle_wait__the_other_ous_are_listed_meanwhile() -> None:
    from orgalerts.engine.scope import _accounts_under

    first, second = "ou-root-aaaaaaaa", "ou-root-bbbbbbbb"
    orgs = _WaitingOrgs(first, second)
    ou_ids: list[str] = []

    accounts = _accounts_under(orgs, "ou-root-top", ou_ids)

    assert orgs.met == {first: True, second: True}  # each OU was listed while the other one waited
    assert {a.id: a.parent_id for a in accounts} == {"111111111111": first, "222222222222": second}
    assert sorted(ou_ids) == sorted(["ou-root-top", first, second])


def test_central_read__one_rule_s_targets_held__the_other_rules_are_read_meanwhile_same_result_in_order(
    sim_org: SimOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The central bus's rules' targets are read several at a time (a throttle wait on one no longer holds up the
    rest), and the result is the serial read's, in ListRules' order."""
    from orgalerts.sides import central
    from orgalerts.sides.central import CENTRAL, read_central

    config = sim_org.config()
    assert exit_code(make_engine(config).converge("deploy", Mode.DEPLOY)) == 0
    ctx = make_engine(config).ctx
    clients = ctx.clients(CENTRAL, ctx.access(CENTRAL.where, config.notification.account_id))

    monkeypatch.setattr(central, "RULE_READS", 1)
    serial = read_central(clients, config)
    monkeypatch.setattr(central, "RULE_READS", 8)
    lock, seen, met, other_started = threading.Lock(), [], {}, threading.Event()

    def hold_the_first(account: str, service: str, operation: str, params: dict[str, object]) -> None:
        if operation != "ListTargetsByRule":
            return
        with lock:
            seen.append(threading.current_thread().name)
            first = len(seen) == 1
        if first:
            met["others read meanwhile"] = other_started.wait(timeout=10)  # a synchronisation, not a sleep
        else:
            other_started.set()

    ctx.gateway.add_hook(hold_the_first)
    concurrent = read_central(clients, config)

    assert met == {"others read meanwhile": True}
    assert len(set(seen)) > 1 and len(seen) >= 30  # about forty rules, read by more than one thread
    assert [(r.kind, r.key, r.props, r.managed) for r in concurrent] == [
        (r.kind, r.key, r.props, r.managed) for r in serial
    ]


def record_pacing(pacer: Pacer) -> list[str]:
    """The services whose calls `pacer` is asked to pace, from now on (the pacing itself unchanged)."""
    paced: list[str] = []
    acquire = pacer.acquire

    def recorded(service: str, account_id: str, region: str = "") -> float:
        paced.append(service)
        return acquire(service, account_id, region)

    pacer.acquire = recorded  # type: ignore[method-assign]
    return paced


def test_gateway__simulator_named_by_aws_endpoint_url__not_paced__a_given_pacer_still_paces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI builds its gateway with no endpoint in its settings; a user pointing it at the sandbox (or moto,
    LocalStack) by exporting AWS_ENDPOINT_URL gets the endpoint through botocore. Those calls are not paced
    either: each client is judged by the endpoint it was given."""
    reset_moto()
    try:
        with SandboxServer() as server:
            monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
            for given, expected in ((None, set()), (Pacer(sleep=lambda _seconds: None), {"events", "iam"})):
                gateway = Gateway(GatewaySettings(), pacer=given)
                paced = record_pacing(gateway.pacer)
                base = gateway.base()
                base.client("events", "eu-west-1").list_rules()
                base.client("iam", "us-east-1").list_roles()
                assert base.client("events", "eu-west-1").meta.endpoint_url == server.endpoint_url
                assert set(paced) == expected, given
    finally:
        reset_moto()
