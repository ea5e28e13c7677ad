"""A viewer's window on the store: cheap change detection, then snapshots.

Viewers poll. Asking SQLite whether anything changed (``PRAGMA data_version``)
costs microseconds, so a dashboard can ask twice a second and stay idle;
only when something changed does it read a snapshot. The reader decides
what to read again: everything when the store changed or another run is
asked for, else only the logs of the stages still running. Versions are
re-read only when the registry changed, so a store with 10 000 versions
costs nothing while a run streams.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlci_tui import procs
from mlci_tui.checks import Check
from mlci_tui.errors import NotFound, StoreError
from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import ExperimentState, RunState, StageState
from mlci_tui.store import paths
from mlci_tui.store.db import Store
from mlci_tui.store.logs import LogRecord, tail_records
from mlci_tui.store.records import (
    AlertRecord,
    DecisionRecord,
    DeploymentRecord,
    ExperimentRecord,
    RunRecord,
    VersionRecord,
)
from mlci_tui.store.runs import EXPERIMENT, RUN
from mlci_tui.store.series import Series

if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.store.compare import Comparison
    from mlci_tui.store.experiment_table import ExperimentTable

VERSION_LIMIT = 200
"""Versions shown; older ones are listed by `mlci versions` (and have no artifact
left unless `keep_versions` is large)."""
TAIL_LINES = 3
"""Output lines read of each started stage: the most a stage pane shows."""

Tails = Mapping[str, tuple[LogRecord, ...]]
_NO_TAILS: Tails = MappingProxyType({})


@dataclass(frozen=True)
class Snapshot:
    """What a viewer shows, read in one go."""

    run: RunRecord | None = None
    """The run shown: the one asked for, else the latest."""
    latest_run_id: int | None = None
    running: RunRecord | None = None
    """The newest run marked running, whichever run is shown: what cancelling stops."""
    versions: tuple[VersionRecord, ...] = ()
    """Newest first, at most `VERSION_LIMIT`."""
    version_count: int = 0
    live: VersionRecord | None = None
    rollback_target: VersionRecord | None = None
    """The version `mlci rollback` would go back to: the last known-good one."""
    alerts: tuple[AlertRecord, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    """Pending rollback decisions."""
    deploying: DeploymentRecord | None = None
    """A deploy or rollback in progress."""
    tails: Tails = field(default_factory=lambda: _NO_TAILS)
    """The last output lines of each stage of ``run`` that has started."""
    runner_gone: bool = False
    """``run`` is marked running, but its runner (on this host) has died: killed with
    SIGKILL, say. Recovery, which any writing `mlci` command does, settles it."""
    readonly: bool = False
    """The store cannot be written from here (nothing can be settled from here)."""
    experiment: ExperimentRecord | None = None
    """The experiment ``run`` is the run of, when it is an experiment's."""
    experiments: tuple[int, int, int] = (0, 0, 0)
    """How many experiments there are, how many of them are running and how many
    queued: the header says where they are (``e``), as `mlci status` does."""


class StoreReader:
    """Reads one store for a viewer; safe to call from a worker thread and the UI."""

    def __init__(self, state_dir: Path, *, tail_lines: int = TAIL_LINES) -> None:
        self.state_dir = state_dir
        self.tail_lines = tail_lines
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._last: Snapshot | None = None
        self._last_run_id: int | None = None
        """The run asked for by the last snapshot (None: the latest)."""
        self._last_version: int | None = None
        """The store's data version when the last snapshot was read."""
        self._registry_stamp: tuple[object, ...] | None = None
        self._registry: tuple[
            tuple[VersionRecord, ...],
            int,
            VersionRecord | None,
            VersionRecord | None,
            tuple[AlertRecord, ...],
        ] = ((), 0, None, None, ())

    def due(self, run_id: int | None = None) -> bool:
        """Whether `snapshot(run_id)` would show something new: the store changed,
        another run is asked for, or the run shown is running (its logs grow).

        Never blocks: while a snapshot is being read in another thread it says
        no, and the next poll asks again.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            last = self._last
            if last is None or run_id != self._last_run_id:
                return True
            if last.run is not None and last.run.state is RunState.RUNNING:
                return True
            store = self._open()
            return store is not None and store.data_version() != self._last_version
        except StoreError:
            return True  # the snapshot will say what is wrong
        finally:
            self._lock.release()

    def snapshot(self, run_id: int | None = None) -> Snapshot:
        """What a viewer shows of run ``run_id`` (None: the latest run)."""
        with self._lock:
            store = self._open()
            if store is None:
                self._last, self._last_run_id, self._last_version = Snapshot(), run_id, None
                return self._last
            # Read before the rest: a change committed meanwhile is seen by the next `due`.
            version = store.data_version()
            last = self._last
            if last is not None and run_id == self._last_run_id and version == self._last_version:
                snapshot = self._with_running_tails(last)
            else:
                with store.reading():
                    snapshot = self._read(store, run_id)
            self._last, self._last_run_id, self._last_version = snapshot, run_id, version
            return snapshot

    def overview(self, run_id: int | None = None) -> Snapshot:
        """Run ``run_id`` (None: the latest) and its stages, and nothing else: what a
        viewer's first frame shows, read in a few milliseconds however many versions,
        alerts and lines of output the store holds. The rest is `snapshot`'s, which
        this leaves due."""
        with self._lock:
            store = self._open()
            if store is None:
                return Snapshot()
            with store.reading():
                run, latest_id = _run_of(store, run_id)
                experiment = _experiment_of(store, run)
            running = run is not None and run.state is RunState.RUNNING and run.id == latest_id
            return Snapshot(
                run=run,
                latest_run_id=latest_id,
                running=run if running else None,
                readonly=store.readonly,
                experiment=experiment,
            )

    def _read(self, store: Store, run_id: int | None) -> Snapshot:
        run, latest_id = _run_of(store, run_id)
        stamp = store.registry_stamp()
        if stamp != self._registry_stamp:
            self._registry_stamp = stamp
            self._registry = (
                tuple(store.versions.recent(limit=VERSION_LIMIT)),
                store.versions.count(),
                store.versions.live(),
                store.versions.known_good(),
                tuple(store.alerts.recent(limit=20)),
            )
        versions, count, live, target, alerts = self._registry
        if run is not None and run.state is RunState.RUNNING and run.id == latest_id:
            running_run: RunRecord | None = run
        else:
            running_runs = store.runs.in_state(RunState.RUNNING, kind=RUN)
            running_run = running_runs[-1] if running_runs else None
        running = store.deployments.running()
        return Snapshot(
            run=run,
            latest_run_id=latest_id,
            running=running_run,
            versions=versions,
            version_count=count,
            live=live,
            rollback_target=target,
            alerts=alerts,
            decisions=tuple(store.decisions.pending()),
            deploying=running[-1] if running else None,
            tails=self._tails(run, _NO_TAILS),
            runner_gone=_runner_gone(run),
            readonly=store.readonly,
            experiment=_experiment_of(store, run),
            experiments=_experiment_counts(store),
        )

    def _with_running_tails(self, last: Snapshot) -> Snapshot:
        """``last`` with the logs of its running stages read again: the store is as
        ``last`` read it, so nothing else can have changed."""
        if last.run is None or last.run.state is not RunState.RUNNING:
            return last
        return replace(
            last, tails=self._tails(last.run, last.tails), runner_gone=_runner_gone(last.run)
        )

    def _tails(self, run: RunRecord | None, kept: Tails) -> Tails:
        """The last lines of each started stage of ``run``; those in ``kept`` are kept
        for stages that are not running.

        Output is written before a stage's end is stored, and ``kept`` was read
        after the snapshot that stored it: for a stage that ended, it is complete.
        """
        if run is None:
            return _NO_TAILS
        tails: dict[str, tuple[LogRecord, ...]] = {}
        for stage in run.stages:
            if stage.started_at is None:
                continue
            if stage.state is not StageState.RUNNING and stage.name in kept:
                tails[stage.name] = kept[stage.name]
            else:
                path = paths.log_path(self.state_dir, run.id, stage.name)
                tails[stage.name] = tuple(tail_records(path, self.tail_lines))
        return MappingProxyType(tails)

    def runs(self, limit: int = 200) -> list[RunRecord]:
        with self._lock:
            store = self._open()
            return [] if store is None else store.runs.recent(limit)

    def alerts(self, limit: int = 200) -> list[AlertRecord]:
        with self._lock:
            store = self._open()
            return [] if store is None else store.alerts.recent(limit)

    def series(self, run_id: int, stage: str, after: Mapping[str, int]) -> list[Series]:
        """Each series of a stage, only its points newer than ``after[name]`` (a row id)."""
        with self._lock:
            store = self._open()
            if store is None:
                return []
            return [
                store.series.get(run_id, stage, name, after=after.get(name, 0))
                for _, name in store.series.names(run_id, stage)
            ]

    def comparison(
        self,
        old: str,
        new: str,
        gates: Sequence[tuple[MetricKey, Check]],
        artifact_stage: str | None,
    ) -> Comparison:
        """``old`` and ``new`` (``12``, ``v3``, ``live``, ``latest``) side by side;
        ``artifact_stage`` as `with_artifact` takes it."""
        # Imported here: a viewer opens without it (its first frame comes sooner).
        from mlci_tui.store.compare import compare, resolve, with_artifact

        with self._lock:
            store = self._open()
            if store is None:
                raise NotFound("no runs yet")
            before = with_artifact(store, resolve(store, old, default="live"), artifact_stage)
            after = with_artifact(store, resolve(store, new, default="latest"), artifact_stage)
            return compare(before, after, gates)

    def experiments_due(self, since: int | None) -> bool:
        """Whether the store changed since data version ``since`` (None: never read),
        as `due` tells it: never blocks, says no while a read is in flight."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if since is None:
                return True
            store = self._open()
            return store is not None and store.data_version() != since
        except StoreError:
            return True  # the read will say what is wrong
        finally:
            self._lock.release()

    def experiments(self, config: Config) -> tuple[int | None, ExperimentTable | None]:
        """The experiments' table (`read_experiments`, one read transaction) and the
        data version it was read at; None for both while there is no store."""
        from mlci_tui.store.experiment_table import read_experiments

        with self._lock:
            store = self._open()
            if store is None:
                return None, None
            # Read before the table: a change committed meanwhile is seen by the next poll.
            version = store.data_version()
            return version, read_experiments(store, config)

    def shared_metrics(self, run_ids: Sequence[int]) -> list[MetricKey]:
        """The metrics every one of ``run_ids`` has points of, in the first's order."""
        with self._lock:
            store = self._open()
            if store is None or not run_ids:
                return []
            found = [[MetricKey(*key) for key in store.series.names(r)] for r in run_ids]
        return [key for key in found[0] if all(key in others for others in found[1:])]

    def metric_series(self, run_id: int, key: MetricKey, after: int) -> Series:
        """One series of a run, only its points newer than row ``after``."""
        with self._lock:
            store = self._open()
            if store is None:
                return Series(run_id, key.stage, key.name, (), after)
            return store.series.get(run_id, key.stage, key.name, after=after)

    def log_path(self, run_id: int, stage: str) -> Path:
        return paths.log_path(self.state_dir, run_id, stage)

    def _open(self) -> Store | None:
        if self._store is None:
            if not paths.db_path(self.state_dir).exists():
                return None
            self._store = Store.open(self.state_dir, create=False)
        return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _run_of(store: Store, run_id: int | None) -> tuple[RunRecord | None, int | None]:
    """Run ``run_id`` (None: the latest) and the latest run's id."""
    if run_id is None:
        run = store.runs.latest()
        return run, None if run is None else run.id
    # A pinned run needs only the latest's id, not its stages.
    return store.runs.get(run_id), store.runs.latest_id()


def _experiment_of(store: Store, run: RunRecord | None) -> ExperimentRecord | None:
    if run is None or run.kind != EXPERIMENT:
        return None
    return store.experiments.of_run(run.id)


def _experiment_counts(store: Store) -> tuple[int, int, int]:
    counts = store.experiments.counts()
    running = counts.get(ExperimentState.RUNNING, 0)
    return sum(counts.values()), running, counts.get(ExperimentState.QUEUED, 0)


def _runner_gone(run: RunRecord | None) -> bool:
    """Whether ``run`` is marked running though its runner has died (on this host)."""
    return (
        run is not None
        and run.state is RunState.RUNNING
        and procs.ended_here(run.host, run.pid, run.pid_started)
    )
