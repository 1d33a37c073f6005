"""The embedded, simulated AWS Organization ("sandbox") that the shipped configuration runs against.

Owns: everything that makes a local moto server look like an Organization with CloudTrail alerts
flowing: the spec of the organization (`spec`), seeding it with exact ids (`seed`), the server and its
lifecycle (`server`), the CloudTrail emulation (`cloudtrail`) and the event router that closes moto's
EventBridge gaps (`eventflow`). The core of orgalerts knows none of this: it is handed an endpoint URL
and credentials, exactly as it would be for AWS.
"""

from orgalerts.sandbox.server import Sandbox, SandboxServer
from orgalerts.sandbox.spec import SandboxAccount, SandboxOU, SandboxSpec, parse_sandbox_spec

__all__ = ["Sandbox", "SandboxAccount", "SandboxOU", "SandboxServer", "SandboxSpec", "parse_sandbox_spec"]
