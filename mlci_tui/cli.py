"""The `mlci` command: argument parsing, exit codes, plain and JSON output.

Exit status: 0 passed (or nothing wrong), 1 a stage failed or nothing was
found, 2 a config or usage error, 130 cancelled. Errors are one line on
stderr; a traceback is a bug (set ``MLCI_DEBUG=1`` to see one anyway).
The headless commands never import Textual, so they start fast.

Each command's parser names its handler (``set_defaults(handler=...)``): a small
function here that imports the command's module only when the command runs, so
that `mlci --help` loads no command, nor the config schema or the store.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading

from mlci_tui import __version__
from mlci_tui.errors import ExitCode, MlciError

# Not `typing.TYPE_CHECKING`: importing `typing` costs `mlci --help` 3 ms, and type
# checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from argparse import _ActionsContainer as Options
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    Commands = argparse._SubParsersAction["_Parser"]
    Handler = Callable[[argparse.Namespace], int]

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


class _Parser(argparse.ArgumentParser):
    """A parser of mlci's, the top one and every command's: each takes ``--config``,
    so that it may come before or after the command."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_argument(
            "--config",
            metavar="PATH",
            default=argparse.SUPPRESS,
            help=f"the pipeline's config file (default: ./{DEFAULT_CONFIG})",
        )

    def error(self, message: str) -> NoReturn:
        """One line instead of argparse's usage block."""
        self.exit(ExitCode.USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


# The options several commands share, each declared here once with its help.


def _run_option(parser: Options) -> None:
    parser.add_argument("--run", type=_run_id, metavar="ID", help="a run id (default: the latest)")


def _stage_option(parser: Options, help: str, *, repeatable: bool = False) -> None:
    if repeatable:
        parser.add_argument("--stage", action="append", default=[], metavar="NAME", help=help)
    else:
        parser.add_argument("--stage", metavar="NAME", help=help)


def _params_option(parser: Options) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PARAM=VALUE",
        help="use this value of a param in [params] for this run (repeatable)",
    )


def _dry_run_option(parser: Options, help: str) -> None:
    parser.add_argument("--dry-run", action="store_true", help=help)


def _reason_option(parser: Options) -> None:
    parser.add_argument("--reason", metavar="TEXT", help="why, for the audit trail")


def _json_option(parser: Options, help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def _md_option(parser: Options, help: str = "print Markdown") -> None:
    parser.add_argument("--md", action="store_true", help=help)


def _csv_option(parser: Options) -> None:
    parser.add_argument("--csv", action="store_true", help="print CSV, one point a row")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlci", description="Run, watch and roll back machine-learning pipelines."
    )
    parser.add_argument("--version", action="version", version=f"mlci-tui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # In the order `mlci --help` lists them.
    _dashboard_command(commands)
    _pipeline_commands(commands)
    _results_commands(commands)
    _registry_commands(commands)
    _mlflow_commands(commands)
    return parser


def _dashboard_command(commands: Commands) -> None:
    tui = commands.add_parser("tui", help="open the dashboard (the default command)")
    tui.set_defaults(handler=_mlci_tui)


def _mlci_tui(args: argparse.Namespace) -> int:
    from mlci_tui.commands.dashboard import handle_tui

    return handle_tui(args)


def _pipeline_commands(commands: Commands) -> None:
    """Running the pipeline, and the project it lives in."""
    run = commands.add_parser("run", help="run the pipeline here, streaming its output")
    run.set_defaults(handler=_mlci_run)
    _stage_option(run, "run only this stage and what it needs (repeatable)", repeatable=True)
    _params_option(run)
    run.add_argument(
        "--force",
        nargs="?",
        action="append",
        const=ALL_STAGES,
        metavar="STAGE",
        help="run every stage (or this one: repeatable) even if its inputs did not change",
    )
    _dry_run_option(run, "say which stages would run or be cached, and why; run nothing")
    _json_option(run, "with --dry-run: print it as JSON, as `mlci why` does")
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

    why = commands.add_parser("why", help="say whether each stage would run or be cached, and why")
    why.set_defaults(handler=_mlci_why)
    why.add_argument("stage", metavar="STAGE", nargs="?", help="only this stage")
    _params_option(why)
    _json_option(why)

    cache = commands.add_parser("cache", help="the cache of stages' outs")
    cache_actions = cache.add_subparsers(metavar="ACTION", required=True, parser_class=_Parser)
    gc = cache_actions.add_parser(
        "gc", help="remove cache entries that no kept run or version uses, and their files"
    )
    gc.set_defaults(handler=_mlci_cache_gc)
    gc.add_argument(
        "--keep-runs",
        type=_count,
        default=10,
        metavar="N",
        help="keep what the newest N runs used (default: 10); the live version's always stays",
    )
    _dry_run_option(gc, "say what would go; remove nothing")

    validate = commands.add_parser("validate", help="check the config and show the order")
    validate.set_defaults(handler=_mlci_validate)

    dag = commands.add_parser(
        "dag",
        help="draw the stages and what each runs after: a name in needs, or a dep over an out",
    )
    dag.set_defaults(handler=_mlci_dag)
    _json_option(dag, "print JSON: stages, and edges with why")

    init = commands.add_parser(
        "init", help="write a config.toml and the scripts of a typical pipeline; overwrite nothing"
    )
    init.set_defaults(handler=_mlci_init)
    init.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default=".",
        help="where (default: here; made if missing)",
    )

    recover = commands.add_parser(
        "recover", help="settle what dead runners left (every other command does it too)"
    )
    recover.set_defaults(handler=_mlci_recover)


def _mlci_run(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_run

    return handle_run(args)


def _mlci_why(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_why

    return handle_why(args)


def _mlci_cache_gc(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_cache_gc

    return handle_cache_gc(args)


def _mlci_validate(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_validate

    return handle_validate(args)


def _mlci_dag(args: argparse.Namespace) -> int:
    from mlci_tui.commands.stage_graph import handle_dag

    return handle_dag(args)


def _mlci_init(args: argparse.Namespace) -> int:
    from mlci_tui.commands.init import handle_init

    return handle_init(args)


def _mlci_recover(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_recover

    return handle_recover(args)


def _results_commands(commands: Commands) -> None:
    """What runs left: their state, logs and metrics, and comparisons of them."""
    status = commands.add_parser("status", help="show the latest run or one")
    status.set_defaults(handler=_mlci_status)
    _run_option(status)
    _json_option(status)

    logs = commands.add_parser("logs", help="print a stage's output, or the whole run's")
    logs.set_defaults(handler=_mlci_logs)
    logs.add_argument(
        "stage",
        metavar="STAGE",
        nargs="?",
        help="the stage (default: every stage, interleaved as mlci run printed them)",
    )
    _run_option(logs)
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing until the stage (or the run) ends",
    )

    metrics = commands.add_parser("metrics", help="a run's metric series, point by point")
    metrics.set_defaults(handler=_mlci_metrics)
    _run_option(metrics)
    _stage_option(metrics, "only this stage's series")
    metrics_format = metrics.add_mutually_exclusive_group()
    _json_option(metrics_format)
    _csv_option(metrics_format)

    diff = commands.add_parser(
        "diff",
        help="compare two runs or versions: params, metrics, gates, stages, artifact",
        description="Compare OLD with NEW: runs (12) or versions (v3). With one argument it"
        " is NEW, and the live version is OLD (`mlci diff v1` shows what going to v1"
        " changes); without either, the latest run is NEW.",
    )
    diff.set_defaults(handler=_mlci_diff)
    diff.add_argument("old", nargs="?", metavar="OLD", help="a run (12) or a version (v3)")
    diff.add_argument("new", nargs="?", metavar="NEW", help="a run (12) or a version (v3)")
    diff_format = diff.add_mutually_exclusive_group()
    _json_option(diff_format)
    _md_option(diff_format)

    report = commands.add_parser(
        "report", help="a run's report: stages, metrics against live, version"
    )
    report.set_defaults(handler=_mlci_report)
    _run_option(report)
    report_format = report.add_mutually_exclusive_group()
    _json_option(report_format)
    _md_option(report_format, "print Markdown (as a GitHub job summary shows it)")


def _mlci_status(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_status

    return handle_status(args)


def _mlci_logs(args: argparse.Namespace) -> int:
    from mlci_tui.commands.pipeline import handle_logs

    return handle_logs(args)


def _mlci_metrics(args: argparse.Namespace) -> int:
    from mlci_tui.commands.reports import handle_metrics

    return handle_metrics(args)


def _mlci_diff(args: argparse.Namespace) -> int:
    from mlci_tui.commands.reports import handle_diff

    return handle_diff(args)


def _mlci_report(args: argparse.Namespace) -> int:
    from mlci_tui.commands.reports import handle_report

    return handle_report(args)


def _registry_commands(commands: Commands) -> None:
    """Model versions: what is live, deploys, rollbacks and the watch over them."""
    versions = commands.add_parser("versions", help="list model versions")
    versions.set_defaults(handler=_mlci_versions)
    _json_option(versions)
    how_many = versions.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit", type=_count, default=50, metavar="N", help="the newest N (default: 50)"
    )
    how_many.add_argument("--all", action="store_true", help="every version")

    history = commands.add_parser("history", help="the audit trail of deploys and rollbacks")
    history.set_defaults(handler=_mlci_history)
    _json_option(history)

    deploy = commands.add_parser("deploy", help="deploy a model version")
    deploy.set_defaults(handler=_mlci_deploy)
    deploy.add_argument("version", type=_version, metavar="VERSION", help="e.g. v3")
    _reason_option(deploy)
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

    rollback = commands.add_parser("rollback", help="roll production back to an earlier version")
    rollback.set_defaults(handler=_mlci_rollback)
    rollback.add_argument(
        "version",
        type=_version,
        metavar="VERSION",
        nargs="?",
        help="the version to go back to (default: the last one that was live and healthy)",
    )
    _reason_option(rollback)

    monitor = commands.add_parser("monitor", help="check the live model continuously")
    monitor.set_defaults(handler=_mlci_monitor)
    monitor.add_argument("--once", action="store_true", help="check once; exit 1 if it fails")

    alerts = commands.add_parser("alerts", help="alerts, and rollbacks waiting for a decision")
    alerts.set_defaults(handler=_mlci_alerts)
    _json_option(alerts)
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


def _mlci_versions(args: argparse.Namespace) -> int:
    from mlci_tui.commands.registry import handle_versions

    return handle_versions(args)


def _mlci_history(args: argparse.Namespace) -> int:
    from mlci_tui.commands.registry import handle_history

    return handle_history(args)


def _mlci_deploy(args: argparse.Namespace) -> int:
    from mlci_tui.commands.registry import handle_deploy

    return handle_deploy(args)


def _mlci_rollback(args: argparse.Namespace) -> int:
    from mlci_tui.commands.registry import handle_rollback

    return handle_rollback(args)


def _mlci_monitor(args: argparse.Namespace) -> int:
    from mlci_tui.commands.registry import handle_monitor

    return handle_monitor(args)


def _mlci_alerts(args: argparse.Namespace) -> int:
    from mlci_tui.commands.registry import handle_alerts

    return handle_alerts(args)


def _mlflow_commands(commands: Commands) -> None:
    """The store's mirror in MLflow."""
    mlflow = commands.add_parser("mlflow", help="the store's mirror in MLflow ([mlflow])")
    mlflow_actions = mlflow.add_subparsers(metavar="ACTION", required=True, parser_class=_Parser)
    sync = mlflow_actions.add_parser(
        "sync",
        help="send MLflow every run, version, deploy and rollback it lacks, and move the alias",
    )
    sync.set_defaults(handler=_mlci_mlflow_sync)
    sync.add_argument(
        "--auto",
        action="store_true",
        help="as after a run, deploy or rollback: a failure is also an alert",
    )
    status = mlflow_actions.add_parser(
        "status", help="what is mirrored, what is behind, and the last sync"
    )
    status.set_defaults(handler=_mlci_mlflow_status)
    _json_option(status)


def _mlci_mlflow_sync(args: argparse.Namespace) -> int:
    from mlci_tui.commands.mlflow import handle_mlflow_sync

    return handle_mlflow_sync(args)


def _mlci_mlflow_status(args: argparse.Namespace) -> int:
    from mlci_tui.commands.mlflow import handle_mlflow_status

    return handle_mlflow_status(args)


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
    if args.command == "init" and hasattr(args, "config"):
        # Which config a command reads: init writes config.toml, in DIR.
        parser.error("init writes DIR/config.toml and takes no --config; name DIR: mlci init DIR")
    # Not a default of the option: it may come before or after the command, and a
    # subcommand's default would overwrite one given before it.
    if not hasattr(args, "config"):
        args.config = DEFAULT_CONFIG
    # No command opens the dashboard.
    handler: Handler = _mlci_tui if args.command is None else args.handler
    try:
        return handler(args)
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
