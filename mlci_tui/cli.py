"""The `mlci` command: argument parsing, exit codes, plain and JSON output.

Exit status: 0 passed (or nothing wrong), 1 a stage failed or nothing was
found, 2 a config or usage error, 130 cancelled. Errors are one line on
stderr; a traceback is a bug (set ``MLCI_DEBUG=1`` to see one anyway).
The headless commands never import Textual, so they start fast.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading

from mlci_tui import __version__
from mlci_tui.errors import ExitCode, MlciError

# Not `typing.TYPE_CHECKING`: importing `typing` costs `mlci --help` 3 ms, and type
# checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import NoReturn

DEFAULT_CONFIG = "config.toml"
"""The config file of every command, unless ``--config`` names another: the
parser fills it in, so the commands read ``args.config``."""


def _row_id(what: str) -> Callable[[str], int]:
    """An argparse type: the id of a run or an alert, which SQLite can hold."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value < 2**63:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_run_id = _row_id("a run number")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _version(text: str) -> str:
    """An argparse type: a version as ``v3`` or ``3``, a number SQLite can hold."""
    digits = text.strip()
    digits = digits[1:] if digits[:1] in ("v", "V") else digits
    if not (digits.isascii() and digits.isdigit() and 1 <= int(digits) < 2**63):
        raise argparse.ArgumentTypeError(f"expected a version like v3, got {text!r}")
    return text


ALL_STAGES = "*"
"""What a bare ``--force`` stands for (`commands.pipeline` reads it as every stage)."""


def _params_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PARAM=VALUE",
        help="use this value of a param in [params] for this run (repeatable)",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line instead of argparse's usage block."""
        self.exit(ExitCode.USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    config = _Parser(add_help=False)
    config.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"the pipeline's config file (default: ./{DEFAULT_CONFIG})",
    )
    parser = _Parser(
        prog="mlci",
        description="Run, watch and roll back machine-learning pipelines.",
        parents=[config],
    )
    parser.add_argument("--version", action="version", version=f"mlci-tui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    commands.add_parser("tui", parents=[config], help="open the dashboard (the default command)")

    run = commands.add_parser(
        "run", parents=[config], help="run the pipeline here, streaming its output"
    )
    run.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this stage and what it needs (repeatable)",
    )
    _params_option(run)
    run.add_argument(
        "--force",
        nargs="?",
        action="append",
        const=ALL_STAGES,
        metavar="STAGE",
        help="run every stage (or this one: repeatable) even if its inputs did not change",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="say which stages would run or be cached, and why; run nothing",
    )
    run.add_argument(
        "--json", action="store_true", help="with --dry-run: print it as JSON, as `mlci why` does"
    )
    run.add_argument(
        "--redeploy",
        action="store_true",
        help="deploy the run's version even when an older version has the same artifact",
    )
    run.add_argument(
        "--junit",
        metavar="PATH",
        help="write the run as JUnit XML (one test case per stage) for a CI system to show",
    )

    why = commands.add_parser(
        "why", parents=[config], help="say whether each stage would run or be cached, and why"
    )
    why.add_argument("stage", metavar="STAGE", nargs="?", help="only this stage")
    _params_option(why)
    why.add_argument("--json", action="store_true", help="print JSON")

    cache = commands.add_parser("cache", parents=[config], help="the cache of stages' outs")
    cache_commands = cache.add_subparsers(
        dest="cache_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    gc = cache_commands.add_parser(
        "gc",
        parents=[config],
        help="remove cache entries that no kept run or version uses, and their files",
    )
    gc.add_argument(
        "--keep-runs",
        type=_count,
        default=10,
        metavar="N",
        help="keep what the newest N runs used (default: 10); the live version's always stays",
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")

    commands.add_parser("validate", parents=[config], help="check the config and show the order")

    dag = commands.add_parser(
        "dag",
        parents=[config],
        help="draw the stages and what each runs after: a name in needs, or a dep over an out",
    )
    dag.add_argument("--json", action="store_true", help="print JSON: stages, and edges with why")

    init = commands.add_parser(
        "init",
        parents=[config],  # refused in `main`, with a line that says why
        help="write a config.toml and the scripts of a typical pipeline; overwrite nothing",
    )
    init.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default=".",
        help="where (default: here; made if missing)",
    )

    commands.add_parser(
        "recover",
        parents=[config],
        help="settle what dead runners left (every other command does it too)",
    )

    status = commands.add_parser("status", parents=[config], help="show the latest run or one")
    status.add_argument("--run", type=_run_id, metavar="ID", help="a run id (default: the latest)")
    status.add_argument("--json", action="store_true", help="print JSON")

    logs = commands.add_parser(
        "logs", parents=[config], help="print a stage's output, or the whole run's"
    )
    logs.add_argument(
        "stage",
        metavar="STAGE",
        nargs="?",
        help="the stage (default: every stage, interleaved as mlci run printed them)",
    )
    logs.add_argument("--run", type=_run_id, metavar="ID", help="a run id (default: the latest)")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing until the stage (or the run) ends",
    )

    metrics = commands.add_parser(
        "metrics", parents=[config], help="a run's metric series, point by point"
    )
    metrics.add_argument("--run", type=_run_id, metavar="ID", help="a run id (default: the latest)")
    metrics.add_argument("--stage", metavar="NAME", help="only this stage's series")
    metrics_format = metrics.add_mutually_exclusive_group()
    metrics_format.add_argument("--json", action="store_true", help="print JSON")
    metrics_format.add_argument("--csv", action="store_true", help="print CSV, one point a row")

    diff = commands.add_parser(
        "diff",
        parents=[config],
        help="compare two runs or versions: params, metrics, gates, stages, artifact",
        description="Compare OLD with NEW: runs (12) or versions (v3). With one argument it"
        " is NEW, and the live version is OLD (`mlci diff v1` shows what going to v1"
        " changes); without either, the latest run is NEW.",
    )
    diff.add_argument("old", nargs="?", metavar="OLD", help="a run (12) or a version (v3)")
    diff.add_argument("new", nargs="?", metavar="NEW", help="a run (12) or a version (v3)")
    diff_format = diff.add_mutually_exclusive_group()
    diff_format.add_argument("--json", action="store_true", help="print JSON")
    diff_format.add_argument("--md", action="store_true", help="print Markdown")

    report = commands.add_parser(
        "report", parents=[config], help="a run's report: stages, metrics against live, version"
    )
    report.add_argument("--run", type=_run_id, metavar="ID", help="a run id (default: the latest)")
    report_format = report.add_mutually_exclusive_group()
    report_format.add_argument("--json", action="store_true", help="print JSON")
    report_format.add_argument(
        "--md", action="store_true", help="print Markdown (as a GitHub job summary shows it)"
    )

    versions = commands.add_parser("versions", parents=[config], help="list model versions")
    versions.add_argument("--json", action="store_true", help="print JSON")
    how_many = versions.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit", type=_count, default=50, metavar="N", help="the newest N (default: 50)"
    )
    how_many.add_argument("--all", action="store_true", help="every version")

    history = commands.add_parser(
        "history", parents=[config], help="the audit trail of deploys and rollbacks"
    )
    history.add_argument("--json", action="store_true", help="print JSON")

    deploy = commands.add_parser("deploy", parents=[config], help="deploy a model version")
    deploy.add_argument("version", type=_version, metavar="VERSION", help="e.g. v3")
    deploy.add_argument("--reason", metavar="TEXT", help="why, for the audit trail")
    deploy.add_argument(
        "--force",
        action="store_true",
        help="deploy even a version that was rolled back or whose deploy failed",
    )
    deploy.add_argument(
        "--no-analysis",
        action="store_true",
        help="skip the post-deploy analysis ([monitor]) that follows a deploy",
    )

    rollback = commands.add_parser(
        "rollback", parents=[config], help="roll production back to an earlier version"
    )
    rollback.add_argument(
        "version",
        type=_version,
        metavar="VERSION",
        nargs="?",
        help="the version to go back to (default: the last one that was live and healthy)",
    )
    rollback.add_argument("--reason", metavar="TEXT", help="why, for the audit trail")

    monitor = commands.add_parser(
        "monitor", parents=[config], help="check the live model continuously"
    )
    monitor.add_argument("--once", action="store_true", help="check once; exit 1 if it fails")

    alerts = commands.add_parser(
        "alerts", parents=[config], help="alerts, and rollbacks waiting for a decision"
    )
    alerts.add_argument("--json", action="store_true", help="print JSON")
    alerts.add_argument(
        "--dismiss", action="store_true", help="dismiss the pending rollback decisions"
    )
    alerts.add_argument(
        "--ack",
        nargs="*",
        type=_row_id("an alert number"),
        metavar="ID",
        help="acknowledge these alerts (all of them, without an ID): the dashboard's alert bar"
        " shows only alerts nobody acknowledged",
    )

    mlflow = commands.add_parser(
        "mlflow", parents=[config], help="the store's mirror in MLflow ([mlflow])"
    )
    mlflow_commands = mlflow.add_subparsers(
        dest="mlflow_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    mlflow_sync = mlflow_commands.add_parser(
        "sync",
        parents=[config],
        help="send MLflow every run, version, deploy and rollback it lacks, and move the alias",
    )
    mlflow_sync.add_argument(
        "--auto",
        action="store_true",
        help="as after a run, deploy or rollback: a failure is also an alert",
    )
    mlflow_status = mlflow_commands.add_parser(
        "status", parents=[config], help="what is mirrored, what is behind, and the last sync"
    )
    mlflow_status.add_argument("--json", action="store_true", help="print JSON")
    return parser


HANDLERS = {
    "tui": "dashboard",
    "run": "pipeline",
    "validate": "pipeline",
    "init": "init",
    "dag": "stage_graph",
    "why": "pipeline",
    "cache": "pipeline",
    "status": "pipeline",
    "recover": "pipeline",
    "logs": "pipeline",
    "metrics": "reports",
    "diff": "reports",
    "report": "reports",
    "versions": "registry",
    "history": "registry",
    "deploy": "registry",
    "rollback": "registry",
    "monitor": "registry",
    "alerts": "registry",
    "mlflow": "mlflow",
}


def entry() -> NoReturn:
    """The `mlci` command: `main`, then an exit that does not tear the interpreter
    down. Freeing every object of every module one by one takes `mlci run` 30 ms
    here, a sixth of its run, for memory the kernel takes back at once anyway.

    It leaves that way only when nothing else could still be running: with a
    thread left (one would be joined), it exits as usual. The atexit handlers run
    (libraries clean up there); open files are flushed by those who own them.
    """
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.command = "tui"
    if args.command == "init" and hasattr(args, "config"):
        # Which config a command reads: init writes config.toml, in DIR.
        parser.error("init writes DIR/config.toml and takes no --config; name DIR: mlci init DIR")
    # Not a default of the option: it may come before or after the command, and a
    # subcommand's default would overwrite one given before it.
    if not hasattr(args, "config"):
        args.config = DEFAULT_CONFIG
    try:
        module = importlib.import_module(f"mlci_tui.commands.{HANDLERS[args.command]}")
        return int(getattr(module, f"command_{args.command}")(args))
    except MlciError as error:
        _print_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        return ExitCode.CANCELLED
    except BrokenPipeError:
        # A reader such as `head` stopped early; that is not an error of ours.
        _silence_stdout()
        return ExitCode.PASSED
    except Exception as error:
        if os.environ.get("MLCI_DEBUG"):
            raise
        from mlci_tui.textsafe import visible_text

        print(
            f"mlci: internal error: {type(error).__name__}: {visible_text(str(error))}"
            " (set MLCI_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return ExitCode.FAILED


def _print_error(error: MlciError) -> None:
    from mlci_tui.errors import ConfigError
    from mlci_tui.textsafe import visible_text

    text = visible_text(str(error))
    print(text if isinstance(error, ConfigError) else f"mlci: {text}", file=sys.stderr)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
