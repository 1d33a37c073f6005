"""The trail side (opt-in, `trail.create`): the blog's first step, managed like every other resource.

Owns: the trail's S3 bucket name, its bucket policy (only CloudTrail, only for this organization's trail),
the desired trail (organization, multi-region, management events read and write, logging), reading all
of it back as `Resource`s, and the writes. Everything lives in the management account, in `config.region`.

A bucket or trail with the managed name but without the managed-by tag is never touched (a conflict, as
for every other resource). Teardown deletes the trail and the bucket policy; a bucket still holding log
files is kept (and said so): audit logs are never deleted by orgalerts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.config import Config
from orgalerts.model.addresses import bucket_arn, role_arn
from orgalerts.model.addresses import trail_arn as make_trail_arn
from orgalerts.model.plan import Change, Kind, Plan
from orgalerts.model.resources import (
    MANAGED_TAG_KEY,
    MANAGED_TAG_VALUE,
    Resource,
    canonical_json,
    canonical_policy,
    is_managed_tags,
)
from orgalerts.model.scope import Scope
from orgalerts.sides import cloudformation as cfn
from orgalerts.sides.base import Clients, Grant, Prerequisite, Side, Sleep, Where, Writer, everywhere

BUCKET = Kind("bucket", "trail bucket")
BUCKET_POLICY = Kind("bucket-policy", "trail bucket policy")
TRAIL = Kind("trail", "organization trail")
KINDS = (BUCKET, BUCKET_POLICY, TRAIL)


# CloudFormation form of these kinds (`orgalerts export cloudformation`), defined after the desired state below.
def _cloudformation() -> dict[str, cfn.Form]:
    return {"bucket": _bucket_form, "bucket-policy": _bucket_policy_form, "trail": _trail_form}


CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"
CLOUDTRAIL_SERVICE_LINKED_ROLE = "aws-service-role/cloudtrail.amazonaws.com/AWSServiceRoleForCloudTrail"
# CreateTrail right after PutBucketPolicy can see the old (missing) policy for a moment.
TRAIL_CONSISTENCY_CODES = frozenset({"InsufficientS3BucketPolicyException"})
CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"
MAX_BUCKET_NAME = 63

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
# Management events, read and write, no data events: what the blog's trail records, and what EventBridge
# needs to see every IAM call (read-only calls too, for the all-iam pattern).
EVENT_SELECTORS: list[dict[str, Any]] = [
    {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [], "ExcludeManagementEventSources": []}
]


def bucket_name(config: Config, management_account_id: str) -> str:
    """`orgalerts-trail-<management account>-<region>`: deterministic, lowercase, at most 63 characters."""
    prefix = config.resource_prefix.lower().replace("_", "-")
    suffix = f"trail-{management_account_id}-{config.region}"
    prefix = prefix[: MAX_BUCKET_NAME - len(suffix)]
    return f"{prefix}{suffix}"


def trail_arn(config: Config, management_account_id: str) -> str:
    return make_trail_arn(config.region, management_account_id, config.trail.name)


def bucket_policy(bucket: str, management_account_id: str, organization_id: str, arn: str) -> str:
    """Only CloudTrail, only on behalf of this organization's trail (`aws:SourceArn`), may check the ACL and
    write log files under AWSLogs/<management account>/ and AWSLogs/<organization id>/; plain HTTP is refused."""
    source = {"aws:SourceArn": arn}
    write_condition = {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **source}}
    return canonical_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AWSCloudTrailAclCheck",
                    "Effect": "Allow",
                    "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
                    "Action": "s3:GetBucketAcl",
                    "Resource": bucket_arn(bucket),
                    "Condition": {"StringEquals": source},
                },
                {
                    "Sid": "AWSCloudTrailWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
                    "Action": "s3:PutObject",
                    "Resource": bucket_arn(bucket, f"/AWSLogs/{management_account_id}/*"),
                    "Condition": write_condition,
                },
                {
                    "Sid": "AWSCloudTrailOrganizationWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
                    "Action": "s3:PutObject",
                    "Resource": bucket_arn(bucket, f"/AWSLogs/{organization_id}/*"),
                    "Condition": write_condition,
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn(bucket), bucket_arn(bucket, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


def _flag(value: object) -> str:
    return "true" if value else "false"


def selectors_prop(response: dict[str, Any]) -> str:
    """GetEventSelectors' answer in a comparable form. A trail without custom selectors logs every
    management event, read and write (AWS's default): that is what an empty answer means."""
    advanced = response.get("AdvancedEventSelectors") or []
    if advanced:
        return canonical_json({"advanced": advanced})
    basic = response.get("EventSelectors") or EVENT_SELECTORS
    return canonical_json(
        {
            "basic": [
                {
                    "ReadWriteType": s.get("ReadWriteType", "All"),
                    "IncludeManagementEvents": bool(s.get("IncludeManagementEvents", True)),
                    "DataResources": s.get("DataResources") or [],
                    "ExcludeManagementEventSources": s.get("ExcludeManagementEventSources") or [],
                }
                for s in basic
            ]
        }
    )


def trail_resources(config: Config, management_account_id: str, organization_id: str) -> list[Resource]:
    """The bucket, its policy and the organization trail, as desired."""
    bucket = bucket_name(config, management_account_id)
    arn = trail_arn(config, management_account_id)
    return [
        Resource("bucket", bucket, {"public_access_block": canonical_json(PUBLIC_ACCESS_BLOCK)}),
        Resource(
            "bucket-policy", bucket, {"document": bucket_policy(bucket, management_account_id, organization_id, arn)}
        ),
        Resource(
            "trail",
            config.trail.name,
            {
                "bucket": bucket,
                "organization": "true",
                "multi_region": "true",
                "global_events": "true",
                "log_validation": "true",
                "logging": "true",
                "selectors": selectors_prop({"EventSelectors": EVENT_SELECTORS}),
            },
            arn=arn,
        ),
    ]


# --- CloudFormation form -------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucket.html,
# aws-resource-s3-bucketpolicy.html, aws-resource-cloudtrail-trail.html (`IsLogging` is required). The bucket is
# retained when the stack is deleted or the bucket replaced: orgalerts never deletes audit logs, and CloudFormation
# cannot delete a bucket that holds objects anyway
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html).


def _bucket_form(r: Resource, stack: cfn.Stack) -> None:
    properties = {
        "BucketName": r.name,
        "PublicAccessBlockConfiguration": cfn.document(r.props["public_access_block"]),
        "Tags": cfn.tags(),
    }
    stack.add(r, "AWS::S3::Bucket", properties, DeletionPolicy="Retain", UpdateReplacePolicy="Retain")


def _bucket_policy_form(r: Resource, stack: cfn.Stack) -> None:
    properties = {"Bucket": stack.ref("bucket", r.name), "PolicyDocument": cfn.document(r.props["document"])}
    stack.add(r, "AWS::S3::BucketPolicy", properties)


def _trail_form(r: Resource, stack: cfn.Stack) -> None:
    bucket = r.props["bucket"]
    properties = {
        "TrailName": r.name,
        "S3BucketName": stack.ref("bucket", bucket) if stack.has("bucket", bucket) else bucket,
        "IsLogging": cfn.flag(r.props["logging"]),
        "IsOrganizationTrail": cfn.flag(r.props["organization"]),
        "IsMultiRegionTrail": cfn.flag(r.props["multi_region"]),
        "IncludeGlobalServiceEvents": cfn.flag(r.props["global_events"]),
        "EnableLogFileValidation": cfn.flag(r.props["log_validation"]),
        "EventSelectors": EVENT_SELECTORS,
        "Tags": cfn.tags(),
    }
    stack.add(r, "AWS::CloudTrail::Trail", properties)


# --- live ------------------------------------------------------------------------------------------------


def read_bucket(s3: Any, bucket: str) -> list[Resource]:
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return []
        if code != "NoSuchTagSet":
            raise
        tags = []
    managed = is_managed_tags(tags)
    if not managed:
        return [Resource("bucket", bucket, {}, managed=False)]
    try:
        block = canonical_json(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    except ClientError as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        block = ""
    found = [Resource("bucket", bucket, {"public_access_block": block})]
    try:
        found.append(
            Resource(
                "bucket-policy", bucket, {"document": canonical_policy(s3.get_bucket_policy(Bucket=bucket)["Policy"])}
            )
        )
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucketPolicy":
            raise
    return found


def read_trail(cloudtrail: Any, name: str, arn: str) -> list[Resource]:
    # Filter by ARN ourselves: moto (5.2) ignores trailNameList and returns every trail.
    trails = cloudtrail.describe_trails(trailNameList=[arn], includeShadowTrails=False).get("trailList", [])
    trail = next((t for t in trails if t.get("TrailARN") == arn), None)
    if trail is None:
        return []
    tag_lists = cloudtrail.list_tags(ResourceIdList=[arn]).get("ResourceTagList", [])
    tags: list[dict[str, str]] = next((t.get("TagsList", []) for t in tag_lists if t.get("ResourceId") == arn), [])
    managed = is_managed_tags(tags)
    if not managed:
        return [Resource("trail", name, {}, managed=False, arn=arn)]
    status = cloudtrail.get_trail_status(Name=arn)
    selectors = cloudtrail.get_event_selectors(TrailName=arn)
    props = {
        "bucket": str(trail.get("S3BucketName", "")),
        "organization": _flag(trail.get("IsOrganizationTrail")),
        "multi_region": _flag(trail.get("IsMultiRegionTrail")),
        "global_events": _flag(trail.get("IncludeGlobalServiceEvents")),
        "log_validation": _flag(trail.get("LogFileValidationEnabled")),
        "logging": _flag(status.get("IsLogging")),
        "selectors": selectors_prop(selectors),
    }
    return [Resource("trail", name, props, arn=arn)]


def read_trail_side(s3: Any, cloudtrail: Any, config: Config, management_account_id: str) -> list[Resource]:
    bucket = bucket_name(config, management_account_id)
    return read_bucket(s3, bucket) + read_trail(cloudtrail, config.trail.name, trail_arn(config, management_account_id))


# --- findings -------------------------------------------------------------------------------------------

FIELD_FINDINGS = {
    "logging": "logging stopped: no IAM event reaches EventBridge, no alert can fire",
    "selectors": "event selectors changed (management events, read and write, must be recorded)",
    "organization": "no longer an organization trail (member accounts not recorded)",
    "multi_region": "no longer multi-region",
    "global_events": "global service events (IAM) excluded",
    "log_validation": "log file validation turned off",
    "bucket": "delivers to another bucket",
    "public_access_block": "public access block weakened",
    "document": "policy changed",
}


def finding(change: Change) -> str:
    """How drift words a trail-side change: field by field for updates, as any resource otherwise."""
    if change.action != "update":
        return change.finding
    details = [FIELD_FINDINGS.get(f, f"{f} changed") for f in change.fields]
    return f"{change.label} {change.name}: {'; '.join(details)}"


# --- writes ---------------------------------------------------------------------------------------------


class TrailWriter(Writer):
    """Writes for the bucket, its policy and the trail (management account, `region`)."""

    retry_codes = TRAIL_CONSISTENCY_CODES

    def __init__(self, clients: Clients, region: str, *, wait: Any = None, sleep: Sleep = time.sleep) -> None:
        super().__init__(clients, wait=wait, sleep=sleep)
        self.s3 = clients.s3
        self.cloudtrail = clients.cloudtrail
        self.region = region
        self.handlers.update(
            {
                ("create", "bucket"): self.create_bucket,
                ("update", "bucket"): self.update_bucket,
                ("delete", "bucket"): self.delete_bucket,
                ("create", "bucket-policy"): self.put_bucket_policy,
                ("update", "bucket-policy"): self.put_bucket_policy,
                ("delete", "bucket-policy"): self.delete_bucket_policy,
                ("create", "trail"): self.create_trail,
                ("update", "trail"): self.update_trail,
                ("delete", "trail"): self.delete_trail,
            }
        )

    def create_bucket(self, change: Change) -> None:
        r = change.resource
        params: dict[str, Any] = {"Bucket": r.name}
        if self.region != "us-east-1":  # us-east-1 refuses a LocationConstraint naming itself
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.s3.create_bucket(**params)
        self.s3.put_bucket_tagging(
            Bucket=r.name, Tagging={"TagSet": [{"Key": MANAGED_TAG_KEY, "Value": MANAGED_TAG_VALUE}]}
        )
        self.update_bucket(change)

    def update_bucket(self, change: Change) -> None:
        r = change.resource
        self.s3.put_public_access_block(
            Bucket=r.name, PublicAccessBlockConfiguration=json.loads(r.props["public_access_block"])
        )

    def delete_bucket(self, change: Change) -> bool:
        try:
            self.s3.delete_bucket(Bucket=change.resource.name)
        except ClientError as exc:
            if error_code(exc) != "BucketNotEmpty":
                raise
            self.kept.append(
                f"trail bucket {change.resource.name} kept: it holds CloudTrail log files "
                "(orgalerts never deletes audit logs; empty and delete it yourself when they are no longer needed)"
            )
            return False  # not deleted after all: the note says why
        return True

    def put_bucket_policy(self, change: Change) -> None:
        self.s3.put_bucket_policy(Bucket=change.resource.name, Policy=change.resource.props["document"])

    def delete_bucket_policy(self, change: Change) -> None:
        self.s3.delete_bucket_policy(Bucket=change.resource.name)

    @staticmethod
    def _trail_settings(r: Resource) -> dict[str, Any]:
        """What create and update both set: an organization trail, all regions, global events, validated."""
        return {
            "Name": r.name,
            "S3BucketName": r.props["bucket"],
            "IsOrganizationTrail": True,
            "IsMultiRegionTrail": True,
            "IncludeGlobalServiceEvents": True,
            "EnableLogFileValidation": True,
        }

    def create_trail(self, change: Change) -> None:
        r = change.resource
        self.cloudtrail.create_trail(
            **self._trail_settings(r), TagsList=[{"Key": MANAGED_TAG_KEY, "Value": MANAGED_TAG_VALUE}]
        )
        self.cloudtrail.put_event_selectors(TrailName=r.name, EventSelectors=EVENT_SELECTORS)
        self.cloudtrail.start_logging(Name=r.name)

    def update_trail(self, change: Change) -> None:
        r = change.resource
        fields = set(change.fields)
        if fields & {"bucket", "organization", "multi_region", "global_events", "log_validation"}:
            self.cloudtrail.update_trail(**self._trail_settings(r))
        if "selectors" in fields:
            self.cloudtrail.put_event_selectors(TrailName=r.name, EventSelectors=EVENT_SELECTORS)
        if "logging" in fields:
            self.cloudtrail.start_logging(Name=r.name)

    def delete_trail(self, change: Change) -> None:
        self.cloudtrail.delete_trail(Name=change.resource.name)


def trusted_access_prerequisite(orgs: Any, plan: Plan) -> list[Prerequisite]:
    """An organization trail needs CloudTrail's trusted access in Organizations (read-only here)."""
    needed = any(c.kind == "trail" and (c.action == "create" or "organization" in c.fields) for c in plan.changes)
    if not needed:
        return []
    enabled_services: set[str] = set()
    for page in orgs.get_paginator("list_aws_service_access_for_organization").paginate():
        enabled_services.update(str(s.get("ServicePrincipal")) for s in page.get("EnabledServicePrincipals", []))
    if CLOUDTRAIL_SERVICE in enabled_services:
        return []
    return [
        Prerequisite(
            "enable trusted access for CloudTrail in AWS Organizations (needed by an organization trail)",
            lambda: orgs.enable_aws_service_access(ServicePrincipal=CLOUDTRAIL_SERVICE),
        )
    ]


# --- permissions (the orchestrator, management account; only with trail.create) ----------------------------


def _bucket(config: Config) -> list[str]:
    # The management account's id is not in the config: `*` stands for it in the bucket's name.
    return [bucket_arn(bucket_name(config, "*"))]


def _trail(config: Config) -> list[str]:
    return [trail_arn(config, "*")]


def _creating_trail(config: Config) -> bool:
    return config.trail.create


# Creating is granted only with trail.create; reading and removing always (the side reads when the feature is
# off, so a trail an earlier config created is removed). Resource types:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html (bucket*: CreateBucket,
# DeleteBucket, Get/PutBucketTagging, Get/Put/DeleteBucketPolicy, Get/PutBucketPublicAccessBlock);
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudtrail.html (trail*: CreateTrail,
# UpdateTrail, DeleteTrail, GetTrailStatus, Get/PutEventSelectors, StartLogging, AddTags, ListTags; DescribeTrails
# has no resource type: "*"); https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html
# (ListAWSServiceAccessForOrganization and EnableAWSServiceAccess have no resource type: "*"). An organization
# trail needs CloudTrail's trusted access and service-linked role, set up with the caller's rights
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-an-organizational-trail-prepare.html);
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
# (role*: GetRole, CreateServiceLinkedRole, condition key iam:AWSServiceName).
REQUIRED_ACTIONS: tuple[Grant, ...] = (
    # Read and removed whatever the configuration: trail.create set back to false, and teardown, remove what
    # an earlier config created (the side reads when the feature is off: TrailSide.reads_when_off).
    Grant("orchestrator", "ReadAndRemoveTrailBucket", (
        "s3:GetBucketTagging", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock", "s3:DeleteBucketPolicy",
        "s3:DeleteBucket",
    ), _bucket),
    Grant("orchestrator", "ManageTrailBucket", (
        "s3:CreateBucket", "s3:PutBucketTagging", "s3:PutBucketPolicy", "s3:PutBucketPublicAccessBlock",
    ), _bucket, _creating_trail),
    Grant("orchestrator", "ReadAndRemoveOrganizationTrail", (
        "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors", "cloudtrail:ListTags", "cloudtrail:DeleteTrail",
    ), _trail),
    Grant("orchestrator", "ManageOrganizationTrail", (
        "cloudtrail:CreateTrail", "cloudtrail:AddTags", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors",
        "cloudtrail:StartLogging",
    ), _trail, _creating_trail),
    Grant("orchestrator", "ListTrails", ("cloudtrail:DescribeTrails",), everywhere),
    Grant("orchestrator", "EnableCloudTrailTrustedAccess", (
        "organizations:ListAWSServiceAccessForOrganization", "organizations:EnableAWSServiceAccess",
    ), everywhere, _creating_trail),
    Grant("orchestrator", "ReadCloudTrailServiceLinkedRole", ("iam:GetRole",),
          lambda c: [role_arn("*", CLOUDTRAIL_SERVICE_LINKED_ROLE)], _creating_trail),
    Grant("orchestrator", "CreateCloudTrailServiceLinkedRole", ("iam:CreateServiceLinkedRole",),
          lambda c: [role_arn("*", CLOUDTRAIL_SERVICE_LINKED_ROLE)], _creating_trail,
          {"StringEquals": {"iam:AWSServiceName": CLOUDTRAIL_SERVICE}}),
)  # fmt: skip


class TrailSide(Side):
    organization_wide = True
    name = "trail"
    where = Where.MANAGEMENT
    kinds = KINDS
    cloudformation = _cloudformation()
    services = ("s3", "cloudtrail", "organizations")
    required_actions = REQUIRED_ACTIONS
    reads_when_off = True  # trail.create set back to false: what an earlier config created is removed

    def enabled(self, config: Config, removing: bool) -> bool:
        return config.trail.create

    def blocked(self, config: Config, scope: Scope, caller: str) -> tuple[str, str] | None:
        management_id = scope.management_account_id
        if caller == management_id:
            return None
        return "failed", (
            f"trail.create: an organization trail can only be created and managed with credentials of the "
            f"management account {management_id}; these credentials belong to account {caller}. Run orgalerts "
            "there, or create the trail yourself and set trail.create: false"
        )

    def desired(self, config: Config, scope: Scope, account_id: str) -> list[Resource]:
        return trail_resources(config, account_id, scope.organization_id) if config.trail.create else []

    def read(self, clients: Clients, config: Config, account_id: str, *, everything: bool) -> list[Resource]:
        return read_trail_side(clients.s3, clients.cloudtrail, config, account_id)

    def writer(self, clients: Clients, config: Config, live: list[Resource], wait: Any, sleep: Sleep) -> Writer:
        return TrailWriter(clients, config.region, wait=wait, sleep=sleep)

    def finding(self, change: Change) -> str:
        return finding(change)

    def prerequisites(self, clients: Clients, plan: Plan, sleep: Sleep) -> list[Prerequisite]:
        return trusted_access_prerequisite(clients.organizations, plan)


TRAIL_SIDE = TrailSide()
