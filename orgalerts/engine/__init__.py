"""The engine: context (config + gateway), results (statuses, reports, exit code) and the runner.

The runner has one unit boundary (`Runner.run_unit`: whatever goes wrong in one account becomes that
account's result, and every other account still runs) and one account pool (`Runner.for_each`:
bounded threads, progress, Ctrl-C) that every command uses.
"""
