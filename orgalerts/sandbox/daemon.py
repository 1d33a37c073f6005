"""The sandbox server process: `python -m orgalerts.sandbox.daemon SPEC_JSON STATE_JSON SOURCE`.

Owns: running one `Sandbox` until SIGTERM, writing its connection facts to the state file and saying
`READY` on stdout once the organization is seeded (launch.py waits for that line).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from orgalerts.sandbox.server import Sandbox
from orgalerts.sandbox.spec import parse_sandbox_spec


def main(argv: list[str]) -> int:
    spec_path, state_path, source = argv[1], Path(argv[2]), argv[3]
    spec = parse_sandbox_spec(json.loads(Path(spec_path).read_text()), source)
    # A plain flag, not a threading.Event: Event.set() from a signal handler can deadlock on the lock
    # the interrupted main thread holds inside Event.wait().
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    with Sandbox(spec) as sandbox:
        port = int(sandbox.endpoint_url.rsplit(":", 1)[1])
        state = {
            "pid": os.getpid(),
            "port": port,
            "banner": sandbox.banner()
            + "\n  It keeps running in the background; stop it with `orgalerts sandbox --stop`.",
            **sandbox.describe(),
        }
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(state_path)
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        sys.stdout.close()
        while not stopping:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
