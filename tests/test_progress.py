"""Progress on stderr: a live line on a terminal, periodic plain lines otherwise. Fake clock and stream."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import SimOrg, make_engine

from orgalerts.cli import app as cli
from orgalerts.cli.progress import ProgressReporter
from orgalerts.engine.results import Mode


@dataclass
class Result:
    status: str


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def final_line(text: str) -> str:
    """What a terminal shows last: the text after the last carriage return, without the padding."""
    return text.rsplit("\r", 1)[-1].rstrip(" \n")


def test_progress__terminal__one_live_line_redrawn_in_place_with_counts_rate_and_eta() -> None:
    clock, out = FakeClock(), Terminal()
    progress = ProgressReporter(out, clock=clock)
    progress.start(100)
    for i in range(40):
        clock.now += 0.5  # 2 accounts per second
        progress(Result("failed" if i % 10 == 0 else "created"))

    text = out.getvalue()
    assert "\n" not in text  # one line, redrawn
    assert final_line(text) == "orgalerts: 40/100 accounts, 36 done, 4 failed, 60 remaining, 2.0/s, ETA 30s"


def test_progress__terminal__end_of_batch_leaves_the_final_line_and_a_newline() -> None:
    clock, out = FakeClock(), Terminal()
    progress = ProgressReporter(out, clock=clock)
    progress.start(3)
    for _ in range(3):
        clock.now += 1
        progress(Result("unchanged"))

    text = out.getvalue()
    assert text.endswith("\n")
    assert final_line(text) == "orgalerts: 3/3 accounts, 3 done, 0 failed, 0 remaining, 1.0/s, in 3s"
    progress.close()  # idempotent: nothing more
    assert out.getvalue() == text


def test_progress__terminal__shorter_line_overwrites_a_longer_one_completely() -> None:
    clock, out = FakeClock(), Terminal()
    progress = ProgressReporter(out, clock=clock)
    progress.start(1000)
    clock.now += 1
    progress(Result("created"))  # rate 1/s: ETA in minutes, a long line
    clock.now += 1000
    progress(Result("created"))
    first, second = out.getvalue().split("\r")[2:4]
    assert len(second) >= len(first)


def test_progress__not_a_terminal__a_plain_line_every_interval_and_a_final_one() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = ProgressReporter(out, clock=clock, interval=10.0)
    progress.start(100)
    for _ in range(100):
        clock.now += 0.25  # 25 s in all
        progress(Result("created"))

    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines == [
        "orgalerts: 40/100 accounts, 40 done, 0 failed, 60 remaining, 4.0/s, ETA 15s",
        "orgalerts: 80/100 accounts, 80 done, 0 failed, 20 remaining, 4.0/s, ETA 5s",
        "orgalerts: 100/100 accounts, 100 done, 0 failed, 0 remaining, 4.0/s, in 25s",
    ]


def test_progress__not_a_terminal__short_run_writes_nothing() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = ProgressReporter(out, clock=clock, interval=10.0)
    progress.start(12)
    for _ in range(12):
        clock.now += 0.1
        progress(Result("created"))
    progress.close()
    assert out.getvalue() == ""


def test_progress__interrupted_batch__close_writes_where_it_stopped() -> None:
    clock, out = FakeClock(), Terminal()
    progress = ProgressReporter(out, clock=clock)
    progress.start(10)
    clock.now += 2
    progress(Result("created"))
    progress.close()
    assert out.getvalue().endswith("\n")
    assert final_line(out.getvalue()) == "orgalerts: 1/10 accounts, 1 done, 0 failed, 9 remaining, 0.5/s, ETA 18s"


def test_progress__second_batch__counts_restart() -> None:
    clock, out = FakeClock(), Terminal()
    progress = ProgressReporter(out, clock=clock)
    progress.start(2)
    progress(Result("created"))
    progress(Result("created"))
    progress.start(5)
    clock.now += 1
    progress(Result("failed"))
    assert (progress.total, progress.done, progress.failed, progress.remaining) == (5, 0, 1, 4)


def test_progress__engine_reports_every_member_of_the_batch(sim_org: SimOrg) -> None:
    clock, out = FakeClock(), Terminal()
    progress = ProgressReporter(out, clock=clock)
    engine = make_engine(sim_org.config(), progress=progress, progress_start=progress.start)

    engine.converge("deploy", Mode.DEPLOY)

    n = len(sim_org.in_scope)
    assert out.getvalue().endswith("\n")
    assert final_line(out.getvalue()) == f"orgalerts: {n}/{n} accounts, {n} done, 0 failed, 0 remaining, 0.0/s, in 0s"


def test_progress__cli_on_a_terminal__progress_on_stderr_stdout_is_only_the_json_report(
    sim_org: SimOrg, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "accounts.yaml"
    config.write_text(yaml.safe_dump(sim_org.raw_config()))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    code = cli.main(["--config", str(config), "deploy", "--json"])

    assert code == 0
    document = json.loads(capsys.readouterr().out)  # stdout: the report, and nothing else
    assert document["summary"]["failed"] == 0
    n = len(sim_org.in_scope)
    assert f"\rorgalerts: {n}/{n} accounts, {n} done, 0 failed, 0 remaining" in terminal.getvalue()
