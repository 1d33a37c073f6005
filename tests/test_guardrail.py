"""The opt-in guardrail SCP (`guardrail.scp`): the document, deploy, idempotence, drift, teardown."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest
from conftest import MANAGEMENT, CallLog, SimOrg, make_engine

from orgalerts.cli.render import to_json
from orgalerts.config import Config
from orgalerts.engine.results import Mode, exit_code
from orgalerts.errors import ConfigError
from orgalerts.model.resources import canonical_policy
from orgalerts.sides.guardrail import MAX_SCP_CHARS, scp_document

ORCHESTRATOR = "OrganizationAccountAccessRole"
MEMBER = "333333333301"


def _config(sim_org: SimOrg, **overrides: Any) -> Config:
    return sim_org.config(
        guardrail={"scp": True}, alerts={"pattern": "iam-changes", "account_changes": False}, **overrides
    )


def _values(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def denies(document: dict[str, Any], action: str, resource: str, principal_arn: str) -> bool:
    """Whether the SCP denies `action` on `resource` to `principal_arn` (IAM wildcard matching, case-sensitive
    ARNs; only the operators the guardrail uses are understood)."""
    for statement in document["Statement"]:
        if statement["Effect"] != "Deny":
            continue
        if not any(fnmatchcase(action.lower(), a.lower()) for a in _values(statement["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in _values(statement["Resource"])):
            continue
        condition = statement.get("Condition", {})
        assert set(condition) <= {"ArnNotLike"}, condition
        exempt = _values(condition.get("ArnNotLike", {}).get("aws:PrincipalArn", []))
        if not any(fnmatchcase(principal_arn, pattern) for pattern in exempt):
            return True
    return False


PROTECTED = [
    ("events:DeleteRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/orgalerts-forward"),
    ("events:DisableRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/orgalerts-watchdog"),
    ("events:PutRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/orgalerts-forward"),
    ("events:PutTargets", f"arn:aws:events:us-east-1:{MEMBER}:rule/orgalerts-forward"),
    ("events:RemoveTargets", "arn:aws:events:us-east-1:222222222222:rule/orgalerts-central/orgalerts-alert"),
    ("iam:DeleteRole", f"arn:aws:iam::{MEMBER}:role/orgalerts-forwarder"),
    ("iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/orgalerts-forwarder"),
    ("iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{MEMBER}:role/orgalerts-watchdog"),
    ("events:DeleteEventBus", "arn:aws:events:us-east-1:222222222222:event-bus/orgalerts-central"),
    ("sns:SetTopicAttributes", "arn:aws:sns:us-east-1:222222222222:orgalerts-alerts"),
]


def test_config_guardrail__defaults_off_and_unknown_keys_refused(sim_org: SimOrg) -> None:
    assert sim_org.config().guardrail.scp is False
    with pytest.raises(ConfigError, match=r"guardrail\.spc: no such key \(allowed here: scp\)"):
        sim_org.config(guardrail={"spc": True})


@pytest.mark.parametrize(("action", "resource"), PROTECTED)
def test_scp_document__denies_changes_to_orgalerts_resources_except_to_the_member_role(
    sim_org: SimOrg, action: str, resource: str
) -> None:
    document = json.loads(canonical_policy(scp_document(_config(sim_org), MANAGEMENT)))

    assert denies(document, action, resource, f"arn:aws:iam::{MEMBER}:role/Admin")
    assert denies(document, action, resource, f"arn:aws:iam::{MEMBER}:user/alice")
    assert not denies(document, action, resource, f"arn:aws:iam::{MEMBER}:role/{ORCHESTRATOR}")


def test_scp_document__leaves_other_resources_alone_and_fits_the_scp_size_limit(sim_org: SimOrg) -> None:
    document = scp_document(_config(sim_org, trail={"create": True}), MANAGEMENT)

    admin = f"arn:aws:iam::{MEMBER}:role/Admin"
    assert not denies(document, "events:DeleteRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/team-rule", admin)
    assert not denies(document, "iam:DeleteRole", f"arn:aws:iam::{MEMBER}:role/team-role", admin)
    assert not denies(document, "iam:CreateUser", f"arn:aws:iam::{MEMBER}:user/orgalerts-x", admin)
    trail = f"arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/orgalerts-trail"
    for action in ("cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail"):
        assert denies(document, action, trail, admin)
        assert not denies(document, action, trail, f"arn:aws:iam::{MEMBER}:role/{ORCHESTRATOR}")
    assert len(canonical_policy(document)) < MAX_SCP_CHARS
    without_trail = scp_document(_config(sim_org), MANAGEMENT)
    assert not any("cloudtrail" in json.dumps(s) for s in without_trail["Statement"])


def test_scp_document__custom_prefix_and_member_role_are_used(sim_org: SimOrg) -> None:
    config = _config(sim_org, resource_prefix="sec-", member_role={"name": "OrgAdmin"})
    document = scp_document(config, MANAGEMENT)

    resource = f"arn:aws:iam::{MEMBER}:role/sec-forwarder"
    assert denies(document, "iam:DeleteRole", resource, f"arn:aws:iam::{MEMBER}:role/{ORCHESTRATOR}")
    assert not denies(document, "iam:DeleteRole", resource, f"arn:aws:iam::{MEMBER}:role/OrgAdmin")


def _policy(sim_org: SimOrg, name: str = "orgalerts-guardrail") -> dict[str, Any]:
    orgs = sim_org.client("organizations")
    (summary,) = [p for p in orgs.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == name]
    return dict(summary)


def _targets(sim_org: SimOrg, policy_id: str) -> set[str]:
    return {
        t["TargetId"] for t in sim_org.client("organizations").list_targets_for_policy(PolicyId=policy_id)["Targets"]
    }


def test_guardrail__deploy_creates_tagged_scp_attached_to_the_target_ous(sim_org: SimOrg) -> None:
    config = _config(sim_org)
    result = make_engine(config).converge("deploy", Mode.DEPLOY)
    management = to_json(result)["management"]

    assert exit_code(result) == 0, management
    assert management["status"] == "created"
    assert management["changes"][0].startswith("enable service control policies on root")
    orgs = sim_org.client("organizations")
    root = orgs.list_roots()["Roots"][0]
    assert {"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"} in root["PolicyTypes"]
    summary = _policy(sim_org)
    assert {"Key": "managed-by", "Value": "orgalerts"} in orgs.list_tags_for_resource(ResourceId=summary["Id"])["Tags"]
    assert _targets(sim_org, summary["Id"]) == {sim_org.ous["Security"], sim_org.ous["Workloads"]}
    content = json.loads(orgs.describe_policy(PolicyId=summary["Id"])["Policy"]["Content"])
    assert denies(content, "events:DeleteRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/orgalerts-forward", "x")
    assert json.dumps(content, sort_keys=True) == json.dumps(
        json.loads(canonical_policy(scp_document(config, MANAGEMENT))), sort_keys=True
    )


def test_guardrail__include_accounts_get_the_scp_too_but_not_the_management_account(sim_org: SimOrg) -> None:
    outside = sim_org.accounts["outside"]
    config = _config(
        sim_org,
        organization={"ous": [sim_org.ous["Workloads"]], "include_accounts": [outside, MANAGEMENT]},
    )
    result = make_engine(config).converge("deploy", Mode.DEPLOY)

    assert _targets(sim_org, _policy(sim_org)["Id"]) == {sim_org.ous["Workloads"], outside}
    assert result.management is not None
    assert any("SCPs never restrict it" in note for note in result.management.notes)


def test_guardrail__second_deploy__unchanged_and_zero_writes(sim_org: SimOrg, call_log: CallLog) -> None:
    engine = make_engine(_config(sim_org), call_log)
    engine.converge("deploy", Mode.DEPLOY)
    call_log.clear()

    result = engine.converge("deploy", Mode.DEPLOY)

    assert result.management is not None and result.management.status == "unchanged"
    assert call_log.writes() == []


def test_guardrail__detached_and_edited_policy__drift_finds_both_and_repair_restores(sim_org: SimOrg) -> None:
    engine = make_engine(_config(sim_org))
    engine.converge("deploy", Mode.DEPLOY)
    orgs = sim_org.client("organizations")
    policy_id = _policy(sim_org)["Id"]
    orgs.detach_policy(PolicyId=policy_id, TargetId=sim_org.ous["Workloads"])
    orgs.attach_policy(PolicyId=policy_id, TargetId=sim_org.ous["Outside"])
    orgs.update_policy(
        PolicyId=policy_id,
        Content=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )

    drift = engine.converge("drift", Mode.DRIFT)

    assert exit_code(drift) == 3
    assert drift.management is not None
    assert sorted(drift.management.changes) == sorted(
        [
            "guardrail SCP orgalerts-guardrail: deny statements changed",
            f"guardrail SCP orgalerts-guardrail not attached to {sim_org.ous['Workloads']}",
            f"guardrail SCP orgalerts-guardrail attached to {sim_org.ous['Outside']}, which is not configured",
        ]
    )
    repair = engine.converge("repair", Mode.REPAIR)
    assert repair.management is not None and repair.management.status == "repaired"
    assert _targets(sim_org, policy_id) == {sim_org.ous["Security"], sim_org.ous["Workloads"]}
    assert engine.converge("drift", Mode.DRIFT).management.status == "unchanged"  # type: ignore[union-attr]


def test_guardrail__teardown_detaches_and_deletes_only_the_managed_scp(sim_org: SimOrg) -> None:
    orgs = sim_org.client("organizations")
    theirs = orgs.create_policy(
        Name="team-guardrail",
        Description="not orgalerts'",
        Type="SERVICE_CONTROL_POLICY",
        Content=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
        ),
    )["Policy"]["PolicySummary"]["Id"]
    orgs.attach_policy(PolicyId=theirs, TargetId=sim_org.ous["Workloads"])
    engine = make_engine(_config(sim_org))
    engine.converge("deploy", Mode.DEPLOY)

    result = engine.remove("teardown", None)

    assert exit_code(result) == 0
    assert result.management is not None and result.management.status == "removed"
    names = {p["Name"] for p in orgs.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]}
    assert "orgalerts-guardrail" not in names and "team-guardrail" in names
    assert _targets(sim_org, theirs) == {sim_org.ous["Workloads"]}


def test_guardrail__same_named_unmanaged_scp__fails_and_is_never_touched(sim_org: SimOrg, call_log: CallLog) -> None:
    orgs = sim_org.client("organizations")
    content = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    )
    policy_id = orgs.create_policy(
        Name="orgalerts-guardrail", Description="someone else's", Type="SERVICE_CONTROL_POLICY", Content=content
    )["Policy"]["PolicySummary"]["Id"]
    engine = make_engine(_config(sim_org), call_log)

    result = engine.converge("deploy", Mode.DEPLOY)
    engine.remove("teardown", None)

    assert result.management is not None and result.management.status == "failed"
    assert "guardrail SCP orgalerts-guardrail exists but is not managed by orgalerts" in (result.management.error or "")
    assert orgs.describe_policy(PolicyId=policy_id)["Policy"]["Content"] == content
    assert not [c for c in call_log.writes(MANAGEMENT) if c.service == "organizations" and "Policy" in c.operation]
