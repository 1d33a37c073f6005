"""Test support for comparing `orgalerts replay` with the sandbox: what the deployed rules really did with an event.

Owns: a local HTTP receiver (127.0.0.1), an e-mail queue subscribed to the alert topic (raw delivery: the body is
the text a recipient reads), and a "rule tap": one extra SQS target on every central alerting rule whose input is
the rule's own name (EventBridge's predefined `<aws.events.rule-name>`), so a test learns WHICH rule fired,
not only that one did. Used by tests/test_replay.py and corpus_tests/test_corpus_alerts.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from orgalerts.config import Config

TAP_ID = "test-rule-tap"

# The issue's four destinations (mail at info, Slack at high, PagerDuty at critical, a webhook at medium); the URLs
# and secrets come from the environment variables named here.
ISSUE_DESTINATIONS: list[dict[str, Any]] = [
    {"name": "secops-mail", "type": "email", "emails": ["secops@example.com"], "min_severity": "info"},
    {"name": "chat", "type": "slack", "url_env": "ORGALERTS_SLACK_URL", "min_severity": "high"},
    {"name": "oncall", "type": "pagerduty", "routing_key_env": "ORGALERTS_PD_KEY", "url_env": "ORGALERTS_PD_URL",
     "min_severity": "critical"},
    {"name": "hook", "type": "webhook", "url_env": "ORGALERTS_HOOK_URL", "header_name": "X-Api-Key",
     "header_value_env": "ORGALERTS_HOOK_KEY", "min_severity": "medium"},
]  # fmt: skip


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every request (path, headers, body) and answering `status`."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far."""
        return [json.loads(r["body"]) for r in self.requests]

    def take(self) -> list[dict[str, Any]]:
        """The JSON bodies received since the last call."""
        bodies = [json.loads(r["body"]) for r in self.requests]
        self.requests.clear()
        return bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(url), str(arn)


@dataclass
class Taps:
    """The e-mail text and the rule names the sandbox produced, read after each delivered event."""

    sqs: Any
    mail_url: str
    rules_url: str

    def take(self) -> tuple[list[str], list[str]]:
        """(e-mail bodies, names of the rules that fired) since the last call."""
        return drain(self.sqs, self.mail_url), unquote(drain(self.sqs, self.rules_url))


def install_taps(config: Config, client: Callable[[str], Any], name: str) -> Taps:
    """In the notification account (`client(service)` acts there): a queue subscribed to the topic with raw
    delivery, and a queue receiving the name of every central alerting rule that fires (the verify rules of the
    destinations are left out: no CloudTrail event reaches them)."""
    sqs, events = client("sqs"), client("events")
    mail_url, mail_arn = _queue(sqs, f"{name}-mail")
    rules_url, rules_arn = _queue(sqs, f"{name}-rules")
    client("sns").subscribe(TopicArn=config.central.topic_arn, Protocol="sqs", Endpoint=mail_arn,
                            Attributes={"RawMessageDelivery": "true"})  # fmt: skip
    names = config.names
    rules = [(names.central_bus, str(r["Name"])) for r in
             events.list_rules(EventBusName=names.central_bus, NamePrefix=names.prefix)["Rules"]]  # fmt: skip
    for bus, rule in [*rules, ("default", names.central_watch_rule)]:
        if "-verify-" in rule:
            continue
        tap = {"Id": TAP_ID, "Arn": rules_arn,
               "InputTransformer": {"InputPathsMap": {}, "InputTemplate": '"<aws.events.rule-name>"'}}  # fmt: skip
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[tap])
    taps = Taps(sqs, mail_url, rules_url)
    taps.take()
    return taps


def unquote(rule_bodies: list[str]) -> list[str]:
    """The rule tap's bodies are one JSON string each (the template is a quoted placeholder)."""
    return sorted(json.loads(b) if b.startswith('"') else b for b in rule_bodies)


def in_account(event: dict[str, Any], account: str) -> dict[str, Any]:
    """The event as CloudTrail would deliver it in `account`: every account id of the record rewritten."""
    detail = event["detail"]
    old = {event.get("account"), detail.get("recipientAccountId"), (detail.get("userIdentity") or {}).get("accountId")}
    text = json.dumps(event)
    for other in sorted((a for a in old if a), key=len, reverse=True):
        text = text.replace(f'"{other}"', f'"{account}"').replace(f":{other}:", f":{account}:")
    rewritten: dict[str, Any] = json.loads(text)
    rewritten["account"] = account
    rewritten["detail"]["recipientAccountId"] = account
    return rewritten
