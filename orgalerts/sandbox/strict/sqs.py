"""Strict rule 5: SQS behaviour moto does not have.

Owns: `SqsRules` (state: when each queue name was deleted, per account and region).

* CreateQueue within 60 s of deleting a queue of the same name fails with
  AWS.SimpleQueueService.QueueDeletedRecently ("You must wait 60 seconds after deleting a queue
  before you can create another queue with the same name."
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html). Over
  the JSON protocol the code arrives in the x-amzn-query-error header (see replies.py). The time comes
  from `StrictSettings.clock`. A deletion is recorded when DeleteQueue is let through for an existing
  queue (moto then deletes it).
* Short-poll ReceiveMessage (WaitTimeSeconds 0 or absent, and the queue's
  ReceiveMessageWaitTimeSeconds 0) samples a subset of servers and may return no messages although
  some remain (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html):
  with probability `empty_short_poll_probability` (drawn from `StrictSettings.random`) the sandbox
  answers an empty receive without asking moto. Long polls return what is there.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from orgalerts.sandbox.strict.replies import Refusal, Reply
from orgalerts.sandbox.strict.request import StrictCall
from orgalerts.sandbox.strict.settings import StrictSettings

QUEUE_DELETED_RECENTLY = "AWS.SimpleQueueService.QueueDeletedRecently"


def _queue_name(call: StrictCall) -> str:
    url = call.parameters.get("QueueUrl")
    if isinstance(url, str) and url:
        return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    name = call.parameters.get("QueueName")
    return name if isinstance(name, str) else ""


def _moto_queue(call: StrictCall, name: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[call.account_id][call.region].queues.get(name)


def _empty_receive(call: StrictCall) -> Reply:
    if call.protocol == "query":
        body = (
            '<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult/>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></ReceiveMessageResponse>"
        ).encode()
        return Reply(200, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body)
    body = b"{}"
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    return Reply(200, [*headers, ("Content-Length", str(len(body)))], body)


class SqsRules:
    def __init__(self, settings: StrictSettings) -> None:
        self.settings = settings
        self._deleted: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def _wait_seconds(self, call: StrictCall, name: str) -> int:
        raw = call.parameters.get("WaitTimeSeconds")
        if raw is not None and str(raw).strip():
            return int(str(raw))
        queue = _moto_queue(call, name)
        return int(getattr(queue, "receive_message_wait_time_seconds", 0) or 0) if queue is not None else 0

    def _short_poll_comes_back_empty(self, call: StrictCall, name: str) -> bool:
        if self._wait_seconds(call, name) != 0 or _moto_queue(call, name) is None:
            return False
        return self.settings.random() < self.settings.empty_short_poll_probability

    def before(self, call: StrictCall) -> Refusal | Reply | None:
        if call.service != "sqs":
            return None
        name = _queue_name(call)
        key = (call.account_id, call.region, name)
        now = self.settings.clock()
        if call.operation == "CreateQueue":
            with self._lock:
                deleted_at = self._deleted.get(key)
            if deleted_at is not None and now - deleted_at < self.settings.queue_reuse_seconds:
                return Refusal(
                    QUEUE_DELETED_RECENTLY,
                    "You must wait 60 seconds after deleting a queue before you can create another queue "
                    "with the same name.",
                )
        elif call.operation == "DeleteQueue" and _moto_queue(call, name) is not None:
            with self._lock:
                self._deleted[key] = now
        elif call.operation == "ReceiveMessage" and self._short_poll_comes_back_empty(call, name):
            return _empty_receive(call)
        return None
