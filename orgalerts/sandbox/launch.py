"""Keeping the sandbox alive between commands: a background server process per sandbox spec.

Owns: starting the sandbox in its own process (so that a second `make deploy-org` finds what the first
one deployed), finding it again through a small state file, and stopping it. The state directory is
`$ORGALERTS_SANDBOX_DIR`, else `~/.cache/orgalerts/sandbox`; one server per distinct `sandbox:` block.
The server binds 127.0.0.1 only and holds everything in memory; `orgalerts sandbox --stop` ends it.

Strict mode (`ORGALERTS_SANDBOX_STRICT`, on unless 0/false/no/off) is part of the server's key, so
switching it starts another server rather than reusing one of the other kind. The least-privilege
principals (`LeastPrivilege`, computed by the command line from the config) are written next to the
state; the state records their digest, and when a command brings different ones (the config
changed), the running server is asked to re-seed them (SIGHUP) and this waits for the new digest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orgalerts.errors import OrgAlertsError
from orgalerts.sandbox.least_privilege import LeastPrivilege, strict_requested
from orgalerts.sandbox.spec import parse_sandbox_spec

START_TIMEOUT_SECONDS = 60.0
RESEED_TIMEOUT_SECONDS = 30.0


class SandboxStartError(OrgAlertsError):
    """The sandbox server did not come up."""


@dataclass(frozen=True)
class Connection:
    """What a command needs to talk to the running sandbox."""

    endpoint_url: str
    access_key_id: str  # the management account's root user: for people
    secret_access_key: str
    banner: str
    management_account_id: str
    strict: bool = False
    # The least-privilege orchestrator user's keys (what orgalerts itself runs with), when seeded.
    orchestrator_access_key_id: str | None = None
    orchestrator_secret_access_key: str | None = None
    member_role_name: str | None = None

    @property
    def tool_keys(self) -> tuple[str, str]:
        """The keys orgalerts runs with: the orchestrator's when seeded, else the root user's."""
        if self.orchestrator_access_key_id and self.orchestrator_secret_access_key:
            return self.orchestrator_access_key_id, self.orchestrator_secret_access_key
        return self.access_key_id, self.secret_access_key

    def instructions(self) -> str:
        lines = [
            "# The sandbox keeps running in the background. Point the AWS CLI or boto3 at it:",
            f"export AWS_ENDPOINT_URL={self.endpoint_url}",
            f"export AWS_ACCESS_KEY_ID={self.access_key_id}",
            f"export AWS_SECRET_ACCESS_KEY={self.secret_access_key}",
            "export AWS_DEFAULT_REGION=us-east-1",
            f"# These keys act as the management account {self.management_account_id}. To act in a member",
            "# account, assume its OrganizationAccountAccessRole, for example:",
            "#   aws sts assume-role --role-arn arn:aws:iam::333333333301:role/OrganizationAccountAccessRole \\",
            "#       --role-session-name me",
            "# then make an IAM change with those credentials (aws iam create-user --user-name bob) while",
            "# `orgalerts watch` (another terminal) prints the alerts as recipients receive them.",
            "# Stop it with: orgalerts sandbox --stop",
        ]
        if self.orchestrator_access_key_id:
            lines += [
                "# orgalerts itself runs with least privilege: as IAM user orgalerts-orchestrator (access key",
                f"# {self.orchestrator_access_key_id}, exactly the orchestrator policy of `orgalerts permissions`),",
                f"# assuming {self.member_role_name} (exactly the member policy) in each account.",
            ]
        lines.append(
            "# Strict mode is on: calls a policy does not allow are refused (AccessDenied), as in AWS."
            if self.strict
            else "# Strict mode is off (ORGALERTS_SANDBOX_STRICT=0): any caller may do anything."
        )
        lines.append("# Stop it with: orgalerts sandbox --stop")
        return "\n".join(lines)


def state_dir() -> Path:
    configured = os.environ.get("ORGALERTS_SANDBOX_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "orgalerts" / "sandbox"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _spec_key(raw: Mapping[str, Any], strict: bool) -> str:
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return digest if strict else f"{digest}-lax"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two commands started together must not both launch a server.
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(state: dict[str, Any]) -> bool:
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    try:
        with socket.create_connection(("127.0.0.1", int(state["port"])), timeout=2):
            return True
    except OSError:
        return False


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


def _connection(state: dict[str, Any]) -> Connection:
    return Connection(
        endpoint_url=str(state["endpoint_url"]),
        access_key_id=str(state["access_key_id"]),
        secret_access_key=str(state["secret_access_key"]),
        banner=str(state["banner"]),
        management_account_id=str(state["management_account_id"]),
        strict=bool(state.get("strict", False)),
        orchestrator_access_key_id=state.get("orchestrator_access_key_id"),
        orchestrator_secret_access_key=state.get("orchestrator_secret_access_key"),
        member_role_name=state.get("member_role_name"),
    )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _reseed(
    state: dict[str, Any], state_path: Path, principals_path: Path, least_privilege: LeastPrivilege
) -> Connection:
    """Have the running server re-seed `least_privilege`; returns the connection once it has."""
    _write_private(principals_path, json.dumps(least_privilege.to_json()))
    want = least_privilege.digest()
    os.kill(int(state["pid"]), signal.SIGHUP)
    deadline = time.monotonic() + RESEED_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        current = _read_state(state_path)
        if current is not None and current.get("principals_digest") == want:
            return _connection(current)
        if current is not None and current.get("principals_error"):
            raise SandboxStartError(f"the sandbox could not re-seed its principals: {current['principals_error']}")
        time.sleep(0.05)
    raise SandboxStartError(f"the sandbox did not re-seed its principals within {RESEED_TIMEOUT_SECONDS:.0f} s")


def connect(raw: Mapping[str, Any], source: str, least_privilege: LeastPrivilege | None = None) -> Connection:
    """The running sandbox for this spec, started in the background if it is not running.

    With `least_privilege`, the sandbox holds exactly those principals when this returns (seeded at
    start, or re-seeded if the running server was seeded with different ones).
    """
    parse_sandbox_spec(raw, source)  # a bad block fails here, with exit 2, before anything starts
    directory = state_dir()
    key = _spec_key(raw, strict_requested())
    state_path = directory / f"{key}.json"
    principals_path = directory / f"{key}.principals.json"
    with _locked(directory / f"{key}.lock"):
        state = _read_state(state_path)
        if state is not None and _alive(state):
            if least_privilege is not None and state.get("principals_digest") != least_privilege.digest():
                return _reseed(state, state_path, principals_path, least_privilege)
            return _connection(state)
        state_path.unlink(missing_ok=True)
        spec_path = directory / f"{key}.spec.json"
        spec_path.write_text(json.dumps(raw, default=str))
        command = [sys.executable, "-m", "orgalerts.sandbox.daemon", str(spec_path), str(state_path), source]
        if least_privilege is not None:
            _write_private(principals_path, json.dumps(least_privilege.to_json()))
            command.append(str(principals_path))
        log_path = directory / f"{key}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # outlives this command, not killed by its Ctrl-C
            )
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = process.stdout.readline().decode().strip() if ready else ""
        process.stdout.close()
        if line != "READY":
            with contextlib.suppress(OSError):
                process.kill()
            raise SandboxStartError(f"the sandbox did not start; see {log_path}")
        state = _read_state(state_path)
        if state is None:
            raise SandboxStartError(f"the sandbox started but wrote no state; see {log_path}")
        return _connection(state)


def stop(raw: Mapping[str, Any], source: str) -> bool:
    """Stop the sandbox for this spec (strict or not). True when one was running."""
    parse_sandbox_spec(raw, source)
    stopped = [_stop_key(state_dir(), _spec_key(raw, strict)) for strict in (True, False)]
    return any(stopped)


def _stop_key(directory: Path, key: str) -> bool:
    state_path = directory / f"{key}.json"
    with _locked(directory / f"{key}.lock"):
        state = _read_state(state_path)
        state_path.unlink(missing_ok=True)
        if state is None or not _alive(state):
            return False
        pid = int(state["pid"])
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _gone(pid):
            time.sleep(0.05)
        return True


def _gone(pid: int) -> bool:
    # When this process started the server (tests do), the exited server is our zombie until reaped.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False
