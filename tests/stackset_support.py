"""What the StackSets engine tests share: the probe member template, the StackSets clock, an engine on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import CallLog, FakeClock, SimOrg, make_engine

from orgalerts.config import Config
from orgalerts.engine.stacksets import Commands
from orgalerts.model.scope import Scope
from orgalerts.sandbox import stacksets
from orgalerts.sandbox.stacksets import StackSetSettings, apply_stackset_semantics

PROBE = "orgalerts-stackset-probe"
Templates = Callable[[Config, Scope], dict[str, dict[str, Any]]]


def probe_member() -> dict[str, Any]:
    """A member template of one tagged queue: cheap to create in every account, easy to look for."""
    queue = {"QueueName": PROBE, "Tags": [{"Key": "managed-by", "Value": "orgalerts"}]}
    return {"Resources": {"Probe": {"Type": "AWS::SQS::Queue", "Properties": queue}}}


def stackset_semantics(seconds_per_account: float) -> Iterator[FakeClock]:
    """The sandbox's StackSets semantics on a fake clock (operations take `seconds_per_account` per account, and
    read as pending once), the previous settings back afterwards."""
    apply_stackset_semantics()
    fake = FakeClock()
    before = stacksets.SETTINGS
    stacksets.configure(StackSetSettings(clock=fake, seconds_per_account=seconds_per_account, pending_reads=1))
    yield fake
    stacksets.configure(before)


@pytest.fixture(name="clock")
def stackset_clock() -> Iterator[FakeClock]:
    yield from stackset_semantics(30.0)


def stackset_engine(
    sim: SimOrg, clock: FakeClock, templates: Templates, call_log: CallLog | None = None, **overrides: Any
) -> Commands:
    """`engine: stacksets` on the simulated organization; `engine.lines` holds its progress lines."""
    config = sim.config(deploy={"engine": "stacksets"}, **overrides)
    runner = make_engine(config, call_log, sleep=clock.sleep)
    lines: list[str] = []
    engine = Commands(runner, templates, notify=lines.append, poll_seconds=10.0)
    engine.lines = lines  # type: ignore[attr-defined]
    return engine
