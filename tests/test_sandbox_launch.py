"""The background sandbox: a second command finds the first one's server (state survives), and stop ends it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orgalerts.config import load_config
from orgalerts.sandbox import launch

CONFIG = Path(__file__).parent.parent / "config" / "accounts.yaml"


def test_launch__connect_twice_same_server__stop_ends_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORGALERTS_SANDBOX_DIR", str(tmp_path))
    raw = load_config(CONFIG).sandbox
    assert raw is not None

    first = launch.connect(raw, str(CONFIG))
    try:
        assert first.endpoint_url.startswith("http://127.0.0.1:")
        assert "no AWS account is touched" in first.banner
        second = launch.connect(raw, str(CONFIG))
        assert second.endpoint_url == first.endpoint_url
        assert "AWS_ENDPOINT_URL=" + first.endpoint_url in first.instructions()
        state_files = [p for p in tmp_path.glob("*.json") if not p.name.endswith(".spec.json")]
        (state,) = state_files
        pid = int(__import__("json").loads(state.read_text())["pid"])
    finally:
        stopped = launch.stop(raw, str(CONFIG))
    assert stopped
    with pytest.raises(OSError):
        os.kill(pid, 0)
    assert launch.stop(raw, str(CONFIG)) is False
