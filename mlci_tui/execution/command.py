"""Starting a command and stopping it: the one way mlci runs anything.

A stage's command, the `[deploy]` and `[monitor]` commands and the `[alerts]`
command all come through `run_command`. Each gets the same environment
recipe (`environment`), runs on an executor in its own session and process
group with a fresh process tag, has its output masked and passed on as
events by an `OutputSink`, and is stopped the same way when it ends, times
out or is cancelled: SIGTERM to its group, the grace period, SIGKILL, then a
sweep for tagged processes that left the group (see `executors.local`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mlci_tui import procs
from mlci_tui.config import CommandLine, Config
from mlci_tui.events import CommandNoted, Event
from mlci_tui.execution.executors.base import (
    AttemptResult,
    AttemptSpec,
    Executor,
    StartedCallback,
    ignore_started,
)
from mlci_tui.execution.output import OutputSink
from mlci_tui.units import format_duration

if TYPE_CHECKING:  # only type checkers need the protocol, and making one is slow
    from typing import Protocol

    class CommandTable(Protocol):
        """What every table with a command has: a stage, `[deploy]`, `[monitor]`, `[alerts]`."""

        @property
        def command(self) -> CommandLine: ...
        @property
        def cwd(self) -> Path: ...
        @property
        def env(self) -> Mapping[str, str]: ...
        @property
        def timeout(self) -> float | None: ...


class CommandContext(NamedTuple):
    """On whose behalf a command runs, and where what it prints goes."""

    emit: Callable[[Event], None]
    stage: str
    """The stage its output and notes are reported as (``deploy``, ``monitor``, …)."""
    run_id: int | None = None
    """The run it is part of, if any."""
    hurry: asyncio.Event | None = None
    """Set when stopping must not wait for the grace period (a second Ctrl-C)."""
    log_path: Path | None = None
    """Where ``emit`` records the output; None when nothing does (the caller keeps
    a log of its own)."""

    def note(self, text: str, clock: Callable[[], float] = time.time) -> None:
        self.emit(CommandNoted(self.stage, text, clock()))


def environment(
    config: Config,
    env: Mapping[str, str],
    variables: Mapping[str, str],
    environ: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, str]]:
    """The complete environment of a command, and the part of it that mlci and the
    config set (what a remote executor ships along with the command).

    Inherited first (``environ``, with this virtualenv's ``bin`` first on ``PATH``),
    then ``[pipeline] env``, the command's own ``env`` table, mlci's ``MLCI_*``
    variables and ``variables``, each overriding what came before.
    """
    # Output should stream while it happens, not arrive in one block at exit.
    own = {"PYTHONUNBUFFERED": environ.get("PYTHONUNBUFFERED", "1")}
    own.update(config.pipeline.env)
    own.update(env)
    own["MLCI_PIPELINE"] = config.pipeline.name
    own["MLCI_STATE_DIR"] = str(config.pipeline.state_dir)
    own.update(variables)
    full = dict(environ)
    if sys.prefix != sys.base_prefix:
        # As an activated venv would: `python` in a command is this environment's.
        bin_dir = str(Path(sys.executable).parent)
        path = full.get("PATH", "")
        if not path.startswith(bin_dir + os.pathsep):
            full["PATH"] = bin_dir + os.pathsep + path if path else bin_dir
    full.update(own)
    return full, own


async def run_command(
    config: Config,
    table: CommandTable,
    *,
    variables: Mapping[str, str],
    sink: OutputSink,
    executor: Executor,
    environ: Mapping[str, str],
    hurry: asyncio.Event | None = None,
    tag: str | None = None,
    started: StartedCallback = ignore_started,
) -> AttemptResult:
    """Run ``table.command`` to its end, its output into ``sink`` as ``sink.stage``'s.

    ``tag`` is the process tag (a fresh one unless the caller recorded one
    first, so that recovery can find the processes). A command that runs past
    ``table.timeout`` is stopped and its result says so (``timed_out``).
    """
    tag = tag or procs.new_tag()
    full, own = environment(config, table.env, {**variables, procs.TAG_VARIABLE: tag}, environ)
    spec = AttemptSpec(
        stage=sink.stage,
        command=table.command,
        cwd=table.cwd,
        env=full,
        process_tag=tag,
        kill_grace=config.pipeline.kill_grace,
        hurry=hurry or asyncio.Event(),
        own_env=own,
    )
    running = executor.run(spec, sink, started)
    if table.timeout is None:
        return await running
    try:
        return await asyncio.wait_for(running, table.timeout)
    except asyncio.TimeoutError:
        return AttemptResult(
            None,
            error=f"timed out after {format_duration(table.timeout)}",
            cpu_seconds=sink.cpu_seconds,
            timed_out=True,
        )
