"""The shape of the embedded, simulated organization, and its validation.

Owns: the frozen description of the sandbox organization (ids, names, nesting, account status) and
`parse_sandbox_spec`, which turns the `sandbox:` block of the YAML configuration into it. Every problem
is reported as a `ConfigError` naming the file, the dotted key and what was expected, before any server
is started.

The ids are not free-form: they must be ids that moto itself could have generated (same regular
expressions as `moto.organizations.utils`), because the seeding hands them to moto in place of its own
random ids, and moto's API validates ids it receives against those expressions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from orgalerts.errors import ConfigError

# moto maps the access key "testing" (and every key it did not issue) to this account, so the
# management account of the sandbox organization has to be this one: create_organization is called
# with those credentials and moto makes the caller's account the management account.
MOTO_DEFAULT_ACCOUNT_ID = "123456789012"

ACCOUNT_STATUSES = ("ACTIVE", "SUSPENDED")

_ACCOUNT_ID_RE = re.compile(r"^[0-9]{12}$")
_ORG_ID_RE = re.compile(r"^o-[a-z0-9]{10}$")
_ROOT_ID_RE = re.compile(r"^r-[a-z0-9]{4}$")
_OU_ID_RE = re.compile(r"^ou-([a-z0-9]{4})-[a-z0-9]{8}$")

_TOP_KEYS = ("organization_id", "root_id", "management_account_id", "root_accounts", "ous", "organization_trail")
_OU_KEYS = ("id", "name", "accounts", "ous")
_ACCOUNT_KEYS = ("id", "name", "status")


@dataclass(frozen=True)
class SandboxAccount:
    """A member account of the sandbox organization."""

    id: str
    name: str
    status: str = "ACTIVE"


@dataclass(frozen=True)
class SandboxOU:
    """An organizational unit, with the accounts directly in it and its child OUs."""

    id: str
    name: str
    accounts: tuple[SandboxAccount, ...] = ()
    ous: tuple[SandboxOU, ...] = ()


@dataclass(frozen=True)
class SandboxSpec:
    """The whole simulated organization: ids exactly as moto will report them."""

    organization_id: str
    root_id: str
    management_account_id: str
    root_accounts: tuple[SandboxAccount, ...]
    ous: tuple[SandboxOU, ...]
    # An organization trail in the management account, logging (as a real organization has): without one
    # no IAM event reaches EventBridge, and `doctor` says so.
    organization_trail: bool = False

    def all_accounts(self) -> tuple[SandboxAccount, ...]:
        """Every member account (not the management account), root accounts first, then depth-first."""
        out: list[SandboxAccount] = list(self.root_accounts)

        def walk(ous: tuple[SandboxOU, ...]) -> None:
            for ou in ous:
                out.extend(ou.accounts)
                walk(ou.ous)

        walk(self.ous)
        return tuple(out)

    def all_ous(self) -> tuple[SandboxOU, ...]:
        """Every OU, depth-first, parents before children (the order in which they are created)."""
        out: list[SandboxOU] = []

        def walk(ous: tuple[SandboxOU, ...]) -> None:
            for ou in ous:
                out.append(ou)
                walk(ou.ous)

        walk(self.ous)
        return tuple(out)


class _Parser:
    """Walks the raw YAML value; holds what must be unique across the whole tree."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.account_ids: dict[str, str] = {}  # id -> key where first seen
        self.ou_ids: dict[str, str] = {}
        self.root_suffix = ""

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(self.source, key, expected)

    def mapping(self, raw: object, key: str, allowed: tuple[str, ...]) -> Mapping[str, object]:
        if not isinstance(raw, Mapping):
            raise self.fail(key, f"a mapping with keys {', '.join(allowed)}")
        for k in raw:
            if not isinstance(k, str) or k not in allowed:
                raise self.fail(f"{key}.{k}", f"no such key (allowed: {', '.join(allowed)})")
        return raw

    def string(self, raw: Mapping[str, object], name: str, key: str, pattern: re.Pattern[str] | None, what: str) -> str:
        if name not in raw:
            raise self.fail(f"{key}.{name}", f"required: {what}")
        value = raw[name]
        if not isinstance(value, str):
            # YAML reads an unquoted 12-digit id as an int (and drops leading zeros): insist on quotes.
            hint = " (quote it: YAML reads unquoted digits as a number)" if isinstance(value, int) else ""
            raise self.fail(f"{key}.{name}", f"{what}, as a string{hint}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(f"{key}.{name}", f"{what} (got {value!r})")
        if pattern is None and not value.strip():
            raise self.fail(f"{key}.{name}", f"{what} (got an empty string)")
        return value

    def sequence(self, raw: Mapping[str, object], name: str, key: str) -> list[object]:
        value = raw.get(name, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{key}.{name}", "a list")
        return value

    def account(self, raw: object, key: str) -> SandboxAccount:
        m = self.mapping(raw, key, _ACCOUNT_KEYS)
        account_id = self.string(m, "id", key, _ACCOUNT_ID_RE, "an account id of exactly 12 digits")
        if account_id == MOTO_DEFAULT_ACCOUNT_ID:
            raise self.fail(
                f"{key}.id",
                f"{MOTO_DEFAULT_ACCOUNT_ID} is the management account; it is "
                "created with the organization and must not be listed as a member",
            )
        if account_id in self.account_ids:
            raise self.fail(
                f"{key}.id", f"a unique account id ({account_id} is already used at {self.account_ids[account_id]})"
            )
        self.account_ids[account_id] = f"{key}.id"
        name = self.string(m, "name", key, None, "a non-empty account name")
        status = m.get("status", "ACTIVE")
        if status not in ACCOUNT_STATUSES:
            raise self.fail(f"{key}.status", f"one of {', '.join(ACCOUNT_STATUSES)} (got {status!r})")
        assert isinstance(status, str)
        return SandboxAccount(id=account_id, name=name, status=status)

    def accounts(self, raw: Mapping[str, object], name: str, key: str) -> tuple[SandboxAccount, ...]:
        return tuple(self.account(item, f"{key}.{name}[{i}]") for i, item in enumerate(self.sequence(raw, name, key)))

    def ou(self, raw: object, key: str) -> SandboxOU:
        m = self.mapping(raw, key, _OU_KEYS)
        ou_id = self.string(m, "id", key, _OU_ID_RE, f"an OU id ou-{self.root_suffix or 'xxxx'}-<8 of a-z0-9>")
        match = _OU_ID_RE.match(ou_id)
        assert match is not None
        # moto (like AWS) builds OU ids from the root id; it rejects ids whose middle part differs.
        if match.group(1) != self.root_suffix:
            raise self.fail(
                f"{key}.id", f"an OU id starting with ou-{self.root_suffix}- (the root id's suffix), got {ou_id!r}"
            )
        if ou_id in self.ou_ids:
            raise self.fail(f"{key}.id", f"a unique OU id ({ou_id} is already used at {self.ou_ids[ou_id]})")
        self.ou_ids[ou_id] = f"{key}.id"
        name = self.string(m, "name", key, None, "a non-empty OU name")
        accounts = self.accounts(m, "accounts", key)
        children = self.ous(m, key)
        return SandboxOU(id=ou_id, name=name, accounts=accounts, ous=children)

    def ous(self, raw: Mapping[str, object], key: str) -> tuple[SandboxOU, ...]:
        out: list[SandboxOU] = []
        names: dict[str, int] = {}
        for i, item in enumerate(self.sequence(raw, "ous", key)):
            child_key = f"{key}.ous[{i}]"
            ou = self.ou(item, child_key)
            # Organizations refuses two OUs of the same name under one parent.
            if ou.name in names:
                raise self.fail(
                    f"{child_key}.name",
                    f"a name unique under its parent ({ou.name!r} is also {key}.ous[{names[ou.name]}].name)",
                )
            names[ou.name] = i
            out.append(ou)
        return tuple(out)


def parse_sandbox_spec(raw: object, source: str) -> SandboxSpec:
    """Validate the value of the `sandbox:` key (already loaded from YAML) into a `SandboxSpec`.

    `source` names the file (or other origin) in error messages. Raises `ConfigError` on the first
    problem, with a dotted key such as `sandbox.ous[1].accounts[0].id`.
    """
    p = _Parser(source)
    key = "sandbox"
    m = p.mapping(raw, key, _TOP_KEYS)
    org_id = p.string(m, "organization_id", key, _ORG_ID_RE, "an organization id o-<10 of a-z0-9>")
    root_id = p.string(m, "root_id", key, _ROOT_ID_RE, "a root id r-<4 of a-z0-9>")
    p.root_suffix = root_id[2:]
    management = m.get("management_account_id", MOTO_DEFAULT_ACCOUNT_ID)
    if management != MOTO_DEFAULT_ACCOUNT_ID:
        raise p.fail(
            f"{key}.management_account_id",
            f'"{MOTO_DEFAULT_ACCOUNT_ID}" (or leave it out): the sandbox credentials map to '
            f"moto's default account {MOTO_DEFAULT_ACCOUNT_ID}, which therefore is the management "
            f"account (got {management!r})",
        )
    root_accounts = p.accounts(m, "root_accounts", key)
    ous = p.ous(m, key)
    trail = m.get("organization_trail", False)
    if not isinstance(trail, bool):
        raise p.fail(f"{key}.organization_trail", "true or false")
    return SandboxSpec(
        organization_trail=trail,
        organization_id=org_id,
        root_id=root_id,
        management_account_id=MOTO_DEFAULT_ACCOUNT_ID,
        root_accounts=root_accounts,
        ous=ous,
    )
