"""`orgalerts verify`: end-to-end proof that an IAM change in a member account reaches the recipients.

Owns: the temporary SQS queue subscribed to the alert topic, the harmless IAM change (an unattached
customer-managed policy that denies everything on a user that does not exist, created then deleted),
the bounded wait for the alert (clock and sleep injectable so tests never sleep), and cleaning up all
of it whatever happens, timeouts included.

The e-mail recipients receive the test alert too: the output says so, and the policy's name says
`verify` in the alert itself.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from orgalerts.aws import BotoCoreError, ClientError, error_text
from orgalerts.commands.listener import TopicListener, temporary_queue_grant
from orgalerts.engine.context import Context
from orgalerts.errors import OrgAlertsError, UsageError
from orgalerts.model.addresses import MEMBER_REGION, arn
from orgalerts.model.resources import managed_tags
from orgalerts.sides import destinations as dest
from orgalerts.sides.base import Grant

# IAM permissions `verify` needs (merged by `orgalerts permissions`): the test policy in each member account
# (policy*: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html;
# tags on create need iam:TagPolicy), and the listener's actions on verify's temporary queues.
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant(
        "member",
        "ManageVerifyTestPolicies",
        ("iam:CreatePolicy", "iam:TagPolicy", "iam:DeletePolicy"),
        lambda c: [arn("iam", "", "*", f"policy/{c.names.prefix}verify-*")],
    ),
    temporary_queue_grant("verify"),
    # One test event per HTTP destination on the central bus (event-bus*), and the verify routing's dead-letter
    # queue read for failed invocations (queue*).
    Grant("notification", "PutVerifyTestEvents", ("events:PutEvents",), lambda c: [c.central.bus_arn],
          lambda c: bool(c.http_destinations)),
    Grant("notification", "ReadDestinationFailures", ("sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility"), lambda c: [c.central.queue_arn(dest.dlq_name(c))],
          lambda c: bool(c.http_destinations)),
)  # fmt: skip
# EventBridge gives up on a verify test alert at once (no retries: sides/destinations.VERIFY_RETRY) and
# dead-letters it; a failure not reported within this many seconds counts as delivered.
DESTINATION_SETTLE_SECONDS = 60.0

POLL_INTERVAL_SECONDS = 5.0
PROGRESS_EVERY_SECONDS = 10.0
DRIFT_HINT = "run `orgalerts drift`: it names what stops the alert (a disabled or deleted rule, a changed role, ...)"


class NothingDeployedError(OrgAlertsError):
    """The alert topic does not exist: nothing (or not the central side) is deployed. Exit code 1."""

    def __init__(self, account_id: str, region: str) -> None:
        super().__init__(
            f"nothing deployed (no alert topic in account {account_id}, region {region}): run `orgalerts deploy` first"
        )


@contextmanager
def topic_listener(ctx: Context, queue_name: str) -> Iterator[TopicListener]:
    """A TopicListener on the alert topic; NothingDeployedError when there is no topic to listen to."""
    listener = TopicListener(ctx.central_client("sqs"), ctx.central_client("sns"), ctx.central.topic_arn, queue_name)
    try:
        listener.__enter__()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NotFound", "NotFoundException"):
            raise NothingDeployedError(ctx.config.notification.account_id, ctx.config.region) from None
        raise
    try:
        yield listener
    finally:
        listener.close()


TEST_POLICY_DESCRIPTION = "orgalerts verify: harmless test change (an unattached policy), deleted right after"


@dataclass
class AccountCheck:
    account_id: str
    status: str = "not delivered"  # delivered | not delivered | failed
    latency_seconds: float | None = None
    error: str | None = None
    message: str | None = None
    started: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "status": self.status,
            "latency_seconds": None if self.latency_seconds is None else round(self.latency_seconds, 3),
            "error": self.error,
            "message": self.message,
        }


@dataclass
class DestinationCheck:
    """One configured destination: `delivered` (no failure reported), `not delivered` (with EventBridge's reason
    from the dead-letter queue) or `failed` (the test event could not be sent). E-mail destinations share the
    alert topic's proof (the account checks)."""

    name: str
    type: str
    status: str = "delivered"
    error: str | None = None
    event_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "status": self.status, "error": self.error}


@dataclass
class VerifyResult:
    checks: list[AccountCheck]
    cleanup_errors: list[str] = field(default_factory=list)
    timeout: float = 0.0
    destinations: list[DestinationCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            bool(self.checks)
            and all(c.status == "delivered" for c in self.checks)
            and all(d.status == "delivered" for d in self.destinations)
        )

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {"delivered": 0, "not delivered": 0, "failed": 0}
        for check in self.checks:
            counts[check.status] = counts.get(check.status, 0) + 1
        # `not_delivered` is the key to script against; "not delivered" stays for existing scripts.
        counts["not_delivered"] = counts["not delivered"]
        return {
            "command": "verify",
            "accounts": [c.to_json() for c in self.checks],
            "destinations": [d.to_json() for d in self.destinations],
            "summary": counts,
            "timeout_seconds": self.timeout,
            "cleanup_errors": self.cleanup_errors,
        }

    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _harmless_policy(account_id: str, name: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Deny", "Action": "*", "Resource": arn("iam", "", account_id, f"user/{name}-nobody")}
            ],
        }
    )


def choose_accounts(ctx: Context, accounts: list[str] | None, count: int) -> list[str]:
    scope = ctx.scope()
    in_scope = [a.id for a in scope.in_scope]
    if accounts:
        outside = [a for a in accounts if a not in in_scope]
        if outside:
            raise UsageError(f"account {outside[0]} is not an in-scope, active account of this configuration")
        return list(dict.fromkeys(accounts))
    if count < 1:
        raise UsageError("--count takes a number of at least 1")
    # Prefer ordinary members: they exercise the cross-account hop.
    special = {ctx.config.notification.account_id, scope.management_account_id}
    ordered = [a for a in in_scope if a not in special] + [a for a in in_scope if a in special]
    if not ordered:
        raise UsageError("no in-scope account to verify")
    return ordered[:count]


def run_verify(
    ctx: Context,
    *,
    accounts: list[str] | None,
    count: int,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    progress: Callable[[str], None] | None = None,
) -> VerifyResult:
    """`progress` receives a line when the wait starts and every PROGRESS_EVERY_SECONDS (the CLI prints it).

    NothingDeployedError when the alert topic does not exist (before any change is made)."""
    chosen = choose_accounts(ctx, accounts, count)
    test_name = f"{ctx.names.prefix}verify-{uuid.uuid4().hex[:10]}"
    result = VerifyResult([AccountCheck(a) for a in chosen], timeout=timeout)
    changed: list[tuple[Any, str]] = []  # (iam client, policy arn) to delete
    listener: TopicListener | None = None
    try:
        with topic_listener(ctx, test_name) as listener:
            for check in result.checks:
                try:
                    iam = ctx.member_access(check.account_id).client("iam", MEMBER_REGION)
                    check.started = clock()
                    created = iam.create_policy(
                        PolicyName=test_name,
                        PolicyDocument=_harmless_policy(check.account_id, test_name),
                        Description=TEST_POLICY_DESCRIPTION,
                        Tags=managed_tags(),
                    )
                    changed.append((iam, str(created["Policy"]["Arn"])))
                except (ClientError, BotoCoreError) as exc:
                    check.status, check.error = "failed", error_text(exc)
            sent_at = clock()
            result.destinations = send_destination_tests(ctx, test_name)
            try:
                _wait_for_alerts(listener, result, test_name, timeout, clock, sleep, poll_interval, progress)
            finally:
                _delete_test_policies(result, changed)
            settle = min(timeout, DESTINATION_SETTLE_SECONDS) - (clock() - sent_at)
            if result.destinations and settle > 0:
                sleep(settle)
            collect_destination_failures(ctx, result.destinations)
    except (ClientError, BotoCoreError) as exc:
        for check in result.checks:
            if check.status == "not delivered":
                check.status, check.error = "failed", error_text(exc)
    finally:
        if listener is not None:
            result.cleanup_errors += listener.cleanup_errors
    return result


def _wait_for_alerts(
    listener: TopicListener,
    result: VerifyResult,
    test_name: str,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll_interval: float,
    progress: Callable[[str], None] | None = None,
) -> None:
    pending = {c.account_id: c for c in result.checks if c.status == "not delivered"}
    start = clock()
    deadline = start + timeout
    say = progress or (lambda _text: None)
    if pending:
        say(
            f"orgalerts verify: test change made in {', '.join(pending)}; waiting up to {timeout:g}s for "
            f"{'the alert' if len(pending) == 1 else f'{len(pending)} alerts'}"
        )
    next_report = start + PROGRESS_EVERY_SECONDS
    while pending:
        bodies = listener.receive()
        for body in bodies:
            if test_name not in body or "CreatePolicy" not in body:
                continue  # another alert (or our own DeletePolicy): not the proof we wait for
            for account_id, check in list(pending.items()):
                if account_id in body:
                    check.status, check.latency_seconds, check.message = "delivered", clock() - check.started, body
                    del pending[account_id]
        now = clock()
        if not pending or now >= deadline:
            break
        if now >= next_report:
            waiting = len(pending)
            say(
                f"orgalerts verify: still waiting for {waiting} alert{'s' if waiting != 1 else ''} "
                f"({now - start:.0f}s of {timeout:g}s)"
            )
            next_report = now + PROGRESS_EVERY_SECONDS
        if not bodies:
            sleep(min(poll_interval, max(0.0, deadline - clock())))
    for check in pending.values():
        check.error = check.error or f"no alert within {timeout:g}s; {DRIFT_HINT}"


def _delete_test_policies(result: VerifyResult, changed: list[tuple[Any, str]]) -> None:
    for iam, policy_arn in changed:
        try:
            iam.delete_policy(PolicyArn=policy_arn)
        except (ClientError, BotoCoreError) as exc:
            result.cleanup_errors.append(f"delete test policy {policy_arn}: {error_text(exc)}")


def send_destination_tests(ctx: Context, test_name: str) -> list[DestinationCheck]:
    """One test event per HTTP destination, routed by its verify rule to that destination only."""
    config = ctx.config
    checks = [DestinationCheck(d.name, d.type, event_id=f"{test_name}-{d.name}") for d in config.http_destinations]
    if not checks:
        return []
    events = ctx.central_client("events")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for check in checks:
        detail = {
            "destination": check.name,
            "eventName": "OrgAlertsVerify",
            "eventID": check.event_id,
            "eventTime": now,
            "awsRegion": config.region,
            "userIdentity": {"arn": f"orgalerts verify ({test_name})"},
        }
        entry = {"Source": dest.VERIFY_SOURCE, "DetailType": dest.VERIFY_DETAIL_TYPE, "Detail": json.dumps(detail),
                 "EventBusName": ctx.central.bus_arn}  # fmt: skip
        try:
            answer = events.put_events(Entries=[entry])
            if answer.get("FailedEntryCount"):
                failed = answer["Entries"][0]
                check.status, check.error = "failed", f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        except (ClientError, BotoCoreError) as exc:
            check.status, check.error = "failed", error_text(exc)
    return checks


def collect_destination_failures(ctx: Context, checks: list[DestinationCheck]) -> None:
    """EventBridge reports a failed API-destination invocation only through the target's dead-letter queue (with
    ERROR_CODE and ERROR_MESSAGE attributes: https://docs.aws.amazon.com/eventbridge/latest/userguide/
    eb-rule-dlq.html): read it, take our test events out, put everything else back at once."""
    pending = {c.event_id: c for c in checks if c.status == "delivered"}
    if not pending:
        return
    sqs = ctx.central_client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=dest.dlq_name(ctx.config))["QueueUrl"]
        seen: set[str] = set()
        while pending:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                         MessageAttributeNames=["All"], VisibilityTimeout=30)  # fmt: skip
            messages = answer.get("Messages", [])
            if not messages or all(m.get("MessageId") in seen for m in messages):
                return
            seen.update(str(m.get("MessageId")) for m in messages)
            for message in messages:
                _sort_failure(sqs, url, message, pending)
    except (ClientError, BotoCoreError) as exc:
        for check in pending.values():
            check.status, check.error = "failed", f"could not read the dead-letter queue: {error_text(exc)}"


def _sort_failure(sqs: Any, url: str, message: dict[str, Any], pending: dict[str, DestinationCheck]) -> None:
    try:
        event_id = str(json.loads(message.get("Body", "{}")).get("detail", {}).get("eventID", ""))
    except (ValueError, AttributeError):
        event_id = ""
    check = pending.pop(event_id, None)
    if check is None:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return
    attributes = message.get("MessageAttributes", {})
    code = attributes.get("ERROR_CODE", {}).get("StringValue", "")
    text = attributes.get("ERROR_MESSAGE", {}).get("StringValue", "")
    check.status, check.error = "not delivered", f"{code}: {text}".strip(": ") or "dead-lettered by EventBridge"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
