"""The `mlci` command: argument parsing, exit codes, plain and JSON output.

Exit status: 0 passed (or nothing wrong), 1 a stage failed or nothing was
found, 2 a config or usage error, 130 cancelled. Errors are one line on
stderr; a traceback is a bug (set ``MLCI_DEBUG=1`` to see one anyway).
The headless commands never import Textual, so they start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mlci_tui import __version__
from mlci_tui.errors import MlciError, UsageError

if TYPE_CHECKING:
    from mlci_tui.store import RunRecord, Store

DEFAULT_CONFIG = "config.toml"


class NotFound(MlciError):
    """What was asked for does not exist (yet): no runs, no such run."""

    exit_code = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line instead of argparse's usage block."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    config = argparse.ArgumentParser(add_help=False)
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

    commands.add_parser("validate", parents=[config], help="check the config and show the order")

    status = commands.add_parser("status", parents=[config], help="show the latest run or one")
    status.add_argument("--run", type=int, metavar="ID", help="a run id (default: the latest)")
    status.add_argument("--json", action="store_true", help="print JSON")

    logs = commands.add_parser("logs", parents=[config], help="print a stage's output")
    logs.add_argument("stage", metavar="STAGE")
    logs.add_argument("--run", type=int, metavar="ID", help="a run id (default: the latest)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the stage ends"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = {
        "run": command_run,
        "validate": command_validate,
        "status": command_status,
        "logs": command_logs,
    }[args.command]
    try:
        return handler(args)
    except MlciError as error:
        _print_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # A reader such as `head` stopped early; that is not an error of ours.
        _silence_stdout()
        return 0
    except Exception as error:
        if os.environ.get("MLCI_DEBUG"):
            raise
        print(
            f"mlci: internal error: {type(error).__name__}: {error}"
            " (set MLCI_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


def _print_error(error: MlciError) -> None:
    from mlci_tui.errors import ConfigError
    from mlci_tui.textsafe import terminal_line

    text = terminal_line(str(error), keep_color=False)
    print(text if isinstance(error, ConfigError) else f"mlci: {text}", file=sys.stderr)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _config_path(args: argparse.Namespace) -> str:
    return getattr(args, "config", DEFAULT_CONFIG)


# Commands -------------------------------------------------------------------


def command_validate(args: argparse.Namespace) -> int:
    from mlci_tui.config import load_config

    config = load_config(_config_path(args))
    count = len(config.stages)
    print(
        f"{_config_path(args)} is valid: pipeline {config.pipeline.name},"
        f" {count} stage{'s' * (count != 1)}"
    )
    width = max(len(name) for name in config.stages)
    for index, (name, stage) in enumerate(config.stages.items(), start=1):
        parts = [f"{index:>3}. {name.ljust(width)}"]
        if stage.needs:
            parts.append(f"needs {', '.join(stage.needs)}")
        if stage.gates:
            parts.append(f"gates {', '.join(str(g) for g in stage.gates)}")
        if stage.artifact:
            parts.append(f"artifact {_relative(stage.artifact)}")
        print("  ".join(parts).rstrip())
    return 0


def command_run(args: argparse.Namespace) -> int:
    from mlci_tui.config import load_config
    from mlci_tui.console import LivePrinter, run_summary, use_color
    from mlci_tui.pipeline.runner import Runner
    from mlci_tui.store import Store

    config = load_config(_config_path(args))
    for name in args.stage:
        if name not in config.stages:
            raise UsageError(f"--stage {name}: no such stage (stages: {', '.join(config.stages)})")
    runner = Runner(config, targets=args.stage)
    out = sys.stdout.buffer
    color = use_color(out, os.environ)
    printer = LivePrinter(
        out,
        runner.engine.names,
        terminal=out.isatty(),
        color=color,
        github=os.environ.get("GITHUB_ACTIONS") == "true",
        log_path=lambda stage: runner.store.log_path(runner.run_id, stage),
    )
    runner.subscribe(printer)
    result = runner.run()
    with Store.open(config.pipeline.state_dir, create=False) as store:
        run = store.run(runner.run_id)
    if run is not None and not printer.broken:
        lines = ["", *run_summary(run, color=color)]
        lines.append(f"logs: {_relative(store.run_dir(run.id))}")
        with contextlib.suppress(OSError):
            print("\n".join(lines), flush=True)
    return result.exit_code


def command_status(args: argparse.Namespace) -> int:
    from mlci_tui.console import run_summary, use_color

    with _open_store(args) as store:
        run = _find_run(store, args.run)
    if args.json:
        print(json.dumps(run.to_json(), indent=2))
        return 0
    print("\n".join(run_summary(run, color=use_color(sys.stdout.buffer, os.environ))))
    return 0


def command_logs(args: argparse.Namespace) -> int:
    from mlci_tui import textsafe
    from mlci_tui.store.logs import LogCursor, output_bytes

    with _open_store(args) as store:
        run = _find_run(store, args.run)
        stage = run.stage(args.stage)
        if stage is None:
            names = ", ".join(s.name for s in run.stages)
            raise UsageError(f"run {run.id} has no stage {args.stage!r} (stages: {names})")
        cursor = LogCursor(store.log_path(run.id, stage.name))
        out = sys.stdout.buffer
        terminal = out.isatty()
        color = terminal and not os.environ.get("NO_COLOR")

        def emit() -> None:
            for chunk in output_bytes(cursor.read()):
                if terminal:
                    text = textsafe.terminal_line(textsafe.decode(chunk), keep_color=color)
                    chunk = text.encode() + (b"\n" if chunk.endswith(b"\n") else b"")
                out.write(chunk)
            out.flush()

        emit()
        if not args.follow:
            return 0
        while True:
            current = store.run(run.id)
            assert current is not None
            stage = current.stage(args.stage)
            ended = stage is None or stage.state.finished or current.state.finished
            if not ended and _runner_gone(current):
                # The runner died while we watched: record it, then show what it left.
                from mlci_tui.store.recovery import recover_interrupted

                recover_interrupted(store)
                ended = True
            emit()
            if ended:
                return 0
            time.sleep(0.2)


# Helpers --------------------------------------------------------------------


def _open_store(args: argparse.Namespace) -> Store:
    from mlci_tui.config import load_config
    from mlci_tui.errors import StoreError
    from mlci_tui.store import open_store

    config = load_config(_config_path(args))
    try:
        return open_store(config.pipeline.state_dir, create=False)
    except StoreError as error:
        if not (config.pipeline.state_dir / "mlci.db").exists():
            raise NotFound(
                f"no runs yet in {_relative(config.pipeline.state_dir)} (start one with `mlci run`)"
            ) from None
        raise error from None


def _find_run(store: Store, run_id: int | None) -> RunRecord:
    run = store.latest_run() if run_id is None else store.run(run_id)
    if run is None:
        raise NotFound("no runs yet" if run_id is None else f"no run {run_id}")
    return run


def _runner_gone(run: RunRecord) -> bool:
    import socket

    from mlci_tui.procs import is_alive

    if run.state.finished or run.host != socket.gethostname() or run.pid is None:
        return False
    return not is_alive(run.pid, run.pid_started)


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
