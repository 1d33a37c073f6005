"""The sandbox server process: `python -m orgalerts.sandbox.daemon SPEC_JSON STATE_JSON SOURCE [PRINCIPALS_JSON]`.

Owns: running one `Sandbox` until SIGTERM, writing its connection facts to the state file and saying
`READY` on stdout once the organization is seeded (launch.py waits for that line). Strict mode is on
unless `ORGALERTS_SANDBOX_STRICT` says otherwise (read once, at start). With PRINCIPALS_JSON (a
`LeastPrivilege`), the least-privilege principals are seeded; on SIGHUP that file is read again, the
principals are re-seeded (idempotently: inline policies overwritten, access key kept) and the state
file is rewritten with the new digest (launch.py waits for it).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from orgalerts.sandbox.least_privilege import LeastPrivilege, strict_requested
from orgalerts.sandbox.server import Sandbox
from orgalerts.sandbox.spec import parse_sandbox_spec

log = logging.getLogger("orgalerts.sandbox")


def _least_privilege(path: Path | None) -> LeastPrivilege | None:
    return None if path is None else LeastPrivilege.from_json(json.loads(path.read_text()))


def _write_state(sandbox: Sandbox, state_path: Path, **extra: object) -> None:
    port = int(sandbox.endpoint_url.rsplit(":", 1)[1])
    state = {
        "pid": os.getpid(),
        "port": port,
        "banner": sandbox.banner() + "\n  It keeps running in the background; stop it with `orgalerts sandbox --stop`.",
        **sandbox.describe(),
        **extra,
    }
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.chmod(tmp, 0o600)  # it holds access keys
    tmp.replace(state_path)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="orgalerts sandbox: %(levelname)s: %(message)s")
    spec_path, state_path, source = argv[1], Path(argv[2]), argv[3]
    principals_path = Path(argv[4]) if len(argv) > 4 else None
    spec = parse_sandbox_spec(json.loads(Path(spec_path).read_text()), source)
    # Plain flags, not threading.Event: Event.set() from a signal handler can deadlock on the lock
    # the interrupted main thread holds inside Event.wait().
    stopping: list[bool] = []
    reseed: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGHUP, lambda *_: reseed.append(True))
    with Sandbox(spec, strict=strict_requested(), least_privilege=_least_privilege(principals_path)) as sandbox:
        _write_state(sandbox, state_path)
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        sys.stdout.close()
        while not stopping:
            if reseed:
                reseed.clear()
                try:
                    least_privilege = _least_privilege(principals_path)
                    if least_privilege is not None:
                        sandbox.seed_principals(least_privilege)
                    _write_state(sandbox, state_path)
                except Exception as exc:  # keep serving; launch.py reports the failure
                    log.exception("re-seeding the least-privilege principals failed")
                    _write_state(sandbox, state_path, principals_error=f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
