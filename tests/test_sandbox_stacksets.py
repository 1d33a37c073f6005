"""The sandbox's service-managed StackSets behave as AWS documents them (orgalerts.sandbox.stacksets).

Real boto3 calls against in-process moto with the emulation applied; time is a FakeClock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import MANAGEMENT, FakeClock, SimOrg, account_client
from stackset_support import stackset_semantics

TEMPLATE = json.dumps(
    {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orgalerts-stackset-probe"}},
        }
    }
)
NAME = "orgalerts-member"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield from stackset_semantics(10.0)


def _cfn() -> Any:
    return account_client("cloudformation", MANAGEMENT)


def _queue_exists(account_id: str) -> bool:
    sqs = account_client("sqs", account_id)
    return any(u.endswith("/orgalerts-stackset-probe") for u in sqs.list_queues().get("QueueUrls", []))


def _wait(cfn: Any, op: str, clock: FakeClock) -> str:
    for _ in range(100):
        status = cfn.describe_stack_set_operation(StackSetName=NAME, OperationId=op)["StackSetOperation"]["Status"]
        if status != "RUNNING":
            return str(status)
        clock.sleep(5)
    raise AssertionError("operation never ended")


def _stack_set(sim: SimOrg, auto: bool = True, retain: bool = False) -> Any:
    cfn = _cfn()
    cfn.activate_organizations_access()
    cfn.create_stack_set(
        StackSetName=NAME,
        TemplateBody=TEMPLATE,
        PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": auto, "RetainStacksOnAccountRemoval": retain},
    )
    return cfn


def _deploy(sim: SimOrg, cfn: Any, clock: FakeClock, **targets: Any) -> str:
    deployment = {"OrganizationalUnitIds": [sim.ous["Security"], sim.ous["Workloads"]], **targets}
    op = cfn.create_stack_instances(
        StackSetName=NAME,
        DeploymentTargets=deployment,
        Regions=["us-east-1"],
        OperationPreferences={"MaxConcurrentPercentage": 100, "FailureTolerancePercentage": 100},
    )["OperationId"]
    return _wait(cfn, op, clock)


def _instances(cfn: Any) -> dict[str, dict[str, Any]]:
    return {i["Account"]: i for i in cfn.list_stack_instances(StackSetName=NAME)["Summaries"]}


def test_service_managed__needs_trusted_access(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _cfn()
    with pytest.raises(ClientError, match="organizations access"):
        cfn.create_stack_set(StackSetName=NAME, TemplateBody=TEMPLATE, PermissionModel="SERVICE_MANAGED")
    assert cfn.describe_organizations_access()["Status"] == "DISABLED"
    cfn.activate_organizations_access()
    assert cfn.describe_organizations_access()["Status"] == "ENABLED"


def test_instances__nested_ous_covered__difference_excludes__management_never(
    sim_org: SimOrg, clock: FakeClock
) -> None:
    cfn = _stack_set(sim_org)
    excluded = sim_org.accounts["excluded"]
    assert _deploy(sim_org, cfn, clock, Accounts=[excluded], AccountFilterType="DIFFERENCE") == "SUCCEEDED"
    instances = _instances(cfn)
    assert sorted(instances) == sorted(sim_org.in_scope)  # deep1 sits two OU levels below Workloads
    assert all(
        i["Status"] == "CURRENT" and i["StackInstanceStatus"]["DetailedStatus"] == "SUCCEEDED"
        for i in instances.values()
    )
    for account in sim_org.in_scope:
        assert _queue_exists(account)
        stacks = account_client("cloudformation", account).describe_stacks()["Stacks"]
        assert [s["StackName"].startswith(f"StackSet-{NAME}-") for s in stacks] == [True]
    assert not _queue_exists(excluded)
    assert not _queue_exists(sim_org.accounts["outside"])


def test_root_target__management_account_never(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org)
    op = cfn.create_stack_instances(
        StackSetName=NAME, DeploymentTargets={"OrganizationalUnitIds": [sim_org.root_id]}, Regions=["us-east-1"]
    )["OperationId"]
    _wait(cfn, op, clock)
    assert MANAGEMENT not in _instances(cfn)
    assert sim_org.accounts["outside"] in _instances(cfn)
    assert not _queue_exists(MANAGEMENT)


def test_filters__intersection_and_union(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org)
    prod1 = sim_org.accounts["prod1"]
    assert _deploy(sim_org, cfn, clock, Accounts=[prod1], AccountFilterType="INTERSECTION") == "SUCCEEDED"
    assert list(_instances(cfn)) == [prod1]
    with pytest.raises(ClientError, match="UNION"):
        cfn.create_stack_instances(
            StackSetName=NAME,
            DeploymentTargets={
                "OrganizationalUnitIds": [sim_org.ous["Prod"]],
                "Accounts": [prod1],
                "AccountFilterType": "UNION",
            },
            Regions=["us-east-1"],
        )
    with pytest.raises(ClientError, match="AccountFilterType is required"):
        cfn.create_stack_instances(
            StackSetName=NAME,
            DeploymentTargets={"OrganizationalUnitIds": [sim_org.ous["Prod"]], "Accounts": [prod1]},
            Regions=["us-east-1"],
        )


def test_one_operation_at_a_time(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org)
    first = cfn.create_stack_instances(
        StackSetName=NAME, DeploymentTargets={"OrganizationalUnitIds": [sim_org.ous["Security"]]}, Regions=["us-east-1"]
    )["OperationId"]
    with pytest.raises(ClientError) as refused:
        cfn.create_stack_instances(
            StackSetName=NAME,
            DeploymentTargets={"OrganizationalUnitIds": [sim_org.ous["Workloads"]]},
            Regions=["us-east-1"],
        )
    assert refused.value.response["Error"]["Code"] == "OperationInProgressException"
    running = _instances(cfn)[sim_org.accounts["notification"]]
    assert (running["Status"], running["StackInstanceStatus"]["DetailedStatus"]) == ("OUTDATED", "RUNNING")
    assert _wait(cfn, first, clock) == "SUCCEEDED"
    with pytest.raises(ClientError, match="StackSetNotEmpty"):
        cfn.delete_stack_set(StackSetName=NAME)


def test_default_preferences__one_account_at_a_time(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org)
    start = clock.now
    op = cfn.create_stack_instances(
        StackSetName=NAME,
        DeploymentTargets={"OrganizationalUnitIds": [sim_org.ous["Workloads"]]},
        Regions=["us-east-1"],
    )["OperationId"]
    _wait(cfn, op, clock)
    assert clock.now - start >= 4 * 10.0  # shared, excluded, prod1, prod2, deep1: five accounts, one at a time


def test_auto_deployment__account_created_in_nested_ou__and_removed_when_it_leaves(
    sim_org: SimOrg, clock: FakeClock
) -> None:
    cfn = _stack_set(sim_org)
    _deploy(sim_org, cfn, clock)
    newcomer = sim_org.add_account("newcomer", "Deep")  # created at the root, moved two levels below Workloads
    assert _queue_exists(newcomer)
    assert _instances(cfn)[newcomer]["OrganizationalUnitId"] == sim_org.ous["Workloads"]
    orgs = account_client("organizations")
    orgs.move_account(
        AccountId=newcomer, SourceParentId=sim_org.ous["Deep"], DestinationParentId=sim_org.ous["Outside"]
    )
    assert newcomer not in _instances(cfn)
    assert not _queue_exists(newcomer)
    assert account_client("cloudformation", newcomer).describe_stacks()["Stacks"] == []


def test_auto_deployment__retain_stacks_keeps_resources(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org, retain=True)
    _deploy(sim_org, cfn, clock)
    prod1 = sim_org.accounts["prod1"]
    account_client("organizations").move_account(
        AccountId=prod1, SourceParentId=sim_org.ous["Prod"], DestinationParentId=sim_org.ous["Outside"]
    )
    assert prod1 not in _instances(cfn)
    assert _queue_exists(prod1)


def test_auto_deployment_off__nothing_happens(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org, auto=False)
    _deploy(sim_org, cfn, clock)
    newcomer = sim_org.add_account("newcomer", "Prod")
    assert newcomer not in _instances(cfn)
    assert not _queue_exists(newcomer)


def test_update_without_change__leaves_drifted_resource_as_is__delete_and_create_repairs(
    sim_org: SimOrg, clock: FakeClock
) -> None:
    cfn = _stack_set(sim_org)
    _deploy(sim_org, cfn, clock)
    prod1 = sim_org.accounts["prod1"]
    sqs = account_client("sqs", prod1)
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="orgalerts-stackset-probe")["QueueUrl"])
    one = {
        "OrganizationalUnitIds": [sim_org.ous["Workloads"]],
        "Accounts": [prod1],
        "AccountFilterType": "INTERSECTION",
    }
    op = cfn.update_stack_instances(StackSetName=NAME, DeploymentTargets=one, Regions=["us-east-1"])["OperationId"]
    assert _wait(cfn, op, clock) == "SUCCEEDED"
    assert not _queue_exists(prod1)  # as on AWS: an update without a change puts nothing back
    op = cfn.delete_stack_instances(
        StackSetName=NAME, DeploymentTargets=one, Regions=["us-east-1"], RetainStacks=False
    )["OperationId"]
    _wait(cfn, op, clock)
    op = cfn.create_stack_instances(StackSetName=NAME, DeploymentTargets=one, Regions=["us-east-1"])["OperationId"]
    _wait(cfn, op, clock)
    assert _queue_exists(prod1)


def test_update_stack_set__new_template_reaches_every_instance(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org)
    _deploy(sim_org, cfn, clock)
    grown = json.loads(TEMPLATE)
    grown["Resources"]["Queue2"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orgalerts-stackset-probe2"}}
    renamed = json.dumps(grown)
    op = cfn.update_stack_set(
        StackSetName=NAME, TemplateBody=renamed, OperationPreferences={"MaxConcurrentPercentage": 100}
    )["OperationId"]
    assert _wait(cfn, op, clock) == "SUCCEEDED"
    queues = account_client("sqs", sim_org.accounts["deep1"]).list_queues()["QueueUrls"]
    assert sorted(q.rsplit("/", 1)[1] for q in queues) == ["orgalerts-stackset-probe", "orgalerts-stackset-probe2"]


def test_teardown__instances_then_stack_set(sim_org: SimOrg, clock: FakeClock) -> None:
    cfn = _stack_set(sim_org)
    _deploy(sim_org, cfn, clock)
    op = cfn.delete_stack_instances(
        StackSetName=NAME,
        DeploymentTargets={"OrganizationalUnitIds": [sim_org.ous["Security"], sim_org.ous["Workloads"]]},
        Regions=["us-east-1"],
        RetainStacks=False,
    )["OperationId"]
    _wait(cfn, op, clock)
    cfn.delete_stack_set(StackSetName=NAME)
    assert _instances_gone(sim_org)
    with pytest.raises(ClientError):
        cfn.describe_stack_set(StackSetName=NAME)


def _instances_gone(sim: SimOrg) -> bool:
    return all(
        not account_client("cloudformation", a).describe_stacks()["Stacks"] and not _queue_exists(a)
        for a in sim.in_scope
    )
