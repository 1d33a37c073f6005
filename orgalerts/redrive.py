"""`orgalerts redrive`: re-send the events waiting in orgalerts' dead-letter queues once the path is healthy.

Owns: draining the central and member dead-letter queues, rendering each event with the same template
the central rules use (tamper events with the tamper template), publishing it to the alert topic, and
deleting a message only after its alert was published, so nothing is lost or sent twice on a retry.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orgalerts.aws import MEMBER_REGION, BotoCoreError, ClientError, error_text
from orgalerts.engine import Engine, RunReport, SideResult
from orgalerts.live import QUEUE_MISSING
from orgalerts.messages import alert_input_transformer, is_tamper_event, render, tamper_input_transformer

MAX_MESSAGES_PER_QUEUE = 10_000
RESENT_MARK = "[re-sent by orgalerts redrive: this alert was held in a dead-letter queue after a delivery failure]"

REQUIRED_ACTIONS: dict[str, tuple[str, ...]] = {
    "member": ("sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"),
    "notification": ("sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sns:Publish"),
}


def _alert_text(body: str, prefix: str) -> str:
    try:
        event = json.loads(body)
    except ValueError:
        return f"{RESENT_MARK}\n{body}"
    if not isinstance(event, dict):
        return f"{RESENT_MARK}\n{body}"
    transformer = tamper_input_transformer() if is_tamper_event(event, prefix) else alert_input_transformer()
    return f"{RESENT_MARK}\n{render(event, transformer)}"


def drain(sqs: Any, sns: Any, queue_name: str, topic_arn: str, prefix: str, result: SideResult) -> None:
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in QUEUE_MISSING:
            return
        raise
    sent = 0
    while sent < MAX_MESSAGES_PER_QUEUE:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            break
        for message in messages:
            sns.publish(TopicArn=topic_arn, Message=_alert_text(str(message.get("Body", "")), prefix))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            sent += 1
    if sent:
        result.status = "resent"
        result.changes.append(f"re-sent {sent} held events from {queue_name}")


def run_redrive(engine: Engine) -> RunReport:
    config = engine.config
    names = engine.names
    topic_arn = engine.central.topic_arn
    role = config.member_role
    central = SideResult(config.notification.account_id, "unchanged", name="central")
    access = engine.gateway.account(config.notification.account_id, role.name, role.external_id)
    sns = access.client("sns", config.region)
    try:
        drain(access.client("sqs", config.region), sns, names.central_dlq, topic_arn, names.prefix, central)
    except (ClientError, BotoCoreError) as exc:
        central.status, central.error = "failed", error_text(exc)

    def member(account_id: str, name: str) -> SideResult:
        result = SideResult(account_id, "unchanged", name=name)
        try:
            member_access = engine.gateway.account(account_id, role.name, role.external_id)
            drain(member_access.client("sqs", MEMBER_REGION), sns, names.member_dlq, topic_arn, names.prefix, result)
        except (ClientError, BotoCoreError) as exc:
            result.status, result.error = "failed", error_text(exc)
        return result

    scope = engine.scope()
    with ThreadPoolExecutor(max_workers=engine.workers) as pool:
        accounts = list(pool.map(lambda a: member(a.id, a.name), scope.in_scope))
    return RunReport("redrive", sorted(accounts, key=lambda r: r.account_id), central)
