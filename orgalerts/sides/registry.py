"""The sides orgalerts manages, in the order a run converges them.

Owns: the one list of sides. The engine runs them from here and `orgalerts permissions` merges their
required actions from here, so a new side is registered once.
"""

from __future__ import annotations

from orgalerts.sides.base import Side, Where
from orgalerts.sides.central import CENTRAL
from orgalerts.sides.guardrail import GUARDRAIL
from orgalerts.sides.identity_center import IDENTITY_CENTER
from orgalerts.sides.member import MEMBER
from orgalerts.sides.org_watch import ORG_WATCH
from orgalerts.sides.trail import TRAIL_SIDE

# Central first (members point at it), then the management account's sides, then members.
SIDES: tuple[Side, ...] = (CENTRAL, ORG_WATCH, IDENTITY_CENTER, TRAIL_SIDE, GUARDRAIL, MEMBER)


def sides_at(where: Where) -> tuple[Side, ...]:
    return tuple(side for side in SIDES if side.where is where)
