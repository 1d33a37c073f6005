"""Chat, paging and webhook destinations: EventBridge connections, API destinations and the role that invokes them.

Owns, in the notification account and `config.region` (part of the central side: the central rules target them):
- one connection `<prefix>dest-<name>` per HTTP destination (slack, teams, pagerduty, webhook), holding the
  secret EventBridge sends (a header, or PagerDuty's `routing_key` body parameter); EventBridge keeps it in
  Secrets Manager and never returns it;
- one API destination `<prefix>dest-<name>` per HTTP destination (endpoint, POST, an invocation rate limit);
- the role `<prefix>api-destinations` EventBridge assumes to invoke them (`events:InvokeApiDestination` on
  exactly those API destinations; trust limited to this account's orgalerts rules);
- per destination a verify-only rule `<prefix>verify-<name>` (events `orgalerts.verify` naming the destination:
  each test alert reaches exactly that destination), dead-lettering into `<prefix>destinations-dlq`;
- `destination_targets`: the API-destination targets each alerting central rule gets for its severity.

Ownership: connections and API destinations take no tags (CreateConnection and CreateApiDestination have no
Tags parameter, https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateConnection.html,
API_CreateApiDestination.html), so the marker `managed-by=orgalerts` is in their Description.

Secrets: read from the configured environment variables when desired state is built and when written; never put
in a Resource, a report or a log. What is compared is an HMAC-SHA256 digest keyed with the resource's name: for the
connection's secret it is written into the connection's Description (AWS never returns the secret), for a URL held
in a variable it is computed from the API destination's endpoint as read. Drift then says `secret changed` or
`endpoint changed`, never a value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from orgalerts.aws import ClientError
from orgalerts.config import Config, DestinationConfig, destination_secrets
from orgalerts.model import payloads
from orgalerts.model.addresses import arn, role_arn, rule_arn
from orgalerts.model.messages import Message
from orgalerts.model.plan import Change, Kind
from orgalerts.model.resources import MARKER_TEXT, UNKNOWN, Resource, canonical_json, canonical_policy, managed_tags
from orgalerts.model.severity import admits
from orgalerts.sides import cloudformation as cfn
from orgalerts.sides import forwarding
from orgalerts.sides.base import Clients, Grant, Writer, everywhere

CONNECTION = Kind("connection", "destination connection")
API_DESTINATION = Kind("api-destination", "API destination")
DEST_ROLE = Kind("destination-role", "API-destination role")
DEST_ROLE_POLICY = Kind("destination-role-policy", "API-destination role permissions")
KINDS = (CONNECTION, API_DESTINATION, DEST_ROLE, DEST_ROLE_POLICY)

MARKER = "managed-by=orgalerts"
ROLE_DESCRIPTION = "orgalerts: lets EventBridge invoke orgalerts' API destinations (chat, paging, webhooks)"
VERIFY_SOURCE = "orgalerts.verify"
VERIFY_DETAIL_TYPE = "orgalerts verify"
# A connection must have an authorization type (AuthorizationType is required: API_CreateConnection.html). Slack,
# Teams and a webhook without a configured header take none: they get API_KEY with this harmless, non-secret
# header naming the destination (their endpoint URL is what authorizes).
PLAIN_HEADER = "X-Orgalerts-Destination"
# InvocationRateLimitPerSecond: 1-300, default 300 (API_CreateApiDestination.html). Chosen per service: Slack
# allows about one message per second per webhook (https://api.slack.com/apis/rate-limits#incoming-webhooks),
# PagerDuty's Events API 120 events per minute per routing key; EventBridge holds back and retries what exceeds it.
RATE_LIMITS = {"slack": 1, "teams": 1, "pagerduty": 2, "webhook": 10}
# Verify's test alerts: no retry, so a refused delivery reaches the dead-letter queue at once (RetryPolicy is
# allowed on API-destination targets; MaximumRetryAttempts 0-185, MaximumEventAgeInSeconds 60-86400:
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_RetryPolicy.html).
VERIFY_RETRY = canonical_json({"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0})


# --- names ---------------------------------------------------------------------------------------------------


def resource_name(config: Config, destination: str) -> str:
    return f"{config.names.prefix}dest-{destination}"


def role_name(config: Config) -> str:
    return f"{config.names.prefix}api-destinations"


def role_policy_name(config: Config) -> str:
    return f"{config.names.prefix}invoke-api-destinations"


def verify_rule(config: Config, destination: str) -> str:
    return f"{config.names.prefix}verify-{destination}"


def dlq_name(config: Config) -> str:
    return f"{config.names.prefix}destinations-dlq"


def target_id(destination: str) -> str:
    return f"dest-{destination}"


def api_destination_policy_arn(config: Config, destination: str, region: str | None = None) -> str:
    """The API destination's ARN without the id AWS appends at creation (`.../api-destination/NAME/UUID`): the
    form IAM policies name (AWS CDK's `apiDestinationArnForPolicy`, https://docs.aws.amazon.com/cdk/api/v2/docs/
    aws-cdk-lib.aws_events.ApiDestination.html). Targets are desired in this form and resolved when written."""
    central = config.central
    name = resource_name(config, destination)
    return arn("events", region or central.region, central.account_id, f"api-destination/{name}")


_ID_SUFFIX = re.compile(r"^(arn:[^:]+:events:[^:]*:[0-9]*:api-destination/[^/]+)/[^/]+$")


def digest(key: str, secret: str) -> str:
    """HMAC-SHA256 of a secret keyed with the resource name: comparable, not reversible, differs per resource."""
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


# --- desired -------------------------------------------------------------------------------------------------


# A secret value: the secret itself (the direct engine, only ever handed to boto3), or a template's Ref to the
# parameter holding it (export). Keyed by the DestinationConfig attribute naming its environment variable.
SecretValue = Callable[[str], Any]


def _from_environ(d: DestinationConfig, secrets: Mapping[str, str]) -> SecretValue:
    return lambda attr: secrets[getattr(d, attr)]


def _endpoint(destination: DestinationConfig, secret: SecretValue) -> Any:
    return secret("url_env") if destination.url_env else payloads.PAGERDUTY_ENDPOINT


def _auth(destination: DestinationConfig, secret: SecretValue) -> dict[str, Any]:
    """The connection's AuthParameters, secret included (only ever handed to boto3, or a template's parameter)."""
    if destination.header_name:
        key = {"ApiKeyName": destination.header_name, "ApiKeyValue": secret("header_value_env")}
    else:
        key = {"ApiKeyName": PLAIN_HEADER, "ApiKeyValue": destination.name}
    auth: dict[str, Any] = {"ApiKeyAuthParameters": key}
    if destination.type == "pagerduty":
        # PagerDuty Events v2 authenticates by the body's routing_key; a connection body parameter is merged into
        # the JSON body, and IsValueSecret keeps it out of DescribeConnection (API_ConnectionBodyParameter.html).
        value = secret("routing_key_env")
        auth["InvocationHttpParameters"] = {
            "BodyParameters": [{"Key": "routing_key", "Value": value, "IsValueSecret": True}]
        }
    return auth


def _auth_shape(auth: Mapping[str, Any]) -> str:
    """What of the auth parameters AWS returns (names and keys, never values): compared by drift."""
    body = (auth.get("InvocationHttpParameters") or {}).get("BodyParameters") or []
    return canonical_json({"api_key_name": (auth.get("ApiKeyAuthParameters") or {}).get("ApiKeyName", ""),
                           "body_keys": sorted(str(p.get("Key", "")) for p in body)})  # fmt: skip


def _secret_text(auth: Mapping[str, Any]) -> str:
    key = (auth.get("ApiKeyAuthParameters") or {}).get("ApiKeyValue", "")
    body = (auth.get("InvocationHttpParameters") or {}).get("BodyParameters") or []
    return json.dumps([key, *[p.get("Value", "") for p in body]])


def _description(destination: DestinationConfig, what: str, extra: str = "") -> str:
    return f"orgalerts ({MARKER}): {what} of {destination.type} destination {destination.name}{extra}"


def desired(config: Config, environ: Mapping[str, str] | None = None) -> list[Resource]:
    """Connections, API destinations, the role, verify rules and their queue for the configured HTTP destinations."""
    http = config.http_destinations
    if not http:
        return []
    secrets = destination_secrets(config, os.environ if environ is None else environ)
    resources: list[Resource] = []
    for d in http:
        name = resource_name(config, d.name)
        auth = _auth(d, _from_environ(d, secrets))
        endpoint = str(_endpoint(d, _from_environ(d, secrets)))
        secret = digest(name, _secret_text(auth))
        resources.append(Resource("connection", name, {"auth": _auth_shape(auth), "secret": secret, "marker": MARKER}))
        resources.append(Resource("api-destination", name, {
            "endpoint": endpoint if not d.url_env else digest(name, endpoint), "method": "POST",
            "rate": str(RATE_LIMITS[d.type]), "connection": name, "marker": MARKER}))  # fmt: skip
    role = role_name(config)
    resources.append(Resource("destination-role", role, {"trust": _trust(config)}))
    resources.append(
        Resource("destination-role-policy", f"{role}/{role_policy_name(config)}", {"document": _invoke_policy(config)})
    )
    resources += _verify_routing(config)
    return resources


def _trust(config: Config) -> str:
    """EventBridge, for this account's orgalerts rules only (the confused-deputy conditions AWS recommends:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-api-destination-permissions,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html)."""
    central = config.central
    rules = [rule_arn(central.region, central.account_id, config.names.central_bus, f"{config.names.prefix}*"),
             rule_arn(central.region, central.account_id, "default", f"{config.names.prefix}*")]  # fmt: skip
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": central.account_id}, "ArnLike": {"aws:SourceArn": rules}},
    }
    return canonical_policy({"Version": "2012-10-17", "Statement": [statement]})


def _invoke_policy(config: Config) -> str:
    arns = [a for d in config.http_destinations for a in _invocable(config, d.name)]
    statement = {"Sid": "InvokeOrgAlertsApiDestinations", "Effect": "Allow", "Action": "events:InvokeApiDestination",
                 "Resource": sorted(arns)}  # fmt: skip
    return canonical_policy({"Version": "2012-10-17", "Statement": [statement]})


def _invocable(config: Config, destination: str) -> list[str]:
    """The API destination in the form IAM names it (resource type api-destination, list_amazoneventbridge.html),
    and with the id AWS appends (`/*`): the role invokes exactly this destination under either reading."""
    base = api_destination_policy_arn(config, destination)
    return [base, f"{base}/*"]


def _verify_routing(config: Config) -> list[Resource]:
    names = config.names
    bus = names.central_bus
    dlq_arn = config.central.queue_arn(dlq_name(config))
    resources = [forwarding.queue(dlq_name(config), dlq_arn, verify_rule_arns(config))]
    for d in config.http_destinations:
        rule = verify_rule(config, d.name)
        pattern = {"source": [VERIFY_SOURCE], "detail-type": [VERIFY_DETAIL_TYPE], "detail": {"destination": [d.name]}}
        props = {"pattern": canonical_json(pattern), "state": "ENABLED",
                 "description": f"orgalerts verify: test alerts for {d.name} only ({MARKER_TEXT})"}  # fmt: skip
        target = _api_target(config, f"{bus}/{rule}", d, verify_message(), "info", dlq_arn)
        resources += [Resource("rule", f"{bus}/{rule}", props), dataclasses.replace(
            target, props={**target.props, "retry": VERIFY_RETRY})]  # fmt: skip
    return resources


def verify_rule_arns(config: Config) -> list[str]:
    central = config.central
    return sorted(rule_arn(central.region, central.account_id, config.names.central_bus, verify_rule(config, d.name))
                  for d in config.http_destinations)  # fmt: skip


def verify_message() -> Message:
    """What a verify test alert says (its event: source orgalerts.verify, put on the central bus by `verify`)."""
    return Message(
        dict(payloads.PAYLOAD_PATHS),
        "[orgalerts] TEST alert from `orgalerts verify` in account <account>: no action needed",
        ("Sent by <principal> at <time> to prove this destination receives orgalerts alerts.",),
    )


def _api_target(
    config: Config, rule_key: str, d: DestinationConfig, message: Message, severity: str, dlq: str
) -> Resource:
    return forwarding.target(
        f"{rule_key}/{target_id(d.name)}",
        api_destination_policy_arn(config, d.name),
        role=role_arn(config.central.account_id, role_name(config)),
        transformer=canonical_json(payloads.transformer(d.type, message, severity)),
        dlq_arn=dlq,
    )


def destination_targets(config: Config, rule_key: str, severity: str, message: Message) -> list[Resource]:
    """One API-destination target per HTTP destination whose min_severity admits `severity`, on the central rule
    `rule_key` (`bus/rule`). E-mail destinations with min_severity info are on the alert topic already."""
    central = config.central
    dlq = central.queue_arn(central.names.central_dlq) if config.alerts.dead_letter_queues else ""
    return [_api_target(config, rule_key, d, message, severity, dlq)
            for d in config.http_destinations if admits(d.min_severity, severity)]  # fmt: skip


# --- live ----------------------------------------------------------------------------------------------------


def read(clients: Clients, config: Config, found: list[Resource]) -> list[Resource]:
    """`found` (the rest of the central side) plus every orgalerts connection, API destination, the role and the
    verify rules, whatever the configuration (a removed destination's leftovers are found by name prefix)."""
    events = clients.events
    prefix = resource_name(config, "")
    live: list[Resource] = []
    # At most MAX_DESTINATIONS of each exist; one page (up to 100) holds them and any leftovers.
    for item in events.list_connections(NamePrefix=prefix).get("Connections", []):
        live += _read_connection(events, str(item["Name"]))
    full_arns: dict[str, str] = {}
    for item in events.list_api_destinations(NamePrefix=prefix).get("ApiDestinations", []):
        resource = _read_api_destination(events, str(item["Name"]))
        live += resource
        full_arns.update({r.arn: _policy_form(r.arn) for r in resource})
    live += [dataclasses.replace(r, kind="destination-role" if r.kind == "role" else "destination-role-policy")
             for r in forwarding.read_role(clients.iam, role_name(config), role_policy_name(config))]  # fmt: skip
    bus = config.names.central_bus
    try:  # one ListRules gives every verify rule with its ownership marker; then each one's targets
        live += forwarding.read_rules_where(events, bus, verify_rule(config, ""), lambda _name: True)
    except ClientError as exc:
        if not forwarding.absent(exc):  # absent: no central bus (yet, or any more), so no verify rule either
            raise
    live += forwarding.read_queue(clients.sqs, dlq_name(config))
    return [_normalise_target(r, full_arns) for r in found + live]


def _policy_form(full_arn: str) -> str:
    match = _ID_SUFFIX.match(full_arn)
    return match.group(1) if match else full_arn


def _normalise_target(resource: Resource, full_arns: Mapping[str, str]) -> Resource:
    """A target on the live API destination reads in the desired (policy) form; one on a stale id (the API
    destination was deleted and made again) keeps its full ARN, so the plan re-points it."""
    if resource.kind != "target" or resource.props.get("arn") not in full_arns:
        return resource
    return dataclasses.replace(resource, props={**resource.props, "arn": full_arns[resource.props["arn"]]})


def _parse(description: str, key: str) -> str:
    match = re.search(rf"\b{key} ([0-9a-f]{{64}})\b", description)
    return match.group(1) if match else ""


def _read_connection(events: Any, name: str) -> list[Resource]:
    try:
        described = events.describe_connection(Name=name)
    except ClientError as exc:
        if forwarding.absent(exc):
            return []
        raise
    description = str(described.get("Description", ""))
    managed = MARKER in description
    # A connection a template created has the marker but no digest (export cannot compute it): the secret is
    # unknown, not changed (see the CloudFormation form below).
    secret = _parse(description, "secret") or (UNKNOWN if managed else "")
    props = {"auth": _auth_shape(described.get("AuthParameters") or {}), "secret": secret,
             "marker": MARKER if managed else ""}  # fmt: skip
    return [Resource("connection", name, props, managed, arn=str(described.get("ConnectionArn", "")))]


def _read_api_destination(events: Any, name: str) -> list[Resource]:
    try:
        described = events.describe_api_destination(Name=name)
    except ClientError as exc:
        if forwarding.absent(exc):
            return []
        raise
    endpoint = str(described.get("InvocationEndpoint", ""))
    managed = MARKER in str(described.get("Description", ""))
    props = {
        "endpoint": endpoint if endpoint == payloads.PAGERDUTY_ENDPOINT else digest(name, endpoint),
        "method": str(described.get("HttpMethod", "")),
        "rate": str(described.get("InvocationRateLimitPerSecond", "")),
        "connection": str(described.get("ConnectionArn", "")).split(":connection/", 1)[-1].split("/", 1)[0],
        "marker": MARKER if managed else "",
    }
    return [Resource("api-destination", name, props, managed, arn=str(described.get("ApiDestinationArn", "")))]


# --- writes --------------------------------------------------------------------------------------------------


class DestinationHandlers:
    """The writes of this module's kinds, and target writes that resolve an API destination's full ARN."""

    def __init__(self, writer: forwarding.ForwardingWriter, config: Config) -> None:
        self.writer = writer
        self.config = config
        self.clients: Clients = writer.clients

    def install(self) -> Writer:
        h = self.writer.handlers
        h.update({
            ("create", "connection"): self.put_connection, ("update", "connection"): self.put_connection,
            ("delete", "connection"): lambda c: self.clients.events.delete_connection(Name=c.resource.name),
            ("create", "api-destination"): self.put_api_destination,
            ("update", "api-destination"): self.put_api_destination,
            ("delete", "api-destination"): lambda c: self.clients.events.delete_api_destination(Name=c.resource.name),
            ("create", "destination-role"): self.create_role, ("update", "destination-role"): self.update_role,
            ("delete", "destination-role"): lambda c: self.clients.iam.delete_role(RoleName=c.resource.name),
            ("create", "destination-role-policy"): self.put_role_policy,
            ("update", "destination-role-policy"): self.put_role_policy,
            ("delete", "destination-role-policy"): self.delete_role_policy,
            ("create", "target"): self.put_target, ("update", "target"): self.put_target,
        })  # fmt: skip
        return self.writer

    def _destination(self, name: str) -> DestinationConfig:
        return next(d for d in self.config.http_destinations if resource_name(self.config, d.name) == name)

    def put_connection(self, change: Change) -> None:
        d = self._destination(change.resource.name)
        auth = _auth(d, _from_environ(d, destination_secrets(self.config, os.environ)))
        params = {
            "Name": change.resource.name,
            "AuthorizationType": "API_KEY",
            "AuthParameters": auth,
            "Description": _description(d, "connection", f"; secret {change.resource.props['secret']}"),
        }
        if change.action == "create":
            self.clients.events.create_connection(**params)
        else:
            self.clients.events.update_connection(**params)

    def put_api_destination(self, change: Change) -> None:
        d = self._destination(change.resource.name)
        connection = self.clients.events.describe_connection(Name=change.resource.props["connection"])
        params = {
            "Name": change.resource.name,
            "Description": _description(d, "API destination"),
            "ConnectionArn": connection["ConnectionArn"],
            "InvocationEndpoint": _endpoint(d, _from_environ(d, destination_secrets(self.config, os.environ))),
            "HttpMethod": "POST",
            "InvocationRateLimitPerSecond": int(change.resource.props["rate"]),
        }
        if change.action == "create":
            self.clients.events.create_api_destination(**params)
        else:
            self.clients.events.update_api_destination(**params)

    def create_role(self, change: Change) -> None:
        self.clients.iam.create_role(
            RoleName=change.resource.name,
            AssumeRolePolicyDocument=change.resource.props["trust"],
            Description=ROLE_DESCRIPTION,
            Tags=managed_tags(),
        )

    def update_role(self, change: Change) -> None:
        self.clients.iam.update_assume_role_policy(
            RoleName=change.resource.name, PolicyDocument=change.resource.props["trust"]
        )

    def put_role_policy(self, change: Change) -> None:
        role, policy = change.resource.name.split("/", 1)
        self.clients.iam.put_role_policy(
            RoleName=role, PolicyName=policy, PolicyDocument=change.resource.props["document"]
        )

    def delete_role_policy(self, change: Change) -> None:
        role, policy = change.resource.name.split("/", 1)
        self.clients.iam.delete_role_policy(RoleName=role, PolicyName=policy)

    def put_target(self, change: Change) -> None:
        """An API-destination target is desired without the id AWS gave the destination: look it up."""
        r = change.resource
        if ":api-destination/" in r.props["arn"] and not _ID_SUFFIX.match(r.props["arn"]):
            name = r.props["arn"].rsplit("/", 1)[1]
            full = str(self.clients.events.describe_api_destination(Name=name)["ApiDestinationArn"])
            r = dataclasses.replace(r, props={**r.props, "arn": full})
            change = dataclasses.replace(change, desired=r)
        self.writer.put_target(change)


def writer(base: forwarding.ForwardingWriter, config: Config) -> Writer:
    return DestinationHandlers(base, config).install()


# --- CloudFormation form (`orgalerts export cloudformation`) ---------------------------------------------------
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-connection.html
# (AuthorizationType API_KEY, AuthParameters: ApiKeyAuthParameters ApiKeyName/ApiKeyValue, InvocationHttpParameters
# BodyParameters Key/Value/IsValueSecret: aws-properties-events-connection-authparameters.html), and
# aws-resource-events-apidestination.html (ConnectionArn, InvocationEndpoint, HttpMethod,
# InvocationRateLimitPerSecond; Fn::GetAtt Arn is the ARN with the id AWS appends, what a rule target names).
#
# Secrets never in a template: each one (a chat or webhook URL, a header value, PagerDuty's routing key) is a
# NoEcho parameter (masked in every CloudFormation answer: https://docs.aws.amazon.com/AWSCloudFormation/latest/
# UserGuide/parameters-section-structure.html#parameters-section-structure-properties), passed at deploy. Its
# Default is empty, so `create_stack` without parameters still works: a destination whose secrets are not all
# given is not created (its connection, API destination and the rule targets pointing at it are under a
# Condition; a target list entry `Fn::If [cond, entry, AWS::NoValue]` is dropped when false,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html#cfn-pseudo-param-novalue).
#
# The connection's Description carries the ownership marker as the direct engine writes it, without the secret's
# digest (a template cannot compute an HMAC): drift reads that digest as unknown (`UNKNOWN`), which matches any
# desired one, while a URL held as a secret is still compared through the API destination's endpoint.

_SECRET_WHAT = {"url_env": "Url", "header_value_env": "HeaderValue", "routing_key_env": "RoutingKey"}


def template_environ(config: Config) -> dict[str, str]:
    """Stand-in values for the secrets' variables when the desired state is built for a template: the forms write
    parameters in their place, and nothing derived from these (digests) reaches a template."""
    return {env: "template-parameter" for d in config.http_destinations for env in d.env_names}


def _form_destination(stack: cfn.Stack, name: str) -> DestinationConfig:
    assert stack.config is not None, "destinations' forms need the configuration"
    return next(d for d in stack.config.http_destinations if resource_name(stack.config, d.name) == name)


def _secret_parameters(stack: cfn.Stack, d: DestinationConfig) -> dict[str, str]:
    """attr -> logical id of the NoEcho parameter holding that secret of `d` (added once)."""
    found: dict[str, str] = {}
    for attr, what in _SECRET_WHAT.items():
        env = str(getattr(d, attr))
        if not env:
            continue
        logical = cfn.logical_id("dest", f"{d.name} {what}")
        stack.parameters.setdefault(logical, {
            "Type": "String", "NoEcho": True, "Default": "",
            "Description": f"Secret: what {env} holds for `orgalerts deploy` ({d.type} destination {d.name}); pass "
            "it when deploying, never commit it. Left empty, the destination is not created"})  # fmt: skip
        found[attr] = logical
    return found


def _condition(stack: cfn.Stack, d: DestinationConfig) -> str | None:
    """The condition `every secret of d was given` (added once); None when d has no secret."""
    given = [{"Fn::Not": [{"Fn::Equals": [{"Ref": p}, ""]}]} for p in _secret_parameters(stack, d).values()]
    if not given:
        return None
    name = cfn.logical_id("dest", f"{d.name} given")
    stack.conditions.setdefault(name, given[0] if len(given) == 1 else {"Fn::And": given})
    return name


def _conditioned(stack: cfn.Stack, d: DestinationConfig) -> dict[str, str]:
    condition = _condition(stack, d)
    return {"Condition": condition} if condition else {}


def _connection_form(r: Resource, stack: cfn.Stack) -> None:
    d = _form_destination(stack, r.name)
    parameters = _secret_parameters(stack, d)
    properties = {
        "Name": r.name,
        "Description": _description(d, "connection"),
        "AuthorizationType": "API_KEY",
        "AuthParameters": _auth(d, lambda attr: {"Ref": parameters[attr]}),
    }
    stack.add(r, "AWS::Events::Connection", properties, **_conditioned(stack, d))


def _api_destination_form(r: Resource, stack: cfn.Stack) -> None:
    d = _form_destination(stack, r.name)
    parameters = _secret_parameters(stack, d)
    properties = {
        "Name": r.name,
        "Description": _description(d, "API destination"),
        "ConnectionArn": stack.get_att("connection", r.props["connection"], "Arn"),
        "InvocationEndpoint": _endpoint(d, lambda attr: {"Ref": parameters[attr]}),
        "HttpMethod": r.props["method"],
        "InvocationRateLimitPerSecond": int(r.props["rate"]),
    }
    stack.add(r, "AWS::Events::ApiDestination", properties, **_conditioned(stack, d))


_role_form, _role_policy_form = forwarding.role_forms("destination-role", ROLE_DESCRIPTION)


def _target_form(r: Resource, stack: cfn.Stack) -> None:
    """A target as forwarding writes it; one on an API destination names it by Fn::GetAtt (the desired state has
    its ARN without the id AWS appends, which only the created resource knows), under the destination's condition."""
    forwarding.CLOUDFORMATION["target"](r, stack)
    if ":api-destination/" not in r.props["arn"]:
        return
    bus, rule, _ = r.name.split("/", 2)
    name = r.props["arn"].rsplit("/", 1)[1]
    targets = stack.properties("rule", f"{bus}/{rule}")["Targets"]
    entry = {**targets[-1], "Arn": stack.get_att("api-destination", name, "Arn")}
    condition = _condition(stack, _form_destination(stack, name))
    targets[-1] = {"Fn::If": [condition, entry, {"Ref": "AWS::NoValue"}]} if condition else entry


CLOUDFORMATION: dict[str, cfn.Form] = {
    "connection": _connection_form,
    "api-destination": _api_destination_form,
    "destination-role": _role_form,
    "destination-role-policy": _role_policy_form,
    "target": _target_form,
}


# --- permissions (the member role in the notification account) --------------------------------------------------


def _connections(config: Config) -> list[str]:
    account = config.notification.account_id
    return [arn("events", "*", account, f"connection/{resource_name(config, '')}*")]


def _api_destinations(config: Config) -> list[str]:
    account = config.notification.account_id
    return [arn("events", "*", account, f"api-destination/{resource_name(config, '')}*")]


def _role(config: Config) -> list[str]:
    return [role_arn(config.notification.account_id, role_name(config))]


def _verify_rules(config: Config) -> list[str]:
    return [rule_arn("*", config.notification.account_id, config.names.central_bus, verify_rule(config, "*"))]


def _dlq(config: Config) -> list[str]:
    return [arn("sqs", "*", config.notification.account_id, dlq_name(config))]


def _secrets(config: Config) -> list[str]:
    # EventBridge stores a connection's auth in a secret it creates for the caller's account (AWS managed policy
    # AmazonEventBridgeApiDestinationsServiceRolePolicy names `secret:events!connection/*`); CreateConnection
    # and UpdateConnection need the caller allowed the same (eb-use-identity-based.html).
    return [
        arn(
            "secretsmanager",
            "*",
            config.notification.account_id,
            f"secret:events!connection/{resource_name(config, '')}*",
        )
    ]


SERVICE_LINKED_ROLE = (
    "aws-service-role/apidestinations.events.amazonaws.com/AWSServiceRoleForAmazonEventBridgeApiDestinations"
)


def _slr(config: Config) -> list[str]:
    return [role_arn(config.notification.account_id, SERVICE_LINKED_ROLE)]


def _managed(config: Config) -> list[str]:
    return _connections(config) + _api_destinations(config)


def _used(config: Config) -> bool:
    return bool(config.http_destinations)


# Resource types (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html):
# connection*: Create/Describe/Update/DeleteConnection; api-destination*: Create/Describe/Update/DeleteApiDestination;
# ListConnections, ListApiDestinations and ListRules have none ("*"). Reading and removing always (a destination
# taken out of the config is removed); creating only with HTTP destinations configured.
GRANTS: tuple[Grant, ...] = (
    Grant("notification", "ReadAndRemoveDestinations", ("events:DescribeConnection", "events:DeleteConnection",
          "events:DescribeApiDestination", "events:DeleteApiDestination"), _managed),
    Grant("notification", "ListDestinations", ("events:ListConnections", "events:ListApiDestinations",
          "events:ListRules"), everywhere),
    Grant("notification", "ManageDestinations", ("events:CreateConnection", "events:UpdateConnection",
          "events:CreateApiDestination", "events:UpdateApiDestination"), _managed, _used),
    Grant("notification", "ManageDestinationSecrets", ("secretsmanager:CreateSecret", "secretsmanager:UpdateSecret",
          "secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret", "secretsmanager:GetSecretValue",
          "secretsmanager:PutSecretValue"), _secrets, _used),
    Grant("notification", "CreateApiDestinationsServiceLinkedRole", ("iam:CreateServiceLinkedRole",), _slr, _used,
          {"StringEquals": {"iam:AWSServiceName": "apidestinations.events.amazonaws.com"}}),
    *forwarding.path_grants("notification", role_sid="ApiDestinationRole", rule_sid="VerifyRules", roles=_role,
                            used_roles=_role, rules=_verify_rules, used_rules=_verify_rules, used=_used),
    *forwarding.queue_grants("notification", "DestinationsDeadLetterQueue", _dlq, _used),
)  # fmt: skip
