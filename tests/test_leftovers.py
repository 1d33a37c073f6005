"""Every resource orgalerts ever created is accounted for: a switched-off feature's resources and the central
side a previous `region` left show as removals (plan, drift: exit 3), deploy removes them, teardown removes
everything; a same-named resource without the ownership marker gets the exact fix, and --adopt takes it over."""

from __future__ import annotations

import json
from typing import Any

from conftest import MANAGEMENT, CallLog, SimOrg, make_engine

from orgalerts.config import Config
from orgalerts.engine.results import Mode, Status, exit_code

BUCKET = f"orgalerts-trail-{MANAGEMENT}-us-east-1"
QUIET = {"pattern": "iam-changes", "account_changes": False}


def _config(sim_org: SimOrg, **overrides: Any) -> Config:
    return sim_org.config(alerts=QUIET, **overrides)


def _management_changes(report: Any) -> list[str]:
    return [] if report.management is None else list(report.management.changes)


def test_trail_create_set_back_to_false__plan_lists_removals_deploy_removes_then_steady(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    assert exit_code(make_engine(_config(sim_org, trail={"create": True})).converge("deploy", Mode.DEPLOY)) == 0
    engine = make_engine(_config(sim_org, trail={"create": False}), call_log)

    plan = engine.converge("plan", Mode.PLAN)
    assert exit_code(plan) == 3
    assert _management_changes(plan) == [
        "delete organization trail orgalerts-trail",
        f"delete trail bucket policy {BUCKET}",
        f"delete trail bucket {BUCKET}",
    ]
    assert call_log.writes() == []
    drift = engine.converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 3
    assert "organization trail orgalerts-trail is not configured (stale)" in _management_changes(drift)

    deploy = engine.converge("deploy", Mode.DEPLOY)
    assert exit_code(deploy) == 0 and "delete organization trail orgalerts-trail" in _management_changes(deploy)
    assert sim_org.client("cloudtrail").describe_trails()["trailList"] == []
    assert sim_org.client("s3").list_buckets()["Buckets"] == []

    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 0
    call_log.clear()
    again = engine.converge("deploy", Mode.DEPLOY)
    assert exit_code(again) == 0 and again.management is None  # off, nothing left: nothing to say
    assert call_log.writes() == []


def test_guardrail_scp_set_back_to_false__scp_and_attachments_removed_then_steady(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    assert exit_code(make_engine(_config(sim_org, guardrail={"scp": True})).converge("deploy", Mode.DEPLOY)) == 0
    engine = make_engine(_config(sim_org), call_log)

    plan = engine.converge("plan", Mode.PLAN)
    assert exit_code(plan) == 3
    changes = _management_changes(plan)
    assert changes[-1] == "delete guardrail SCP orgalerts-guardrail"
    assert sorted(changes[:-1]) == sorted(
        f"delete guardrail SCP attachment orgalerts-guardrail/{ou}"
        for ou in (sim_org.ous["Security"], sim_org.ous["Workloads"])
    )
    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 3

    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    orgs = sim_org.client("organizations")
    names = [p["Name"] for p in orgs.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]]
    assert "orgalerts-guardrail" not in names

    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 0
    call_log.clear()
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    assert call_log.writes() == []


def test_teardown_after_trail_and_guardrail_switched_off__removes_them(sim_org: SimOrg) -> None:
    both = _config(sim_org, trail={"create": True}, guardrail={"scp": True})
    assert exit_code(make_engine(both).converge("deploy", Mode.DEPLOY)) == 0

    result = make_engine(_config(sim_org)).remove("teardown", None)

    assert exit_code(result) == 0
    changes = _management_changes(result)
    assert "delete organization trail orgalerts-trail" in changes
    assert f"delete trail bucket {BUCKET}" in changes
    assert "delete guardrail SCP orgalerts-guardrail" in changes
    assert sim_org.client("cloudtrail").describe_trails()["trailList"] == []
    orgs = sim_org.client("organizations")
    assert "orgalerts-guardrail" not in [
        p["Name"] for p in orgs.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
    ]


def test_region_changed__old_central_side_reported_then_removed_by_deploy(sim_org: SimOrg, call_log: CallLog) -> None:
    notification = sim_org.accounts["notification"]
    assert exit_code(make_engine(_config(sim_org)).converge("deploy", Mode.DEPLOY)) == 0
    engine = make_engine(_config(sim_org, region="us-west-2"), call_log)

    plan = engine.converge("plan", Mode.PLAN)
    assert exit_code(plan) == 3
    assert plan.central is not None
    old = [c for c in plan.central.changes if "in us-east-1, left by a previous `region`" in c]
    assert any(c.startswith("delete central bus orgalerts-central") for c in old)
    assert any(c.startswith("delete topic orgalerts-alerts") for c in old)
    assert any(c.startswith("delete subscription orgalerts-alerts/email/secops@example.com") for c in old)
    assert any(c.startswith("delete rule orgalerts-central/orgalerts-alert") for c in old)
    assert any(c.startswith("delete dead-letter queue orgalerts-central-dlq") for c in old)
    assert call_log.writes() == []

    deploy = engine.converge("deploy", Mode.DEPLOY)
    assert exit_code(deploy) == 0, deploy.central
    east = lambda service: sim_org.client(service, notification, region="us-east-1")  # noqa: E731
    assert [b["Name"] for b in east("events").list_event_buses()["EventBuses"]] == ["default"]
    assert east("sns").list_topics()["Topics"] == []
    assert east("sqs").list_queues(QueueNamePrefix="orgalerts-central").get("QueueUrls", []) == []
    # the notification account is a member too: its forwarding (always us-east-1) stays
    assert [r["Name"] for r in east("events").list_rules(NamePrefix="orgalerts-")["Rules"]] == [
        "orgalerts-forward",
        "orgalerts-watchdog",
    ]
    west = sim_org.client("events", notification, region="us-west-2")
    assert "orgalerts-central" in [b["Name"] for b in west.list_event_buses()["EventBuses"]]

    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 0
    call_log.clear()
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    assert call_log.writes() == []


def test_region_changed__drift_reports_old_central_side_repair_removes_it(sim_org: SimOrg) -> None:
    assert exit_code(make_engine(_config(sim_org)).converge("deploy", Mode.DEPLOY)) == 0
    moved = _config(sim_org, region="us-west-2")
    assert exit_code(make_engine(moved).converge("deploy", Mode.DEPLOY)) == 0
    # An earlier deploy in us-east-1 again (e.g. another checkout): its central side is left there.
    assert exit_code(make_engine(_config(sim_org)).converge("deploy", Mode.DEPLOY)) == 0
    engine = make_engine(moved)

    drift = engine.converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 3 and drift.central is not None and drift.central.status == Status.DRIFTED
    assert any(
        c.startswith("central bus orgalerts-central is not configured (stale) (in us-east-1")
        for c in drift.central.changes
    )
    repair = engine.converge("repair", Mode.REPAIR)
    assert exit_code(repair) == 0
    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 0


def test_untagged_forwarder_role__repair_reports_the_fix__adopt_takes_it_over(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    config = _config(sim_org)
    engine = make_engine(config, call_log)
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    prod1 = sim_org.accounts["prod1"]
    iam = sim_org.client("iam", prod1)
    iam.untag_role(RoleName="orgalerts-forwarder", TagKeys=["managed-by"])
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    iam.update_assume_role_policy(
        RoleName="orgalerts-forwarder", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )

    repair = engine.converge("repair", Mode.REPAIR)
    assert exit_code(repair) == 1
    (failed,) = [a for a in repair.accounts if a.account_id == prod1]
    assert failed.error is not None
    assert "forwarder role orgalerts-forwarder exists but is not managed by orgalerts" in failed.error
    assert "`aws iam tag-role --role-name orgalerts-forwarder --tags Key=managed-by,Value=orgalerts`" in failed.error
    assert "`orgalerts drift --repair --adopt`" in failed.error

    adopted = engine.converge("repair", Mode.REPAIR, adopt=True)
    assert exit_code(adopted) == 0
    (account,) = [a for a in adopted.accounts if a.account_id == prod1]
    assert account.status == Status.REPAIRED
    assert account.changes[0] == "adopted forwarder role orgalerts-forwarder"
    assert any("trust policy changed" in c for c in account.changes)  # converged like any managed role
    tags = iam.list_role_tags(RoleName="orgalerts-forwarder")["Tags"]
    assert {"Key": "managed-by", "Value": "orgalerts"} in tags

    assert exit_code(engine.converge("drift", Mode.DRIFT)) == 0
    call_log.clear()
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    assert call_log.writes() == []


def test_untagged_central_bus__deploy_adopt_tags_and_converges_it(sim_org: SimOrg) -> None:
    notification = sim_org.accounts["notification"]
    events = sim_org.client("events", notification)
    events.create_event_bus(Name="orgalerts-central")

    plan = make_engine(_config(sim_org)).converge("plan", Mode.PLAN)
    assert plan.central is not None and plan.central.error is not None
    assert "aws events tag-resource --resource-arn arn:aws:events:us-east-1:" in plan.central.error

    deploy = make_engine(_config(sim_org)).converge("deploy", Mode.DEPLOY, adopt=True)
    assert exit_code(deploy) == 0
    assert deploy.central is not None and deploy.central.changes[0] == "adopted central bus orgalerts-central"
    arn = events.describe_event_bus(Name="orgalerts-central")["Arn"]
    assert {"Key": "managed-by", "Value": "orgalerts"} in events.list_tags_for_resource(ResourceARN=arn)["Tags"]
