"""The run store's database: SQLite in WAL mode, one file under `state_dir`.

Runners write, any number of viewers read; WAL lets readers work while a
runner writes, and the busy timeout makes a second writer wait instead of
failing. `Store` is its tables on one connection, each an attribute named after
its module (`store.runs`, `store.versions`, `store.deployments`, `store.alerts`,
`store.decisions`, `store.experiments`, `store.samples`, `store.series`, `store.file_hashes`,
`store.mirrored`), plus what is the whole store's: opening and migrating it,
transactions, its id and change stamps, and the paths of the files beside it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mlci_tui.errors import StoreError, StoreMissing
from mlci_tui.store import paths
from mlci_tui.store.connection import BUSY_TIMEOUT_S, Connection, describe_error
from mlci_tui.store.deployments import DeploymentsTable
from mlci_tui.store.mirrored import MirroredTable
from mlci_tui.store.paths import keep_private, make_private
from mlci_tui.store.runs import RunsTable
from mlci_tui.store.versions import VersionsTable

if TYPE_CHECKING:
    from mlci_tui.store.alerts import AlertsTable
    from mlci_tui.store.decisions import DecisionsTable
    from mlci_tui.store.experiments import ExperimentsTable
    from mlci_tui.store.file_hashes import FileHashesTable
    from mlci_tui.store.samples import SamplesTable
    from mlci_tui.store.series import SeriesTable

# The schema, as the migrations that build it: the version lives in ``PRAGMA
# user_version`` and `Store.open` applies the migrations a store lacks, in order,
# each in its own transaction. A released migration never changes; a change is a
# new one at the end.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pipeline TEXT NOT NULL,
        state TEXT NOT NULL,
        exit_code INTEGER,
        started_at REAL NOT NULL,
        ended_at REAL,
        pid INTEGER,
        pid_started REAL,
        host TEXT,
        config_path TEXT,
        message TEXT
    );
    CREATE INDEX runs_by_state ON runs (state);
    CREATE TABLE stages (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        position INTEGER NOT NULL,
        needs TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 1,
        exit_code INTEGER,
        started_at REAL,
        ended_at REAL,
        pid INTEGER,
        pgid INTEGER,
        process_tag TEXT,
        cpu_percent REAL,
        rss_bytes INTEGER,
        peak_rss_bytes INTEGER,
        cpu_seconds REAL,
        failed_gate TEXT,
        message TEXT,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        stage TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (run_id, stage, name)
    );
    """,
    """
    CREATE TABLE versions (
        number INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER REFERENCES runs (id),
        created_at REAL NOT NULL,
        artifact_name TEXT NOT NULL,
        source_path TEXT NOT NULL,
        is_dir INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        git_commit TEXT,
        git_dirty INTEGER,
        status TEXT NOT NULL DEFAULT 'registered',
        description TEXT,
        pruned_at REAL
    );
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        from_version INTEGER,
        to_version INTEGER NOT NULL,
        user TEXT,
        reason TEXT,
        run_id INTEGER,
        started_at REAL NOT NULL,
        ended_at REAL,
        outcome TEXT NOT NULL,
        message TEXT,
        pid INTEGER,
        pid_started REAL,
        host TEXT,
        process_tag TEXT,
        log_path TEXT
    );
    CREATE INDEX deployments_by_outcome ON deployments (outcome);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at REAL NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        version INTEGER,
        run_id INTEGER,
        delivery TEXT
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at REAL NOT NULL,
        version INTEGER NOT NULL,
        target INTEGER,
        finding TEXT NOT NULL,
        state TEXT NOT NULL,
        decided_at REAL,
        decided_by TEXT
    );
    CREATE TABLE monitor_samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at REAL NOT NULL,
        version INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        finding TEXT,
        run_id INTEGER
    );
    CREATE INDEX monitor_samples_by_version ON monitor_samples (version, id);
    """,
    """
    ALTER TABLE stages ADD COLUMN job_kind TEXT;
    ALTER TABLE stages ADD COLUMN job_id TEXT;
    ALTER TABLE stages ADD COLUMN job_address TEXT;
    """,
    """
    ALTER TABLE alerts ADD COLUMN acknowledged_at REAL;
    ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
    """,
    """
    ALTER TABLE versions ADD COLUMN analysis_failed TEXT;
    """,
    """
    ALTER TABLE runs ADD COLUMN params TEXT;
    ALTER TABLE versions ADD COLUMN params TEXT;
    ALTER TABLE stages ADD COLUMN cache_key TEXT;
    ALTER TABLE stages ADD COLUMN reasons TEXT;
    ALTER TABLE stages ADD COLUMN cached_from_run INTEGER;
    ALTER TABLE stages ADD COLUMN cached_from_stage TEXT;
    CREATE INDEX stages_by_cache_key ON stages (cache_key);
    CREATE TABLE file_hashes (
        path BLOB PRIMARY KEY,
        device INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        hashed_at_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE TABLE store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO store_info VALUES ('id', lower(hex(randomblob(16))));
    CREATE TABLE tree_hashes (
        fingerprint TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        hashed_at_ns INTEGER NOT NULL
    );
    """,
    """
    CREATE TABLE metric_points (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        stage TEXT NOT NULL,
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX metric_points_by_series ON metric_points (run_id, stage, name);
    """,
    """
    ALTER TABLE runs ADD COLUMN git_commit TEXT;
    ALTER TABLE runs ADD COLUMN git_dirty INTEGER;
    CREATE TABLE mirrored (
        target TEXT NOT NULL,
        item TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        mirrored_at REAL NOT NULL,
        PRIMARY KEY (target, item)
    );
    CREATE TABLE mirror_syncs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        outcome TEXT NOT NULL,
        message TEXT
    );
    """,
    """
    ALTER TABLE stages ADD COLUMN cached_from_store TEXT;
    """,
    """
    ALTER TABLE versions ADD COLUMN analysis_owed INTEGER;
    """,
    # A version's metrics by stage, as [[stage, name, value], ...]: evaluate's accuracy
    # and the monitor's are two metrics. The names a version kept are found again among
    # its run's stages (deploy and monitor ran after it was registered).
    """
    UPDATE versions SET metrics = (
        SELECT json_group_array(json_array(m.stage, m.name, m.value)) FROM metrics AS m
        WHERE m.run_id = versions.run_id AND m.stage NOT IN ('deploy', 'monitor')
        AND m.name IN (SELECT key FROM json_each(versions.metrics))
    );
    """,
    # Experiments: a run of kind 'experiment' once one starts; what `mlci status`,
    # `diff` and `cache gc --keep-runs` count are the runs of kind 'run'.
    """
    ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'run';
    CREATE INDEX runs_by_kind ON runs (kind, id);
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        params TEXT NOT NULL,
        sets TEXT NOT NULL,
        state TEXT NOT NULL,
        batch TEXT,
        config_path TEXT NOT NULL,
        keep INTEGER NOT NULL DEFAULT 0,
        queued_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        pid INTEGER,
        pid_started REAL,
        host TEXT,
        workspace TEXT,
        method TEXT,
        git_commit TEXT,
        code_hash TEXT,
        message TEXT
    );
    CREATE INDEX experiments_by_state ON experiments (state, id);
    """,
    # The experiment a version was promoted from (`mlci exp promote`).
    """
    ALTER TABLE versions ADD COLUMN experiment_id INTEGER;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class Store(Connection):
    """One open run store. Not shared between threads: open one per thread.

    Each table shares the store's connection, so a transaction or a read
    (`transaction`, `reading`) covers whatever tables are used inside it."""

    def __init__(
        self, state_dir: Path, connection: sqlite3.Connection, *, readonly: bool = False
    ) -> None:
        db_path = paths.db_path(state_dir)
        super().__init__(connection, db_path)
        self.state_dir = state_dir
        self.readonly = readonly
        """Opened where nothing can be written: read it; a write fails in one line."""
        self.runs = RunsTable(connection, db_path, state_dir)
        self.versions = VersionsTable(connection, db_path)
        self.deployments = DeploymentsTable(connection, db_path, self.versions)
        self.mirrored = MirroredTable(connection, db_path)

    # The tables a run does not use are made when first used: their imports cost
    # every command's start.

    @cached_property
    def alerts(self) -> AlertsTable:
        from mlci_tui.store.alerts import AlertsTable

        return AlertsTable(self._db, self.db_path)

    @cached_property
    def decisions(self) -> DecisionsTable:
        from mlci_tui.store.decisions import DecisionsTable

        return DecisionsTable(self._db, self.db_path)

    @cached_property
    def experiments(self) -> ExperimentsTable:
        from mlci_tui.store.experiments import ExperimentsTable

        return ExperimentsTable(self._db, self.db_path)

    @cached_property
    def samples(self) -> SamplesTable:
        from mlci_tui.store.samples import SamplesTable

        return SamplesTable(self._db, self.db_path)

    @cached_property
    def series(self) -> SeriesTable:
        from mlci_tui.store.series import SeriesTable

        return SeriesTable(self._db, self.db_path)

    @cached_property
    def file_hashes(self) -> FileHashesTable:
        from mlci_tui.store.file_hashes import FileHashesTable

        return FileHashesTable(self._db, self.db_path, readonly=self.readonly)

    @classmethod
    def open(cls, state_dir: Path, *, create: bool = True) -> Store:
        """Open (and with ``create``, make and migrate) the store in ``state_dir``.

        Without ``create`` a missing store raises `StoreMissing`.
        """
        db_path = paths.db_path(state_dir)
        if not create and not db_path.exists():
            raise StoreMissing(f"{state_dir}: no run store here yet (start a run with `mlci run`)")
        # A store nobody can write (a read-only mount, a copy without write access)
        # is still read: read-only, and immutable when no writer's WAL is there.
        readonly = db_path.exists() and not os.access(state_dir, os.W_OK)
        if readonly and create:
            raise StoreError(f"{state_dir}: the run store is read-only; nothing can be recorded")
        try:
            if create:
                make_private(state_dir)
            if readonly:
                wal = db_path.with_name(db_path.name + "-wal")
                flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
                target: str | Path = f"{db_path.resolve().as_uri()}?{flags}"
            else:
                target = db_path
            paths.opened_by_sqlite(db_path)
            connection = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                uri=readonly,
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"{db_path}: cannot open the run store: {error}") from None
        if create:
            keep_private(db_path)
        store = cls(state_dir, connection, readonly=readonly)
        try:
            store._prepare()
        except BaseException as error:  # a damaged store, a newer mlci's: nothing stays open
            connection.close()
            if isinstance(error, sqlite3.DatabaseError):
                raise StoreError(f"{db_path}: {describe_error(error)}") from None
            raise
        return store

    def _prepare(self) -> None:
        if not self.readonly:
            self._use_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path}: written by a newer mlci (schema {version}, this one knows"
                f" {SCHEMA_VERSION}); upgrade mlci-tui"
            )
        if version < SCHEMA_VERSION and self.readonly:
            raise StoreError(
                f"{self.db_path}: read-only, and written by an older mlci: run any command"
                " once where it can be written, to bring it up to date"
            )
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                # Re-read inside the lock: another process may have migrated meanwhile.
                if self._db.execute("PRAGMA user_version").fetchone()[0] > number:
                    continue
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    def _use_wal(self) -> None:
        """Put a new store in WAL mode; a store already in it is left as it is.

        The switch needs the file to itself, and SQLite answers "locked" at once rather
        than calling the busy handler when another process is reading or switching it
        too (six processes creating one store at the same instant): so it is retried
        here for as long as a busy store is waited for anywhere else.
        """
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Paths -----------------------------------------------------------------

    def run_dir(self, run_id: int) -> Path:
        return paths.run_dir(self.state_dir, run_id)

    def log_path(self, run_id: int, stage: str) -> Path:
        return paths.log_path(self.state_dir, run_id, stage)

    def metrics_path(self, run_id: int, stage: str) -> Path:
        return paths.metrics_path(self.state_dir, run_id, stage)

    def params_path(self, run_id: int) -> Path:
        return paths.params_path(self.state_dir, run_id)

    def version_dir(self, number: int) -> Path:
        return paths.version_dir(self.state_dir, number)

    def deployment_log(self, deployment_id: int) -> Path:
        return paths.deployment_log(self.state_dir, deployment_id)

    # Change detection --------------------------------------------------------

    @property
    def store_id(self) -> str:
        """A random id the store got when it was made: what tells stores apart in a
        cache several share (their paths may be the same on different machines)."""
        return str(self._query("SELECT value FROM store_info WHERE key = 'id'").fetchone()[0])

    def data_version(self) -> int:
        """Changes whenever another connection commits: the cheapest "anything new?"."""
        return int(self._query("PRAGMA data_version").fetchone()[0])

    def registry_stamp(self) -> tuple[object, ...]:
        """Changes whenever a version, deployment, alert or monitor sample is added or
        settled, or an alert acknowledged."""
        return tuple(
            self._query(
                "SELECT (SELECT MAX(number) FROM versions),"
                " (SELECT COUNT(*) FROM versions WHERE pruned_at IS NOT NULL),"
                " (SELECT MAX(id) FROM deployments),"
                " (SELECT COUNT(*) FROM deployments WHERE outcome != 'running'),"
                " (SELECT MAX(id) FROM alerts),"
                " (SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NOT NULL),"
                " (SELECT MAX(id) FROM monitor_samples)"
            ).fetchone()
        )
