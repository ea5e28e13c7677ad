"""Experiments: a grid of params, a queue in the store, and one worker per experiment.

`mlci exp run` queues the grid as a batch of its own and drains it; `--queue`
adds it to the queue `mlci exp start` drains. Draining (`drain`) claims one
experiment at a time in a write transaction — two drainers never take the same
one — and starts a worker for it, `mlci exp work ID`: one process per
experiment, since a runner's subreaper, signal handlers, outs lock and mount
namespace belong to its process. The worker takes the experiment over from its
drainer (`take`), makes its workspace (`service.workspace`), and runs the
pipeline's stages there as a run of kind ``experiment`` (never deploy, monitor
or a version); `settle` records how it ended and removes the workspace.

A worker killed outright leaves its experiment ``running`` with a dead pid:
the next command's recovery (`service.recovery.recover_experiments`) marks it ``interrupted``
and removes its workspace; the rest of the queue stays runnable.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from mlci_tui import procs
from mlci_tui.config import Config, load_config, with_params
from mlci_tui.config.params import masked_params
from mlci_tui.errors import UsageError
from mlci_tui.masking import SecretMasker
from mlci_tui.service import workspace
from mlci_tui.service.workspace import Workspace
from mlci_tui.states import ExperimentState
from mlci_tui.store import Store
from mlci_tui.store.cache_dir import CacheDir
from mlci_tui.store.experiments import NewExperiment
from mlci_tui.store.records import ExperimentRecord

MAX_WITHOUT_YES = 100
"""A grid larger than this runs only with ``--yes``."""
MAX_GRID = 10_000
"""A grid larger than this is refused: a sweep that size is a typo, or several sweeps."""
# The grid ---------------------------------------------------------------------


def split_values(text: str) -> list[str]:
    """``0.01,0.02`` → ``["0.01", "0.02"]``: commas inside brackets, braces or quotes
    belong to the value (``[1,2],[3]`` is two arrays, ``"a,b"`` one string)."""
    values: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    escaped = False
    for character in text:
        if quote:
            if escaped:
                escaped = False
            elif character == "\\" and quote == '"':
                escaped = True
            elif character == quote:
                quote = ""
        elif character in "\"'":
            quote = character
        elif character in "[{":
            depth += 1
        elif character in "]}":
            depth = max(depth - 1, 0)
        elif character == "," and depth == 0:
            values.append("".join(current))
            current = []
            continue
        current.append(character)
    values.append("".join(current))
    return values


def grid(config: Config, sets: Sequence[str], *, yes: bool) -> list[tuple[str, ...]]:
    """Every combination of the values ``--set PARAM=V1,V2`` gives, each as the
    ``PARAM=VALUE`` settings of one experiment; each value checked as `--set`
    checks one. `UsageError` in one line for a bad grid, before anything runs."""
    from mlci_tui.config.param_sets import set_params

    axes: list[list[str]] = []
    seen: set[str] = set()
    for text in sets:
        name, equals, raw = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(f"--set {text}: expected PARAM=V1,V2,…, like train.lr=0.01,0.02")
        if name in seen:
            raise UsageError(f"--set {name}: given twice; list its values in one --set")
        seen.add(name)
        values = [value.strip() for value in split_values(raw)]
        if not all(values):
            raise UsageError(f"--set {text}: an empty value; expected PARAM=V1,V2,…")
        axis: dict[object, str] = {}
        for value in values:
            checked = set_params(config.params, [f"{name}={value}"])[name]
            axis.setdefault((type(checked), checked), f"{name}={value}")
        axes.append(list(axis.values()))
    count = math.prod(len(axis) for axis in axes)
    if count > MAX_GRID:
        raise UsageError(f"{count:,} experiments: more than {MAX_GRID:,}; split the sweep")
    if count > MAX_WITHOUT_YES and not yes:
        raise UsageError(
            f"{count:,} experiments: more than {MAX_WITHOUT_YES} at once; add --yes to run them"
        )
    return list(itertools.product(*axes))


def new_experiments(
    config: Config,
    combinations: Sequence[tuple[str, ...]],
    name: str | None,
    environ: Mapping[str, str],
) -> list[NewExperiment]:
    """The experiments of a grid, named ``NAME`` (``NAME-1``, ``NAME-2`` … when several)
    or by what they set; secrets masked in names and params, as everywhere."""
    masker = SecretMasker(config.secret_values(environ))
    made = []
    for number, sets in enumerate(combinations, start=1):
        params = with_params(config, sets).params
        changed = {key: params[key] for key in (text.partition("=")[0].strip() for text in sets)}
        if name is not None:
            title = name if len(combinations) == 1 else f"{name}-{number}"
        else:
            title = " ".join(sets) or "as configured"
        made.append(
            NewExperiment(
                masker.mask_text(title),
                masked_params(changed, masker),
                tuple(masker.mask_text(text) for text in sets),
            )
        )
    return made


# Draining the queue ---------------------------------------------------------------


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Drained(NamedTuple):
    ran: list[int]
    """The experiments this drainer started, in order."""
    stopped: bool
    """Whether a signal stopped it (Ctrl-C, SIGTERM)."""


def drain(
    config: Config,
    *,
    batch: str | None,
    jobs: int,
    worker: Callable[[ExperimentRecord], list[str]],
    stdout: int | None = None,
) -> Drained:
    """Run the queued experiments of ``batch`` (None: the queue), ``jobs`` at once, each
    by a worker process started with the arguments ``worker`` gives. SIGINT and
    SIGTERM are passed on to the workers once each (they cancel their runs; a
    second stops stages at once) and no further experiment starts; those of
    ``batch`` still queued are cancelled. Returns when every worker has ended."""
    ran: list[int] = []
    children: dict[int, subprocess.Popen[bytes]] = {}
    signals: list[int] = []
    """The signals received: any stops the drainer."""

    def on_signal(signum: int, _: object) -> None:
        signals.append(signum)
        for child in children.values():
            with contextlib.suppress(OSError):
                child.send_signal(signum)

    with Store.open(config.pipeline.state_dir) as store, _signals(on_signal):
        while True:
            while not signals and len(children) < jobs:
                claimed = store.experiments.claim(
                    batch=batch,
                    pid=os.getpid(),
                    pid_started=procs.process_started(os.getpid()),
                    host=socket.gethostname(),
                    now=time.time(),
                )
                if claimed is None:
                    break
                ran.append(claimed.id)
                # A session of its own: a terminal's Ctrl-C reaches the drainer alone,
                # which passes it on once; a drainer killed outright leaves it running.
                # SIGINT and SIGTERM wait, blocked, until the worker can make them a
                # cancel (`unblock_signals`): not a traceback in the middle of its imports.
                child = subprocess.Popen(
                    worker(claimed),
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    preexec_fn=_block_signals,
                )
                children[child.pid] = child
                for signum in signals:  # came while it was being started
                    with contextlib.suppress(OSError):
                        child.send_signal(signum)
            if not children:
                break
            pid, status = os.wait()
            finished = children.pop(pid, None)
            if finished is not None:
                finished.returncode = os.waitstatus_to_exitcode(status)
                if finished.returncode < 0:  # killed outright: what it left is stopped now
                    from mlci_tui.service.recovery import recover

                    recover(store, config)
        if signals and batch is not None:
            store.experiments.cancel_queued(None, now=time.time(), batch=batch)
    return Drained(ran, bool(signals))


WORKER_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def _block_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)


def unblock_signals() -> None:
    """In the worker, once SIGINT and SIGTERM cancel: a signal that came meanwhile is
    delivered now. Before any command starts: its processes inherit the mask."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)


@contextlib.contextmanager
def _signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for signum in before:
            signal.signal(signum, handler)
        yield
    finally:
        for signum, previous in before.items():
            if previous is not None:
                signal.signal(signum, previous)


def workspaces_dir(config: Config) -> Path:
    """The project's directory of workspaces, made if missing; `UsageError` in one line
    when it cannot be (``.mlci`` a file, a dangling link, read-only)."""
    directory = config.root / workspace.EXPERIMENTS_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as error:
        raise UsageError(
            f"{directory}: cannot hold the experiments' workspaces: {error.strerror}"
        ) from None
    return directory


def sweep_output_locks(directory: Path) -> None:
    """Remove the output lock files of drainers that are gone (killed outright)."""
    for path in directory.glob(".output-*.lock"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(path.name[len(".output-") : -len(".lock")])
            if not procs.is_alive(pid, None):
                path.unlink()


def _mlci(config: Config, *args: str) -> list[str]:
    """``mlci ARGS`` of this interpreter and config."""
    return [sys.executable, "-m", "mlci_tui", "--config", str(config.path), *args]


def worker_command(config: Config, experiment: ExperimentRecord, *extra: str) -> list[str]:
    """The command of the worker that runs ``experiment``."""
    return _mlci(config, "exp", "work", str(experiment.id), *extra)


def detach(config: Config, jobs: int | None) -> int:
    """Start `mlci exp start` in a session of its own, outliving this terminal; its pid."""
    child = subprocess.Popen(
        _mlci(config, "exp", "start", *(() if jobs is None else ("-j", str(jobs)))),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=config.root,
    )
    return child.pid


# One experiment, in its worker -----------------------------------------------------


class Started(NamedTuple):
    experiment: ExperimentRecord
    config: Config
    """The config as the workspace has it, its params set, its store the shared one."""
    workspace: Workspace
    cache: CacheDir


def take(store: Store, experiment_id: int) -> ExperimentRecord | None:
    """Take ``experiment_id`` over from the drainer that claimed it for this worker;
    None if it is no longer running (cancelled meanwhile, or its drainer died and
    recovery marked it)."""
    return store.experiments.take(
        experiment_id,
        from_pid=os.getppid(),
        pid=os.getpid(),
        pid_started=procs.process_started(os.getpid()),
    )


def prepare(
    store: Store, project: Config, experiment: ExperimentRecord, *, overlay: bool
) -> Started:
    """Make the experiment's workspace and read its config there: `MlciError` saying
    why it could not be."""
    from mlci_tui.store.cache_dir import FileHasher

    state_dir = project.pipeline.state_dir
    directory = workspace.experiment_dir(project.root, experiment.id)
    commit, code_hash = workspace.code_state(project.root)
    cache = CacheDir(project.pipeline.cache_dir, FileHasher(store.file_hashes))
    try:
        made = workspace.make(
            project.root,
            directory,
            exclude=[state_dir, project.pipeline.cache_dir, project.root / ".mlci"],
            cache=cache,
            overlay=overlay,
        )
    except workspace.WorkspaceError as error:
        workspace.remove(directory, cache)
        raise UsageError(str(error)) from None
    try:
        store.experiments.set_workspace(
            experiment.id,
            workspace=str(made.path),
            method=made.method,
            git_commit=commit,
            code_hash=code_hash,
        )
        config = load_config(made.path / project.path.relative_to(project.root))
        # The project's store and cache, as the project's config resolved them: a
        # relative one (``.mlci``, ``../store``) resolved in the workspace is elsewhere.
        config = config._replace(
            pipeline=config.pipeline._replace(
                state_dir=project.pipeline.state_dir, cache_dir=project.pipeline.cache_dir
            )
        )
        if experiment.sets:
            config = with_params(config, experiment.sets)
    except BaseException:
        # A config the experiment cannot run with (changed since it was queued): the
        # workspace goes at once, its overlay first.
        workspace.unmount(made)
        workspace.remove(directory, cache)
        raise
    return Started(experiment, config, made, cache)


def settle(
    store: Store,
    experiment: ExperimentRecord,
    ended: ExperimentState,
    *,
    root: Path,
    made: Started | None,
    message: str | None = None,
) -> None:
    """Record how the experiment ended and remove its workspace, or keep it (`--keep`)."""
    if made is not None:
        workspace.unmount(made.workspace)
        if experiment.keep:
            kept = workspace.keep(made.workspace, made.cache)
            store.experiments.moved(experiment.id, str(kept))
        else:
            workspace.remove(made.workspace.directory, made.cache)
    elif not experiment.keep:
        workspace.remove(workspace.experiment_dir(root, experiment.id))
    store.experiments.finish(experiment.id, ended, ended_at=time.time(), message=message)


# Cancelling -------------------------------------------------------------------------


class Cancelled(NamedTuple):
    queued: list[int]
    """Cancelled before they started."""
    stopped: list[int]
    """Running: told to stop; their workers record them cancelled."""
    ended: list[int]
    """Named, but already ended: nothing to do."""


def cancel(store: Store, ids: Sequence[int] | None) -> Cancelled:
    """Cancel the experiments ``ids`` (None: every queued and running one); `UsageError`
    naming an id that does not exist, before anything is cancelled."""
    if ids is None:
        named = store.experiments.in_state(ExperimentState.QUEUED, ExperimentState.RUNNING)
    else:
        found = {id_: store.experiments.get(id_) for id_ in dict.fromkeys(ids)}
        missing = [str(id_) for id_, record in found.items() if record is None]
        if missing:
            raise UsageError(f"no experiment {', '.join(missing)} (see mlci exp show)")
        named = [record for record in found.values() if record is not None]
    queued = [e.id for e in named if e.state is ExperimentState.QUEUED]
    cancelled = store.experiments.cancel_queued(queued, now=time.time()) if queued else []
    stopped = []
    for experiment in named:
        if experiment.state is not ExperimentState.RUNNING or experiment.pid is None:
            continue
        if experiment.host != socket.gethostname():
            continue  # a pid on another machine means nothing here
        if procs.is_alive(experiment.pid, experiment.pid_started):
            with contextlib.suppress(OSError):
                os.kill(experiment.pid, signal.SIGTERM)
                stopped.append(experiment.id)
    ended = [e.id for e in named if e.id not in cancelled and e.id not in stopped]
    return Cancelled(cancelled, stopped, ended)
