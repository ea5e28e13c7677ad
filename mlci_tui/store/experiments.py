"""The ``experiments`` table: every experiment, queued, running or ended.

An experiment is claimed by the worker that runs it in one write transaction
(`ExperimentsTable.claim`), which also records the worker's pid: two workers
never run one experiment, and a worker killed outright leaves a row that names
a dead pid, which recovery marks ``interrupted``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from mlci_tui.states import ExperimentState
from mlci_tui.store.connection import Connection
from mlci_tui.store.records import ExperimentRecord


class NewExperiment(NamedTuple):
    """What `ExperimentsTable.add` needs of one experiment."""

    name: str
    params: Mapping[str, Any]
    sets: tuple[str, ...]


class ExperimentsTable(Connection):
    """Experiments (``store.experiments``)."""

    def add(
        self,
        experiments: Sequence[NewExperiment],
        *,
        config_path: str,
        batch: str | None,
        keep: bool,
        now: float,
    ) -> list[int]:
        """Queue ``experiments`` in one transaction; their ids, in order."""
        ids = []
        with self.transaction():
            for experiment in experiments:
                cursor = self._db.execute(
                    "INSERT INTO experiments (name, params, sets, state, batch, config_path,"
                    " keep, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        experiment.name,
                        json.dumps(dict(experiment.params)),
                        json.dumps(list(experiment.sets)),
                        ExperimentState.QUEUED.value,
                        batch,
                        config_path,
                        int(keep),
                        now,
                    ),
                )
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
        return ids

    def claim(
        self,
        *,
        batch: str | None,
        pid: int,
        pid_started: float | None,
        host: str,
        now: float,
        experiment_id: int | None = None,
    ) -> ExperimentRecord | None:
        """Take the oldest queued experiment of ``batch`` (None: of the queue; or the
        one ``experiment_id`` names) for the worker ``pid``; None when none is left."""
        parameters: tuple[Any, ...]
        if experiment_id is not None:
            where, parameters = "id = ?", (experiment_id,)
        elif batch is None:
            where, parameters = "batch IS NULL", ()
        else:
            where, parameters = "batch = ?", (batch,)
        with self.transaction():
            row = self._db.execute(
                f"SELECT id FROM experiments WHERE state = 'queued' AND {where}"
                " ORDER BY id LIMIT 1",
                parameters,
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE experiments SET state = 'running', started_at = ?, pid = ?,"
                " pid_started = ?, host = ? WHERE id = ?",
                (now, pid, pid_started, host, row[0]),
            )
        return self.get(row[0])

    def set_workspace(
        self,
        experiment_id: int,
        *,
        workspace: str,
        method: str,
        git_commit: str | None,
        code_hash: str | None,
    ) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE experiments SET workspace = ?, method = ?, git_commit = ?,"
                " code_hash = ? WHERE id = ?",
                (workspace, method, git_commit, code_hash, experiment_id),
            )

    def take(
        self, experiment_id: int, *, from_pid: int, pid: int, pid_started: float | None
    ) -> ExperimentRecord | None:
        """Hand a running experiment from the process that claimed it (``from_pid``) to
        its worker ``pid``; None if it is not running under ``from_pid`` any more."""
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE experiments SET pid = ?, pid_started = ?"
                " WHERE id = ? AND state = 'running' AND pid = ?",
                (pid, pid_started, experiment_id, from_pid),
            )
        return self.get(experiment_id) if cursor.rowcount else None

    def moved(self, experiment_id: int, workspace: str) -> None:
        """Where its workspace is now (kept, once it ended)."""
        with self.transaction():
            self._db.execute(
                "UPDATE experiments SET workspace = ? WHERE id = ?", (workspace, experiment_id)
            )

    def finish(
        self,
        experiment_id: int,
        state: ExperimentState,
        *,
        ended_at: float,
        message: str | None = None,
        only_if: Collection[ExperimentState] = (ExperimentState.RUNNING,),
    ) -> bool:
        """Record how an experiment ended, if it is still in one of ``only_if``."""
        marks = ", ".join("?" * len(only_if))
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE experiments SET state = ?, ended_at = ?, message = COALESCE(?, message)"
                f" WHERE id = ? AND state IN ({marks})",
                (state.value, ended_at, message, experiment_id, *(s.value for s in only_if)),
            )
        return cursor.rowcount > 0

    def cancel_queued(
        self, ids: Collection[int] | None, *, now: float, batch: str | None = None
    ) -> list[int]:
        """Cancel queued experiments (``ids``, or all of ``batch`` when None): those
        cancelled."""
        parameters: tuple[Any, ...]
        if ids is None:
            where, parameters = "batch = ?", (batch,)
        else:
            where = f"id IN ({', '.join('?' * len(ids))})"
            parameters = tuple(ids)
        with self.transaction():
            rows = self._db.execute(
                f"SELECT id FROM experiments WHERE state = 'queued' AND {where}", parameters
            ).fetchall()
            self._db.execute(
                "UPDATE experiments SET state = 'cancelled', ended_at = ?,"
                " message = 'cancelled before it started'"
                f" WHERE state = 'queued' AND {where}",
                (now, *parameters),
            )
        return [row[0] for row in rows]

    def remove(self, experiment_id: int) -> None:
        """Forget an experiment; its run goes too, unless a version was made from it."""
        with self.transaction():
            row = self._db.execute(
                "SELECT run_id FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
            self._db.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))
            if row is not None and row[0] is not None:
                self._db.execute(
                    "DELETE FROM runs WHERE id = ? AND kind = 'experiment'"
                    " AND id NOT IN (SELECT run_id FROM versions WHERE run_id IS NOT NULL)",
                    (row[0],),
                )

    def get(self, experiment_id: int) -> ExperimentRecord | None:
        row = self._query("SELECT * FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        return None if row is None else _record(row)

    def of_run(self, run_id: int) -> ExperimentRecord | None:
        row = self._query("SELECT * FROM experiments WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _record(row)

    def all(self, *, batch: str | None = None) -> list[ExperimentRecord]:
        """Every experiment (of ``batch``), oldest first."""
        if batch is None:
            rows = self._query("SELECT * FROM experiments ORDER BY id")
        else:
            rows = self._query("SELECT * FROM experiments WHERE batch = ? ORDER BY id", (batch,))
        return [_record(row) for row in rows.fetchall()]

    def in_state(self, *states: ExperimentState) -> list[ExperimentRecord]:
        marks = ", ".join("?" * len(states))
        rows = self._query(
            f"SELECT * FROM experiments WHERE state IN ({marks}) ORDER BY id",
            tuple(s.value for s in states),
        )
        return [_record(row) for row in rows.fetchall()]

    def counts(self) -> dict[ExperimentState, int]:
        """How many experiments are in each state (only the states some are in)."""
        rows = self._query("SELECT state, COUNT(*) FROM experiments GROUP BY state")
        return {ExperimentState(row[0]): row[1] for row in rows}

    def stamp(self) -> tuple[object, ...]:
        """Changes whenever an experiment is added, claimed, ends or is removed."""
        return tuple(
            self._query(
                "SELECT COUNT(*), MAX(id), COUNT(run_id), SUM(ended_at IS NOT NULL),"
                " SUM(state = 'running') FROM experiments"
            ).fetchone()
        )


def _record(row: sqlite3.Row) -> ExperimentRecord:
    return ExperimentRecord(
        id=row["id"],
        name=row["name"],
        state=ExperimentState(row["state"]),
        params=json.loads(row["params"]),
        sets=tuple(json.loads(row["sets"])),
        config_path=row["config_path"],
        queued_at=row["queued_at"],
        batch=row["batch"],
        keep=bool(row["keep"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        run_id=row["run_id"],
        pid=row["pid"],
        pid_started=row["pid_started"],
        host=row["host"],
        workspace=row["workspace"],
        method=row["method"],
        git_commit=row["git_commit"],
        code_hash=row["code_hash"],
        message=row["message"],
    )
