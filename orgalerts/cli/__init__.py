"""The command line: parsing, one dispatch table, all printing. `main` is the `orgalerts` entry point."""

from orgalerts.cli.app import main

__all__ = ["main"]
