"""`mlci run`, `validate`, `status` and `logs`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from mlci_tui.commands.common import find_run, load, open_store, relative
from mlci_tui.errors import ExitCode, NotFound, StoreError, UsageError
from mlci_tui.states import DeployOutcome, RunState


def command_validate(args: argparse.Namespace) -> int:
    config = load(args)
    count = len(config.stages)
    print(
        f"{relative(config.path)} is valid: pipeline {config.pipeline.name},"
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
            parts.append(f"artifact {relative(stage.artifact)}")
        if stage.executor != "local":
            parts.append(f"on {stage.executor}")
        print("  ".join(parts).rstrip())
    if config.deploy is not None:
        extra = ["deploy"] + (["monitor"] if config.monitor else [])
        print(f"     then, when every stage passed: {' → '.join(extra)}")
    return 0


def command_run(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import run_summary, use_color
    from mlci_tui.commands.live_printer import BackgroundWriter, LivePrinter
    from mlci_tui.service.runner import Runner

    config = load(args)
    for name in args.stage:
        if name not in config.stages:
            raise UsageError(f"--stage {name}: no such stage{_hint(name, list(config.stages))}")
    runner = Runner(config, targets=args.stage)
    out = sys.stdout.buffer
    color = use_color(out, os.environ)
    printer = LivePrinter(
        BackgroundWriter(out),
        runner.engine.names,
        terminal=out.isatty(),
        color=color,
        github=os.environ.get("GITHUB_ACTIONS") == "true",
        log_path=lambda stage: runner.store.log_path(runner.run_id, stage),
    )
    runner.subscribe(printer)
    try:
        result = runner.run()
    finally:
        printer.close()
    run = runner.record
    if run is not None and not printer.broken:
        lines = ["", *run_summary(run, color=color)]
        if runner.version is not None:
            lines.append(runner.version_summary())
        lines.append(f"logs: {relative(runner.store.run_dir(run.id))}")
        with contextlib.suppress(OSError):
            print("\n".join(lines), flush=True)
    return result.exit_code


def command_status(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import run_summary, use_color

    with open_store(load(args)) as store:
        run = find_run(store, args.run)
        last = store.last_deployment()
    if last is not None and last.outcome is DeployOutcome.POINTER_FAILED:
        # Where production is, the store cannot say: the one thing to fix first.
        print(f"mlci: warning: deployment {last.id}: {last.message}", file=sys.stderr)
    if args.json:
        import json  # only here: `mlci validate` and `mlci run` never need it

        print(json.dumps(run.to_json(), indent=2))
    else:
        print("\n".join(run_summary(run, color=use_color(sys.stdout.buffer, os.environ))))
    # As `mlci run` would have exited: a script can ask whether the last run passed.
    running_or_passed = (RunState.RUNNING, RunState.PASSED)
    return ExitCode.PASSED if run.state in running_or_passed else ExitCode.FAILED


def command_logs(args: argparse.Namespace) -> int:
    from mlci_tui import textsafe
    from mlci_tui.service.recovery import recover, runner_gone
    from mlci_tui.store.logs import LogCursor, output_bytes

    config = load(args)
    with open_store(config) as store:
        run = find_run(store, args.run)
        stage = run.stage(args.stage)
        if stage is None:
            names = [s.name for s in run.stages]
            raise UsageError(f"run {run.id} has no stage {args.stage!r}{_hint(args.stage, names)}")
        if stage.started_at is None and (stage.state.finished or not args.follow):
            why = f": {stage.message}" if stage.message else ""
            if stage.state.finished:
                raise NotFound(
                    f"stage {stage.name} of run {run.id} did not run ({stage.state.value}{why})"
                )
            raise NotFound(
                f"stage {stage.name} of run {run.id} has not started yet (follow it: mlci logs -f)"
            )
        path = store.log_path(run.id, stage.name)
        cursor = LogCursor(path)
        gone = NotFound(f"the log of stage {stage.name} of run {run.id} is missing: {path}")
        # A started stage's log exists from its start, even if it prints nothing.
        seen = path.exists()
        if not seen and not args.follow:
            raise gone
        out = sys.stdout.buffer
        terminal = out.isatty()
        color = terminal and not os.environ.get("NO_COLOR")

        def emit() -> None:
            for chunk in output_bytes(cursor.read()):
                if terminal:
                    # The newline is the line's end, not a character to show.
                    ended = chunk.endswith(b"\n")
                    text = textsafe.decode(chunk[:-1] if ended else chunk)
                    chunk = textsafe.terminal_line(text, keep_color=color).encode()
                    chunk += b"\n" if ended else b""
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
            if not ended and runner_gone(current):
                # The runner died while we watched: record it, then show what it left.
                problem = recover(store, config)
                if problem:
                    raise StoreError(problem)
                ended = True
            emit()
            if not path.exists() and (seen or ended):
                raise gone
            seen = seen or path.exists()
            if ended:
                return 0
            time.sleep(0.2)


def _hint(name: str, names: list[str]) -> str:
    """``; did you mean "train"?``, or the list of what there is."""
    import difflib  # only for a mistyped name

    close = difflib.get_close_matches(name, names, n=1)
    return f'; did you mean "{close[0]}"?' if close else f" (stages: {', '.join(names)})"
