"""The run lock: one writing command at a time, across machines, as a lease in the notification account.

Owns: the lease (one item in the DynamoDB table `<prefix>state`, created on first need with the ownership
tag, on-demand billing), taking it atomically (a conditional PutItem: no item, or an expired lease), renewing
it while the run goes on (a background thread; each renewal is a conditional UpdateItem on our own lease id),
releasing it (a conditional DeleteItem, also on errors and Ctrl-C), describing who holds it, removing a stale
one on request (`orgalerts unlock`), and deleting the table (teardown). The clock is injectable: tests never
wait for a lease to expire.

Why DynamoDB and not an SSM parameter: a lease needs compare-and-set, not only create-if-absent. DynamoDB's
condition expressions apply to PutItem, UpdateItem and DeleteItem alike and are evaluated atomically against
the item as stored, so "take it if absent or expired", "renew it only if it is still mine" and "delete it
only if it is the one shown" are each one call
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html). SSM PutParameter without
Overwrite only creates (ParameterAlreadyExists otherwise,
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html); it has no condition on
the current value, so taking over an expired lease would be delete-then-create, and two runs doing that at
once can both end up believing they hold it.

Expiry compares the writers' clocks: the lease (15 minutes, renewed every 5) tolerates minutes of skew.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.config import Config
from orgalerts.engine.context import Context
from orgalerts.errors import OrgAlertsError
from orgalerts.model.addresses import MEMBER_REGION, table_arn
from orgalerts.model.resources import MANAGED_TAG_KEY, MANAGED_TAG_VALUE, is_managed_tags, managed_tags
from orgalerts.sides.base import Grant

log = logging.getLogger(__name__)

LEASE_SECONDS = 15 * 60
RENEW_EVERY_SECONDS = 5 * 60
LOCK_KEY = "run-lock"
TABLE_WAIT_ATTEMPTS = 120  # DescribeTable polls, 1 s apart: on-demand tables are ACTIVE within seconds

# The commands that write orgalerts' resources, and so take the lock (`drift` only with --repair). Read-only
# commands never do; verify and watch only create and remove their own uniquely named temporary queue,
# subscription and test policy, and touch nothing a writer manages, so they do not either.
WRITING_COMMANDS = frozenset({"deploy", "drift", "onboard", "offboard", "teardown", "redrive"})


def _lock_table(config: Config) -> list[str]:
    return [table_arn(config.region, config.notification.account_id, config.names.state_table)]


# IAM permissions of the lock (merged by `orgalerts permissions`): the member role in the notification account,
# on the one table (resource type table*:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html). CreateTable with
# Tags also needs dynamodb:TagResource (tag-on-create: the reference maps CreateTable to it);
# ListTagsOfResource checks ownership before teardown deletes the table.
LOCK_ACTIONS = (
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable",
    "dynamodb:CreateTable", "dynamodb:TagResource", "dynamodb:ListTagsOfResource", "dynamodb:DeleteTable",
)  # fmt: skip
REQUIRED_ACTIONS: tuple[Grant, ...] = (Grant("notification", "RunLock", LOCK_ACTIONS, _lock_table),)


@dataclass(frozen=True)
class LockInfo:
    """Who holds the lease, as stored in the item."""

    lock_id: str
    holder: str  # the caller's ARN (STS GetCallerIdentity)
    host: str
    pid: int
    command: str
    acquired_at: float  # epoch seconds
    expires_at: float

    def describe(self, now: float) -> str:
        state = "expired" if self.expires_at < now else "expires"
        return (
            f"`{self.command}` by {self.holder} on host {self.host} (pid {self.pid}), since {_iso(self.acquired_at)} "
            f"(lease {state} {_iso(self.expires_at)}; lock id {self.lock_id})"
        )

    @staticmethod
    def from_item(item: dict[str, Any]) -> LockInfo:
        def text(key: str) -> str:
            return str(item.get(key, {}).get("S", "?"))

        def number(key: str) -> float:
            return float(item.get(key, {}).get("N", "0"))

        return LockInfo(
            text("lock_id"), text("holder"), text("host"), int(number("pid")), text("command"),
            number("acquired_at"), number("expires_at"),
        )  # fmt: skip


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LockHeld(OrgAlertsError):
    """Another run holds the lease. Exit code 1; nothing was changed."""

    def __init__(self, info: LockInfo, now: float) -> None:
        self.info = info
        super().__init__(
            f"another orgalerts run holds the run lock: {info.describe(now)}. Nothing was changed. Wait for it to "
            f"finish; if that run is dead, its lease expires by itself, or `orgalerts unlock` removes it now"
        )


class LockError(OrgAlertsError):
    """The lock could not be taken or kept for another reason (permissions, the table)."""


ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
CONDITION_FAILED = "ConditionalCheckFailedException"
NOT_FOUND = "ResourceNotFoundException"
IN_USE = "ResourceInUseException"


class RunLock:
    """The lease of one run. `acquire`, then `renew` now and then (or `held` does both), then `release`."""

    def __init__(
        self,
        ctx: Context,
        command: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lease_seconds: float = LEASE_SECONDS,
        holder: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.command = command
        self.clock = clock
        self.sleep = sleep
        self.lease_seconds = lease_seconds
        self.lock_id = uuid.uuid4().hex
        self._holder = holder
        self.table = ctx.names.state_table
        self.lost = False
        self.acquired = False

    # --- AWS ----------------------------------------------------------------------------------------
    def _db(self) -> Any:
        # A fresh access each time: AssumeRole credentials last an hour, a run may last longer.
        return self.ctx.central_client("dynamodb")

    def holder_arn(self) -> str:
        if self._holder is None:
            sts = self.ctx.management_access().client("sts", MEMBER_REGION)
            self._holder = str(sts.get_caller_identity()["Arn"])
        return self._holder

    def _item(self, now: float) -> dict[str, Any]:
        return {
            "id": {"S": LOCK_KEY},
            "lock_id": {"S": self.lock_id},
            "holder": {"S": self.holder_arn()},
            "host": {"S": socket.gethostname()},
            "pid": {"N": str(os.getpid())},
            "command": {"S": self.command},
            "acquired_at": {"N": f"{now:.3f}"},
            "expires_at": {"N": f"{now + self.lease_seconds:.3f}"},
        }

    # --- the lease ----------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lease, or raise `LockHeld` naming who holds it. Never waits for another run."""
        for _ in range(3):
            now = self.clock()
            try:
                self._db().put_item(
                    TableName=self.table,
                    Item=self._item(now),
                    ConditionExpression="attribute_not_exists(#id) OR #expires < :now",
                    ExpressionAttributeNames={"#id": "id", "#expires": "expires_at"},
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                )
                self.acquired = True
                return
            except ClientError as exc:
                code = error_code(exc)
                if code == NOT_FOUND:
                    self._ensure_table()
                    continue
                if code != CONDITION_FAILED:
                    raise _explained(exc, self.table) from exc
            info = self.holder_info()
            if info is not None:
                raise LockHeld(info, self.clock())
        raise LockError(f"could not take the run lock in table {self.table}: it keeps changing; try again")

    def renew(self) -> bool:
        """Extend our lease; False (and `lost`) when it is no longer ours (taken over after expiry, unlocked)."""
        now = self.clock()
        try:
            self._db().update_item(
                TableName=self.table,
                Key={"id": {"S": LOCK_KEY}},
                UpdateExpression="SET #expires = :expires",
                ConditionExpression="#lock_id = :mine",
                ExpressionAttributeNames={"#expires": "expires_at", "#lock_id": "lock_id"},
                ExpressionAttributeValues={
                    ":expires": {"N": f"{now + self.lease_seconds:.3f}"},
                    ":mine": {"S": self.lock_id},
                },
            )
            return True
        except ClientError as exc:
            if error_code(exc) in (CONDITION_FAILED, NOT_FOUND):
                self.lost = True
                return False
            raise

    def release(self) -> None:
        """Delete our lease (only ours: a lease taken over after expiry stays)."""
        if not self.acquired:
            return
        self.acquired = False
        try:
            self._delete_if(self.lock_id)
        except ClientError as exc:
            if error_code(exc) not in (CONDITION_FAILED, NOT_FOUND):
                log.warning("could not release the run lock (it expires by itself): %s", exc)

    def holder_info(self) -> LockInfo | None:
        """The lease as stored, or None when nobody holds it (no table, no item)."""
        try:
            item = self._db().get_item(TableName=self.table, Key={"id": {"S": LOCK_KEY}}, ConsistentRead=True)
        except ClientError as exc:
            if error_code(exc) == NOT_FOUND:
                return None
            raise _explained(exc, self.table) from exc
        return LockInfo.from_item(item["Item"]) if "Item" in item else None

    def force_unlock(self, expected: LockInfo) -> bool:
        """Delete the lease shown to the user, only if it is still that one; False if it changed meanwhile."""
        try:
            self._delete_if(expected.lock_id)
            return True
        except ClientError as exc:
            if error_code(exc) in (CONDITION_FAILED, NOT_FOUND):
                return False
            raise _explained(exc, self.table) from exc

    def _delete_if(self, lock_id: str) -> None:
        self._db().delete_item(
            TableName=self.table,
            Key={"id": {"S": LOCK_KEY}},
            ConditionExpression="#lock_id = :id",
            ExpressionAttributeNames={"#lock_id": "lock_id"},
            ExpressionAttributeValues={":id": {"S": lock_id}},
        )

    # --- the table ----------------------------------------------------------------------------------
    def _ensure_table(self) -> None:
        """Create the table (on-demand, tagged) if absent and wait until it is ACTIVE; another run creating it at
        the same time is fine (ResourceInUseException), so is one that is being deleted (teardown)."""
        db = self._db()
        for _ in range(TABLE_WAIT_ATTEMPTS):
            try:
                status = db.describe_table(TableName=self.table)["Table"]["TableStatus"]
            except ClientError as exc:
                if error_code(exc) != NOT_FOUND:
                    raise _explained(exc, self.table) from exc
                status = None
            if status == "ACTIVE":
                return
            if status is None:
                try:
                    db.create_table(
                        TableName=self.table,
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        BillingMode="PAY_PER_REQUEST",
                        Tags=managed_tags(),
                    )
                    continue
                except ClientError as exc:
                    if error_code(exc) != IN_USE:
                        raise _explained(exc, self.table) from exc
            self.sleep(1.0)
        raise LockError(f"the run lock's table {self.table} did not become ACTIVE; try again")

    def destroy(self) -> bool:
        """Delete the table (teardown, while holding the lease: deleting the table releases it). Only a table
        carrying the ownership tag; True if deleted."""
        db = self._db()
        try:
            arn = db.describe_table(TableName=self.table)["Table"]["TableArn"]
            tags = db.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            if not is_managed_tags(tags):
                log.warning(
                    "table %s is not tagged %s=%s: left in place", self.table, MANAGED_TAG_KEY, MANAGED_TAG_VALUE
                )
                return False
            db.delete_table(TableName=self.table)
        except ClientError as exc:
            if error_code(exc) == NOT_FOUND:
                return False
            raise
        self.acquired = False
        return True


def _explained(exc: ClientError, table: str) -> OrgAlertsError:
    if error_code(exc) in ACCESS_DENIED:
        return LockError(
            f"the run lock (DynamoDB table {table} in the notification account) is not allowed: {exc}. Give the "
            f"member role there the `RunLock` statement of the notification policy `orgalerts permissions` prints"
        )
    return LockError(f"the run lock (DynamoDB table {table}): {exc}")


class _Renewer(threading.Thread):
    """Renews the lease every `every` seconds until stopped; tells `on_lost` once if it is lost."""

    def __init__(self, lock: RunLock, every: float, on_lost: Callable[[], None]) -> None:
        super().__init__(name="orgalerts-lock", daemon=True)
        self.lock, self.every, self.on_lost = lock, every, on_lost
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                if not self.lock.renew():
                    log.error("the run lock was taken from this run; no further account is started")
                    self.on_lost()
                    return
            except Exception as exc:  # a transient failure: the next renewal may succeed before expiry
                log.warning("could not renew the run lock: %s", exc)


@contextmanager
def held(
    lock: RunLock, *, renew_every: float = RENEW_EVERY_SECONDS, on_lost: Callable[[], None] = lambda: None
) -> Iterator[RunLock]:
    """Hold `lock` for the block: take it (or raise `LockHeld`), renew it in the background, release it at the
    end whatever happens (errors, Ctrl-C). A holder killed outright leaves a lease that expires by itself."""
    lock.acquire()
    renewer = _Renewer(lock, renew_every, on_lost)
    renewer.start()
    try:
        yield lock
    finally:
        renewer.stopped.set()
        renewer.join(timeout=5)
        lock.release()
