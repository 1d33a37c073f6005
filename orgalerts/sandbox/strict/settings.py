"""The knobs of strict mode, with injectable time and randomness (tests never sleep).

Owns: `StrictSettings`. Defaults follow AWS: a deleted queue's name is reusable after 60 s; a short
poll returns nothing 30% of the time while messages remain; EnablePolicyType settles after two reads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class StrictSettings:
    authorize: bool = True
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    queue_reuse_seconds: float = 60.0
    empty_short_poll_probability: float = 0.3
    policy_type_pending_reads: int = 2
    max_scps_per_target: int = 5
    # Load every AWS-managed policy at start (~8-10 s); otherwise each is loaded on first reference.
    load_all_managed_policies: bool = False
