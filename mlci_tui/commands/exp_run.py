"""`mlci exp run`, `exp start`, `exp cancel`, and `exp work` (one experiment's worker)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
from typing import TYPE_CHECKING

from mlci_tui.commands.common import open_store
from mlci_tui.errors import ExitCode, MlciError
from mlci_tui.states import ExperimentState

if TYPE_CHECKING:
    from typing import Any

    from mlci_tui.config import Config
    from mlci_tui.service.experiment_queue import Drained, Started
    from mlci_tui.store import Store
    from mlci_tui.store.experiment_table import ExperimentTable
    from mlci_tui.store.records import ExperimentRecord

NO_OVERLAY = ("MLCI_EXP_WORKSPACE", "copy")
"""Set so, workspaces are made without an overlay: by reflinks, or copies."""
NOTHING_LEFT = 0
"""A worker whose experiment was taken from it (cancelled before it started)."""


def handle_exp_run(args: argparse.Namespace) -> int:
    from mlci_tui.config import load_config
    from mlci_tui.service import experiment_queue

    config = load_config(args.config)
    combinations = experiment_queue.grid(config, args.set, yes=args.yes)
    made = experiment_queue.new_experiments(config, combinations, args.name, os.environ)
    batch = None if args.queue else uuid.uuid4().hex
    experiment_queue.workspaces_dir(config)  # where workspaces go, before anything is queued
    # SIGTERM, as Ctrl-C, from here: the batch is never left queued with nobody to run it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with open_store(config, create=True) as store:
        ids = store.experiments.add(
            made, config_path=str(config.path), batch=batch, keep=args.keep, now=time.time()
        )
    listed = ", ".join(f"#{id_}" for id_ in ids)
    if args.queue:
        print(
            f"queued {len(ids)} experiment{'s' * (len(ids) != 1)} ({listed});"
            " `mlci exp start` runs them"
        )
        return 0
    return _drain(config, batch=batch, jobs=args.jobs, markdown=args.md, ids=ids)


def handle_exp_start(args: argparse.Namespace) -> int:
    from mlci_tui.config import load_config
    from mlci_tui.service import experiment_queue

    config = load_config(args.config)
    with open_store(config, create=True) as store:
        queued = store.experiments.in_state(ExperimentState.QUEUED)
    waiting = [e for e in queued if e.batch is None]
    if not waiting:
        print("no experiment is queued (`mlci exp run --set PARAM=V1,V2 --queue` adds some)")
        return 0
    if args.detach:
        pid = experiment_queue.detach(config, args.jobs)
        print(
            f"running {len(waiting)} queued experiment{'s' * (len(waiting) != 1)} in the"
            f" background (pid {pid}); `mlci exp show` follows them"
        )
        return 0
    return _drain(config, batch=None, jobs=args.jobs, markdown=False, ids=None)


def _drain(
    config: Config, *, batch: str | None, jobs: int | None, markdown: bool, ids: list[int] | None
) -> int:
    from mlci_tui.service import experiment_queue
    from mlci_tui.store.experiment_table import only_experiments, read_experiments

    jobs = jobs or experiment_queue.default_jobs()
    directory = experiment_queue.workspaces_dir(config)
    experiment_queue.sweep_output_locks(directory)
    lock = directory / f".output-{os.getpid()}.lock"
    sys.stdout.flush()
    try:
        drained = _drained(
            config,
            batch=batch,
            jobs=jobs,
            # With --md the table is stdout's; the experiments' output goes to stderr.
            stdout=sys.stderr.fileno() if markdown else None,
            worker=lambda experiment: experiment_queue.worker_command(
                config, experiment, "--output-lock", str(lock)
            ),
        )
    finally:
        lock.unlink(missing_ok=True)
    if drained is None:  # stopped before the drainer could pass a signal on
        with open_store(config) as store:
            store.experiments.cancel_queued(None, now=time.time(), batch=batch)
        return ExitCode.CANCELLED
    ids = ids or drained.ran
    with open_store(config) as store:
        ended = [e for e in map(store.experiments.get, ids) if e is not None]
        table = read_experiments(store, config)
    _summary(only_experiments(table, ids), ended, markdown=markdown)
    states = {e.state for e in ended} - {ExperimentState.PASSED}
    if drained.stopped or states == {ExperimentState.CANCELLED}:
        return ExitCode.CANCELLED
    return ExitCode.FAILED if states else ExitCode.PASSED


def _summary(table: ExperimentTable, ended: list[ExperimentRecord], *, markdown: bool) -> None:
    """The experiments just run, as `mlci exp show` shows them; why those that did not
    pass did not."""
    from mlci_tui.commands.console import use_color
    from mlci_tui.commands.exp_show import table_markdown, table_text
    from mlci_tui.textsafe import visible_text

    if markdown:
        sys.stdout.write(table_markdown(table))
        return
    print()
    print("\n".join(table_text(table, color=use_color(sys.stdout.buffer, os.environ))))
    for experiment in ended:
        if experiment.state is not ExperimentState.PASSED and experiment.message:
            print(f"{visible_text(experiment.label)}: {visible_text(experiment.message)}")
    print("`mlci exp show` compares them with every other experiment")


def _drained(config: Config, **options: Any) -> Drained | None:
    """`service.experiment_queue.drain`; None when a signal came before it could handle one."""
    from mlci_tui.service import experiment_queue

    try:
        return experiment_queue.drain(config, **options)
    except KeyboardInterrupt:
        return None


def handle_exp_cancel(args: argparse.Namespace) -> int:
    from mlci_tui.config import load_config
    from mlci_tui.service import experiment_queue

    config = load_config(args.config)
    with open_store(config) as store:
        done = experiment_queue.cancel(store, args.ids or None)
        _wait_ended(store, done.stopped, config.pipeline.kill_grace + 30.0)
    if done.queued:
        print(f"cancelled {_ids(done.queued)}, which had not started")
    if done.stopped:
        print(f"stopped {_ids(done.stopped)}")
    if done.ended:
        print(f"{_ids(done.ended)}: already ended")
    if not (done.queued or done.stopped or done.ended):
        print("no experiment is queued or running")
    return 0


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{id_}" for id_ in ids)


def _wait_ended(store: Store, ids: list[int], timeout: float) -> None:
    """Until the experiments told to stop have ended, or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while ids and time.monotonic() < deadline:
        states = [store.experiments.get(id_) for id_ in ids]
        if all(e is None or e.state.finished for e in states):
            return
        time.sleep(0.05)


def handle_exp_work(args: argparse.Namespace) -> int:
    """One experiment, in a process of its own (started by `exp run` and `exp start`)."""
    from mlci_tui.service import workspace

    # First, before any thread starts: the namespace the overlay is mounted in.
    overlay = os.environ.get(NO_OVERLAY[0]) != NO_OVERLAY[1] and workspace.private_mounts()
    from mlci_tui.config import load_config
    from mlci_tui.service import experiment_queue
    from mlci_tui.textsafe import visible_text

    project = load_config(args.config)
    with open_store(project) as store:
        experiment = experiment_queue.take(store, args.id)
        if experiment is None:
            return NOTHING_LEFT
        made = None
        run_id = None
        message = None
        # Until the runner handles them (and after): SIGTERM, as SIGINT, cancels.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            experiment_queue.unblock_signals()
            made = experiment_queue.prepare(store, project, experiment, overlay=overlay)
            code, run_id = _work(made, args.output_lock)
        except KeyboardInterrupt:
            ended, code, message = ExperimentState.CANCELLED, ExitCode.CANCELLED, "cancelled"
        except MlciError as error:
            ended, code, message = ExperimentState.FAILED, error.exit_code, str(error)
            print(f"{visible_text(experiment.label)}: {visible_text(message)}", file=sys.stderr)
        else:
            run = None if run_id is None else store.runs.get(run_id)
            ended = ExperimentState.FAILED if run is None else ExperimentState.of_run(run.state)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)  # what is settled now is settled whole
        experiment_queue.settle(
            store, experiment, ended, root=project.root, made=made, message=message
        )
    return code


def _work(started: Started, output_lock: str | None) -> tuple[int, int]:
    """Run the experiment's stages; the exit code and the run's id."""
    from pathlib import Path

    from mlci_tui.commands.console import use_color
    from mlci_tui.commands.live_printer import BackgroundWriter, LivePrinter
    from mlci_tui.events import RunNoted
    from mlci_tui.service.runner import Runner

    experiment = started.experiment
    with Runner.start(started.config, experiment=experiment.id) as runner:
        out = sys.stdout.buffer
        printer = LivePrinter(
            BackgroundWriter(out, shared=None if output_lock is None else Path(output_lock)),
            runner.engine.names,
            terminal=out.isatty(),
            color=use_color(out, os.environ),
            label=experiment.label,
        )
        runner.subscribe(printer)
        runner.engine.emit(RunNoted(started.workspace.describe(), time.time()))
        try:
            result = runner.run()
        finally:
            printer.close()
    return result.exit_code, runner.run_id
