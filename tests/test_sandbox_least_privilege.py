"""The background sandbox the CLI uses is strict and seeded with least-privilege principals: orgalerts
runs as an orchestrator user holding exactly the printed orchestrator policy, and assumes a member role
holding exactly the printed member policy (plus the notification policy in the notification account);
people keep admin ways in (the root user's `testing` keys, OrganizationAccountAccessRole, and
AWS-managed policies such as AdministratorAccess)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from orgalerts.aws import error_code
from orgalerts.cli.app import environment, sandbox_least_privilege
from orgalerts.config import Config, load_config
from orgalerts.sandbox import launch, parse_sandbox_spec
from orgalerts.sandbox.least_privilege import STRICT_ENV, LeastPrivilege, strict_requested

CONFIG = Path(__file__).parent.parent / "config" / "accounts.yaml"
MEMBER = "333333333301"
NOTIFICATION = "222222222222"
OTHER = "222222222223"


def client(service: str, connection: launch.Connection, keys: tuple[str, str], token: str | None = None) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=connection.endpoint_url,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        aws_session_token=token,
    )


def as_role(connection: launch.Connection, keys: tuple[str, str], account: str, role: str, service: str) -> Any:
    creds = client("sts", connection, keys).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="test"
    )["Credentials"]
    return client(service, connection, (creds["AccessKeyId"], creds["SecretAccessKey"]), creds["SessionToken"])


def code_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return error_code(caught.value)


def plain(document: Any) -> Any:
    return json.loads(json.dumps(document))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, launch.Connection]]:
    """One background sandbox for the module (as `orgalerts sandbox` starts it); tests leave it as found."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("ORGALERTS_SANDBOX_DIR", str(tmp_path_factory.mktemp("sandbox-state")))
        monkeypatch.delenv(STRICT_ENV, raising=False)  # the default: strict
        config = load_config(CONFIG)
        assert config.sandbox is not None
        connection = launch.connect(config.sandbox, str(CONFIG), sandbox_least_privilege(config))
        try:
            yield config, connection
        finally:
            launch.stop(config.sandbox, str(CONFIG))


def test_sandbox__strict_by_default__orgalerts_runs_as_the_seeded_orchestrator(
    running: tuple[Config, launch.Connection],
) -> None:
    config, connection = running
    assert connection.strict and "strict       on" in connection.banner
    orchestrator = connection.tool_keys
    assert orchestrator != (connection.access_key_id, connection.secret_access_key)
    assert connection.orchestrator_access_key_id in connection.instructions()
    with environment(config, quiet=True) as settings:  # what every CLI command runs with
        assert (settings.access_key_id, settings.secret_access_key) == orchestrator
        assert settings.endpoint_url == connection.endpoint_url

    root = (connection.access_key_id, connection.secret_access_key)
    wanted = sandbox_least_privilege(config)
    iam = client("iam", connection, root)
    assert iam.get_user_policy(UserName="orgalerts-orchestrator", PolicyName="orgalerts-orchestrator")[
        "PolicyDocument"
    ] == plain(wanted.policies["orchestrator"])
    assert iam.list_user_policies(UserName="orgalerts-orchestrator")["PolicyNames"] == ["orgalerts-orchestrator"]
    assert iam.list_attached_user_policies(UserName="orgalerts-orchestrator")["AttachedPolicies"] == []

    # Inside the orchestrator policy: reading the organization. Outside it: anything else.
    client("organizations", connection, orchestrator).list_accounts()
    assert code_of(client("iam", connection, orchestrator).create_user, UserName="mallory") == "AccessDenied"
    assert code_of(client("sns", connection, orchestrator).create_topic, Name="x") == "AuthorizationError"
    # It may assume only the member role, not the admin OrganizationAccountAccessRole.
    assert code_of(as_role, connection, orchestrator, MEMBER, "OrganizationAccountAccessRole", "iam") == "AccessDenied"
    member_iam = as_role(connection, orchestrator, MEMBER, config.member_role.name, "iam")
    assert code_of(member_iam.create_user, UserName="mallory") == "AccessDenied"


def test_sandbox__member_role_in_every_account_holds_exactly_the_printed_policies(
    running: tuple[Config, launch.Connection],
) -> None:
    config, connection = running
    assert config.member_role.name == "OrgAlertsMemberRole"
    root = (connection.access_key_id, connection.secret_access_key)
    wanted = sandbox_least_privilege(config)
    spec = parse_sandbox_spec(config.sandbox or {}, str(CONFIG))
    accounts = [spec.management_account_id, *(a.id for a in spec.all_accounts())]
    for account in accounts:
        iam = client("iam", connection, root) if account == spec.management_account_id else None
        iam = iam or as_role(connection, root, account, "OrganizationAccountAccessRole", "iam")
        role = config.member_role.name
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{spec.management_account_id}:root"}
        expected = {"orgalerts-member": wanted.policies["member"]}
        if account == NOTIFICATION:
            expected["orgalerts-notification"] = wanted.policies["notification"]
        names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        assert sorted(names) == sorted(expected), account
        for name, document in expected.items():
            assert iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"] == plain(document)
        assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []


def test_sandbox__people_keep_admin__organization_access_role_and_aws_managed_policies(
    running: tuple[Config, launch.Connection],
) -> None:
    _, connection = running
    root = (connection.access_key_id, connection.secret_access_key)
    as_role(connection, root, MEMBER, "OrganizationAccountAccessRole", "iam").create_user(UserName="bob")

    # aws iam attach-user-policy --policy-arn arn:aws:iam::aws:policy/AdministratorAccess
    iam = client("iam", connection, root)
    iam.create_user(UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = (key["AccessKeyId"], key["SecretAccessKey"])
    client("iam", connection, alice).create_user(UserName="carol")
    client("sqs", connection, alice).create_queue(QueueName="alice-queue")


def test_sandbox__policies_change__running_sandbox_reseeded_keys_kept(
    running: tuple[Config, launch.Connection],
) -> None:
    config, connection = running
    assert config.sandbox is not None
    wanted = sandbox_least_privilege(config)
    extra = {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}
    member = {**wanted.policies["member"], "Statement": [*wanted.policies["member"]["Statement"], extra]}
    changed = LeastPrivilege(wanted.role_name, OTHER, {**wanted.policies, "member": member})

    again = launch.connect(config.sandbox, str(CONFIG), changed)

    assert again.endpoint_url == connection.endpoint_url and again.tool_keys == connection.tool_keys
    root = (connection.access_key_id, connection.secret_access_key)
    moved_to = as_role(connection, root, OTHER, "OrganizationAccountAccessRole", "iam")
    assert sorted(moved_to.list_role_policies(RoleName=wanted.role_name)["PolicyNames"]) == [
        "orgalerts-member",
        "orgalerts-notification",
    ]
    moved_from = as_role(connection, root, NOTIFICATION, "OrganizationAccountAccessRole", "iam")
    assert moved_from.list_role_policies(RoleName=wanted.role_name)["PolicyNames"] == ["orgalerts-member"]
    as_role(connection, connection.tool_keys, MEMBER, wanted.role_name, "sqs").list_queues()
    # The original policies again: re-seeded back, still the same server.
    assert launch.connect(config.sandbox, str(CONFIG), wanted).endpoint_url == connection.endpoint_url
    member_sqs = as_role(connection, connection.tool_keys, MEMBER, wanted.role_name, "sqs")
    assert code_of(member_sqs.list_queues).startswith("AccessDenied")


@pytest.mark.parametrize(
    ("value", "strict"), [(None, True), ("1", True), ("0", False), ("false", False), ("off", False), ("no", False)]
)
def test_strict_switch__orgalerts_sandbox_strict(value: str | None, strict: bool) -> None:
    assert strict_requested({} if value is None else {STRICT_ENV: value}) is strict
