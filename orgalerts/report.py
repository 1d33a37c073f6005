"""Reports: run results -> the human table (stderr), one JSON document (stdout), Markdown; exit code.

Owns: the JSON shape users script against ({"command", "accounts", "central", "summary"}) and the one
function that turns results into an exit code: 0 done and nothing left, 1 something failed, 3 changes
pending (plan) or drift found (drift).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any, TextIO

from orgalerts.engine import RunReport, SideResult

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PENDING = 3

BASE_STATUSES = ("created", "updated", "unchanged", "failed", "skipped")
COMMAND_STATUSES = {
    "drift": ("drifted", "unchanged", "failed", "skipped"),
    "repair": ("repaired", "unchanged", "failed", "skipped"),
    "offboard": ("removed", "unchanged", "failed", "skipped"),
    "teardown": ("removed", "unchanged", "failed", "skipped"),
    "redrive": ("resent", "unchanged", "failed"),
}


def summary(report: RunReport) -> dict[str, int]:
    counts = Counter(r.status for r in report.accounts)
    statuses = COMMAND_STATUSES.get(report.command, BASE_STATUSES)
    result = {status: counts.get(status, 0) for status in statuses}
    for status, count in counts.items():
        result.setdefault(status, count)
    return result


def _all(report: RunReport) -> list[SideResult]:
    extra = [side for side in (report.central, report.management) if side is not None]
    return [*report.accounts, *extra, *report.orphans]


def exit_code(report: RunReport) -> int:
    sides = _all(report)
    if any(r.status == "failed" for r in sides):
        return EXIT_FAILED
    if report.command in ("plan", "drift") and any(r.status in ("created", "updated", "drifted") for r in sides):
        return EXIT_PENDING
    return EXIT_OK


def to_json(report: RunReport, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "command": report.command,
        "accounts": [r.to_json() for r in report.accounts],
        "central": report.central.to_json() if report.central else None,
        "management": report.management.to_json() if report.management else None,
        "summary": summary(report),
    }
    if report.orphans or report.command in ("drift", "repair"):
        document["orphans"] = [r.to_json() for r in report.orphans]
    if report.command == "repair":  # `drift --repair`: still the drift command, to scripts
        document["command"] = "drift"
        document["repair"] = True
    if extra:
        document.update(extra)
    return document


def write_json(report: RunReport, stream: TextIO, extra: dict[str, Any] | None = None) -> None:
    json.dump(to_json(report, extra), stream, indent=2)
    stream.write("\n")


# Commands whose point is the list of changes; for the others a member's changes are counted, so a
# 500-account deploy stays readable (the JSON report always has every change).
LISTING_COMMANDS = ("plan", "drift", "repair", "onboard", "offboard")


def write_table(report: RunReport, stream: TextIO) -> None:
    """The human summary: one line per side, its changes indented below it."""
    rows = []
    if report.central is not None:
        rows.append(("central", report.central))
    if report.management is not None:
        rows.append(("mgmt", report.management))
    rows += [("account", r) for r in report.accounts]
    rows += [("orphan", r) for r in report.orphans]
    stream.write(f"orgalerts {report.command}\n")
    for role, side in rows:
        label = f"{side.account_id} {side.name}".strip()
        listed = role != "account" or report.command in LISTING_COMMANDS or side.status == "failed"
        count = f" ({len(side.changes)} changes)" if side.changes and not listed else ""
        stream.write(f"  {side.status:<10} {role:<8} {label}{count}\n")
        for change in side.changes if listed else []:
            stream.write(f"               - {change}\n")
        for note in side.notes:
            stream.write(f"               note: {note}\n")
        if side.error:
            stream.write(f"               error: {side.error}\n")
    counts = ", ".join(f"{k} {v}" for k, v in summary(report).items() if v)
    stream.write(f"  accounts: {counts or 'none'}\n")


def write_markdown(report: RunReport, path: str, now: datetime | None = None) -> None:
    """A report fit to paste into a ticket: what drifted, where, what was done."""
    now = now or datetime.now(timezone.utc)
    lines = [
        f"# orgalerts {report.command} report",
        "",
        f"Run at {now.strftime('%Y-%m-%d %H:%M UTC')}. Exit code {exit_code(report)}.",
        "",
        "Since when: drift is found by comparing state, so its start is not known here; each change to the",
        "alerting itself also raised an `[orgalerts] TAMPER ALERT` at the time it was made (see the alert",
        "mailbox or the CloudTrail event history of the account named below).",
        "",
        "| where | account | status | findings / changes | error |",
        "|---|---|---|---|---|",
    ]
    for role, maybe in (("central", report.central), ("management", report.management)):
        if maybe is not None:
            lines.append(_md_row(role, maybe))
    for side in report.accounts:
        if side.changes or side.error or side.status not in ("unchanged", "skipped"):
            lines.append(_md_row("member", side))
    for side in report.orphans:
        lines.append(_md_row("orphan", side))
    unchanged = sum(1 for s in report.accounts if s.status == "unchanged")
    lines += ["", f"{unchanged} member accounts had nothing to report.", ""]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def _md_row(role: str, side: SideResult) -> str:
    changes = "<br>".join(c.replace("|", "\\|") for c in side.changes) or "-"
    error = (side.error or "-").replace("|", "\\|")
    return f"| {role} | {side.account_id} {side.name} | {side.status} | {changes} | {error} |"
