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
    ReadCache,
    Throttler,
    build_org,
    isolate_environment,
    simulator_cpu_meter,
    simulator_speedups,
    unpaced_gateway,
    wake_penalty,
)
from report import write_results

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.config import Config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.model.scope import Scope
from orgalerts.sides.member import member_resources

SCENARIOS = (
    ("fresh deploy", Mode.DEPLOY, {"created"}),
    ("no-op re-run", Mode.DEPLOY, {"unchanged"}),
    ("drift check", Mode.DRIFT, {"unchanged"}),
)
# The same no-op re-run with nothing that waits: no injected latency, pacing that takes its tokens but never sleeps
# (`unpaced_engine`). Its wall means nothing; its CPU is the work alone, plus making its own gateway's clients
# once, as a command run from the shell does. On this machine a thread that wakes from a wait runs the same code
# slower (cold caches: `wake_penalty`), and the 50 ms runs above wait before every call.
NO_WAITS = "no-op re-run, no waits"


def measure_size(
    profile: str, size: int, latency: float, workers: int | None, throttle: float, throttle_sizes: set[int]
) -> list[Measurement]:
    results: list[Measurement] = []
    with mock_aws(), simulator_speedups() as cache:
        started = time.perf_counter()
        org = build_org(size)
        log(f"{profile}: {size} accounts: organization built in {time.perf_counter() - started:.1f} s")
        # The simulated organization is the simulator's heap, not the orchestrator's: out of the collector's sight
        # (its full collections would scan every moto object of every account, billed to whichever thread
        # triggered them). Again before each scenario, for what the previous one made.
        gc.collect()
        gc.freeze()
        config = org.config(profile)
        managed = len(member_resources(config, org.members[-1]))
        meter = Meter(latency)
        throttler = Throttler(throttle)
        gateway = Gateway(GatewaySettings())
        gateway.add_hook(meter.hook)
        gateway.add_send_hook(throttler)
        engine = Runner(Context(config, gateway), workers=workers, retry_wait=tenacity.wait_none())
        unpaced = unpaced_engine(config, meter, workers)
        phase_cpu: dict[str, float] = {}
        phases = time_phases(engine, meter, phase_cpu)
        time_phases(unpaced, meter, phase_cpu, phases)
        scopes: list[Scope] = []
        discover = engine.scope
        engine.scope = lambda: scopes.append(discover()) or scopes[-1]  # type: ignore[method-assign]
        scenarios = list(SCENARIOS)
        if throttle and size in throttle_sizes:
            scenarios.append((f"no-op re-run, {throttle:.0%} throttled", Mode.DEPLOY, {"unchanged"}))
        scenarios.append((NO_WAITS, Mode.DEPLOY, {"unchanged"}))
        with simulator_cpu_meter(meter):
            for name, mode, expected in scenarios:
                meter.reset()
                phases.clear()
                phase_cpu.clear()
                throttler.enabled = "throttled" in name
                meter.latency = 0.0 if name == NO_WAITS else latency
                runner = unpaced if name == NO_WAITS else engine
                gc.collect()
                gc.freeze()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                report = runner.converge(name, mode, orphans=False)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                throttler.enabled = False
                statuses = Counter(a.status for a in report.accounts)
                m = Measurement(
                    profile,
                    managed,
                    name,
                    size,
                    runner.workers,
                    meter.latency,
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
                    gateway.settings.assume_role_rate,
                )
                results.append(m)
                unexpected = {s: n for s, n in statuses.items() if s not in expected}
                log(
                    f"{profile}: {size:>5} {name:<13} phases "
                    + " ".join(f"{k} {v:.1f}s" for k, v in m.phases.items())
                    + f"  members bound {m.members_bound:.1f}s  discovery bound {m.discovery_bound:.1f}s  "
                    f"wall {wall:6.2f} s  bound {m.lower_bound:6.2f} s  "
                    f"ratio {wall / m.lower_bound if m.lower_bound else 0:4.2f}  calls {len(m.calls):5}  "
                    f"cpu {m.cpu_ms_per_account:5.2f} ms/acct (moto {1000 * m.sim_cpu / size:5.2f}; members phase "
                    f"{1000 * phase_cpu.get('members', 0.0) / size:5.2f})"
                    + (f"  UNEXPECTED {unexpected}" if unexpected else "")
                )
                for failed in [a for a in report.accounts if a.status == "failed"][:3]:
                    log(f"  failed {failed.account_id}: {failed.error}")
                if report.central is not None and report.central.status == "failed":
                    log(f"  central failed: {report.central.error}")
                if mode is Mode.DEPLOY and "fresh" in name:
                    warm_up(engine, scopes[-1], cache)
    return results


def unpaced_engine(config: Config, meter: Meter, workers: int | None) -> Runner:
    """The `NO_WAITS` scenario's runner: its own `harness.unpaced_gateway`, where nothing waits."""
    return Runner(Context(config, unpaced_gateway(meter)), workers=workers, retry_wait=tenacity.wait_none())


def warm_up(engine: Runner, scope: Scope, cache: ReadCache) -> None:
    """An unmeasured drift check of every account after the writes, so the simulator's read cache holds each
    account's answers (harness.ReadCache): the measured read-only runs then time the orchestrator and the injected
    latency, not moto. The discovery of the run before is reused (its answers do not change)."""
    started, misses = time.perf_counter(), cache.misses
    engine.converge("warm-up", Mode.DRIFT, scope=scope)
    log(f"  simulator warm-up: {cache.misses - misses} reads cached in {time.perf_counter() - started:.1f} s")


def time_phases(
    engine: Runner, meter: Meter, cpu: dict[str, float], phases: dict[str, float] | None = None
) -> dict[str, float]:
    """Wall seconds per phase of `converge`: discovery (the Organizations listing), central (the notification
    account, the management account's sides and the previous-region look), members (the account pool). `cpu`
    gets each phase's orchestrator CPU seconds (the process's, less the simulator's: `meter.sim_cpu`)."""
    phases = {} if phases is None else phases

    def timed(name: str, method: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started, cpu0, sim0 = time.perf_counter(), time.process_time(), meter.sim_cpu
            try:
                return method(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
                spent = time.process_time() - cpu0 - (meter.sim_cpu - sim0)
                cpu[name] = cpu.get(name, 0.0) + spent

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

- **Organization**: `create_organization`, the notification account in Security, every other in-scope account
  in a tree under Workloads: 20 accounts per OU, each OU up to 5 child OUs, filled level by level (500 OUs, 5
  levels for 10,000 accounts), plus 2 accounts in an Outside OU not targeted; moto in-process.
- **Latency**: a `Gateway.add_hook` hook sleeps the injected latency in the calling thread before every API
  call (AssumeRole and every page included). The sleep releases the GIL, so workers overlap as on the network.
- **Pacing is real**: the gateway's token buckets (orgalerts/aws/pacing.py) pace with real sleeps: Organizations
  at its modelled 10 requests/s (AWS publishes no figure: `pacing.QUOTAS`), AssumeRole at 100/s, IAM and
  EventBridge at 20/s per account and region. Throttle waits are real sleeps too.
- **Phases**: wall time of the runner's discovery (`scope`: the Organizations listing, OUs listed 8 at a time,
  `engine/scope.py`), central (the notification account's side, the management account's sides, the look for a
  previous `region`'s central side in every region of the partition) and members (the account pool). Discovery
  is shown against its own bound: its Organizations calls / the modelled rate. Members against theirs: member
  calls x latency / workers (each account's calls are one serial chain), or accounts / the AssumeRole rate if
  that were longer.
- **Calls** are counted by the same hook; a worker thread's call belongs to the member account it acts in
  (AssumeRole: the account whose role is assumed); other threads' calls (discovery, central) are the serial phases.
- **CPU**: process CPU time minus the CPU moto spends answering (measured per thread around moto's
  `BotocoreStubber.__call__`). What remains is ours and botocore's (serialising, signing, parsing, hooks). Not
  counted, as no request goes over a socket: the HTTP client's and TLS's share, which against AWS is extra.
  Sleeping costs no CPU.
- **The simulator, kept out of the measurement** (harness.simulator_speedups): moto runs in the orchestrator's
  process and its CPU holds the same GIL, so every millisecond moto spends is one no worker runs. (1) moto's account
  lookup per request (O(accounts)) is memoised, and the account of each key AssumeRole mints is learnt from the
  AssumeRole call itself (else each member's first call scanned every account: ~60 ms of moto CPU per account at
  10,000); (2) its per-request `inspect.getmembers` is memoised, its look-up of an account's backend no longer
  copies every account id, and three per-request chores are made cheap (`harness.request_chores`: request ids, error
  tables, action names); (3) the simulated organization is frozen out of the garbage collector's sight (`gc.freeze`)
  before each scenario; (4) reads are replayed from an exact cache (`harness.ReadCache`: keyed on account, URL,
  operation and body; every write in an account drops that account's entries; STS never replayed). The fresh deploy
  fills nothing useful (its reads come before its writes), so an unmeasured drift check of every account follows it
  (`simulator warm-up`); the measured no-op, drift and throttled runs then pay moto only for AssumeRole and the
  Organizations listing. The fresh deploy's writes are all moto's to compute: its members phase is the simulator's,
  not the orchestrator's (see moto CPU ms/acct).
- **No waits** (`no-op re-run, no waits`): the same no-op re-run with no injected latency and pacing that takes
  every token but never sleeps (`unpaced_engine`): its CPU per account is the work alone. The machine's own
  wake-up penalty (a fixed piece of Python work right after a 50 ms wait vs back to back, `harness.wake_penalty`)
  is printed with the settings: the 50 ms runs wait before every call.
- **Throttled run**: a send hook answers 30 % of HTTP attempts with a 400 `Throttling`/`ThrottlingException`/
  `TooManyRequestsException` in the service's wire format, before moto sees them; the gateway's retry (QuotaRetry)
  sees real throttling and waits by quota scope. Every attempt, a throttled one too, takes a token of its bucket
  (as AWS counts it), so a rate-bound phase (discovery) needs 1/0.7 = 1.43x the tokens.

## Notes

- **Per-account calls** (shipped profile): no-op and drift 7 = AssumeRole + GetRole, GetRolePolicy (the one
  role), ListRules (both rules, the ownership marker in the Description), 2 ListTargetsByRule, GetQueueAttributes
  (built URL, marker in the policy Id). Fresh 13 = AssumeRole + GetRole x2 (the one role, and the earlier
  versions' second role: absent), ListRules, GetQueueAttributes, GetQueueUrl (absent: the built URL's fallback)
  + 7 writes; CreateRole tags the role `orgalerts-shape=one-role`, the record that no second role was left, so
  later runs skip that look (sides/member.py; 8 calls for a role made without the record). The same counts are
  asserted from outside, at a moto server, by tests/test_calls_outside.py. Before (two roles, DescribeRule +
  ListTagsForResource per rule, GetQueueUrl + ListQueueTags): 14 and 15; then 8 and 13 until this record.
- **Throttling before**: botocore `adaptive` for the caller's clients and `standard` for members, each one
  client for every account: 10 accounts took 63.9 s under 30 % throttling against a 1.79 s bound; its
  client-side rate, learnt from all accounts at once, sank to its floor (0.5 requests/s).
- **Run-to-run spread** on this shared 2-core machine (other jobs running) is 15 % or more on wall and CPU.
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
    penalty = wake_penalty()
    log(f"this machine: a fixed piece of work costs {penalty:.2f}x the CPU right after a 50 ms wait")
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
            f"(orgalerts' default unless --workers); whole benchmark {elapsed:.0f} s\n"
            f"- Wake-up penalty of this machine: a fixed piece of Python work costs {penalty:.2f}x the thread CPU "
            "right after a 50 ms wait than back to back (`harness.wake_penalty`); the 50 ms runs wait before every call"
        )
        write_results(args.out, measurements, command=command, settings=settings, notes=NOTES)
        log(f"wrote {args.out}")
    return 0 if all(m.exit_code == 0 for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
