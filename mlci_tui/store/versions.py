"""The ``versions`` table: every registered model version, its status and metrics."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping

from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import DeployOutcome, VersionStatus
from mlci_tui.store.connection import Connection
from mlci_tui.store.records import VersionRecord

# Each version with its newest monitor sample's metrics: how it does in production.
_SELECT = (
    "SELECT versions.*, (SELECT metrics FROM monitor_samples AS sample"
    " WHERE sample.version = versions.number ORDER BY sample.id DESC LIMIT 1) AS live_metrics"
)


class VersionsTable(Connection):
    """Every registered model version (``store.versions``)."""

    def add(
        self,
        *,
        run_id: int | None,
        created_at: float,
        artifact_name: str,
        source_path: str,
        is_dir: bool,
        sha256: str,
        size_bytes: int,
        metrics: Mapping[MetricKey, float],
        git_commit: str | None,
        git_dirty: bool | None,
        params: Mapping[str, object] | None = None,
        experiment_id: int | None = None,
    ) -> int:
        """A new version row; its number is never reused (AUTOINCREMENT)."""
        with self.transaction():
            cursor = self._query(
                "INSERT INTO versions (run_id, created_at, artifact_name, source_path, is_dir,"
                " sha256, size_bytes, metrics, git_commit, git_dirty, status, params,"
                " experiment_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    created_at,
                    artifact_name,
                    source_path,
                    is_dir,
                    sha256,
                    size_bytes,
                    json.dumps([[k.stage, k.name, v] for k, v in metrics.items()]),
                    git_commit,
                    git_dirty,
                    VersionStatus.REGISTERED.value,
                    json.dumps(dict(params or {})),
                    experiment_id,
                ),
            )
        number = cursor.lastrowid
        assert number is not None
        return number

    def get(self, number: int) -> VersionRecord | None:
        row = self._query(_SELECT + " FROM versions WHERE number = ?", (number,)).fetchone()
        return None if row is None else _version(row)

    def recent(self, limit: int | None = None) -> list[VersionRecord]:
        """Newest first; all of them without ``limit``."""
        sql = _SELECT + " FROM versions ORDER BY number DESC"
        rows = self._query(sql + " LIMIT ?", (limit,)) if limit else self._query(sql)
        return [_version(row) for row in rows]

    def with_sha256(self, sha256: str) -> VersionRecord | None:
        """The newest version whose artifact has ``sha256`` and is still stored."""
        row = self._query(
            _SELECT + " FROM versions WHERE sha256 = ? AND pruned_at IS NULL"
            " ORDER BY number DESC LIMIT 1",
            (sha256,),
        ).fetchone()
        return None if row is None else _version(row)

    def of_run(self, run_id: int) -> VersionRecord | None:
        """The version a run registered, if it registered one."""
        row = self._query(
            _SELECT + " FROM versions WHERE run_id = ? ORDER BY number DESC LIMIT 1", (run_id,)
        ).fetchone()
        return None if row is None else _version(row)

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM versions").fetchone()[0])

    def live(self) -> VersionRecord | None:
        row = self._query(
            _SELECT + " FROM versions WHERE status = ? ORDER BY number DESC LIMIT 1",
            (VersionStatus.LIVE.value,),
        ).fetchone()
        return None if row is None else _version(row)

    def known_good(self, exclude: Iterable[int] = ()) -> VersionRecord | None:
        """The version of the newest succeeded deployment that is ``previous`` (was live
        and healthy) and still has its artifact, other than ``exclude``. The live
        version is never one: its status is ``live``; nor is one that ever failed
        its analysis, whatever became of it after, nor one whose analysis never
        finished (a crash or a cancel cut it short, or production moved during it)."""
        skip = tuple(exclude)
        row = self._query(
            _SELECT + " FROM deployments JOIN versions ON versions.number = to_version"
            " WHERE outcome = ? AND status = ? AND pruned_at IS NULL AND analysis_failed IS NULL"
            " AND analysis_owed IS NULL"
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

    def write_status(self, number: int, status: VersionStatus, description: str | None) -> None:
        """`set_status` inside the caller's transaction (a deployment's end sets several)."""
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

    def registered(self) -> list[VersionRecord]:
        """Versions still ``registered`` (never deployed) whose artifact is kept."""
        rows = self._query(
            _SELECT + " FROM versions WHERE status = ? AND pruned_at IS NULL",
            (VersionStatus.REGISTERED.value,),
        )
        return [_version(row) for row in rows]

    def set_status(self, number: int, status: VersionStatus, description: str | None) -> None:
        with self.transaction():
            self.write_status(number, status, description)

    def mark_analysis_failed(self, number: int, finding: str) -> None:
        """``number`` failed its analysis: never a rollback target from now on."""
        with self.transaction():
            self._query(
                "UPDATE versions SET analysis_failed = ?, analysis_owed = NULL WHERE number = ?",
                (finding, number),
            )

    def mark_analysis_passed(self, number: int) -> None:
        """``number`` passed its whole post-deploy analysis: it owes none now."""
        with self.transaction():
            self._query("UPDATE versions SET analysis_owed = NULL WHERE number = ?", (number,))


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
        metrics={MetricKey(stage, name): v for stage, name, v in json.loads(row["metrics"])},
        status=_STATUSES[row["status"]],
        git_commit=row["git_commit"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        description=row["description"],
        pruned_at=row["pruned_at"],
        live_metrics=json.loads(row["live_metrics"] or "{}"),
        params=json.loads(row["params"] or "{}"),
        analysis_owed=row["analysis_owed"],
        experiment_id=row["experiment_id"],
    )
