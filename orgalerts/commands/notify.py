"""Telling the alert recipients that the alerting itself drifted (`drift --publish`).

Owns: the drift summary message and publishing it to the alert topic from the notification account,
so the people who rely on the alerts learn that someone tampered with them, not only the scheduler.
"""

from __future__ import annotations

from orgalerts.engine.context import Context
from orgalerts.engine.results import RunReport, Status, exit_code
from orgalerts.sides.base import Grant

# `drift --publish` (topic*: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html).
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant("notification", "PublishToAlertTopic", ("sns:Publish",), lambda c: [c.central.topic_arn]),
)
MAX_LINES = 60  # SNS e-mail bodies stay readable; the full list is in the JSON or Markdown report


def drift_summary(report: RunReport, repaired: bool) -> str | None:
    """The message, or None when there is nothing to say (clean run)."""
    interesting = [s for s in report.sides() if s.changes or s.status == Status.FAILED]
    if not interesting:
        return None
    verb = "repaired" if repaired else "found"
    lines = [f"[orgalerts] DRIFT {verb.upper()}: the IAM-change alerting itself was changed", ""]
    for side in interesting:
        label = f"{side.account_id} {side.name}".strip()
        lines.append(f"{side.status:<9} {label}")
        lines += [f"    - {change}" for change in side.changes]
        if side.error:
            lines.append(f"    error: {side.error}")
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and more ({len(lines) - MAX_LINES} lines): see the drift report"]
    lines += ["", f"Exit code {exit_code(report)}. Re-run `orgalerts drift --repair` and investigate who changed it."]
    return "\n".join(lines)


def publish_drift(ctx: Context, report: RunReport, repaired: bool) -> bool:
    """Publish the summary to the alert topic; False when there was nothing to publish."""
    message = drift_summary(report, repaired)
    if message is None:
        return False
    ctx.central_client("sns").publish(TopicArn=ctx.central.topic_arn, Message=message)
    return True
