"""Adopting a same-named resource orgalerts does not own: how to put the ownership marker on it.

Owns: the AWS CLI command a person runs to mark one resource as orgalerts' (printed with every ownership
conflict), and the one tagging write per kind `--adopt` makes (`adopt_handlers`, registered in every
writer). After the marker is on, the resource is orgalerts' like any other: the next read sees it whole and
the plan converges it.
"""

from __future__ import annotations

from typing import Any

from orgalerts.aws import ClientError, error_code
from orgalerts.model.plan import Change
from orgalerts.model.resources import MANAGED_TAG_KEY, MANAGED_TAG_VALUE, managed_tags

TAG = f"Key={MANAGED_TAG_KEY},Value={MANAGED_TAG_VALUE}"


def tag_command(kind: str, name: str, arn: str, region: str) -> str:
    """`aws ...` that tags this resource with managed-by=orgalerts ("" for a kind without its own tags)."""
    at = f" --region {region}"
    if kind == "role":
        return f"aws iam tag-role --role-name {name} --tags {TAG}"
    if kind in ("rule", "bus") and arn:
        return f"aws events tag-resource --resource-arn {arn} --tags {TAG}{at}"
    if kind == "topic" and arn:
        return f"aws sns tag-resource --resource-arn {arn} --tags {TAG}{at}"
    if kind == "queue" and arn:
        return f"aws sqs tag-queue --queue-url {arn} --tags {MANAGED_TAG_KEY}={MANAGED_TAG_VALUE}{at}"
    if kind == "trail" and arn:
        return f"aws cloudtrail add-tags --resource-id {arn} --tags-list {TAG}{at}"
    if kind == "bucket":
        # put-bucket-tagging replaces the whole tag set: keep the bucket's other tags in the list.
        return f"aws s3api put-bucket-tagging --bucket {name} --tagging 'TagSet=[{{{TAG}}}]' (add its other tags)"
    if kind == "scp" and arn:
        return f"aws organizations tag-resource --resource-id {arn} --tags {TAG}"
    return ""


def _role(clients: Any, change: Change) -> None:
    clients.iam.tag_role(RoleName=change.resource.name, Tags=managed_tags())


def _rule_or_bus(clients: Any, change: Change) -> None:
    clients.events.tag_resource(ResourceARN=change.resource.arn, Tags=managed_tags())


def _topic(clients: Any, change: Change) -> None:
    clients.sns.tag_resource(ResourceArn=change.resource.arn, Tags=managed_tags())


def _queue(clients: Any, change: Change) -> None:
    clients.sqs.tag_queue(QueueUrl=change.resource.arn, Tags={MANAGED_TAG_KEY: MANAGED_TAG_VALUE})


def _trail(clients: Any, change: Change) -> None:
    clients.cloudtrail.add_tags(ResourceId=change.resource.arn, TagsList=managed_tags())


def _bucket(clients: Any, change: Change) -> None:
    """PutBucketTagging replaces the tag set: the bucket's own tags are kept."""
    bucket = change.resource.name
    try:
        tags = clients.s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError as exc:
        if error_code(exc) != "NoSuchTagSet":
            raise
        tags = []
    tags = [t for t in tags if t.get("Key") != MANAGED_TAG_KEY] + managed_tags()
    clients.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})


def _scp(clients: Any, change: Change) -> None:
    clients.organizations.tag_resource(ResourceId=change.resource.arn, Tags=managed_tags())


ADOPT = {
    "role": _role,
    "rule": _rule_or_bus,
    "bus": _rule_or_bus,
    "topic": _topic,
    "queue": _queue,
    "trail": _trail,
    "bucket": _bucket,
    "scp": _scp,
}


def adopt(clients: Any, change: Change) -> None:
    """Put the ownership marker on `change.live` (a same-named resource without it)."""
    ADOPT[change.kind](clients, change)
