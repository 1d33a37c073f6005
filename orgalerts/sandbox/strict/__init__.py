"""Strict mode for the sandbox: refuse what AWS refuses, with AWS's error codes.

moto accepts much that AWS refuses (any caller may do anything, AssumeRole of a role that does not
exist, over-long event patterns, reusing a queue name at once, ...), so tests against plain moto
cannot see real-deployment failures. Strict mode puts AWS's checks in front of moto.

Modules, one concern each: `request` (parse a request, HTTP or in-process), `actions` (operation ->
IAM action + resource ARN table), `policy` (IAM policy evaluation), `principals` (access key ->
caller + policies, from moto), `authorize` (rules 1 and 3: authorization, AssumeRole trust),
`eventbridge` (rule 4), `sqs` (rule 5), `organizations` (rule 6), `managed_policies` (rule 7),
`seeding` (rule 8), `settings` (clock, randomness, limits), `engine` (the rules in order),
`replies` (error shapes per protocol), `middleware` (server) and `hook` (in-process).

Use:
* server: `Sandbox(spec, strict=True)` or `Sandbox(spec, strict=StrictSettings(clock=...))`;
  `SandboxServer(strict=StrictEngine(...))` for a bare server.
* in-process with `mock_aws`: `gateway.add_send_hook(send_hook(StrictEngine(settings)))`, or
  `register(boto3_client, engine)` for a single client; plus `load_aws_managed_policies()` and
  `grant_organization_access_admin(...)` as needed.
"""

from orgalerts.sandbox.strict.engine import StrictEngine
from orgalerts.sandbox.strict.hook import register, send_hook
from orgalerts.sandbox.strict.managed_policies import load_aws_managed_policies
from orgalerts.sandbox.strict.middleware import StrictMiddleware
from orgalerts.sandbox.strict.seeding import SeededPrincipals, grant_organization_access_admin, seed_least_privilege
from orgalerts.sandbox.strict.settings import StrictSettings

__all__ = [
    "SeededPrincipals",
    "StrictEngine",
    "StrictMiddleware",
    "StrictSettings",
    "grant_organization_access_admin",
    "load_aws_managed_policies",
    "register",
    "seed_least_privilege",
    "send_hook",
]
