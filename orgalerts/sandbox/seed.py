"""Creating the sandbox organization, with the exact ids of its spec, in a running moto server.

Owns: `seed_organization` and the temporary patch of moto's id generators.

Why a patch: moto's Organizations backend invents every id at random (`utils.make_random_org_id()` and
friends in moto/organizations/models.py) and its API has no way to ask for a given id. The sandbox
promises stable, documented ids (the config names OUs and accounts by id), so while seeding we swap
those generators for ones that hand out the spec's ids. The server runs in this process, so patching the
module attribute is enough; the patch is held only for the duration of one seeding call and under a
lock, so two seedings never interleave. A request from another client that creates Organizations
objects during the seeding could in principle draw an id meant for us; nothing else talks to a sandbox
before it is seeded, and every id we receive back is checked against the spec anyway.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.organizations import utils as moto_org_utils

from orgalerts.sandbox.spec import SandboxAccount, SandboxOU, SandboxSpec

SANDBOX_REGION = "us-east-1"
SANDBOX_ACCESS_KEY_ID = "testing"
SANDBOX_SECRET_ACCESS_KEY = "testing"

_PATCH_LOCK = threading.Lock()


class _IdFeed:
    """Queues of ids to hand out, one per moto generator; falls back to moto's random id when empty."""

    def __init__(self) -> None:
        self.org: deque[str] = deque()
        self.root: deque[str] = deque()
        self.ou: deque[str] = deque()
        self.account: deque[str] = deque()

    @staticmethod
    def _pop(queue: deque[str], fallback: Callable[[], str]) -> str:
        return queue.popleft() if queue else fallback()


@contextmanager
def _fixed_ids(feed: _IdFeed) -> Iterator[None]:
    """Replace moto's Organizations id generators by `feed` while the block runs."""
    originals: dict[str, Callable[..., str]] = {
        name: getattr(moto_org_utils, name)
        for name in ("make_random_org_id", "make_random_root_id", "make_random_ou_id", "make_random_account_id")
    }

    def org_id() -> str:
        return _IdFeed._pop(feed.org, originals["make_random_org_id"])

    def root_id() -> str:
        return _IdFeed._pop(feed.root, originals["make_random_root_id"])

    def ou_id(root: str) -> str:
        return _IdFeed._pop(feed.ou, lambda: originals["make_random_ou_id"](root))

    def account_id() -> str:
        return _IdFeed._pop(feed.account, originals["make_random_account_id"])

    replacements: dict[str, Callable[..., str]] = {
        "make_random_org_id": org_id,
        "make_random_root_id": root_id,
        "make_random_ou_id": ou_id,
        "make_random_account_id": account_id,
    }
    with _PATCH_LOCK:
        for name, fn in replacements.items():
            setattr(moto_org_utils, name, fn)
        try:
            yield
        finally:
            for name, fn in originals.items():
                setattr(moto_org_utils, name, fn)


def _expect(what: str, got: str, want: str) -> None:
    if got != want:
        raise RuntimeError(f"sandbox seeding: moto gave {what} {got!r}, the spec says {want!r}")


def seed_organization(endpoint_url: str, spec: SandboxSpec) -> None:
    """Create the organization of `spec` (OUs, accounts, suspended accounts) in the moto server.

    Uses the management account's credentials (access key "testing"). Raises RuntimeError if moto does
    not end up with exactly the spec's ids (for instance if an organization already exists).
    """
    session = boto3.session.Session(
        aws_access_key_id=SANDBOX_ACCESS_KEY_ID,
        aws_secret_access_key=SANDBOX_SECRET_ACCESS_KEY,
        region_name=SANDBOX_REGION,
    )
    org: Any = session.client("organizations", endpoint_url=endpoint_url)
    feed = _IdFeed()
    with _fixed_ids(feed):
        feed.org.append(spec.organization_id)
        feed.root.append(spec.root_id)
        # create_organization builds a FakeAccount for the management account, drawing an account id
        # that moto then overwrites with the caller's: give it the management id so no random id (and
        # no stray OrganizationAccountAccessRole in a random account) appears.
        feed.account.append(spec.management_account_id)
        described = org.create_organization(FeatureSet="ALL")["Organization"]
        _expect("organization id", described["Id"], spec.organization_id)
        _expect("management account", described["MasterAccountId"], spec.management_account_id)
        roots = org.list_roots()["Roots"]
        _expect("root id", roots[0]["Id"], spec.root_id)

        suspended: list[str] = []

        def create_accounts(parent_id: str, accounts: tuple[SandboxAccount, ...]) -> None:
            for account in accounts:
                feed.account.append(account.id)
                status = org.create_account(Email=f"aws+{account.id}@example.com", AccountName=account.name)[
                    "CreateAccountStatus"
                ]
                _expect("account id", status["AccountId"], account.id)
                if parent_id != spec.root_id:
                    org.move_account(AccountId=account.id, SourceParentId=spec.root_id, DestinationParentId=parent_id)
                if account.status == "SUSPENDED":
                    suspended.append(account.id)

        def create_ous(parent_id: str, ous: tuple[SandboxOU, ...]) -> None:
            for ou in ous:
                feed.ou.append(ou.id)
                created = org.create_organizational_unit(ParentId=parent_id, Name=ou.name)
                _expect("OU id", created["OrganizationalUnit"]["Id"], ou.id)
                create_accounts(ou.id, ou.accounts)
                create_ous(ou.id, ou.ous)

        create_accounts(spec.root_id, spec.root_accounts)
        create_ous(spec.root_id, spec.ous)
        # Close only once every account sits in its OU: a closed account cannot be moved in AWS.
        for account_id in suspended:
            org.close_account(AccountId=account_id)


SANDBOX_TRAIL = "sandbox-organization-trail"


def seed_organization_trail(endpoint_url: str, spec: SandboxSpec) -> None:
    """An organization trail in the management account (multi-region, management events, logging), with its
    bucket: what `doctor` looks for, and what makes CloudTrail deliver IAM events to EventBridge on AWS."""
    session = boto3.session.Session(
        aws_access_key_id=SANDBOX_ACCESS_KEY_ID,
        aws_secret_access_key=SANDBOX_SECRET_ACCESS_KEY,
        region_name=SANDBOX_REGION,
    )
    bucket = f"sandbox-trail-{spec.management_account_id}"
    session.client("s3", endpoint_url=endpoint_url).create_bucket(Bucket=bucket)
    cloudtrail: Any = session.client("cloudtrail", endpoint_url=endpoint_url)
    cloudtrail.create_trail(
        Name=SANDBOX_TRAIL,
        S3BucketName=bucket,
        IsOrganizationTrail=True,
        IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True,
    )
    cloudtrail.start_logging(Name=SANDBOX_TRAIL)
