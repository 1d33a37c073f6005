"""Deployments of earlier versions (two roles, rules and queue without the marker text) migrate on the next deploy."""

from __future__ import annotations

import json

from conftest import CallLog, SimOrg, make_engine

from orgalerts.engine.results import Mode, exit_code

OLD_FORWARD = "orgalerts: forward IAM-change events to the central bus"
OLD_WATCHDOG = "orgalerts: report changes to the forwarding rule, its role and CloudTrail logging"


def _as_earlier_version(sim_org: SimOrg, account: str) -> None:
    """What version 1 left: the watchdog target through its own role, the rules and queue ownership by tag only."""
    iam, events, sqs = (sim_org.client(s, account) for s in ("iam", "events", "sqs"))
    forwarder = iam.get_role(RoleName="orgalerts-forwarder")["Role"]
    iam.create_role(
        RoleName="orgalerts-watchdog",
        AssumeRolePolicyDocument=json.dumps(forwarder["AssumeRolePolicyDocument"]),
        Tags=[{"Key": "managed-by", "Value": "orgalerts"}],
    )
    policy = iam.get_role_policy(RoleName="orgalerts-forwarder", PolicyName="orgalerts-put-events")
    iam.put_role_policy(
        RoleName="orgalerts-watchdog",
        PolicyName="orgalerts-put-events",
        PolicyDocument=json.dumps(policy["PolicyDocument"]),
    )
    for name, old in (("orgalerts-forward", OLD_FORWARD), ("orgalerts-watchdog", OLD_WATCHDOG)):
        rule = events.describe_rule(Name=name)
        events.put_rule(Name=name, EventPattern=rule["EventPattern"], State=rule["State"], Description=old)
    (target,) = events.list_targets_by_rule(Rule="orgalerts-watchdog")["Targets"]
    target["RoleArn"] = f"arn:aws:iam::{account}:role/orgalerts-watchdog"
    events.put_targets(Rule="orgalerts-watchdog", Targets=[target])
    url = sqs.get_queue_url(QueueName="orgalerts-forward-dlq")["QueueUrl"]
    queue_policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    queue_policy.pop("Id")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy)})


def test_migration__two_roles_of_version_1__plan_shows_it_deploy_repoints_then_deletes_nothing_left(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    old = sim_org.accounts["prod1"]
    _as_earlier_version(sim_org, old)
    target = "rule target default/orgalerts-watchdog/orgalerts-central-bus"

    plan = make_engine(sim_org.config(), call_log).converge("plan", Mode.PLAN)
    assert exit_code(plan) == 3 and call_log.writes() == []
    (planned,) = [a for a in plan.accounts if a.account_id == old]
    assert planned.changes == [
        "update dead-letter queue orgalerts-forward-dlq: policy",
        "update rule default/orgalerts-forward: description",
        "update rule default/orgalerts-watchdog: description",
        f"update {target}: role_arn",
        "delete forwarder role permissions orgalerts-watchdog/orgalerts-put-events",
        "delete forwarder role orgalerts-watchdog",
    ]
    assert {a.status for a in plan.accounts if a.account_id != old} <= {"unchanged", "skipped"}

    drift = make_engine(sim_org.config()).converge("drift", Mode.DRIFT)
    (drifted,) = [a for a in drift.accounts if a.account_id == old]
    repointed = (
        f"{target}: RoleArn changed (arn:aws:iam::{old}:role/orgalerts-watchdog instead of "
        f"arn:aws:iam::{old}:role/orgalerts-forwarder)"
    )
    assert repointed in drifted.changes
    assert "forwarder role orgalerts-watchdog is not configured (stale)" in drifted.changes

    deploy = make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)
    assert exit_code(deploy) == 0
    (migrated,) = [a for a in deploy.accounts if a.account_id == old]
    assert migrated.status == "updated" and migrated.changes == planned.changes  # re-pointed, then deleted
    iam = sim_org.client("iam", old)
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("orgalerts-")] == [
        "orgalerts-forwarder"
    ]
    events = sim_org.client("events", old)
    for rule in ("orgalerts-forward", "orgalerts-watchdog"):
        (entry,) = events.list_targets_by_rule(Rule=rule)["Targets"]
        assert entry["RoleArn"] == f"arn:aws:iam::{old}:role/orgalerts-forwarder"

    call_log.clear()
    again = make_engine(sim_org.config(), call_log).converge("deploy", Mode.DEPLOY)
    assert exit_code(again) == 0 and call_log.writes() == []
    assert exit_code(make_engine(sim_org.config()).converge("drift", Mode.DRIFT)) == 0


def test_migration__rule_tagged_but_description_without_marker__still_ours_and_adopt_still_needed_without_tag(
    sim_org: SimOrg,
) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    account = sim_org.accounts["prod2"]
    events = sim_org.client("events", account)
    rule = events.describe_rule(Name="orgalerts-forward")
    events.put_rule(Name="orgalerts-forward", EventPattern=rule["EventPattern"], State="ENABLED", Description="mine")

    tagged = make_engine(sim_org.config()).converge("drift", Mode.DRIFT)
    (found,) = [a for a in tagged.accounts if a.account_id == account]
    assert found.changes == ["rule default/orgalerts-forward: description changed"]

    events.untag_resource(ResourceARN=rule["Arn"], TagKeys=["managed-by"])  # neither marker: someone else's
    refused = make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)
    (failed,) = [a for a in refused.accounts if a.account_id == account]
    assert failed.status == "failed" and "rule default/orgalerts-forward exists but is not managed" in (
        failed.error or ""
    )
    assert events.describe_rule(Name="orgalerts-forward")["Description"] == "mine"

    adopted = make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY, adopt=True)
    (taken,) = [a for a in adopted.accounts if a.account_id == account]
    assert taken.changes[:2] == [
        "adopted rule default/orgalerts-forward",
        "update rule default/orgalerts-forward: description",
    ]
    assert "managed-by=orgalerts" in events.describe_rule(Name="orgalerts-forward")["Description"]


# --- the one-role record: the look for the earlier versions' second role, only where it can find something ----------

RECORD = {"Key": "orgalerts-shape", "Value": "one-role"}


def _role_names(sim_org: SimOrg, account: str) -> list[str]:
    roles = sim_org.client("iam", account).list_roles()["Roles"]
    return sorted(r["RoleName"] for r in roles if r["RoleName"].startswith("orgalerts-"))


def _get_roles(call_log: CallLog, account: str) -> int:
    return sum(1 for c in call_log.for_account(account) if c.operation == "GetRole")


def test_record__made_with_the_role__drift_skips_the_old_role__until_a_target_names_it_again(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    account = sim_org.accounts["prod1"]
    assert RECORD in sim_org.client("iam", account).get_role(RoleName="orgalerts-forwarder")["Role"]["Tags"]

    clean = make_engine(sim_org.config(), call_log).converge("drift", Mode.DRIFT)
    assert exit_code(clean) == 0 and _get_roles(call_log, account) == 1

    _as_earlier_version(sim_org, account)  # an earlier version deployed again: its target names its own role
    call_log.clear()
    drift = make_engine(sim_org.config(), call_log).converge("drift", Mode.DRIFT)
    (drifted,) = [a for a in drift.accounts if a.account_id == account]
    assert "forwarder role orgalerts-watchdog is not configured (stale)" in drifted.changes
    assert _get_roles(call_log, account) == 2

    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    assert _role_names(sim_org, account) == ["orgalerts-forwarder"]
    call_log.clear()
    assert exit_code(make_engine(sim_org.config(), call_log).converge("drift", Mode.DRIFT)) == 0
    assert _get_roles(call_log, account) == 1 and call_log.writes() == []


def test_record__missing_on_a_role_made_before_it__the_look_stays__and_nothing_writes_the_record(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    account = sim_org.accounts["prod2"]
    iam = sim_org.client("iam", account)
    iam.untag_role(RoleName="orgalerts-forwarder", TagKeys=[RECORD["Key"]])  # as version 2 made it
    # An old role no target names (a run stopped between re-pointing the target and deleting the role).
    iam.create_role(
        RoleName="orgalerts-watchdog",
        AssumeRolePolicyDocument=json.dumps(
            iam.get_role(RoleName="orgalerts-forwarder")["Role"]["AssumeRolePolicyDocument"]
        ),
        Tags=[{"Key": "managed-by", "Value": "orgalerts"}],
    )

    drift = make_engine(sim_org.config(), call_log).converge("drift", Mode.DRIFT)
    (drifted,) = [a for a in drift.accounts if a.account_id == account]
    assert drifted.changes == ["forwarder role orgalerts-watchdog is not configured (stale)"]

    call_log.clear()
    deploy = make_engine(sim_org.config(), call_log).converge("deploy", Mode.DEPLOY)
    assert exit_code(deploy) == 0
    assert [c.operation for c in call_log.writes(account)] == ["DeleteRole"]
    assert _role_names(sim_org, account) == ["orgalerts-forwarder"]
    assert RECORD not in iam.get_role(RoleName="orgalerts-forwarder")["Role"]["Tags"]
    call_log.clear()
    assert exit_code(make_engine(sim_org.config(), call_log).converge("deploy", Mode.DEPLOY)) == 0
    assert _get_roles(call_log, account) == 2 and call_log.writes() == []


def test_record__not_given_to_a_role_made_while_the_old_role_is_left(sim_org: SimOrg, call_log: CallLog) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    account = sim_org.accounts["prod1"]
    _as_earlier_version(sim_org, account)
    iam = sim_org.client("iam", account)
    iam.delete_role_policy(RoleName="orgalerts-forwarder", PolicyName="orgalerts-put-events")
    iam.delete_role(RoleName="orgalerts-forwarder")

    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    assert _role_names(sim_org, account) == ["orgalerts-forwarder"]
    assert RECORD not in iam.get_role(RoleName="orgalerts-forwarder")["Role"]["Tags"]
    assert exit_code(make_engine(sim_org.config(), call_log).converge("drift", Mode.DRIFT)) == 0
    assert _get_roles(call_log, account) == 2


def test_record__teardown_still_looks_for_the_old_role(sim_org: SimOrg) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    account = sim_org.accounts["deep1"]
    iam = sim_org.client("iam", account)
    iam.create_role(
        RoleName="orgalerts-watchdog",
        AssumeRolePolicyDocument=json.dumps(
            iam.get_role(RoleName="orgalerts-forwarder")["Role"]["AssumeRolePolicyDocument"]
        ),
        Tags=[{"Key": "managed-by", "Value": "orgalerts"}],
    )

    assert exit_code(make_engine(sim_org.config()).remove("teardown", None)) == 0
    assert _role_names(sim_org, account) == []
