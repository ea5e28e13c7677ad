"""The model registry's tables: versions, the deploy audit trail, alerts,
pending decisions and monitor samples."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlci_tui.states import DeployKind, DeployOutcome, VersionStatus
from mlci_tui.store.connection import Connection
from mlci_tui.store.records import (
    AlertRecord,
    DecisionRecord,
    DeploymentRecord,
    VersionRecord,
)


class DeploymentBusy(Exception):
    """Another deploy or rollback holds the lock."""

    def __init__(self, running: DeploymentRecord) -> None:
        super().__init__(f"deployment {running.id} is running")
        self.running = running


class RegistryTables(Connection):
    # Versions ----------------------------------------------------------------

    def add_version(
        self,
        *,
        run_id: int | None,
        created_at: float,
        artifact_name: str,
        source_path: str,
        is_dir: bool,
        sha256: str,
        size_bytes: int,
        metrics: Mapping[str, float],
        git_commit: str | None,
        git_dirty: bool | None,
    ) -> int:
        """A new version row; its number is never reused (AUTOINCREMENT)."""
        with self.transaction():
            cursor = self._query(
                "INSERT INTO versions (run_id, created_at, artifact_name, source_path, is_dir,"
                " sha256, size_bytes, metrics, git_commit, git_dirty, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    created_at,
                    artifact_name,
                    source_path,
                    is_dir,
                    sha256,
                    size_bytes,
                    json.dumps(dict(metrics)),
                    git_commit,
                    git_dirty,
                    VersionStatus.REGISTERED.value,
                ),
            )
        number = cursor.lastrowid
        assert number is not None
        return number

    def version(self, number: int) -> VersionRecord | None:
        row = self._query("SELECT * FROM versions WHERE number = ?", (number,)).fetchone()
        return None if row is None else _version(row)

    def versions(self, limit: int | None = None) -> list[VersionRecord]:
        """Newest first."""
        sql = "SELECT * FROM versions ORDER BY number DESC"
        rows = self._query(sql + " LIMIT ?", (limit,)) if limit else self._query(sql)
        return [_version(row) for row in rows]

    def version_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM versions").fetchone()[0])

    def registry_stamp(self) -> tuple[object, ...]:
        """Changes whenever a version, deployment or alert is added or settled."""
        return tuple(
            self._query(
                "SELECT (SELECT MAX(number) FROM versions),"
                " (SELECT COUNT(*) FROM versions WHERE pruned_at IS NOT NULL),"
                " (SELECT MAX(id) FROM deployments),"
                " (SELECT COUNT(*) FROM deployments WHERE outcome != 'running'),"
                " (SELECT MAX(id) FROM alerts)"
            ).fetchone()
        )

    def live_version(self) -> VersionRecord | None:
        row = self._query(
            "SELECT * FROM versions WHERE status = ? ORDER BY number DESC LIMIT 1",
            (VersionStatus.LIVE.value,),
        ).fetchone()
        return None if row is None else _version(row)

    def known_good(self, exclude: Iterable[int] = ()) -> VersionRecord | None:
        """The version of the newest succeeded deployment that is ``previous`` (was live
        and healthy) and still has its artifact, other than ``exclude``. The live
        version is never one: its status is ``live``."""
        skip = tuple(exclude)
        row = self._query(
            "SELECT versions.* FROM deployments JOIN versions ON versions.number = to_version"
            " WHERE outcome = ? AND status = ? AND pruned_at IS NULL"
            f" AND number NOT IN ({', '.join('?' * len(skip))})"
            " ORDER BY deployments.id DESC LIMIT 1",
            (DeployOutcome.SUCCEEDED.value, VersionStatus.PREVIOUS.value, *skip),
        ).fetchone()
        return None if row is None else _version(row)

    def unpruned_beyond(self, keep: int) -> list[int]:
        """Numbers of the versions older than the newest ``keep`` whose artifacts are
        still stored, newest first. Only the numbers: this runs after every deploy."""
        rows = self._query(
            "SELECT number FROM (SELECT number, pruned_at FROM versions"
            " ORDER BY number DESC LIMIT -1 OFFSET ?) WHERE pruned_at IS NULL",
            (keep,),
        )
        return [row[0] for row in rows]

    def _set_status(self, number: int, status: VersionStatus, description: str | None) -> None:
        if status is VersionStatus.LIVE:
            # At most one version is live: whatever was live and is not this one is
            # demoted by the caller's explicit update, or here as a safety net.
            self._query(
                "UPDATE versions SET status = ? WHERE status = ? AND number != ?",
                (VersionStatus.PREVIOUS.value, VersionStatus.LIVE.value, number),
            )
        self._query(
            "UPDATE versions SET status = ?, description = COALESCE(?, description)"
            " WHERE number = ?",
            (status.value, description, number),
        )

    def mark_pruned(self, number: int, when: float) -> None:
        with self.transaction():
            self._query("UPDATE versions SET pruned_at = ? WHERE number = ?", (when, number))

    # Deployments (the audit trail) -------------------------------------------

    def begin_deployment(
        self,
        *,
        kind: DeployKind,
        from_version: int | None,
        to_version: int,
        user: str | None,
        reason: str | None,
        run_id: int | None,
        started_at: float,
        pid: int,
        pid_started: float | None,
        host: str,
        process_tag: str,
        is_stale: Callable[[DeploymentRecord], bool],
    ) -> DeploymentRecord:
        """Take the deploy lock and record the deployment as running.

        Raises `DeploymentBusy` if another one is running. One whose process
        died (``is_stale``) is marked interrupted instead of blocking forever.
        """
        with self.transaction():
            for row in self._query(
                "SELECT * FROM deployments WHERE outcome = ?", (DeployOutcome.RUNNING.value,)
            ).fetchall():
                running = _deployment(row)
                if not is_stale(running):
                    raise DeploymentBusy(running)
                self._query(
                    "UPDATE deployments SET outcome = ?, ended_at = ?, message = ? WHERE id = ?",
                    (
                        DeployOutcome.INTERRUPTED.value,
                        started_at,
                        "the deploying process stopped before it finished",
                        running.id,
                    ),
                )
            cursor = self._query(
                "INSERT INTO deployments (kind, from_version, to_version, user, reason, run_id,"
                " started_at, outcome, pid, pid_started, host, process_tag)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind.value,
                    from_version,
                    to_version,
                    user,
                    reason,
                    run_id,
                    started_at,
                    DeployOutcome.RUNNING.value,
                    pid,
                    pid_started,
                    host,
                    process_tag,
                ),
            )
        deployment = self.deployment(cursor.lastrowid or 0)
        assert deployment is not None
        return deployment

    def set_deployment_log(self, deployment_id: int, log_path: str) -> None:
        with self.transaction():
            self._query(
                "UPDATE deployments SET log_path = ? WHERE id = ?", (log_path, deployment_id)
            )

    def finish_deployment(
        self,
        deployment_id: int,
        outcome: DeployOutcome,
        *,
        ended_at: float,
        message: str | None,
        statuses: Iterable[tuple[int, VersionStatus, str | None]] = (),
    ) -> None:
        """End a deployment and set the versions' statuses, in one transaction."""
        with self.transaction():
            self._query(
                "UPDATE deployments SET outcome = ?, ended_at = ?, message = ? WHERE id = ?",
                (outcome.value, ended_at, message, deployment_id),
            )
            for number, status, description in statuses:
                self._set_status(number, status, description)

    def deployment(self, deployment_id: int) -> DeploymentRecord | None:
        row = self._query("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        return None if row is None else _deployment(row)

    def deployments(self) -> list[DeploymentRecord]:
        """Newest first."""
        rows = self._query("SELECT * FROM deployments ORDER BY id DESC")
        return [_deployment(row) for row in rows]

    def running_deployments(self) -> list[DeploymentRecord]:
        rows = self._query(
            "SELECT * FROM deployments WHERE outcome = ? ORDER BY id",
            (DeployOutcome.RUNNING.value,),
        )
        return [_deployment(row) for row in rows]

    # Alerts and decisions ------------------------------------------------------

    def add_alert(
        self, kind: str, message: str, *, created_at: float, version: int | None, run_id: int | None
    ) -> int:
        with self.transaction():
            cursor = self._query(
                "INSERT INTO alerts (created_at, kind, message, version, run_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (created_at, kind, message, version, run_id),
            )
        return cursor.lastrowid or 0

    def set_alert_delivery(self, alert_id: int, delivery: str) -> None:
        with self.transaction():
            self._query("UPDATE alerts SET delivery = ? WHERE id = ?", (delivery, alert_id))

    def alerts(self, limit: int = 50) -> list[AlertRecord]:
        rows = self._query("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))
        return [AlertRecord(**dict(row)) for row in rows]

    def add_decision(
        self, *, version: int, target: int | None, finding: str, created_at: float
    ) -> int:
        with self.transaction():
            cursor = self._query(
                "INSERT INTO decisions (created_at, version, target, finding, state)"
                " VALUES (?, ?, ?, ?, 'pending')",
                (created_at, version, target, finding),
            )
        return cursor.lastrowid or 0

    def decisions(self, *, version: int | None = None, limit: int = 50) -> list[DecisionRecord]:
        """Pending decisions, newest first; of one version, or of all."""
        # Filtered here, not by the caller: a LIMIT applied first could hide the version's.
        of_version = "" if version is None else " AND version = ?"
        rows = self._query(
            f"SELECT * FROM decisions WHERE state = 'pending'{of_version} ORDER BY id DESC LIMIT ?",
            (limit,) if version is None else (version, limit),
        )
        return [DecisionRecord(**dict(row)) for row in rows]

    def decide(self, decision_id: int, state: str, *, by: str | None, when: float) -> bool:
        """Answer a pending decision; False if it was not pending any more."""
        with self.transaction():
            cursor = self._query(
                "UPDATE decisions SET state = ?, decided_at = ?, decided_by = ?"
                " WHERE id = ? AND state = 'pending'",
                (state, when, by, decision_id),
            )
        return cursor.rowcount > 0

    # Monitor samples -------------------------------------------------------------

    def add_sample(
        self,
        *,
        version: int,
        passed: bool,
        metrics: Mapping[str, float],
        finding: str | None,
        created_at: float,
        run_id: int | None,
    ) -> None:
        with self.transaction():
            self._query(
                "INSERT INTO monitor_samples"
                " (created_at, version, passed, metrics, finding, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (created_at, version, passed, json.dumps(dict(metrics)), finding, run_id),
            )

    def failures_in_a_row(self, version: int) -> int:
        """How many of the version's samples failed since the newest that passed."""
        return int(
            self._query(
                "SELECT COUNT(*) FROM monitor_samples WHERE version = ? AND NOT passed"
                " AND id > COALESCE((SELECT id FROM monitor_samples WHERE version = ? AND passed"
                " ORDER BY id DESC LIMIT 1), 0)",
                (version, version),
            ).fetchone()[0]
        )


_STATUSES = {status.value: status for status in VersionStatus}


def _version(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(
        number=row["number"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        artifact_name=row["artifact_name"],
        source_path=row["source_path"],
        is_dir=bool(row["is_dir"]),
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        metrics=json.loads(row["metrics"]),
        status=_STATUSES[row["status"]],
        git_commit=row["git_commit"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        description=row["description"],
        pruned_at=row["pruned_at"],
    )


def _deployment(row: sqlite3.Row) -> DeploymentRecord:
    data: dict[str, Any] = dict(row)
    data["kind"] = DeployKind(data["kind"])
    data["outcome"] = DeployOutcome(data["outcome"])
    return DeploymentRecord(**data)
