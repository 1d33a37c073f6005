"""A temporary SQS queue subscribed to the alert topic: how `verify` and `sandbox --watch` read alerts.

Owns: creating the queue (tagged, with a policy admitting only the topic), subscribing it with raw
delivery (the body is the alert as a recipient reads it), receiving, and removing both whatever
happens; cleanup problems are collected, not raised, so they never hide the result.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

from orgalerts.aws import BotoCoreError, ClientError, error_text
from orgalerts.sides.base import Grant, everywhere

# IAM actions on the temporary queue: each command using a listener grants them on its own queue names
# (queue*: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html).
QUEUE_ACTIONS = (
    "sqs:CreateQueue",
    "sqs:TagQueue",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:DeleteQueue",
)
# Subscribing is granted on the alert topic (topic*); Unsubscribe has no resource type, so only "*"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html).
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant("notification", "ManageAlertTopic", ("sns:Subscribe",), lambda c: [c.central.topic_arn]),
    Grant("notification", "UnsubscribeFromAlertTopic", ("sns:Unsubscribe",), everywhere),
)


def temporary_queue_grant(kind: str) -> Grant:
    """The listener's queue actions on the `<prefix><kind>-*` queues of the notification account."""
    return Grant(
        "notification",
        "ManageTemporaryAlertQueues",
        QUEUE_ACTIONS,
        lambda c: [c.central.queue_arn(f"{c.names.prefix}{kind}-*")],
    )


def queue_policy(queue_arn: str, topic_arn: str) -> str:
    """Only SNS, and only for the alert topic, may send to the queue."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
    )


class TopicListener:
    """`with TopicListener(sqs, sns, topic_arn, name) as listener: listener.receive()`."""

    def __init__(self, sqs: Any, sns: Any, topic_arn: str, queue_name: str) -> None:
        self.sqs = sqs
        self.sns = sns
        self.topic_arn = topic_arn
        self.queue_name = queue_name
        self.queue_url: str | None = None
        self.subscription_arn: str | None = None
        self.cleanup_errors: list[str] = []

    def __enter__(self) -> TopicListener:
        try:
            self.queue_url = str(
                self.sqs.create_queue(QueueName=self.queue_name, tags={"managed-by": "orgalerts"})["QueueUrl"]
            )
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            queue_arn = attributes["Attributes"]["QueueArn"]
            self.sqs.set_queue_attributes(
                QueueUrl=self.queue_url, Attributes={"Policy": queue_policy(queue_arn, self.topic_arn)}
            )
            self.subscription_arn = str(
                self.sns.subscribe(
                    TopicArn=self.topic_arn,
                    Protocol="sqs",
                    Endpoint=queue_arn,
                    Attributes={"RawMessageDelivery": "true"},
                    ReturnSubscriptionArn=True,
                )["SubscriptionArn"]
            )
        except BaseException:
            self.close()
            raise
        return self

    def receive(self) -> list[str]:
        """The alerts waiting now (at most 10), removed from the queue."""
        assert self.queue_url is not None
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        bodies = []
        for message in messages.get("Messages", []):
            bodies.append(str(message.get("Body", "")))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def close(self) -> None:
        if self.subscription_arn and self.subscription_arn != "pending confirmation":
            self._quietly(
                "unsubscribe the test queue", lambda: self.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
            )
        if self.queue_url:
            self._quietly("delete the test queue", lambda: self.sqs.delete_queue(QueueUrl=self.queue_url))
        self.subscription_arn = self.queue_url = None

    def _quietly(self, what: str, step: Any) -> None:
        try:
            step()
        except (ClientError, BotoCoreError) as exc:
            self.cleanup_errors.append(f"{what}: {error_text(exc)}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
