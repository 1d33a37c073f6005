"""Starting, stopping and isolating sandboxes (moto's state is process-global)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import boto3
import pytest
from moto.organizations import utils as moto_org_utils

from orgalerts.sandbox import Sandbox, SandboxAccount, SandboxServer, SandboxSpec

SPEC_A = SandboxSpec("o-lifecyclea", "r-lfa0", "123456789012", (SandboxAccount("310000000001", "a"),), ())
SPEC_B = SandboxSpec("o-lifecycleb", "r-lfb0", "123456789012", (SandboxAccount("320000000001", "b"),), ())


def sqs(sb: Sandbox) -> object:
    return boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=sb.endpoint_url,
        aws_access_key_id=sb.access_key_id,
        aws_secret_access_key=sb.secret_access_key,
    )


def test_second_sandbox_starts_from_a_clean_moto() -> None:
    with Sandbox(SPEC_A) as a:
        client = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=a.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_queue(QueueName="left-behind")
        assert client.list_queues().get("QueueUrls")
    with Sandbox(SPEC_B) as b:
        client = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=b.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert not client.list_queues().get("QueueUrls")
        org = boto3.client(
            "organizations",
            region_name="us-east-1",
            endpoint_url=b.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert org.describe_organization()["Organization"]["Id"] == "o-lifecycleb"
        assert {x["Id"] for x in org.list_accounts()["Accounts"]} == {"123456789012", "320000000001"}


def test_only_one_sandbox_at_a_time() -> None:
    with Sandbox(SPEC_A), pytest.raises(RuntimeError, match="another sandbox"):
        Sandbox(SPEC_B).start()


def test_seeding_leaves_moto_id_generators_alone() -> None:
    before = moto_org_utils.make_random_account_id
    with Sandbox(SPEC_A):
        pass
    assert moto_org_utils.make_random_account_id is before


def test_server_binds_loopback_and_releases_port() -> None:
    server = SandboxServer()
    url = server.start()
    port = urlparse(url).port
    assert url == f"http://127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_banner_before_start_says_so() -> None:
    text = Sandbox(SPEC_A).banner()
    assert "not started" in text and "simulated" in text
