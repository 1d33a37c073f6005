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

CPU_BUDGET_MS = 5.0
RATIO_BUDGET = 1.3  # members' wall vs their lower bound (member calls x latency / workers)
THROTTLED_BUDGET = 2.0  # throttled wall vs the same size's unthrottled no-op wall
WRITE_SCENARIOS = ("fresh deploy",)


@dataclass(frozen=True)
class CallBudget:
    reads: int
    writes: int
    total: int


def call_budget(m: Measurement) -> CallBudget:
    """Per member account (issue 15, counted from outside by tests/test_calls_outside.py too): the shipped
    (`default`) profile at most 13 calls fresh and 9 no-op / drift, AssumeRole included, and no write but on a
    fresh deploy; `core` (role, policy, rule, target): 8 fresh, 6 no-op."""
    fresh = m.scenario in WRITE_SCENARIOS
    if m.profile == "core":
        return CallBudget(reads=4 if fresh else 5, writes=4 if fresh else 0, total=8 if fresh else 6)
    return CallBudget(reads=6 if fresh else 8, writes=m.managed if fresh else 0, total=13 if fresh else 9)


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


def members_ratio(m: Measurement) -> float:
    return m.phases.get("members", m.wall) / m.members_bound if m.members_bound else 0.0


def results_table(measurements: list[Measurement]) -> list[str]:
    rows = [
        "| accounts | scenario | reads/acct | writes/acct | AssumeRole/acct | calls/acct (budget) "
        "| serial calls (writes) | discovery s (calls; bound) | central s | members s (bound; ratio) | wall s "
        "| CPU ms/acct (moto apart) | moto CPU ms/acct | statuses |",
        "|---:|---|---:|---:|---:|---|---:|---|---:|---|---:|---:|---:|---|",
    ]
    for m in measurements:
        budget = call_budget(m)
        _, most = m.mean_max("total")
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(m.statuses.items()))
        if m.throttled_attempts:
            statuses += f"; {m.throttled_injected}/{m.throttled_attempts} attempts throttled"
        bound = f"{m.members_bound:.1f}; {members_ratio(m):.2f}" if m.latency else "no latency"
        rows.append(
            f"| {m.size} | {m.scenario} | {_mean_max(m, 'reads')} | {_mean_max(m, 'writes')} "
            f"| {_mean_max(m, 'assume')} | {_mean_max(m, 'total')} (<= {budget.total}: {_ok(most <= budget.total)}) "
            f"| {len(m.serial)} ({m.serial_writes}) "
            f"| {m.phases.get('discovery', 0):.1f} ({m.discovery_calls}; {m.discovery_bound:.1f}) "
            f"| {m.phases.get('central', 0):.1f} "
            f"| {m.phases.get('members', 0):.1f} ({bound}) | {m.wall:.1f} "
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
        for m in mine:
            ratio = members_ratio(m)
            where = f"{profile}, {m.scenario}, {m.size} accounts"
            if m.latency == 0:  # the no-waits run: no latency, no bound to hold the wall to; its CPU is the work
                rows.append(
                    f"| orchestrator CPU < {CPU_BUDGET_MS:.0f} ms/account, nothing waiting | {where} "
                    f"| {m.cpu_ms_per_account:.2f} ms | {_ok(m.cpu_ms_per_account < CPU_BUDGET_MS)} |"
                )
                continue
            rows.append(
                f"| members' wall <= {RATIO_BUDGET}x their lower bound | {where} "
                f"| {ratio:.2f} ({m.phases.get('members', 0):.1f} s vs {m.members_bound:.1f} s) "
                f"| {_ok(ratio <= RATIO_BUDGET)} |"
            )
            rows.append(
                f"| discovery vs modelled Organizations rate ({m.organizations_rate:g}/s, {m.latency * 1000:g} ms) "
                f"| {where} | {m.phases.get('discovery', 0):.1f} s for {m.discovery_calls} calls "
                f"(bound {m.discovery_bound:.1f} s) | shown apart |"
            )
            rows.append(
                f"| orchestrator CPU < {CPU_BUDGET_MS:.0f} ms/account | {where} "
                f"| {m.cpu_ms_per_account:.2f} ms | {_ok(m.cpu_ms_per_account < CPU_BUDGET_MS)} |"
            )
            if m.scenario != "fresh deploy":
                writes = sum(1 for c in m.calls if c.is_write and c.operation != "AssumeRole")
                rows.append(f"| zero writes | {where} | {writes} write calls in all | {_ok(writes == 0)} |")
    for m in measurements:
        if m.throttled_attempts:
            plain = [p for p in measurements if (p.profile, p.size, p.scenario) == (m.profile, m.size, "no-op re-run")]
            base = plain[0].wall if plain else float("nan")
            holds = m.exit_code == 0 and not m.statuses.get("failed") and m.wall <= THROTTLED_BUDGET * base
            rows.append(
                f"| throttled wall <= {THROTTLED_BUDGET:g}x unthrottled, no account failed "
                f"| {m.profile}, {m.scenario}, "
                f"{m.size} accounts | {m.throttled_injected} of {m.throttled_attempts} attempts throttled; exit "
                f"{m.exit_code}, {m.statuses.get('failed', 0)} failed; wall {m.wall:.1f} s vs {base:.1f} s "
                f"({m.wall / base:.2f}x) | {_ok(holds)} |"
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
