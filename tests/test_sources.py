"""`alerts.sources` and `identity_center`: config validation, the patterns of each source (sizes, disjointness
with the account-change rule, the member rule's watch kept), and every source deployed, redeployed, drifted and
torn down with exactly the policies `orgalerts permissions` prints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import CallLog, SimOrg
from moto.events.models import EventPattern
from test_least_privilege import assert_ok, least_privilege, lp_config

from orgalerts.config import Config, pattern_inputs, validate_config
from orgalerts.engine.results import Mode, exit_code
from orgalerts.errors import ConfigError
from orgalerts.model import patterns
from orgalerts.model.addresses import Names

ALL = ["iam", "organizations", "identity-center", "root-activity", "sts"]


def raw(**alerts: Any) -> dict[str, Any]:
    return {
        "organization": {"ous": ["r-ab12"]},
        "notification": {"account_id": "222222222222", "emails": []},
        "alerts": {"pattern": "iam-changes", **alerts},
    }


@pytest.mark.parametrize(
    ("alerts", "extra", "key", "expected"),
    [
        ({"sources": ["iam", "okta"]}, {}, "alerts.sources[1]", "one of iam, organizations, identity-center"),
        ({"sources": []}, {}, "alerts.sources", "a non-empty list"),
        ({"sources": "iam"}, {}, "alerts.sources", "a list"),
        ({"sources": ["organizations"]}, {}, "alerts.sources", "at least one of iam, root-activity, sts"),
        ({}, {"identity_center": {"region": "cn-north-1"}}, "identity_center.region", "standard aws partition"),
        ({}, {"identity_center": {"region": "mars-1"}}, "identity_center.region", "an AWS region name"),
        ({}, {"identity_center": {"account_id": 123}}, "identity_center.account_id", "quoted 12-digit"),
        ({}, {"identity_center": {"home": "x"}}, "identity_center.home", "no such key"),
    ],
)
def test_config__bad_sources_or_identity_center__names_file_key_and_expected(
    alerts: dict[str, Any], extra: dict[str, Any], key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config({**raw(**alerts), **extra}, "c.yaml")
    assert caught.value.key == key and expected in str(caught.value) and "c.yaml" in str(caught.value)


def test_config__identity_center_in_an_excluded_account__refused() -> None:
    doc = raw()
    doc["organization"]["exclude_accounts"] = ["333333333399"]
    with pytest.raises(ConfigError, match="exclude_accounts"):
        validate_config({**doc, "identity_center": {"account_id": "333333333399"}}, "c.yaml")


def test_config__defaults__iam_only_identity_center_follows_region() -> None:
    config = validate_config({**raw(), "region": "eu-central-1"}, "c.yaml")
    assert config.alerts.sources == ("iam",)
    assert config.identity_center.account_id is None and config.identity_center_region == "eu-central-1"


def _inputs(sources: list[str], **alerts: Any) -> patterns.PatternInputs:
    config = validate_config(raw(sources=sources, **alerts), "c.yaml")
    return pattern_inputs(config.alerts, Names(config.resource_prefix))


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


def _call(source: str, name: str, **detail: Any) -> dict[str, Any]:
    return {
        "source": source,
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {"eventSource": source[4:] + ".amazonaws.com", "eventName": name, "readOnly": False, **detail},
    }


def test_patterns__every_source_on__each_deployed_pattern_within_eventbridge_limit() -> None:
    deployed = patterns.deployed_patterns(_inputs(ALL), bus_name="b", topic_arn="arn:aws:sns:us-east-1:1:t")
    assert {"organization watch rule", "identity center rule"} <= set(deployed)
    assert patterns.oversized_patterns(deployed) == []


def test_patterns__iam_only__member_pattern_unchanged_from_before_sources() -> None:
    p = _inputs(["iam"])
    skip = (p.forwarder_role, p.watchdog_role)
    before = {"$or": [patterns.alert_pattern("iam-changes", skip_roles=skip), *patterns.watch_branches(
        p.watchdog_rule, p.watchdog_role)]}  # fmt: skip
    assert patterns.member_forwarding_pattern(p) == before
    assert patterns.member_rule_state(p) == patterns.STATE_ENABLED


def test_patterns__member_sources__root_sts_forwarded_tamper_watch_kept_watchdog_calls_not_doubled() -> None:
    p = _inputs(["root-activity", "sts"])
    member = patterns.member_forwarding_pattern(p)
    watchdog = patterns.member_watchdog_pattern(p)
    root = {"type": "Root", "arn": "arn:aws:iam::1:root"}
    sign_in = {"source": "aws.signin", "detail-type": "AWS Console Sign In via CloudTrail",
               "detail": {"eventName": "ConsoleLogin", "userIdentity": root}}  # fmt: skip
    assert _matches(member, sign_in)
    assert not _matches(member, {**sign_in, "detail": {**sign_in["detail"], "userIdentity": {"type": "IAMUser"}}})
    assert _matches(member, _call("aws.iam", "CreateAccessKey", userIdentity=root))
    assert not _matches(member, _call("aws.iam", "CreateAccessKey", userIdentity={"type": "IAMUser"}))  # no iam
    assert _matches(member, _call("aws.sts", "AssumeRoot", readOnly=True))
    assert not _matches(member, _call("aws.sts", "AssumeRole", readOnly=True))
    assert patterns.member_rule_state(p) == patterns.STATE_ALL_MANAGEMENT_EVENTS
    # The watch on the watchdog is still there; what the watchdog forwards, the member rule does not.
    assert _matches(member, _call("aws.events", "DisableRule", requestParameters={"name": p.watchdog_rule}))
    root_on_forward_rule = _call(
        "aws.events", "DeleteRule", userIdentity=root, requestParameters={"name": p.member_rule}
    )
    root_on_forwarder = _call(
        "aws.iam", "PutRolePolicy", userIdentity=root, requestParameters={"roleName": p.forwarder_role}
    )
    for event in (root_on_forward_rule, root_on_forwarder):
        assert _matches(watchdog, event) and not _matches(member, event)


def test_patterns__organizations_alert_and_account_change__disjoint_and_together_cover_every_org_change() -> None:
    targets = ("ou-ab12-targeted1",)
    change = patterns.account_change_pattern(targets, False)
    org = patterns.organizations_alert_pattern(targets, False)
    events = [
        _call("aws.organizations", "MoveAccount", requestParameters={"destinationParentId": targets[0]}),
        _call("aws.organizations", "MoveAccount", requestParameters={"destinationParentId": "ou-ab12-elsewhere"}),
        _call("aws.organizations", "DetachPolicy"),
        _call("aws.organizations", "RegisterDelegatedAdministrator"),
        _call("aws.organizations", "CloseAccount"),
        {**_call("aws.organizations", "CreateAccountResult"), "detail-type": "AWS Service Event via CloudTrail"},
    ]
    for event in events:
        assert _matches(change, event) + _matches(org, event) == 1, event["detail"]["eventName"]
    # The management rule forwards all of them (one rule: each once).
    forward = patterns.org_watch_pattern(change, _inputs(["iam", "organizations"]))
    assert all(_matches(forward, e) for e in events)
    assert not _matches(forward, {**_call("aws.organizations", "ListAccounts"), "detail": {"readOnly": True}})


def test_least_privilege__every_source_identity_center_in_a_delegated_account__deploy_redeploy_drift_teardown(
    sim_org: SimOrg,
) -> None:
    delegated = sim_org.accounts["shared"]
    config: Config = lp_config(
        sim_org,
        alerts={"pattern": "iam-changes", "sources": ALL},
        identity_center={"account_id": delegated, "region": "eu-west-1"},
    )
    calls = CallLog()
    engine = least_privilege(sim_org, config, calls).engine
    assert_ok(engine.converge("deploy", Mode.DEPLOY))
    events = sim_org.client("events", delegated, region="eu-west-1")
    assert {r["Name"] for r in events.list_rules(NamePrefix="orgalerts-")["Rules"]} == {
        "orgalerts-identity-center", "orgalerts-identity-center-watchdog",
    }  # fmt: skip
    calls.clear()
    assert_ok(engine.converge("deploy", Mode.DEPLOY))
    assert calls.writes() == []
    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 0
    assert_ok(engine.remove("teardown", None))
    assert events.list_rules(NamePrefix="orgalerts-")["Rules"] == []
    management = sim_org.client("events")
    assert management.list_rules(NamePrefix="orgalerts-")["Rules"] == []
