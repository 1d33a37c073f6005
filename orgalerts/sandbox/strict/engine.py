"""The strict rules in order, for one request: what the WSGI middleware and the send hook both run.

Owns: `StrictEngine`. `before(call)` returns a `Refusal` (answer with that error), a `Reply` (answer
this instead of asking moto, e.g. an empty short poll) or None (let moto answer); `after` may rewrite
moto's successful answer (HTTP only). Order: authorization and AssumeRole trust first (AWS
authorizes before it validates), then the per-service rules.
"""

from __future__ import annotations

import logging

from orgalerts.sandbox.strict import eventbridge, managed_policies
from orgalerts.sandbox.strict.authorize import authorize
from orgalerts.sandbox.strict.organizations import OrganizationsRules
from orgalerts.sandbox.strict.replies import Refusal, Reply
from orgalerts.sandbox.strict.request import StrictCall
from orgalerts.sandbox.strict.settings import StrictSettings
from orgalerts.sandbox.strict.sqs import SqsRules

log = logging.getLogger(__name__)


class StrictEngine:
    def __init__(self, settings: StrictSettings | None = None) -> None:
        self.settings = settings or StrictSettings()
        self.sqs = SqsRules(self.settings)
        self.organizations = OrganizationsRules(self.settings)

    def before(self, call: StrictCall) -> Refusal | Reply | None:
        managed_policies.before(call)
        if self.settings.authorize:
            refusal = authorize(call)
            if refusal is not None:
                log.info("strict sandbox refused %s:%s: %s", call.service, call.operation, refusal.message)
                return refusal
        outcome: Refusal | Reply | None = eventbridge.check(call)
        if outcome is None:
            outcome = self.sqs.before(call)
        if outcome is None:
            outcome = self.organizations.before(call)
        return outcome

    def after(self, call: StrictCall, status: int, body: bytes) -> bytes:
        return self.organizations.after(call, status, body)
