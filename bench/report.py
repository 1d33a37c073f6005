"""bench/RESULTS.md: the machine, the command, a table per profile, scenario and size, and the budgets."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from harness import Measurement

CPU_BUDGET_MS = 10.0
RATIO_BUDGET = 1.5
WRITE_SCENARIOS = ("fresh deploy",)


@dataclass(frozen=True)
class CallBudget:
    reads: int
    writes: int
    total: int


def call_budget(m: Measurement) -> CallBudget:
    """The issue's budget per member account: one read (and, fresh, one write) per managed resource, plus the
    AssumeRole. For the core profile (role, its policy, rule, target) the issue states it as at most 8 calls
    fresh and 6 no-op (the 6th: DescribeRule does not return tags, ownership needs ListTagsForResource)."""
    n = m.managed
    fresh = m.scenario in WRITE_SCENARIOS
    if m.profile == "core":
        return CallBudget(reads=n + (0 if fresh else 1), writes=n if fresh else 0, total=8 if fresh else 6)
    return CallBudget(reads=n, writes=n if fresh else 0, total=2 * n + 1 if fresh else n + 1)


def machine() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- CPU: {model}, {cores} cores available to the process",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.implementation.name}); boto3 {version('boto3')}, "
        f"botocore {version('botocore')}, moto {version('moto')} (in-process, `mock_aws`)",
    ]


def _ok(holds: bool) -> str:
    return "yes" if holds else "**no**"


def _mean_max(m: Measurement, kind: str) -> str:
    mean, most = m.mean_max(kind)
    return f"{mean:.1f}" if mean == most else f"{mean:.2f} (max {most})"


def results_table(measurements: list[Measurement]) -> list[str]:
    rows = [
        "| accounts | scenario | reads/acct | writes/acct | AssumeRole/acct | calls/acct (budget) "
        "| serial calls (writes) | wall s | lower bound s | ratio | all-calls bound s "
        "| CPU ms/acct (moto apart) | moto CPU ms/acct | statuses |",
        "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in measurements:
        budget = call_budget(m)
        _, most = m.mean_max("total")
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(m.statuses.items()))
        if m.throttled_attempts:
            statuses += f"; {m.throttled_injected}/{m.throttled_attempts} attempts throttled"
        rows.append(
            f"| {m.size} | {m.scenario} | {_mean_max(m, 'reads')} | {_mean_max(m, 'writes')} "
            f"| {_mean_max(m, 'assume')} | {_mean_max(m, 'total')} (<= {budget.total}: {_ok(most <= budget.total)}) "
            f"| {len(m.serial)} ({m.serial_writes}) | {m.wall:.2f} | {m.lower_bound:.2f} "
            f"| {m.wall / m.lower_bound:.2f} | {m.naive_lower_bound:.2f} "
            f"| {m.cpu_ms_per_account:.2f} | {1000 * m.sim_cpu / m.size:.2f} | {statuses} |"
        )
    return rows


def budget_rows(measurements: list[Measurement]) -> list[str]:
    rows = ["| budget | where | measured | holds |", "|---|---|---|---|"]
    plain = [m for m in measurements if not m.throttled_attempts]
    for profile in sorted({m.profile for m in plain}):
        mine = [m for m in plain if m.profile == profile]
        n = mine[0].managed
        for scenario in ("fresh deploy", "no-op re-run", "drift check"):
            runs = [m for m in mine if m.scenario == scenario]
            if not runs:
                continue
            budget = call_budget(runs[0])
            reads = max(m.mean_max("reads")[1] for m in runs)
            writes = max(m.mean_max("writes")[1] for m in runs)
            total = max(m.mean_max("total")[1] for m in runs)
            holds = reads <= budget.reads and writes <= budget.writes and total <= budget.total
            rows.append(
                f"| {scenario}: reads <= {budget.reads}, writes <= {budget.writes}, calls <= {budget.total} "
                f"per member | {profile} ({n} managed resources), every size | worst account: {reads} reads, "
                f"{writes} writes, {total} calls | {_ok(holds)} |"
            )
        fresh = [m for m in mine if m.scenario == "fresh deploy"]
        values = sorted({m.serial_writes for m in fresh})
        rows.append(
            f"| central side's writes constant as accounts grow | {profile}, fresh deploy, sizes "
            f"{', '.join(str(m.size) for m in fresh)} | {', '.join(map(str, values))} writes "
            f"| {_ok(len(values) == 1)} |"
        )
        biggest = max(m.size for m in mine)
        for m in mine:
            if m.size != biggest:
                continue
            ratio = m.wall / m.lower_bound
            rows.append(
                f"| wall <= {RATIO_BUDGET}x lower bound | {profile}, {m.scenario}, {m.size} accounts "
                f"| {ratio:.2f} ({m.wall:.1f} s vs {m.lower_bound:.1f} s) | {_ok(ratio <= RATIO_BUDGET)} |"
            )
            rows.append(
                f"| orchestrator CPU < {CPU_BUDGET_MS:.0f} ms/account | {profile}, {m.scenario}, {m.size} accounts "
                f"| {m.cpu_ms_per_account:.2f} ms | {_ok(m.cpu_ms_per_account < CPU_BUDGET_MS)} |"
            )
            assumed = sum(1 for c in m.pooled if c.operation == "AssumeRole")
            rows.append(
                f"| AssumeRole well under STS's 600/s (gateway paces at 100/s) | {profile}, {m.scenario}, "
                f"{m.size} accounts | {assumed / m.wall:.0f}/s on average | {_ok(assumed / m.wall <= 100)} |"
            )
            if m.scenario != "fresh deploy":
                writes = sum(1 for c in m.calls if c.is_write and c.operation != "AssumeRole")
                rows.append(
                    f"| zero writes | {profile}, {m.scenario}, {m.size} accounts | {writes} write calls in all "
                    f"| {_ok(writes == 0)} |"
                )
    for m in measurements:
        if m.throttled_attempts:
            rows.append(
                f"| throttling slows, never fails | {m.profile}, {m.scenario}, {m.size} accounts "
                f"| {m.throttled_injected} of {m.throttled_attempts} attempts throttled; exit {m.exit_code}, "
                f"{m.statuses.get('failed', 0)} failed; wall {m.wall:.1f} s | {_ok(m.exit_code == 0)} |"
            )
    return rows


def write_results(path: Path, measurements: list[Measurement], *, command: str, settings: str, notes: str) -> None:
    lines = [
        "# Scale benchmark: results",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `make bench`, i.e.:",
        "",
        "```",
        command,
        "```",
        "",
        *machine(),
        f"- {settings}",
        "",
        "## Budgets",
        "",
        *budget_rows(measurements),
        "",
    ]
    for profile in sorted({m.profile for m in measurements}):
        mine = [m for m in measurements if m.profile == profile]
        lines += [
            f"## Results: profile `{profile}` ({mine[0].managed} managed resources per member account)",
            "",
            *results_table(mine),
            "",
        ]
    lines += [notes.strip(), ""]
    path.write_text("\n".join(lines))
