"""Orchestrator CPU per API call, one operation at a time: the floor under bench/RESULTS.md's CPU per account.

    .venv/bin/python bench/percall.py [--calls 3000] [--paused-calls 100 --pause-ms 50]

Each operation a no-op member run makes is called `--calls` times in a row through orgalerts' Gateway (shared
clients, account binding, hooks, pacing that never sleeps), against in-process moto with the benchmark's
simulator speedups; moto's own CPU is measured apart and taken off, as in run.py. A call repeated back to back
runs on warm caches: in a real run, where every account's eight calls follow one another and 32 workers
interleave, each costs more. The last column is the same call, each one `--pause-ms` after the one before (as
every call of the 50 ms runs follows its wait): what a call costs when the caches it needs went cold meanwhile.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Meter,
    build_org,
    isolate_environment,
    simulator_cpu_meter,
    simulator_speedups,
    unpaced_gateway,
)

from orgalerts.aws import ClientError, Gateway
from orgalerts.sides.central import scanned_regions

ROLE = "OrganizationAccountAccessRole"


def operations(gateway: Gateway, account: str) -> dict[str, Callable[[], Any]]:
    """One callable per operation of a no-op member run (the ones that read something that exists where it does)."""
    arn = f"arn:aws:iam::{account}:role/{ROLE}"
    access = gateway.account(account, arn, None)
    iam, events, sqs = (access.client(s, "us-east-1") for s in ("iam", "events", "sqs"))
    url = sqs.create_queue(QueueName="percall")["QueueUrl"]
    events.put_rule(Name="percall", EventPattern=json.dumps({"source": ["aws.iam"]}))
    return {
        "sts AssumeRole": lambda: gateway.account(account, arn, None),
        "iam GetRole": lambda: iam.get_role(RoleName=ROLE),
        "iam GetRole (absent: NoSuchEntity)": lambda: iam.get_role(RoleName="percall-absent"),
        "events ListRules": lambda: events.list_rules(NamePrefix="percall"),
        "events ListTargetsByRule": lambda: events.list_targets_by_rule(Rule="percall"),
        "sqs GetQueueAttributes": lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
    }


def measure(call: Callable[[], Any], calls: int, meter: Meter, pause: float = 0.0) -> tuple[float, float]:
    """(orchestrator, moto) CPU microseconds per call, after a warm-up; with `pause`, each call follows a sleep of
    that many seconds (as every call of a 50 ms run follows its wait), and the sleeps cost no CPU."""

    def once() -> None:
        with contextlib.suppress(ClientError):  # the absent role: the error path is what is measured
            call()

    for _ in range(200):
        once()
    meter.sim_cpu = 0.0
    spent = 0.0
    for _ in range(calls):
        if pause:
            time.sleep(pause)
        start = time.thread_time()
        once()
        spent += time.thread_time() - start
    return 1e6 * (spent - meter.sim_cpu) / calls, 1e6 * meter.sim_cpu / calls


def client_making(gateway: Gateway) -> tuple[int, float]:
    """(clients, CPU seconds) to make the clients a run's region look makes: events and SNS in every region of the
    partition (`central.scanned_regions`), a fixed cost of every run (the service models already parsed)."""
    base = gateway.base()
    regions = sorted(scanned_regions())
    start = time.process_time()
    for region in regions:
        for service in ("events", "sns"):
            base.client(service, region)
    return 2 * len(regions), time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls per operation, back to back")
    parser.add_argument("--paused-calls", type=int, default=100, help="calls per operation, each after a pause")
    parser.add_argument("--pause-ms", type=float, default=50.0, help="the pause before each of those")
    args = parser.parse_args(argv)
    isolate_environment()

    meter = Meter()
    with mock_aws(), simulator_speedups():
        org = build_org(3, outside=0)
        gateway = unpaced_gateway(meter)
        with simulator_cpu_meter(meter):
            print(f"{'operation':<36} {'orchestrator us/call':>21} {'moto us/call':>13} {'after a wait':>13}")
            for name, call in operations(gateway, org.members[-1]).items():
                ours, moto = measure(call, args.calls, meter)
                waited, _ = measure(call, args.paused_calls, meter, args.pause_ms / 1000)
                print(f"{name:<36} {ours:>21.0f} {moto:>13.0f} {waited:>13.0f}")
            clients, seconds = client_making(gateway)
            print(f"making the region look's {clients} clients, once per run: {seconds:.2f} s of CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
