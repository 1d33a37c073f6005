"""Scale benchmark: fresh deploy, no-op re-run and drift check on simulated organizations.

    .venv/bin/python bench/run.py --out bench/latest.md               # what `make bench` runs (git-ignored)
    make bench BENCH_OUT=bench/RESULTS.md                               # update the committed results, on purpose
    .venv/bin/python bench/run.py --sizes 10,100 --profiles core       # quicker

Each size gets its own moto (in-process) organization. A Gateway hook sleeps `--latency-ms` before every
API call in the calling thread, so concurrency behaves as it would against AWS; moto's own CPU time is
measured apart (harness.simulator_cpu_meter) and subtracted from the process's CPU time. With
`--throttle`, one more no-op re-run has that share of its HTTP attempts answered with a throttling error
(botocore's real backoff, real sleeps). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import tenacity
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    PROFILES,
    Measurement,
    Meter,
    Throttler,
    build_org,
    isolate_environment,
    simulator_cpu_meter,
    simulator_speedups,
)
from report import write_results

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.sides.member import member_resources

SCENARIOS = (
    ("fresh deploy", Mode.DEPLOY, {"created"}),
    ("no-op re-run", Mode.DEPLOY, {"unchanged"}),
    ("drift check", Mode.DRIFT, {"unchanged"}),
)


def measure_size(
    profile: str, size: int, latency: float, workers: int | None, throttle: float, throttle_sizes: set[int]
) -> list[Measurement]:
    results: list[Measurement] = []
    with mock_aws(), simulator_speedups():
        started = time.perf_counter()
        org = build_org(size)
        log(f"{profile}: {size} accounts: organization built in {time.perf_counter() - started:.1f} s")
        config = org.config(profile)
        managed = len(member_resources(config, org.members[-1]))
        meter = Meter(latency)
        throttler = Throttler(throttle)
        gateway = Gateway(GatewaySettings())
        gateway.add_hook(meter.hook)
        gateway.add_send_hook(throttler)
        engine = Runner(Context(config, gateway), workers=workers, retry_wait=tenacity.wait_none())
        phases = time_phases(engine)
        scenarios = list(SCENARIOS)
        if throttle and size in throttle_sizes:
            scenarios.append((f"no-op re-run, {throttle:.0%} throttled", Mode.DEPLOY, {"unchanged"}))
        with simulator_cpu_meter(meter):
            for name, mode, expected in scenarios:
                meter.reset()
                phases.clear()
                throttler.enabled = "throttled" in name
                gc.collect()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                report = engine.converge(name, mode, orphans=False)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                throttler.enabled = False
                statuses = Counter(a.status for a in report.accounts)
                m = Measurement(
                    profile,
                    managed,
                    name,
                    size,
                    engine.workers,
                    latency,
                    wall,
                    cpu,
                    meter.sim_cpu,
                    list(meter.calls),
                    dict(statuses),
                    exit_code(report),
                    throttler.attempts if "throttled" in name else 0,
                    throttler.injected if "throttled" in name else 0,
                    dict(phases),
                    gateway.settings.organizations_rate,
                )
                results.append(m)
                unexpected = {s: n for s, n in statuses.items() if s not in expected}
                log(
                    f"{profile}: {size:>5} {name:<13} phases "
                    + " ".join(f"{k} {v:.1f}s" for k, v in m.phases.items())
                    + f"  members bound {m.members_bound:.1f}s  discovery bound {m.discovery_bound:.1f}s  "
                    f"wall {wall:6.2f} s  bound {m.lower_bound:6.2f} s  "
                    f"ratio {wall / m.lower_bound:4.2f}  calls {len(m.calls):5}  "
                    f"cpu {m.cpu_ms_per_account:5.2f} ms/acct (moto {1000 * m.sim_cpu / size:5.2f})"
                    + (f"  UNEXPECTED {unexpected}" if unexpected else "")
                )
                for failed in [a for a in report.accounts if a.status == "failed"][:3]:
                    log(f"  failed {failed.account_id}: {failed.error}")
                if report.central is not None and report.central.status == "failed":
                    log(f"  central failed: {report.central.error}")
    return results


def time_phases(engine: Runner) -> dict[str, float]:
    """Wall seconds per phase of `converge`: discovery (the Organizations listing), central (the notification
    account, the management account's sides and the previous-region look), members (the account pool)."""
    phases: dict[str, float] = {}

    def timed(name: str, method: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

        return run

    engine.scope = timed("discovery", engine.scope)  # type: ignore[method-assign]
    for method in ("run_central", "run_management", "run_elsewhere"):
        setattr(engine, method, timed("central", getattr(engine, method)))
    engine._run_members = timed("members", engine._run_members)  # type: ignore[method-assign]
    return phases


def log(line: str) -> None:
    sys.stderr.write(f"bench: {line}\n")
    sys.stderr.flush()


NOTES = """
## How it is measured

- **Organization**: `create_organization`, nested OUs (Security; Workloads > Prod > Deep; Workloads > Dev;
  an Outside OU not targeted) and `create_account` + `move_account` per account, on moto in-process.
  The in-scope count includes the notification account, which is also a member.
- **Latency**: a `Gateway.add_hook` hook sleeps the injected latency in the calling (worker) thread before
  every API call, including AssumeRole and every page of a paginated call. The sleep releases the GIL,
  so the workers overlap their waits as they would on the network.
- **Calls** are counted by the same hook: a call made by a worker thread belongs to the member account it
  acts in (AssumeRole: the account whose role is assumed); calls made by the main thread are the *serial
  phase*: the Organizations listing (scope) and the central side, which members depend on and which
  therefore cannot overlap with them. Reads/writes: `CallRecord.is_write`; AssumeRole counted apart.
- **Lower bound** = serial calls x latency + member calls x latency / workers. The serial phase is
  counted at full latency because it is serial by design (members must not be written before the
  central bus exists, and Organizations' own rate limits are low). The *all-calls bound* column is
  the issue's plain formula, calls x latency / workers, for comparison.
- **CPU**: process CPU time (`time.process_time`, all threads) minus the CPU moto spends answering
  requests, which is measured per thread (`time.thread_time`) around moto's `BotocoreStubber.__call__`,
  the `before-send` handler through which `mock_aws` answers every request. What remains is ours and
  botocore's (serialising, signing, parsing, the engine, the planner). Sleeping costs no CPU.
- **Simulator speed-up**: moto 5.2 finds the account of each request by scanning every account's access
  keys (`moto.iam.models.get_account_id_from`), O(accounts) per call: about 4 ms of CPU per call at
  1,000 accounts, all under the GIL. The benchmark memoises that lookup (harness.simulator_speedups);
  without it the simulator, not orgalerts, sets the wall time (ratio 2.8 to 5.1 at 1,000 accounts).
- **Throttled run**: a `Gateway.add_send_hook` hook answers a share of HTTP attempts with a 400
  `Throttling`/`ThrottlingException` in the service's wire format, so botocore's retry handler (12
  attempts; `adaptive` for the caller's own calls, `standard` in member accounts) sees real throttling
  and backs off with real sleeps. Only a read-only scenario is
  throttled: in-process moto still executes the request it did not get to answer, harmless for reads.

## Notes

- **Per-account calls, `core` profile** (tamper alerts and dead-letter queues off): fresh = AssumeRole +
  GetRole, DescribeRule (both absent) + 4 writes = 7 <= 8; no-op and drift = AssumeRole + GetRole (returns
  its tags), GetRolePolicy, DescribeRule, ListTagsForResource (DescribeRule returns no tags, and the
  managed-by tag is the ownership marker: 5 reads for 4 resources), ListTargetsByRule = 6 <= 6. The
  reader looks for the watchdog and the dead-letter queue only when their feature is on, or when the
  live forwarding rule shows it was on (so turning a feature off still removes what it left).
- **`default` profile, no-op and drift** (13 reads for 9 resources): the queue costs 3 reads
  (GetQueueUrl, GetQueueAttributes, ListQueueTags) and each of the 2 rules one more for its tags (the
  ownership marker). Possible cuts, not made: build the queue URL instead of GetQueueUrl (-1), one
  `ListRules(NamePrefix=...)` for both rules instead of two DescribeRule (-1).
- **`default` profile, CPU**: ~0.7 ms of orchestrator CPU per call (botocore: serialising, SigV4
  signing, parsing), times 14-15 calls, lands at 9 to 13 ms per account; fewer reads bring it under.
- **Run-to-run spread** on this shared 2-core machine is about 15%: in two runs of the same tree the
  1,000-account `core` fresh deploy measured ratio 1.23 and 1.41, CPU 7.1 and 8.9 ms per account.
- **CPU per account at 10 accounts** includes the one-time costs (botocore loading each service model and
  creating one client per service, ~10 ms each), spread over only 10 accounts; from 100 accounts on
  they vanish in the per-account figure.
- **Before the shared clients** (same tree, one botocore client per account and service, created from the
  shared session): 28 to 39 ms of orchestrator CPU per account at 100 accounts; each client cost 2-3 ms
  to create, and its first calls ~0.8 ms more each on cold model caches. Now one client per service and
  region is shared by all accounts and each call is signed with its account's credentials
  (orgalerts/aws.py); against AWS this also keeps HTTPS connections across accounts instead of a TLS
  handshake per account and service.
- **Moto CPU is not free in wall time**: moto runs in-process under the same GIL, so its CPU (about 1 ms
  per call) serialises with ours; that, not orgalerts, is most of the gap between wall time and the
  lower bound.
- **Workers**: the default went from 16 to 32 (config.py, README). At 16 the 1,000-account runs took
  35 to 41 s at 50 ms per call (ratio 1.08 to 1.17); at 32, 20 to 24 s. Only STS is a quota shared
  across accounts, and it is paced (below); every other quota is per member account.
- **STS**: AssumeRole goes through a token bucket in the gateway (100/s, burst 10: a sixth of STS's
  600/s per calling account); the budget table shows the rate the runs reached.
- **Throttling** (one-off, `bench/run.py --sizes 100 --profiles core --throttle-sizes 100`, 30% of
  attempts throttled, no-op re-run, unthrottled 5.2 s): with one shared client per service, botocore's
  `adaptive` mode everywhere took 367 s: its client-side rate, learnt from every account's throttling at
  once, sank toward its floor (0.5 requests/s). Shipped now: `adaptive` only for the caller's own calls
  (STS, Organizations, shared quotas), `standard` (backoff per call) in member accounts: 134 to 169 s,
  `standard` everywhere: 77 to 84 s (the difference: AssumeRole and the Organizations listing behind
  the adaptive caller clients). The 10-account throttled run in the table spends most of its time the
  same way: the serial phase and AssumeRole behind the caller's adaptive clients. No run failed except
  one `standard`-everywhere run with one failed account. Under *independent* random
  throttling a call fails only after every attempt was throttled: with 8 attempts p = 0.3^8 = 6.6e-5 per
  call, about one account in 1,500 per run, so the gateway now allows 12 (p = 5e-7 per call, about one
  failed call in 130 runs of 1,000 accounts).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated organization sizes (in-scope accounts)")
    parser.add_argument("--profiles", default="default", help=f"comma-separated, of: {', '.join(PROFILES)}")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="injected latency per API call")
    parser.add_argument("--workers", type=int, default=None, help="worker threads (default: orgalerts' default)")
    parser.add_argument("--throttle", type=float, default=0.3, help="share of attempts throttled in the extra run")
    parser.add_argument("--throttle-sizes", default="1000", help="sizes that get the throttled run ('' for none)")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown results here")
    args = parser.parse_args(argv)
    isolate_environment()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    throttle_sizes = {int(s) for s in args.throttle_sizes.split(",") if s.strip()}
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profiles {sorted(unknown)}")
    measurements: list[Measurement] = []
    started = time.perf_counter()
    for profile in profiles:
        for size in sizes:
            sizes_throttled = throttle_sizes if profile == profiles[0] else set()
            measurements += measure_size(
                profile, size, args.latency_ms / 1000, args.workers, args.throttle, sizes_throttled
            )
    elapsed = time.perf_counter() - started
    log(f"done in {elapsed:.0f} s")
    if args.out is not None:
        command = " ".join([sys.executable, *sys.argv]) if argv is None else " ".join(["bench/run.py", *argv])
        settings = (
            f"Injected latency {args.latency_ms:g} ms per call; {measurements[0].workers} workers "
            f"(orgalerts' default unless --workers); whole benchmark {elapsed:.0f} s"
        )
        write_results(args.out, measurements, command=command, settings=settings, notes=NOTES)
        log(f"wrote {args.out}")
    return 0 if all(m.exit_code == 0 for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
