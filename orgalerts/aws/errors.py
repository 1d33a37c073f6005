"""AWS errors as orgalerts reports them, and the region names botocore knows.

Owns: the two exception types every layer catches (re-exported so nothing outside this package imports
botocore), `error_code` / `error_text`, and the partition data the config check reads.
"""

from __future__ import annotations

from functools import cache

import botocore.exceptions
import botocore.session

ClientError = botocore.exceptions.ClientError
BotoCoreError = botocore.exceptions.BotoCoreError


@cache
def known_regions() -> frozenset[str]:
    """Every region name botocore knows (all partitions). Reads bundled data; makes no AWS call."""
    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("events", partition_name=partition))
    return frozenset(regions)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def error_text(exc: BaseException) -> str:
    """`Code: message`, as reports show it. Never includes credentials (botocore messages do not)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Unknown')}: {err.get('Message', '')}".rstrip(": ")
    if isinstance(getattr(exc, "code", None), str):  # an AWS error reported without raising (PartialFailure)
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@cache
def partition_regions(partition: str = "aws") -> frozenset[str]:
    """Region names of one partition, from botocore's bundled endpoint data (no AWS call).

    Every ARN orgalerts writes is `arn:aws:...`; regions of aws-cn or aws-us-gov would need other ARNs.
    Partitions: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
    """
    session = botocore.session.get_session()
    return frozenset(session.get_available_regions("events", partition_name=partition))
