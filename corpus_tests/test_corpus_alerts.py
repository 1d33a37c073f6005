"""Real CloudTrail IAM records (not in this repository) through the deployed sandbox, as CloudTrail would
deliver each one in a member account: every successful mutating call raises exactly one alert naming
its account and eventName, every read-only call raises none.

Corpus: $ORGALERTS_CORPUS or ../shared/corpus/cloudtrail (relative to the repository). A missing corpus
fails loudly: `make corpus` exists to run this check.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import account_client  # noqa: E402

from orgalerts.aws import Gateway, GatewaySettings  # noqa: E402
from orgalerts.config import load_config  # noqa: E402
from orgalerts.engine.context import Context  # noqa: E402
from orgalerts.engine.results import Mode, exit_code  # noqa: E402
from orgalerts.engine.runner import Runner  # noqa: E402
from orgalerts.sandbox import Sandbox, parse_sandbox_spec  # noqa: E402
from orgalerts.sandbox.eventflow import deliver  # noqa: E402

CORPUS = Path(os.environ.get("ORGALERTS_CORPUS", REPO.parent / "shared" / "corpus" / "cloudtrail"))
CONFIG_PATH = REPO / "config" / "accounts.yaml"
MEMBER = "333333333301"
NOTIFICATION = "222222222222"


def _records() -> list[tuple[str, dict[str, Any]]]:
    iam = CORPUS / "iam"
    if not iam.is_dir():
        raise FileNotFoundError(f"CloudTrail corpus not found at {iam} (set ORGALERTS_CORPUS)")
    return [(p.name, json.loads(p.read_text())) for p in sorted(iam.glob("*.json"))]


def in_member_account(event: dict[str, Any]) -> dict[str, Any]:
    """The record as CloudTrail would deliver it in MEMBER: every account id of the record rewritten."""
    detail = event["detail"]
    old = {event.get("account"), detail.get("recipientAccountId"), (detail.get("userIdentity") or {}).get("accountId")}
    text = json.dumps(event)
    for account in sorted((a for a in old if a), key=len, reverse=True):
        text = text.replace(f'"{account}"', f'"{MEMBER}"').replace(f":{account}:", f":{MEMBER}:")
    rewritten: dict[str, Any] = json.loads(text)
    rewritten["account"] = MEMBER
    rewritten["detail"]["recipientAccountId"] = MEMBER
    return rewritten


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Any, str]]:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
        gateway = Gateway(
            GatewaySettings(endpoint_url=running.endpoint_url, access_key_id="testing", secret_access_key="testing")
        )
        engine = Runner(Context(config, gateway), retry_wait=tenacity.wait_none())
        assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
        sqs = account_client("sqs", NOTIFICATION, endpoint_url=running.endpoint_url)
        url = sqs.create_queue(QueueName="corpus-listener")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        account_client("sns", NOTIFICATION, endpoint_url=running.endpoint_url).subscribe(
            TopicArn=config.central.topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
        )
        _drain(sqs, url)
        yield sqs, url


def _drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_corpus__mutating_calls_alert_once_read_only_never(deployed: tuple[Any, str]) -> None:
    sqs, url = deployed
    counts = {"mutating": 0, "read-only": 0, "errored": 0}
    failures: list[str] = []
    for name, record in _records():
        event = in_member_account(record)
        detail = event["detail"]
        deliver(MEMBER, "us-east-1", "default", event)
        alerts = _drain(sqs, url)
        if detail.get("readOnly") is True:
            counts["read-only"] += 1
            if alerts:
                failures.append(f"{name}: read-only {detail['eventName']} raised {len(alerts)} alert(s)")
        elif detail.get("errorCode"):
            counts["errored"] += 1  # failed calls alert too (the patterns do not filter on errorCode)
        else:
            counts["mutating"] += 1
            heads = [a.splitlines()[0] for a in alerts]
            wanted = f"account {MEMBER}: {detail['eventName']}"
            if len(alerts) != 1 or wanted not in heads[0]:
                failures.append(f"{name}: {detail['eventName']} readOnly={detail.get('readOnly')!r} -> {heads}")
    print(f"\ncorpus {CORPUS}: {counts}")
    assert not failures, "\n".join(failures)
    assert counts["mutating"] > 0 and counts["read-only"] > 0
