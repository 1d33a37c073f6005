"""Turning tamper alerts or dead-letter queues off removes what they left, and then costs no reads."""

from __future__ import annotations

from conftest import CallLog, SimOrg, make_engine

from orgalerts.engine.results import Mode, exit_code


def test_toggle__tamper_and_dlq_off_after_deploy__removed_then_steady_state_reads_only_the_core(
    sim_org: SimOrg, call_log: CallLog
) -> None:
    assert exit_code(make_engine(sim_org.config()).converge("deploy", Mode.DEPLOY)) == 0
    member = sim_org.accounts["prod1"]
    lean = sim_org.config(
        alerts={"pattern": "iam-changes", "tamper_alerts": False, "dead_letter_queues": False, "account_changes": False}
    )

    result = make_engine(lean).converge("deploy", Mode.DEPLOY)

    assert exit_code(result) == 0
    changes = {a.account_id: a.changes for a in result.accounts}[member]
    assert "delete rule default/orgalerts-watchdog" in changes
    # one role serves both targets (since version 2): it stays, with the forwarding rule
    assert not any("forwarder role" in c for c in changes)
    assert "delete dead-letter queue orgalerts-forward-dlq" in changes or any(
        "orgalerts-forward-dlq" in c for c in changes
    )
    assert [r["Name"] for r in sim_org.client("events", member).list_rules(NamePrefix="orgalerts-")["Rules"]] == [
        "orgalerts-forward"
    ]
    assert sim_org.client("sqs", member).list_queues().get("QueueUrls", []) == []

    again = make_engine(lean, call_log).converge("deploy", Mode.DEPLOY)
    assert exit_code(again) == 0
    reads = sorted(c.operation for c in call_log.for_account(member))
    # role, its policy, the rules (one ListRules: the Description carries the ownership marker), the rule's target --
    # nothing else (the role carries the record that no role of an earlier version was left: sides/member.py).
    assert reads == sorted(["GetRole", "GetRolePolicy", "ListRules", "ListTargetsByRule"])
    assert call_log.writes() == []
