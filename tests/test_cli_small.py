"""Small things a new user noticed: each has its test."""

from __future__ import annotations

import io
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SimOrg

from orgalerts.cli import app as cli
from orgalerts.cli.render import plural, write_table
from orgalerts.engine.results import RunReport, SideResult, Status

ROOT = Path(__file__).resolve().parent.parent


def test_plural__one_alert_one_change__no_stray_s() -> None:
    assert (plural(1, "alert"), plural(2, "alert"), plural(0, "change")) == ("1 alert", "2 alerts", "0 changes")
    out = io.StringIO()
    side = SideResult("111111111111", Status.CREATED, changes=["create rule default/orgalerts-forward"], name="a")
    write_table(RunReport("deploy", [side], None), out)
    assert "(1 change)" in out.getvalue() and "1 changes" not in out.getvalue()


def test_debug__orgalerts_lines_not_buried_under_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "run", lambda args: 0)
    for name in ("botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    assert cli.main(["--debug", "permissions"]) == 0
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.INFO
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.INFO


def test_teardown__prompt_says_what_and_where__no_means_nothing_changed(
    sim_org: SimOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    config = tmp_path / "accounts.yaml"
    config.write_text(yaml.safe_dump(sim_org.raw_config()))
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)

    code = cli.main(["--config", str(config), "teardown"])

    err = capsys.readouterr().err
    assert code == 2 and "not confirmed" in err
    assert sim_org.accounts["notification"] in err and "us-east-1" in err and "orgalerts-" in err


def test_make_drift_repair__runs_the_repairing_drift() -> None:
    dry = subprocess.run(["make", "-n", "drift-repair"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "drift --repair" in dry.stdout
