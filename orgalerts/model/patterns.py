"""EventBridge event patterns for IAM changes, by name.

Owns: the named alert patterns users choose with `alerts.pattern`, the rule state each one needs, and
the blog's verbatim patterns. Pure data; no AWS calls.

Why `iam-changes` uses `detail.readOnly`: the blog's eventName prefix list misses Tag*/Untag*,
Disable*, Reset*, Resync* and other mutating IAM calls (26 of 109 in botocore's model, 2026-11), and
any API AWS adds later. CloudTrail marks every mutating call `readOnly: false`, so matching on it covers
present and future mutating operations. tests/test_patterns_coverage.py checks this against botocore's
IAM model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orgalerts.model.addresses import Names
from orgalerts.model.routes import Carve, Route, routes

# EventBridge only delivers read-only CloudTrail management events to rules in this state.
STATE_ALL_MANAGEMENT_EVENTS = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
STATE_ENABLED = "ENABLED"

# EventBridge's default quota "Event pattern size: 2,048 characters":
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
MAX_PATTERN_CHARS = 2048

BLOG_IAM_CHANGE_PREFIXES = (
    "Add", "Attach", "Change", "Create", "Deactivate", "Delete", "Detach",
    "Enable", "Put", "Remove", "Set", "Update", "Upload",
)  # fmt: skip
BLOG_AUTH_CHANGE_PREFIXES = (
    "Put", "Attach", "Detach", "Create", "Update", "Upload", "Delete", "Remove", "Set",
)  # fmt: skip
READ_ONLY_PREFIXES = ("Get", "List", "Generate", "Simulate")

# Mutating calls: readOnly false, or no readOnly field at all (older and service-emitted records omit it;
# 31 of 92 real IAM records in our corpus do). Values in a pattern's array are ORed, and exact values and
# filters such as {"exists": false} may be mixed in one array:
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
# (exists matching; "arrays ... match if any value matches").  readOnly true never matches this list.
MUTATING: list[Any] = [False, {"exists": False}]

_ENVELOPE: dict[str, Any] = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
}


def _with_detail(detail: dict[str, Any]) -> dict[str, Any]:
    return {**_ENVELOPE, "detail": {"eventSource": ["iam.amazonaws.com"], **detail}}


def _prefixes(prefixes: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"prefix": prefix} for prefix in prefixes]


@dataclass(frozen=True)
class AlertPattern:
    """A named pattern, the rule state it needs, and what it documents to match."""

    name: str
    pattern: dict[str, Any]
    state: str
    description: str

    def to_json(self) -> str:
        return json.dumps(self.pattern, sort_keys=True, separators=(",", ":"))


PATTERNS: dict[str, AlertPattern] = {
    "iam-changes": AlertPattern(
        "iam-changes",
        _with_detail({"readOnly": list(MUTATING)}),
        STATE_ENABLED,
        "every mutating IAM API call, present and future (CloudTrail readOnly=false)",
    ),
    "auth-changes": AlertPattern(
        "auth-changes",
        _with_detail(
            {"readOnly": list(MUTATING), "eventName": _prefixes((*BLOG_AUTH_CHANGE_PREFIXES, "Tag", "Untag"))}
        ),
        STATE_ENABLED,
        "mutating calls whose name starts with Put, Attach, Detach, Create, Update, Upload, Delete, Remove, "
        "Set (the blog's list) or Tag/Untag (tag-based access control makes them privilege changes)",
    ),
    "all-iam": AlertPattern(
        "all-iam",
        _with_detail({}),
        # Without this state EventBridge never delivers read-only (Get/List) management events.
        STATE_ALL_MANAGEMENT_EVENTS,
        "every IAM API call, read-only ones included (rule state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS)",
    ),
    "blog-iam-changes": AlertPattern(
        "blog-iam-changes",
        _with_detail({"eventName": _prefixes(BLOG_IAM_CHANGE_PREFIXES)}),
        STATE_ENABLED,
        "the AWS Security Blog's iam-changes pattern, verbatim (misses Tag*/Untag*, Disable*, Reset*, ...)",
    ),
    "blog-auth-changes": AlertPattern(
        "blog-auth-changes",
        _with_detail({"eventName": _prefixes(BLOG_AUTH_CHANGE_PREFIXES)}),
        STATE_ENABLED,
        "the AWS Security Blog's auth-changes pattern, verbatim",
    ),
}

PATTERN_NAMES: tuple[str, ...] = tuple(PATTERNS)


def get_pattern(name: str) -> AlertPattern:
    return PATTERNS[name]


def constrains_event_name(name: str) -> bool:
    """True for patterns that select by eventName (exclusions by event name cannot be combined with them)."""
    return "eventName" in PATTERNS[name].pattern["detail"]


# --- exclusions and tamper detection --------------------------------------------------------------

CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
RULE_TAMPER_EVENTS = ["DeleteRule", "DisableRule", "PutRule"]
TARGET_TAMPER_EVENTS = ["PutTargets", "RemoveTargets"]
ROLE_TAMPER_EVENTS = [
    "AttachRolePolicy",
    "CreateRole",
    "DeleteRole",
    "DeleteRolePermissionsBoundary",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "PutRolePermissionsBoundary",
    "PutRolePolicy",
    "TagRole",
    "UntagRole",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "UpdateRoleDescription",
]
TRAIL_TAMPER_EVENTS = ["DeleteTrail", "PutEventSelectors", "StopLogging", "UpdateTrail"]


def _call(source: str, event_source: str, names: list[str], params: dict[str, Any] | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"eventSource": [event_source], "eventName": sorted(names)}
    if params:
        detail["requestParameters"] = params
    return {"source": [source], "detail-type": [CLOUDTRAIL_API_CALL], "detail": detail}


# --- noise presets (alerts.ignore) -------------------------------------------------------------------------

# Calls AWS services make on your behalf carry `userIdentity.invokedBy` with the service's name
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html,
# "invokedBy: The name of the AWS service that made the request"). The console's own sign-in service
# (signin.amazonaws.com, a person at the console) and values that are not a service name (AWS Internal) stay.
KEEP_INVOKED_BY: list[Any] = [
    {"exists": False},
    {"anything-but": {"suffix": ".amazonaws.com"}},
    "signin.amazonaws.com",
]
# Service-linked roles are named AWSServiceRoleFor<Service> and only the service assumes them
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html); their sessions' ARNs:
SERVICE_LINKED_SESSIONS = "arn:aws:sts::*:assumed-role/AWSServiceRoleFor*/*"
IGNORE_PRESETS: dict[str, str] = {
    "aws-service-calls": "calls an AWS service made on your behalf (userIdentity.invokedBy names a service; "
    "console sign-in, signin.amazonaws.com, is a person and stays)",
    "service-linked-roles": "calls made by a service-linked role's session (assumed-role/AWSServiceRoleFor*)",
}
IGNORE_NAMES: tuple[str, ...] = tuple(IGNORE_PRESETS)


def alert_pattern(
    name: str,
    *,
    exclude_principals: tuple[str, ...] = (),
    exclude_events: tuple[str, ...] = (),
    skip_roles_with_prefix: str | None = None,
    skip_roles: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The named pattern with the configured exclusions and noise presets applied inside it, so excluded events
    cost nothing.

    `skip_roles_with_prefix` (central rule) or `skip_roles` (member rule: the two roles its own rules watch)
    leaves IAM calls on orgalerts' own roles to the tamper path, so each such call is alerted once.
    """
    pattern: dict[str, Any] = json.loads(json.dumps(PATTERNS[name].pattern))
    detail = pattern["detail"]
    if exclude_events:
        # Validated in config: only for patterns that do not already constrain eventName.
        detail["eventName"] = [{"anything-but": sorted(exclude_events)}]
    if "service-linked-roles" in ignore:
        exclude_principals = tuple(sorted({*exclude_principals, SERVICE_LINKED_SESSIONS}))
    identity: dict[str, Any] = {}
    if "aws-service-calls" in ignore:
        identity["invokedBy"] = list(KEEP_INVOKED_BY)
    if exclude_principals:
        # Calls by AWS services carry no principal ARN: keep them (exists: false), drop the excluded ARNs.
        identity["$or"] = [
            {"arn": [{"exists": False}]},
            {"arn": [{"anything-but": {"wildcard": sorted(exclude_principals)}}]},
        ]
    if identity:
        detail["userIdentity"] = identity
    skipped: Any = {"prefix": skip_roles_with_prefix} if skip_roles_with_prefix else sorted(skip_roles)
    if skipped:
        detail["requestParameters"] = {
            "$or": [{"roleName": [{"exists": False}]}, {"roleName": [{"anything-but": skipped}]}]
        }
    return pattern


def watch_branches(rule_name: str | dict[str, str], role_name: str | dict[str, str]) -> list[dict[str, Any]]:
    """Calls that disable, delete, retarget or weaken a forwarding rule or its role.

    Names may be exact strings or a filter such as {"prefix": "orgalerts-"}.
    """
    rule = [rule_name]
    role = [role_name]
    return [
        _call("aws.events", "events.amazonaws.com", RULE_TAMPER_EVENTS, {"name": rule}),
        _call("aws.events", "events.amazonaws.com", TARGET_TAMPER_EVENTS, {"rule": rule}),
        _call("aws.iam", "iam.amazonaws.com", ROLE_TAMPER_EVENTS, {"roleName": role}),
    ]


def trail_branch() -> dict[str, Any]:
    return _call("aws.cloudtrail", "cloudtrail.amazonaws.com", TRAIL_TAMPER_EVENTS)


def _bus_arn_from_topic(bus_name: str, topic_arn: str) -> str:
    """The central bus lives in the topic's partition, region and account (arn:aws:sns:REGION:ACCOUNT:name)."""
    parts = topic_arn.split(":")
    return f"arn:{parts[1]}:events:{parts[3]}:{parts[4]}:event-bus/{bus_name}"


def central_watch_pattern(bus_name: str, topic_arn: str) -> dict[str, Any]:
    """Calls in the notification account that change the central bus, its policy, its rules or the topic.

    The events APIs take the bus as a name or an ARN ("EventBusName: The name or ARN of the event bus",
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html, likewise API_PutTargets,
    API_RemoveTargets, API_DisableRule, API_DeleteRule, API_PutPermission) and CloudTrail records the
    parameter as the caller sent it: match both spellings.
    """
    bus = sorted([bus_name, _bus_arn_from_topic(bus_name, topic_arn)])
    return {
        "$or": [
            _call("aws.events", "events.amazonaws.com", ["PutPermission", "RemovePermission"], {"eventBusName": bus}),
            _call("aws.events", "events.amazonaws.com", ["DeleteEventBus"], {"name": bus}),
            _call("aws.events", "events.amazonaws.com", RULE_TAMPER_EVENTS, {"eventBusName": bus}),
            _call("aws.events", "events.amazonaws.com", TARGET_TAMPER_EVENTS, {"eventBusName": bus}),
            # Subscribe/Unsubscribe are left out: verify and watch use a temporary subscription each run,
            # and a removed e-mail subscription is drift (`orgalerts drift` names it).
            _call("aws.sns", "sns.amazonaws.com", ["DeleteTopic", "SetTopicAttributes"], {"topicArn": [topic_arn]}),
        ]
    }


def to_json(pattern: dict[str, Any]) -> str:
    return json.dumps(pattern, sort_keys=True, separators=(",", ":"))


def account_change_pattern(target_ou_ids: tuple[str, ...], whole_organization: bool) -> dict[str, Any]:
    """Organizations events that put an account into a target OU (it is not covered until onboarded).

    An invited account joining shows in the management account (where this rule runs) as
    AccountJoinedOrganization; AcceptHandshake is called, and logged, by the invited account only:
    "When a handshake is accepted, Organizations logs membership events in CloudTrail, available only in
    the management account's event history ... an AccountJoinedOrganization event is logged with
    joinedMethod:INVITED" https://docs.aws.amazon.com/organizations/latest/APIReference/API_AcceptHandshake.html
    """
    moved: dict[str, Any] = {
        "source": ["aws.organizations"],
        "detail": {"eventSource": ["organizations.amazonaws.com"], "eventName": ["MoveAccount"]},
    }
    if not whole_organization:
        moved["detail"]["requestParameters"] = {"destinationParentId": sorted(target_ou_ids) or ["none"]}
    # Every account that joins the organization (created or invited) is not covered until it is in scope
    # and onboarded, whatever the scope: a new account is worth knowing about.
    joined = {
        "source": ["aws.organizations"],
        "detail": {
            "eventSource": ["organizations.amazonaws.com"],
            "eventName": ["AccountJoinedOrganization", "CreateAccountResult"],
        },
    }
    return {"$or": [moved, joined]}


# --- every pattern deploy writes, from plain values (desired.py calls these) -----------------------


@dataclass(frozen=True)
class PatternInputs:
    """The plain values every deployed pattern is built from (alerts config and resource names)."""

    pattern: str
    exclude_principals: tuple[str, ...]
    exclude_events: tuple[str, ...]
    tamper_alerts: bool
    prefix: str
    member_rule: str
    forwarder_role: str
    watchdog_rule: str
    watchdog_role: str
    ignore: tuple[str, ...] = ()
    sources: tuple[str, ...] = ("iam",)


def member_forwarding_pattern(p: PatternInputs) -> dict[str, Any]:
    """The member forwarding rule: the alert pattern and the enabled member sources (root activity, STS),
    OR calls that tamper with the watchdog rule or role.

    Each rule forwards only what the OTHER rule does not: calls on the forwarder role are the watchdog's,
    calls on the watchdog role come through this rule's watch branch. So the alert and root branches skip
    both roles (and leave EventBridge and CloudTrail calls to the tamper paths), and one call on either
    reaches the central bus once (one TAMPER alert, not two). Branches of one rule overlap freely: a rule
    matches an event or not, and sends it once.
    """
    skip = (p.forwarder_role, p.watchdog_role) if p.tamper_alerts else ()
    branches: list[dict[str, Any]] = []
    if "iam" in p.sources:
        branches.append(
            alert_pattern(
                p.pattern,
                exclude_principals=p.exclude_principals,
                exclude_events=p.exclude_events,
                skip_roles=skip,
                ignore=p.ignore,
            )
        )
    if "root-activity" in p.sources:
        branches += root_activity_branches(skip)
    if "sts" in p.sources:
        branches.append(sts_branch())
    if "organizations" in p.sources:
        branches.append(leave_organization_branch())
    if p.tamper_alerts:
        branches += watch_branches(p.watchdog_rule, p.watchdog_role)
    return branches[0] if len(branches) == 1 else {"$or": branches}


def member_rule_state(p: PatternInputs) -> str:
    """The member rule's state: the alert pattern's, or all management events when the sts source is on.

    AWS records STS credential calls such as AssumeRole as read-only (`readOnly: true`, see the real records
    in shared/corpus/cloudtrail/other/), and "rules with the state ENABLED ... don't receive read-only
    management events" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html).
    AWS documents no AssumeRoot record, so the rule receives every management event and each branch filters
    readOnly itself (iam-changes, root-activity) or names its calls (sts, tamper branches).
    """
    return STATE_ALL_MANAGEMENT_EVENTS if "sts" in p.sources else PATTERNS[p.pattern].state


# --- sources beyond IAM (alerts.sources) ------------------------------------------------------------------

SIGNIN_DETAIL_TYPE = "AWS Console Sign In via CloudTrail"
ROOT = ["Root"]
# STS calls that mint credentials worth an alert: AssumeRoot (a root session in a member account) and
# GetFederationToken (long-lived federated sessions, a persistence technique). STS is regional: the member
# rule (us-east-1) sees the calls made to the global endpoint and to sts.us-east-1 only; "The STS global
# endpoint is not supported for AssumeRoot. You must send this request to a Regional STS endpoint"
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoot.html), and calls to other regional
# endpoints are logged in their region (https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html).
STS_EVENTS = ["AssumeRoot", "GetFederationToken"]
# Identity Center's three CloudTrail event sources (EventBridge source = "aws." + service), listed in
# https://docs.aws.amazon.com/eventbridge/latest/ref/events.html and
# https://docs.aws.amazon.com/singlesignon/latest/userguide/logging-using-cloudtrail.html
IDENTITY_CENTER_SOURCES = {
    "aws.sso": "sso.amazonaws.com",
    "aws.sso-directory": "sso-directory.amazonaws.com",
    "aws.identitystore": "identitystore.amazonaws.com",
}


def _skip_roles(skip: tuple[str, ...]) -> dict[str, Any]:
    return {"$or": [{"roleName": [{"exists": False}]}, {"roleName": [{"anything-but": sorted(skip)}]}]}


def root_activity_branches(skip_roles: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Root sign-ins and every mutating call by the root user, in the member rule (us-east-1).

    Sign-in: `aws.signin`, detail-type "AWS Console Sign In via CloudTrail" (ConsoleLogin, password recovery),
    https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-signin.html; the root user signs in through
    the global sign-in endpoint, whose events CloudTrail records in us-east-1
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html#cloudtrail-integration_signin-users).
    Calls: credential changes (CreateAccessKey, MFA, login profile) are IAM calls, global, so in us-east-1.
    EventBridge and CloudTrail calls are left to the tamper branches (the watchdog forwards them) and calls on
    orgalerts' own roles to the watchdog, so no event is forwarded by both rules.
    """
    calls: dict[str, Any] = {
        "source": [{"anything-but": ["aws.cloudtrail", "aws.events", "aws.signin"]}],
        "detail-type": [CLOUDTRAIL_API_CALL],
        "detail": {"userIdentity": {"type": ROOT}, "readOnly": list(MUTATING)},
    }
    if skip_roles:
        calls["detail"]["requestParameters"] = _skip_roles(skip_roles)
    signin = {"source": ["aws.signin"], "detail": {"userIdentity": {"type": ROOT}}}
    return [signin, calls]


def sts_branch() -> dict[str, Any]:
    return _call("aws.sts", "sts.amazonaws.com", STS_EVENTS)


def organizations_branch() -> dict[str, Any]:
    """Every mutating Organizations call in the management account: SCP/RCP/declarative policy changes
    (Create/Update/Delete/Attach/DetachPolicy, Enable/DisablePolicyType), account moves, removals and
    closures (MoveAccount, RemoveAccountFromOrganization, CloseAccount), delegated administrators
    (Register/DeregisterDelegatedAdministrator), trusted access. https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-organizations.html
    """
    return {
        "source": ["aws.organizations"],
        "detail-type": [CLOUDTRAIL_API_CALL],
        "detail": {"eventSource": ["organizations.amazonaws.com"], "readOnly": list(MUTATING)},
    }


def leave_organization_branch() -> dict[str, Any]:
    """LeaveOrganization is called, and logged, by the leaving member account itself (us-east-1), not in the
    management account: "This operation can be called only from a member account in the organization"
    (https://docs.aws.amazon.com/organizations/latest/APIReference/API_LeaveOrganization.html)."""
    return _call("aws.organizations", "organizations.amazonaws.com", ["LeaveOrganization"])


def identity_center_branch() -> dict[str, Any]:
    """Every mutating call to Identity Center (sso, sso-directory, identitystore), in its home region."""
    return {
        "source": sorted(IDENTITY_CENTER_SOURCES),
        "detail-type": [CLOUDTRAIL_API_CALL],
        "detail": {"eventSource": sorted(IDENTITY_CENTER_SOURCES.values()), "readOnly": list(MUTATING)},
    }


def rule_watch_branches(watched_rule: str) -> list[dict[str, Any]]:
    """Calls that disable, delete or retarget `watched_rule` (the other rule of a watched pair: a rule
    cannot report its own deletion). Its role's changes are IAM calls (us-east-1): the member rule forwards
    them where the account is in scope, and the central tamper rule reports them (orgalerts' name prefix)."""
    rule = [watched_rule]
    return [
        _call("aws.events", "events.amazonaws.com", RULE_TAMPER_EVENTS, {"name": rule}),
        _call("aws.events", "events.amazonaws.com", TARGET_TAMPER_EVENTS, {"rule": rule}),
    ]


def _names(p: PatternInputs) -> Names:
    return Names(p.prefix)


def org_watch_pattern(account_change: dict[str, Any] | None, p: PatternInputs) -> dict[str, Any]:
    """The management account's rule: account changes (`account_change`, when on) and, with the
    organizations source, every mutating Organizations call, plus the watch on its watchdog rule.

    With the organizations source on, MoveAccount is forwarded whatever its destination (one rule, so one
    event is sent once); the central account-change rule still picks the moves into target OUs and the
    organizations alert takes the rest (`organizations_alert_pattern`): one alert per event."""
    branches: list[dict[str, Any]] = []
    if "organizations" in p.sources:
        if account_change is not None:
            branches += account_change_pattern((), True)["$or"]  # joins are service events, not API calls
        branches.append(organizations_branch())
        if p.tamper_alerts:
            branches += rule_watch_branches(_names(p).org_watchdog_rule)
    elif account_change is not None:
        return account_change
    return {"$or": branches} if len(branches) > 1 else branches[0]


def org_watchdog_pattern(p: PatternInputs) -> dict[str, Any]:
    return {"$or": rule_watch_branches(_names(p).org_watch_rule)}


def identity_center_pattern(p: PatternInputs) -> dict[str, Any]:
    """The Identity Center rule: every mutating Identity Center call, and the watch on its watchdog rule."""
    if not p.tamper_alerts:
        return identity_center_branch()
    return {"$or": [identity_center_branch(), *rule_watch_branches(_names(p).ic_watchdog_rule)]}


def identity_center_watchdog_pattern(p: PatternInputs) -> dict[str, Any]:
    return {"$or": rule_watch_branches(_names(p).ic_rule)}


def organizations_alert_pattern(target_ou_ids: tuple[str, ...], whole_organization: bool) -> dict[str, Any]:
    """At the central bus: the organizations source's events, disjoint from the account-change rule's
    (`account_change_pattern`), so one MoveAccount into a target OU is one alert (ACCOUNT NOT COVERED YET),
    not two. For the central rules that classify organizations events while account changes are on."""
    other = organizations_branch()
    names = {"anything-but": ["AccountJoinedOrganization", "CreateAccountResult", "MoveAccount"]}
    not_moves = {**other, "detail": {**other["detail"], "eventName": [names]}}
    if whole_organization:
        return not_moves
    elsewhere = {"destinationParentId": [{"anything-but": sorted(target_ou_ids) or ["none"]}]}
    moves = {**other, "detail": {**other["detail"], "eventName": ["MoveAccount"], "requestParameters": elsewhere}}
    return {"$or": [not_moves, moves]}


def member_watchdog_pattern(p: PatternInputs) -> dict[str, Any]:
    """The watchdog rule: calls that tamper with the forwarding rule or its role, and CloudTrail logging."""
    return {"$or": [*watch_branches(p.member_rule, p.forwarder_role), trail_branch()]}


def central_routes(p: PatternInputs, carve: Carve | None = None) -> list[Route]:
    """The central alert rules, one per severity, outcome and message shape (model/routes.py). Exclusions, noise
    presets and the pattern choice act at the member rule; calls on orgalerts' own roles go to the tamper rule
    when tamper alerts are on; `carve`: the organizations events the account-change rule alerts on."""
    return routes(p.sources, skip_role_prefix=p.prefix if p.tamper_alerts else "", carve=carve)


def route_state(route: Route, p: PatternInputs) -> str:
    """A central route's rule state: the alert pattern's, or all management events when the route can match STS
    calls, which AWS records read-only (member_rule_state): a rule in state ENABLED would never see them."""
    if "aws.sts" in route.sources:
        return STATE_ALL_MANAGEMENT_EVENTS
    return PATTERNS[p.pattern].state


def with_principal_shape(pattern: dict[str, Any], arn: bool) -> dict[str, Any]:
    """`pattern` (one event pattern, or a `$or` of them) for callers with (`arn`) or without a principal ARN, so
    a rule's message names the principal only where every event it matches has one."""
    shaped: dict[str, Any] = json.loads(json.dumps(pattern))
    for branch in shaped.get("$or", [shaped]):
        branch.setdefault("detail", {}).setdefault("userIdentity", {})["arn"] = [{"exists": arn}]
    return shaped


def central_tamper_pattern(prefix: str) -> dict[str, Any]:
    """The central tamper rule: forwarded calls on any orgalerts rule or role, and CloudTrail logging."""
    prefix_filter = {"prefix": prefix}
    return {"$or": [*watch_branches(prefix_filter, prefix_filter), trail_branch()]}


def deployed_patterns(
    p: PatternInputs,
    *,
    bus_name: str,
    topic_arn: str,
    target_ou_ids: tuple[str, ...] | None = None,
    whole_organization: bool = False,
) -> dict[str, dict[str, Any]]:
    """Every event pattern deploy writes, by rule, so their sizes can be checked before any AWS call.

    The account change pattern is included only with `target_ou_ids` (the scope is known at deploy time;
    desired.py falls back to a whole-organization pattern when the OU list is too long).
    """
    out = {"member forwarding rule": member_forwarding_pattern(p)}
    carve = Carve(target_ou_ids, whole_organization) if target_ou_ids is not None else None
    out.update({f"central rule {p.prefix}{route.name}": route.pattern for route in central_routes(p, carve)})
    if p.tamper_alerts:
        out["member watchdog rule"] = member_watchdog_pattern(p)
        for arn in (True, False):
            out[f"central tamper rule{'' if arn else ' (anon)'}"] = with_principal_shape(
                central_tamper_pattern(p.prefix), arn
            )
            out[f"central watch rule{'' if arn else ' (anon)'}"] = with_principal_shape(
                central_watch_pattern(bus_name, topic_arn), arn
            )
    if target_ou_ids is not None:
        out["account change rule"] = account_change_pattern(target_ou_ids, whole_organization)
    if "organizations" in p.sources:
        out["organization watch rule"] = org_watch_pattern(None, p)
    if "identity-center" in p.sources:
        out["identity center rule"] = identity_center_pattern(p)
    return out


def oversized_patterns(patterns: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    """(rule, size) of each pattern over EventBridge's 2,048-character limit, largest first."""
    sizes = [(name, len(to_json(pattern))) for name, pattern in patterns.items()]
    return sorted(((name, size) for name, size in sizes if size > MAX_PATTERN_CHARS), key=lambda item: -item[1])
