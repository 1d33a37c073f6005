"""Severity tiers of an alert, and which destinations admit which tier. Pure.

Owns: the four tiers (`critical`, `high`, `medium`, `info`), their order, and `admits`, the one rule
deciding whether a destination with a `min_severity` receives an alert of a tier. The classification of
events into tiers (which rule carries which tier) is built on these names.
"""

from __future__ import annotations

from enum import Enum


class Severity(str, Enum):
    """An alert's tier; the string value is what config files, JSON output and payloads use."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe: critical 3, high 2, medium 1, info 0."""
        return len(ORDER) - 1 - ORDER.index(self)

    def lower(self) -> Severity:
        """One tier lower (a denied attempt); info stays info."""
        return ORDER[min(ORDER.index(self) + 1, len(ORDER) - 1)]


ORDER: tuple[Severity, ...] = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.INFO)
NAMES: tuple[str, ...] = tuple(s.value for s in ORDER)


def admits(min_severity: Severity | str, severity: Severity | str) -> bool:
    """Whether a destination whose `min_severity` is given receives an alert of `severity`."""
    return Severity(severity).rank >= Severity(min_severity).rank
