"""The organization trail (opt-in, `trail.create`): the blog's first step, managed like every other resource.

Owns: the trail's S3 bucket name, its bucket policy (only CloudTrail, only for this organization's trail),
the desired trail (organization, multi-region, management events read and write, logging), reading all
of it back as `Resource`s, and the writes. Everything lives in the management account, in `config.region`.

A bucket or trail with the managed name but without the managed-by tag is never touched (a conflict, as
for every other resource). Teardown deletes the trail and the bucket policy; a bucket still holding log
files is kept (and said so): audit logs are never deleted by orgalerts.
"""

from __future__ import annotations

import json
from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.config import Config
from orgalerts.plan import Change
from orgalerts.resources import MANAGED_TAG_KEY, MANAGED_TAG_VALUE, Resource, canonical_json, canonical_policy

# IAM actions of the management account's principal (the orchestrator) for the trail (merged by
# `orgalerts permissions`). CloudTrail needs trusted access in Organizations and its service-linked role
# to create an organization trail: the caller needs the rights to set both up.
REQUIRED_ACTIONS: dict[str, tuple[str, ...]] = {
    "orchestrator": (
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:ListTags",
        "cloudtrail:CreateTrail",
        "cloudtrail:AddTags",
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:StartLogging",
        "cloudtrail:DeleteTrail",
        "organizations:ListAWSServiceAccessForOrganization",
        "organizations:EnableAWSServiceAccess",
        "iam:GetRole",
        "iam:CreateServiceLinkedRole",
    ),
}

PARTITION = "aws"
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
    return f"arn:{PARTITION}:cloudtrail:{config.region}:{management_account_id}:trail/{config.trail.name}"


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
                    "Resource": f"arn:{PARTITION}:s3:::{bucket}",
                    "Condition": {"StringEquals": source},
                },
                {
                    "Sid": "AWSCloudTrailWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:{PARTITION}:s3:::{bucket}/AWSLogs/{management_account_id}/*",
                    "Condition": write_condition,
                },
                {
                    "Sid": "AWSCloudTrailOrganizationWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:{PARTITION}:s3:::{bucket}/AWSLogs/{organization_id}/*",
                    "Condition": write_condition,
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/*"],
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
    managed = any(t.get("Key") == MANAGED_TAG_KEY and t.get("Value") == MANAGED_TAG_VALUE for t in tags)
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
    managed = any(t.get("Key") == MANAGED_TAG_KEY and t.get("Value") == MANAGED_TAG_VALUE for t in tags)
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


def field_finding(change: Change) -> str:
    label = {"bucket": "trail bucket", "bucket-policy": "trail bucket policy", "trail": "organization trail"}
    details = [FIELD_FINDINGS.get(f, f"{f} changed") for f in change.fields]
    return f"{label[change.kind]} {change.name}: {'; '.join(details)}"


# --- writes ---------------------------------------------------------------------------------------------


class TrailWriter:
    """Writes for the bucket, its policy and the trail (management account, `region`)."""

    def __init__(self, s3: Any, cloudtrail: Any, region: str) -> None:
        self.s3 = s3
        self.cloudtrail = cloudtrail
        self.region = region
        self.kept: list[str] = []  # notes on what a delete deliberately left in place

    def apply(self, change: Change) -> None:
        getattr(self, f"{change.action}_{change.kind.replace('-', '_')}")(change)

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

    def delete_bucket(self, change: Change) -> None:
        try:
            self.s3.delete_bucket(Bucket=change.resource.name)
        except ClientError as exc:
            if error_code(exc) != "BucketNotEmpty":
                raise
            self.kept.append(
                f"trail bucket {change.resource.name} kept: it holds CloudTrail log files "
                "(orgalerts never deletes audit logs; empty and delete it yourself when they are no longer needed)"
            )

    def create_bucket_policy(self, change: Change) -> None:
        self.s3.put_bucket_policy(Bucket=change.resource.name, Policy=change.resource.props["document"])

    update_bucket_policy = create_bucket_policy

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
