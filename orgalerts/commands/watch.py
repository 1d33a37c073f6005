"""`orgalerts watch`: print the alerts as recipients receive them, until Ctrl-C or `--seconds`.

Owns: a temporary queue on the alert topic (TopicListener) read in a loop, each alert printed to
stdout as it arrives; clock and sleep are injectable so tests never sleep. Useful with the sandbox
(make IAM changes with the AWS CLI pointed at it and watch them arrive) and against AWS alike.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TextIO

from orgalerts.commands.listener import temporary_queue_grant
from orgalerts.commands.verify import topic_listener
from orgalerts.engine.context import Context
from orgalerts.sides.base import Grant

# The listener's, on watch's own temporary queues (named below).
REQUIRED_ACTIONS: tuple[Grant, ...] = (temporary_queue_grant("watch"),)


def run_watch(
    ctx: Context,
    out: TextIO,
    *,
    seconds: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_interval: float = 1.0,
) -> int:
    """Print alerts until Ctrl-C (the documented way to stop: not an error) or `seconds` passed; returns how
    many arrived. The temporary queue and subscription are removed either way; NothingDeployedError when
    the alert topic does not exist."""
    name = f"{ctx.names.prefix}watch-{uuid.uuid4().hex[:10]}"
    deadline = None if seconds is None else clock() + seconds
    received = 0
    with topic_listener(ctx, name) as listener:  # NothingDeployedError (exit 1) when there is no topic
        try:
            while deadline is None or clock() < deadline:
                bodies = listener.receive()
                for body in bodies:
                    received += 1
                    out.write(body.rstrip() + "\n\n")
                    out.flush()
                if not bodies:
                    sleep(poll_interval)
        except KeyboardInterrupt:
            pass
    return received
