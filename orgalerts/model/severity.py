"""Severity tiers of an alert, and which destinations admit which tier. Pure.

Owns: the four tiers (`critical`, `high`, `medium`, `info`), their order, and `admits`, the one rule
deciding whether a destination with a `min_severity` receives an alert of a tier; and the classification
table (TABLE): which CloudTrail calls are which tier and why, with `classify`, its direct reading for one
record (routes.py turns the same table into disjoint EventBridge patterns).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """An alert's tier; the string value is what config files, JSON output and payloads use."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe: critical 3, high 2, medium 1, info 0."""
        return len(ORDER) - 1 - ORDER.index(self)

    def lower(self) -> Severity:
        """One tier lower (a denied attempt); info stays info."""
        return ORDER[min(ORDER.index(self) + 1, len(ORDER) - 1)]


ORDER: tuple[Severity, ...] = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.INFO)
NAMES: tuple[str, ...] = tuple(s.value for s in ORDER)


def admits(min_severity: Severity | str, severity: Severity | str) -> bool:
    """Whether a destination whose `min_severity` is given receives an alert of `severity`."""
    return Severity(severity).rank >= Severity(min_severity).rank


# --- the classification table ---------------------------------------------------------------------------
#
# Which call is which tier. The README's severity table is generated from TABLE (tests/test_readme.py
# checks it), and model/routes.py builds the central rules' event patterns from it. Sources of the choices:
# the detection rule sets the issue names (Panther's aws_iam_* and aws_root_* rules, Sigma's
# cloud/aws/cloudtrail rules, Elastic's AWS IAM rules, Stratus Red Team's persistence and privilege-escalation
# techniques) agree on these as the changes an attacker makes to keep or widen access.

# AWS-managed administrator policy, in every partition a member account may be in.
ADMIN_POLICY_ARNS: tuple[str, ...] = (
    "arn:aws-cn:iam::aws:policy/AdministratorAccess",
    "arn:aws-us-gov:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/AdministratorAccess",
)
# What AWS (or a responder following AWS's runbook) attaches to a user whose access key was found exposed:
# the AWSCompromisedKeyQuarantine managed policies (https://docs.aws.amazon.com/aws-managed-policy/latest/
# reference/AWSCompromisedKeyQuarantineV3.html) and, as an inline policy, AWSExposedCredentialPolicy_DO_NOT_REMOVE
# (the name Panther's aws_key_compromised rule watches for).
QUARANTINE_POLICY_ARNS: tuple[str, ...] = tuple(
    f"arn:{partition}:iam::aws:policy/AWSCompromisedKeyQuarantine{version}"
    for partition in ("aws", "aws-cn", "aws-us-gov")
    for version in ("", "V2", "V3")
)
QUARANTINE_POLICY_NAMES: tuple[str, ...] = (
    "AWSCompromisedKeyQuarantine",
    "AWSCompromisedKeyQuarantineV2",
    "AWSCompromisedKeyQuarantineV3",
    "AWSExposedCredentialPolicy_DO_NOT_REMOVE",
)


@dataclass(frozen=True)
class Service:
    """An event source orgalerts classifies: its CloudTrail eventSource, EventBridge `source`, and the
    `alerts.sources` name that forwards it."""

    event_source: str
    source: str
    config_source: str


SERVICES: tuple[Service, ...] = (
    Service("iam.amazonaws.com", "aws.iam", "iam"),
    # IAM Roles Anywhere is part of IAM's trust surface; no alerts.sources name of its own: it is classified
    # with iam, and forwarded once a member pattern forwards aws.rolesanywhere.
    Service("rolesanywhere.amazonaws.com", "aws.rolesanywhere", "iam"),
    Service("organizations.amazonaws.com", "aws.organizations", "organizations"),
    Service("sso.amazonaws.com", "aws.sso", "identity-center"),
    Service("sso-directory.amazonaws.com", "aws.sso-directory", "identity-center"),
    Service("identitystore.amazonaws.com", "aws.identitystore", "identity-center"),
    Service("signin.amazonaws.com", "aws.signin", "root-activity"),
    Service("sts.amazonaws.com", "aws.sts", "sts"),
)
SERVICE_BY_EVENT_SOURCE: dict[str, Service] = {s.event_source: s for s in SERVICES}
CONFIG_SOURCES: tuple[str, ...] = tuple(dict.fromkeys(s.config_source for s in SERVICES))


@dataclass(frozen=True)
class Condition:
    """A condition on one request parameter: its value is one of `values`, or (no values) it is present."""

    field: str
    values: tuple[str, ...] = ()

    def pattern(self) -> list[Any]:
        return sorted(self.values) if self.values else [{"exists": True}]

    def holds(self, request: object) -> bool:
        value = request.get(self.field, _ABSENT) if isinstance(request, dict) else _ABSENT
        if self.values:
            return isinstance(value, str) and value in self.values
        return value is not _ABSENT and not isinstance(value, (dict, list))


_ABSENT = object()


@dataclass(frozen=True)
class Entry:
    """One row of the classification table: these calls of `event_source` are `tier`, because `reason`.

    With a `condition`, only calls whose request parameter meets it; the other calls of the same names take
    the tier of the entry without a condition for them (info when there is none). `keeps_tier_when_denied`:
    a failed attempt is as severe as a success (otherwise a failed call is one tier lower).
    """

    event_source: str
    names: tuple[str, ...]
    tier: Severity
    reason: str
    condition: Condition | None = None
    keeps_tier_when_denied: bool = False

    def tier_for(self, denied: bool) -> Severity:
        return self.tier if self.keeps_tier_when_denied or not denied else self.tier.lower()


IAM, ORGS, SSO, SSO_DIR, STS, RA = (
    "iam.amazonaws.com",
    "organizations.amazonaws.com",
    "sso.amazonaws.com",
    "sso-directory.amazonaws.com",
    "sts.amazonaws.com",
    "rolesanywhere.amazonaws.com",
)
ATTACH = ("AttachGroupPolicy", "AttachRolePolicy", "AttachUserPolicy")
CREDENTIALS = ("CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile")
IDENTITY_SOURCE = (
    "AssociateDirectory",
    "DisableExternalIdPConfigurationForDirectory",
    "DisassociateDirectory",
    "EnableExternalIdPConfigurationForDirectory",
)
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

TABLE: tuple[Entry, ...] = (
    Entry(ORGS, ("LeaveOrganization",), C, "an account leaves the organization and every control it imposes; "
          "a failed attempt is as alarming", keeps_tier_when_denied=True),
    Entry(STS, ("AssumeRoot",), C, "a root session in a member account (centralized root access)"),
    Entry(IAM, ATTACH, C, "a leaked-key quarantine policy attached: AWS or a responder found exposed credentials",
          Condition("policyArn", QUARANTINE_POLICY_ARNS)),
    Entry(IAM, ("PutUserPolicy",), C, "a leaked-key quarantine policy put on a user",
          Condition("policyName", QUARANTINE_POLICY_NAMES)),
    Entry(IAM, ATTACH, H, "full administrator access granted (AdministratorAccess)",
          Condition("policyArn", ADMIN_POLICY_ARNS)),
    Entry(IAM, CREDENTIALS, H, "a password or access key made for a named user, usually another one (persistence); "
          "CloudTrail cannot tell whether the name is the caller's own", Condition("userName")),
    Entry(IAM, ("CreateRole", "UpdateAssumeRolePolicy"), H, "who may assume a role (trust policy) is set or changed"),
    Entry(IAM, ("AddClientIDToOpenIDConnectProvider", "CreateOpenIDConnectProvider", "CreateSAMLProvider",
                "DeleteOpenIDConnectProvider", "DeleteSAMLProvider", "RemoveClientIDFromOpenIDConnectProvider",
                "UpdateOpenIDConnectProvider", "UpdateOpenIDConnectProviderThumbprint", "UpdateSAMLProvider"), H,
          "federation trust (SAML or OIDC identity provider) changed"),
    Entry(IAM, ("DeactivateMFADevice", "DeleteVirtualMFADevice"), H, "MFA removed from a user"),
    Entry(IAM, ("DeleteAccountPasswordPolicy",), H, "the account's password policy removed"),
    Entry(IAM, ("DisableOrganizationsRootCredentialsManagement", "DisableOrganizationsRootSessions"), H,
          "centralized root access management switched off"),
    Entry(STS, ("GetFederationToken",), H, "long-lived federated credentials minted from an IAM user (persistence)"),
    Entry(RA, ("CreateProfile", "CreateTrustAnchor", "DeleteProfile", "DeleteTrustAnchor", "DisableProfile",
               "DisableTrustAnchor", "EnableProfile", "EnableTrustAnchor", "UpdateProfile", "UpdateTrustAnchor"), H,
          "IAM Roles Anywhere trust anchor or profile changed: who may get role credentials with a certificate"),
    Entry(SSO, IDENTITY_SOURCE, H, "Identity Center identity source changed (Sigma aws_sso_idp_change)"),
    Entry(SSO_DIR, IDENTITY_SOURCE, H, "Identity Center identity source changed (Sigma aws_sso_idp_change)"),
    Entry(ORGS, ("DeletePolicy", "DetachPolicy", "DisablePolicyType", "UpdatePolicy"), H,
          "an organization policy (SCP, RCP, declarative, ...) weakened or removed"),
    Entry(ORGS, ("RemoveAccountFromOrganization",), H, "an account removed from the organization's controls"),
    Entry(IAM, ATTACH, M, "a managed policy attached: permissions change"),
    Entry(IAM, CREDENTIALS, M, "a password or access key made by a user for themselves"),
    Entry(IAM, ("CreatePolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion"), M,
          "a managed policy's permissions changed (policy versions)"),
    Entry(IAM, ("DeleteRolePermissionsBoundary", "DeleteUserPermissionsBoundary", "PutRolePermissionsBoundary",
                "PutUserPermissionsBoundary"), M, "a permissions boundary set or removed"),
    Entry(IAM, ("DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
                "PutUserPolicy"), M, "an inline policy set or removed"),
    Entry(ORGS, ("DeregisterDelegatedAdministrator", "RegisterDelegatedAdministrator"), M,
          "who administers an organization service changed (delegated administrator)"),
    Entry(SSO, ("AttachCustomerManagedPolicyReferenceToPermissionSet", "AttachManagedPolicyToPermissionSet",
                "CreateAccountAssignment", "CreatePermissionSet", "DeleteAccountAssignment",
                "DeleteInlinePolicyFromPermissionSet", "DeletePermissionSet",
                "DeletePermissionsBoundaryFromPermissionSet", "DetachCustomerManagedPolicyReferenceFromPermissionSet",
                "DetachManagedPolicyFromPermissionSet", "ProvisionPermissionSet", "PutInlinePolicyToPermissionSet",
                "PutPermissionsBoundaryToPermissionSet", "UpdatePermissionSet"), M,
          "Identity Center permission set or account assignment changed"),
)  # fmt: skip

ROOT_REASON = "any call by the root user (userIdentity.type Root): sign-in, access keys, password, MFA, anything"
INFO_REASON = "every other change of a classified service"
DENIED_REASON = "a failed call (errorCode present): a FAILED attempt, one tier lower than its success"


def entries_for(event_source: str, name: str) -> list[Entry]:
    return [e for e in TABLE if e.event_source == event_source and name in e.names]


def classify(detail: dict[str, Any]) -> Severity:
    """The tier of one CloudTrail record (the `detail` of its event), straight from TABLE.

    The reference the event patterns are tested against: routes.py builds patterns that select exactly the
    events this function puts in each tier.
    """
    identity = detail.get("userIdentity")
    if isinstance(identity, dict) and identity.get("type") == "Root":
        return Severity.CRITICAL
    denied = "errorCode" in detail
    entries = entries_for(str(detail.get("eventSource", "")), str(detail.get("eventName", "")))
    request = detail.get("requestParameters")
    for entry in entries:
        if entry.condition is not None and entry.condition.holds(request):
            return entry.tier_for(denied)
    for entry in entries:
        if entry.condition is None:
            return entry.tier_for(denied)
    return Severity.INFO


def is_denied(detail: dict[str, Any]) -> bool:
    return "errorCode" in detail


# --- the README's table -------------------------------------------------------------------------------------


def _calls_text(entry: Entry) -> str:
    service = entry.event_source.removesuffix(".amazonaws.com")
    names = ", ".join(f"`{n}`" for n in entry.names)
    if entry.condition is None:
        return f"{service}: {names}"
    field = entry.condition.field
    if not entry.condition.values:
        return f"{service}: {names} with `{field}` set"
    shown = sorted({v.rsplit("/", 1)[-1] for v in entry.condition.values})
    return f"{service}: {names} with `{field}` " + " / ".join(f"`{v}`" for v in shown)


def readme_table() -> str:
    """The severity table of the README, generated from TABLE (tests/test_readme.py checks the README)."""
    rows = [
        "| tier | events | reason |",
        "|---|---|---|",
        f"| critical | any call by the root user (`userIdentity.type` `Root`), every source | {ROOT_REASON} |",
    ]
    for entry in TABLE:
        denied = " (also when denied)" if entry.keeps_tier_when_denied else ""
        rows.append(f"| {entry.tier.value} | {_calls_text(entry)}{denied} | {entry.reason} |")
    rows.append(f"| info | every other change of a source in `alerts.sources` | {INFO_REASON} |")
    rows.append(f"| one tier lower | a failed call (`errorCode`), except root calls and those marked above | "
                f"{DENIED_REASON} |")  # fmt: skip
    return "\n".join(rows)
