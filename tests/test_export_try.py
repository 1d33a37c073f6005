from __future__ import annotations
import json
from conftest import MANAGEMENT, SimOrg, make_engine
from orgalerts.engine.results import Mode, exit_code
from orgalerts.export.cloudformation import templates, render

def test_try(sim_org: SimOrg) -> None:
    alerts = {"pattern": "iam-changes", "dead_letter_queues": True, "account_changes": True, "tamper_alerts": True}
    config = sim_org.config(trail={"create": True}, guardrail={"scp": True}, alerts=alerts)
    engine = make_engine(config)
    scope = engine.ctx.scope()
    built = templates(config, scope)
    def stack(account, name, t, region="us-east-1"):
        cfn = sim_org.client("cloudformation", account, region)
        cfn.create_stack(StackName=name, TemplateBody=render(t), Capabilities=["CAPABILITY_NAMED_IAM"])
        print(name, account, cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    stack(sim_org.accounts["notification"], "orgalerts-central", built["central.yaml"])
    stack(MANAGEMENT, "orgalerts-management", built["management.yaml"])
    for a in sim_org.in_scope:
        stack(a, "orgalerts-member", built["member.yaml"])
    drift = engine.converge("drift", Mode.DRIFT)
    for s in drift.sides():
        print(s.account_id, s.name, s.status, s.changes, s.error, s.notes)
    assert exit_code(drift) == 0

def test_topic(sim_org: SimOrg) -> None:
    config = sim_org.config()
    engine = make_engine(config)
    built = templates(config, engine.ctx.scope())
    n = sim_org.accounts["notification"]
    cfn = sim_org.client("cloudformation", n)
    cfn.create_stack(StackName="c", TemplateBody=render(built["central.yaml"]))
    sns = sim_org.client("sns", n)
    print(sns.get_topic_attributes(TopicArn=config.central.topic_arn)["Attributes"]["Policy"])
    print(json.dumps(built["central.yaml"]["Resources"]["TopicPolicyOrgalertsAlerts"]))
