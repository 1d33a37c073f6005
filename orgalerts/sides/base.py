"""The one shape every resource group has, and the writer loop they share.

Owns: `Side` (a resource group: where it lives, its kinds in apply order, desired state, the reader, the
writer, how drift words its changes, the IAM actions it needs), `Clients` (the clients a side's reads
and writes use), `Writer` (one dispatch table from (action, kind) to a write, the eventual-consistency
retries on explicit error codes with an injectable wait, partial failures AWS reports without raising),
and `Prerequisite` (an organization setting a side's changes need first).

A side never runs itself: the engine's runner picks the account and credentials (`where`), builds the
clients, calls `read` and `desired`, diffs them with `kinds`, and hands the plan to `writer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import tenacity

from orgalerts.aws import ClientError, error_code
from orgalerts.config import Config
from orgalerts.model.plan import Change, Kind, Plan
from orgalerts.model.resources import Resource
from orgalerts.model.scope import Scope
from orgalerts.sides.cloudformation import Form

log = logging.getLogger(__name__)


class Where(Enum):
    """Which account a side lives in, and with whose credentials it is read and written."""

    MEMBER = "member"  # each in-scope account, through the member role
    CENTRAL = "central"  # the notification account, through the member role
    MANAGEMENT = "management"  # the management account, with the orchestrator's own credentials


SERVICES = ("iam", "events", "sns", "sqs", "s3", "cloudtrail", "organizations")


@dataclass
class Clients:
    """The clients one side uses, all bound to one account and the side's region; unused ones stay None."""

    iam: Any = None
    events: Any = None
    sns: Any = None
    sqs: Any = None
    s3: Any = None
    cloudtrail: Any = None
    organizations: Any = None


@dataclass(frozen=True)
class Prerequisite:
    """An organization setting the planned changes need (done by deploy, listed by plan, never undone)."""

    text: str
    run: Callable[[], Any]


# Codes AWS returns while a just-created IAM role or policy has not propagated yet. Never AccessDenied.
EVENTUAL_CONSISTENCY_CODES = {"InvalidParameterValue", "MalformedPolicyDocument", "ValidationException"}


def eventually_consistent(exc: BaseException) -> bool:
    return (
        isinstance(exc, ClientError)
        and error_code(exc) in EVENTUAL_CONSISTENCY_CODES
        and ("role" in str(exc).lower() or "principal" in str(exc).lower())
    )


def _always(config: Config) -> bool:
    return True


@dataclass(frozen=True)
class Grant:
    """IAM permissions one principal needs for some calls, declared next to those calls.

    `principal`: "orchestrator" (the management account's credentials), "member" (the member role in every
    in-scope account) or "notification" (the member role in the notification account, additionally).
    `sid` says what the statement allows; grants with the same principal and Sid merge into one statement.
    `resources(config)`: the ARNs orgalerts names (built with `orgalerts.model.addresses`), or ["*"] only
    for actions that have no resource type in the Service Authorization Reference. `when(config)`: whether
    this configuration uses the grant (`orgalerts permissions` leaves it out otherwise).
    """

    principal: str
    sid: str
    actions: tuple[str, ...]
    resources: Callable[[Config], list[str]]
    when: Callable[[Config], bool] = _always
    condition: dict[str, dict[str, str]] | None = None


def everywhere(config: Config) -> list[str]:
    """For actions without a resource type: IAM only accepts "*" for them."""
    return ["*"]


class PartialFailure(Exception):
    """AWS accepted the call but reported a failed entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


Handler = Callable[[Change], bool | None]  # returns False when a delete deliberately kept the resource
Sleep = Callable[[float], None]
# 8 attempts with exponential waits capped at 20 s span about 71 s: enough for IAM propagation and for the
# 60 s during which SQS refuses to reuse a deleted queue's name (QueueDeletedRecently).
RETRY_ATTEMPTS = 8


class Writer:
    """Applies one side's changes in one account. Subclasses fill `handlers`: (action, kind) -> write.

    `wait` is tenacity's wait strategy (tests pass wait_none()); `retry_codes` adds side-specific codes
    that mean "not consistent yet, try again" to the IAM propagation ones.
    """

    retry_codes: frozenset[str] = frozenset()

    def __init__(
        self, clients: Clients, *, wait: Any = None, sleep: Sleep = time.sleep, attempts: int = RETRY_ATTEMPTS
    ) -> None:
        self.clients = clients
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.kept: list[str] = []  # notes on what a delete deliberately left in place
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception(self._retryable),
            wait=wait if wait is not None else tenacity.wait_exponential(multiplier=1, max=20),
            stop=tenacity.stop_after_attempt(attempts),
            sleep=sleep,
            before_sleep=self._say_why,
            reraise=True,
        )

    @staticmethod
    def _say_why(state: tenacity.RetryCallState) -> None:
        """A wait of a minute (a queue name AWS holds back) must not look like a hang."""
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0
        if exc is not None and wait >= 5:
            log.info("waiting %.0fs before retrying (%s)", wait, error_code(exc))

    def _retryable(self, exc: BaseException) -> bool:
        return eventually_consistent(exc) or error_code(exc) in self.retry_codes

    def apply(self, changes: Sequence[Change], on_done: Callable[[Change], None] | None = None) -> None:
        for change in changes:
            done = self._retry(self.handlers[(change.action, change.kind)], change)
            if done is not False and on_done is not None:
                on_done(change)


def raise_failed_entries(result: dict[str, Any], default_code: str) -> None:
    """PutTargets / RemoveTargets answer 200 with FailedEntryCount when an entry failed."""
    if result.get("FailedEntryCount"):
        entry = result.get("FailedEntries", [{}])[0]
        raise PartialFailure(str(entry.get("ErrorCode", default_code)), str(entry.get("ErrorMessage", "")))


class Side:
    """A resource group. Subclasses set the class attributes and override what differs."""

    name: str = ""
    where: Where = Where.MEMBER
    kinds: tuple[Kind, ...] = ()
    services: tuple[str, ...] = ()
    # The clients `left_in_region` uses (empty: all of `services`): the look in every other region builds only
    # these, and the rest only where something was found.
    look_services: tuple[str, ...] = ()
    # IAM permissions by principal ("orchestrator", "member", "notification"), merged by `orgalerts permissions`.
    required_actions: tuple[Grant, ...] = ()
    # What drift says about an account where none of this side's resources exist (None: nothing special).
    not_deployed: str | None = None
    # Organization-wide (a trail, an SCP): `onboard`, which converges one account, leaves it alone.
    organization_wide: bool = False
    # A management side whose feature is off still reads (desired = []) when the caller is the management
    # account, so whatever an earlier config created becomes a removal (plan, drift, deploy, teardown).
    reads_when_off: bool = False
    # The CloudFormation form of each of `kinds` (by kind name): `orgalerts export cloudformation` writes the
    # desired state through these; tests/test_export.py fails for a kind without one.
    cloudformation: Mapping[str, Form] = {}

    def region(self, config: Config) -> str:
        return config.region

    def home_account(self, config: Config, scope: Scope) -> str:
        """The account a MANAGEMENT side lives in: the management account, unless the side says otherwise
        (Identity Center may live in a delegated administrator account)."""
        return scope.management_account_id

    def enabled(self, config: Config, removing: bool) -> bool:
        """Whether the side runs at all (a feature switched off makes no call)."""
        return True

    def blocked(self, config: Config, scope: Scope, caller: str) -> tuple[str, str] | None:
        """("failed" | "skipped", why) when the side cannot run with these credentials; None to run."""
        return None

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        raise NotImplementedError

    def desired_in_template(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        """The desired state `orgalerts export cloudformation` writes: `desired`, unless the side holds values a
        template must not (secrets: they become the template's parameters and are not read here)."""
        return self.desired(config, scope, account_id)

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        """Live state. `everything`: also what a switched-off feature may have left (removal, orphans)."""
        raise NotImplementedError

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        raise NotImplementedError

    def other_regions(self, config: Config) -> list[str]:
        """Regions other than `region(config)` where an earlier `region` may have left this side's resources."""
        return []

    def left_in_region(self, clients: Clients, config: Config) -> bool:
        """A cheap look (a call or two) whether anything of this side may be left in `config.region`."""
        return False

    def finding(self, change: Change) -> str:
        return change.finding

    def notes(self, config: Config, scope: Scope, live: list[Resource], desired: list[Resource]) -> list[str]:
        """Facts to report that are not changes (e.g. a subscription awaiting confirmation)."""
        return []

    def prerequisites(self, clients: Clients, plan: Plan, sleep: Sleep) -> list[Prerequisite]:
        return []

    def service_region(self, service: str, config: Config) -> str:
        # Organizations is global: its one endpoint answers in us-east-1.
        return "us-east-1" if service == "organizations" else self.region(config)
