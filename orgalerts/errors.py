"""Error types that cross module boundaries, and how each maps to an exit code.

Owns: the small vocabulary of failures the CLI turns into exit codes. A `ConfigError` is always raised
before any AWS call and always names the file, the key and what was expected.
"""

from __future__ import annotations


class OrgAlertsError(Exception):
    """Base class for every error orgalerts raises on purpose."""

    exit_code = 1


class ConfigError(OrgAlertsError):
    """The configuration (or a command-line value) is invalid. Exit code 2; nothing was written."""

    exit_code = 2

    def __init__(self, source: str, key: str, expected: str) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        super().__init__(f"{source}: {_one_line(key)}: {_one_line(expected)}")


def _one_line(text: str) -> str:
    """Keys and values quoted from the file may hold newlines or control characters: escape them."""
    return text if text.isprintable() else repr(text)[1:-1]


class UsageError(OrgAlertsError):
    """The command was used wrongly (bad argument, account not in scope, no terminal). Exit code 2."""

    exit_code = 2
