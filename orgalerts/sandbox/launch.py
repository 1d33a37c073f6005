"""Keeping the sandbox alive between commands: a background server process per checkout and sandbox spec.

Owns: starting the sandbox in its own process (so that a second `make deploy-org` finds what the first
one deployed), finding it again through a small state file, and stopping it.

The sandbox belongs to its checkout. The checkout is the project directory of the config file: the
nearest directory at or above the config file holding `pyproject.toml` or `.git` (else the config
file's own directory). State lives in `<checkout>/.sandbox/` (git-ignored), or in
`$ORGALERTS_SANDBOX_DIR` when set; the state key includes the checkout's absolute path, so even a
shared `ORGALERTS_SANDBOX_DIR` never mixes two checkouts. The state records the owner (checkout,
python, pid) and the code version (a digest of this package's sources, its location, the Python
environment and moto's version): a command never attaches to a server of another checkout or of
another code version; it stops that one and starts its own ("restarted").

Each checkout gets a stable port: the last one its server bound (`<key>.port`), else one derived
from the checkout path and key in 21000-31999 (below the usual ephemeral range), else any free port;
so an exported `AWS_ENDPOINT_URL` keeps working across restarts. The server stops itself after
`$ORGALERTS_SANDBOX_IDLE_SECONDS` (default 7200, 0 = never) without a request (daemon.py). It binds
127.0.0.1 only and holds everything in memory; `orgalerts sandbox --stop` ends it.

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
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from orgalerts.errors import OrgAlertsError
from orgalerts.sandbox.least_privilege import LeastPrivilege, strict_requested
from orgalerts.sandbox.spec import parse_sandbox_spec

START_TIMEOUT_SECONDS = 60.0
RESEED_TIMEOUT_SECONDS = 30.0
DIR_ENV = "ORGALERTS_SANDBOX_DIR"
IDLE_ENV = "ORGALERTS_SANDBOX_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 7200.0
STATE_DIR_NAME = ".sandbox"
PORT_RANGE = (21000, 32000)  # below Linux's ephemeral range (32768-60999) and the IANA one (49152-65535)
PING_PATH = "/__orgalerts/sandbox"  # answered by the daemon itself (who it is), and counted as activity


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
    # Who owns it and where it keeps its state.
    owner: str = ""
    state_dir: str = ""
    python: str = ""
    pid: int = 0
    idle_seconds: float | None = None
    started: bool = False  # this command started it (else: attached to a running one)
    restarted_because: str | None = None  # it replaced a server of another code version, and why

    @property
    def tool_keys(self) -> tuple[str, str]:
        """The keys orgalerts runs with: the orchestrator's when seeded, else the root user's."""
        if self.orchestrator_access_key_id and self.orchestrator_secret_access_key:
            return self.orchestrator_access_key_id, self.orchestrator_secret_access_key
        return self.access_key_id, self.secret_access_key

    def env(self) -> dict[str, str]:
        """The environment that points the AWS CLI or boto3 at the sandbox (as its root user)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def idle_text(self) -> str:
        if not self.idle_seconds:
            return f"it never stops by itself ({IDLE_ENV}=0)"
        return f"it stops itself after {_duration(self.idle_seconds)} without a request ({IDLE_ENV})"

    def attached_line(self) -> str:
        """One line for a command that attached to a running sandbox (the full banner is printed at start)."""
        return (
            f"SANDBOX: simulated organization at {self.endpoint_url} - no AWS account is touched "
            f"(checkout {self.owner}; `orgalerts sandbox` shows it)"
        )

    def instructions(self) -> str:
        lines = ["# The sandbox keeps running in the background. Point the AWS CLI or boto3 at it:"]
        lines += [f"export {name}={value}" for name, value in self.env().items()]
        lines += [
            f"# These keys act as the management account {self.management_account_id}. To act in a member",
            "# account, assume its OrganizationAccountAccessRole, for example:",
            "#   aws sts assume-role --role-arn arn:aws:iam::333333333301:role/OrganizationAccountAccessRole \\",
            "#       --role-session-name me",
            "# then make an IAM change with those credentials (aws iam create-user --user-name bob) while",
            "# `orgalerts watch` (another terminal) prints the alerts as recipients receive them.",
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
        lines += [
            f"# Owned by the checkout {self.owner} (server pid {self.pid}, python {self.python});",
            f"# its state is in {self.state_dir}. Other checkouts get their own sandbox.",
            "# The endpoint stays the same when this checkout's sandbox restarts;",
            f"# {self.idle_text()}.",
            "# Stop it with: orgalerts sandbox --stop",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "env": self.env(),
            "management_account_id": self.management_account_id,
            "strict": self.strict,
            "orchestrator_access_key_id": self.orchestrator_access_key_id,
            "member_role_name": self.member_role_name,
            "owner": {"checkout": self.owner, "python": self.python, "pid": self.pid},
            "state_dir": self.state_dir,
            "idle_stop_seconds": self.idle_seconds or None,
            "started": self.started,
            "restarted_because": self.restarted_because,
        }


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def checkout_of(source: str) -> Path:
    """The checkout a config file belongs to: the nearest directory at or above it with pyproject.toml or .git."""
    config_dir = Path(source).resolve().parent
    for directory in (config_dir, *config_dir.parents):
        if (directory / "pyproject.toml").exists() or (directory / ".git").exists():
            return directory
    return config_dir


def state_dir(owner: Path) -> Path:
    configured = os.environ.get(DIR_ENV)
    base = Path(configured) if configured else owner / STATE_DIR_NAME
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxStartError(
            f"cannot create the sandbox state directory {base}: {exc.strerror}; set {DIR_ENV} to a writable directory"
        ) from None
    if not configured:
        with contextlib.suppress(OSError):  # `git status` stays clean even without a .gitignore entry
            (base / ".gitignore").write_text("*\n")
    return base


def idle_seconds() -> float:
    """$ORGALERTS_SANDBOX_IDLE_SECONDS, else 2 h; 0 means never."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise SandboxStartError(f"{IDLE_ENV}={raw!r}: expected a number of seconds (0: never stop)") from None
    if value < 0:
        raise SandboxStartError(f"{IDLE_ENV}={raw!r}: expected a number of seconds (0: never stop)")
    return value


def code_version() -> str:
    """What a running server must share with this command to be attached to: sources, location, environment."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        digest.update(path.read_bytes())
    digest.update(str(package).encode() + b"\0" + sys.prefix.encode() + b"\0")
    with contextlib.suppress(metadata.PackageNotFoundError):
        digest.update(metadata.version("moto").encode())
    return digest.hexdigest()[:16]


def _spec_key(raw: Mapping[str, Any], strict: bool, owner: Path) -> str:
    text = json.dumps(raw, sort_keys=True, default=str) + "\0" + str(owner)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return digest if strict else f"{digest}-lax"


def preferred_port(owner: Path, key: str) -> int:
    """The port derived from the checkout and key: the same on every restart."""
    number = int(hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()[:8], 16)
    low, high = PORT_RANGE
    return low + number % (high - low)


def _remembered_port(path: Path) -> int | None:
    try:
        port = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 1024 <= port <= 65535 else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two commands started together must not both launch a server (and the daemon takes it to stop when idle).
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ping(port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    """Who serves on 127.0.0.1:port (pid, owner, code version), if it is a sandbox daemon; counts as activity."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", PING_PATH)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        answer: dict[str, Any] = json.loads(body)
        return answer
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _alive(state: dict[str, Any]) -> bool:
    try:
        pid, port = int(state["pid"]), int(state["port"])
        os.kill(pid, 0)
    except (OSError, KeyError, ValueError):
        return False
    answer = ping(port)
    return answer is not None and answer.get("pid") == pid


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


def _connection(state: dict[str, Any], *, started: bool = False, restarted_because: str | None = None) -> Connection:
    idle = state.get("idle_seconds")
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
        owner=str(state.get("owner", "")),
        state_dir=str(state.get("state_dir", "")),
        python=str(state.get("python", "")),
        pid=int(state.get("pid", 0)),
        idle_seconds=float(idle) if idle else None,
        started=started,
        restarted_because=restarted_because,
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


def _mismatch(state: dict[str, Any], owner: Path, version: str) -> str | None:
    """Why a running server is not this command's to attach to (None: it is)."""
    if state.get("owner") != str(owner):
        return f"it belonged to {state.get('owner') or 'an unknown checkout'}, not {owner}"
    if state.get("code_version") != version:
        return (
            f"it ran another version of the code (python {state.get('python') or 'unknown'}); "
            "the simulated organization starts anew"
        )
    return None


@dataclass(frozen=True)
class _Paths:
    owner: Path
    directory: Path
    key: str

    def file(self, suffix: str) -> Path:
        return self.directory / f"{self.key}{suffix}"


def _paths(raw: Mapping[str, Any], source: str, strict: bool) -> _Paths:
    owner = checkout_of(source)
    return _Paths(owner, state_dir(owner), _spec_key(raw, strict, owner))


def connect(raw: Mapping[str, Any], source: str, least_privilege: LeastPrivilege | None = None) -> Connection:
    """The running sandbox of this checkout and spec, started in the background if it is not running.

    With `least_privilege`, the sandbox holds exactly those principals when this returns (seeded at
    start, or re-seeded if the running server was seeded with different ones).
    """
    parse_sandbox_spec(raw, source)  # a bad block fails here, with exit 2, before anything starts
    idle = idle_seconds()
    paths = _paths(raw, source, strict_requested())
    version = code_version()
    state_path = paths.file(".json")
    principals_path = paths.file(".principals.json")
    restarted_because: str | None = None
    with _locked(paths.file(".lock")):
        state = _read_state(state_path)
        if state is not None and _alive(state):
            restarted_because = _mismatch(state, paths.owner, version)
            if restarted_because is None:
                if least_privilege is not None and state.get("principals_digest") != least_privilege.digest():
                    return _reseed(state, state_path, principals_path, least_privilege)
                return _connection(state)
            _terminate(int(state["pid"]))
        state_path.unlink(missing_ok=True)
        paths.file(".spec.json").write_text(json.dumps(raw, default=str))
        meta = {
            "owner": str(paths.owner),
            "state_dir": str(paths.directory),
            "python": sys.executable,
            "code_version": version,
            "idle_seconds": idle,
        }
        state = _spawn(paths, source, meta, least_privilege)
        with contextlib.suppress(OSError):
            paths.file(".port").write_text(f"{int(state['port'])}\n")
        return _connection(state, started=True, restarted_because=restarted_because)


def _spawn(paths: _Paths, source: str, meta: dict[str, Any], least_privilege: LeastPrivilege | None) -> dict[str, Any]:
    """Start the daemon on this checkout's port (remembered, else derived, else free); its state once READY."""
    spec_path = paths.file(".spec.json")
    state_path = paths.file(".json")
    principals_path = paths.file(".principals.json")
    port_path = paths.file(".port")
    ports = [p for p in (_remembered_port(port_path), preferred_port(paths.owner, paths.key)) if p]
    command = [sys.executable, "-m", "orgalerts.sandbox.daemon", str(spec_path), str(state_path), source]
    command += ["--meta", json.dumps(meta)]
    for port in dict.fromkeys(ports):
        command += ["--port", str(port)]
    if least_privilege is not None:
        _write_private(principals_path, json.dumps(least_privilege.to_json()))
        command += ["--principals", str(principals_path)]
    log_path = paths.file(".log")
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
    return state


def stop(raw: Mapping[str, Any], source: str) -> bool:
    """Stop this checkout's sandbox for this spec (strict or not). True when one was running."""
    parse_sandbox_spec(raw, source)
    stopped = [_stop_key(_paths(raw, source, strict)) for strict in (True, False)]
    return any(stopped)


def _stop_key(paths: _Paths) -> bool:
    state_path = paths.file(".json")
    with _locked(paths.file(".lock")):
        state = _read_state(state_path)
        state_path.unlink(missing_ok=True)
        if state is None or not _alive(state):
            return False
        _terminate(int(state["pid"]))
        return True


def _terminate(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _gone(pid):
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    # When this process started the server (tests do), the exited server is our zombie until reaped.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False
