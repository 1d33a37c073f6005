"""The sandbox server process: `python -m orgalerts.sandbox.daemon SPEC_JSON STATE_JSON SOURCE [options]`.

Options: `--meta JSON` (owner facts launch.py wants recorded: checkout, state dir, python, code
version, idle_seconds), `--port N` (repeatable: ports to try in order before any free port),
`--principals PRINCIPALS_JSON`.

Owns: running one `Sandbox` until SIGTERM or until it has been idle for `idle_seconds` (no request;
0 = never), writing its connection facts to the state file and saying `READY` on stdout once the
organization is seeded (launch.py waits for that line). Every request counts as activity; `GET
/__orgalerts/sandbox` is answered here with who this server is (pid, owner, code version), which is
how launch.py tells this server from anything else on the port. Before an idle stop the daemon takes
the state's lock (so no command is attaching at that moment), removes its state file and exits.

Strict mode is on unless `ORGALERTS_SANDBOX_STRICT` says otherwise (read once, at start). With
--principals (a `LeastPrivilege`), the least-privilege principals are seeded; on SIGHUP that file is
read again, the principals are re-seeded (idempotently: inline policies overwritten, access key kept)
and the state file is rewritten with the new digest (launch.py waits for it).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from orgalerts.sandbox.least_privilege import LeastPrivilege, strict_requested
from orgalerts.sandbox.server import Sandbox
from orgalerts.sandbox.spec import SandboxSpec, parse_sandbox_spec

log = logging.getLogger("orgalerts.sandbox")

PING_PATH = "/__orgalerts/sandbox"  # = launch.PING_PATH (launch never imports this module: it loads moto)
LOOP_SECONDS = 0.05


class IdleWatch:
    """When the last request arrived, on an injectable clock; expired after `limit` seconds without one."""

    def __init__(self, limit: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit if limit else None  # 0 / None: never idle
        self.clock = clock
        self._lock = threading.Lock()
        self.last = clock()

    def touch(self) -> None:
        with self._lock:
            self.last = self.clock()

    def expired(self) -> bool:
        with self._lock:
            return self.limit is not None and self.clock() - self.last >= self.limit


class ActivityMiddleware:
    """WSGI: every request touches the IdleWatch; the ping path is answered with `identity`."""

    def __init__(self, app: Any, watch: IdleWatch, identity: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.watch = watch
        self.identity = identity

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.watch.touch()
        if environ.get("PATH_INFO") == PING_PATH:
            body = json.dumps(self.identity()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def serve(
    watch: IdleWatch,
    stopping: list[bool],
    reseed: list[bool],
    on_reseed: Callable[[], None],
    may_stop_idle: Callable[[], bool],
    wait: Callable[[float], None] = time.sleep,
) -> str:
    """The daemon's loop: returns "stopped" (SIGTERM/SIGINT) or "idle" (idle, and `may_stop_idle` agreed)."""
    while not stopping:
        if reseed:
            reseed.clear()
            on_reseed()
        if watch.expired() and may_stop_idle():
            return "idle"
        wait(LOOP_SECONDS)
    return "stopped"


def _least_privilege(path: Path | None) -> LeastPrivilege | None:
    return None if path is None else LeastPrivilege.from_json(json.loads(path.read_text()))


def _write_state(sandbox: Sandbox, state_path: Path, meta: dict[str, Any], **extra: object) -> None:
    port = int(sandbox.endpoint_url.rsplit(":", 1)[1])
    idle = meta.get("idle_seconds")
    how_long = f"after {float(idle) / 3600:g} h without a request" if idle else "never by itself"
    banner = sandbox.banner() + (
        f"\n  owner        checkout {meta.get('owner', '?')}; state in {meta.get('state_dir', '?')}"
        f"\n  It keeps running in the background and stops {how_long};"
        "\n  stop it now with `orgalerts sandbox --stop`."
    )
    state = {"pid": os.getpid(), "port": port, "banner": banner, **meta, **sandbox.describe(), **extra}
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.chmod(tmp, 0o600)  # it holds access keys
    tmp.replace(state_path)


def _start(spec: SandboxSpec, ports: list[int], least_privilege: LeastPrivilege | None) -> Sandbox:
    """A started Sandbox on the first of `ports` that is free, else on any free port."""
    for port in [p for p in ports if _free(p)] + [0]:
        sandbox = Sandbox(spec, strict=strict_requested(), least_privilege=least_privilege)
        # Sandbox has no port parameter; its server takes one (0: any free port).
        sandbox._server._port = port
        try:
            sandbox.start()
        except (OSError, SystemExit) as exc:  # werkzeug exits (SystemExit) when the port is in use
            if port == 0:
                raise
            log.warning("port %d could not be bound (%s); trying the next one", port, exc)
            continue
        return sandbox
    raise AssertionError("unreachable: port 0 either binds or raises")


def _free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound now (as the server binds it: address reuse on)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _instrument(sandbox: Sandbox, watch: IdleWatch, identity: Callable[[], dict[str, Any]]) -> None:
    """Count every request as activity (the outermost WSGI layer of the running server)."""
    wsgi_server = sandbox._server._server
    assert wsgi_server is not None
    wsgi_server.app = ActivityMiddleware(wsgi_server.app, watch, identity)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orgalerts.sandbox.daemon")
    parser.add_argument("spec")
    parser.add_argument("state")
    parser.add_argument("source")
    parser.add_argument("--meta", default="{}")
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument("--principals", default=None)
    return parser.parse_args(argv[1:])


def _idle_stopper(state_path: Path, watch: IdleWatch) -> Callable[[], bool]:
    """`may_stop_idle` for serve(): takes the state's lock (none when a command is attaching right now), checks
    the idle time again under it, removes this server's state file; the lock is then held until the exit."""
    lock_path = state_path.with_suffix(".lock")
    held: list[Any] = []

    def may_stop_idle() -> bool:
        handle = open(lock_path, "a")  # noqa: SIM115 (kept open on purpose: it holds the lock)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False  # a command is attaching right now: it will make a request
        if not watch.expired():
            handle.close()  # releases the lock
            return False
        if _state_pid(state_path) == os.getpid():
            state_path.unlink(missing_ok=True)
        held.append(handle)
        return True

    return may_stop_idle


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="orgalerts sandbox: %(levelname)s: %(message)s")
    args = _arguments(argv)
    state_path = Path(args.state)
    principals_path = Path(args.principals) if args.principals else None
    meta: dict[str, Any] = json.loads(args.meta)
    spec = parse_sandbox_spec(json.loads(Path(args.spec).read_text()), args.source)
    # Plain flags, not threading.Event: Event.set() from a signal handler can deadlock on the lock
    # the interrupted main thread holds inside Event.wait().
    stopping: list[bool] = []
    reseed: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGHUP, lambda *_: reseed.append(True))
    watch = IdleWatch(float(meta.get("idle_seconds") or 0))
    identity = {"pid": os.getpid(), "owner": meta.get("owner"), "code_version": meta.get("code_version")}
    sandbox = _start(spec, args.port, _least_privilege(principals_path))
    try:
        _instrument(sandbox, watch, lambda: identity)
        _write_state(sandbox, state_path, meta)
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        sys.stdout.close()

        def on_reseed() -> None:
            try:
                least_privilege = _least_privilege(principals_path)
                if least_privilege is not None:
                    sandbox.seed_principals(least_privilege)
                _write_state(sandbox, state_path, meta)
            except Exception as exc:  # keep serving; launch.py reports the failure
                log.exception("re-seeding the least-privilege principals failed")
                _write_state(sandbox, state_path, meta, principals_error=f"{type(exc).__name__}: {exc}")

        may_stop_idle = _idle_stopper(state_path, watch)
        if serve(watch, stopping, reseed, on_reseed, may_stop_idle) == "idle":
            log.warning("no request for %g s (%s): stopping", watch.limit or 0, "ORGALERTS_SANDBOX_IDLE_SECONDS")
    finally:
        sandbox.stop()
    return 0


def _state_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
