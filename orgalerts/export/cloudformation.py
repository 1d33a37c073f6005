"""The CloudFormation templates of `orgalerts export cloudformation`, built from the direct engine's desired state.

Owns: `templates(config, scope)` (filename -> template as a dict), `render` (one template as YAML), which sides go
into which template (by where they live: `member.yaml` for every member account, `central.yaml` for the
notification account, `management.yaml` for the management account; the Identity Center watch into the one of
Identity Center's account and region, else refused), the parameters (only values that really vary, each with a
default from the configuration, so `create_stack` without parameters works; a destination's secrets are NoEcho
parameters with an empty default, the forms' own), the stack's
region/account guard (`Rules`), the creation order (`DependsOn`, the sides' apply order), and `deployer-roles.yaml`
(the roles holding the policies `orgalerts permissions` prints).

There is no second description of the resources here: each side's `desired(config, scope, account_id)` gives the
resources and each side's `cloudformation` forms say how one is written; this module only assembles. A template
therefore creates exactly what `deploy` would (managed names, managed-by tag), and `drift` reports it unchanged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import yaml

from orgalerts import __version__
from orgalerts.config import Config
from orgalerts.errors import ConfigError
from orgalerts.model.addresses import MEMBER_REGION, account_root_arn
from orgalerts.model.resources import managed_tags
from orgalerts.model.scope import Scope
from orgalerts.sides.base import Side, Where
from orgalerts.sides.cloudformation import Stack
from orgalerts.sides.identity_center import IDENTITY_CENTER, ic_account
from orgalerts.sides.registry import sides_at

MEMBER_FILE = "member.yaml"
CENTRAL_FILE = "central.yaml"
MANAGEMENT_FILE = "management.yaml"
DEPLOYER_ROLES_FILE = "deployer-roles.yaml"
FILES = (MEMBER_FILE, CENTRAL_FILE, MANAGEMENT_FILE, DEPLOYER_ROLES_FILE)

# The member template serves every member account (a service-managed StackSet): the account id is the stack's own.
# It stands in the desired state as this pseudo parameter, and strings holding it become Fn::Sub.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html
STACK_ACCOUNT = "${AWS::AccountId}"
CENTRAL_BUS_PARAMETER = "CentralBusArn"
TEMPLATE_VERSION = "2010-09-09"
ORCHESTRATOR_ROLE = "OrgAlertsOrchestrator"


def templates(
    config: Config, scope: Scope, policies: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Filename -> template. `policies` (what `orgalerts permissions` builds, in the commands layer) adds
    `deployer-roles.yaml`; without them the three resource templates only."""
    built = {
        MEMBER_FILE: member_template(config, scope),
        CENTRAL_FILE: central_template(config, scope),
        MANAGEMENT_FILE: management_template(config, scope),
    }
    if policies is not None:
        built[DEPLOYER_ROLES_FILE] = deployer_roles_template(config, scope, policies)
    return built


def render(template: Mapping[str, Any]) -> str:
    """YAML as CloudFormation reads it (long-form intrinsic functions, so plain YAML tools read it too)."""
    return yaml.dump(
        dict(template), Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True
    )


class _NoAliases(yaml.SafeDumper):
    """CloudFormation refuses YAML aliases (`*id001`): an object used twice is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# --- the three resource templates ---------------------------------------------------------------------------


def member_template(config: Config, scope: Scope) -> dict[str, Any]:
    """Every member account's forwarding (a service-managed StackSet, us-east-1)."""
    stack = _side_resources(sides_at(Where.MEMBER), config, scope, STACK_ACCOUNT)
    return _template(
        f"orgalerts {__version__}: IAM-change forwarding of one member account to the central bus "
        f"(deploy in {MEMBER_REGION}, e.g. as a service-managed StackSet on the target OUs)",
        stack,
        config,
        region=MEMBER_REGION,
    )


def central_template(config: Config, scope: Scope) -> dict[str, Any]:
    """The notification account's bus, rules, topic, subscriptions, queue and destinations (in `region`), and the
    Identity Center watch when Identity Center lives there (see `_identity_center_file`)."""
    sides = sides_at(Where.CENTRAL)
    if _identity_center_file(config, scope) == CENTRAL_FILE:
        sides += (IDENTITY_CENTER,)
    stack = _side_resources(sides, config, scope, config.notification.account_id)
    return _template(
        f"orgalerts {__version__}: central bus, alert rules and topic (deploy in account "
        f"{config.notification.account_id}, region {config.region})",
        stack,
        config,
        region=config.region,
        account=config.notification.account_id,
    )


def management_template(config: Config, scope: Scope) -> dict[str, Any]:
    """The management account's organization watch, and the trail and guardrail when they are on, and the Identity
    Center watch when Identity Center lives there."""
    management = scope.management_account_id
    region = _management_region(config, scope)
    sides = _management_sides()
    if _identity_center_file(config, scope) == MANAGEMENT_FILE:
        sides += (IDENTITY_CENTER,)
    stack = _side_resources(sides, config, scope, management)
    return _template(
        f"orgalerts {__version__}: organization watch, trail and guardrail of the management account "
        f"(deploy in account {management}, region {region})",
        stack,
        config,
        region=region,
        account=management,
    )


def _management_sides() -> tuple[Side, ...]:
    """The management account's own sides; the Identity Center watch goes where Identity Center lives."""
    return tuple(side for side in sides_at(Where.MANAGEMENT) if side is not IDENTITY_CENTER)


def _management_region(config: Config, scope: Scope) -> str:
    management = scope.management_account_id
    sides = _management_sides()
    regions = {side.region(config) for side in sides if side.desired_in_template(config, scope, management)}
    if len(regions) > 1:
        # One stack lives in one region; the organization watch must be in us-east-1 (Organizations events).
        raise ConfigError(
            config.source,
            "trail.create",
            f"false, or region {MEMBER_REGION}, for `export cloudformation`: the trail would live in {config.region} "
            f"and the organization watch in {MEMBER_REGION}, and one CloudFormation stack lives in one region "
            "(let `orgalerts deploy` create the trail instead)",
        )
    return regions.pop() if regions else MEMBER_REGION


def _identity_center_file(config: Config, scope: Scope) -> str | None:
    """Which template holds the Identity Center watch (None: the source is off). Its rule must live in Identity
    Center's account and home region (sides/identity_center.py), and one stack lives in one account and region
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacks.html): it goes into `management.yaml`
    or `central.yaml` when its account and region are that template's; anywhere else a fifth template would be
    needed, and the export refuses (exit 2) naming the key, rather than writing a template that cannot be
    deployed where it says."""
    if not IDENTITY_CENTER.desired_in_template(config, scope, ic_account(config, scope)):
        return None
    account, region = ic_account(config, scope), config.identity_center_region
    management, notification = scope.management_account_id, config.notification.account_id
    if account == management and region == _management_region(config, scope):
        return MANAGEMENT_FILE
    if account == notification and region == config.region:
        return CENTRAL_FILE
    key = "identity_center.region" if account in (management, notification) else "identity_center.account_id"
    raise ConfigError(
        config.source,
        key,
        f"for `export cloudformation`, Identity Center in the management account ({management}) and region "
        f"{_management_region(config, scope)}, or in the notification account ({notification}) and region "
        f"{config.region}; found account {account}, region {region}: its rule lives in Identity Center's account and "
        "home region and each exported template is one stack in one account and region (let `orgalerts deploy` "
        "create the Identity Center watch instead, with identity-center left out of alerts.sources for the export)",
    )


def management_region(config: Config, scope: Scope) -> str:
    """The one region of the management template's resources (us-east-1 when there are none)."""
    return _management_region(config, scope)


def _side_resources(sides: tuple[Side, ...], config: Config, scope: Scope, account_id: str) -> Stack:
    """Every resource the sides want in `account_id`, written through their forms, in their apply order (with the
    parameters and conditions the forms add: a destination's secrets)."""
    assembled = Stack(config=config)
    for side in sides:
        stack = Stack(config=config)
        order = {kind.name: rank for rank, kind in enumerate(side.kinds)}
        for resource in sorted(side.desired_in_template(config, scope, account_id), key=lambda r: order[r.kind]):
            stack.current_rank = order[resource.kind]
            side.cloudformation[resource.kind](resource, stack)
        _depend_in_apply_order(stack)
        try:
            assembled.merge(stack)
        except ValueError as exc:
            raise ValueError(f"side {side.name}: {exc}") from exc
    return assembled


def _depend_in_apply_order(stack: Stack) -> None:
    """CloudFormation creates independent resources in parallel; names and ARNs in the desired state are literal
    strings, which make no dependency. Each resource therefore waits for the resources of the kind applied just
    before its own (what it references by Ref or Fn::GetAtt already waits), as the direct engine applies parents
    before children; deletion runs in the reverse order, children first, as the engine's deletes do.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html

    A resource never waits for one created under another condition (a destination created only when its secret is
    given): DependsOn on a resource whose condition is false fails the stack ("Unresolved resource dependencies",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html). It waits for
    the nearest earlier kind that has resources it may wait for instead."""
    by_rank: dict[int, list[str]] = defaultdict(list)
    for logical, rank in stack.rank.items():
        by_rank[rank].append(logical)
    ranks = sorted(by_rank)
    for index, rank in enumerate(ranks):
        for logical in by_rank[rank]:
            resource = stack.resources[logical]
            condition = resource.get("Condition")
            for previous in reversed(ranks[:index]):
                may = {w for w in by_rank[previous] if stack.resources[w].get("Condition") in (None, condition)}
                if may:
                    waits = sorted(may - _refs(resource))
                    if waits:
                        resource["DependsOn"] = waits
                    break


def _refs(node: Any) -> set[str]:
    """The logical ids a node names by Ref or Fn::GetAtt (both make CloudFormation wait)."""
    if isinstance(node, dict):
        found = {node["Ref"]} if isinstance(node.get("Ref"), str) else set()
        if isinstance(node.get("Fn::GetAtt"), list):
            found.add(str(node["Fn::GetAtt"][0]))
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


# --- assembling a template ------------------------------------------------------------------------------------


def _template(
    description: str, stack: Stack, config: Config, *, region: str, account: str | None = None
) -> dict[str, Any]:
    """`account`: the one account the template is for (None: any, the member template). Outside the notification
    account the central bus is a parameter (the StackSet's, or the stack's, to override); in it, it is its own bus.
    The forms' own parameters (a destination's secrets) and conditions follow."""
    bus_arn = config.central.bus_arn
    tokens = {STACK_ACCOUNT: STACK_ACCOUNT}
    if account != config.notification.account_id:
        tokens[bus_arn] = "${" + CENTRAL_BUS_PARAMETER + "}"
    resources = _substitute(stack.resources, tokens)
    template: dict[str, Any] = {"AWSTemplateFormatVersion": TEMPLATE_VERSION, "Description": description}
    parameters: dict[str, Any] = {}
    if CENTRAL_BUS_PARAMETER in _sub_variables(resources):
        parameters = {
            CENTRAL_BUS_PARAMETER: {
                "Type": "String",
                "Default": bus_arn,
                "AllowedPattern": r"^arn:aws:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._/-]+$",
                "Description": "ARN of orgalerts' central event bus (notification account); the forwarding rules "
                "target it and their roles may put events on it only",
            }
        }
    parameters.update(stack.parameters)
    if parameters:
        template["Parameters"] = parameters
    if stack.conditions:
        template["Conditions"] = dict(stack.conditions)
    template["Rules"] = _where_rules(region, account)
    template["Resources"] = resources or _nothing()
    return template


def _where_rules(region: str, account: str | None) -> dict[str, Any]:
    """The stack refuses to be created in another region (or account) than the one its resources belong in.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html"""
    assertions = [
        {
            "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, region]},
            "AssertDescription": f"orgalerts: deploy this template in {region}",
        }
    ]
    if account is not None:
        assertions.append(
            {
                "Assert": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, account]},
                "AssertDescription": f"orgalerts: deploy this template in account {account}",
            }
        )
    return {"OrgAlertsPlacement": {"Assertions": assertions}}


NOTHING = "NothingToDeploy"


def deploys_nothing(template: Mapping[str, Any]) -> bool:
    """The template holds only the placeholder (every management feature off): no stack is needed for it."""
    return set(template.get("Resources") or {}) <= {NOTHING}


def _nothing() -> dict[str, Any]:
    """A template needs at least one resource; with every management feature off there is none to create.
    A wait condition handle costs nothing and creates nothing."""
    return {NOTHING: {"Type": "AWS::CloudFormation::WaitConditionHandle", "Properties": {}}}


def _substitute(node: Any, tokens: Mapping[str, str]) -> Any:
    """Every string holding one of `tokens` (literal -> `${Variable}`) becomes an Fn::Sub of it; `${` already in
    the string is escaped as `${!` (Fn::Sub's literal form)."""
    if isinstance(node, dict):
        return {k: _substitute(v, tokens) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, tokens) for v in node]
    if not isinstance(node, str) or not any(t in node for t in tokens):
        return node
    if node in tokens:  # the whole string: a plain Ref
        return {"Ref": tokens[node][2:-1]}
    pattern = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(node):
        parts.append(node[last : match.start()].replace("${", "${!"))
        parts.append(tokens[match.group(0)])
        last = match.end()
    parts.append(node[last:].replace("${", "${!"))
    return {"Fn::Sub": "".join(parts)}


def _sub_variables(node: Any) -> set[str]:
    """The variables a node uses: Fn::Sub's `${Name}` and Ref's names."""
    if isinstance(node, dict):
        sub, ref = node.get("Fn::Sub"), node.get("Ref")
        found = set(re.findall(r"\$\{([A-Za-z0-9:]+)\}", sub)) if isinstance(sub, str) else set()
        found |= {ref} if isinstance(ref, str) else set()
        return found.union(*(_sub_variables(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_sub_variables(v) for v in node))
    return set()


# --- deployer-roles.yaml ----------------------------------------------------------------------------------------


def deployer_roles_template(config: Config, scope: Scope, policies: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The roles orgalerts runs as, holding exactly the policies `orgalerts permissions` prints.

    One template for every account, deciding by the account it is deployed in (Conditions on two account-id
    parameters): in each member account (a service-managed StackSet on the target OUs) the member role
    `member_role.name` with the `member` policy, plus the `notification` policy in the notification account; in the
    management account (a stack: StackSets never target it) the role `OrgAlertsOrchestrator` with the `orchestrator`
    policy. The notification account gets it from the StackSet when it is in the target OUs, else as a stack."""
    management, notification = scope.management_account_id, config.notification.account_id
    notification_policy = _inline("orgalerts-notification", policies["notification"])
    when_notification = {"Fn::If": ["InNotificationAccount", notification_policy, {"Ref": "AWS::NoValue"}]}
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": f"orgalerts {__version__}: least-privilege roles orgalerts runs as (`orgalerts permissions`); "
        "a StackSet for the member accounts, a stack in the management account",
        "Parameters": {
            "ManagementAccountId": _account_parameter(management, "the management account (orchestrator role)"),
            "NotificationAccountId": _account_parameter(notification, "the notification account (central side)"),
        },
        "Conditions": {
            "InManagementAccount": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "ManagementAccountId"}]},
            "InNotificationAccount": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "NotificationAccountId"}]},
            "InMemberAccount": {"Fn::Not": [{"Condition": "InManagementAccount"}]},
        },
        "Resources": {
            "MemberRole": _role(
                config.member_role.name,
                "InMemberAccount",
                "orgalerts member role: what orgalerts does in this account (orgalerts permissions: member)",
                _member_trust(config),
                [_inline("orgalerts-member", policies["member"]), when_notification],
            ),
            "OrchestratorRole": _role(
                ORCHESTRATOR_ROLE,
                "InManagementAccount",
                "orgalerts orchestrator: run orgalerts with this role (orgalerts permissions: orchestrator)",
                _trust({"AWS": {"Fn::Sub": account_root_arn(STACK_ACCOUNT)}}),
                [_inline("orgalerts-orchestrator", policies["orchestrator"]), when_notification],
            ),
        },
    }


def _account_parameter(default: str, what: str) -> dict[str, Any]:
    return {"Type": "String", "Default": default, "AllowedPattern": r"^\d{12}$", "Description": f"Account id of {what}"}


def _inline(name: str, document: Mapping[str, Any]) -> dict[str, Any]:
    return {"PolicyName": name, "PolicyDocument": dict(document)}


def _trust(principal: Mapping[str, Any], condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": dict(principal), "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = dict(condition)
    return {"Version": "2012-10-17", "Statement": [statement]}


def _member_trust(config: Config) -> dict[str, Any]:
    """The management account (where orgalerts runs) may assume the member role; with `member_role.external_id`
    only with that external id (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html)."""
    external = config.member_role.external_id
    condition = {"StringEquals": {"sts:ExternalId": external}} if external else None
    root = {"Fn::Sub": account_root_arn("${ManagementAccountId}")}
    return _trust({"AWS": root}, condition)


def _role(name: str, condition: str, description: str, trust: dict[str, Any], inline: list[Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Condition": condition,
        "Properties": {
            "RoleName": name,
            "Description": description,
            "AssumeRolePolicyDocument": trust,
            "Policies": inline,
            "Tags": managed_tags(),
        },
    }
