"""CloudFormation in the sandbox: the resource types and properties orgalerts' templates use that moto's
CloudFormation lacks, emulated as AWS creates them. A SHIM OVER MOTO, applied with `fidelity.apply_aws_semantics`.

Owns: registering the missing resource types with moto's CloudFormation (`install`) and completing the ones moto
has but creates only partly. Each is written through moto's own backends, exactly as the matching API call
would, so `orgalerts drift` reads a template-created resource as AWS would show it. moto 5.2 (checked in
moto/cloudformation/parsing.py: a type without a `CloudFormationModel` is skipped with a warning, and the stack
still reports CREATE_COMPLETE) lacks:

- AWS::Events::EventBusPolicy (one statement of a bus's policy, `StatementId` its Sid)
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-eventbuspolicy.html
- AWS::SNS::TopicPolicy, AWS::SNS::Subscription
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-topicpolicy.html
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-subscription.html
- AWS::SQS::QueuePolicy (`Queues` are queue URLs)
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queuepolicy.html
- AWS::S3::BucketPolicy
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucketpolicy.html
- AWS::CloudTrail::Trail (`IsLogging` starts or stops logging; `EventSelectors`)
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudtrail-trail.html
- AWS::Organizations::Policy (`TargetIds` are its attachments)
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-organizations-policy.html
- AWS::Events::Connection, AWS::Events::ApiDestination (`Fn::GetAtt ... Arn` the ARN with the id AWS appends)
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-connection.html
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-apidestination.html

and creates these without a property AWS applies:

- AWS::Events::EventBus without `Tags` (moto passes only the name), and its `Ref` is not its name;
- AWS::SNS::Topic with `Tags` and `TopicName` set as topic attributes instead of tags;
- AWS::S3::Bucket without `PublicAccessBlockConfiguration`;
- AWS::Events::Rule keeps a `Targets` entry that is `AWS::NoValue` (an Fn::If's other branch) as None, which
  AWS drops;
- AWS::IAM::Role keeps an inline policy's `PolicyDocument` as a dict, which GetRolePolicy then returns as
  Python's text of it instead of JSON, and keeps an `AWS::NoValue` entry of `Policies` as None.

A stack update that changes one of the added types removes it and writes it again (AWS replaces a policy's
document in place; the end state is the same); deletion is emulated too, and tolerates a parent deleted first
(moto deletes a stack's resources in any order, AWS in reverse dependency order). A resource that cannot be
created fails the stack as in AWS (ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE and a `*_FAILED` event with the
reason) instead of escaping moto's CreateStack as an error (`_rollback_on_failure`). The sandbox's event router
reads the resulting buses, rules, topics and policies as it reads those made by API calls.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

PARTITION = "aws"
_LOCK = threading.Lock()
_INSTALLED = False


def _text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _tags(properties: dict[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in properties.get("Tags", [])}


class _Emulated:
    """A resource moto's CloudFormation does not know: `create` writes it, `remove` deletes it again. Each type
    derives from CloudFormationModel directly (moto finds types among its direct subclasses)."""

    cfn_type = ""

    def __init__(self, physical_id: str, properties: dict[str, Any], account_id: str, region: str) -> None:
        self.physical_id = physical_id
        self.properties = properties
        self.account_id = account_id
        self.region = region

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> _Emulated:
        properties = cloudformation_json.get("Properties", {})
        physical_id = cls.create(properties, account_id, region_name) or resource_name
        return cls(physical_id, properties, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        # AWS deletes a stack's resources in reverse dependency order (a policy before its bus, queue or topic);
        # moto deletes in any order, so the parent may be gone already, and with it what this resource was.
        try:
            self.remove(self.properties, account_id, region_name, self.physical_id)
        except Exception as exc:  # moto's not-found errors have no common base
            text = f"{type(exc).__name__} {exc}"
            if not any(word in text for word in ("NotFound", "NonExistent", "NoSuch", "does not exist")):
                raise

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str,
        region_name: str,
    ) -> _Emulated:  # fmt: skip
        """A stack update that changes the resource's properties: written again (the policies and the bus
        statement are replaced in place in AWS, a subscription whose endpoint changes is replaced)."""
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        raise NotImplementedError

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        raise NotImplementedError


def _events(account_id: str, region: str) -> Any:
    from moto.events.models import events_backends

    return events_backends[account_id][region]


class EventBusPolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Events::EventBusPolicy"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        from moto.events.models import EventBusPolicyStatement

        bus = _events(account_id, region).describe_event_bus(properties.get("EventBusName") or "default")
        sid = str(properties["StatementId"])
        statement = {"Sid": sid, "Resource": bus.arn, **properties["Statement"]}
        bus._statements[sid] = EventBusPolicyStatement.from_dict(statement)
        return f"{bus.name}|{sid}"

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        bus = _events(account_id, region).describe_event_bus(properties.get("EventBusName") or "default")
        bus.remove_statement(str(properties["StatementId"]))


def _sns(account_id: str, region: str) -> Any:
    from moto.sns.models import sns_backends

    return sns_backends[account_id][region]


class TopicPolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        for topic_arn in properties["Topics"]:
            _sns(account_id, region).set_topic_attribute(topic_arn, "policy", _text(properties["PolicyDocument"]))
        return None

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        backend = _sns(account_id, region)
        for topic_arn in properties["Topics"]:
            if topic_arn in backend.topics:  # AWS then restores the topic's default policy
                topic = backend.topics[topic_arn]
                topic._policy_json = topic._create_default_topic_policy(region, account_id, topic.name)


class Subscription(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        backend = _sns(account_id, region)
        subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
        return str(subscription.arn)

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        _sns(account_id, region).unsubscribe(physical_id)


class QueuePolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @classmethod
    def _set(cls, properties: dict[str, Any], account_id: str, region: str, policy: str) -> None:
        from moto.sqs.models import sqs_backends

        for url in properties["Queues"]:
            sqs_backends[account_id][region].set_queue_attributes(
                str(url).rstrip("/").split("/")[-1], {"Policy": policy}
            )

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        cls._set(properties, account_id, region, _text(properties["PolicyDocument"]))
        return None

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        cls._set(properties, account_id, region, "")


def _s3(account_id: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id][PARTITION]


class BucketPolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        _s3(account_id).put_bucket_policy(properties["Bucket"], _text(properties["PolicyDocument"]).encode())
        return None

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        _s3(account_id).delete_bucket_policy(properties["Bucket"])


def _cloudtrail(account_id: str, region: str) -> Any:
    from moto.cloudtrail.models import cloudtrail_backends

    return cloudtrail_backends[account_id][region]


class Trail(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudTrail::Trail"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        backend = _cloudtrail(account_id, region)
        name = str(properties["TrailName"])
        backend.create_trail(
            name, properties["S3BucketName"], properties.get("S3KeyPrefix"), properties.get("SnsTopicName"),
            bool(properties.get("IncludeGlobalServiceEvents", True)), bool(properties.get("IsMultiRegionTrail")),
            bool(properties.get("EnableLogFileValidation")), bool(properties.get("IsOrganizationTrail")),
            properties.get("CloudWatchLogsLogGroupArn"), properties.get("CloudWatchLogsRoleArn"),
            properties.get("KMSKeyId"), properties.get("Tags", []),
        )  # fmt: skip
        if properties.get("EventSelectors"):
            backend.put_event_selectors(name, properties["EventSelectors"], [])
        if properties.get("IsLogging"):
            backend.start_logging(name)
        return name

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        _cloudtrail(account_id, region).delete_trail(physical_id)


def _organizations(account_id: str) -> Any:
    from moto.organizations.models import organizations_backends

    return organizations_backends[account_id][PARTITION]


class OrganizationsPolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Organizations::Policy"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        backend = _organizations(account_id)
        created = backend.create_policy(
            Name=properties["Name"],
            Description=properties.get("Description", ""),
            Content=_text(properties["Content"]),
            Type=properties["Type"],
            Tags=properties.get("Tags", []),
        )
        policy_id = str(created["Policy"]["PolicySummary"]["Id"])
        for target in properties.get("TargetIds", []):
            backend.attach_policy(PolicyId=policy_id, TargetId=target)
        return policy_id

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        backend = _organizations(account_id)
        for target in properties.get("TargetIds", []):
            backend.detach_policy(PolicyId=physical_id, TargetId=target)
        backend.delete_policy(PolicyId=physical_id)


class _Attributed(_Emulated):
    """An emulated type with an `Arn` attribute (Fn::GetAtt), read from the backend by its physical id."""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name != "Arn":
            raise UnformattedGetAttTemplateException()
        return self.arn()

    def arn(self) -> str:
        raise NotImplementedError


class Connection(_Attributed, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Events::Connection"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        connection = _events(account_id, region).create_connection(
            properties["Name"], properties.get("Description", ""), properties["AuthorizationType"],
            properties["AuthParameters"],
        )  # fmt: skip
        return str(connection.name)

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        _events(account_id, region).delete_connection(physical_id)

    def arn(self) -> str:
        return str(_events(self.account_id, self.region).describe_connection(self.physical_id)["ConnectionArn"])


class ApiDestination(_Attributed, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Events::ApiDestination"

    @classmethod
    def create(cls, properties: dict[str, Any], account_id: str, region: str) -> str | None:
        _events(account_id, region).create_api_destination(
            properties["Name"], properties.get("Description", ""), properties["ConnectionArn"],
            properties["InvocationEndpoint"], properties.get("InvocationRateLimitPerSecond", 300),
            properties["HttpMethod"],
        )  # fmt: skip
        return str(properties["Name"])

    @classmethod
    def remove(cls, properties: dict[str, Any], account_id: str, region: str, physical_id: str) -> None:
        _events(account_id, region).delete_api_destination(physical_id)

    def arn(self) -> str:
        described = _events(self.account_id, self.region).describe_api_destination(self.physical_id)
        return str(described["ApiDestinationArn"])


# --- types moto has, completed ----------------------------------------------------------------------------------


def _complete(model: Any, finish: Any) -> None:
    """Wrap `model.create_from_cloudformation_json` so `finish(resource, properties, account, region)` adds what
    moto leaves out."""
    original = model.create_from_cloudformation_json.__func__

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        resource = original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        finish(resource, properties, account_id, region_name)
        return resource

    model.create_from_cloudformation_json = classmethod(create)


def _bus_tags(bus: Any, properties: dict[str, Any], account_id: str, region: str) -> None:
    if properties.get("Tags"):
        _events(account_id, region).tagger.tag_resource(bus.arn, properties["Tags"])


def _topic_tags(topic: Any, properties: dict[str, Any], account_id: str, region: str) -> None:
    for attribute in ("tags", "topic_name"):  # moto set every property as an attribute
        topic.__dict__.pop(attribute, None)
    topic._tags = _tags(properties)


def _bucket_public_access(bucket: Any, properties: dict[str, Any], account_id: str, region: str) -> None:
    if properties.get("PublicAccessBlockConfiguration"):
        _s3(account_id).put_public_access_block(bucket.name, properties["PublicAccessBlockConfiguration"])


def _role_policies_as_json(cloudformation_json: Any) -> None:
    """Inline policies as JSON text; an entry that is `AWS::NoValue` (an Fn::If's other branch) is dropped, as
    AWS drops it (moto keeps it as None in a list):
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html#cfn-pseudo-param-novalue"""
    properties = cloudformation_json.get("Properties", {})
    policies = [p for p in properties.get("Policies", []) if p is not None]
    for policy in policies:
        policy["PolicyDocument"] = _text(policy["PolicyDocument"])
    if "Policies" in properties:
        properties["Policies"] = policies


def _rule_targets_without_no_value(cloudformation_json: Any) -> None:
    properties = cloudformation_json.get("Properties", {})
    if "Targets" in properties:
        properties["Targets"] = [t for t in properties["Targets"] if t is not None]


def _complete_before(model: Any, prepare: Any) -> None:
    """Wrap `model.create_from_cloudformation_json` so `prepare(cloudformation_json)` runs first."""
    original = model.create_from_cloudformation_json.__func__

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        prepare(cloudformation_json)
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)

    model.create_from_cloudformation_json = classmethod(create)


def _rollback_on_failure(stack_class: Any) -> None:
    """A resource that cannot be created (e.g. a name that exists) fails the stack: AWS rolls the creation back
    (ROLLBACK_COMPLETE; the resources created so far are deleted) or the update (UPDATE_ROLLBACK_COMPLETE), and
    DescribeStackEvents tells why (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html).
    moto lets the error escape the CreateStack / UpdateStack call instead and leaves the stack IN_PROGRESS. Here the
    failure becomes the stack's status and a `*_FAILED` event with the reason. An update's rollback restores the
    template record; resources it had changed before the failure are not changed back (the tests do not need it)."""
    create, update = stack_class.create_resources, stack_class.update

    def create_resources(self: Any) -> None:
        try:
            create(self)
        except Exception as exc:
            self._add_stack_event("CREATE_FAILED", resource_status_reason=f"{type(exc).__name__}: {exc}")
            try:
                self.resource_map.delete()
            except Exception:  # what could not be deleted stays, as in AWS's ROLLBACK_FAILED; reported below
                self.status = "ROLLBACK_FAILED"
            else:
                self.status = "ROLLBACK_COMPLETE"
            self._add_stack_event(self.status)

    def update_stack(self: Any, template: str, *args: Any, **kwargs: Any) -> None:
        before = self.template
        try:
            update(self, template, *args, **kwargs)
        except Exception as exc:
            self._add_stack_event("UPDATE_FAILED", resource_status_reason=f"{type(exc).__name__}: {exc}")
            self.template = before
            self._parse_template()
            self.status = "UPDATE_ROLLBACK_COMPLETE"
            self._add_stack_event(self.status)

    stack_class.create_resources = create_resources
    stack_class.update = update_stack


def install() -> None:
    """Register the emulated types and complete moto's (once per process; idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.cloudformation.models import Stack
        from moto.events.models import EventBus, Rule
        from moto.iam.models import Role
        from moto.s3.models import FakeBucket
        from moto.sns.models import Topic

        _complete(EventBus, _bus_tags)
        # Ref of an AWS::Events::EventBus is its name (moto returns the object itself: no physical id).
        EventBus.physical_resource_id = property(lambda bus: bus.name)  # type: ignore[attr-defined]
        _complete(Topic, _topic_tags)
        _complete(FakeBucket, _bucket_public_access)
        _complete_before(Role, _role_policies_as_json)
        _complete_before(Rule, _rule_targets_without_no_value)
        _rollback_on_failure(Stack)
        # moto builds its type map once, from CloudFormationModel's subclasses: rebuild it with ours in it.
        for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
            cached.cache_clear()
        _INSTALLED = True
