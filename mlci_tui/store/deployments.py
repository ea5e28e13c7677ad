"""The ``deployments`` table: the audit trail of every deploy and rollback, and the
deploy lock (one running deployment at a time, across processes)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_tui.states import DeployKind, DeployOutcome, VersionStatus
from mlci_tui.store.connection import Connection
from mlci_tui.store.records import DeploymentRecord
from mlci_tui.store.versions import VersionsTable

if TYPE_CHECKING:
    # Only what deploys imports it: commands that only read the store skip building
    # the class at start-up.
    from mlci_tui.store.deployment_request import DeploymentRequest


class DeploymentBusy(Exception):
    """Another deploy or rollback holds the lock."""

    def __init__(self, running: DeploymentRecord) -> None:
        super().__init__(f"deployment {running.id} is running")
        self.running = running


class DeploymentRefused(Exception):
    """What the deploy lock's transaction found that forbids this deployment."""


class DeploymentsTable(Connection):
    """Deploys and rollbacks (``store.deployments``). The deploy lock decides with the
    versions table (pruned? live?), and finishing a deployment sets the versions'
    statuses in the same transaction: so it is given that table."""

    def __init__(
        self, connection: sqlite3.Connection, db_path: Path, versions: VersionsTable
    ) -> None:
        super().__init__(connection, db_path)
        self._versions = versions

    def begin(
        self,
        request: DeploymentRequest,
        *,
        started_at: float,
        is_stale: Callable[[DeploymentRecord], bool],
    ) -> DeploymentRecord:
        """Take the deploy lock and record the deployment as running.

        Raises `DeploymentBusy` if another one is running. One whose process
        died (``is_stale``) is marked interrupted instead of blocking forever.
        Raises `DeploymentRefused` if the target version was pruned meanwhile, or
        if the request's ``only_from`` is no longer the live version (production
        moved: an automatic rollback from it is no longer anyone's to make).
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
            # Decided here, under the lock that pruning also takes (`claim_for_pruning`).
            to_version, only_from = request.to_version, request.only_from
            target = self._query(
                "SELECT pruned_at FROM versions WHERE number = ?", (to_version,)
            ).fetchone()
            if target is not None and target[0] is not None:
                raise DeploymentRefused(f"the artifact of v{to_version} was pruned meanwhile")
            if only_from is not None:
                live = self._versions.live()
                if live is None or live.number != only_from:
                    now = "nothing" if live is None else live.name
                    raise DeploymentRefused(f"production moved from v{only_from} to {now}")
            row_id = self._insert_deployment(
                request,
                started_at=started_at,
                outcome=DeployOutcome.RUNNING.value,
                pid_started=request.pid_started,
                process_tag=request.process_tag,
            )
        deployment = self.get(row_id)
        assert deployment is not None
        return deployment

    def record_refused(self, request: DeploymentRequest, *, at: float, message: str) -> None:
        """A deploy that never started (another one held the lock), for the audit trail."""
        with self.transaction():
            self._insert_deployment(
                request,
                started_at=at,
                ended_at=at,
                outcome=DeployOutcome.FAILED.value,
                message=message,
            )

    def _insert_deployment(self, request: DeploymentRequest, **columns: object) -> int:
        """A deployments row of ``request`` and these other ``columns``; its id.
        Called in a transaction."""
        columns |= {
            "kind": request.kind.value,
            "from_version": request.from_version,
            "to_version": request.to_version,
            "user": request.user,
            "reason": request.reason,
            "run_id": request.run_id,
            "pid": request.pid,
            "host": request.host,
        }
        names = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO deployments ({names}) VALUES ({marks})"
        return self._query(sql, tuple(columns.values())).lastrowid or 0

    def claim_for_pruning(self, keep: int, when: float) -> list[int]:
        """Mark as pruned the versions beyond the newest ``keep`` that nothing needs —
        not live, not the last known-good, not the target or source of a deployment
        in progress — in one transaction with the deploy lock's, so that no deploy
        starts on a version being pruned. Deleting their files is the caller's."""
        with self.transaction():
            candidates = self._versions.unpruned_beyond(keep)
            if not candidates:
                return []
            protected = {
                number
                for row in self._query(
                    "SELECT from_version, to_version FROM deployments WHERE outcome = ?",
                    (DeployOutcome.RUNNING.value,),
                )
                for number in row
                if number is not None
            }
            for version in (self._versions.live(), self._versions.known_good()):
                if version is not None:
                    protected.add(version.number)
            chosen = [number for number in candidates if number not in protected]
            for number in chosen:
                self._query("UPDATE versions SET pruned_at = ? WHERE number = ?", (when, number))
        return chosen

    def set_log(self, deployment_id: int, log_path: str) -> None:
        with self.transaction():
            self._query(
                "UPDATE deployments SET log_path = ? WHERE id = ?", (log_path, deployment_id)
            )

    def finish(
        self,
        deployment_id: int,
        outcome: DeployOutcome,
        *,
        ended_at: float,
        message: str | None,
        statuses: Iterable[tuple[int, VersionStatus, str | None]] = (),
        owes_analysis: int | None = None,
    ) -> None:
        """End a deployment and set the versions' statuses, in one transaction;
        ``owes_analysis``: the version an analysis is to follow, owed from now on (so
        a crash before it finishes leaves the version known as not analysed)."""
        with self.transaction():
            self._query(
                "UPDATE deployments SET outcome = ?, ended_at = ?, message = ? WHERE id = ?",
                (outcome.value, ended_at, message, deployment_id),
            )
            for number, status, description in statuses:
                self._versions.write_status(number, status, description)
            if owes_analysis is not None:
                self._query(
                    "UPDATE versions SET analysis_owed = ? WHERE number = ?",
                    (deployment_id, owes_analysis),
                )

    def get(self, deployment_id: int) -> DeploymentRecord | None:
        row = self._query("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        return None if row is None else _deployment(row)

    def latest(self) -> DeploymentRecord | None:
        row = self._query("SELECT * FROM deployments ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else _deployment(row)

    def all(self, run_id: int | None = None) -> list[DeploymentRecord]:
        """Newest first; with ``run_id``, only those that run made."""
        if run_id is None:
            rows = self._query("SELECT * FROM deployments ORDER BY id DESC")
        else:
            rows = self._query(
                "SELECT * FROM deployments WHERE run_id = ? ORDER BY id DESC", (run_id,)
            )
        return [_deployment(row) for row in rows]

    def running(self) -> list[DeploymentRecord]:
        rows = self._query(
            "SELECT * FROM deployments WHERE outcome = ? ORDER BY id",
            (DeployOutcome.RUNNING.value,),
        )
        return [_deployment(row) for row in rows]


def _deployment(row: sqlite3.Row) -> DeploymentRecord:
    data: dict[str, Any] = dict(row)
    data["kind"] = DeployKind(data["kind"])
    data["outcome"] = DeployOutcome(data["outcome"])
    return DeploymentRecord(**data)
