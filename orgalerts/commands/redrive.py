"""`orgalerts redrive`: re-send the events waiting in orgalerts' dead-letter queues once the path is healthy.

Owns: draining the central and member dead-letter queues, rendering each event with the same template
the central rules use (tamper events with the tamper template), publishing it to the alert topic, and
deleting a message only after its alert was published, so nothing is lost or sent twice on a retry.
"""

from __future__ import annotations

import json
from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.config import Config
from orgalerts.engine.results import RunReport, SideResult, Status
from orgalerts.engine.runner import Runner
from orgalerts.model.addresses import MEMBER_REGION
from orgalerts.model.matching import matches
from orgalerts.model.messages import alert_input_transformer, is_tamper_event, render, tamper_input_transformer
from orgalerts.model.routes import routes
from orgalerts.model.scope import Account
from orgalerts.model.severity import CONFIG_SOURCES as ALL_SOURCES
from orgalerts.sides.base import Grant
from orgalerts.sides.central import central_dlq_arns
from orgalerts.sides.forwarding import QUEUE_MISSING
from orgalerts.sides.member import member_dlq_arns

MAX_MESSAGES_PER_QUEUE = 10_000
RESENT_MARK = "[re-sent by orgalerts redrive: this alert was held in a dead-letter queue after a delivery failure]"


# IAM permissions of the drain (merged by `orgalerts permissions`): the dead-letter queues (queue*:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html) and the alert topic
# (topic*: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html). Receiving
# and deleting only with alerts.dead_letter_queues; GetQueueUrl (granted by the sides whatever the config)
# finds no queue otherwise, and redrive has nothing to do.
def _dead_letters(config: Config) -> bool:
    return config.alerts.dead_letter_queues


DRAIN = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage")
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant("member", "RedriveMemberDeadLetterQueue", DRAIN, member_dlq_arns, _dead_letters),
    Grant("notification", "RedriveCentralDeadLetterQueue", DRAIN, central_dlq_arns, _dead_letters),
    Grant("notification", "PublishToAlertTopic", ("sns:Publish",), lambda c: [c.central.topic_arn]),
)
# A short-poll ReceiveMessage samples a subset of SQS's servers and may come back empty while messages
# remain; a long poll (WaitTimeSeconds > 0) queries all of them. So: long-poll, and stop only when the
# queue says it holds nothing (ApproximateNumberOfMessages), never on an empty receive alone.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
LONG_POLL_SECONDS = 1
MAX_EMPTY_RECEIVES = 20  # in a row, while the queue still counts messages (in flight elsewhere): give up


def _alert_text(body: str, prefix: str) -> str:
    try:
        event = json.loads(body)
    except ValueError:
        return f"{RESENT_MARK}\n{body}"
    if not isinstance(event, dict):
        return f"{RESENT_MARK}\n{body}"
    if is_tamper_event(event, prefix):
        identity = (event.get("detail") or {}).get("userIdentity")
        transformer = tamper_input_transformer(principal=isinstance(identity, dict) and "arn" in identity)
    else:
        transformer = _route_transformer(event, prefix)
    return f"{RESENT_MARK}\n{render(event, transformer)}"


def _route_transformer(event: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The message of the alert route the central bus would have chosen for the event (its severity and shape)."""
    for route in routes(ALL_SOURCES, skip_role_prefix=prefix):
        if matches(route.pattern, event):
            return route.message.email_transformer()
    return alert_input_transformer()


def drain(sqs: Any, sns: Any, queue_name: str, topic_arn: str, prefix: str, result: SideResult) -> None:
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in QUEUE_MISSING:
            return
        raise
    sent = empty = 0
    while sent < MAX_MESSAGES_PER_QUEUE and empty < MAX_EMPTY_RECEIVES and _waiting(sqs, url):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=LONG_POLL_SECONDS).get(
            "Messages", []
        )
        empty = 0 if messages else empty + 1
        for message in messages:
            sns.publish(TopicArn=topic_arn, Message=_alert_text(str(message.get("Body", "")), prefix))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            sent += 1
    if _waiting(sqs, url):
        result.notes.append(f"{queue_name} still holds events (in flight elsewhere?): run redrive again")
    if sent:
        result.status = Status.RESENT
        result.changes.append(f"re-sent {sent} held events from {queue_name}")


def _waiting(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))


def run_redrive(runner: Runner) -> RunReport:
    """Drain the central queue, then every in-scope member's, through the runner's pool and unit boundary."""
    ctx = runner.ctx
    names = ctx.names
    topic_arn = ctx.central.topic_arn
    sns = ctx.central_client("sns")

    def central_queue(result: SideResult) -> None:
        drain(ctx.central_client("sqs"), sns, names.central_dlq, topic_arn, names.prefix, result)

    central = runner.run_unit(
        SideResult(ctx.config.notification.account_id, Status.UNCHANGED, name="central"), central_queue
    )

    def member(account: Account) -> SideResult:
        def work(result: SideResult) -> None:
            sqs = ctx.member_access(account.id).client("sqs", MEMBER_REGION)
            drain(sqs, sns, names.member_dlq, topic_arn, names.prefix, result)

        return runner.run_unit(SideResult(account.id, Status.UNCHANGED, name=account.name), work)

    accounts = runner.for_each(list(ctx.scope().in_scope), member)
    return RunReport("redrive", sorted(accounts, key=lambda r: r.account_id), central)
