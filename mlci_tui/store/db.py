"""The run store's database: SQLite in WAL mode, one file under `state_dir`.

Runners write, any number of viewers read; WAL lets readers work while a
runner writes, and the busy timeout makes a second writer wait instead of
failing. The schema version lives in ``PRAGMA user_version`` and is raised by
the migrations below, in order, each in its own transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlci_tui.errors import StoreError
from mlci_tui.states import RunState, StageState
from mlci_tui.store.connection import BUSY_TIMEOUT_S, describe_error
from mlci_tui.store.records import RunRecord, StageRecord
from mlci_tui.store.registry_tables import RegistryTables

DB_NAME = "mlci.db"

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
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreMissing(StoreError):
    """There is no store in the directory yet."""


def run_dir_in(state_dir: Path, run_id: int) -> Path:
    """A run's directory, for `Store` and for viewers that have no store open."""
    return state_dir / "runs" / str(run_id)


def log_path_in(state_dir: Path, run_id: int, stage: str) -> Path:
    return run_dir_in(state_dir, run_id) / f"{stage}.log"


_STAGE_COLUMNS = frozenset(
    {
        "state",
        "attempt",
        "exit_code",
        "started_at",
        "ended_at",
        "pid",
        "pgid",
        "process_tag",
        "job_kind",
        "job_id",
        "job_address",
        "cpu_percent",
        "rss_bytes",
        "peak_rss_bytes",
        "cpu_seconds",
        "failed_gate",
        "message",
    }
)


class Store(RegistryTables):
    """One open run store. Not shared between threads: open one per thread."""

    def __init__(self, state_dir: Path, connection: sqlite3.Connection) -> None:
        super().__init__(connection, state_dir / DB_NAME)
        self.state_dir = state_dir
        self.recovery_error: str | None = None
        """Why runs of a dead runner could not be marked interrupted, if they could not."""

    @classmethod
    def open(cls, state_dir: Path, *, create: bool = True) -> Store:
        """Open (and with ``create``, make and migrate) the store in ``state_dir``.

        Without ``create`` a missing store raises `StoreMissing`.
        """
        db_path = state_dir / DB_NAME
        if not create and not db_path.exists():
            raise StoreMissing(f"{state_dir}: no run store here yet (start a run with `mlci run`)")
        try:
            if create:
                (state_dir / "runs").mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"{db_path}: cannot open the run store: {error}") from None
        store = cls(state_dir, connection)
        try:
            store._prepare()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(f"{db_path}: {describe_error(error)}") from None
        return store

    def _prepare(self) -> None:
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path}: written by a newer mlci (schema {version}, this one knows"
                f" {SCHEMA_VERSION}); upgrade mlci-tui"
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

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Paths -----------------------------------------------------------------

    def run_dir(self, run_id: int) -> Path:
        return run_dir_in(self.state_dir, run_id)

    def log_path(self, run_id: int, stage: str) -> Path:
        return log_path_in(self.state_dir, run_id, stage)

    def metrics_path(self, run_id: int, stage: str) -> Path:
        return self.run_dir(run_id) / f"{stage}.metrics.json"

    def version_dir(self, number: int) -> Path:
        return self.state_dir / "versions" / f"v{number}"

    def deployment_log(self, deployment_id: int) -> Path:
        return self.state_dir / "deployments" / f"{deployment_id}.log"

    # Writing ---------------------------------------------------------------

    def create_run(
        self,
        pipeline: str,
        stages: Sequence[tuple[str, Sequence[str], int]],
        *,
        started_at: float,
        pid: int,
        pid_started: float | None,
        host: str,
        config_path: str,
    ) -> int:
        """A new run in state ``running`` with its stages ``pending``; returns its id.

        ``stages`` holds ``(name, needs, max_attempts)`` in run order.
        """
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (pipeline, state, started_at, pid, pid_started, host,"
                " config_path) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pipeline, RunState.RUNNING.value, started_at, pid, pid_started, host, config_path),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            self._db.executemany(
                "INSERT INTO stages (run_id, name, position, needs, state, max_attempts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, name, position, json.dumps(list(needs)), "pending", attempts)
                    for position, (name, needs, attempts) in enumerate(stages)
                ],
            )
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def update_stage(self, run_id: int, name: str, **fields: Any) -> None:
        unknown = set(fields) - _STAGE_COLUMNS
        if unknown:
            raise ValueError(f"not stage columns: {sorted(unknown)}")
        values = [v.value if isinstance(v, StageState) else v for v in fields.values()]
        assignments = ", ".join(f"{column} = ?" for column in fields)
        with self.transaction():
            self._db.execute(
                f"UPDATE stages SET {assignments} WHERE run_id = ? AND name = ?",
                (*values, run_id, name),
            )

    def record_metrics(self, run_id: int, stage: str, metrics: Mapping[str, float]) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT INTO metrics (run_id, stage, name, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, stage, name) DO UPDATE SET value = excluded.value",
                [(run_id, stage, name, value) for name, value in metrics.items()],
            )

    def finish_run(
        self,
        run_id: int,
        state: RunState,
        *,
        exit_code: int | None,
        ended_at: float,
        message: str | None = None,
        only_if: RunState | None = None,
    ) -> bool:
        """Record how a run ended; with ``only_if``, only when it is in that state.
        Returns whether the run was updated."""
        condition = "" if only_if is None else " AND state = ?"
        parameters: tuple[Any, ...] = (state.value, exit_code, ended_at, message, run_id)
        if only_if is not None:
            parameters += (only_if.value,)
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE runs SET state = ?, exit_code = ?, ended_at = ?,"
                " message = COALESCE(?, message) WHERE id = ?" + condition,
                parameters,
            )
        return cursor.rowcount > 0

    def close_stages(self, run_id: int, state: StageState, message: str, ended_at: float) -> None:
        """End every stage of a run that had not ended (for a cancelled or dead runner)."""
        with self.transaction():
            self._db.execute(
                "UPDATE stages SET state = ?, message = COALESCE(message, ?),"
                " ended_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END"
                " WHERE run_id = ? AND state IN ('pending', 'running')",
                (state.value, message, ended_at, run_id),
            )

    # Reading ---------------------------------------------------------------

    def data_version(self) -> int:
        """Changes whenever another connection commits: the cheapest "anything new?"."""
        return int(self._query("PRAGMA data_version").fetchone()[0])

    def run(self, run_id: int) -> RunRecord | None:
        row = self._query("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_record(row)

    def latest_run(self) -> RunRecord | None:
        row = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else self._run_record(row)

    def latest_run_id(self) -> int | None:
        return self._query("SELECT MAX(id) FROM runs").fetchone()[0]

    def runs(self, limit: int = 50) -> list[RunRecord]:
        """The newest runs first, without their stages."""
        rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._run_record(row, with_stages=False) for row in rows]

    def runs_in_state(self, state: RunState) -> list[RunRecord]:
        rows = self._query("SELECT * FROM runs WHERE state = ? ORDER BY id", (state.value,))
        return [self._run_record(row) for row in rows.fetchall()]

    def _run_record(self, row: sqlite3.Row, *, with_stages: bool = True) -> RunRecord:
        stages: tuple[StageRecord, ...] = ()
        if with_stages:
            metrics: dict[str, dict[str, float]] = {}
            for metric in self._query(
                "SELECT stage, name, value FROM metrics WHERE run_id = ? ORDER BY rowid",
                (row["id"],),
            ):
                metrics.setdefault(metric["stage"], {})[metric["name"]] = metric["value"]
            stages = tuple(
                _stage_record(stage, metrics.get(stage["name"], {}))
                for stage in self._query(
                    "SELECT * FROM stages WHERE run_id = ? ORDER BY position", (row["id"],)
                )
            )
        return RunRecord(
            id=row["id"],
            pipeline=row["pipeline"],
            state=RunState(row["state"]),
            started_at=row["started_at"],
            exit_code=row["exit_code"],
            ended_at=row["ended_at"],
            pid=row["pid"],
            pid_started=row["pid_started"],
            host=row["host"],
            config_path=row["config_path"],
            message=row["message"],
            stages=stages,
        )


def _stage_record(row: sqlite3.Row, metrics: Mapping[str, float]) -> StageRecord:
    return StageRecord(
        name=row["name"],
        position=row["position"],
        needs=tuple(json.loads(row["needs"])),
        state=StageState(row["state"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        exit_code=row["exit_code"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        pid=row["pid"],
        pgid=row["pgid"],
        process_tag=row["process_tag"],
        job_kind=row["job_kind"],
        job_id=row["job_id"],
        job_address=row["job_address"],
        cpu_percent=row["cpu_percent"],
        rss_bytes=row["rss_bytes"],
        peak_rss_bytes=row["peak_rss_bytes"],
        cpu_seconds=row["cpu_seconds"],
        failed_gate=row["failed_gate"],
        message=row["message"],
        metrics=metrics,
    )
