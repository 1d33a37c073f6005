"""`orgalerts export cloudformation --out DIR`: the desired state as CloudFormation templates, for teams whose
changes go through reviewed templates.

Owns: checking the output directory (before any AWS call), reading the organization (read-only: the scope the bus
policy and the account-change watch need), building the four templates (`orgalerts.export.cloudformation`, with the
policies `orgalerts permissions` prints for `deployer-roles.yaml`) and writing them. Every template is built before
the first file is written, so a configuration the export refuses writes nothing. Returns a result; prints nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orgalerts.commands.permissions import policies
from orgalerts.engine.context import Context
from orgalerts.errors import UsageError
from orgalerts.export.cloudformation import FILES, render, templates

FORMATS = ("cloudformation",)


@dataclass(frozen=True)
class ExportResult:
    format: str
    directory: str
    files: tuple[str, ...]  # the file names written, in FILES order
    parameters: dict[str, dict[str, str]]  # file -> parameter -> default

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "export",
            "format": self.format,
            "out": self.directory,
            "files": list(self.files),
            "parameters": self.parameters,
        }


def check_out_dir(path: str) -> Path:
    """The output directory: created if missing (its parent must exist), refused when it cannot be written."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"--out {path}: is a file; give a directory")
    parent = target if target.is_dir() else target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--out {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--out {path}: directory {parent} is not writable")
    return target


def run_export(ctx: Context, out: Path) -> ExportResult:
    config = ctx.config
    built = templates(config, ctx.scope(), policies(config))
    texts = {name: render(built[name]) for name in FILES}  # all of them first: a refusal writes nothing
    out.mkdir(exist_ok=True)
    for name, text in texts.items():
        partial = out / f".{name}.partial"
        partial.write_text(text, encoding="utf-8")
        partial.replace(out / name)  # never a half-written template where a review tool looks
    parameters = {
        name: {key: str(spec.get("Default", "")) for key, spec in built[name].get("Parameters", {}).items()}
        for name in FILES
    }
    return ExportResult("cloudformation", str(out), FILES, parameters)
