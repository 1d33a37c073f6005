"""What doctor knows about CloudTrail: does a trail record the management events IAM alerts need?

Owns: judging one trail (logging, multi-region, global service events, management-event selectors,
basic and advanced) into problems each with its fix, and reading the trails an account can see.
Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orgalerts.aws import AccountAccess, ClientError
from orgalerts.model.addresses import MEMBER_REGION


@dataclass
class TrailFinding:
    name: str
    arn: str
    home_region: str
    organization: bool
    problems: list[str]
    fixes: list[str]
    read_write: str  # All | WriteOnly | ReadOnly | "" (no management events)

    @property
    def good(self) -> bool:
        return not self.problems


def management_coverage(selectors: dict[str, Any]) -> str:
    """Which management events of IAM a trail records: All, WriteOnly, ReadOnly or "" (none).

    A trail without custom selectors records every management event (AWS's default)."""
    basic = selectors.get("EventSelectors") or []
    advanced = selectors.get("AdvancedEventSelectors") or []
    reads = writes = False
    if not basic and not advanced:
        return "All"
    for selector in basic:
        if not selector.get("IncludeManagementEvents", True):
            continue
        if "iam.amazonaws.com" in (selector.get("ExcludeManagementEventSources") or []):
            continue
        kind = selector.get("ReadWriteType", "All")
        reads = reads or kind in ("All", "ReadOnly")
        writes = writes or kind in ("All", "WriteOnly")
    for selector in advanced:
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors", [])}
        if "Management" not in (fields.get("eventCategory", {}).get("Equals") or []):
            continue
        source = fields.get("eventSource", {})
        if source.get("Equals") and "iam.amazonaws.com" not in source["Equals"]:
            continue
        if "iam.amazonaws.com" in (source.get("NotEquals") or []):
            continue
        read_only = fields.get("readOnly", {}).get("Equals") or ["true", "false"]
        reads = reads or "true" in read_only
        writes = writes or "false" in read_only
    if reads and writes:
        return "All"
    return "WriteOnly" if writes else ("ReadOnly" if reads else "")


def evaluate_trail(
    described: dict[str, Any], status: dict[str, Any], selectors: dict[str, Any], *, need_reads: bool
) -> TrailFinding:
    """What keeps this trail from feeding IAM events to EventBridge, each problem with its fix."""
    name = str(described.get("Name", ""))
    arn = str(described.get("TrailARN", name))
    home = str(described.get("HomeRegion", MEMBER_REGION))
    problems: list[str] = []
    fixes: list[str] = []
    if not status.get("IsLogging"):
        problems.append("logging is stopped")
        fixes.append(f"aws cloudtrail start-logging --name {arn} --region {home}")
    if not described.get("IsMultiRegionTrail") and home != MEMBER_REGION:
        problems.append(f"single-region trail in {home}: IAM events are recorded in us-east-1 only")
        fixes.append(f"aws cloudtrail update-trail --name {arn} --region {home} --is-multi-region-trail")
    if not described.get("IncludeGlobalServiceEvents", True):
        problems.append("global service events (IAM) are excluded")
        fixes.append(f"aws cloudtrail update-trail --name {arn} --region {home} --include-global-service-events")
    coverage = management_coverage(selectors)
    if coverage in ("", "ReadOnly") or (coverage == "WriteOnly" and need_reads):
        problems.append(
            "management events are not recorded"
            if not coverage
            else f"only {coverage} management events are recorded"
            + (" (the all-iam pattern needs read events too)" if coverage == "WriteOnly" else "")
        )
        fixes.append(
            f"aws cloudtrail put-event-selectors --trail-name {arn} --region {home} "
            """--event-selectors '[{"ReadWriteType":"All","IncludeManagementEvents":true}]'"""
        )
    return TrailFinding(name, arn, home, bool(described.get("IsOrganizationTrail")), problems, fixes, coverage)


def read_trails(access: AccountAccess, *, need_reads: bool) -> list[TrailFinding]:
    """Every trail that can record us-east-1 events in this account (shadow copies of multi-region and
    organization trails included), evaluated. Status and selectors are read in each trail's home region."""
    listed = access.client("cloudtrail", MEMBER_REGION).describe_trails(includeShadowTrails=True)
    found = []
    for described in listed.get("trailList", []):
        home = str(described.get("HomeRegion", MEMBER_REGION))
        client = access.client("cloudtrail", home)
        arn = str(described["TrailARN"])
        try:
            status = client.get_trail_status(Name=arn)
            selectors = client.get_event_selectors(TrailName=arn)
        except ClientError:
            owner = arn.split(":")[4] if arn.count(":") >= 5 else ""
            if not (described.get("IsOrganizationTrail") and owner and owner != access.account_id):
                raise
            # An organization trail seen from a member account: its status is the management account's to
            # read. It is there, so it covers this account; the management-account check judges the rest.
            status, selectors = {"IsLogging": True}, {}
        found.append(evaluate_trail(described, status, selectors, need_reads=need_reads))
    return found
