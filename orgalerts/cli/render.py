"""Rendering: every result -> the human table (stderr), one JSON document (stdout), Markdown.

Owns: the JSON shape users script against ({"command", "accounts", "central", "summary"}), the table and
Markdown forms of a run report, and the text of verify's and doctor's results. Exit codes are the
engine's (`orgalerts.engine.results.exit_code`).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any, TextIO

from orgalerts.commands.doctor import OK, DoctorReport
from orgalerts.commands.replay import ReplayReport, record_lines, summary_lines
from orgalerts.commands.verify import VerifyResult
from orgalerts.engine.results import BASE_STATUSES, COMMAND_STATUSES, RunReport, SideResult, Status, exit_code


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary(report: RunReport) -> dict[str, int]:
    counts = Counter(str(r.status) for r in report.accounts)
    statuses = COMMAND_STATUSES.get(report.command, BASE_STATUSES)
    result = {str(status): counts.get(str(status), 0) for status in statuses}
    for status, count in counts.items():
        result.setdefault(status, count)
    return result


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
    write_document(to_json(report, extra), stream)


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
        listed = role != "account" or report.command in LISTING_COMMANDS or side.status == Status.FAILED
        count = f" ({plural(len(side.changes), 'change')})" if side.changes and not listed else ""
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
        if side.changes or side.error or side.status not in (Status.UNCHANGED, Status.SKIPPED):
            lines.append(_md_row("member", side))
    for side in report.orphans:
        lines.append(_md_row("orphan", side))
    unchanged = sum(1 for s in report.accounts if s.status == Status.UNCHANGED)
    lines += ["", f"{unchanged} member accounts had nothing to report.", ""]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def _md_row(role: str, side: SideResult) -> str:
    changes = "<br>".join(c.replace("|", "\\|") for c in side.changes) or "-"
    error = (side.error or "-").replace("|", "\\|")
    return f"| {role} | {side.account_id} {side.name} | {side.status} | {changes} | {error} |"


def write_verify(result: VerifyResult, stream: TextIO, *, show_message: bool) -> None:
    stream.write("orgalerts verify (the configured e-mail recipients receive this test alert too)\n")
    for check in result.checks:
        latency = f" in {check.latency_seconds:.1f}s" if check.latency_seconds is not None else ""
        stream.write(f"  {check.status:<14} account {check.account_id}{latency}\n")
        if check.error:
            stream.write(f"               error: {check.error}\n")
    for problem in result.cleanup_errors:
        stream.write(f"  cleanup problem: {problem}\n")
    if show_message:
        for check in result.checks:
            if check.message:
                stream.write(f"\n--- the alert for account {check.account_id}, as a recipient reads it ---\n")
                stream.write(check.message.rstrip() + "\n---\n")


def write_doctor(report: DoctorReport, stream: TextIO) -> None:
    stream.write("orgalerts doctor\n")
    width = max((len(c.name) for c in report.checks), default=10)
    for check in report.checks:
        stream.write(f"  {check.status:<5} {check.name:<{width}}  {check.detail}\n")
        if check.fix and check.status != OK:
            stream.write(f"  {'':<5} {'':<{width}}  fix: {check.fix}\n")
    counts = ", ".join(f"{k} {v}" for k, v in report.summary().items() if v)
    stream.write(f"  checks: {counts or 'none'}\n")


def write_document(document: dict[str, Any], stream: TextIO) -> None:
    json.dump(document, stream, indent=2)
    stream.write("\n")


def write_lines(lines: list[str], stream: TextIO) -> None:
    for line in lines:
        stream.write(line + "\n")


def replay_records(report: ReplayReport) -> list[str]:
    """Every record of `orgalerts replay`: the decision and the text of each destination, a blank line between."""
    lines: list[str] = []
    for decision in report.decisions:
        lines += [*record_lines(decision), ""]
    return lines


def replay_summary(report: ReplayReport) -> list[str]:
    return summary_lines(report)
