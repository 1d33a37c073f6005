"""One botocore client per service is shared by every account; each call is signed as, and reported for, its own
account (paginated calls included). On moto in-process: moto maps each access key to its account."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from conftest import CallLog, SimOrg, make_engine

from orgalerts.aws import BotoCoreError, Gateway, GatewaySettings, token_pages
from orgalerts.engine.results import Mode, exit_code
from orgalerts.model.addresses import MEMBER_REGION, role_arn


def test_gateway__clients_created_per_service_not_per_account(sim_org: SimOrg, call_log: CallLog) -> None:
    gateway = Gateway(GatewaySettings(max_attempts=3))
    created: Counter[tuple[str, str]] = Counter()
    original = gateway._session.client

    def counting_client(service: str, **kwargs: Any) -> Any:
        created[(service, kwargs.get("region_name", ""))] += 1
        return original(service, **kwargs)  # type: ignore[call-overload]

    gateway._session.client = counting_client  # type: ignore[method-assign]

    result = make_engine(sim_org.config(), call_log, gateway=gateway).converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 0
    # One per service, region and side (own credentials / member accounts), however many accounts: not 5 x 3.
    # (The other regions are where the central side looks for what a previous `region` left.)
    assert all(n <= 2 for n in created.values()), created


def test_gateway__shared_client__each_call_signed_as_its_account_and_reported_for_it(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    gateway = Gateway(GatewaySettings(max_attempts=3))
    gateway.add_observer(call_log)
    prod1, prod2 = sim_org.accounts["prod1"], sim_org.accounts["prod2"]
    first = gateway.account(prod1, role_arn(prod1, "OrganizationAccountAccessRole"), None)
    second = gateway.account(prod2, role_arn(prod2, "OrganizationAccountAccessRole"), None)

    identities = {
        first.client("sts", MEMBER_REGION).get_caller_identity()["Account"],
        second.client("sts", MEMBER_REGION).get_caller_identity()["Account"],
    }
    first.client("iam", MEMBER_REGION).create_role(RoleName="only-in-prod1", AssumeRolePolicyDocument="{}")
    pages = list(second.client("iam", MEMBER_REGION).get_paginator("list_roles").paginate())
    own = gateway.base().client("sts", MEMBER_REGION).get_caller_identity()["Account"]

    assert identities == {prod1, prod2}
    assert "only-in-prod1" not in {r["RoleName"] for page in pages for r in page["Roles"]}
    assert own == "123456789012"  # the caller's own credentials: the shared client's, unchanged
    by_account = {(c.account_id, c.operation) for c in call_log.calls}
    assert (prod1, "CreateRole") in by_account
    assert (prod2, "ListRoles") in by_account  # a paginated call is reported for the account it ran in
    assert (prod2, "CreateRole") not in by_account
    assert first.client("iam", MEMBER_REGION)._client is second.client("iam", MEMBER_REGION)._client


def test_gateway__member_client_used_without_its_account__refuses_instead_of_signing_as_orchestrator(
    sim_org: SimOrg,
) -> None:
    from orgalerts.aws import UnboundMemberCall

    gateway = Gateway(GatewaySettings(max_attempts=1))
    access = gateway.account(
        sim_org.accounts["prod1"], role_arn(sim_org.accounts["prod1"], "OrganizationAccountAccessRole"), None
    )
    shared = access.client("iam", "us-east-1")._client  # the shared client, bypassing the account binding
    with pytest.raises(UnboundMemberCall):
        shared.list_roles()


def test_token_pages__every_page_followed_in_order__a_token_returned_twice_stops_the_read(sim_org: SimOrg) -> None:
    events = sim_org.client("events", sim_org.accounts["prod1"])
    for i in range(3):
        events.put_rule(Name=f"paged-{i}", EventPattern='{"source": ["aws.iam"]}')
    pages = list(token_pages(events.list_rules, NamePrefix="paged-", Limit=1))
    assert [[r["Name"] for r in page["Rules"]] for page in pages] == [["paged-0"], ["paged-1"], ["paged-2"]]

    def stuck(**params: Any) -> dict[str, Any]:
        return {"Rules": [], "NextToken": "same"}

    with pytest.raises(BotoCoreError, match="the same NextToken came back twice from stuck"):
        list(token_pages(stuck))
