"""Every resource policy and trust policy orgalerts writes, each as narrow as its purpose. Pure.

Owns: the forwarder roles' trust (only EventBridge, only for rules of the same account) and permissions
(PutEvents on the one central bus), and the EventBridge-only resource policies of the topic and the
dead-letter queues (only for orgalerts' own rules, by aws:SourceArn). Documents come back canonical.
"""

from __future__ import annotations

from orgalerts.model.resources import canonical_policy

EVENTS_PRINCIPAL = "events.amazonaws.com"


def forwarder_trust_policy(account_id: str) -> str:
    """Only EventBridge, and only on behalf of rules in this same account, may assume the role."""
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": EVENTS_PRINCIPAL},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        }
    )


def forwarder_permissions_policy(bus_arn: str) -> str:
    """The role may do one thing: put events on the one central bus."""
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "PutEventsOnCentralBus", "Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn}
            ],
        }
    )


def eventbridge_only_policy(sid: str, action: str, resource: str, rule_arns: list[str]) -> str:
    """Only EventBridge, and only on behalf of the given rules, may do `action` on `resource`."""
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"Service": EVENTS_PRINCIPAL},
                    "Action": action,
                    "Resource": resource,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
                }
            ],
        }
    )


def queue_policy(queue_arn: str, rule_arns: list[str]) -> str:
    """Only EventBridge, and only for orgalerts' own rules, may put dead letters in the queue."""
    return eventbridge_only_policy("OrgAlertsDeadLetters", "sqs:SendMessage", queue_arn, rule_arns)
