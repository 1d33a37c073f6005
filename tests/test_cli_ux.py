"""What a user trips on, driven through the CLI on in-process moto: offboard outside the organization, nothing
deployed, --json on errors, verify's progress and its pointer at drift, the sandbox banner once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FakeClock, SimOrg, make_engine

from orgalerts.cli import app as cli
from orgalerts.commands.verify import run_verify
from orgalerts.engine.results import Mode
from orgalerts.sandbox.launch import Connection


def _config(sim_org: SimOrg, tmp_path: Path) -> str:
    path = tmp_path / "accounts.yaml"
    path.write_text(yaml.safe_dump(sim_org.raw_config()))
    return str(path)


def test_offboard__account_outside_the_organization__exit_2_and_json_error(
    sim_org: SimOrg, tmp_path: Path, capsys: Any
) -> None:
    code = cli.main(["--config", _config(sim_org, tmp_path), "offboard", "999999999999", "--json"])

    out, err = capsys.readouterr()
    assert code == 2
    assert "account 999999999999 is not in this organization" in err and "Traceback" not in err
    assert json.loads(out) == {
        "command": "offboard",
        "error": "account 999999999999 is not in this organization; nothing to offboard",
        "exit_code": 2,
    }


def test_offboard__in_scope_account__row_named_and_note_says_drift_re_flags_it(
    sim_org: SimOrg, tmp_path: Path, capsys: Any
) -> None:
    config = _config(sim_org, tmp_path)
    make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)
    prod1 = sim_org.accounts["prod1"]

    code = cli.main(["--config", config, "offboard", prod1, "--json"])

    out, err = capsys.readouterr()
    assert code == 0
    (row,) = json.loads(out)["accounts"]
    assert row["name"] == "prod1" and row["status"] == "removed"
    (note,) = row["notes"]
    assert "still in scope" in note and "orgalerts drift" in note and "exclude_accounts" in note
    assert f"{prod1} prod1" in err


def test_offboard__excluded_account__no_drift_note(sim_org: SimOrg, tmp_path: Path, capsys: Any) -> None:
    code = cli.main(["--config", _config(sim_org, tmp_path), "offboard", sim_org.accounts["excluded"], "--json"])

    (row,) = json.loads(capsys.readouterr().out)["accounts"]
    assert code == 0 and row["name"] == "excluded" and row["notes"] == []


@pytest.mark.parametrize("command", [["verify", "--timeout", "1"], ["watch", "--seconds", "1"]])
def test_verify_and_watch__nothing_deployed__exit_1_says_run_deploy_first(
    sim_org: SimOrg, tmp_path: Path, capsys: Any, command: list[str]
) -> None:
    code = cli.main(["--config", _config(sim_org, tmp_path), *command, "--json"])

    out, err = capsys.readouterr()
    notification = sim_org.accounts["notification"]
    says = (
        f"nothing deployed (no alert topic in account {notification}, region us-east-1): run `orgalerts deploy` first"
    )
    assert code == 1
    assert f"orgalerts: error: {says}\n" in err and "NotFound" not in err and "Traceback" not in err
    assert json.loads(out) == {"command": command[0], "error": says, "exit_code": 1}


def test_usage_error__with_json__json_document_on_stdout_and_the_line_on_stderr(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["verify", "--count", "many", "--json"])

    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert "invalid int value: 'many'" in err and "Traceback" not in err
    assert json.loads(out) == {
        "command": "verify",
        "error": "argument --count: invalid int value: 'many'",
        "exit_code": 2,
    }


def test_usage_error__without_json__stdout_stays_empty(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["verify", "--count", "many"])
    assert capsys.readouterr().out == ""


def test_verify__alert_never_arrives__progress_lines_error_points_at_drift_and_json_keys(sim_org: SimOrg) -> None:
    # In-process moto has no CloudTrail: the test change never raises an alert.
    engine = make_engine(sim_org.config())
    engine.converge("deploy", Mode.DEPLOY)
    clock, lines = FakeClock(), []
    prod1 = sim_org.accounts["prod1"]

    result = run_verify(
        engine.ctx, accounts=[prod1], count=1, timeout=30, clock=clock, sleep=clock.sleep, progress=lines.append
    )

    assert lines[0] == f"orgalerts verify: test change made in {prod1}; waiting up to 30s for the alert"
    assert any(line.startswith("orgalerts verify: still waiting for 1 alert (") for line in lines[1:])
    (check,) = result.checks
    assert check.status == "not delivered" and check.error is not None
    assert "orgalerts drift" in check.error and "disabled or deleted rule" in check.error
    summary = result.to_json()["summary"]
    assert summary["not_delivered"] == summary["not delivered"] == 1 and " " not in "not_delivered"
    assert result.exit_code() == 1


def _connection(started: bool) -> Connection:
    return Connection(
        endpoint_url="http://127.0.0.1:23456",
        access_key_id="testing",
        secret_access_key="testing",
        banner="SANDBOX: embedded, simulated AWS Organization (moto) - no AWS account is touched.\n  endpoint ...",
        management_account_id="123456789012",
        owner="/home/me/orgalerts",
        state_dir="/home/me/orgalerts/.sandbox",
        pid=4242,
        idle_seconds=7200,
        started=started,
    )


def test_sandbox_banner__full_when_started__one_line_when_attached(capsys: Any) -> None:
    cli._sandbox_banner(_connection(started=True))
    started = capsys.readouterr().err
    cli._sandbox_banner(_connection(started=False))
    attached = capsys.readouterr().err

    assert started.count("\n") == 2 and "no AWS account is touched" in started
    assert attached.count("\n") == 1
    assert "http://127.0.0.1:23456" in attached and "/home/me/orgalerts" in attached


def test_sandbox_json__endpoint_env_owner_state(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from orgalerts.sandbox import launch

    monkeypatch.setattr(launch, "connect", lambda *args: _connection(started=False))
    code = cli.main(["--config", str(Path(__file__).parent.parent / "config" / "accounts.yaml"), "sandbox", "--json"])

    out, err = capsys.readouterr()
    document = json.loads(out)
    assert code == 0 and "export " not in out
    assert document["command"] == "sandbox" and document["endpoint_url"] == "http://127.0.0.1:23456"
    assert document["env"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:23456"
    assert set(document["env"]) == {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
    assert document["owner"] == {"checkout": "/home/me/orgalerts", "python": "", "pid": 4242}
    assert document["state_dir"] == "/home/me/orgalerts/.sandbox" and document["idle_stop_seconds"] == 7200
    assert "no AWS account is touched" in err
