"""The ``decisions`` table: rollbacks the monitor proposes for a person to confirm
(``auto_rollback = "ask"``)."""

from __future__ import annotations

from mlci_tui.store.connection import Connection
from mlci_tui.store.records import DecisionRecord


class DecisionsTable(Connection):
    """Rollbacks proposed, and how each was answered (``store.decisions``)."""

    def add(self, *, version: int, target: int | None, finding: str, created_at: float) -> int:
        with self.transaction():
            cursor = self._query(
                "INSERT INTO decisions (created_at, version, target, finding, state)"
                " VALUES (?, ?, ?, ?, 'pending')",
                (created_at, version, target, finding),
            )
        return cursor.lastrowid or 0

    def pending(self, *, version: int | None = None, limit: int = 50) -> list[DecisionRecord]:
        """Pending decisions, newest first; of one version, or of all."""
        # Filtered here, not by the caller: a LIMIT applied first could hide the version's.
        of_version = "" if version is None else " AND version = ?"
        rows = self._query(
            f"SELECT * FROM decisions WHERE state = 'pending'{of_version} ORDER BY id DESC LIMIT ?",
            (limit,) if version is None else (version, limit),
        )
        return [DecisionRecord(**dict(row)) for row in rows]

    def supersede(self, live: int, when: float) -> int:
        """Production moved to ``live``: a pending decision about another version is
        nobody's to make any more. Returns how many were pending."""
        with self.transaction():
            cursor = self._query(
                "UPDATE decisions SET state = 'superseded', decided_at = ?, decided_by = ?"
                " WHERE state = 'pending' AND version != ?",
                (when, f"v{live} went live", live),
            )
        return cursor.rowcount

    def decide(self, decision_id: int, state: str, *, by: str | None, when: float) -> bool:
        """Answer a pending decision; False if it was not pending any more."""
        with self.transaction():
            cursor = self._query(
                "UPDATE decisions SET state = ?, decided_at = ?, decided_by = ?"
                " WHERE id = ? AND state = 'pending'",
                (state, when, by, decision_id),
            )
        return cursor.rowcount > 0
