"""The ``mirrored`` and ``mirror_syncs`` tables: what has reached a mirror (an
MLflow tracking server), and how each attempt to bring it up to date ended.

A mirror is a target, a string naming where (its tracking URI, experiment and
model). Each item mirrored there (``run:12``, ``version:3``, ``deployment:7``,
``alias``) is remembered with the id the mirror gave it and a digest of what
was sent, so a later sync sends only what is new or changed.
"""

from __future__ import annotations

from typing import NamedTuple

from mlci_tui.store.connection import Connection

SYNC_RUNNING = "running"
SYNC_SUCCEEDED = "succeeded"
SYNC_FAILED = "failed"
SYNC_INTERRUPTED = "interrupted"


class Mirrored(NamedTuple):
    remote_id: str
    digest: str


class SyncRecord(NamedTuple):
    id: int
    target: str
    started_at: float
    ended_at: float | None
    outcome: str
    message: str | None


class MirroredTable(Connection):
    """What reached each mirror, and each sync to it (``store.mirrored``)."""

    def get(self, target: str) -> dict[str, Mirrored]:
        """Each item mirrored to ``target``: the id it has there, the digest of what was sent."""
        rows = self._query(
            "SELECT item, remote_id, digest FROM mirrored WHERE target = ?", (target,)
        )
        return {row["item"]: Mirrored(row["remote_id"], row["digest"]) for row in rows}

    def set(self, target: str, item: str, remote_id: str, digest: str, *, when: float) -> None:
        with self.transaction():
            self._query(
                "INSERT INTO mirrored (target, item, remote_id, digest, mirrored_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, item) DO UPDATE SET"
                " remote_id = excluded.remote_id, digest = excluded.digest,"
                " mirrored_at = excluded.mirrored_at",
                (target, item, remote_id, digest, when),
            )

    def forget(self, target: str, item: str) -> None:
        with self.transaction():
            self._query("DELETE FROM mirrored WHERE target = ? AND item = ?", (target, item))

    def start_sync(self, target: str, when: float, *, outcome: str = SYNC_RUNNING) -> int:
        """A new sync row: ``running`` while a sync holding the sync lock works, or
        already ended (a failure recorded for a sync that could not record it)."""
        with self.transaction():
            cursor = self._query(
                "INSERT INTO mirror_syncs (target, started_at, outcome) VALUES (?, ?, ?)",
                (target, when, outcome),
            )
        return cursor.lastrowid or 0

    def end_sync(
        self, sync_id: int, outcome: str, message: str, *, when: float, if_running: bool = False
    ) -> bool:
        """End a sync; with ``if_running``, only one still ``running``. Whether it did."""
        with self.transaction():
            cursor = self._query(
                "UPDATE mirror_syncs SET ended_at = ?, outcome = ?, message = ? WHERE id = ?"
                + (" AND outcome = ?" if if_running else ""),
                (when, outcome, message, sync_id, *([SYNC_RUNNING] if if_running else [])),
            )
        return cursor.rowcount == 1

    def running_syncs(self) -> list[SyncRecord]:
        """Syncs to any target still marked ``running``, oldest first."""
        rows = self._query(
            "SELECT * FROM mirror_syncs WHERE outcome = ? ORDER BY id", (SYNC_RUNNING,)
        )
        return [SyncRecord(**dict(row)) for row in rows]

    def syncs(self, target: str, limit: int = 1) -> list[SyncRecord]:
        """The newest ``limit`` syncs to ``target``, newest first."""
        rows = self._query(
            "SELECT * FROM mirror_syncs WHERE target = ? ORDER BY id DESC LIMIT ?",
            (target, limit),
        )
        return [SyncRecord(**dict(row)) for row in rows]
