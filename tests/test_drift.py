"""Plan, drift and repair on moto (in-process)."""

from __future__ import annotations

import json

from conftest import MANAGEMENT, CallLog, SimOrg, make_engine

from orgalerts.cli.render import to_json
from orgalerts.engine.results import Mode, exit_code


def _deploy(sim_org: SimOrg) -> None:
    result = make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)
    assert exit_code(result) == 0


def test_drift__tampering_behind_our_back__exactly_those_accounts_reported_without_writes(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    _deploy(sim_org)
    deleted, disabled, retargeted = (sim_org.accounts[n] for n in ("prod1", "prod2", "deep1"))
    events = sim_org.client("events", deleted)
    events.remove_targets(Rule="orgalerts-forward", Ids=["orgalerts-central-bus"])
    events.delete_rule(Name="orgalerts-forward")
    sim_org.client("events", disabled).disable_rule(Name="orgalerts-forward")
    sim_org.client("events", retargeted).put_targets(
        Rule="orgalerts-forward",
        Targets=[
            {
                "Id": "orgalerts-central-bus",
                "Arn": "arn:aws:events:us-east-1:999999999999:event-bus/elsewhere",
                "RoleArn": f"arn:aws:iam::{retargeted}:role/orgalerts-forwarder",
            }
        ],
    )
    notification = sim_org.accounts["notification"]
    bus_arn = f"arn:aws:events:us-east-1:{notification}:event-bus/orgalerts-central"
    sim_org.client("events", notification).put_permission(
        EventBusName="orgalerts-central",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "anyone",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "events:PutEvents",
                        "Resource": bus_arn,
                    },
                    {
                        "Sid": "partner",
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                        "Action": "events:PutEvents",
                        "Resource": bus_arn,
                    },
                ],
            }
        ),
    )

    result = make_engine(sim_org.config(), call_log).converge("drift", Mode.DRIFT, orphans=True)
    document = to_json(result)

    assert exit_code(result) == 3
    assert call_log.writes() == []
    drifted = {a["account_id"]: a["changes"] for a in document["accounts"] if a["status"] == "drifted"}
    assert set(drifted) == {deleted, disabled, retargeted}
    assert drifted[deleted] == [
        "rule default/orgalerts-forward missing",
        "rule target default/orgalerts-forward/orgalerts-central-bus missing",
    ]
    assert drifted[disabled] == ["rule default/orgalerts-forward: disabled"]
    assert len(drifted[retargeted]) == 1 and "points elsewhere" in drifted[retargeted][0]
    assert document["central"]["status"] == "drifted"
    assert document["central"]["changes"] == [
        "bus policy orgalerts-central: policy widened (foreign statements: anyone, partner)"
    ]
    assert document["orphans"] == []

    repaired = make_engine(sim_org.config()).converge("repair", Mode.REPAIR, orphans=True)
    assert exit_code(repaired) == 0
    assert {a.account_id for a in repaired.accounts if a.status == "repaired"} == {deleted, disabled, retargeted}
    assert repaired.central is not None and repaired.central.status == "repaired"

    again = make_engine(sim_org.config()).converge("drift", Mode.DRIFT, orphans=True)
    assert exit_code(again) == 0
    policy = json.loads(sim_org.client("events", notification).describe_event_bus(Name="orgalerts-central")["Policy"])
    assert sorted(s["Sid"] for s in policy["Statement"]) == ["OrgAlertsIncludedAccounts", "OrgAlertsTargetOUs"]


def test_drift__new_account_in_target_ou__not_deployed_then_repair_onboards_it(sim_org: SimOrg) -> None:
    _deploy(sim_org)
    newcomer = sim_org.add_account("newcomer", "Deep")

    result = make_engine(sim_org.config()).converge("drift", Mode.DRIFT)
    by_id = {a.account_id: a for a in result.accounts}
    assert exit_code(result) == 3
    assert by_id[newcomer].status == "drifted"
    assert "not deployed" in by_id[newcomer].changes[0]

    repaired = make_engine(sim_org.config()).converge("repair", Mode.REPAIR)
    assert {a.account_id: a.status for a in repaired.accounts}[newcomer] == "repaired"
    sim_org.client("events", newcomer).describe_rule(Name="orgalerts-forward")


def test_drift__orphan_outside_scope__reported_and_removed_only_with_flag(sim_org: SimOrg) -> None:
    _deploy(sim_org)
    leaver = sim_org.accounts["shared"]
    orgs = sim_org.client("organizations")
    orgs.move_account(
        AccountId=leaver, SourceParentId=sim_org.ous["Workloads"], DestinationParentId=sim_org.ous["Outside"]
    )

    drift = make_engine(sim_org.config()).converge("drift", Mode.DRIFT, orphans=True)
    assert exit_code(drift) == 3
    assert [o.account_id for o in drift.orphans] == [leaver]
    assert all(c.startswith("orphan:") for c in drift.orphans[0].changes)

    kept = make_engine(sim_org.config()).converge("repair", Mode.REPAIR, orphans=True, remove_orphans=False)
    assert [o.account_id for o in kept.orphans] == [leaver]
    sim_org.client("events", leaver).describe_rule(Name="orgalerts-forward")

    removed = make_engine(sim_org.config()).converge("repair", Mode.REPAIR, orphans=True, remove_orphans=True)
    assert [(o.account_id, o.status) for o in removed.orphans] == [(leaver, "removed")]
    assert sim_org.client("events", leaver).list_rules(NamePrefix="orgalerts-")["Rules"] == []


def test_plan__after_deploy__nothing_then_config_change_lists_exactly_it(sim_org: SimOrg, call_log: CallLog) -> None:
    _deploy(sim_org)

    clean = make_engine(sim_org.config(), call_log).converge("plan", Mode.PLAN)
    assert exit_code(clean) == 0
    assert all(not a.changes for a in clean.accounts) and clean.central is not None and not clean.central.changes

    more_mail = sim_org.raw_config()
    more_mail["notification"]["emails"].append("oncall@example.com")
    from orgalerts.config import validate_config

    planned = make_engine(validate_config(more_mail, "c.yaml"), call_log).converge("plan", Mode.PLAN)
    assert exit_code(planned) == 3
    assert planned.central is not None and planned.central.status == "updated"
    assert planned.central.changes == ["create subscription orgalerts-alerts/email/oncall@example.com"]
    assert all(a.status in ("unchanged", "skipped") for a in planned.accounts)

    other_pattern = sim_org.raw_config(alerts={"pattern": "auth-changes"})
    repatterned = make_engine(validate_config(other_pattern, "c.yaml"), call_log).converge("plan", Mode.PLAN)
    assert exit_code(repatterned) == 3
    member_changes = {tuple(a.changes) for a in repatterned.accounts if a.status != "skipped"}
    assert member_changes == {("update rule default/orgalerts-forward: pattern",)}
    assert call_log.writes() == []


def test_drift_plan_deploy_teardown__excluded_account__never_entered_nor_assumed_into(sim_org: SimOrg) -> None:
    excluded = sim_org.accounts["excluded"]
    calls = CallLog()
    assumed: list[str] = []
    engine = make_engine(sim_org.config(), calls)
    engine.ctx.gateway.add_hook(
        lambda acct, service, operation, params: (
            assumed.append(str(params.get("RoleArn", ""))) if operation == "AssumeRole" else None
        )
    )

    engine.converge("deploy", Mode.DEPLOY)
    engine.converge("plan", Mode.PLAN)
    engine.converge("drift", Mode.DRIFT, orphans=True)
    engine.converge("repair", Mode.REPAIR, orphans=True, remove_orphans=True)
    torn = engine.remove("teardown", None)

    assert calls.for_account(excluded) == []
    assert [arn for arn in assumed if f":{excluded}:" in arn] == []
    assert [arn for arn in assumed if f":{MANAGEMENT}:" in arn] == []
    (note,) = [a for a in torn.accounts if a.account_id == excluded]
    assert note.status == "skipped" and "offboard" in note.notes[0]


def test_upgrade__the_single_alert_rule_of_an_earlier_version__plan_and_drift_show_it__deploy_deletes_it(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    """Before severity tiers, one rule `<prefix>alert` on the central bus formatted every alert: an upgraded
    deployment must not keep it (each event would be mailed twice, once untiered)."""
    _deploy(sim_org)
    notification = sim_org.accounts["notification"]
    events = sim_org.client("events", notification)
    config = sim_org.config()
    old = events.put_rule(
        Name="orgalerts-alert", EventBusName="orgalerts-central", State="ENABLED",
        EventPattern=json.dumps({"source": ["aws.iam"]}), Tags=[{"Key": "managed-by", "Value": "orgalerts"}],
    )  # fmt: skip
    events.put_targets(
        Rule="orgalerts-alert", EventBusName="orgalerts-central",
        Targets=[{"Id": "orgalerts-topic", "Arn": config.central.topic_arn}],
    )  # fmt: skip
    assert old["RuleArn"].endswith("rule/orgalerts-central/orgalerts-alert")

    planned = make_engine(config, call_log).converge("plan", Mode.PLAN)
    assert exit_code(planned) == 3 and planned.central is not None
    assert "delete rule orgalerts-central/orgalerts-alert" in planned.central.changes
    drift = make_engine(config, call_log).converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 3 and drift.central is not None
    assert any("orgalerts-central/orgalerts-alert" in c and "alert-" not in c for c in drift.central.changes)
    assert call_log.writes() == []

    assert exit_code(make_engine(config).converge("deploy", Mode.DEPLOY)) == 0
    names = {r["Name"] for r in events.list_rules(EventBusName="orgalerts-central")["Rules"]}
    assert "orgalerts-alert" not in names and "orgalerts-alert-info" in names
    assert exit_code(make_engine(config).converge("plan", Mode.PLAN)) == 0
