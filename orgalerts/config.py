"""Configuration: YAML file -> validated, frozen objects.

Owns: reading the config file safely (no arbitrary YAML tags, no aliases, no duplicate keys, a size cap)
and validating every key once, at the boundary, before any AWS call. Every error is a `ConfigError`
naming the file, the key and what was expected. Unknown keys are errors: a typo must never be ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from orgalerts.aws import known_regions, partition_regions
from orgalerts.errors import ConfigError
from orgalerts.model.addresses import CentralAddress, Names, topic_arn
from orgalerts.model.patterns import (
    IGNORE_NAMES,
    MAX_PATTERN_CHARS,
    PATTERN_NAMES,
    PatternInputs,
    constrains_event_name,
    deployed_patterns,
    oversized_patterns,
)
from orgalerts.model.severity import NAMES as SEVERITY_NAMES

# `\Z`, not `$` (which also matches before a trailing newline); re.ASCII: IAM's \w is [A-Za-z0-9_], not Unicode.
ACCOUNT_ID_RE = re.compile(r"^[0-9]{12}\Z")
OU_ID_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}\Z")
ROOT_ID_RE = re.compile(r"^r-[0-9a-z]{4,32}\Z")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\Z")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}\Z", re.ASCII)
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,29}\Z")
PRINCIPAL_RE = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|\*):(iam|sts|\*)::[0-9*]{1,12}:[A-Za-z0-9+=,.@_/*-]+\Z")
EVENT_NAME_RE = re.compile(r"^[A-Z][A-Za-z0-9]{1,127}\Z")
EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}\Z", re.ASCII)
# CloudTrail: 3-128 characters, letters/digits at both ends, never two of `._-` in a row, not an IP address.
TRAIL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|[._-](?=[A-Za-z0-9])){2,127}\Z")
IP_LIKE_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")

# A config file is a few kilobytes; refusing huge files keeps a mistake (or a hostile file) cheap.
MAX_CONFIG_BYTES = 1_000_000
MAX_LIST_ITEMS = 1000

DEFAULT_CONFIG_PATH = "config/accounts.yaml"


@dataclass(frozen=True)
class OrganizationConfig:
    """Which accounts are in scope: every account under `ous` (at any depth), less exclusions, plus inclusions."""

    ous: tuple[str, ...]
    exclude_accounts: tuple[str, ...]
    include_accounts: tuple[str, ...]


@dataclass(frozen=True)
class MemberRoleConfig:
    """The role the orchestrator assumes in each member account."""

    name: str
    external_id: str | None


@dataclass(frozen=True)
class NotificationConfig:
    """The account holding the central bus, rule and topic, and who gets the e-mails."""

    account_id: str
    emails: tuple[str, ...]


DESTINATION_TYPES = ("email", "slack", "teams", "pagerduty", "webhook")
# A destination's name goes into resource names (connection and API destination `<prefix>dest-<name>`, the
# verify rule `<prefix>verify-<name>`, target ids): EventBridge names take [.\-_A-Za-z0-9], 1-64 characters
# (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateConnection.html, Name), and the
# prefix takes up to 30 of them.
DESTINATION_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
# RFC 7230 token characters (an HTTP header name); EventBridge takes them as ApiKeyName.
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}\Z")
# "Targets per rule: 5" (not adjustable): https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
MAX_TARGETS_PER_RULE = 5
# Every alerting rule keeps its target on the alert topic (notification.emails, and what verify, watch and
# redrive use); every destination admits critical alerts, so a critical rule has one target per destination.
MAX_DESTINATIONS = MAX_TARGETS_PER_RULE - 1
# The keys each type takes besides name, type and min_severity; the first list is required.
_DESTINATION_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "email": ({"emails"}, set()),
    "slack": ({"url_env"}, set()),
    "teams": ({"url_env"}, set()),
    # url_env: another Events API v2 endpoint, e.g. PagerDuty's EU service region https://events.eu.pagerduty.com/v2/enqueue
    "pagerduty": ({"routing_key_env"}, {"url_env"}),
    "webhook": ({"url_env"}, {"header_name", "header_value_env"}),
}


@dataclass(frozen=True)
class DestinationConfig:
    """One place alerts go: an e-mail list, a Slack or Teams webhook, PagerDuty, or a JSON webhook.

    Secrets are never held here: only the NAMES of the environment variables that hold them, read when a
    command needs them (`destination_secrets`)."""

    name: str
    type: str
    min_severity: str = "info"
    emails: tuple[str, ...] = ()
    url_env: str = ""
    routing_key_env: str = ""
    header_name: str = ""
    header_value_env: str = ""

    @property
    def over_http(self) -> bool:
        """Delivered through an EventBridge API destination (everything but e-mail)."""
        return self.type != "email"

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(e for e in (self.url_env, self.routing_key_env, self.header_value_env) if e)


@dataclass(frozen=True)
class AlertsConfig:
    """What is alerted on, what is left out, and what protects the alerting itself."""

    pattern: str
    exclude_principals: tuple[str, ...] = ()
    exclude_events: tuple[str, ...] = ()
    tamper_alerts: bool = True
    dead_letter_queues: bool = True
    account_changes: bool = True
    ignore: tuple[str, ...] = ()  # noise presets (patterns.IGNORE_PRESETS), applied in the member rule
    # Which identity changes are alerted on, each opt-in (see README "Sources"): iam, organizations,
    # identity-center, root-activity, sts.
    sources: tuple[str, ...] = ("iam",)


# `alerts.sources`: where each source's rule lives is in README "Sources".
SOURCE_NAMES: tuple[str, ...] = ("iam", "organizations", "identity-center", "root-activity", "sts")
# Sources forwarded by the member rule (the others have rules of their own in one account).
MEMBER_SOURCES = frozenset({"iam", "root-activity", "sts"})


@dataclass(frozen=True)
class IdentityCenterConfig:
    """Where IAM Identity Center lives: its account (None: the management account) and home region
    (None: `region`). Only read with `alerts.sources` including identity-center."""

    account_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class TrailConfig:
    """Opt-in: `deploy` creates and manages an organization trail (and its S3 bucket) in the management account."""

    create: bool = False
    name: str = "orgalerts-trail"


@dataclass(frozen=True)
class GuardrailConfig:
    """Opt-in: an SCP on the target OUs denying changes to orgalerts' resources to all but the member role."""

    scp: bool = False


DEPLOY_ENGINES = ("direct", "stacksets")


@dataclass(frozen=True)
class DeployConfig:
    """How members are deployed: `direct` (orgalerts converges each account itself) or `stacksets` (a
    service-managed CloudFormation StackSet fans out; orgalerts.engine.stacksets)."""

    engine: str = "direct"


@dataclass(frozen=True)
class Config:
    """The whole validated configuration. `sandbox` is kept raw: only the sandbox package reads it."""

    source: str
    region: str
    organization: OrganizationConfig
    member_role: MemberRoleConfig
    notification: NotificationConfig
    alerts: AlertsConfig
    resource_prefix: str
    workers: int
    sandbox: Mapping[str, Any] | None
    trail: TrailConfig = field(default_factory=TrailConfig)
    guardrail: GuardrailConfig = field(default_factory=GuardrailConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    identity_center: IdentityCenterConfig = field(default_factory=IdentityCenterConfig)

    @property
    def identity_center_region(self) -> str:
        """The Identity Center home region (identity_center.region, else `region`)."""
        return self.identity_center.region or self.region

    def source_on(self, source: str) -> bool:
        return source in self.alerts.sources

    # Explicit `destinations`; e-mail destinations with min_severity info are also in notification.emails.
    destinations: tuple[DestinationConfig, ...] = ()

    @property
    def http_destinations(self) -> tuple[DestinationConfig, ...]:
        return tuple(d for d in self.destinations if d.over_http)

    @property
    def names(self) -> Names:
        return Names(self.resource_prefix)

    @property
    def central(self) -> CentralAddress:
        """Where the central side lives (notification account, configured region)."""
        return CentralAddress(self.notification.account_id, self.region, self.names)

    @property
    def patterns(self) -> PatternInputs:
        """What every deployed event pattern is built from."""
        return pattern_inputs(self.alerts, self.names)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses aliases (billion-laughs) and duplicate keys (silent overrides)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not accepted in the config", event.start_mark
            )
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(event, "tag", None) not in (None, "!"):  # !!int abc, !!timestamp x, !!python/...: none needed
            raise yaml.constructor.ConstructorError(
                None, None, f"YAML tags ({event.tag}) are not accepted in the config", event.start_mark
            )
        if getattr(event, "anchor", None) is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "YAML anchors (&name) are not accepted in the config", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"keys must be strings, found {key!r}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> int:
        # No config value needs more; a 5000-digit number fails to convert or to print (Python's int limits).
        if len(str(node.value)) > 40:
            raise yaml.constructor.ConstructorError(None, None, "numbers of at most 40 characters", node.start_mark)
        return int(super().construct_yaml_int(node))


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def load_config(path: str | Path) -> Config:
    """Read and validate the config file at `path`. Raises ConfigError; never touches AWS."""
    source = str(path)
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise ConfigError(source, "(file)", f"a readable config file ({exc.strerror or exc})") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(source, "(file)", f"a config file under {MAX_CONFIG_BYTES} bytes, found {size}")
    try:
        with file.open("rb") as handle:  # bounded: a device or a FIFO has no size to check beforehand
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(source, "(file)", f"a config file under {MAX_CONFIG_BYTES} bytes")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "(file)", f"a readable UTF-8 text file ({exc})") from None
    return parse_config(text, source)


def parse_config(text: str, source: str) -> Config:
    """Validate config text (YAML) into a Config. Raises ConfigError."""
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = (getattr(exc, "problem", None) or str(exc)).splitlines()[0]
        raise ConfigError(source, "(yaml)", f"valid YAML{where}: {problem}") from None
    except ValueError as exc:  # an implicit value that cannot be built: 2024-13-45, an int of 5000 digits
        raise ConfigError(source, "(yaml)", f"valid YAML values: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise ConfigError(source, "(yaml)", "valid YAML nested a sane number of levels deep") from None
    return validate_config(raw, source)


def validate_config(raw: object, source: str) -> Config:
    """Validate an already-parsed document. Pure; raises ConfigError."""
    v = _Validator(source)
    top = v.mapping(raw, "(top level)")
    v.only_keys(
        top,
        "",
        required={"organization", "notification"},
        optional={
            "region",
            "member_role",
            "alerts",
            "resource_prefix",
            "workers",
            "sandbox",
            "trail",
            "guardrail",
            "deploy",
            "identity_center",
            "destinations",
        },
    )
    # In the file's reading order, so the first mistake is the one reported.
    region = _region(v, top.get("region", "us-east-1"))
    organization = _organization(v, top["organization"])
    member_role = _member_role(v, top.get("member_role", {}))
    destinations = _destinations(v, top.get("destinations", []))
    notification = _notification(v, top["notification"], destinations)
    alerts = _alerts(v, top.get("alerts", {}))
    prefix = v.string(top.get("resource_prefix", "orgalerts-"), "resource_prefix")
    if not PREFIX_RE.match(prefix.rstrip("-")) or len(prefix) > 30:
        raise ConfigError(source, "resource_prefix", f"1-30 characters of [A-Za-z0-9_-], found {_short(prefix)!r}")
    _check_pattern_sizes(source, alerts, prefix, region, notification.account_id)
    workers_raw = top.get("workers", 32)
    if isinstance(workers_raw, bool) or not isinstance(workers_raw, int) or not 1 <= workers_raw <= 256:
        raise ConfigError(source, "workers", f"an integer from 1 to 256, found {_kind(workers_raw)}")
    sandbox_raw = top.get("sandbox")
    sandbox = v.mapping(sandbox_raw, "sandbox") if sandbox_raw is not None else None
    trail = _trail(v, top.get("trail", {}), prefix)
    guardrail_raw = v.mapping(top.get("guardrail", {}), "guardrail")
    v.only_keys(guardrail_raw, "guardrail", required=set(), optional={"scp"})
    deploy = _deploy(v, top.get("deploy", {}))
    identity_center = _identity_center(v, top.get("identity_center", {}), organization)
    return Config(
        source=source,
        region=region,
        organization=organization,
        member_role=member_role,
        notification=notification,
        alerts=alerts,
        resource_prefix=prefix,
        workers=workers_raw,
        sandbox=sandbox,
        trail=trail,
        guardrail=GuardrailConfig(scp=v.boolean(guardrail_raw.get("scp", False), "guardrail.scp")),
        deploy=deploy,
        identity_center=identity_center,
        destinations=destinations,
    )


def _deploy(v: _Validator, raw: object) -> DeployConfig:
    deploy_raw = v.mapping(raw, "deploy")
    v.only_keys(deploy_raw, "deploy", required=set(), optional={"engine"})
    engine = deploy_raw.get("engine", "direct")
    if not isinstance(engine, str) or engine not in DEPLOY_ENGINES:
        found = repr(_short(engine)) if isinstance(engine, str) else _kind(engine)
        raise ConfigError(v.source, "deploy.engine", f"one of {', '.join(DEPLOY_ENGINES)}, found {found}")
    return DeployConfig(engine=engine)


def _region(v: _Validator, raw: object, key: str = "region") -> str:
    region = v.string(raw, key)
    if region not in known_regions():
        raise ConfigError(v.source, key, f"an AWS region name such as us-east-1, found {_short(region)!r}")
    if region not in partition_regions("aws"):
        # Every ARN orgalerts writes is arn:aws:...; China and GovCloud regions are other partitions.
        raise ConfigError(
            v.source,
            key,
            f"a region of the standard aws partition (orgalerts writes arn:aws ARNs), found {_short(region)!r}, "
            "which is in another partition (aws-cn or aws-us-gov)",
        )
    return region


def _organization(v: _Validator, raw: object) -> OrganizationConfig:
    source = v.source
    org_raw = v.mapping(raw, "organization")
    v.only_keys(org_raw, "organization", required={"ous"}, optional={"exclude_accounts", "include_accounts"})
    ous = v.string_list(org_raw["ous"], "organization.ous", _ou_or_root(source), allow_empty=True)
    exclude = v.string_list(
        org_raw.get("exclude_accounts", []), "organization.exclude_accounts", _account_id(source), True
    )
    include = v.string_list(
        org_raw.get("include_accounts", []), "organization.include_accounts", _account_id(source), True
    )
    if not ous and not include:
        raise ConfigError(source, "organization.ous", "at least one OU or root id (or organization.include_accounts)")
    return OrganizationConfig(ous=ous, exclude_accounts=exclude, include_accounts=include)


def _member_role(v: _Validator, raw: object) -> MemberRoleConfig:
    source = v.source
    role_raw = v.mapping(raw, "member_role")
    v.only_keys(role_raw, "member_role", required=set(), optional={"name", "external_id"})
    role_name = v.string(role_raw.get("name", "OrganizationAccountAccessRole"), "member_role.name")
    if not ROLE_NAME_RE.match(role_name):
        raise ConfigError(
            source, "member_role.name", f"an IAM role name (1-64 of [A-Za-z0-9+=,.@_-]), found {_short(role_name)!r}"
        )
    external_id_raw = role_raw.get("external_id")
    external_id = None
    if external_id_raw is not None:
        external_id = v.string(external_id_raw, "member_role.external_id")
        if not EXTERNAL_ID_RE.match(external_id):
            raise ConfigError(source, "member_role.external_id", "null or 2-1224 characters of [\\w+=,.@:/-]")
    return MemberRoleConfig(name=role_name, external_id=external_id)


def _notification(v: _Validator, raw: object, destinations: tuple[DestinationConfig, ...] = ()) -> NotificationConfig:
    """`emails` may be left out when `destinations` are given. The result's `emails` are every address of the
    alert topic: notification.emails plus the e-mail destinations with min_severity info (that topic
    receives every alert, so it is what such a destination is)."""
    notif_raw = v.mapping(raw, "notification")
    required = {"account_id"} if destinations else {"account_id", "emails"}
    v.only_keys(notif_raw, "notification", required=required, optional={"emails"})
    account_id = _account_id(v.source)(notif_raw["account_id"], "notification.account_id")
    emails = v.string_list(notif_raw.get("emails", []), "notification.emails", _email(v.source), allow_empty=True)
    extra = [e for d in destinations if d.type == "email" and d.min_severity == "info" for e in d.emails]
    return NotificationConfig(account_id=account_id, emails=tuple(dict.fromkeys([*emails, *extra])))


def _destinations(v: _Validator, raw: object) -> tuple[DestinationConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(v.source, "destinations", f"a list of destinations, found {_kind(raw)}")
    if len(raw) > MAX_DESTINATIONS:
        raise ConfigError(
            v.source,
            "destinations",
            f"at most {MAX_DESTINATIONS} destinations, found {len(raw)}: an EventBridge rule takes at most "
            f"{MAX_TARGETS_PER_RULE} targets (the alert topic and one per destination admitting its severity)",
        )
    found = tuple(_destination(v, entry, f"destinations[{index}]") for index, entry in enumerate(raw))
    names = [d.name for d in found]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise ConfigError(v.source, f"destinations[{index}].name", f"a unique name, found {name!r} twice")
    return found


def _destination(v: _Validator, raw: object, key: str) -> DestinationConfig:
    entry = v.mapping(raw, key)
    kind = entry.get("type")
    if kind not in DESTINATION_TYPES:
        raise ConfigError(v.source, f"{key}.type", f"one of {', '.join(DESTINATION_TYPES)}, found {_kind(kind)}")
    required, optional = _DESTINATION_KEYS[str(kind)]
    v.only_keys(entry, key, required={"name", "type", *required}, optional={"min_severity", *optional})
    name = entry["name"]
    if not isinstance(name, str) or not DESTINATION_NAME_RE.match(name):
        raise ConfigError(
            v.source,
            f"{key}.name",
            f"1-24 of [a-z0-9-], starting and ending with a letter or digit, found {_kind(name)}",
        )
    severity = entry.get("min_severity", "info")
    if severity not in SEVERITY_NAMES:
        raise ConfigError(
            v.source, f"{key}.min_severity", f"one of {', '.join(SEVERITY_NAMES)}, found {_kind(severity)}"
        )
    envs = {
        k: _env_name(v, entry[k], f"{key}.{k}")
        for k in ("url_env", "routing_key_env", "header_value_env")
        if k in entry
    }
    header = entry.get("header_name", "")
    if header and (not isinstance(header, str) or not HEADER_NAME_RE.match(header)):
        raise ConfigError(
            v.source, f"{key}.header_name", f"an HTTP header name such as X-Api-Key, found {_kind(header)}"
        )
    if bool(header) != bool(envs.get("header_value_env")):
        raise ConfigError(v.source, f"{key}.header_name", "header_name and header_value_env together, or neither")
    emails = v.string_list(entry["emails"], f"{key}.emails", _email(v.source), False) if kind == "email" else ()
    if kind == "email" and severity != "info":
        # E-mail goes through the one alert topic, which receives every alert; a topic per e-mail destination
        # (for a higher min_severity) is not built yet.
        raise ConfigError(v.source, f"{key}.min_severity", f"info for an e-mail destination, found {severity!r}")
    return DestinationConfig(name, str(kind), str(severity), emails, header_name=header, **envs)


def _env_name(v: _Validator, value: object, key: str) -> str:
    if not isinstance(value, str) or not ENV_NAME_RE.match(value):
        raise ConfigError(
            v.source, key, f"the name of an environment variable such as ORGALERTS_SLACK_URL, found {_kind(value)}"
        )
    return value


def destination_secrets(config: Config, environ: Mapping[str, str]) -> dict[str, str]:
    """The secret values of the configured destinations, by environment variable name (never logged or shown).

    Raises ConfigError naming the destination and the variable when one is unset or empty: `plan`, `deploy`,
    `drift` and `onboard` need them to build (or compare the digests of) connections and API destinations."""
    values: dict[str, str] = {}
    for index, destination in enumerate(config.destinations):
        for attr in ("url_env", "routing_key_env", "header_value_env"):
            env = str(getattr(destination, attr))
            if not env:
                continue
            value = environ.get(env, "")
            if not value.strip():
                raise ConfigError(
                    config.source,
                    f"destinations[{index}].{attr}",
                    f"environment variable {env} set (destination {destination.name!r} reads its "
                    f"{'URL' if attr == 'url_env' else 'secret'} from it), found it unset or empty",
                )
            values[env] = value
    return values


ALERT_KEYS = {
    "pattern",
    "exclude_principals",
    "exclude_events",
    "tamper_alerts",
    "dead_letter_queues",
    "account_changes",
    "ignore",
    "sources",
}


def _alerts(v: _Validator, raw: object) -> AlertsConfig:
    source = v.source
    alerts_raw = v.mapping(raw, "alerts")
    v.only_keys(alerts_raw, "alerts", required=set(), optional=ALERT_KEYS)
    pattern = v.string(alerts_raw.get("pattern", "iam-changes"), "alerts.pattern")
    if pattern not in PATTERN_NAMES:
        raise ConfigError(source, "alerts.pattern", f"one of {', '.join(PATTERN_NAMES)}, found {_short(pattern)!r}")
    exclude_principals = v.string_list(
        alerts_raw.get("exclude_principals", []), "alerts.exclude_principals", _principal_pattern(source), True
    )
    exclude_events = v.string_list(
        alerts_raw.get("exclude_events", []), "alerts.exclude_events", _event_name(source), True
    )
    if exclude_events and constrains_event_name(pattern):
        raise ConfigError(
            source,
            "alerts.exclude_events",
            f"an empty list with pattern {pattern} (it selects by event name already); use iam-changes or all-iam",
        )
    ignore = v.string_list(alerts_raw.get("ignore", []), "alerts.ignore", _ignore_preset(source), True)
    return AlertsConfig(
        ignore=ignore,
        pattern=pattern,
        exclude_principals=exclude_principals,
        exclude_events=exclude_events,
        tamper_alerts=v.boolean(alerts_raw.get("tamper_alerts", True), "alerts.tamper_alerts"),
        dead_letter_queues=v.boolean(alerts_raw.get("dead_letter_queues", True), "alerts.dead_letter_queues"),
        account_changes=v.boolean(alerts_raw.get("account_changes", True), "alerts.account_changes"),
        sources=_sources(v, alerts_raw.get("sources", ["iam"])),
    )


def _sources(v: _Validator, raw: object) -> tuple[str, ...]:
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or value not in SOURCE_NAMES:
            raise ConfigError(v.source, key, f"one of {', '.join(SOURCE_NAMES)}, found {_kind(value)}")
        return value

    sources = v.string_list(raw, "alerts.sources", check, allow_empty=False)
    if not MEMBER_SOURCES & set(sources):
        # The member rule must forward something: its pattern cannot be empty.
        raise ConfigError(
            v.source, "alerts.sources", "a list with at least one of iam, root-activity, sts (member accounts' sources)"
        )
    return sources


def _identity_center(v: _Validator, raw: object, organization: OrganizationConfig) -> IdentityCenterConfig:
    ic_raw = v.mapping(raw, "identity_center")
    v.only_keys(ic_raw, "identity_center", required=set(), optional={"account_id", "region"})
    account_raw, region_raw = ic_raw.get("account_id"), ic_raw.get("region")
    account = _account_id(v.source)(account_raw, "identity_center.account_id") if account_raw is not None else None
    if account is not None and account in organization.exclude_accounts:
        # orgalerts never enters an excluded account.
        raise ConfigError(
            v.source, "identity_center.account_id", f"an account not in organization.exclude_accounts, found {account}"
        )
    region = _region(v, region_raw, "identity_center.region") if region_raw is not None else None
    return IdentityCenterConfig(account_id=account, region=region)


def _trail(v: _Validator, raw: object, prefix: str) -> TrailConfig:
    trail_raw = v.mapping(raw, "trail")
    v.only_keys(trail_raw, "trail", required=set(), optional={"create", "name"})
    trail_name = v.string(trail_raw.get("name", f"{prefix}trail"), "trail.name")
    if not TRAIL_NAME_RE.match(trail_name) or IP_LIKE_RE.match(trail_name):
        raise ConfigError(
            v.source,
            "trail.name",
            f"a trail name (3-128 of [A-Za-z0-9._-], alphanumeric at both ends), found {_kind(trail_name)}",
        )
    return TrailConfig(create=v.boolean(trail_raw.get("create", False), "trail.create"), name=trail_name)


def _check_pattern_sizes(source: str, alerts: AlertsConfig, prefix: str, region: str, account_id: str) -> None:
    """Refuse a config whose deployed event patterns (final texts, real prefix) exceed EventBridge's limit.

    Quota "Event pattern size: 2,048 characters": https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
    """
    names = Names(prefix)
    inputs = pattern_inputs(alerts, names)
    topic = topic_arn(region, account_id, names.topic)
    oversized = oversized_patterns(deployed_patterns(inputs, bus_name=names.central_bus, topic_arn=topic))
    if oversized:
        rule, size = oversized[0]
        key = "alerts.exclude_principals" if alerts.exclude_principals else "resource_prefix"
        raise ConfigError(
            source,
            key,
            f"fewer or shorter exclusions (or a shorter resource_prefix): the {rule}'s event pattern would be "
            f"{size} characters, over EventBridge's limit of {MAX_PATTERN_CHARS:,} characters",
        )


def pattern_inputs(alerts: AlertsConfig, names: Names) -> PatternInputs:
    """The plain values every deployed pattern is built from."""
    return PatternInputs(
        pattern=alerts.pattern,
        exclude_principals=alerts.exclude_principals,
        exclude_events=alerts.exclude_events,
        tamper_alerts=alerts.tamper_alerts,
        prefix=names.prefix,
        member_rule=names.member_rule,
        forwarder_role=names.forwarder_role,
        watchdog_rule=names.watchdog_rule,
        watchdog_role=names.watchdog_role,
        ignore=alerts.ignore,
        sources=alerts.sources,
    )


T = TypeVar("T")


class _Validator:
    """Small typed checks that all report through ConfigError with the file and dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def mapping(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(self.source, key, f"a mapping of keys to values, found {_kind(value)}")
        return value

    def only_keys(self, value: Mapping[str, Any], key: str, *, required: set[str], optional: set[str]) -> None:
        prefix = f"{key}." if key else ""
        for name in value:
            if name not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise ConfigError(self.source, f"{prefix}{_short(str(name))}", f"no such key (allowed here: {allowed})")
        for name in sorted(required):
            if name not in value:
                raise ConfigError(self.source, f"{prefix}{name}", "this key is required")

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(self.source, key, f"true or false, found {_kind(value)}")
        return value

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(self.source, key, f"a non-empty string, found {_kind(value)}")
        return value

    def string_list(
        self, value: object, key: str, item: Callable[[object, str], str], allow_empty: bool
    ) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise ConfigError(self.source, key, f"a list, found {_kind(value)}")
        if not value and not allow_empty:
            raise ConfigError(self.source, key, "a non-empty list")
        if len(value) > MAX_LIST_ITEMS:
            raise ConfigError(self.source, key, f"at most {MAX_LIST_ITEMS} items, found {len(value)}")
        items = tuple(item(entry, f"{key}[{index}]") for index, entry in enumerate(value))
        duplicates = sorted({entry for entry in items if items.count(entry) > 1})
        if duplicates:
            raise ConfigError(self.source, key, f"no duplicates, found {duplicates[0]!r} twice")
        return items


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({_short(_digits(value))})"
    if isinstance(value, str):
        return f"a string ({_short(value)!r})" if value.strip() else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _digits(value: int | float) -> str:
    try:
        return str(value)
    except ValueError:  # Python refuses to print ints of more than 4300 digits (e.g. from YAML's 0xffff...)
        return "a number too long to print"


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _account_id(source: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ConfigError(
                source,
                key,
                f'a quoted 12-digit account id such as "012345678901", found the unquoted number {_digits(value)[:40]} '
                "(YAML reads unquoted ids as numbers, octal when they start with 0)",
            )
        if not isinstance(value, str) or not ACCOUNT_ID_RE.match(value):
            raise ConfigError(source, key, f'a quoted 12-digit account id such as "012345678901", found {_kind(value)}')
        return value

    return check


def _ou_or_root(source: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or not (OU_ID_RE.match(value) or ROOT_ID_RE.match(value)):
            raise ConfigError(source, key, f"an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx), found {_kind(value)}")
        return value

    return check


def _principal_pattern(source: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or len(value) > 256 or not PRINCIPAL_RE.match(value):
            raise ConfigError(
                source,
                key,
                "an IAM or STS ARN pattern with * wildcards such as arn:aws:sts::*:assumed-role/ci-deploy/*, "
                f"found {_kind(value)}",
            )
        return value

    return check


def _event_name(source: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or not EVENT_NAME_RE.match(value):
            raise ConfigError(
                source, key, f"an API operation name such as CreateServiceLinkedRole, found {_kind(value)}"
            )
        return value

    return check


def _ignore_preset(source: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or value not in IGNORE_NAMES:
            raise ConfigError(source, key, f"one of {', '.join(IGNORE_NAMES)}, found {_kind(value)}")
        return value

    return check


def _email(source: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or len(value) > 254 or not EMAIL_RE.match(value):
            raise ConfigError(source, key, f"an e-mail address such as secops@example.com, found {_kind(value)}")
        return value

    return check
