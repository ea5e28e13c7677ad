"""A viewer's window on the store: cheap change detection, then snapshots.

Viewers poll. Asking SQLite whether anything changed (``PRAGMA data_version``)
costs microseconds, so a dashboard can ask twice a second and stay idle;
only when something changed does it read a snapshot. Versions are re-read
only when the registry changed, so a store with 10 000 versions costs
nothing while a run streams.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from mlci_tui.errors import StoreError
from mlci_tui.store.db import DB_NAME, Store, log_path_in
from mlci_tui.store.records import (
    AlertRecord,
    DecisionRecord,
    DeploymentRecord,
    RunRecord,
    VersionRecord,
)

VERSION_LIMIT = 200
"""Versions shown; older ones are listed by `mlci versions` (and have no artifact
left unless `keep_versions` is large)."""


@dataclass(frozen=True)
class Snapshot:
    """What a viewer shows, read in one go."""

    run: RunRecord | None = None
    """The run shown: the one asked for, else the latest."""
    latest_run_id: int | None = None
    versions: tuple[VersionRecord, ...] = ()
    """Newest first, at most `VERSION_LIMIT`."""
    version_count: int = 0
    live: VersionRecord | None = None
    alerts: tuple[AlertRecord, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    """Pending rollback decisions."""
    deploying: DeploymentRecord | None = None
    """A deploy or rollback in progress."""


class StoreReader:
    """Reads one store for a viewer; safe to call from a worker thread and the UI."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._data_version: int | None = None
        self._registry_stamp: tuple[object, ...] | None = None
        self._registry: tuple[
            tuple[VersionRecord, ...], int, VersionRecord | None, tuple[AlertRecord, ...]
        ] = ((), 0, None, ())

    def changed(self) -> bool:
        """Whether the store changed since the last call (True the first time).

        Never blocks: if a snapshot is being read in another thread, it says no
        and the next poll asks again.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            store = self._open()
            if store is None:
                return False
            version = store.data_version()
            if version == self._data_version:
                return False
            self._data_version = version
            return True
        except StoreError:
            return True
        finally:
            self._lock.release()

    def snapshot(self, run_id: int | None = None) -> Snapshot:
        with self._lock:
            store = self._open()
            if store is None:
                return Snapshot()
            # A pinned run needs only the latest's id, not its stages.
            if run_id is None:
                run = store.latest_run()
                latest_id = None if run is None else run.id
            else:
                run = store.run(run_id)
                latest_id = store.latest_run_id()
            stamp = store.registry_stamp()
            if stamp != self._registry_stamp:
                self._registry_stamp = stamp
                self._registry = (
                    tuple(store.versions(limit=VERSION_LIMIT)),
                    store.version_count(),
                    store.live_version(),
                    tuple(store.alerts(limit=20)),
                )
            versions, count, live, alerts = self._registry
            running = store.running_deployments()
            return Snapshot(
                run=run,
                latest_run_id=latest_id,
                versions=versions,
                version_count=count,
                live=live,
                alerts=alerts,
                decisions=tuple(store.decisions()),
                deploying=running[-1] if running else None,
            )

    def runs(self, limit: int = 200) -> list[RunRecord]:
        with self._lock:
            store = self._open()
            return [] if store is None else store.runs(limit)

    def log_path(self, run_id: int, stage: str) -> Path:
        return log_path_in(self.state_dir, run_id, stage)

    def _open(self) -> Store | None:
        if self._store is None:
            if not (self.state_dir / DB_NAME).exists():
                return None
            self._store = Store.open(self.state_dir, create=False)
        return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
