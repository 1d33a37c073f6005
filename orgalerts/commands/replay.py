"""`orgalerts replay PATH...`: what the deployed alerting would do with recorded CloudTrail events. No AWS call.

Owns: running events (read by `replay_input`) through the rules deploy writes for this configuration, as
EventBridge would, and the per-record decision (alert or not, severity, rule, destinations and the exact text each
receives, or why not) with a summary by eventName, severity and silencing filter.

One source of truth with deploy: the rules are the desired state of the sides (`MEMBER`, `ORG_WATCH`,
`IDENTITY_CENTER` forward to the central bus; `central_resources` holds the alert routes, the account-change and
tamper rules with their targets and input transformers), built for a scope made from the config alone. Patterns
are evaluated with model/matching.py, texts with messages.render (the sandbox uses moto's matcher and its own
renderer: the corpus check compares the two).

Where each rule sees events (what replay cannot ask AWS, it takes from the config and the event):
- the member rules (us-east-1) see the events of every account but `organization.exclude_accounts` (replay cannot
  tell which accounts the target OUs hold); IAM delivers its events in us-east-1 (model/addresses.MEMBER_REGION);
- the organization watch (management account, us-east-1) sees Organizations calls other than LeaveOrganization,
  which the leaving member account logs itself (patterns.leave_organization_branch);
- the Identity Center rule sees Identity Center calls in the configured home region;
- the central watch (notification account, default bus of `region`) sees that account's own calls there;
- the account-change rule knows the configured OU ids only (not the OUs nested below them).
A rule in state ENABLED does not see read-only management events delivered through CloudTrail; only a rule in
ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS does
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html).

Why a silent record is silent: the filter(s) of `alerts.ignore`, `alerts.exclude_principals` and
`alerts.exclude_events` that silence it are found by re-matching with no filter (it alerts) and with each filter
alone (it does not): overlapping filters are all named.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orgalerts.commands.replay_input import API_CALL, Inputs, Item
from orgalerts.config import Config
from orgalerts.model import messages, patterns
from orgalerts.model.addresses import MEMBER_REGION
from orgalerts.model.matching import matches
from orgalerts.model.resources import Resource
from orgalerts.model.scope import Scope
from orgalerts.model.severity import NAMES as SEVERITY_NAMES
from orgalerts.model.severity import Severity
from orgalerts.sides import destinations
from orgalerts.sides.central import central_resources
from orgalerts.sides.identity_center import IDENTITY_CENTER
from orgalerts.sides.member import MEMBER
from orgalerts.sides.org_watch import ORG_WATCH

RECEIVING_STATES = (patterns.STATE_ENABLED, patterns.STATE_ALL_MANAGEMENT_EVENTS)
_SEVERITY_IN_DESCRIPTION = re.compile(r"\[(critical|high|medium|info)\]$")
# Stand-ins for what only Organizations knows; they appear in no pattern (account ids in patterns come from the
# config: the notification account, target OUs).
OFFLINE_ACCOUNT = "000000000000"
LEGACY_EMAILS = "notification-emails"  # the name replay gives notification.emails outside any `destinations` entry


@dataclass(frozen=True)
class Recipient:
    name: str
    type: str
    min_severity: str


@dataclass(frozen=True)
class Rule:
    """A rule as deploy writes it: where it is, its pattern and state, its severity (alerting rules) and targets."""

    bus: str
    name: str
    pattern: dict[str, Any]
    state: str
    severity: Severity | None
    targets: tuple[tuple[str, dict[str, Any] | None], ...]  # (target ARN, input transformer)

    def receives(self, event: dict[str, Any]) -> bool:
        if self.state not in RECEIVING_STATES:
            return False
        if self.state == patterns.STATE_ENABLED and is_read_only(event):
            return False
        return matches(self.pattern, event)


def is_read_only(event: dict[str, Any]) -> bool:
    """A read-only management event delivered through CloudTrail (an API call with readOnly true)."""
    detail = event.get("detail")
    return event.get("detail-type") == API_CALL and isinstance(detail, dict) and detail.get("readOnly") is True


def offline_scope(config: Config) -> Scope:
    """The scope deploy would resolve, from the config alone: the configured OUs, no account list."""
    ous = config.organization.ous
    return Scope(
        organization_id="o-replay",
        root_id=next((o for o in ous if o.startswith("r-")), "r-replay"),
        management_account_id=config.identity_center.account_id or OFFLINE_ACCOUNT,
        in_scope=(),
        skipped=(),
        ou_path_patterns=(),
        whole_organization=any(o.startswith("r-") for o in ous),
        included_accounts=config.organization.include_accounts,
        target_ou_ids=tuple(o for o in ous if not o.startswith("r-")),
    )


def rules_of(resources: list[Resource]) -> list[Rule]:
    """The rules among desired resources, each with its targets (a target's key is `<bus>/<rule>/<target id>`)."""
    targets: dict[str, list[tuple[str, dict[str, Any] | None]]] = {}
    for r in resources:
        if r.kind == "target":
            transformer = r.props.get("input_transformer") or ""
            targets.setdefault(r.name.rsplit("/", 1)[0], []).append(
                (r.props["arn"], json.loads(transformer) if transformer else None)
            )
    rules = []
    for r in resources:
        if r.kind != "rule":
            continue
        bus, name = r.name.split("/", 1)
        found = _SEVERITY_IN_DESCRIPTION.search(r.props.get("description", ""))
        severity = Severity(found.group(1)) if found else None
        pattern = json.loads(r.props["pattern"])
        rules.append(Rule(bus, name, pattern, r.props["state"], severity, tuple(targets.get(r.name, []))))
    return rules


@dataclass(frozen=True)
class Pipeline:
    """Every rule of one configuration that an event can meet, by where it sees events, and who each target is."""

    member: tuple[Rule, ...]
    org_watch: tuple[Rule, ...]
    identity_center: tuple[Rule, ...]
    central_bus: tuple[Rule, ...]
    central_default: tuple[Rule, ...]
    recipients: dict[str, tuple[Recipient, ...]]


def build_pipeline(config: Config) -> Pipeline:
    scope = offline_scope(config)
    central = rules_of(central_resources(config, scope))
    bus = config.names.central_bus
    return Pipeline(
        member=tuple(rules_of(MEMBER.desired(config, scope, OFFLINE_ACCOUNT))),
        org_watch=tuple(rules_of(ORG_WATCH.desired(config, scope, scope.management_account_id))),
        identity_center=tuple(rules_of(IDENTITY_CENTER.desired(config, scope, scope.management_account_id))),
        central_bus=tuple(r for r in central if r.bus == bus),
        central_default=tuple(r for r in central if r.bus == "default"),
        recipients=recipients(config),
    )


def recipients(config: Config) -> dict[str, tuple[Recipient, ...]]:
    """Target ARN -> the destinations behind it: the alert topic is every e-mail destination (and the addresses of
    notification.emails outside them); an API destination is its HTTP destination. The PagerDuty routing key and
    the other secrets are the connection's, never in a target: replay needs none of them."""
    mail = [d for d in config.destinations if d.type == "email"]
    listed = {e for d in mail for e in d.emails}
    emails = [Recipient(d.name, "email", d.min_severity) for d in mail]
    if set(config.notification.emails) - listed:
        emails.append(Recipient(LEGACY_EMAILS, "email", Severity.INFO.value))
    topic = tuple(emails) or (Recipient(config.names.topic, "topic", Severity.INFO.value),)
    out = {config.central.topic_arn: topic}
    for d in config.http_destinations:
        out[destinations.api_destination_policy_arn(config, d.name)] = (Recipient(d.name, d.type, d.min_severity),)
    return out


# --- one event through the pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What one destination receives for one alert."""

    rule: str
    name: str
    type: str
    min_severity: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "min_severity": self.min_severity, "rule": self.rule,
                "text": self.text}  # fmt: skip


@dataclass(frozen=True)
class Alert:
    rule: str
    severity: Severity
    received: tuple[Received, ...]


@dataclass(frozen=True)
class Outcome:
    """The forwarding rules that sent the event to the central bus, and the alerts the central rules raised."""

    forwarded_by: tuple[str, ...]
    alerts: tuple[Alert, ...]
    seen_by: tuple[Rule, ...]  # the forwarding rules placed to see the event (matching or not)


def places(pipeline: Pipeline, config: Config, event: dict[str, Any]) -> tuple[Rule, ...]:
    """The forwarding rules placed where the event is delivered (see the module docstring)."""
    source, region = event.get("source"), event.get("region")
    name = (event.get("detail") or {}).get("eventName") if isinstance(event.get("detail"), dict) else None
    rules: list[Rule] = []
    if region == MEMBER_REGION:
        rules += pipeline.member
        if source == "aws.organizations" and name != "LeaveOrganization":
            rules += pipeline.org_watch
    if source in patterns.IDENTITY_CENTER_SOURCES and region == config.identity_center_region:
        rules += pipeline.identity_center
    return tuple(rules)


def route(pipeline: Pipeline, config: Config, event: dict[str, Any]) -> Outcome:
    """The event through the forwarding rules, then (once per forwarding rule that sent it) the central rules."""
    seen_by = places(pipeline, config, event)
    forwarded_by = tuple(r.name for r in seen_by if r.receives(event))
    alerts = [_alert(pipeline, r, event) for _ in forwarded_by for r in pipeline.central_bus if r.receives(event)]
    in_notification = event.get("account") == config.notification.account_id and event.get("region") == config.region
    if in_notification:
        alerts += [_alert(pipeline, r, event) for r in pipeline.central_default if r.receives(event)]
    return Outcome(forwarded_by, tuple(alerts), seen_by)


def _alert(pipeline: Pipeline, rule: Rule, event: dict[str, Any]) -> Alert:
    received = []
    for arn, transformer in rule.targets:
        # Without a transformer EventBridge sends the event itself (no central rule does today).
        text = messages.render(event, transformer) if transformer else json.dumps(event)
        for who in pipeline.recipients.get(arn, (Recipient(arn, "target", Severity.INFO.value),)):
            received.append(Received(rule.name, who.name, who.type, who.min_severity, text))
    return Alert(rule.name, rule.severity or Severity.INFO, tuple(received))


# --- decisions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What happens to one record: alerts (usually one) or the reason there is none, and the filters that silence it."""

    item: Item
    alerts: tuple[Alert, ...]
    forwarded_by: tuple[str, ...]
    silenced_by: tuple[str, ...]
    reason: str

    @property
    def detail(self) -> dict[str, Any]:
        detail = self.item.event.get("detail")
        return detail if isinstance(detail, dict) else {}

    @property
    def event_name(self) -> str:
        return str(self.detail.get("eventName", "") or self.item.event.get("detail-type", ""))

    @property
    def notes(self) -> list[str]:
        """What the record itself lacks that shows in its alert. CloudTrail writes an eventID in every record
        ("Optional: False", cloudtrail-event-reference-record-contents.html): one without is a trimmed sample,
        and its alert's console link cannot carry the id."""
        if not self.alerts or self.detail.get("eventID"):
            return []
        return ["the record has no eventID (CloudTrail writes one in every record: a trimmed sample?), "
                "so the console link in its alert carries no event id"]  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        first = self.alerts[0] if self.alerts else None
        return {
            "file": self.item.file,
            "index": self.item.index,
            "event_name": self.event_name,
            "event_source": str(self.detail.get("eventSource", "")),
            "account": str(self.item.event.get("account", "")),
            "alert": bool(self.alerts),
            "severity": first.severity.value if first else None,
            "rule": first.rule if first else None,
            "rules": [a.rule for a in self.alerts],
            "forwarded_by": list(self.forwarded_by),
            "destinations": [r.to_json() for a in self.alerts for r in a.received],
            "silenced_by": list(self.silenced_by),
            "reason": self.reason or None,
            "notes": self.notes,
        }


def filters(config: Config) -> list[tuple[str, Config]]:
    """(label, the config with that filter alone) for every noise preset and exclusion, and ("", no filter)."""
    bare = dataclasses.replace(config.alerts, ignore=(), exclude_principals=(), exclude_events=())
    alone = [(preset, dataclasses.replace(bare, ignore=(preset,))) for preset in config.alerts.ignore]
    alone += [(f"exclude_principals: {p}", dataclasses.replace(bare, exclude_principals=(p,)))
              for p in config.alerts.exclude_principals]  # fmt: skip
    alone += [(f"exclude_events: {e}", dataclasses.replace(bare, exclude_events=(e,)))
              for e in config.alerts.exclude_events]  # fmt: skip
    return [(label, dataclasses.replace(config, alerts=a)) for label, a in [("", bare), *alone]]


class Replayer:
    """Decides records against one configuration; the pipelines of the filter variants are built when first needed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.pipeline = build_pipeline(config)
        variants = filters(config)
        self._variants = variants if len(variants) > 1 else []  # only ("", no filter): nothing can silence
        self._built: dict[str, Pipeline] = {}

    def _variant(self, label: str, config: Config) -> Pipeline:
        if label not in self._built:
            self._built[label] = build_pipeline(config)
        return self._built[label]

    def decide(self, item: Item) -> Decision:
        event = item.event
        account = str(event.get("account", ""))
        if account in self.config.organization.exclude_accounts:
            reason = f"account {account} is excluded (organization.exclude_accounts): no orgalerts rule there"
            return Decision(item, (), (), (f"exclude_accounts: {account}",), reason)
        outcome = route(self.pipeline, self.config, event)
        if outcome.alerts:
            return Decision(item, outcome.alerts, outcome.forwarded_by, (), "")
        if outcome.forwarded_by:
            reason = f"forwarded by {', '.join(outcome.forwarded_by)}, but no central rule matches it"
            return Decision(item, (), outcome.forwarded_by, (), reason)
        silenced = self.silenced_by(event)
        if silenced:
            return Decision(item, (), (), silenced, f"silenced by {' and '.join(silenced)}")
        return Decision(item, (), (), (), self._unmatched_reason(outcome, event))

    def silenced_by(self, event: dict[str, Any]) -> tuple[str, ...]:
        if not self._variants:
            return ()
        (_, bare), *alone = self._variants
        if not route(self._variant("", bare), bare, event).alerts:
            return ()
        return tuple(label for label, c in alone if not route(self._variant(label, c), c, event).alerts)

    def _unmatched_reason(self, outcome: Outcome, event: dict[str, Any]) -> str:
        if not outcome.seen_by:
            where = f"{event.get('source')} in region {event.get('region') or '(none)'}"
            return f"no orgalerts rule sees events of {where} (member rules are in {MEMBER_REGION})"
        if is_read_only(event):
            widened = [dataclasses.replace(r, state=patterns.STATE_ALL_MANAGEMENT_EVENTS) for r in outcome.seen_by]
            if any(r.receives(event) for r in widened):
                return "read-only call: the member rule (state ENABLED) does not receive read-only management events"
            return "read-only call (readOnly true), not matched by the member pattern"
        return "not matched by the member pattern"


# --- the report -----------------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    decisions: list[Decision] = field(default_factory=list)
    files: int = 0
    digests: int = 0

    def summary(self) -> dict[str, Any]:
        by_name: dict[str, dict[str, int]] = {}
        for d in self.decisions:
            row = by_name.setdefault(d.event_name, {"records": 0, "alerts": 0})
            row["records"] += 1
            row["alerts"] += int(bool(d.alerts))
        severities = Counter(d.alerts[0].severity.value for d in self.decisions if d.alerts)
        presets = Counter(label for d in self.decisions for label in d.silenced_by)
        alerting = sum(1 for d in self.decisions if d.alerts)
        return {
            "files": self.files,
            "digest_files_skipped": self.digests,
            "records": len(self.decisions),
            "alerts": alerting,
            "silent": len(self.decisions) - alerting,
            "more_than_one_alert": sum(1 for d in self.decisions if len(d.alerts) > 1),
            "by_event_name": dict(sorted(by_name.items())),
            "by_severity": {name: severities.get(name, 0) for name in SEVERITY_NAMES},
            "by_preset": dict(sorted(presets.items())),
        }

    def to_json(self) -> dict[str, Any]:
        return {"command": "replay", "records": [d.to_json() for d in self.decisions], "summary": self.summary()}


def run_replay(config: Config, inputs: Inputs) -> ReplayReport:
    replayer = Replayer(config)
    decisions = [replayer.decide(item) for item in inputs.items]
    return ReplayReport(decisions, inputs.files, inputs.digests)


# --- text -----------------------------------------------------------------------------------------------------


def record_lines(d: Decision) -> list[str]:
    """One record as a person reads it: what it is, the decision, and every destination's text."""
    where = f"{d.item.file} [record {d.item.index}]" if d.item.in_log else d.item.file
    source = d.detail.get("eventSource", d.item.event.get("source", ""))
    lines = [f"{where}: {d.event_name} ({source}) in account {d.item.event.get('account', '') or '(none)'}"]
    if not d.alerts:
        return [*lines, f"  no alert: {d.reason}"]
    for alert in d.alerts:
        names = ", ".join(f"{r.name} ({r.type})" for r in alert.received) or "no destination"
        lines.append(f"  ALERT {alert.severity.value.upper()} by rule {alert.rule} -> {names}")
        for r in alert.received:
            lines.append(f"  --- {r.name} ({r.type}) receives:")
            lines += [f"    | {line}" for line in r.text.splitlines()]
    if len(d.alerts) > 1:
        lines.append(f"  WARNING: {len(d.alerts)} alerts for one event (expected exactly one)")
    return lines + [f"  note: {note}" for note in d.notes]


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_lines(report: ReplayReport) -> list[str]:
    s = report.summary()
    skipped = f", {s['digest_files_skipped']} digest files skipped" if s["digest_files_skipped"] else ""
    lines = [
        f"replay: {_count(s['records'], 'record')} from {_count(s['files'], 'file')}{skipped}: "
        f"{s['alerts']} would alert, {s['silent']} would not",
        "  by severity: " + ", ".join(f"{k} {v}" for k, v in s["by_severity"].items()),
        "  silenced by: " + (", ".join(f"{k} {v}" for k, v in s["by_preset"].items()) or "nothing"),
    ]
    if s["more_than_one_alert"]:
        lines.append(f"  WARNING: {s['more_than_one_alert']} records raise more than one alert")
    lines.append("  by eventName (records, alerts):")
    lines += [f"    {name}: {row['records']}, {row['alerts']}" for name, row in s["by_event_name"].items()]
    return lines
