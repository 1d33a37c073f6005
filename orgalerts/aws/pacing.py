"""Pacing and retries by quota scope: per (service, account) where AWS counts per account, shared per caller.

Owns: the request-rate model of each service orgalerts calls (`QUOTAS`, with the documentation it comes
from), the token buckets that pace calls before they are sent (`Pacer`), and the retry decision and wait that
replace botocore's (`QuotaRetry`, a `needs-retry` handler).

Why not botocore's modes: one botocore client per service serves every account (gateway.py), so botocore's
per-client state pools what AWS keeps apart. `adaptive` mode learns ONE client-side rate from every account's
throttling and sank to its floor (0.5 requests/s) for the whole run: 10 accounts took 63.9 s under 30 %
throttling against a 1.79 s bound (bench/RESULTS.md, before). `standard` mode's first retry waits up to 1 s,
the second up to 2 s, ... (botocore.retries.standard.ExponentialBackoff), and its retry quota (500 tokens,
5 per retry) is also one per client: at 1,000 accounts it runs dry and then retries nothing.

AWS meters these APIs with token buckets refilled every second: "IAM and AWS STS independently implement a
token bucket algorithm for throttling, in which a bucket of virtual tokens is refilled every second"
(https://aws.amazon.com/blogs/security/how-to-monitor-and-query-iam-resources-at-scale-part-2/). A throttled
call therefore needs to wait about one token's time (1/rate) for a token, longer only while throttling goes on
(someone else drains the same bucket): the wait here is a full-jitter draw below 1/rate, the ceiling doubling per
consecutive throttle of that call, capped; other retryable errors (5xx, transport) keep botocore's exponential
backoff. Every wait goes through an injectable `sleep` (tests never sleep).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.retries import standard

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Quota:
    """How AWS meters one service's calls: `rate` requests/s paced (None: not paced), `per_account`: one bucket
    per account the calls act in (the quota is the member account's) or one shared by the run (the caller's)."""

    rate: float | None
    per_account: bool
    source: str


# Organizations' request rate is MODELLED, not documented: AWS publishes no request rate for any Organizations API
# (its quotas page lists entity counts only; TooManyRequestsException says only "You have sent too many requests
# in too short a period of time. The quota helps protect against denial-of-service attacks",
# https://docs.aws.amazon.com/botocore/latest/reference/services/organizations/client/exceptions/TooManyRequestsException.html).
# 10 requests/s for the run, shared by every listing; the benchmark's discovery is measured against this figure.
ORGANIZATIONS_MODELLED_RATE = 10.0

# The rate each bucket paces at, below what AWS documents where it documents a figure.
QUOTAS: dict[str, Quota] = {
    # "AWS STS has a default request quota of 600 requests per second per account per Region" (the CALLER's
    # account: every AssumeRole of the run counts there, with whatever else runs in it): paced at a sixth.
    "sts": Quota(100.0, False, "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"),
    # Organizations: quotas "apply at the organization level"; its listing calls come from the management
    # account (or delegated admin) and share one bucket. AWS publishes no request rate for them (awsdocs
    # aws-organizations-docs issue #39: "I can't find any documentation about the throttling limit for any
    # Organizations APIs"; the quotas page lists entity counts), and TooManyRequestsException is reported with a
    # few concurrent callers: MODELLED at 10 requests/s, the rate the benchmark's discovery is measured against.
    "organizations": Quota(
        ORGANIZATIONS_MODELLED_RATE,
        False,
        "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html",
    ),
    # IAM: per account (the blog above: buckets per account and API; IAM publishes no figures). orgalerts makes
    # about 3 IAM calls per account and run: paced at 20/s per account so a retry storm in one account stays there.
    "iam": Quota(
        20.0, True, "https://aws.amazon.com/blogs/security/how-to-monitor-and-query-iam-resources-at-scale-part-2/"
    ),
    # EventBridge control plane (rules, targets, tags): per account and Region; the quotas page lists per-API
    # throttles only for some APIs (PutEvents, CreateEndpoint, ...). Paced at 20/s per account.
    "events": Quota(20.0, True, "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html"),
    # SQS: "Standard queues support a nearly unlimited number of API calls per second, per API action"
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html): not paced.
    "sqs": Quota(
        None, True, "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html"
    ),
}
# A throttled call waits at most this long between attempts (botocore's own cap is 20 s).
MAX_THROTTLE_WAIT = 5.0
# Unpaced services (or unknown ones) that throttle: assume this rate for the wait.
DEFAULT_RATE = 10.0


class RateLimiter:
    """A thread-safe token bucket: at most `rate` acquisitions per second, after a burst of `burst`.

    A caller reserves its token under the lock (the count may go below zero: a queue of reservations)
    and sleeps outside it, so waiting callers are served in order and the lock is never held while
    sleeping. `clock` and `sleep` are injectable: tests never sleep.
    """

    def __init__(
        self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting if needed; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class Pacer:
    """One token bucket per quota scope: (service, account, region) for per-account quotas (AWS counts them per
    account and Region; IAM is global: one region), (service,) for shared ones."""

    def __init__(
        self,
        quotas: dict[str, Quota] | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.quotas = dict(QUOTAS if quotas is None else quotas)
        self.clock, self.sleep, self.random = clock, sleep, rng
        self._buckets: dict[tuple[str, str, str], RateLimiter] = {}
        self._lock = threading.Lock()

    def bucket(self, service: str, account_id: str, region: str = "") -> RateLimiter | None:
        quota = self.quotas.get(service)
        if quota is None or quota.rate is None:
            return None
        key = (service, account_id, region) if quota.per_account else (service, "", "")
        limiter = self._buckets.get(key)
        if limiter is None:
            with self._lock:
                # Burst: one second of tokens, as the quota's own bucket holds ("refilled every second").
                limiter = self._buckets.setdefault(
                    key, RateLimiter(quota.rate, quota.rate, clock=self.clock, sleep=self.sleep)
                )
        return limiter

    def acquire(self, service: str, account_id: str, region: str = "") -> float:
        limiter = self.bucket(service, account_id, region)
        return limiter.acquire() if limiter is not None else 0.0

    def throttle_wait(self, service: str, throttles: int) -> float:
        """The wait after the `throttles`-th failed attempt of one call: "full jitter", a uniform draw below a
        ceiling of one token's time that doubles while throttling goes on, capped.

        Full jitter is what the AWS SDKs do (botocore's standard mode: `rand(0, 1) * min(base * 2 ** i, 20 s)`,
        botocore.retries.standard.ExponentialBackoff; the JavaScript SDK: "exponential backoff with full jitter",
        https://docs.aws.amazon.com/sdk-for-javascript/v2/developer-guide/retry-strategy.html). Here the base is one
        token of the quota's bucket rather than botocore's 1 s: every attempt takes a token of the pacer anyway
        (`Gateway._before_send_handler`), so a retry never goes faster than the modelled rate. The earlier draw,
        0.5-1.5 times the ceiling, averaged twice as long, and a call throttled several times in a row held its
        account up to seconds (bench/RESULTS.md, the throttled run)."""
        quota = self.quotas.get(service)
        rate = quota.rate if quota is not None and quota.rate else DEFAULT_RATE
        return float(self.random() * min(MAX_THROTTLE_WAIT, 2.0 ** (throttles - 1) / rate))


class QuotaRetry:
    """botocore `needs-retry` handler for one client, replacing botocore's standard one: the same decision
    (StandardRetryConditions: throttling, transient and 5xx errors, connection errors, `max_attempts`), no
    client-wide retry quota, and the wait by quota scope (`Pacer.throttle_wait`) or botocore's exponential
    backoff for the rest; the wait is slept here through the injectable sleep, and 0 returned to botocore."""

    def __init__(self, service: str, pacer: Pacer, max_attempts: int, account: Callable[[], str]) -> None:
        self._service = service
        self._pacer = pacer
        self._account = account
        self._adapter = standard.RetryEventAdapter()
        self._conditions = standard.StandardRetryConditions(max_attempts=max_attempts)
        self._throttling = standard.ThrottlingErrorDetector(self._adapter)
        self._backoff = standard.ExponentialBackoff(random=pacer.random)
        self.waited: list[tuple[str, str, float]] = []  # (account, kind, seconds): observable by tests and bench

    def __call__(self, **kwargs: Any) -> float | None:
        response = kwargs.get("response")
        if kwargs.get("caught_exception") is None and response is not None and response[0].status_code < 400:
            # A success (almost every call): nothing to decide, and no retry metadata worth building (RetryAttempts
            # 0). Status >= 400 and transport errors go through botocore's conditions below.
            return None
        context = self._adapter.create_retry_context(**kwargs)
        if not self._conditions.is_retryable(context):
            self._adapter.adapt_retry_response_from_context(context)
            return None
        account = self._account()
        if self._throttling.is_throttling_error_from_context(context):
            # attempt_number: this call's attempts so far (1-based); the wait doubles with each failed one.
            wait, kind = self._pacer.throttle_wait(self._service, context.attempt_number), "throttled"
        else:
            wait, kind = float(self._backoff.delay_amount(context)), "transient"
        self.waited.append((account, kind, wait))
        self._pacer.sleep(wait)
        self._adapter.adapt_retry_response_from_context(context)
        return 0.0
