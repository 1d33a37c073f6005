"""Mistakes a new user makes, driven through the CLI: each gets one clear line and exit 2, before any AWS call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SimOrg

from orgalerts.cli import app as cli


def _no_aws(*_: Any, **__: Any) -> Any:
    raise AssertionError("an AWS gateway was built: the error came too late")


@pytest.mark.parametrize(
    ("path", "says"),
    [("/nonexistent/dir/r.md", "directory /nonexistent/dir does not exist"), ("/etc", "is a directory")],
)
def test_drift__markdown_path_unwritable__exit_2_before_any_aws_call(
    sim_org: SimOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, path: str, says: str
) -> None:
    config = tmp_path / "accounts.yaml"
    config.write_text(yaml.safe_dump(sim_org.raw_config()))
    monkeypatch.setattr(cli, "Gateway", _no_aws)

    code = cli.main(["--config", str(config), "drift", "--repair", "--markdown", path])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_config__well_formed_ou_that_does_not_exist__exit_2_naming_key_and_id(
    sim_org: SimOrg, tmp_path: Path, capsys: Any
) -> None:
    raw = sim_org.raw_config()
    raw["organization"]["ous"] = [sim_org.ous["Security"], "ou-zz99-abcdefgh"]
    config = tmp_path / "accounts.yaml"
    config.write_text(yaml.safe_dump(raw))

    code = cli.main(["--config", str(config), "plan"])

    err = capsys.readouterr().err
    assert code == 2
    assert "organization.ous" in err and "ou-zz99-abcdefgh" in err and str(config) in err
    assert "Traceback" not in err


def test_cli__mistyped_command__did_you_mean(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["deplyo"])
    assert exited.value.code == 2
    assert "did you mean 'deploy'?" in capsys.readouterr().err


def test_watch__negative_seconds__refused(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["watch", "--seconds", "-5"])
    assert exited.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err


def test_cli__run_outside_the_checkout__hint_about_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORGALERTS_CONFIG", raising=False)

    code = cli.main(["plan"])

    err = capsys.readouterr().err
    assert code == 2 and "--config" in err and "ORGALERTS_CONFIG" in err


def test_cli__config_from_environment_variable(
    sim_org: SimOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text(yaml.safe_dump(sim_org.raw_config()))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORGALERTS_CONFIG", str(config))

    assert cli.main(["plan"]) == 3  # nothing deployed yet: changes pending
    assert "orgalerts plan" in capsys.readouterr().err
