"""The command line: parse arguments, load config, pick the environment, run a command, render it.

Owns: argument parsing, the one dispatch table from command to handler, all printing (through
`render`), the exit-code contract at the process boundary, and turning errors into one clear line on
stderr (a traceback only with --debug). The only importer of the sandbox: a `sandbox:` block in the
config makes it the environment, and the engine only ever sees an endpoint and keys.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orgalerts import __version__
from orgalerts.aws import BotoCoreError, ClientError, Gateway, GatewaySettings, error_text
from orgalerts.cli import render
from orgalerts.cli.progress import ProgressReporter
from orgalerts.cli.render import plural
from orgalerts.commands.doctor import run_doctor
from orgalerts.commands.export import FORMATS, check_out_dir, run_export
from orgalerts.commands.lifecycle import check_offboard, check_onboard
from orgalerts.commands.notify import publish_drift
from orgalerts.commands.permissions import render as render_permissions
from orgalerts.commands.redrive import run_redrive
from orgalerts.commands.replay import run_replay
from orgalerts.commands.replay_input import read_paths
from orgalerts.commands.verify import run_verify
from orgalerts.commands.watch import run_watch
from orgalerts.config import ACCOUNT_ID_RE, DEFAULT_CONFIG_PATH, Config, destination_secrets, load_config
from orgalerts.engine.context import Context
from orgalerts.engine.lock import WRITING_COMMANDS, RunLock, held
from orgalerts.engine.results import EXIT_FAILED, Interrupted, Mode, RunReport, exit_code
from orgalerts.engine.runner import Runner
from orgalerts.engine.stacksets import Commands as StackSets
from orgalerts.engine.stacksets import uses_stacksets
from orgalerts.errors import ConfigError, OrgAlertsError, UsageError

if TYPE_CHECKING:
    from orgalerts.sandbox.launch import Connection
    from orgalerts.sandbox.least_privilege import LeastPrivilege

log = logging.getLogger("orgalerts")


def _account_arg(value: str) -> str:
    if not ACCOUNT_ID_RE.match(value):
        raise argparse.ArgumentTypeError(f"expected a 12-digit account id, got {value!r}")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=f"config file (default {DEFAULT_CONFIG_PATH})")
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document on stdout")
    common.add_argument("--workers", type=int, default=argparse.SUPPRESS, help="accounts in flight at once")
    return common


def _writer(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the commands that take the run lock."""
    writer = argparse.ArgumentParser(add_help=False, parents=[common])
    writer.add_argument(
        "--force-unlock",
        action="store_true",
        help="first remove the run lock a dead run left behind (as Terraform's force-unlock; shows who held it)",
    )
    return writer


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="orgalerts",
        description="Alerts on IAM configuration changes in every account of an AWS Organization.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"orgalerts {__version__}")
    sub: Any = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    writer = _writer(common)
    deploy = sub.add_parser("deploy", parents=[writer], help="converge every in-scope account and the central side")
    deploy.add_argument("--adopt", action="store_true", help=ADOPT_HELP)
    sub.add_parser("plan", parents=[common], help="show what deploy would change; exit 3 if anything")
    _add_drift(sub, writer)
    _add_lifecycle(sub, writer)
    _add_verify(sub, common)
    watch = sub.add_parser("watch", parents=[common], help="print alerts as they arrive (Ctrl-C to stop)")
    watch.add_argument("--seconds", type=_positive, default=None, help="stop after this many seconds")
    sub.add_parser("redrive", parents=[writer], help="re-send events held in orgalerts' dead-letter queues")
    doctor = sub.add_parser(
        "doctor", parents=[common], help="check credentials, CloudTrail, the member role and the region; no write"
    )
    doctor.add_argument("--sample", type=int, default=5, metavar="N", help="accounts to try the member role in")
    sub.add_parser("permissions", parents=[common], help="print the least-privilege IAM policies orgalerts needs")
    export = sub.add_parser(
        "export", parents=[common], help="write the deployment as CloudFormation templates (read-only in AWS)"
    )
    export.add_argument("format", choices=FORMATS, help="template format")
    export.add_argument("--out", required=True, metavar="DIR", help="directory to write the templates to")
    replay = sub.add_parser(
        "replay",
        parents=[common],
        help="run recorded CloudTrail events through the configured rules and messages; no AWS account needed",
    )
    replay.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a CloudTrail record or EventBridge event (.json), a CloudTrail log file (Records, .json or .json.gz), "
        "or a directory of these (recursive)",
    )
    unlock = sub.add_parser(
        "unlock", parents=[common], help="remove the run lock a dead run left behind (after a confirmation)"
    )
    unlock.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sandbox = sub.add_parser(
        "sandbox", parents=[common], help="start (or show, or stop) the embedded simulated organization"
    )
    sandbox.add_argument("--stop", action="store_true", help="stop the running sandbox")
    return parser


ADOPT_HELP = (
    "take over resources with orgalerts' names but without its managed-by=orgalerts tag: tag them, then converge "
    "them (reported as `adopted ...`)"
)


def _add_drift(sub: Any, common: argparse.ArgumentParser) -> None:
    drift = sub.add_parser("drift", parents=[common], help="find drift; exit 3 on drift; --repair fixes it")
    drift.add_argument("--repair", action="store_true", help="converge exactly what drifted")
    drift.add_argument(
        "--remove-orphans",
        action="store_true",
        help="with --repair: remove managed resources from out-of-scope accounts",
    )
    drift.add_argument("--adopt", action="store_true", help=f"with --repair: {ADOPT_HELP}")
    drift.add_argument("--markdown", metavar="PATH", help="also write a Markdown report to PATH")
    drift.add_argument(
        "--publish", action="store_true", help="also send a drift summary to the alert topic's recipients"
    )
    drift.add_argument("--no-orphans", action="store_true", help="do not look for managed resources outside the scope")


def _add_lifecycle(sub: Any, common: argparse.ArgumentParser) -> None:
    onboard = sub.add_parser(
        "onboard", parents=[common], help="deploy one new account (and the central side if needed)"
    )
    onboard.add_argument("account_id", type=_account_arg, metavar="ACCOUNT_ID")
    offboard = sub.add_parser("offboard", parents=[common], help="remove the managed resources from one account")
    offboard.add_argument("account_id", type=_account_arg, metavar="ACCOUNT_ID")
    teardown = sub.add_parser("teardown", parents=[common], help="remove every managed resource everywhere")
    teardown.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _add_verify(sub: Any, common: argparse.ArgumentParser) -> None:
    verify = sub.add_parser(
        "verify", parents=[common], help="prove alerts arrive: make a harmless IAM change, wait for the alert"
    )
    verify.add_argument(
        "--account",
        dest="accounts",
        action="append",
        type=_account_arg,
        metavar="ACCOUNT_ID",
        help="member account to test (repeatable; default: one in-scope account)",
    )
    verify.add_argument(
        "--count", type=int, default=1, help="how many in-scope accounts to test when --account is not given"
    )
    verify.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for each alert (default 900 on AWS, 30 in the sandbox)",
    )
    verify.add_argument("--show-message", action="store_true", help="print the alert as a recipient reads it")


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return number


def _opt(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


@contextmanager
def environment(config: Config, *, quiet: bool = False) -> Iterator[GatewaySettings]:
    """AWS as the environment configures it, or the embedded sandbox when the config has a `sandbox:` block.

    The composition root is the only place that knows a sandbox exists; the engine only sees an
    endpoint and credentials.
    """
    if config.sandbox is None:
        yield GatewaySettings()
        return
    from orgalerts.sandbox.launch import connect

    connection = connect(config.sandbox, config.source, sandbox_least_privilege(config))
    if not quiet:
        _sandbox_banner(connection)
    # orgalerts runs as the seeded least-privilege orchestrator user, never as the sandbox's root user.
    access_key_id, secret_access_key = connection.tool_keys
    yield GatewaySettings(
        endpoint_url=connection.endpoint_url,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    )


def _sandbox_banner(connection: Connection) -> None:
    """The full banner once, when this command started the sandbox; one line when it attached to a running one."""
    if connection.restarted_because:
        sys.stderr.write(f"SANDBOX: restarted the sandbox: {connection.restarted_because}\n")
    sys.stderr.write((connection.banner if connection.started else connection.attached_line()) + "\n")


def sandbox_least_privilege(config: Config) -> LeastPrivilege:
    """What the sandbox is seeded with: the member role and exactly the policies `orgalerts permissions` prints.

    Computed here (the sandbox imports nothing of orgalerts) and handed over as plain dicts.
    """
    from orgalerts.commands.permissions import policies
    from orgalerts.sandbox.least_privilege import LeastPrivilege

    return LeastPrivilege(
        role_name=config.member_role.name,
        notification_account_id=config.notification.account_id,
        policies=policies(config),
        external_id=config.member_role.external_id,
    )


def _emit(args: argparse.Namespace, result: RunReport, extra: dict[str, Any] | None = None) -> int:
    render.write_table(result, sys.stderr)
    if _opt(args, "json"):
        render.write_json(result, sys.stdout, extra)
    if _opt(args, "markdown"):
        render.write_markdown(result, args.markdown)
    return exit_code(result)


def _stacksets(runner: Runner) -> StackSets | None:
    """The StackSets engine when the config says `deploy: {engine: stacksets}` (None: the direct engine)."""
    if not uses_stacksets(runner.config):
        return None
    return StackSets(runner, notify=_progress_line)


def cmd_deploy(args: argparse.Namespace, runner: Runner) -> int:
    stacksets = _stacksets(runner)
    if stacksets is not None:
        if args.adopt:
            raise UsageError("--adopt is for the direct engine (deploy.engine: direct); StackSets own their stacks")
        return _emit(args, stacksets.converge("deploy", Mode.DEPLOY))
    return _emit(args, runner.converge("deploy", Mode.DEPLOY, adopt=args.adopt))


def cmd_plan(args: argparse.Namespace, runner: Runner) -> int:
    stacksets = _stacksets(runner)
    if stacksets is not None:
        return _emit(args, stacksets.converge("plan", Mode.PLAN))
    return _emit(args, runner.converge("plan", Mode.PLAN))


def cmd_drift(args: argparse.Namespace, runner: Runner) -> int:
    if args.remove_orphans and not args.repair:
        raise UsageError("--remove-orphans goes with --repair")
    if args.adopt and not args.repair:
        raise UsageError("--adopt goes with --repair (drift alone never writes)")
    mode = Mode.REPAIR if args.repair else Mode.DRIFT
    # "repair" words the statuses `repaired` and makes exit 0 mean "everything found was repaired".
    command = "repair" if args.repair else "drift"
    orphans = not args.no_orphans
    stacksets = _stacksets(runner)
    if stacksets is not None:
        result = stacksets.converge(command, mode, orphans=orphans, remove_orphans=args.remove_orphans)
    else:
        result = runner.converge(command, mode, orphans=orphans, remove_orphans=args.remove_orphans, adopt=args.adopt)
    code = _emit(args, result)
    if args.publish:
        try:
            if publish_drift(runner.ctx, result, repaired=args.repair):
                sys.stderr.write("drift summary sent to the alert topic\n")
        except (ClientError, BotoCoreError) as exc:
            sys.stderr.write(f"orgalerts: error: could not publish the drift summary: {error_text(exc)}\n")
            return EXIT_FAILED
    return code


def cmd_onboard(args: argparse.Namespace, runner: Runner) -> int:
    scope = check_onboard(runner.ctx, args.account_id)
    stacksets = _stacksets(runner)
    if stacksets is not None:
        return _emit(args, stacksets.converge("onboard", Mode.DEPLOY, only=[args.account_id], scope=scope))
    return _emit(args, runner.converge("onboard", Mode.DEPLOY, only=[args.account_id], scope=scope))


def cmd_offboard(args: argparse.Namespace, runner: Runner) -> int:
    check = check_offboard(runner.ctx, args.account_id)  # exit 2 when it is not in the organization
    stacksets = _stacksets(runner)
    report = (
        stacksets.offboard(args.account_id) if stacksets is not None else runner.remove("offboard", [args.account_id])
    )
    for row in report.accounts:
        if row.account_id == check.account_id:
            row.name = row.name or check.name
            row.notes += list(check.notes)
    return _emit(args, report)


def cmd_teardown(args: argparse.Namespace, runner: Runner) -> int:
    if not args.yes:  # without a terminal, run() already refused before anything started
        config = runner.config
        sys.stderr.write(
            f"This removes every orgalerts-managed resource (prefix {config.resource_prefix!r}, tag managed-by: "
            f"orgalerts): member rules, roles and queues in every account of the organization it may enter, the "
            f"central bus, topic and subscriptions in account {config.notification.account_id} ({config.region}), "
            f"and the management account's watch, trail and guardrail. Type 'yes': "
        )
        sys.stderr.flush()
        if sys.stdin.readline().strip() != "yes":
            raise UsageError("teardown not confirmed; nothing was changed")
    stacksets = _stacksets(runner)
    return _emit(args, stacksets.teardown() if stacksets is not None else runner.remove("teardown", None))


def cmd_verify(args: argparse.Namespace, runner: Runner) -> int:
    ctx = runner.ctx
    timeout = args.timeout if args.timeout is not None else (30.0 if ctx.config.sandbox is not None else 900.0)
    result = run_verify(ctx, accounts=args.accounts, count=args.count, timeout=timeout, progress=_progress_line)
    render.write_verify(result, sys.stderr, show_message=args.show_message)
    if _opt(args, "json"):
        render.write_document(result.to_json(), sys.stdout)
    return result.exit_code()


def _progress_line(text: str) -> None:
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()


def cmd_sandbox(args: argparse.Namespace, config: Config) -> int:
    if config.sandbox is None:
        raise ConfigError(config.source, "sandbox", "a sandbox: block (this config talks to AWS)")
    from orgalerts.sandbox.launch import checkout_of, connect, stop

    if args.stop:
        stopped = stop(config.sandbox, config.source)
        where = f"this checkout's sandbox ({checkout_of(config.source)})"
        sys.stderr.write(f"{where} stopped\n" if stopped else f"{where} was not running\n")
        if _opt(args, "json"):
            render.write_document({"command": "sandbox", "stopped": stopped}, sys.stdout)
        return 0
    connection = connect(config.sandbox, config.source, sandbox_least_privilege(config))
    if connection.restarted_because:
        sys.stderr.write(f"SANDBOX: restarted the sandbox: {connection.restarted_because}\n")
    sys.stderr.write(connection.banner + "\n")
    if _opt(args, "json"):
        render.write_document({"command": "sandbox", **connection.to_json()}, sys.stdout)
    else:
        sys.stdout.write(connection.instructions() + "\n")
    return 0


def cmd_doctor(args: argparse.Namespace, runner: Runner) -> int:
    if not 0 <= args.sample <= 1000:
        raise UsageError("--sample takes a number from 0 to 1000")
    report = run_doctor(runner.ctx, sample=args.sample)
    render.write_doctor(report, sys.stderr)
    if _opt(args, "json"):
        render.write_document(report.to_json(), sys.stdout)
    return report.exit_code()


def cmd_watch(args: argparse.Namespace, runner: Runner) -> int:
    sys.stderr.write("orgalerts watch: printing alerts as they arrive; Ctrl-C to stop\n")
    out = sys.stderr if _opt(args, "json") else sys.stdout  # with --json, stdout carries one document
    received = run_watch(runner.ctx, out, seconds=args.seconds)
    sys.stderr.write(f"orgalerts watch: {plural(received, 'alert')}\n")
    if _opt(args, "json"):
        render.write_document({"command": "watch", "alerts": received}, sys.stdout)
    return 0


def cmd_redrive(args: argparse.Namespace, runner: Runner) -> int:
    return _emit(args, run_redrive(runner))


def cmd_unlock(args: argparse.Namespace, runner: Runner) -> int:
    """Remove the run lock (Terraform's force-unlock): shows who holds it, asks, deletes exactly that lease."""
    lock = RunLock(runner.ctx, "unlock")
    info = lock.holder_info()
    if info is None:
        sys.stderr.write("orgalerts unlock: no run holds the lock; nothing to do\n")
        return 0
    sys.stderr.write(f"The run lock is held by {info.describe(lock.clock())}.\n")
    if not args.yes:
        sys.stderr.write("Removing it while that run is alive lets two runs write at once. Type 'yes': ")
        sys.stderr.flush()
        if sys.stdin.readline().strip() != "yes":
            raise UsageError("unlock not confirmed; the lock is still held")
    if not lock.force_unlock(info):
        sys.stderr.write("orgalerts unlock: the lock changed meanwhile (released or taken again); nothing removed\n")
        return EXIT_FAILED
    sys.stderr.write(f"orgalerts unlock: removed the run lock {info.lock_id}\n")
    return 0


def cmd_export(args: argparse.Namespace, runner: Runner) -> int:
    result = run_export(runner.ctx, check_out_dir(args.out))
    for name in result.files:
        given = ", ".join(f"{k}={v}" for k, v in result.parameters[name].items())
        sys.stderr.write(f"wrote {Path(result.directory) / name}" + (f" (parameters: {given})" if given else "") + "\n")
    if _opt(args, "json"):
        render.write_document(result.to_json(), sys.stdout)
    return 0


def cmd_permissions(args: argparse.Namespace, config: Config) -> int:
    sys.stdout.write(render_permissions(config) + "\n")
    return 0


def cmd_replay(args: argparse.Namespace, config: Config) -> int:
    """Local: reads files and the config only (no credentials, no sandbox); exit 2 on an input it cannot use."""
    report = run_replay(config, read_paths(args.paths))
    if _opt(args, "json"):
        render.write_lines(render.replay_summary(report), sys.stderr)
        render.write_document(report.to_json(), sys.stdout)
    else:
        render.write_lines(render.replay_records(report) + render.replay_summary(report), sys.stdout)
    return 0


# The one dispatch table: commands that need no AWS environment, then those that run over the organization.
LOCAL_COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "sandbox": cmd_sandbox,
    "permissions": cmd_permissions,
    "replay": cmd_replay,
}
RUNNER_COMMANDS: dict[str, Callable[[argparse.Namespace, Runner], int]] = {
    "redrive": cmd_redrive,
    "watch": cmd_watch,
    "doctor": cmd_doctor,
    "deploy": cmd_deploy,
    "plan": cmd_plan,
    "drift": cmd_drift,
    "onboard": cmd_onboard,
    "offboard": cmd_offboard,
    "teardown": cmd_teardown,
    "verify": cmd_verify,
    "unlock": cmd_unlock,
    "export": cmd_export,
}


CONFIG_ENV = "ORGALERTS_CONFIG"


def parser_commands() -> list[str]:
    return list(RUNNER_COMMANDS) + list(LOCAL_COMMANDS)


def _config_path(args: argparse.Namespace) -> str:
    """--config, else $ORGALERTS_CONFIG, else config/accounts.yaml (relative to the current directory)."""
    given = _opt(args, "config") or os.environ.get(CONFIG_ENV)
    if given:
        return str(given)
    if not Path(DEFAULT_CONFIG_PATH).exists():
        raise UsageError(
            f"no {DEFAULT_CONFIG_PATH} in {Path.cwd()}: run from the orgalerts checkout, or pass --config FILE "
            f"(or set {CONFIG_ENV})"
        )
    return DEFAULT_CONFIG_PATH


def _check_output_path(args: argparse.Namespace) -> None:
    """A report path that cannot be written is refused before any AWS call (nothing is run, nothing written)."""
    path = _opt(args, "markdown")
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--markdown {path}: is a directory; give a file path such as {target / 'drift-report.md'}")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--markdown {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--markdown {path}: directory {parent} is not writable")


def run(args: argparse.Namespace) -> int:
    config = load_config(_config_path(args))
    _check_output_path(args)
    if args.command == "export":
        check_out_dir(args.out)  # before any AWS call (the sandbox included)
    workers = _opt(args, "workers")
    if workers is not None and not 1 <= workers <= 256:
        raise UsageError("--workers takes a number from 1 to 256")
    if args.command == "teardown" and not args.yes and not sys.stdin.isatty():
        # Refuse before touching anything (the sandbox included).
        raise UsageError("teardown removes every orgalerts resource; pass --yes (no terminal to confirm on)")
    if args.command == "unlock" and not args.yes and not sys.stdin.isatty():
        raise UsageError("unlock removes the run lock another run may hold; pass --yes (no terminal to confirm on)")
    if args.command in LOCAL_COMMANDS:
        return LOCAL_COMMANDS[args.command](args, config)
    if args.command in ("deploy", "plan", "drift", "onboard"):
        destination_secrets(config, os.environ)  # exit 2 naming the destination and the unset variable
    with environment(config) as settings:
        # Live line on a terminal, periodic plain lines otherwise; stderr only (stdout is the report's).
        progress = ProgressReporter(sys.stderr)
        ctx = Context(config, Gateway(settings))
        runner = Runner(ctx, workers=workers, progress=progress, progress_start=progress.start)
        try:
            with _run_lock(args, runner):
                return RUNNER_COMMANDS[args.command](args, runner)
        except Interrupted as exc:
            progress.close()
            if exc.report is not None:
                _emit(args, exc.report)  # what was done, and what was not attempted
            raise KeyboardInterrupt from None
        finally:
            progress.close()


def _lock_label(args: argparse.Namespace) -> str | None:
    """What the lock records as the command, for the commands that write (None: the others take no lock)."""
    if args.command not in WRITING_COMMANDS or (args.command == "drift" and not args.repair):
        return None
    account = _opt(args, "account_id")
    return "drift --repair" if args.command == "drift" else f"{args.command} {account}" if account else args.command


@contextmanager
def _run_lock(args: argparse.Namespace, runner: Runner) -> Iterator[None]:
    """The run lock around a writing command (released on every way out); teardown also deletes its table."""
    label = _lock_label(args)
    if label is None:
        yield
        return
    lock = RunLock(runner.ctx, label)
    if _opt(args, "force_unlock"):
        stale = lock.holder_info()
        if stale is not None:
            sys.stderr.write(f"--force-unlock: removing the run lock held by {stale.describe(lock.clock())}\n")
            lock.force_unlock(stale)
    with held(lock, on_lost=runner.cancel.set):
        yield
        if args.command == "teardown" and lock.destroy():
            sys.stderr.write(f"removed the run lock's table {lock.table}\n")
    if lock.lost:
        raise OrgAlertsError(
            "the run lock was taken from this run (unlocked, or expired and taken over); "
            "accounts not started are reported as not attempted: run the command again"
        )


HINTS = {
    "NoCredentialsError": "; configure credentials of the management account (AWS_PROFILE, `aws sso login`, or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or use the shipped sandbox config",
    "EndpointConnectionError": "; AWS (or AWS_ENDPOINT_URL) cannot be reached: check the network, proxy settings "
    "and AWS_ENDPOINT_URL",
    "ConnectTimeoutError": "; AWS (or AWS_ENDPOINT_URL) cannot be reached: check the network and proxy settings",
    "ExpiredToken": "; the credentials have expired: refresh them (e.g. `aws sso login`)",
    "InvalidClientTokenId": "; the access key is not valid in this partition or was deleted",
}


def _hint(exc: BaseException) -> str:
    code = type(exc).__name__ if not isinstance(exc, ClientError) else str(exc.response.get("Error", {}).get("Code"))
    return HINTS.get(code, "")


class ArgumentsError(SystemExit):
    """argparse refused the command line (exit 2); already printed on stderr, `message` for --json."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" for a mistyped command; errors raise ArgumentsError (main adds --json)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        if "invalid choice:" in message and "argument COMMAND" in message:
            wrong = message.split("invalid choice: ", 1)[1].split("'")[1]
            close = difflib.get_close_matches(wrong, list(RUNNER_COMMANDS) + list(LOCAL_COMMANDS), n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise ArgumentsError(message)


def _json_error(message: str, code: int, command: str | None) -> None:
    """With --json, a failed command still prints one JSON document on stdout (besides the stderr line)."""
    render.write_document({"command": command, "error": message, "exit_code": code}, sys.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(words)
    except ArgumentsError as exc:
        if "--json" in words:
            _json_error(exc.message, 2, next((w for w in words if w in parser_commands()), None))
        raise
    debug = bool(_opt(args, "debug"))
    as_json = bool(_opt(args, "json"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="orgalerts: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        logging.getLogger("orgalerts").setLevel(logging.INFO)
    else:  # orgalerts' own debug lines, not botocore's thousands (its wire log needs a debugger, not a CLI)
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.INFO)
    try:
        return run(args)
    except OrgAlertsError as exc:
        if debug:
            raise
        sys.stderr.write(f"orgalerts: error: {exc}\n")
        if as_json:
            _json_error(str(exc), exc.exit_code, args.command)
        return exc.exit_code
    except (ClientError, BotoCoreError) as exc:
        # Organization-level failures (listing accounts, credentials) stop the run: nothing to report per account.
        if debug:
            raise
        text = f"{error_text(exc)}{_hint(exc)}"
        sys.stderr.write(f"orgalerts: error: {text}\n")
        if as_json:
            _json_error(text, EXIT_FAILED, args.command)
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("orgalerts: interrupted; run the same command again to converge the rest\n")
        return 130
