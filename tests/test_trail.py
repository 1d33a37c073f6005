"""The opt-in organization trail (`trail.create`): deploy, idempotence, the bucket policy, drift, teardown."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import MANAGEMENT, CallLog, SimOrg, make_engine

from orgalerts.cli.render import to_json
from orgalerts.commands.permissions import required_actions
from orgalerts.config import Config
from orgalerts.engine.results import Mode, exit_code
from orgalerts.errors import ConfigError
from orgalerts.sides.trail import bucket_name

BUCKET = f"orgalerts-trail-{MANAGEMENT}-us-east-1"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/orgalerts-trail"


def _config(sim_org: SimOrg, **trail: Any) -> Config:
    return sim_org.config(trail={"create": True, **trail}, alerts={"pattern": "iam-changes", "account_changes": False})


def _trail(sim_org: SimOrg) -> dict[str, Any]:
    trails = sim_org.client("cloudtrail").describe_trails(includeShadowTrails=False)["trailList"]
    (trail,) = [t for t in trails if t["TrailARN"] == TRAIL_ARN]
    return trail


def test_config_trail__defaults_off_unknown_keys_and_bad_names_refused(sim_org: SimOrg) -> None:
    config = sim_org.config()
    assert config.trail.create is False and config.trail.name == "orgalerts-trail"
    assert config.guardrail.scp is False
    with pytest.raises(ConfigError, match=r"trail\.creat: no such key"):
        sim_org.config(trail={"creat": True})
    for name in ("ab", "-trail", "a--b", "trail-", "10.0.0.1", "x" * 129):
        with pytest.raises(ConfigError, match=r"trail\.name"):
            sim_org.config(trail={"create": True, "name": name})
    with pytest.raises(ConfigError, match=r"trail\.create: true or false"):
        sim_org.config(trail={"create": "yes"})


def test_trail_bucket_name__deterministic_lowercase_and_at_most_63_characters(sim_org: SimOrg) -> None:
    assert bucket_name(_config(sim_org), MANAGEMENT) == BUCKET
    long_prefix = sim_org.config(resource_prefix="Very_Long_Prefix_For_Testing-", region="ap-southeast-2")
    name = bucket_name(long_prefix, MANAGEMENT)
    assert len(name) <= 63 and name == name.lower() and "_" not in name
    assert name.endswith(f"trail-{MANAGEMENT}-ap-southeast-2")


def test_trail__deploy_creates_bucket_policy_and_logging_organization_trail(sim_org: SimOrg) -> None:
    result = make_engine(_config(sim_org)).converge("deploy", Mode.DEPLOY)
    document = to_json(result)

    assert exit_code(result) == 0, document["management"]
    management = document["management"]
    assert management["status"] == "created"
    assert management["changes"] == [
        "enable trusted access for CloudTrail in AWS Organizations (needed by an organization trail)",
        f"create trail bucket {BUCKET}",
        f"create trail bucket policy {BUCKET}",
        "create organization trail orgalerts-trail",
    ]
    s3 = sim_org.client("s3")
    assert {"Key": "managed-by", "Value": "orgalerts"} in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    trail = _trail(sim_org)
    assert trail["S3BucketName"] == BUCKET
    assert trail["IsOrganizationTrail"] and trail["IsMultiRegionTrail"] and trail["IncludeGlobalServiceEvents"]
    assert trail["LogFileValidationEnabled"]
    cloudtrail = sim_org.client("cloudtrail")
    assert cloudtrail.get_trail_status(Name=TRAIL_ARN)["IsLogging"] is True
    (selector,) = cloudtrail.get_event_selectors(TrailName=TRAIL_ARN)["EventSelectors"]
    assert selector["ReadWriteType"] == "All" and selector["IncludeManagementEvents"] is True
    tags = cloudtrail.list_tags(ResourceIdList=[TRAIL_ARN])["ResourceTagList"][0]["TagsList"]
    assert {"Key": "managed-by", "Value": "orgalerts"} in tags
    services = sim_org.client("organizations").list_aws_service_access_for_organization()["EnabledServicePrincipals"]
    assert "cloudtrail.amazonaws.com" in {s["ServicePrincipal"] for s in services}


def test_trail__bucket_policy_admits_only_cloudtrail_for_this_organizations_trail(sim_org: SimOrg) -> None:
    make_engine(_config(sim_org)).converge("deploy", Mode.DEPLOY)
    policy = json.loads(sim_org.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])

    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert {json.dumps(s["Principal"], sort_keys=True) for s in allows} == {
        json.dumps({"Service": ["cloudtrail.amazonaws.com"]})
    }
    by_action: dict[str, list[dict[str, Any]]] = {}
    for statement in allows:
        for action in statement["Action"]:
            by_action.setdefault(action, []).append(statement)
    assert set(by_action) == {"s3:GetBucketAcl", "s3:PutObject"}
    (acl,) = by_action["s3:GetBucketAcl"]
    assert acl["Resource"] == [f"arn:aws:s3:::{BUCKET}"]
    assert acl["Condition"] == {"StringEquals": {"aws:SourceArn": [TRAIL_ARN]}}
    writes = {r for s in by_action["s3:PutObject"] for r in s["Resource"]}
    assert writes == {
        f"arn:aws:s3:::{BUCKET}/AWSLogs/{MANAGEMENT}/*",
        f"arn:aws:s3:::{BUCKET}/AWSLogs/{sim_org.org_id}/*",
    }
    for statement in by_action["s3:PutObject"]:
        assert statement["Condition"] == {
            "StringEquals": {"s3:x-amz-acl": ["bucket-owner-full-control"], "aws:SourceArn": [TRAIL_ARN]}
        }
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}


def test_trail__second_deploy__unchanged_and_zero_writes(sim_org: SimOrg, call_log: CallLog) -> None:
    engine = make_engine(_config(sim_org), call_log)
    assert exit_code(engine.converge("deploy", Mode.DEPLOY)) == 0
    call_log.clear()

    result = engine.converge("deploy", Mode.DEPLOY)

    assert result.management is not None and result.management.status == "unchanged"
    assert result.management.changes == []
    assert call_log.writes() == []
    assert exit_code(engine.converge("plan", Mode.PLAN)) == 0


def test_trail__plan_shows_what_deploy_would_do_and_writes_nothing(sim_org: SimOrg, call_log: CallLog) -> None:
    result = make_engine(_config(sim_org), call_log).converge("plan", Mode.PLAN)

    assert exit_code(result) == 3
    assert result.management is not None and "create organization trail orgalerts-trail" in result.management.changes
    assert call_log.writes() == []
    assert sim_org.client("s3").list_buckets()["Buckets"] == []


def test_trail__stopped_logging_and_changed_selectors__drift_names_them_repair_restores(sim_org: SimOrg) -> None:
    engine = make_engine(_config(sim_org))
    engine.converge("deploy", Mode.DEPLOY)
    cloudtrail = sim_org.client("cloudtrail")
    cloudtrail.stop_logging(Name=TRAIL_ARN)
    cloudtrail.put_event_selectors(
        TrailName=TRAIL_ARN, EventSelectors=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]
    )

    drift = engine.converge("drift", Mode.DRIFT)
    assert exit_code(drift) == 3
    assert drift.management is not None and drift.management.status == "drifted"
    (finding,) = drift.management.changes
    assert finding.startswith("organization trail orgalerts-trail: ")
    assert "logging stopped" in finding and "event selectors changed" in finding

    repair = engine.converge("repair", Mode.REPAIR)
    assert repair.management is not None and repair.management.status == "repaired"
    assert cloudtrail.get_trail_status(Name=TRAIL_ARN)["IsLogging"] is True
    assert cloudtrail.get_event_selectors(TrailName=TRAIL_ARN)["EventSelectors"][0]["ReadWriteType"] == "All"
    assert engine.converge("drift", Mode.DRIFT).management.status == "unchanged"  # type: ignore[union-attr]


def test_trail__widened_bucket_policy__drift_finds_it(sim_org: SimOrg) -> None:
    engine = make_engine(_config(sim_org))
    engine.converge("deploy", Mode.DEPLOY)
    s3 = sim_org.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    policy["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    )
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))

    drift = engine.converge("drift", Mode.DRIFT)

    assert drift.management is not None
    assert drift.management.changes == [f"trail bucket policy {BUCKET}: policy changed"]


def test_trail__teardown_removes_trail_policy_and_bucket_and_is_idempotent(sim_org: SimOrg) -> None:
    engine = make_engine(_config(sim_org))
    engine.converge("deploy", Mode.DEPLOY)

    result = engine.remove("teardown", None)

    assert exit_code(result) == 0
    assert result.management is not None and result.management.status == "removed"
    assert [c for c in result.management.changes if "trail" in c] == [
        "delete organization trail orgalerts-trail",
        f"delete trail bucket policy {BUCKET}",
        f"delete trail bucket {BUCKET}",
    ]
    assert sim_org.client("cloudtrail").describe_trails()["trailList"] == []
    assert sim_org.client("s3").list_buckets()["Buckets"] == []
    again = engine.remove("teardown", None)
    assert again.management is not None and again.management.status == "unchanged"


def test_trail__teardown_with_log_files_in_bucket__bucket_kept_with_a_note(sim_org: SimOrg) -> None:
    engine = make_engine(_config(sim_org))
    engine.converge("deploy", Mode.DEPLOY)
    s3 = sim_org.client("s3")
    # moto (5.2) applies the policy's conditional Deny (insecure transport) to every request, so the log
    # file is put with the policy out of the way; teardown then finds the policy already gone.
    s3.delete_bucket_policy(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"AWSLogs/{MANAGEMENT}/log.json.gz", Body=b"{}")

    result = engine.remove("teardown", None)

    assert exit_code(result) == 0
    assert result.management is not None
    assert f"delete trail bucket {BUCKET}" not in result.management.changes
    assert any(f"trail bucket {BUCKET} kept" in note for note in result.management.notes)
    assert [b["Name"] for b in sim_org.client("s3").list_buckets()["Buckets"]] == [BUCKET]
    assert sim_org.client("cloudtrail").describe_trails()["trailList"] == []


def test_trail__same_named_unmanaged_bucket__management_side_fails_and_nothing_touched(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    sim_org.client("s3").create_bucket(Bucket=BUCKET)
    engine = make_engine(_config(sim_org), call_log)

    result = engine.converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 1
    assert result.management is not None and result.management.status == "failed"
    assert "trail bucket" in (result.management.error or "") and "not managed by orgalerts" in (
        result.management.error or ""
    )
    assert not [c for c in call_log.writes(MANAGEMENT) if c.service in ("s3", "cloudtrail")]
    # The members still converge: the trail is independent of forwarding.
    assert {a.status for a in result.accounts if a.account_id in sim_org.in_scope} == {"created"}
    engine.remove("teardown", None)
    assert [b["Name"] for b in sim_org.client("s3").list_buckets()["Buckets"]] == [BUCKET]


def test_trail__caller_not_the_management_account__fails_saying_so(
    sim_org: SimOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto cannot resolve the scope from a delegated administrator's account: the caller is swapped after it.
    engine = make_engine(_config(sim_org))
    scope = engine.scope()
    delegated = sim_org.accounts["notification"]
    monkeypatch.setattr(engine.ctx.gateway, "caller_account", lambda: delegated)

    result = engine.run_management(Mode.DEPLOY, scope)

    assert result is not None and result.status == "failed"
    assert f"credentials of the management account {MANAGEMENT}" in (result.error or "")
    assert f"belong to account {delegated}" in (result.error or "")
    assert sim_org.client("cloudtrail").describe_trails()["trailList"] == []


# S3 API operations whose IAM action has another name.
S3_ACTIONS = {
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
}


def test_trail_permissions__every_management_call_is_declared(sim_org: SimOrg, call_log: CallLog) -> None:
    config = sim_org.config(trail={"create": True}, guardrail={"scp": True})
    engine = make_engine(config, call_log)
    engine.converge("plan", Mode.PLAN)
    engine.converge("deploy", Mode.DEPLOY)
    sim_org.client("cloudtrail").stop_logging(Name=TRAIL_ARN)
    engine.converge("repair", Mode.REPAIR)
    engine.remove("teardown", None)

    declared = set(required_actions()["orchestrator"])
    used = {
        f"{c.service}:{S3_ACTIONS.get(c.operation, c.operation) if c.service == 's3' else c.operation}"
        for c in call_log.for_account(MANAGEMENT)
        if c.service in ("s3", "cloudtrail", "organizations")
    }
    assert used - declared == set()
    assert {"cloudtrail:CreateTrail", "s3:PutBucketPolicy", "organizations:AttachPolicy"} <= used
