"""The background sandbox belongs to its checkout: a second command finds the first one's server, another
checkout gets its own, `--stop` ends only its own, the port is stable across restarts, a server of another
code version is replaced, and an idle server stops itself (on an injected clock)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orgalerts.config import load_config
from orgalerts.sandbox import daemon, launch

CONFIG = Path(__file__).parent.parent / "config" / "accounts.yaml"


@pytest.fixture(autouse=True)
def _lax(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lifecycle, not the strict rules, is under test here; lax servers start faster.
    monkeypatch.setenv("ORGALERTS_SANDBOX_STRICT", "0")
    monkeypatch.delenv("ORGALERTS_SANDBOX_IDLE_SECONDS", raising=False)


def _raw() -> dict[str, Any]:
    raw = load_config(CONFIG).sandbox
    assert raw is not None
    return dict(raw)


def _gone(pid: int) -> bool:
    return launch._gone(pid)


@pytest.fixture
def two_checkouts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    configs = []
    for name in ("checkout-a", "checkout-b"):
        (tmp_path / name / "config").mkdir(parents=True)
        (tmp_path / name / "pyproject.toml").write_text("")
        configs.append(Path(shutil.copy(CONFIG, tmp_path / name / "config" / "accounts.yaml")))
    yield configs[0], configs[1]
    for config in configs:
        launch.stop(_raw(), str(config))


def test_launch__two_checkouts__own_sandbox_each__stop_leaves_the_other__restart_keeps_the_port(
    two_checkouts: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORGALERTS_SANDBOX_DIR", raising=False)
    config_a, config_b = two_checkouts
    raw = _raw()

    a = launch.connect(raw, str(config_a))
    b = launch.connect(raw, str(config_b))

    assert a.started and b.started and "no AWS account is touched" in a.banner
    assert a.pid != b.pid and a.endpoint_url != b.endpoint_url and a.endpoint_url.startswith("http://127.0.0.1:")
    assert a.owner == str(config_a.parent.parent) and a.state_dir == str(config_a.parent.parent / ".sandbox")
    assert b.owner == str(config_b.parent.parent) and b.state_dir == str(config_b.parent.parent / ".sandbox")
    assert (config_a.parent.parent / ".sandbox" / ".gitignore").read_text() == "*\n"
    attached = launch.connect(raw, str(config_a))  # its own, never the other's
    assert attached.pid == a.pid and not attached.started and attached.endpoint_url == a.endpoint_url
    assert "AWS_ENDPOINT_URL=" + a.endpoint_url in attached.instructions()
    assert f"Owned by the checkout {a.owner}" in attached.instructions() and a.state_dir in attached.instructions()

    assert launch.stop(raw, str(config_a))
    assert _gone(a.pid)
    assert launch.stop(raw, str(config_a)) is False
    assert (launch.ping(int(b.endpoint_url.rsplit(":", 1)[1])) or {}).get("pid") == b.pid  # b still serves

    # b's server was started by another code version (an older checkout of the same directory): replaced,
    # never attached to, and the new one serves on the same port, so an exported AWS_ENDPOINT_URL keeps working.
    key = launch._spec_key(raw, False, config_b.parent.parent)  # lax (see _lax)
    state_path = config_b.parent.parent / ".sandbox" / f"{key}.json"
    state = json.loads(state_path.read_text())
    state["code_version"] = "an-older-version"
    state_path.write_text(json.dumps(state))
    replaced = launch.connect(raw, str(config_b))
    assert replaced.started and replaced.pid != b.pid and _gone(b.pid)
    assert replaced.restarted_because is not None and "another version of the code" in replaced.restarted_because
    assert replaced.endpoint_url == b.endpoint_url


def test_launch__remembered_port_taken__falls_back_to_a_free_port_and_remembers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORGALERTS_SANDBOX_DIR", str(tmp_path))
    raw = _raw()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        key = launch._spec_key(raw, False, launch.checkout_of(str(CONFIG)))
        (tmp_path / f"{key}.port").write_text(f"{port}\n")
        # The derived port taken too: only "any free port" is left.
        monkeypatch.setattr(launch, "preferred_port", lambda owner, key: port)
        connection = launch.connect(raw, str(CONFIG))
        try:
            got = int(connection.endpoint_url.rsplit(":", 1)[1])
            assert got != port
            assert (tmp_path / f"{key}.port").read_text().strip() == str(got)
        finally:
            launch.stop(raw, str(CONFIG))


def test_preferred_port__stable_per_checkout_in_the_high_range() -> None:
    one = launch.preferred_port(Path("/home/me/orgalerts"), "abc")
    assert one == launch.preferred_port(Path("/home/me/orgalerts"), "abc")
    assert launch.PORT_RANGE[0] <= one < launch.PORT_RANGE[1]
    others = {launch.preferred_port(Path(f"/home/me/clone{i}"), "abc") for i in range(20)}
    assert len(others) > 15


def test_checkout_of__nearest_project_directory_else_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "proj" / "config").mkdir(parents=True)
    (tmp_path / "proj" / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    assert launch.checkout_of(str(tmp_path / "proj" / "config" / "accounts.yaml")) == tmp_path / "proj"
    (tmp_path / "loose").mkdir()
    assert launch.checkout_of(str(tmp_path / "loose" / "my.yaml")) == tmp_path / "loose"


def test_idle_seconds__default_two_hours_env_override_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch.idle_seconds() == 7200
    monkeypatch.setenv("ORGALERTS_SANDBOX_IDLE_SECONDS", "60")
    assert launch.idle_seconds() == 60
    monkeypatch.setenv("ORGALERTS_SANDBOX_IDLE_SECONDS", "soon")
    with pytest.raises(launch.SandboxStartError, match="ORGALERTS_SANDBOX_IDLE_SECONDS"):
        launch.idle_seconds()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


def test_daemon__idle_for_the_limit__stops_itself_requests_postpone_it() -> None:
    clock = FakeClock()
    watch = daemon.IdleWatch(60.0, clock)
    app = daemon.ActivityMiddleware(lambda env, start: [b"moto"], watch, lambda: {"pid": 42})
    requests_at = {1030.0, 1080.0}  # a request 30 s and 80 s in: idle from 1080 on
    waited: list[float] = []

    def wait(seconds: float) -> None:
        clock.wait(1.0)
        waited.append(clock.now)
        if clock.now in requests_at:
            app({"PATH_INFO": "/"}, lambda *_: None)

    reason = daemon.serve(watch, [], [], lambda: None, lambda: True, wait)

    assert reason == "idle"
    assert clock.now == 1140.0  # 60 s after the last request, not 60 s after the start


def test_daemon__idle_but_a_command_holds_the_lock__keeps_serving_until_it_may_stop() -> None:
    clock = FakeClock()
    watch = daemon.IdleWatch(10.0, clock)
    answers = iter([False, False, True])
    reason = daemon.serve(watch, [], [], lambda: None, lambda: next(answers), lambda s: clock.wait(5.0))
    assert reason == "idle" and clock.now == 1020.0


def test_daemon__never_idle_when_zero__stops_on_sigterm_flag() -> None:
    clock = FakeClock()
    watch = daemon.IdleWatch(0, clock)
    stopping: list[bool] = []

    def wait(seconds: float) -> None:
        clock.wait(10_000.0)
        if clock.now > 100_000:
            stopping.append(True)

    assert daemon.serve(watch, stopping, [], lambda: None, lambda: True, wait) == "stopped"


def test_daemon__ping_path_answers_who_it_is_without_reaching_moto() -> None:
    watch = daemon.IdleWatch(5.0, FakeClock())
    seen: list[str] = []

    def moto(env: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(env["PATH_INFO"])
        return []

    app = daemon.ActivityMiddleware(moto, watch, lambda: {"pid": 7, "owner": "/x"})
    statuses: list[str] = []
    body = b"".join(app({"PATH_INFO": daemon.PING_PATH}, lambda status, headers: statuses.append(status)))
    assert statuses == ["200 OK"] and json.loads(body) == {"pid": 7, "owner": "/x"} and seen == []
    assert daemon.PING_PATH == launch.PING_PATH


def test_sandbox_dir_unwritable__one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ORGALERTS_SANDBOX_DIR", str(blocker / "sub"))
    with pytest.raises(launch.SandboxStartError, match="ORGALERTS_SANDBOX_DIR"):
        launch.state_dir(tmp_path)
    assert os.path.exists(blocker)
