"""The notification and management sides as CloudFormation stacks (`deploy: {engine: stacksets}`).

Owns: the stacks `<prefix>central` (notification account, `region`, from the export's `central.yaml`) and
`<prefix>management` (management account, from `management.yaml`, only when it has resources), tagged
`managed-by: orgalerts`: reading them, planning (create / update / re-create / delete / unchanged), the writes
(CreateStack, UpdateStack, DeleteStack), waiting for them with progress, reporting a failed stack operation with
CloudFormation's reason, and the commands' shapes for these two sides in stacksets mode. A stack with the name but
without the tag is refused, never touched.

What stays direct, and why:
- Organization prerequisites a template cannot express (CloudTrail's trusted access, the SCP policy type on the
  root) are done first, by the sides' own `prerequisites`, as in direct mode.
- After the stack operation, the side is converged directly in the same run (normally zero writes: the template is
  the same desired state). A stack update compares the template with CloudFormation's own record, not with the
  live resources, so a resource changed or deleted outside CloudFormation is not put back by it ("CloudFormation
  doesn't update resources that have drifted", see "such as updating the drifted resources directly",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html). `drift --repair`
  and `deploy` therefore put such a resource back directly, writing exactly the desired state the template was
  made from: a rule, bus, topic or queue keeps its name, hence its physical id (name, ARN or URL), and the stack
  owns it again. An SNS subscription gets a new ARN (its physical id): the stack keeps the old one (README).
- A side already deployed directly (managed resources, no stack) stays direct (row note): CloudFormation cannot
  create a named resource that exists, and a resource import (an IMPORT change set) is not done by orgalerts.

AWS facts relied on:
- DescribeStacks with a name that has no live stack answers ValidationError "Stack with id X does not exist";
  with the stack's unique id it also describes a deleted stack
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html).
- TemplateBody is at most 51,200 bytes (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html);
  larger templates only through TemplateURL, an object in S3, up to 1 MB ("Template body size in an Amazon S3
  object", https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html). A bigger
  template is written to the bucket `<prefix>templates-<account>-<region>` in the stack's account (created on
  demand: tagged, public access blocked; removed by teardown) and passed as TemplateURL; CloudFormation reads it
  with the caller's credentials (s3:GetObject). Over 1 MB the row fails before any write.
- A stack whose creation failed (ROLLBACK_COMPLETE, ROLLBACK_FAILED, CREATE_FAILED) cannot be updated, only
  deleted ("A last known stable state includes any status in a *_COMPLETE": CREATE_COMPLETE, UPDATE_COMPLETE,
  UPDATE_ROLLBACK_COMPLETE, IMPORT_COMPLETE, IMPORT_ROLLBACK_COMPLETE,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackStack.html): it is deleted and
  created again.
- UpdateStack with nothing to change fails with ValidationError "No updates are to be performed."
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-direct.html); orgalerts
  does not call it then (it compares the template first), and reads that answer as unchanged.
- Without a service role, CloudFormation acts with the caller's credentials, so the caller also needs every
  permission the resources need (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html):
  the notification and orchestrator policies already hold them (the direct engine makes the same resources).
- Named IAM resources (the organization watch's role) need CAPABILITY_NAMED_IAM
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orgalerts.aws import ClientError, error_code, error_text
from orgalerts.config import Config
from orgalerts.engine.results import Mode, SideResult, Status, merge
from orgalerts.engine.runner import UNIT_ERRORS, Runner
from orgalerts.errors import OrgAlertsError
from orgalerts.export.cloudformation import CENTRAL_FILE, MANAGEMENT_FILE, deploys_nothing, management_region
from orgalerts.model.addresses import PARTITION
from orgalerts.model.plan import diff
from orgalerts.model.scope import Scope
from orgalerts.sides.base import Grant, Side, Where
from orgalerts.sides.registry import sides_at

OWNER_TAG = {"Key": "managed-by", "Value": "orgalerts"}
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
MAX_BODY_BYTES = 51_200
MAX_URL_BYTES = 1024 * 1024
CANNOT_UPDATE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED")
HEALTHY = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
MAX_WAIT_SECONDS = 2 * 3600.0
MAX_POLLS = 10_000
KEPT_DIRECT = (
    "kept converged directly: deployed before engine stacksets, and CloudFormation cannot create a named resource "
    "that exists; to move it into stack {name}: `orgalerts teardown --yes`, then `orgalerts deploy` (README: "
    "direct or stacksets)"
)


def _uses_stacksets(config: Config) -> bool:
    return config.deploy.engine == "stacksets"


# stack: arn:${Partition}:cloudformation:${Region}:${Account}:stack/${StackName}/${Id}
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html)
def _central_stack(config: Config) -> list[str]:
    account = config.notification.account_id
    return [f"arn:{PARTITION}:cloudformation:{config.region}:{account}:stack/{config.resource_prefix}central/*"]


def _management_stack(config: Config) -> list[str]:
    # The management account's id is not in the config, and the stack's region follows trail.create: `*`.
    return [f"arn:{PARTITION}:cloudformation:*:*:stack/{config.resource_prefix}management/*"]


STACK_ACTIONS = (
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:GetTemplate",
    "cloudformation:TagResource",
)


def template_bucket(config: Config, account_id: str, region: str) -> str:
    """Where a template over the request limit is put (bucket names: lowercase, 3-63 characters)."""
    return f"{config.resource_prefix}templates-{account_id}-{region}".lower()


def _central_bucket(config: Config) -> list[str]:
    bucket = template_bucket(config, config.notification.account_id, config.region)
    return [f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/*"]


def _management_bucket(config: Config) -> list[str]:
    bucket = template_bucket(config, "*", "*")
    return [f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/*"]


# Bucket: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html (HeadBucket and
# ListObjectsV2 are s3:ListBucket; the object actions on bucket/*).
BUCKET_ACTIONS = (
    "s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging", "s3:GetBucketTagging",
    "s3:ListBucket", "s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:DeleteBucket",
)  # fmt: skip

REQUIRED_ACTIONS: tuple[Grant, ...] = (
    Grant("notification", "ManageCentralStack", STACK_ACTIONS, _central_stack, _uses_stacksets),
    Grant("notification", "CentralStackTemplates", BUCKET_ACTIONS, _central_bucket, _uses_stacksets),
    Grant("orchestrator", "ManageManagementStack", STACK_ACTIONS, _management_stack, _uses_stacksets),
    Grant("orchestrator", "ManagementStackTemplates", BUCKET_ACTIONS, _management_bucket, _uses_stacksets),
)


class Action(Enum):
    NONE = "unchanged"
    CREATE = "create"
    UPDATE = "update"
    RECREATE = "re-create"
    DELETE = "delete"


@dataclass
class LiveStack:
    exists: bool
    owned: bool = True
    status: str = ""
    stack_id: str = ""
    template: dict[str, Any] | None = None


@dataclass
class StackSide:
    """One of the two stacks: where it lives, which template, which sides it holds."""

    name: str
    file: str
    where: Where
    account_id: str
    region: str
    row: str  # the report row's name: "central" / "management"
    direct: Callable[[Mode], SideResult | None]
    template: dict[str, Any] = field(default_factory=dict)

    @property
    def wanted(self) -> bool:
        return not deploys_nothing(self.template)


class Stacks:
    """The central and management stacks of one command run."""

    def __init__(self, runner: Runner, notify: Callable[[str], None], poll: float) -> None:
        self.runner = runner
        self.ctx = runner.ctx
        self.config = runner.config
        self.notify = notify
        self.poll = poll

    # --- the two stacks ---------------------------------------------------------------------------------
    def central(self, scope: Scope, templates: dict[str, dict[str, Any]]) -> StackSide:
        return StackSide(
            f"{self.config.resource_prefix}central", CENTRAL_FILE, Where.CENTRAL, self.config.notification.account_id,
            self.config.region, "central", lambda mode: self.runner.run_central(mode, scope),
            templates.get(CENTRAL_FILE, {}),
        )  # fmt: skip

    def management(self, scope: Scope, templates: dict[str, dict[str, Any]], onboarding: bool = False) -> StackSide:
        return StackSide(
            f"{self.config.resource_prefix}management", MANAGEMENT_FILE, Where.MANAGEMENT,
            scope.management_account_id, management_region(self.config, scope), "management",
            lambda mode: self.runner.run_management(mode, scope, onboarding=onboarding),
            templates.get(MANAGEMENT_FILE, {}),
        )  # fmt: skip

    def client(self, stack: StackSide) -> Any:
        return self.ctx.access(stack.where, stack.account_id).client("cloudformation", stack.region)

    # --- reading and planning ---------------------------------------------------------------------------
    def read(self, stack: StackSide) -> LiveStack:
        cfn = self.client(stack)
        try:
            described = cfn.describe_stacks(StackName=stack.name)["Stacks"]
        except ClientError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                return LiveStack(False)
            raise
        live = [s for s in described if s.get("StackStatus") != "DELETE_COMPLETE"]
        if not live:
            return LiveStack(False)
        found = live[0]
        tags = {t["Key"]: t["Value"] for t in found.get("Tags") or []}
        owned = tags.get(OWNER_TAG["Key"]) == OWNER_TAG["Value"]
        template = None
        if owned:
            body = cfn.get_template(StackName=found["StackId"]).get("TemplateBody")
            template = _parse(body)
        return LiveStack(True, owned, str(found["StackStatus"]), str(found["StackId"]), template)

    def plan(self, stack: StackSide, live: LiveStack) -> Action:
        if not stack.wanted:
            return Action.DELETE if live.exists else Action.NONE
        if not live.exists:
            return Action.CREATE
        if live.status in CANNOT_UPDATE:
            return Action.RECREATE
        if live.template != _normal(stack.template) or live.status not in (*HEALTHY, "UPDATE_ROLLBACK_COMPLETE"):
            return Action.UPDATE
        return Action.NONE

    def texts(self, stack: StackSide, live: LiveStack, action: Action) -> list[str]:
        """What the action does, with the resources it adds, changes and removes (a local diff of the templates:
        no change set, no write, for `plan`)."""
        if action is Action.NONE:
            return []
        if action is Action.DELETE:
            return [f"delete stack {stack.name} (no {stack.row} resources wanted)"]
        new = stack.template.get("Resources") or {}
        if action is Action.CREATE:
            return [f"create stack {stack.name} from {stack.file} ({len(new)} resources)"]
        if action is Action.RECREATE:
            return [f"re-create stack {stack.name} (it is {live.status}: a failed creation can only be deleted)"]
        old = (live.template or {}).get("Resources") or {}
        parts = [f"{verb} {', '.join(sorted(ids))}" for verb, ids in (
            ("add", set(new) - set(old)),
            ("change", {k for k in set(new) & set(old) if _normal(new[k]) != old[k]}),
            ("remove", set(old) - set(new)),
        ) if ids]  # fmt: skip
        why = "; ".join(parts) if parts else f"stack is {live.status}" if live.status not in HEALTHY else "template"
        return [f"update stack {stack.name} from {stack.file}: {why}"]

    def deployed_directly(self, stack: StackSide) -> bool:
        """Managed resources of the stack's sides exist though no stack does: an earlier direct deploy."""
        for side in sides_at(stack.where):
            if not (side.enabled(self.config, False) or side.reads_when_off):  # as the direct engine reads them
                continue
            clients = self.ctx.clients(side, self.ctx.access(side.where, stack.account_id))
            if any(r.managed for r in side.read(clients, self.config, stack.account_id, everything=True)):
                return True
        return False

    def prerequisites(self, stack: StackSide, scope: Scope, run: bool) -> list[str]:
        """What the organization needs before the stack's resources can be created (done here when `run`)."""
        texts: list[str] = []
        for side in sides_at(stack.where):
            # Only sides that have prerequisites (trail, guardrail) are read for them.
            if not side.enabled(self.config, False) or type(side).prerequisites is Side.prerequisites:
                continue
            clients = self.ctx.clients(side, self.ctx.access(side.where, stack.account_id))
            live = side.read(clients, self.config, stack.account_id, everything=False)
            plan = diff(side.desired(self.config, scope, stack.account_id), live, side.kinds)
            for step in side.prerequisites(clients, plan, self.runner.sleep):
                if run:
                    step.run()
                texts.append(step.text)
        return texts

    # --- writing and waiting ---------------------------------------------------------------------------
    def apply(self, stack: StackSide, live: LiveStack, action: Action) -> None:
        """The stack operation; raises OrgAlertsError with CloudFormation's reason when it fails."""
        cfn = self.client(stack)
        if action in (Action.DELETE, Action.RECREATE):
            cfn.delete_stack(StackName=live.stack_id)
            self.wait(stack, live.stack_id, "DELETE_COMPLETE")
        if action in (Action.CREATE, Action.RECREATE):
            created = cfn.create_stack(
                StackName=stack.name, **self.source(stack), Capabilities=CAPABILITIES, Tags=[OWNER_TAG]
            )
            self.wait(stack, str(created["StackId"]), "CREATE_COMPLETE")
        elif action is Action.UPDATE:
            try:
                cfn.update_stack(
                    StackName=live.stack_id, **self.source(stack), Capabilities=CAPABILITIES, Tags=[OWNER_TAG]
                )
            except ClientError as exc:
                if error_code(exc) == "ValidationError" and "No updates are to be performed" in str(exc):
                    return
                raise
            self.wait(stack, live.stack_id, "UPDATE_COMPLETE")

    def source(self, stack: StackSide) -> dict[str, str]:
        """TemplateBody, or TemplateURL of an object in the template bucket when over the request limit."""
        body = _body(stack.template)
        size = len(body.encode())
        if size <= MAX_BODY_BYTES:
            return {"TemplateBody": body}
        if size > MAX_URL_BYTES:
            raise OrgAlertsError(
                f"{stack.file} is {size} bytes, over CloudFormation's {MAX_URL_BYTES}-byte limit of a template in "
                "S3; use engine direct"
            )
        s3 = self.ctx.access(stack.where, stack.account_id).client("s3", stack.region)
        bucket = template_bucket(self.config, stack.account_id, stack.region)
        self._ensure_bucket(s3, bucket, stack.region)
        key = f"{stack.name}/{hashlib.sha256(body.encode()).hexdigest()}.json"
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json")
        self.notify(f"stack {stack.name}: template of {size} bytes (over {MAX_BODY_BYTES}) put in s3://{bucket}")
        return {"TemplateURL": f"https://{bucket}.s3.{stack.region}.amazonaws.com/{key}"}

    @staticmethod
    def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
        try:
            s3.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        # Outside us-east-1 the region is named (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html).
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **where)
        blocked = dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        )
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=blocked)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [OWNER_TAG]})

    def remove_bucket(self, stack: StackSide) -> list[str]:
        """teardown: the template bucket, when orgalerts made one (tagged) in the stack's account."""
        s3 = self.ctx.access(stack.where, stack.account_id).client("s3", stack.region)
        bucket = template_bucket(self.config, stack.account_id, stack.region)
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])}
        except ClientError as exc:
            if error_code(exc) in ("NoSuchBucket", "NoSuchTagSet", "404"):
                return []
            raise
        if tags.get(OWNER_TAG["Key"]) != OWNER_TAG["Value"]:
            return []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)
        return [f"delete template bucket {bucket}"]

    def wait(self, stack: StackSide, stack_id: str, success: str) -> None:
        """Poll until the operation ends (injectable sleep: tests never wait); progress on `notify`."""
        cfn = self.client(stack)
        waited = 0.0
        for _ in range(MAX_POLLS):
            status = str(cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"])
            if not status.endswith("_IN_PROGRESS"):
                self.notify(f"stack {stack.name}: {status} after {waited:.0f} s")
                if status != success:
                    raise OrgAlertsError(f"stack {stack.name} {status}{self.reason(cfn, stack_id)}")
                return
            if waited >= MAX_WAIT_SECONDS:
                raise OrgAlertsError(f"stack {stack.name} still {status} after {waited:.0f} s")
            if waited == 0.0 or int(waited) // 60 != int(waited - self.poll) // 60:
                self.notify(f"stack {stack.name}: {status}, waiting")  # once a minute
            self.runner.sleep(self.poll)
            waited += self.poll
        raise OrgAlertsError(f"stack {stack.name} did not settle after {MAX_POLLS} reads")

    @staticmethod
    def reason(cfn: Any, stack_id: str) -> str:
        """The first resource failure of the latest operation (events come newest first)."""
        events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
        failed = [
            e for e in events if str(e.get("ResourceStatus", "")).endswith("_FAILED") and e.get("ResourceStatusReason")
        ]
        if not failed:
            return ""
        first = failed[-1]
        return f": {first.get('LogicalResourceId')} {first.get('ResourceStatus')}: {first.get('ResourceStatusReason')}"


def _then(stack: SideResult, direct: SideResult | None) -> SideResult:
    """The stack's result, then the direct pass's: a direct pass that changed nothing leaves the status as is."""
    if direct is not None and direct.status == Status.UNCHANGED and not direct.changes and not direct.error:
        stack.notes += direct.notes
        return stack
    return merge(stack, direct) or stack


def _parse(body: Any) -> dict[str, Any] | None:
    """GetTemplate's body: botocore decodes a JSON template into a dict already; text otherwise."""
    if isinstance(body, dict):
        body = json.dumps(body)
    try:
        parsed = json.loads(str(body))
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _body(template: dict[str, Any]) -> str:
    return json.dumps(template, sort_keys=True, separators=(",", ":"))


def _normal(node: Any) -> Any:
    return json.loads(json.dumps(node))


# --- the commands' shapes for one stack ------------------------------------------------------------------


class StackCommands(Stacks):
    """deploy / plan / drift / repair / teardown of one stack and the direct pass after it."""

    def converge(self, stack: StackSide, mode: Mode, scope: Scope) -> SideResult | None:
        result = SideResult(stack.account_id, Status.UNCHANGED, name=stack.row)
        try:
            live = self.read(stack)
            if live.exists and not live.owned:
                why = f"stack {stack.name} exists without the tag managed-by: orgalerts; orgalerts does not touch it"
                return result.fail(why)
            if not live.exists and stack.wanted and self.deployed_directly(stack):
                return self._kept_direct(stack, mode)
            action = self.plan(stack, live)
            if mode is Mode.DRIFT:
                return merge(stack.direct(mode), self._drift(stack, live, action, result))
            if mode is Mode.PLAN:
                result.changes = self.prerequisites(stack, scope, False) + self.texts(stack, live, action)
                if action is Action.NONE:
                    return merge(stack.direct(mode), result) if not result.changes else result
                result.status = Status.CREATED if action in (Action.CREATE, Action.RECREATE) else Status.UPDATED
                return result
            self._write(stack, scope, live, action, mode, result)
        except (*UNIT_ERRORS, OrgAlertsError) as exc:
            return result.fail(str(exc) if isinstance(exc, OrgAlertsError) else error_text(exc))
        return _then(result, stack.direct(mode))

    def _write(
        self, stack: StackSide, scope: Scope, live: LiveStack, action: Action, mode: Mode, result: SideResult
    ) -> None:
        result.changes = self.prerequisites(stack, scope, True) if action is not Action.DELETE else []
        if action is Action.NONE:
            return
        texts = self.texts(stack, live, action)
        self.apply(stack, live, action)
        result.changes += texts
        created = Status.CREATED if action in (Action.CREATE, Action.RECREATE) else Status.UPDATED
        result.status = Status.REPAIRED if mode is Mode.REPAIR else created

    def _drift(self, stack: StackSide, live: LiveStack, action: Action, result: SideResult) -> SideResult:
        findings = {
            Action.NONE: [],
            Action.CREATE: [f"stack {stack.name} not deployed"],
            Action.RECREATE: [f"stack {stack.name} is {live.status}"],
            Action.DELETE: [f"stack {stack.name} exists, with no {stack.row} resources wanted"],
        }.get(action, [f"stack {stack.name}: template differs from the desired one (deploy updates it)"])
        if action is Action.UPDATE and live.status not in HEALTHY:
            findings = [f"stack {stack.name} is {live.status}"]
        result.changes, result.status = findings, Status.DRIFTED if findings else Status.UNCHANGED
        return result

    def _kept_direct(self, stack: StackSide, mode: Mode) -> SideResult | None:
        result = stack.direct(mode)
        if result is not None:
            result.notes.append(KEPT_DIRECT.format(name=stack.name))
        return result

    def delete(self, stack: StackSide) -> SideResult | None:
        """teardown: the stack and its resources; None when there is none (nothing to say)."""
        result = SideResult(stack.account_id, Status.REMOVED, name=stack.row)
        try:
            live = self.read(stack)
            if not live.exists:
                result.changes = self.remove_bucket(stack)  # left by an interrupted teardown
                return result if result.changes else None
            if not live.owned:
                why = f"stack {stack.name} exists without the tag managed-by: orgalerts; orgalerts does not touch it"
                return result.fail(why)
            self.apply(stack, live, Action.DELETE)
            result.changes.append(f"delete stack {stack.name}")
            result.changes += self.remove_bucket(stack)
        except (*UNIT_ERRORS, OrgAlertsError) as exc:
            result.fail(str(exc) if isinstance(exc, OrgAlertsError) else error_text(exc))
        return result
