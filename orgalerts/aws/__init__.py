"""The AWS gateway: the only package of orgalerts that imports boto3 or botocore.

Everything else reaches AWS through `Gateway` (sessions, shared signed clients, retries, hooks) and
catches `ClientError` / `BotoCoreError` from here. This package imports nothing else of orgalerts.
"""

from orgalerts.aws.errors import BotoCoreError, ClientError, error_code, error_text, known_regions, partition_regions
from orgalerts.aws.gateway import (
    AccountAccess,
    CallHook,
    CallObserver,
    CallRecord,
    Gateway,
    GatewaySettings,
    SendHook,
    UnboundMemberCall,
    token_pages,
)
from orgalerts.aws.pacing import QUOTAS, Pacer, Quota, QuotaRetry, RateLimiter

__all__ = [
    "QUOTAS",
    "AccountAccess",
    "BotoCoreError",
    "CallHook",
    "CallObserver",
    "CallRecord",
    "ClientError",
    "Gateway",
    "GatewaySettings",
    "Pacer",
    "Quota",
    "QuotaRetry",
    "RateLimiter",
    "SendHook",
    "UnboundMemberCall",
    "error_code",
    "error_text",
    "known_regions",
    "partition_regions",
    "token_pages",
]
