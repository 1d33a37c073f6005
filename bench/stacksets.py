"""Benchmark: `deploy` with the direct engine vs the StackSets engine, at 10, 100 and 1,000 accounts.

Not part of the test suite; `make bench-stacksets` runs it and writes bench/stacksets-latest.md (the committed
bench/STACKSETS.md was written the same way, with the command it names).

What is measured, on in-process moto with the sandbox's StackSets emulation (orgalerts.sandbox.stacksets):
- each engine's real wall time and orchestrator API calls for a first deploy, a second (no-change) deploy, and
  covering one new account, with `--latency` seconds added to every API call orgalerts makes (a sleep in the
  gateway's call hook; calls in parallel threads overlap as they would against AWS);
- StackSets' own work, which runs inside AWS and not in orgalerts, on a modelled clock: every operation takes
  ceil(accounts / concurrency) * `--stack-seconds` (the time CloudFormation needs for one member stack), with
  the concurrency AWS documents: MaxConcurrentCount 1 by default, min(MaxConcurrentCount, FailureToleranceCount
  + 1) under STRICT_FAILURE_TOLERANCE, MaxConcurrentCount under SOFT_FAILURE_TOLERANCE, and "the actual number of
  accounts acted upon concurrently may be lower due to service throttling"
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html),
  modelled as `--service-concurrency`; one operation at a time per StackSet. The engine's waits advance that clock.
The StackSets total is the measured wall time plus the modelled operation time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")

import boto3  # noqa: E402
import tenacity  # noqa: E402
from moto import mock_aws  # noqa: E402

from orgalerts.aws import Gateway, GatewaySettings  # noqa: E402
from orgalerts.config import Config, validate_config  # noqa: E402
from orgalerts.engine.context import Context  # noqa: E402
from orgalerts.engine.results import Mode, RunReport, Status  # noqa: E402
from orgalerts.engine.runner import Runner  # noqa: E402
from orgalerts.engine.stacksets import Commands  # noqa: E402
from orgalerts.sandbox import stacksets as emulation  # noqa: E402
from orgalerts.sandbox.fidelity import apply_aws_semantics  # noqa: E402

SIZES = (10, 100, 1000)
NOTES = """
Notes. The wall times are measured on in-process moto on a shared 2-core machine: they include the simulator's
own CPU time, which on AWS is not the caller's, so direct mode's times at 1,000 accounts are pessimistic
(bench/RESULTS.md separates the simulator's CPU). The StackSets column's big term is modelled, not measured: AWS
documents no per-stack time, and 60 s per member stack and 100 accounts at once are assumptions to be replaced by
your own `--stack-seconds` / `--service-concurrency`. With AWS's default preferences (one account at a time) the
first StackSets deploy of 1,000 accounts would take 1,000 x 60 s, about 17 hours: orgalerts always sets
`MaxConcurrentPercentage: 100`. \"new account covered\": direct mode needs a run (`onboard`, timed here) or waits for
the next scheduled one; with StackSets nobody runs anything, and the account is covered one stack's time after it
joins its OU.
"""


class ModelClock:
    """The modelled clock of StackSets' work: moves only when the engine waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Org:
    root: str
    ous: dict[str, str]
    notification: str

    def config(self, engine: str) -> Config:
        raw = {
            "region": "us-east-1",
            "organization": {"ous": [self.ous["Security"], self.ous["Workloads"]]},
            "member_role": {"name": "OrganizationAccountAccessRole"},
            "notification": {"account_id": self.notification, "emails": ["secops@example.com"]},
            "alerts": {"pattern": "iam-changes"},
            "deploy": {"engine": engine},
        }
        return validate_config(raw, f"bench-{engine}.yaml")


def build_org(size: int) -> Org:
    """`size` in-scope accounts: the notification account in Security, the rest spread over Workloads and two
    nested OUs below it."""
    orgs = boto3.client("organizations", region_name="us-east-1")
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    ous: dict[str, str] = {}
    for name, parent in (("Security", root), ("Workloads", root), ("Prod", "Workloads"), ("Deep", "Prod")):
        ous[name] = orgs.create_organizational_unit(ParentId=ous.get(parent, root), Name=name)["OrganizationalUnit"][
            "Id"
        ]
    notification = ""
    for index in range(size):
        where = "Security" if index == 0 else ("Workloads", "Prod", "Deep")[index % 3]
        status = orgs.create_account(AccountName=f"a{index}", Email=f"a{index}@example.com")["CreateAccountStatus"]
        orgs.move_account(AccountId=status["AccountId"], SourceParentId=root, DestinationParentId=ous[where])
        notification = notification or str(status["AccountId"])
    return Org(root, ous, notification)


@dataclass
class Run:
    wall: float
    modelled: float
    calls: int
    failed: int

    @property
    def total(self) -> float:
        return self.wall + self.modelled


def _runner(config: Config, latency: float, clock: ModelClock, counter: list[int]) -> Runner:
    gateway = Gateway(GatewaySettings(max_attempts=3))

    def hook(*_: Any) -> None:
        counter[0] += 1
        if latency:
            time.sleep(latency)

    gateway.add_hook(hook)
    return Runner(Context(config, gateway), retry_wait=tenacity.wait_none(), sleep=clock.sleep, workers=32)


def _measure(engine: str, org: Org, latency: float) -> Run:
    clock_before = MODEL.now
    counter = [0]
    runner = _runner(org.config(engine), latency, MODEL, counter)
    start = time.perf_counter()
    report: RunReport
    if engine == "direct":
        report = runner.converge("deploy", Mode.DEPLOY)
    else:
        report = Commands(runner, poll_seconds=15.0).converge("deploy", Mode.DEPLOY)
    wall = time.perf_counter() - start
    failed = sum(1 for s in report.sides() if s.status == Status.FAILED)
    return Run(wall, MODEL.now - clock_before, counter[0], failed)


def _new_account(engine: str, org: Org, latency: float) -> Run:
    """One account joins a nested target OU: StackSets deploys to it by itself (an automatic deployment, one
    account: one stack's time); the direct engine needs `onboard` (or the next scheduled run)."""
    orgs = boto3.client("organizations", region_name="us-east-1")
    before = MODEL.now
    status = orgs.create_account(AccountName="late", Email="late@example.com")["CreateAccountStatus"]
    start = time.perf_counter()
    orgs.move_account(AccountId=status["AccountId"], SourceParentId=org.root, DestinationParentId=org.ous["Deep"])
    if engine == "stacksets":
        wall = time.perf_counter() - start
        return Run(wall, SETTINGS_STACK_SECONDS, 0, 0)
    counter = [0]
    runner = _runner(org.config(engine), latency, MODEL, counter)
    report = runner.converge("onboard", Mode.DEPLOY, only=[str(status["AccountId"])])
    wall = time.perf_counter() - start
    return Run(wall, MODEL.now - before, counter[0], sum(1 for s in report.sides() if s.status == Status.FAILED))


MODEL = ModelClock()
SETTINGS_STACK_SECONDS = 60.0


@contextmanager
def _organization(size: int) -> Iterator[Org]:
    with mock_aws():
        yield build_org(size)


def bench_size(size: int, latency: float, stack_seconds: float, service_concurrency: int) -> dict[str, Run]:
    emulation.configure(
        emulation.StackSetSettings(
            clock=MODEL, seconds_per_account=stack_seconds, pending_reads=1, max_concurrency=service_concurrency
        )
    )
    results: dict[str, Run] = {}
    for engine in ("direct", "stacksets"):
        with _organization(size) as org:
            results[f"{engine} first"] = _measure(engine, org, latency)
            results[f"{engine} again"] = _measure(engine, org, latency)
            results[f"{engine} new account"] = _new_account(engine, org, latency)
        log(
            f"{size} accounts, {engine}: "
            + ", ".join(f"{k.split(' ', 1)[1]} {v.total:.1f} s" for k, v in results.items() if k.startswith(engine))
        )
    return results


def log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def report(rows: dict[int, dict[str, Run]], args: argparse.Namespace) -> str:
    lines = [
        "# direct or stacksets: time to deploy (measured + modelled)",
        "",
        f"Command: `python bench/stacksets.py --sizes {' '.join(map(str, args.sizes))} --latency {args.latency} "
        f"--stack-seconds {args.stack_seconds} --service-concurrency {args.service_concurrency}`",
        "",
        f"Every API call orgalerts makes waits {args.latency * 1000:.0f} ms (injected); one member stack takes "
        f"{args.stack_seconds:.0f} s inside CloudFormation (modelled); StackSets acts on at most "
        f"{args.service_concurrency} accounts at once (modelled service throttling). Times in seconds: wall (measured "
        "in orgalerts) + modelled (StackSets' operations) = total. `calls`: API calls orgalerts made.",
        "",
        "| accounts | engine | first deploy | second deploy (no change) | new account covered "
        "| calls (first / second) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size, results in rows.items():
        for engine in ("direct", "stacksets"):
            first, again, new = (results[f"{engine} {k}"] for k in ("first", "again", "new account"))
            newcell = f"{new.total:.1f}" + (" (onboard run)" if engine == "direct" else " (automatic, no run)")
            lines.append(
                f"| {size} | {engine} | {first.wall:.1f} + {first.modelled:.0f} = {first.total:.1f} | "
                f"{again.wall:.1f} + {again.modelled:.0f} = {again.total:.1f} | {newcell} "
                f"| {first.calls} / {again.calls} |"
            )
    failed = sum(r.failed for results in rows.values() for r in results.values())
    lines += ["", f"Failed sides across all runs: {failed}.", NOTES]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to each API call")
    parser.add_argument("--stack-seconds", type=float, default=60.0, help="modelled time of one member stack")
    parser.add_argument("--service-concurrency", type=int, default=100, help="accounts StackSets acts on at once")
    parser.add_argument("--out", default="bench/stacksets-latest.md")
    args = parser.parse_args(argv)
    global SETTINGS_STACK_SECONDS
    SETTINGS_STACK_SECONDS = args.stack_seconds
    apply_aws_semantics()
    emulation.apply_stackset_semantics()
    rows = {size: bench_size(size, args.latency, args.stack_seconds, args.service_concurrency) for size in args.sizes}
    text = report(rows, args)
    Path(args.out).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
