"""Resource groups, one module each, all of one shape (`base.Side`).

Each module owns one group's desired state, reader, writer, drift wording and required IAM actions:
`member` (forwarding in every in-scope account), `central` (notification account), `org_watch`
(management account's account-move watch), `trail` and `guardrail` (opt-in, management account).
`forwarding` holds the kinds several sides share; `registry` lists the sides.
"""
