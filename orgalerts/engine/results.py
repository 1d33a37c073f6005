"""What a run produces: the mode it ran in, each side's result, the report and its exit code.

Owns: `Mode` (which end of the pipeline a command uses), `Status` (the closed vocabulary of outcomes),
`SideResult` and `RunReport`, combining two results of one account into one, and `exit_code`, the one
function that turns a report into the process's exit code: 0 done and nothing left, 1 something
failed, 3 changes pending (plan) or drift found (drift).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PENDING = 3


class Mode(Enum):
    """Which end of the pipeline a command uses."""

    DEPLOY = "deploy"  # converge and write
    PLAN = "plan"  # converge, no write
    DRIFT = "drift"  # converge, no write, findings worded as drift
    REPAIR = "repair"  # converge and write, statuses `repaired`
    REMOVE = "remove"  # remove managed resources and write (offboard, teardown)

    @property
    def writes(self) -> bool:
        return self in (Mode.DEPLOY, Mode.REPAIR, Mode.REMOVE)


class Status(str, Enum):
    """A side's outcome. A `str`, so reports, JSON and comparisons see the plain word."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRIFTED = "drifted"
    REPAIRED = "repaired"
    REMOVED = "removed"
    RESENT = "resent"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


# The statuses each command's summary lists (in this order, zeros included).
BASE_STATUSES = (Status.CREATED, Status.UPDATED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED)
COMMAND_STATUSES = {
    "drift": (Status.DRIFTED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED),
    "repair": (Status.REPAIRED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED),
    "offboard": (Status.REMOVED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED),
    "teardown": (Status.REMOVED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED),
    "redrive": (Status.RESENT, Status.UNCHANGED, Status.FAILED),
}


@dataclass
class SideResult:
    """The outcome for one account (or for the central or management side)."""

    account_id: str
    status: Status
    changes: list[str] = field(default_factory=list)
    error: str | None = None
    name: str = ""
    notes: list[str] = field(default_factory=list)

    def fail(self, error: str) -> SideResult:
        self.status, self.error = Status.FAILED, error
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "status": str(self.status),
            "changes": list(self.changes),
            "error": self.error,
            "notes": list(self.notes),
        }


@dataclass
class RunReport:
    command: str
    accounts: list[SideResult]
    central: SideResult | None
    orphans: list[SideResult] = field(default_factory=list)
    # The management account's side (organization watch, trail, guardrail), when any is enabled.
    management: SideResult | None = None

    def sides(self) -> list[SideResult]:
        extra = [side for side in (self.central, self.management) if side is not None]
        return [*self.accounts, *extra, *self.orphans]


class Interrupted(Exception):
    """Ctrl-C during the member phase: carries every account's result so far (the rest `not attempted`)."""

    def __init__(self, results: list[SideResult], report: RunReport | None = None) -> None:
        super().__init__("interrupted")
        self.results = results
        self.report = report


def exit_code(report: RunReport) -> int:
    sides = report.sides()
    if any(r.status == Status.FAILED for r in sides):
        return EXIT_FAILED
    pending = (Status.CREATED, Status.UPDATED, Status.DRIFTED)
    if report.command in ("plan", "drift") and any(r.status in pending for r in sides):
        return EXIT_PENDING
    return EXIT_OK


def combined_status(a: Status, b: Status) -> Status:
    """The status of one side made of two parts."""
    pair = {a, b}
    for status in (Status.FAILED, Status.DRIFTED, Status.REPAIRED, Status.REMOVED):
        if status in pair:
            return status
    if pair <= {Status.SKIPPED, Status.UNCHANGED}:
        return Status.UNCHANGED if Status.UNCHANGED in pair else Status.SKIPPED
    if pair in ({Status.CREATED}, {Status.CREATED, Status.SKIPPED}):
        return Status.CREATED
    return Status.UPDATED  # something changed, and something existed on that side already


def merge(side: SideResult | None, extra: SideResult | None) -> SideResult | None:
    """One account's result from two parts (e.g. the organization watch, and the trail and guardrail)."""
    if side is None or extra is None:
        return side or extra
    side.status = combined_status(side.status, extra.status)
    side.changes += extra.changes
    side.notes += extra.notes
    side.error = "; ".join(e for e in (side.error, extra.error) if e) or None
    return side
