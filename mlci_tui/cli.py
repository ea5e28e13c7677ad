"""The `mlci` command: argument parsing, exit codes, plain and JSON output.

Exit status: 0 passed (or nothing wrong), 1 a stage failed or nothing was
found, 2 a config or usage error, 130 cancelled. Errors are one line on
stderr; a traceback is a bug (set ``MLCI_DEBUG=1`` to see one anyway).
The headless commands never import Textual, so they start fast.

Each command's parser names its handler: ``pipeline.handle_run`` is
`commands.pipeline.handle_run` to a type checker, and here a `_Later` that
imports the module when the handler is called, so that `mlci --help` loads no
command, nor the config or the store.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys

from mlci_tui import __version__
from mlci_tui.errors import ExitCode, MlciError

# Not `typing.TYPE_CHECKING`: importing `typing` costs `mlci --help` 3 ms, and type
# checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from mlci_tui.commands import (
        dashboard,
        exp_results,
        exp_run,
        exp_show,
        init,
        mlflow,
        pipeline,
        registry,
        reports,
        serve,
        stage_graph,
    )

    Handler = Callable[[argparse.Namespace], int]
else:

    class _Later:
        """A module of `commands`: its handlers, each imported when it is called."""

        def __init__(self, name: str) -> None:
            self.module = f"mlci_tui.commands.{name}"

        def __getattr__(self, name: str) -> Handler:
            def handler(args: argparse.Namespace) -> int:
                import importlib

                return getattr(importlib.import_module(self.module), name)(args)

            # Named as the handler it calls, in tracebacks and for the tests.
            handler.__module__, handler.__qualname__ = self.module, name
            return handler

    (
        dashboard,
        exp_results,
        exp_run,
        exp_show,
        init,
        mlflow,
        pipeline,
        registry,
        reports,
        serve,
        stage_graph,
    ) = map(
        _Later,
        (
            "dashboard",
            "exp_results",
            "exp_run",
            "exp_show",
            "init",
            "mlflow",
            "pipeline",
            "registry",
            "reports",
            "serve",
            "stage_graph",
        ),
    )

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
_experiment_id = _row_id("an experiment number")


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
    def error(self, message: str) -> NoReturn:
        """One line instead of argparse's usage block."""
        self.exit(ExitCode.USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


_CONFIG = _Parser(add_help=False)
"""The option every parser takes (`mlci`'s and each command's): it may come
before or after the command."""
_CONFIG.add_argument(
    "--config",
    metavar="PATH",
    default=argparse.SUPPRESS,
    help=f"the pipeline's config file (default: ./{DEFAULT_CONFIG})",
)

_OPTIONS: dict[str, dict[str, Any]] = {
    "--run": {"type": _run_id, "metavar": "ID", "help": "a run id (default: the latest)"},
    "--stage": {"metavar": "NAME"},
    "--set": {
        "action": "append",
        "default": [],
        "metavar": "PARAM=VALUE",
        "help": "use this value of a param in [params] for this run (repeatable)",
    },
    "--dry-run": {"action": "store_true"},
    "--reason": {"metavar": "TEXT", "help": "why, for the audit trail"},
    "--json": {"action": "store_true", "help": "print JSON"},
    "--md": {"action": "store_true", "help": "print Markdown"},
    "--csv": {"action": "store_true", "help": "print CSV, one point a row"},
}
"""The options several commands take, each declared once; a command may say more
(`_option(run, "--json", help=...)`)."""


def _option(parser: argparse._ActionsContainer, flag: str, **changes: Any) -> None:
    parser.add_argument(flag, **{**_OPTIONS[flag], **changes})


class _Commands(argparse._SubParsersAction):
    """A parser's commands. With `named` (the command the arguments name) only that
    command's parser is made: making all of them, argparse looking up translations
    of its words for each, would be a twentieth of `mlci run`'s start."""

    named: str | None = None
    listed = False
    """Only `mlci --help` is asked: each parser is made to be listed, without options."""

    def wanted(self, name: str) -> bool:
        return self.named in (None, name)


def _commands(parser: argparse.ArgumentParser, *, listed: bool, **kwargs: Any) -> _Commands:
    commands = parser.add_subparsers(parser_class=_Parser, action=_Commands, **kwargs)
    assert isinstance(commands, _Commands)
    commands.listed = listed
    return commands


def _group(commands: _Commands, name: str, help: str) -> _Commands:
    """A command of commands (``mlci exp run``): the commands of its parser."""
    parser = commands.add_parser(name, parents=[_CONFIG], help=help)
    actions = _commands(parser, listed=commands.listed, metavar="ACTION", required=True)
    if commands.listed:
        actions.named = ""  # `mlci --help` lists the group, not its commands: none is made
    return actions


def _command(
    commands: _Commands, name: str, handler: Handler, *options: str, **kwargs: Any
) -> _Parser | None:
    """A command's parser: it names the function that runs the command, and takes
    these `_OPTIONS` first. None when the arguments name another command, or only
    `mlci --help` is asked."""
    if not commands.wanted(name):
        return None
    parser: _Parser = commands.add_parser(name, parents=[_CONFIG], **kwargs)
    parser.set_defaults(handler=handler)
    if commands.listed:
        return None
    for flag in options:
        _option(parser, flag)
    return parser


def build_parser(command: str | None = None, *, listed: bool = False) -> argparse.ArgumentParser:
    """`mlci`'s parser; with ``command``, one that knows only that command (all of
    them when there is none such, for the error to list them); ``listed``, one that
    only lists the commands, for `mlci --help`."""
    parser = _Parser(
        prog="mlci",
        parents=[_CONFIG],
        description="Run, watch and roll back machine-learning pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"mlci-tui {__version__}")
    commands = _commands(parser, listed=listed, dest="command", metavar="COMMAND")
    commands.named = command
    # In the order `mlci --help` lists them.
    if tui := _command(
        commands, "tui", dashboard.handle_tui, help="open the dashboard (the default command)"
    ):
        tui.add_argument(
            "--read-only",
            action="store_true",
            help="offer nothing that acts: no run, cancel, rollback, promotion, answer or"
            " acknowledgement",
        )
    _pipeline_commands(commands)
    _results_commands(commands)
    _registry_commands(commands)
    _experiment_commands(commands)
    _mlflow_commands(commands)
    _serve_command(commands)
    if command is not None and command not in commands.choices:
        return build_parser()
    return parser


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of these arguments: the parser of the command they name alone, or
    for `mlci --help` one that lists the commands."""
    return build_parser(_named_command(argv), listed=list(argv[:1]) in (["-h"], ["--help"]))


def _named_command(argv: Sequence[str]) -> str | None:
    """The command the arguments name, where it is sure: the first word that is no
    option nor `--config`'s value; None after any other option (``--help``)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("--config="):
            return None if word.startswith("-") else word
    return None


def _pipeline_commands(commands: _Commands) -> None:
    """Running the pipeline, and the project it lives in."""
    if run := _command(
        commands, "run", pipeline.handle_run, help="run the pipeline here, streaming its output"
    ):
        _option(
            run,
            "--stage",
            action="append",
            default=[],
            help="run only this stage and what it needs (repeatable)",
        )
        _option(run, "--set")
        run.add_argument(
            "--force",
            nargs="?",
            action="append",
            const=ALL_STAGES,
            metavar="STAGE",
            help="run every stage (or this one: repeatable) even if its inputs did not change",
        )
        _option(
            run, "--dry-run", help="say which stages would run or be cached, and why; run nothing"
        )
        _option(run, "--json", help="with --dry-run: print it as JSON, as `mlci why` does")
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

    if why := _command(
        commands,
        "why",
        pipeline.handle_why,
        "--set",
        "--json",
        help="say whether each stage would run or be cached, and why",
    ):
        why.add_argument("stage", metavar="STAGE", nargs="?", help="only this stage")

    if commands.wanted("cache") and (
        gc := _command(
            _group(commands, "cache", "the cache of stages' outs"),
            "gc",
            pipeline.handle_cache_gc,
            help="remove cache entries that no kept run or version uses, and their files",
        )
    ):
        gc.add_argument(
            "--keep-runs",
            type=_count,
            default=10,
            metavar="N",
            help="keep what the newest N runs used (default: 10); the live version's always stays",
        )
        _option(gc, "--dry-run", help="say what would go; remove nothing")

    _command(
        commands,
        "validate",
        pipeline.handle_validate,
        help="check the config and show the order",
    )

    if dag := _command(
        commands,
        "dag",
        stage_graph.handle_dag,
        help="draw the stages and what each runs after: a name in needs, or a dep over an out",
    ):
        _option(dag, "--json", help="print JSON: stages, and edges with why")

    if init_parser := _command(
        commands,
        "init",
        init.handle_init,
        help="write a config.toml and the scripts of a typical pipeline; overwrite nothing",
    ):
        init_parser.add_argument(
            "directory",
            metavar="DIR",
            nargs="?",
            default=".",
            help="where (default: here; made if missing)",
        )

    _command(
        commands,
        "recover",
        pipeline.handle_recover,
        help="settle what dead runners left (every other command does it too)",
    )


def _results_commands(commands: _Commands) -> None:
    """What runs left: their state, logs and metrics, and comparisons of them."""
    _command(
        commands,
        "status",
        pipeline.handle_status,
        "--run",
        "--json",
        help="show the latest run or one",
    )

    if logs := _command(
        commands,
        "logs",
        pipeline.handle_logs,
        "--run",
        help="print a stage's output, or the whole run's",
    ):
        logs.add_argument(
            "stage",
            metavar="STAGE",
            nargs="?",
            help="the stage (default: every stage, interleaved as mlci run printed them)",
        )
        logs.add_argument(
            "-f",
            "--follow",
            action="store_true",
            help="keep printing until the stage (or the run) ends",
        )

    if metrics := _command(
        commands,
        "metrics",
        reports.handle_metrics,
        "--run",
        help="a run's metric series, point by point",
    ):
        _option(metrics, "--stage", help="only this stage's series")
        metrics_format = metrics.add_mutually_exclusive_group()
        _option(metrics_format, "--json")
        _option(metrics_format, "--csv")

    if diff := _command(
        commands,
        "diff",
        reports.handle_diff,
        help="compare two runs or versions: params, metrics, gates, stages, artifact",
        description="Compare OLD with NEW: runs (12) or versions (v3). With one argument it"
        " is NEW, and the live version is OLD (`mlci diff v1` shows what going to v1"
        " changes); without either, the latest run is NEW.",
    ):
        diff.add_argument("old", nargs="?", metavar="OLD", help="a run (12) or a version (v3)")
        diff.add_argument("new", nargs="?", metavar="NEW", help="a run (12) or a version (v3)")
        diff_format = diff.add_mutually_exclusive_group()
        _option(diff_format, "--json")
        _option(diff_format, "--md")

    if report := _command(
        commands,
        "report",
        reports.handle_report,
        "--run",
        help="a run's report: stages, metrics against live, version",
    ):
        report_format = report.add_mutually_exclusive_group()
        _option(report_format, "--json")
        _option(report_format, "--md", help="print Markdown (as a GitHub job summary shows it)")


def _registry_commands(commands: _Commands) -> None:
    """Model versions: deploys, rollbacks, and the watch over the live one."""
    if versions := _command(
        commands, "versions", registry.handle_versions, "--json", help="list model versions"
    ):
        how_many = versions.add_mutually_exclusive_group()
        how_many.add_argument(
            "--limit", type=_count, default=50, metavar="N", help="the newest N (default: 50)"
        )
        how_many.add_argument("--all", action="store_true", help="every version")

    _command(
        commands,
        "history",
        registry.handle_history,
        "--json",
        help="the audit trail of deploys and rollbacks",
    )

    if deploy := _command(
        commands, "deploy", registry.handle_deploy, "--reason", help="deploy a model version"
    ):
        deploy.add_argument("version", type=_version, metavar="VERSION", help="e.g. v3")
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

    if rollback := _command(
        commands,
        "rollback",
        registry.handle_rollback,
        "--reason",
        help="roll production back to an earlier version",
    ):
        rollback.add_argument(
            "version",
            type=_version,
            metavar="VERSION",
            nargs="?",
            help="the version to go back to (default: the last one that was live and healthy)",
        )

    if monitor := _command(
        commands, "monitor", registry.handle_monitor, help="check the live model continuously"
    ):
        monitor.add_argument("--once", action="store_true", help="check once; exit 1 if it fails")

    if alerts := _command(
        commands,
        "alerts",
        registry.handle_alerts,
        "--json",
        help="alerts, and rollbacks waiting for a decision",
    ):
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


def _experiment_commands(commands: _Commands) -> None:
    """Experiments: runs of the pipeline's stages with other params, each in a
    workspace of its own."""
    if not commands.wanted("exp"):
        return
    actions = _group(commands, "exp", "experiments: sweep params, compare, promote the best")
    if run := _command(
        actions,
        "run",
        exp_run.handle_exp_run,
        help="run an experiment for every combination of the params' values",
    ):
        _option(
            run,
            "--set",
            metavar="PARAM=V1,V2,…",
            help="the values of a param to try, comma-separated (repeatable: every combination)",
        )
        run.add_argument("--name", metavar="NAME", help="what to call them (numbered when several)")
        run.add_argument(
            "-j", "--jobs", type=_count, metavar="N", help="run N at once (default: the CPUs)"
        )
        run.add_argument(
            "--queue", action="store_true", help="add them to the queue; `mlci exp start` runs it"
        )
        run.add_argument(
            "--keep", action="store_true", help="keep each workspace when it ends (to debug it)"
        )
        run.add_argument(
            "--yes", action="store_true", help="run a grid of more than 100 experiments"
        )
        _option(run, "--md", help="print the summary as Markdown (a PR comment, a job summary)")
    if start := _command(
        actions, "start", exp_run.handle_exp_start, help="run the queued experiments"
    ):
        start.add_argument(
            "-j", "--jobs", type=_count, metavar="N", help="run N at once (default: the CPUs)"
        )
        start.add_argument(
            "--detach",
            action="store_true",
            help="run them in the background, outliving this terminal",
        )
    if cancel := _command(
        actions,
        "cancel",
        exp_run.handle_exp_cancel,
        help="cancel queued and running experiments",
    ):
        cancel.add_argument(
            "ids", metavar="ID", type=_experiment_id, nargs="*", help="which (default: all)"
        )
    if work := _command(
        actions, "work", exp_run.handle_exp_work, help="(internal) run one experiment"
    ):
        work.add_argument("id", metavar="ID", type=_experiment_id)
        work.add_argument("--output-lock", metavar="PATH")
    if show := _command(
        actions,
        "show",
        exp_show.handle_exp_show,
        "--json",
        "--md",
        help="every experiment: its params, metrics and state, the best marked",
    ):
        show.add_argument(
            "--sort", metavar="METRIC", help="sort by this column, best first (a param, a metric)"
        )
        show.add_argument(
            "--filter",
            metavar="EXPR",
            help="only rows where EXPR holds, like 'evaluate.accuracy>=0.9' or 'state=passed'",
        )
        show.add_argument("--runs", action="store_true", help="the workspace's runs too")
        _option(show, "--csv", help="print CSV, one experiment a row")
    if diff := _command(
        actions,
        "diff",
        exp_show.handle_exp_diff,
        "--json",
        "--md",
        help="what two experiments differ in: params, metrics, stages",
    ):
        diff.add_argument("first", metavar="A", type=_experiment_id)
        diff.add_argument("second", metavar="B", type=_experiment_id)
    if remove := _command(
        actions,
        "remove",
        exp_show.handle_exp_remove,
        help="forget experiments: their rows, runs, logs and workspaces",
    ):
        remove.add_argument("ids", metavar="ID", type=_experiment_id, nargs="+")
    if apply := _command(
        actions,
        "apply",
        exp_results.handle_exp_apply,
        help="bring an experiment's outs and params into the workspace",
    ):
        apply.add_argument("id", metavar="ID", type=_experiment_id)
        apply.add_argument(
            "--yes", action="store_true", help="overwrite changed files without asking"
        )
    if promote := _command(
        actions,
        "promote",
        exp_results.handle_exp_promote,
        "--reason",
        help="register an experiment's artifact as a version and deploy it",
    ):
        promote.add_argument("id", metavar="ID", type=_experiment_id)


def _mlflow_commands(commands: _Commands) -> None:
    """The store's mirror in MLflow."""
    if not commands.wanted("mlflow"):
        return
    actions = _group(commands, "mlflow", "the store's mirror in MLflow ([mlflow])")
    if sync := _command(
        actions,
        "sync",
        mlflow.handle_mlflow_sync,
        help="send MLflow every run, version, deploy and rollback it lacks, and move the alias",
    ):
        sync.add_argument(
            "--auto",
            action="store_true",
            help="as after a run, deploy or rollback: a failure is also an alert",
        )
    _command(
        actions,
        "status",
        mlflow.handle_mlflow_status,
        "--json",
        help="what is mirrored, what is behind, and the last sync",
    )


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) < 65536):
        raise argparse.ArgumentTypeError(
            f"expected a port number (0 for any free one), got {text!r}"
        )
    return int(text)


def _serve_command(commands: _Commands) -> None:
    """The dashboard in a browser."""
    if not (
        parser := _command(
            commands,
            "serve",
            serve.handle_serve,
            help="the dashboard in a browser, behind a token (the serve extra)",
        )
    ):
        return
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=8765, help="the port to listen on (default: 8765)"
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use, behind a reverse proxy (https://ml.example.com)",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="dashboards without any key that acts"
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the token from PATH (mode 600) rather than make one",
    )
    parser.add_argument(
        "--max-sessions",
        type=_count,
        default=8,
        metavar="N",
        help="dashboards at once; more tabs are refused (default: 8)",
    )
    parser.add_argument(
        "--idle-timeout",
        default="1h",
        metavar="DURATION",
        help="end a dashboard after this long without a key or a click; 0: never (default: 1h)",
    )


def entry() -> NoReturn:
    """The `mlci` command: `main`, then an exit that does not tear the interpreter
    down. Freeing every object of every module one by one takes `mlci run` 30 ms
    here, a sixth of its run, for memory the kernel takes back at once anyway.

    It leaves that way only when nothing else could still be running: with a
    thread left (one would be joined), it exits as usual. The atexit handlers run
    (libraries clean up there); open files are flushed by those who own them.
    """
    code = main()
    # A command that started a thread imported `threading`; one that did not (`mlci
    # --help`, `validate`) does not pay for importing it here.
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = parser_for(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command == "init" and hasattr(args, "config"):
        # Which config a command reads: init writes config.toml, in DIR.
        parser.error("init writes DIR/config.toml and takes no --config; name DIR: mlci init DIR")
    # Not a default of the option: it may come before or after the command, and a
    # subcommand's default would overwrite one given before it.
    if not hasattr(args, "config"):
        args.config = DEFAULT_CONFIG
    # No command opens the dashboard.
    handler: Handler = dashboard.handle_tui if args.command is None else args.handler
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
