"""An alert flows end to end through resources CloudFormation created from the exported templates: the shipped
config's sandbox organization, every template deployed with `create_stack` (no parameters), `drift` says
`unchanged`, a CreateUser in a member account arrives as an alert; then one member is offboarded, its member stack
created again, and the same holds there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
from conftest import account_client
from replay_support import drain

from orgalerts.aws import Gateway, GatewaySettings
from orgalerts.config import Config, load_config
from orgalerts.engine.context import Context
from orgalerts.engine.results import Mode, Status, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.export.cloudformation import render, templates
from orgalerts.sandbox import Sandbox, parse_sandbox_spec

CONFIG_PATH = Path(__file__).parent.parent / "config" / "accounts.yaml"
MEMBER = "333333333301"  # payments-prod, nested OU
NOTIFICATION = "222222222222"
MANAGEMENT = "123456789012"


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[Sandbox, Config, Runner]]:
    config = load_config(CONFIG_PATH)
    assert config.sandbox is not None
    with Sandbox(parse_sandbox_spec(config.sandbox, str(CONFIG_PATH))) as running:
        gateway = Gateway(
            GatewaySettings(endpoint_url=running.endpoint_url, access_key_id="testing", secret_access_key="testing")
        )
        yield running, config, Runner(Context(config, gateway), retry_wait=tenacity.wait_none())


def client(sandbox: Sandbox, service: str, account: str) -> Any:
    return account_client(service, account, endpoint_url=sandbox.endpoint_url, session_name="alice")


def create_stack(sandbox: Sandbox, account: str, name: str, template: dict[str, Any]) -> None:
    cfn = client(sandbox, "cloudformation", account)
    cfn.create_stack(StackName=name, TemplateBody=render(template), Capabilities=["CAPABILITY_NAMED_IAM"])
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def listen(sandbox: Sandbox, config: Config) -> tuple[Any, str]:
    sqs = client(sandbox, "sqs", NOTIFICATION)
    url = sqs.create_queue(QueueName="export-listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client(sandbox, "sns", NOTIFICATION).subscribe(
        TopicArn=config.central.topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return sqs, url


def test_alert_flows_through_template_deployed_resources(org: tuple[Sandbox, Config, Runner]) -> None:
    sandbox, config, runner = org
    scope = runner.ctx.scope()
    built = templates(config, scope)
    create_stack(sandbox, NOTIFICATION, "orgalerts-central", built["central.yaml"])
    create_stack(sandbox, MANAGEMENT, "orgalerts-management", built["management.yaml"])
    for account in scope.in_scope:
        create_stack(sandbox, account.id, "orgalerts-member", built["member.yaml"])

    drift = runner.converge("drift", Mode.DRIFT, orphans=True)
    assert exit_code(drift) == 0
    assert {s.status for s in drift.accounts if s.account_id in {a.id for a in scope.in_scope}} == {Status.UNCHANGED}
    assert drift.central is not None and drift.central.status == Status.UNCHANGED

    sqs, url = listen(sandbox, config)
    drain(sqs, url)
    client(sandbox, "iam", MEMBER).create_user(UserName="mallory")
    (alert,) = drain(sqs, url)
    assert alert.startswith(f'"[orgalerts] INFO in account {MEMBER}: CreateUser by ')

    # offboard one member, create the member stack there again: unchanged, and it alerts again
    assert [s.status for s in runner.remove("offboard", [MEMBER]).accounts] == [Status.REMOVED]
    assert client(sandbox, "events", MEMBER).list_rules(NamePrefix="orgalerts-")["Rules"] == []
    drain(sqs, url)  # offboarding itself is reported as tampering by the watchdog, before it goes
    client(sandbox, "iam", MEMBER).create_user(UserName="unseen")
    assert drain(sqs, url) == []
    create_stack(sandbox, MEMBER, "orgalerts-member-again", built["member.yaml"])
    again = runner.converge("drift", Mode.DRIFT, only=[MEMBER])
    assert [(s.account_id, s.status) for s in again.accounts] == [(MEMBER, Status.UNCHANGED)]
    client(sandbox, "iam", MEMBER).create_user(UserName="trudy")
    (alert,) = drain(sqs, url)
    assert "CreateUser" in alert and "userName:trudy" in alert
