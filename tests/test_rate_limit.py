"""The AssumeRole rate limiter: a token bucket on a fake clock (nothing sleeps), alone and in the gateway."""

from __future__ import annotations

import threading

import pytest
from conftest import CallLog, SimOrg, make_engine

from orgalerts.aws import Gateway, GatewaySettings, RateLimiter
from orgalerts.engine.results import Mode, exit_code


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
