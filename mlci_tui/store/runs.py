"""The ``runs``, ``stages`` and ``metrics`` tables: every run, each of its stages'
state and resources, and the metrics they reported."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlci_tui.events import StoreName
from mlci_tui.states import RunState, StageState
from mlci_tui.store import paths
from mlci_tui.store.connection import Connection
from mlci_tui.store.records import RunRecord, StageRecord

RUN, EXPERIMENT = "run", "experiment"
_NO_RESOURCES = (None,) * 8
"""A stage's pid, pgid, process tag, CPU, RSS, peak RSS, CPU time and failed gate,
unread (`RunsTable.of_experiments`)."""
_NO_METRICS: Mapping[str, float] = MappingProxyType({})
"""The kinds of run: the workspace's own, and an experiment's."""

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
        "cache_key",
        "reasons",
        "cached_from_run",
        "cached_from_stage",
        "cached_from_store",
    }
)


class RunsTable(Connection):
    """Runs, their stages and their last metric values (``store.runs``)."""

    def __init__(self, connection: sqlite3.Connection, db_path: Path, state_dir: Path) -> None:
        super().__init__(connection, db_path)
        self.state_dir = state_dir
        """Where each new run gets its directory of logs."""

    def create(
        self,
        pipeline: str,
        stages: Sequence[tuple[str, Sequence[str], int]],
        *,
        started_at: float,
        pid: int,
        pid_started: float | None,
        host: str,
        config_path: str,
        params: Mapping[str, Any] | None = None,
        experiment: int | None = None,
    ) -> int:
        """A new run in state ``running`` with its stages ``pending``; returns its id.

        ``stages`` holds ``(name, needs, max_attempts)`` in run order. The run of an
        ``experiment`` is of kind ``experiment``, and that experiment's run.
        """
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (pipeline, state, started_at, pid, pid_started, host,"
                " config_path, params, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pipeline,
                    RunState.RUNNING.value,
                    started_at,
                    pid,
                    pid_started,
                    host,
                    config_path,
                    json.dumps(dict(params or {})),
                    RUN if experiment is None else EXPERIMENT,
                ),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            if experiment is not None:
                self._db.execute(
                    "UPDATE experiments SET run_id = ? WHERE id = ?", (run_id, experiment)
                )
            self._db.executemany(
                "INSERT INTO stages (run_id, name, position, needs, state, max_attempts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, name, position, json.dumps(list(needs)), "pending", attempts)
                    for position, (name, needs, attempts) in enumerate(stages)
                ],
            )
            # Inside the transaction: a run whose directory cannot be made is not made.
            paths.run_dir(self.state_dir, run_id).mkdir(paths.DIR_MODE, parents=True, exist_ok=True)
        return run_id

    def update_stage(self, run_id: int, name: str, **fields: Any) -> None:
        unknown = set(fields) - _STAGE_COLUMNS
        if unknown:
            raise ValueError(f"not stage columns: {sorted(unknown)}")
        values = [
            v.value
            if isinstance(v, StageState)
            else json.dumps(list(v))
            if isinstance(v, tuple)
            else v
            for v in fields.values()
        ]
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

    def finish(
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

    def cache_keys(self, stage: str, limit: int = 5) -> list[str]:
        """The cache keys of the stage's latest results (passed or cached), newest first."""
        rows = self._query(
            "SELECT cache_key FROM stages WHERE name = ? AND cache_key IS NOT NULL"
            " AND state IN ('passed', 'cached') ORDER BY run_id DESC LIMIT ?",
            (stage, limit),
        )
        return [row[0] for row in rows]

    def cache_keys_kept(self, keep_runs: int) -> set[str]:
        """The cache keys that the newest ``keep_runs`` runs (of the workspace), the
        runs of every version whose artifact is kept, and every experiment not
        removed (`mlci exp apply` and `promote` restore its outs) used or made."""
        rows = self._query(
            "SELECT DISTINCT cache_key FROM stages WHERE cache_key IS NOT NULL AND ("
            " run_id IN (SELECT id FROM runs WHERE kind = 'run' ORDER BY id DESC LIMIT ?)"
            " OR run_id IN (SELECT run_id FROM versions WHERE pruned_at IS NULL"
            "   OR status = 'live')"
            " OR run_id IN (SELECT run_id FROM experiments))",
            (keep_runs,),
        )
        return {row[0] for row in rows}

    def get(self, run_id: int) -> RunRecord | None:
        row = self._query("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_record(row)

    # `latest`, `latest_id` and `recent` are the workspace's runs: an experiment's
    # run is reached through its experiment (`store.experiments`) or by its id.

    def latest(self) -> RunRecord | None:
        row = self._query(
            "SELECT * FROM runs WHERE kind = 'run' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else self._run_record(row)

    def latest_id(self) -> int | None:
        return self._query("SELECT MAX(id) FROM runs WHERE kind = 'run'").fetchone()[0]

    def recent(self, limit: int = 50) -> list[RunRecord]:
        """The workspace's newest runs first, without their stages."""
        rows = self._query(
            "SELECT * FROM runs WHERE kind = 'run' ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._run_record(row, with_stages=False) for row in rows]

    def of_experiments(self, *, workspace_runs: bool = False) -> list[RunRecord]:
        """Every experiment's run (with ``workspace_runs``, the workspace's runs too),
        oldest first, with their stages and last metric values: three queries whatever
        their number (`mlci exp show`, the dashboard's table). Called inside
        `reading`, they see one state of the store.

        Of each stage only what a table shows is read: its state, attempts, exit code,
        times, message and metrics (`get` reads the rest)."""
        which = "SELECT run_id FROM experiments WHERE run_id IS NOT NULL"
        if workspace_runs:
            which += " UNION SELECT id FROM runs WHERE kind = 'run'"
        rows = self._query(f"SELECT * FROM runs WHERE id IN ({which}) ORDER BY id").fetchall()
        metrics: dict[tuple[int, str], dict[str, float]] = {}
        for run_id, stage, name, value in self._db.execute(
            f"SELECT run_id, stage, name, value FROM metrics WHERE run_id IN ({which})"
            " ORDER BY rowid"
        ):
            metrics.setdefault((run_id, stage), {})[name] = value
        stages: dict[int, list[StageRecord]] = {}
        state_of: Mapping[str, StageState] = {s.value: s for s in StageState}
        for (
            run_id,
            name,
            position,
            state,
            attempt,
            attempts,
            code,
            started,
            ended,
            message,
        ) in self._db.execute(
            "SELECT run_id, name, position, state, attempt, max_attempts, exit_code,"
            f" started_at, ended_at, message FROM stages WHERE run_id IN ({which})"
            " ORDER BY run_id, position"
        ):
            # Positional: a thousand runs' stages are read each time the table is.
            stages.setdefault(run_id, []).append(
                StageRecord(
                    name,
                    position,
                    (),
                    state_of[state],
                    attempt,
                    attempts,
                    code,
                    started,
                    ended,
                    *_NO_RESOURCES,
                    message,
                    metrics.get((run_id, name), _NO_METRICS),
                )
            )
        return [
            self._run_record(row, with_stages=False)._replace(
                stages=tuple(stages.get(row["id"], ()))
            )
            for row in rows
        ]

    def in_state(self, state: RunState, *, kind: str | None = None) -> list[RunRecord]:
        """Runs in ``state``: of ``kind`` (`RUN`, `EXPERIMENT`), or of both."""
        if kind is None:
            rows = self._query("SELECT * FROM runs WHERE state = ? ORDER BY id", (state.value,))
        else:
            rows = self._query(
                "SELECT * FROM runs WHERE state = ? AND kind = ? ORDER BY id", (state.value, kind)
            )
        return [self._run_record(row) for row in rows.fetchall()]

    def set_git(self, run_id: int, commit: str | None, dirty: bool | None) -> None:
        """The commit the run's project was at, and whether its work tree had changes."""
        with self.transaction():
            self._query(
                "UPDATE runs SET git_commit = ?, git_dirty = ? WHERE id = ?",
                (commit, None if dirty is None else int(dirty), run_id),
            )

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
            params=json.loads(row["params"] or "{}"),
            git_commit=row["git_commit"],
            git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
            kind=row["kind"],
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
        cache_key=row["cache_key"],
        reasons=tuple(json.loads(row["reasons"] or "[]")),
        cached_from_run=row["cached_from_run"],
        cached_from_stage=row["cached_from_stage"],
        cached_from_store=_store_name(row["cached_from_store"]),
    )


def _store_name(text: str | None) -> StoreName | None:
    if not text:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return StoreName(*json.loads(text))
    return None
