"""Commands beyond converge: verify, watch, redrive, drift notices, doctor, permissions, onboarding checks.

Each takes the engine's context (or runner, where it needs the account pool) and returns a result
object; none prints (the CLI renders every result).
"""
