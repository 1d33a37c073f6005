"""Names and ARNs of everything orgalerts manages. Pure.

Owns: the one partition constant, the managed-resource names derived from the configured prefix, the
central side's address (bus, rule and topic ARNs) and the ARN builders every other module uses, so no
module writes `arn:aws:` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITION = "aws"
MEMBER_REGION = "us-east-1"  # IAM (a global service) delivers its CloudTrail events to EventBridge only here


def arn(service: str, region: str, account_id: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account_id}:{resource}"


def role_arn(account_id: str, role_name: str) -> str:
    return arn("iam", "", account_id, f"role/{role_name}")


def account_root_arn(account_id: str) -> str:
    return arn("iam", "", account_id, "root")


def rule_arn(region: str, account_id: str, bus: str, rule: str) -> str:
    """A rule's ARN: rules on the default bus have no bus segment."""
    path = rule if bus == "default" else f"{bus}/{rule}"
    return arn("events", region, account_id, f"rule/{path}")


def bus_arn(region: str, account_id: str, bus: str) -> str:
    return arn("events", region, account_id, f"event-bus/{bus}")


def queue_arn(region: str, account_id: str, name: str) -> str:
    return arn("sqs", region, account_id, name)


def topic_arn(region: str, account_id: str, name: str) -> str:
    return arn("sns", region, account_id, name)


def bucket_arn(bucket: str, key: str = "") -> str:
    return arn("s3", "", "", f"{bucket}{key}")


def trail_arn(region: str, account_id: str, name: str) -> str:
    return arn("cloudtrail", region, account_id, f"trail/{name}")


def table_arn(region: str, account_id: str, name: str) -> str:
    """A DynamoDB table (resource type `table` in the Service Authorization Reference, list_amazondynamodb.html)."""
    return arn("dynamodb", region, account_id, f"table/{name}")


@dataclass(frozen=True)
class Names:
    """Names of every managed resource, from the configured prefix."""

    prefix: str = "orgalerts-"

    @property
    def forwarder_role(self) -> str:
        """The one role a member's forwarding and watchdog targets both use."""
        return f"{self.prefix}forwarder"

    @property
    def forwarder_policy(self) -> str:
        return f"{self.prefix}put-events"

    @property
    def member_rule(self) -> str:
        return f"{self.prefix}forward"

    @property
    def member_target_id(self) -> str:
        return f"{self.prefix}central-bus"

    @property
    def watchdog_role(self) -> str:
        """The watchdog's own role in earlier versions: no longer created; read and removed (sides/member.py),
        and still watched by the forwarding rule's pattern, so a role of that name is never silently changed."""
        return f"{self.prefix}watchdog"

    @property
    def watchdog_rule(self) -> str:
        return f"{self.prefix}watchdog"

    @property
    def member_dlq(self) -> str:
        return f"{self.prefix}forward-dlq"

    @property
    def central_dlq(self) -> str:
        return f"{self.prefix}central-dlq"

    @property
    def tamper_rule(self) -> str:
        return f"{self.prefix}tamper"

    @property
    def central_watch_rule(self) -> str:
        return f"{self.prefix}central-watch"

    @property
    def tamper_anon_rule(self) -> str:
        """The tamper rule for callers without a principal ARN (its message names none)."""
        return f"{self.prefix}tamper-anon"

    @property
    def central_watch_anon_rule(self) -> str:
        return f"{self.prefix}central-watch-anon"

    @property
    def org_forwarder_role(self) -> str:
        return f"{self.prefix}org-forwarder"

    @property
    def org_watch_rule(self) -> str:
        return f"{self.prefix}org-watch"

    @property
    def org_watchdog_rule(self) -> str:
        """Watches the organization watch rule (organizations source, tamper alerts)."""
        return f"{self.prefix}org-watchdog"

    @property
    def ic_forwarder_role(self) -> str:
        return f"{self.prefix}ic-forwarder"

    @property
    def ic_rule(self) -> str:
        """Forwards Identity Center changes (Identity Center account, home region)."""
        return f"{self.prefix}identity-center"

    @property
    def ic_watchdog_rule(self) -> str:
        return f"{self.prefix}identity-center-watchdog"

    @property
    def account_change_rule(self) -> str:
        return f"{self.prefix}account-change"

    @property
    def central_bus(self) -> str:
        return f"{self.prefix}central"

    @property
    def central_rule(self) -> str:
        return f"{self.prefix}alert"

    @property
    def central_target_id(self) -> str:
        return f"{self.prefix}topic"

    @property
    def topic(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def state_table(self) -> str:
        """The DynamoDB table holding the run lock (notification account, configured region)."""
        return f"{self.prefix}state"


@dataclass(frozen=True)
class CentralAddress:
    """Where the central side lives; members need it to point their targets and role policy at it."""

    account_id: str
    region: str
    names: Names

    @property
    def bus_arn(self) -> str:
        return bus_arn(self.region, self.account_id, self.names.central_bus)

    @property
    def rule_arn(self) -> str:
        return rule_arn(self.region, self.account_id, self.names.central_bus, self.names.central_rule)

    @property
    def topic_arn(self) -> str:
        return topic_arn(self.region, self.account_id, self.names.topic)

    def queue_arn(self, name: str) -> str:
        return queue_arn(self.region, self.account_id, name)
