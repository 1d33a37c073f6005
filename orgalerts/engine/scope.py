"""Which accounts are in scope: the Organizations reads of a run.

Owns: walking the configured OUs (nested OUs included, every page followed, several OUs at a time), applying
exclusions and inclusions, sorting out suspended accounts, and the organization facts the bus policy needs (org
id, root, the OU paths for aws:PrincipalOrgPaths). Read-only; works on an Organizations client.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.config import ROOT_ID_RE, Config
from orgalerts.errors import ConfigError, UsageError
from orgalerts.model.scope import Account, Scope, Skipped
from orgalerts.sides.base import Grant, everywhere

# IAM permissions of the orchestrator for these reads (merged by `orgalerts permissions`). On "*": DescribeOrganization,
# ListRoots and ListAccounts have no resource type; DescribeAccount, ListParents, ListAccountsForParent and
# ListOrganizationalUnitsForParent take account, ou or root ARNs, which hold the organization id the
# configuration does not know, and the strict sandbox authorizes Organizations calls on "*" only
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html).
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant(
        "orchestrator",
        "ReadOrganizationStructure",
        (
            "organizations:DescribeOrganization",
            "organizations:ListRoots",
            "organizations:ListParents",
            "organizations:ListAccounts",
            "organizations:ListAccountsForParent",
            "organizations:ListOrganizationalUnitsForParent",
            "organizations:DescribeAccount",
        ),
        everywhere,
    ),
)


# OUs listed at a time. The rate is the gateway's to keep (one Organizations bucket for the run, pacing.QUOTAS);
# walking OUs one after the other left that rate unused whenever one listing sat in a throttle wait, and every
# OU's two listings sat behind the previous OU's latency. 8 in flight keep a 10 requests/s bucket busy at up to
# ~0.8 s per call (latency plus throttle waits) without piling up waiters.
DISCOVERY_WORKERS = 8

OU_MISSING = {"ChildNotFoundException", "OrganizationalUnitNotFoundException", "ParentNotFoundException"}


def _state(raw: dict[str, Any]) -> str:
    # `State` replaces the deprecated `Status` (2025); accept either.
    return str(raw.get("State") or raw.get("Status") or "ACTIVE")


def _paginate(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    # botocore's paginator follows NextToken even when a page comes back empty.
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**params):
        items.extend(page.get(key, []))
    return items


def resolve_scope(orgs: Any, config: Config) -> Scope:
    """List the in-scope accounts. Raises UsageError for a configured OU that does not exist."""
    organization = orgs.describe_organization()["Organization"]
    org_id = str(organization["Id"])
    management_id = str(organization["MasterAccountId"])
    roots = _paginate(orgs, "list_roots", "Roots")
    root_id = str(roots[0]["Id"]) if roots else ""

    found: dict[str, Account] = {}
    ou_ids: list[str] = []
    path_patterns: list[str] = []
    whole = False
    for target in config.organization.ous:
        if ROOT_ID_RE.match(target):
            if target != root_id:
                raise UsageError(
                    f"{config.source}: organization.ous: root {target} is not this organization's root ({root_id})"
                )
            whole = True
            path_patterns.append(f"{org_id}/{root_id}/*")
        else:
            path_patterns.append(f"{org_id}/{_ou_path(orgs, target, config.source)}/*")
        for account in _accounts_under(orgs, target, ou_ids):
            found.setdefault(account.id, account)

    in_scope: list[Account] = []
    skipped: list[Skipped] = []
    excluded = set(config.organization.exclude_accounts)
    for account_id in config.organization.include_accounts:
        if account_id not in found:
            found[account_id] = _describe_account(orgs, account_id, config.source)
    for account in sorted(found.values(), key=lambda a: a.id):
        if account.id in excluded:
            skipped.append(Skipped(account, "excluded by organization.exclude_accounts"))
        elif account.state != "ACTIVE":
            skipped.append(Skipped(account, f"account is {account.state}"))
        else:
            in_scope.append(account)
    return Scope(
        organization_id=org_id,
        root_id=root_id,
        management_account_id=management_id,
        in_scope=tuple(in_scope),
        skipped=tuple(skipped),
        ou_path_patterns=tuple(path_patterns),
        whole_organization=whole,
        included_accounts=config.organization.include_accounts,
        target_ou_ids=tuple(sorted(set(ou_ids))),
    )


def _ou_path(orgs: Any, ou_id: str, source: str) -> str:
    """`r-xxxx/ou-a/ou-b` for ou-b, walking parents up to the root."""
    chain = [ou_id]
    current = ou_id
    for _ in range(10):  # Organizations nests OUs at most 5 deep below the root
        try:
            parents = orgs.list_parents(ChildId=current)["Parents"]
        except ClientError as exc:
            # AWS documents ChildNotFoundException; moto answers OrganizationalUnitNotFoundException.
            if error_code(exc) not in OU_MISSING:
                raise
            raise ConfigError(
                source, "organization.ous", f"OU ids of this organization; {ou_id} does not exist in it"
            ) from None
        if not parents:
            break
        parent = parents[0]
        chain.append(str(parent["Id"]))
        if parent["Type"] == "ROOT":
            break
        current = str(parent["Id"])
    return "/".join(reversed(chain))


def _accounts_under(orgs: Any, parent_id: str, ou_ids: list[str]) -> list[Account]:
    """Every account below `parent_id`, at any depth; every OU walked is appended to `ou_ids`. OUs are listed
    `DISCOVERY_WORKERS` at a time, each as soon as its parent's listing named it."""
    accounts: list[Account] = []
    with ThreadPoolExecutor(max_workers=DISCOVERY_WORKERS, thread_name_prefix="discovery") as pool:
        pending: set[Future[tuple[list[Account], list[str]]]] = {pool.submit(_list_parent, orgs, parent_id)}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    found, children = future.result()
                    accounts += found
                    ou_ids += children
                    pending |= {pool.submit(_list_parent, orgs, child) for child in children}
        finally:
            for future in pending:  # after a failure: start no further listing
                future.cancel()
    if parent_id.startswith("ou-"):
        ou_ids.append(parent_id)
    return accounts


def _list_parent(orgs: Any, parent: str) -> tuple[list[Account], list[str]]:
    """The accounts directly in `parent`, and its child OUs."""
    accounts = [
        Account(str(raw["Id"]), str(raw.get("Name", "")), _state(raw), parent)
        for raw in _paginate(orgs, "list_accounts_for_parent", "Accounts", ParentId=parent)
    ]
    children = [
        str(ou["Id"])
        for ou in _paginate(orgs, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent)
    ]
    return accounts, children


def _describe_account(orgs: Any, account_id: str, source: str) -> Account:
    try:
        raw = orgs.describe_account(AccountId=account_id)["Account"]
    except orgs.exceptions.AccountNotFoundException:
        raise UsageError(
            f"{source}: organization.include_accounts: account {account_id} is not in this organization"
        ) from None
    return Account(str(raw["Id"]), str(raw.get("Name", "")), _state(raw))


def account_location(orgs: Any, account_id: str) -> Account | None:
    """The account and its direct parent, or None when it is not in the organization."""
    try:
        raw = orgs.describe_account(AccountId=account_id)["Account"]
    except orgs.exceptions.AccountNotFoundException:
        return None
    parents = orgs.list_parents(ChildId=account_id)["Parents"]
    return Account(str(raw["Id"]), str(raw.get("Name", "")), _state(raw), str(parents[0]["Id"]) if parents else None)


def all_accounts(orgs: Any) -> list[Account]:
    """Every account of the organization (for finding orphans outside the scope)."""
    return [
        Account(str(r["Id"]), str(r.get("Name", "")), _state(r)) for r in _paginate(orgs, "list_accounts", "Accounts")
    ]
