"""The rules AWS documents, checked against the patterns and config orgalerts ships.

Each test names the AWS behaviour it relies on; the cited pages are next to the code in patterns.py,
config.py and aws.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern
from test_config import GOOD, _run_cli

from orgalerts.config import parse_config
from orgalerts.errors import ConfigError
from orgalerts.model import patterns
from orgalerts.model.patterns import PatternInputs

FIXTURE = Path(__file__).parent / "fixtures" / "cloudtrail-iam-createuser.json"


def _event(**detail: Any) -> dict[str, Any]:
    event = json.loads(FIXTURE.read_text())
    event["detail"].update(detail)
    return dict(event)


def _without_read_only(event: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["detail"].pop("readOnly", None)
    return event


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(EventPattern.load(patterns.to_json(pattern)).matches_event(event))


def _inputs(**overrides: Any) -> PatternInputs:
    values: dict[str, Any] = {
        "pattern": "iam-changes",
        "exclude_principals": (),
        "exclude_events": (),
        "tamper_alerts": True,
        "prefix": "orgalerts-",
        "member_rule": "orgalerts-forward",
        "forwarder_role": "orgalerts-forwarder",
        "watchdog_rule": "orgalerts-watchdog",
        "watchdog_role": "orgalerts-watchdog",
    }
    values.update(overrides)
    return PatternInputs(**values)


# --- 1. events without detail.readOnly ------------------------------------------------------------


@pytest.mark.parametrize("name", ["iam-changes", "auth-changes"])
def test_mutating_patterns__record_without_read_only__matches_and_read_only_never(name: str) -> None:
    write = _event(readOnly=False)
    for pattern in (
        patterns.alert_pattern(name),
        patterns.alert_pattern(name, exclude_principals=("arn:aws:sts::*:assumed-role/ci/*",)),
        patterns.member_forwarding_pattern(_inputs(pattern=name)),
    ):
        assert _matches(pattern, write)
        assert _matches(pattern, _without_read_only(write))
        assert not _matches(pattern, _event(readOnly=True))
    # Central: what the member forwards lands on exactly one alert route (read-only calls are never forwarded,
    # and the routes' rule state, ENABLED, keeps EventBridge from delivering them anyway).
    routes = patterns.central_routes(_inputs(pattern=name))
    for event in (write, _without_read_only(write)):
        assert sum(_matches(route.pattern, event) for route in routes) == 1


def test_exclude_events_and_principals__and_with_read_only__or_within_lists() -> None:
    pattern = patterns.alert_pattern(
        "iam-changes", exclude_events=("CreateUser",), exclude_principals=("arn:aws:iam::123456789012:user/Alice",)
    )
    assert not _matches(pattern, _without_read_only(_event()))  # excluded event
    assert not _matches(pattern, _without_read_only(_event(eventName="DeleteUser")))  # excluded principal
    other = _event(eventName="DeleteUser", userIdentity={"type": "IAMUser", "arn": "arn:aws:iam::1:user/Bob"})
    assert _matches(pattern, _without_read_only(other))
    assert not _matches(pattern, {**other, "detail": {**other["detail"], "readOnly": True}})


def test_blog_and_all_iam_patterns__unchanged_semantics() -> None:
    assert "readOnly" not in patterns.PATTERNS["all-iam"].pattern["detail"]
    assert "readOnly" not in patterns.PATTERNS["blog-iam-changes"].pattern["detail"]
    assert _matches(patterns.alert_pattern("blog-iam-changes"), _without_read_only(_event()))


# --- 2. pattern size ------------------------------------------------------------------------------

OVERSIZED = (
    GOOD
    + "  exclude_principals:\n"
    + "".join(f'    - "arn:aws:sts::*:assumed-role/ci-deploy-ro-{n:02d}/*"\n' for n in range(18))
    + "resource_prefix: acme-security-iam-alerting-\n"
)


def test_config__18_principals_and_long_prefix__refused_naming_key_limit_and_size() -> None:
    principals = [line for line in OVERSIZED.splitlines() if "assumed-role/ci-deploy-ro-" in line]
    assert len(principals) == 18 and all(len(p.split('"')[1]) == 45 for p in principals)
    with pytest.raises(ConfigError) as caught:
        parse_config(OVERSIZED, "c.yaml")
    assert caught.value.key == "alerts.exclude_principals"
    message = str(caught.value)
    assert "2,048" in message
    size = int(message.split("would be ")[1].split(" characters")[0])
    assert size > 2048


def test_cli__oversized_pattern__exit_2(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(OVERSIZED)
    result = _run_cli("--config", str(path), "deploy", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "alerts.exclude_principals" in result.stderr and "2,048" in result.stderr


def test_every_deployed_pattern__what_deploy_writes_is_what_the_builders_build() -> None:
    from orgalerts.config import parse_config as parse
    from orgalerts.sides import member

    config = parse(GOOD, "c.yaml")
    inputs = _inputs()
    assert patterns.member_watchdog_pattern(inputs) == member.watchdog_pattern(config)
    built = patterns.member_forwarding_pattern(inputs)
    assert built == member.member_pattern(config)
    # The alert branch is the configured pattern, less the two watched roles (item 5).
    del built["$or"][0]["detail"]["requestParameters"]
    plain = patterns.alert_pattern(
        inputs.pattern, exclude_principals=inputs.exclude_principals, exclude_events=inputs.exclude_events
    )
    assert built["$or"][0] == plain


# --- 4. invited accounts --------------------------------------------------------------------------


def test_account_change__account_joined_organization__matches_in_management_account() -> None:
    pattern = patterns.account_change_pattern((), True)
    joined = {
        "source": "aws.organizations",
        "detail-type": "AWS Service Event via CloudTrail",
        "detail": {
            "eventSource": "organizations.amazonaws.com",
            "eventName": "AccountJoinedOrganization",
            "eventType": "AwsServiceEvent",
            "serviceEventDetails": {"accountId": "444455556666", "joinedMethod": "INVITED"},
        },
    }
    assert _matches(pattern, joined)
    handshake = copy.deepcopy(joined)
    handshake["detail"]["eventName"] = "AcceptHandshake"
    assert not _matches(pattern, handshake)  # only the invited account logs it; this rule never sees it


# --- 5. tamper watch ------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["CreateRole", "TagRole", "UntagRole", "UpdateRole"])
def test_tamper__role_calls_on_orgalerts_roles__central_tamper_matches(call: str) -> None:
    event = _event(eventName=call, requestParameters={"roleName": "orgalerts-forwarder"})
    assert _matches(patterns.central_tamper_pattern("orgalerts-"), event)
    assert not any(_matches(route.pattern, event) for route in patterns.central_routes(_inputs()))


@pytest.mark.parametrize("role", ["orgalerts-forwarder", "orgalerts-watchdog"])
def test_tamper__put_role_policy__exactly_one_member_rule_forwards_it(role: str) -> None:
    event = _event(eventName="PutRolePolicy", requestParameters={"roleName": role, "policyName": "x"})
    rules = [patterns.member_forwarding_pattern(_inputs()), patterns.member_watchdog_pattern(_inputs())]
    assert sum(_matches(rule, event) for rule in rules) == 1


def test_central_watch__bus_given_by_arn__matches() -> None:
    topic = "arn:aws:sns:eu-west-1:222222222222:orgalerts-alerts"
    pattern = patterns.central_watch_pattern("orgalerts-central", topic)
    arn = "arn:aws:events:eu-west-1:222222222222:event-bus/orgalerts-central"
    for bus in ("orgalerts-central", arn):
        event = {
            "source": "aws.events",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {
                "eventSource": "events.amazonaws.com",
                "eventName": "DisableRule",
                "requestParameters": {"name": "orgalerts-rule", "eventBusName": bus},
            },
        }
        assert _matches(pattern, event), bus


# --- 6. regions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1"])
def test_config__region_outside_aws_partition__refused(region: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD.replace("region: us-east-1", f"region: {region}"), "c.yaml")
    assert caught.value.key == "region"
    assert "partition" in str(caught.value)


def test_cli__china_region__exit_2(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(GOOD.replace("region: us-east-1", "region: cn-north-1"))
    result = _run_cli("--config", str(path), "deploy", "--json", cwd=tmp_path)
    assert result.returncode == 2 and "region" in result.stderr
