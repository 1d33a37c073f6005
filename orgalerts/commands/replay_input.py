"""What `orgalerts replay` reads: CloudTrail records and EventBridge events from files, as EventBridge sees them.

Owns: finding the files (a path, or every `*.json` / `*.json.gz` below a directory, recursively, sorted), reading
each one (gzip when the name ends in `.gz`), recognising its shape, and turning every CloudTrail record into the
event EventBridge delivers for it. The shapes:
- one EventBridge event (`source`, `detail-type`, `detail` object): taken as it is;
- one CloudTrail record (`eventSource` and `eventName`): wrapped (`as_event`);
- a CloudTrail log file, `{"Records": [record, ...]}`, plain or as a trail delivers it to S3: "FileNameFormat is
  the encoding of the file. Currently, this is json.gz, which is a JSON text file in compressed gzip format"
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html);
- a digest file (`digestStartTime`, `logFiles`), which an organization trail delivers under
  `AWSLogs/O-ID/<account>/CloudTrail-Digest/` beside the logs, also as .json.gz
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html),
  holds no event: skipped and counted, so a synced trail bucket replays as it is.
Anything else (a path that cannot be read, invalid JSON, another shape) raises `ReplayInputError` (exit 2), one
line naming the file.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orgalerts.errors import UsageError

# detail-type of each CloudTrail eventType as EventBridge delivers it ("CloudTrail sends the following types of
# events to the default EventBridge event bus. In each case, the detail-type value of the event is the listed
# event type": https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html). Sign-in
# events arrive as "AWS Console Sign In via CloudTrail" (source aws.signin,
# https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-signin.html), the spelling real events and the
# sandbox use (patterns.SIGNIN_DETAIL_TYPE).
API_CALL = "AWS API Call via CloudTrail"
SIGN_IN = "AWS Console Sign In via CloudTrail"
DETAIL_TYPES: dict[str, str] = {
    "AwsApiCall": API_CALL,
    "AwsConsoleSignIn": SIGN_IN,
    "AwsServiceEvent": "AWS Service Event via CloudTrail",
    "AwsConsoleAction": "AWS Console Action via CloudTrail",
    "AwsCloudTrailInsight": "AWS Insight via CloudTrail",
}
SUFFIXES = (".json", ".json.gz")
_EVENT_IDS = uuid.UUID("6f1b8a9e-53c4-4d0c-9a55-0d6c1e2a7b31")  # namespace of replay's stable event ids
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})")


class ReplayInputError(UsageError):
    """A replay input cannot be used: unreadable, not JSON, or not a shape replay knows. Exit code 2."""


@dataclass(frozen=True)
class Item:
    """One event to replay: the file it came from, its index there (0 unless a Records array) and the event."""

    file: str
    index: int
    event: dict[str, Any]
    in_log: bool = False  # one of a log file's Records


@dataclass
class Inputs:
    """Every event of the given paths, in order, and what was read."""

    items: list[Item] = field(default_factory=list)
    files: int = 0
    digests: int = 0


def read_paths(paths: list[str]) -> Inputs:
    """The events of every path, in the order given (a directory's files sorted by their path)."""
    inputs = Inputs()
    for given in paths:
        for path in _files(Path(given)):
            document = _load(path)
            if isinstance(document, dict) and "digestStartTime" in document and "logFiles" in document:
                inputs.digests += 1
                continue
            inputs.files += 1
            inputs.items += list(_items(str(path), document))
    return inputs


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        # Hidden files and directories (.git, caches) are not trail logs.
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.name.endswith(SUFFIXES)
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise ReplayInputError(f"replay: {path}: no .json or .json.gz file in this directory")
        return found
    if not path.exists():
        raise ReplayInputError(f"replay: {path}: no such file or directory")
    return [path]


def _load(path: Path) -> Any:
    """The JSON document in `path` (gunzipped when its name ends in .gz)."""
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
        return json.loads(text)
    except OSError as exc:  # unreadable, or gzip.BadGzipFile (an OSError)
        raise ReplayInputError(f"replay: {path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, zlib.error) as exc:
        raise ReplayInputError(f"replay: {path}: not a complete gzip file: {exc}") from None
    except UnicodeDecodeError:
        raise ReplayInputError(f"replay: {path}: not UTF-8 text (JSON expected)") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ReplayInputError(f"replay: {path}: invalid JSON: {exc.msg} ({where})") from None


def _items(file: str, document: Any) -> Iterator[Item]:
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        for index, record in enumerate(document["Records"]):
            if not is_record(record):
                raise ReplayInputError(f"replay: {file}: Records[{index}] is not a CloudTrail record")
            yield Item(file, index, as_event(record, f"{file}#{index}"), in_log=True)
    elif is_event(document):
        yield Item(file, 0, document)
    elif is_record(document):
        yield Item(file, 0, as_event(document, file))
    else:
        raise ReplayInputError(
            f"replay: {file}: not a CloudTrail record, an EventBridge event or a CloudTrail log file (Records)"
        )


def is_event(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("source"), str)
        and isinstance(document.get("detail-type"), str)
        and isinstance(document.get("detail"), dict)
    )


def is_record(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("eventSource"), str)
        and isinstance(document.get("eventName"), str)
    )


def detail_type(record: dict[str, Any]) -> str:
    kind = record.get("eventType")
    if isinstance(kind, str) and kind in DETAIL_TYPES:
        return DETAIL_TYPES[kind]
    return SIGN_IN if record.get("eventSource") == "signin.amazonaws.com" else API_CALL


def as_event(record: dict[str, Any], origin: str) -> dict[str, Any]:
    """A CloudTrail record as EventBridge delivers it (envelope fields:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html): source `aws.<service>` of
    the eventSource `<service>.amazonaws.com` (source aws.cloudtrail for eventSource cloudtrail.amazonaws.com:
    https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html), account = recipientAccountId
    (the account the record was logged in; else the caller's), region = awsRegion, time = eventTime in ISO 8601,
    no resources (CloudTrail API-call events carry no resource ARNs, events-structure page), detail = the record.
    `id` is EventBridge's own per delivery; replay makes a stable one from `origin`."""
    service = str(record["eventSource"]).removesuffix(".amazonaws.com")
    identity = record.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    account = record.get("recipientAccountId") or identity.get("accountId") or ""
    return {
        "version": "0",
        "id": str(uuid.uuid5(_EVENT_IDS, origin)),
        "detail-type": detail_type(record),
        "source": f"aws.{service}",
        "account": str(account),
        "time": iso_time(record.get("eventTime")),
        "region": str(record.get("awsRegion") or ""),
        "resources": [],
        "detail": record,
    }


def iso_time(value: Any) -> str:
    """eventTime as ISO 8601 (`2022-12-12 21:46:17.000000000` -> `2022-12-12T21:46:17Z`); other text as it is."""
    text = str(value or "")
    match = _TIME.match(text)
    return f"{match.group(1)}T{match.group(2)}Z" if match else text
