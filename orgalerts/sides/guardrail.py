"""The guardrail side (opt-in, `guardrail.scp`): a service control policy that keeps orgalerts' resources intact.

Owns: the SCP document (deny changes to orgalerts' rules and targets, roles, central bus, topic, queues and
managed trail to every principal except the member role the orchestrator uses, the way AWS Control Tower
guards its own resources), its attachments (the target OUs or root, and `include_accounts`), reading both
back as `Resource`s, and the writes. Organizations calls run with the orchestrator's own credentials
(management account, or a delegated administrator allowed to manage policies).

SCPs never restrict the management account; that is AWS's rule, not a gap here.
"""

from __future__ import annotations

import time
from typing import Any

from orgalerts.config import Config
from orgalerts.model.addresses import arn, role_arn
from orgalerts.model.plan import Change, Kind, Plan
from orgalerts.model.resources import Resource, canonical_policy, is_managed_tags, managed_tags
from orgalerts.model.scope import Scope
from orgalerts.sides import cloudformation as cfn
from orgalerts.sides.base import Clients, Grant, Prerequisite, Side, Sleep, Where, Writer, everywhere

SCP = Kind("scp", "guardrail SCP")
SCP_ATTACHMENT = Kind("scp-attachment", "guardrail SCP attachment")
KINDS = (SCP, SCP_ATTACHMENT)


# CloudFormation form (`orgalerts export cloudformation`): one AWS::Organizations::Policy whose `TargetIds` are the
# attachments (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-organizations-policy.html).
def _scp_form(r: Resource, stack: cfn.Stack) -> None:
    properties = {
        "Name": r.name,
        "Type": SCP_TYPE,
        "Description": r.props["description"],
        "Content": cfn.document(r.props["document"]),
        "TargetIds": [],
        "Tags": cfn.tags(),
    }
    stack.add(r, "AWS::Organizations::Policy", properties)


def _scp_attachment_form(r: Resource, stack: cfn.Stack) -> None:
    policy = r.name.split("/", 1)[0]
    stack.holds("scp", policy, r)
    stack.properties("scp", policy)["TargetIds"].append(r.props["target"])


CLOUDFORMATION: dict[str, cfn.Form] = {"scp": _scp_form, "scp-attachment": _scp_attachment_form}


# IAM permissions of the orchestrator (management account) for the guardrail: reading, detaching and deleting
# always (the side reads when guardrail.scp is off: GuardrailSide.reads_when_off), the rest only with
# guardrail.scp. All on "*": ListPolicies and ListRoots have no
# resource type; the others' resource types (policy, root, account, ou) have ARNs holding the organization id
# and AWS-assigned policy and root ids, which the configuration does not know
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html), and the
# strict sandbox authorizes Organizations calls on "*" only (orgalerts/sandbox/strict/actions.py).
def _guarding(config: Config) -> bool:
    return config.guardrail.scp


REQUIRED_ACTIONS: tuple[Grant, ...] = (
    # Read, detached and deleted whatever the configuration (guardrail.scp set back to false, teardown).
    Grant("orchestrator", "ReadAndRemoveGuardrailPolicy", (
        "organizations:ListPolicies", "organizations:DescribePolicy", "organizations:ListTagsForResource",
        "organizations:ListTargetsForPolicy", "organizations:DetachPolicy", "organizations:DeletePolicy",
    ), everywhere),
    Grant("orchestrator", "ManageGuardrailPolicy", (
        "organizations:CreatePolicy", "organizations:TagResource", "organizations:UpdatePolicy",
        "organizations:AttachPolicy", "organizations:ListRoots",
    ), everywhere, _guarding),
    Grant("orchestrator", "EnableServiceControlPolicies", ("organizations:EnablePolicyType",), everywhere, _guarding),
)  # fmt: skip

SCP_TYPE = "SERVICE_CONTROL_POLICY"
MAX_SCP_CHARS = 5120  # AWS's limit on an SCP document

RULE_ACTIONS = (
    "events:DeleteRule",
    "events:DisableRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:TagResource",
    "events:UntagResource",
)
BUS_ACTIONS = (
    "events:DeleteEventBus",
    "events:PutPermission",
    "events:RemovePermission",
    "events:TagResource",
    "events:UntagResource",
)
ROLE_ACTIONS = (
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
)
TOPIC_ACTIONS = (
    "sns:AddPermission",
    "sns:DeleteTopic",
    "sns:RemovePermission",
    "sns:SetTopicAttributes",
    "sns:TagResource",
    "sns:UntagResource",
)
QUEUE_ACTIONS = (
    "sqs:AddPermission",
    "sqs:DeleteQueue",
    "sqs:PurgeQueue",
    "sqs:RemovePermission",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
    "sqs:UntagQueue",
)
TRAIL_ACTIONS = (
    "cloudtrail:DeleteTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:RemoveTags",
    "cloudtrail:StopLogging",
    "cloudtrail:UpdateTrail",
)


def policy_name(config: Config) -> str:
    return f"{config.names.prefix}guardrail"


def exempt_principal(config: Config) -> str:
    """The role the orchestrator assumes in every account: the only principal allowed to change orgalerts."""
    return role_arn("*", config.member_role.name)


def scp_document(config: Config, management_account_id: str) -> dict[str, Any]:
    """Deny every change to orgalerts' resources unless the caller is the orchestrator's member role."""
    prefix = config.names.prefix
    unless = {"ArnNotLike": {"aws:PrincipalArn": exempt_principal(config)}}

    def deny(sid: str, actions: tuple[str, ...], resources: list[str]) -> dict[str, Any]:
        return {"Sid": sid, "Effect": "Deny", "Action": list(actions), "Resource": resources, "Condition": unless}

    statements = [
        # `*` in an ARN pattern spans `/`: rules on the central bus (rule/<bus>/<rule>) are covered too.
        deny("OrgAlertsRules", RULE_ACTIONS, [arn("events", "*", "*", f"rule/{prefix}*")]),
        deny("OrgAlertsBus", BUS_ACTIONS, [arn("events", "*", "*", f"event-bus/{prefix}*")]),
        deny("OrgAlertsRoles", ROLE_ACTIONS, [role_arn("*", f"{prefix}*")]),
        deny("OrgAlertsTopic", TOPIC_ACTIONS, [arn("sns", "*", "*", f"{prefix}*")]),
        deny("OrgAlertsQueues", QUEUE_ACTIONS, [arn("sqs", "*", "*", f"{prefix}*")]),
    ]
    if config.trail.create:
        statements.append(
            deny(
                "OrgAlertsTrail",
                TRAIL_ACTIONS,
                [arn("cloudtrail", "*", management_account_id, f"trail/{config.trail.name}")],
            )
        )
    return {"Version": "2012-10-17", "Statement": statements}


def description(config: Config) -> str:
    return (
        f"orgalerts guardrail: only role {config.member_role.name} may change orgalerts' rules, roles, bus, "
        "topic, queues and trail"
    )


def attachment_targets(config: Config, management_account_id: str) -> list[str]:
    """The target OUs (or root) and the explicitly included accounts (an SCP on the management account
    has no effect, so it is left out)."""
    targets = list(config.organization.ous)
    targets += [a for a in config.organization.include_accounts if a != management_account_id]
    return targets


def guardrail_resources(config: Config, management_account_id: str) -> list[Resource]:
    name = policy_name(config)
    document = canonical_policy(scp_document(config, management_account_id))
    resources = [Resource("scp", name, {"document": document, "description": description(config)})]
    resources += [
        Resource("scp-attachment", f"{name}/{target}", {"target": target})
        for target in attachment_targets(config, management_account_id)
    ]
    return resources


# --- live ------------------------------------------------------------------------------------------------


def read_guardrail(orgs: Any, name: str) -> list[Resource]:
    """The SCP with the managed name and, when it is orgalerts', every target it is attached to."""
    summary = None
    for page in orgs.get_paginator("list_policies").paginate(Filter=SCP_TYPE):
        summary = next((p for p in page.get("Policies", []) if p.get("Name") == name), None)
        if summary is not None:
            break
    if summary is None:
        return []
    policy_id = str(summary["Id"])
    tags = orgs.list_tags_for_resource(ResourceId=policy_id).get("Tags", [])
    if not is_managed_tags(tags):
        return [Resource("scp", name, {}, managed=False, arn=policy_id)]
    policy = orgs.describe_policy(PolicyId=policy_id)["Policy"]
    props = {
        "document": canonical_policy(policy.get("Content") or "{}"),
        "description": str(policy.get("PolicySummary", {}).get("Description", "")),
    }
    found = [Resource("scp", name, props, arn=policy_id)]
    for page in orgs.get_paginator("list_targets_for_policy").paginate(PolicyId=policy_id):
        for target in page.get("Targets", []):
            target_id = str(target["TargetId"])
            found.append(Resource("scp-attachment", f"{name}/{target_id}", {"target": target_id}, arn=policy_id))
    return found


def scp_policy_type_enabled(orgs: Any) -> tuple[str, bool]:
    """The root id, and whether SCPs are enabled on it (attaching an SCP fails otherwise)."""
    roots = orgs.list_roots().get("Roots", [])
    if not roots:
        return "", False
    root = roots[0]
    enabled = any(t.get("Type") == SCP_TYPE and t.get("Status") == "ENABLED" for t in root.get("PolicyTypes", []))
    return str(root["Id"]), enabled


# --- findings -------------------------------------------------------------------------------------------


def finding(change: Change) -> str:
    r = change.resource
    if change.kind == "scp-attachment":
        policy, target = r.name.split("/", 1)
        if change.action == "create":
            return f"guardrail SCP {policy} not attached to {target}"
        return f"guardrail SCP {policy} attached to {target}, which is not configured"
    if change.action == "create":
        return f"guardrail SCP {r.name} missing"
    if change.action == "delete":
        return f"guardrail SCP {r.name} is not configured (stale)"
    details = ["deny statements changed" if f == "document" else f"{f} changed" for f in change.fields]
    return f"guardrail SCP {r.name}: {'; '.join(details)}"


# --- writes ---------------------------------------------------------------------------------------------


class GuardrailWriter(Writer):
    """Writes for the SCP and its attachments. `policy_ids` maps policy names to ids (live, or just created)."""

    def __init__(
        self, clients: Clients, policy_ids: dict[str, str], *, wait: Any = None, sleep: Sleep = time.sleep
    ) -> None:
        super().__init__(clients, wait=wait, sleep=sleep)
        self.orgs = clients.organizations
        self.policy_ids = policy_ids
        self.handlers.update(
            {
                ("create", "scp"): self.create_scp,
                ("update", "scp"): self.update_scp,
                ("delete", "scp"): self.delete_scp,
                ("create", "scp-attachment"): self.create_scp_attachment,
                ("delete", "scp-attachment"): self.delete_scp_attachment,
            }
        )

    def create_scp(self, change: Change) -> None:
        r = change.resource
        created = self.orgs.create_policy(
            Name=r.name,
            Description=r.props["description"],
            Content=r.props["document"],
            Type=SCP_TYPE,
            Tags=managed_tags(),
        )
        self.policy_ids[r.name] = str(created["Policy"]["PolicySummary"]["Id"])

    def update_scp(self, change: Change) -> None:
        r = change.resource
        self.orgs.update_policy(
            PolicyId=self.policy_ids[r.name], Content=r.props["document"], Description=r.props["description"]
        )

    def delete_scp(self, change: Change) -> None:
        self.orgs.delete_policy(PolicyId=change.resource.arn)

    def create_scp_attachment(self, change: Change) -> None:
        policy = change.resource.name.split("/", 1)[0]
        self.orgs.attach_policy(PolicyId=self.policy_ids[policy], TargetId=change.resource.props["target"])

    def delete_scp_attachment(self, change: Change) -> None:
        self.orgs.detach_policy(PolicyId=change.resource.arn, TargetId=change.resource.props["target"])


# EnablePolicyType is asynchronous: the root shows the type PENDING_ENABLE until it is ENABLED, and
# attaching a policy of that type fails meanwhile. "Use ListRoots to see the status of policy types":
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_EnablePolicyType.html
POLICY_TYPE_POLLS = 30
POLICY_TYPE_POLL_SECONDS = 2.0


def enable_policy_type(orgs: Any, root_id: str, sleep: Sleep) -> None:
    """Enable SCPs on the root and wait (bounded) until ListRoots shows them ENABLED."""
    orgs.enable_policy_type(RootId=root_id, PolicyType=SCP_TYPE)
    for _ in range(POLICY_TYPE_POLLS):
        if scp_policy_type_enabled(orgs)[1]:
            return
        sleep(POLICY_TYPE_POLL_SECONDS)
    raise PolicyTypeNotReady(
        f"service control policies on root {root_id} are still not ENABLED after "
        f"{POLICY_TYPE_POLLS * POLICY_TYPE_POLL_SECONDS:g}s; run deploy again in a minute"
    )


class PolicyTypeNotReady(OSError):
    """Enabling the SCP policy type took longer than we wait (an OSError: it stays inside its unit)."""


def policy_type_prerequisite(orgs: Any, plan: Plan, sleep: Sleep) -> list[Prerequisite]:
    """Attaching an SCP needs the SCP policy type enabled on the root (read-only here)."""
    if not any(c.kind == "scp-attachment" and c.action == "create" for c in plan.changes):
        return []
    root_id, scps_enabled = scp_policy_type_enabled(orgs)
    if scps_enabled or not root_id:
        return []
    return [
        Prerequisite(
            f"enable service control policies on root {root_id} (needed to attach the guardrail)",
            lambda: enable_policy_type(orgs, root_id, sleep),
        )
    ]


class GuardrailSide(Side):
    organization_wide = True
    name = "guardrail"
    where = Where.MANAGEMENT
    kinds = KINDS
    cloudformation = CLOUDFORMATION
    services = ("organizations",)
    required_actions = REQUIRED_ACTIONS
    reads_when_off = True  # guardrail.scp set back to false: the SCP an earlier config created is removed

    def enabled(self, config: Config, removing: bool) -> bool:
        return config.guardrail.scp

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return guardrail_resources(config, account_id) if config.guardrail.scp else []

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        return read_guardrail(clients.organizations, policy_name(config))

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        policy_ids = {r.name: r.arn for r in live if r.kind == "scp" and r.managed}
        return GuardrailWriter(clients, policy_ids, wait=wait, sleep=sleep)

    def finding(self, change: Change) -> str:
        return finding(change)

    def notes(self, config: Config, scope: Scope, live: list[Resource], desired: list[Resource]) -> list[str]:
        management_id = scope.management_account_id
        if not desired or scope.find(management_id) is None:
            return []
        return [
            f"the management account {management_id} is in scope: SCPs never restrict it, "
            "so the guardrail does not protect its resources"
        ]

    def prerequisites(self, clients: Clients, plan: Plan, sleep: Sleep) -> list[Prerequisite]:
        return policy_type_prerequisite(clients.organizations, plan, sleep)


GUARDRAIL = GuardrailSide()
