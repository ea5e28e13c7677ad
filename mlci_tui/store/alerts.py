"""The ``alerts`` table: what the dashboard and `mlci alerts` show, and whether the
alert command took each."""

from __future__ import annotations

from collections.abc import Iterable

from mlci_tui.store.connection import Connection
from mlci_tui.store.records import AlertRecord


class AlertsTable(Connection):
    """Alerts raised, delivered and acknowledged (``store.alerts``)."""

    def add(
        self, kind: str, message: str, *, created_at: float, version: int | None, run_id: int | None
    ) -> int:
        with self.transaction():
            cursor = self._query(
                "INSERT INTO alerts (created_at, kind, message, version, run_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (created_at, kind, message, version, run_id),
            )
        return cursor.lastrowid or 0

    def set_delivery(self, alert_id: int, delivery: str) -> None:
        with self.transaction():
            self._query("UPDATE alerts SET delivery = ? WHERE id = ?", (delivery, alert_id))

    def acknowledge(self, ids: Iterable[int] | None, *, by: str, when: float) -> int:
        """Mark alerts seen (``ids``, or every one if None); returns how many were not."""
        with self.transaction():
            if ids is None:
                cursor = self._query(
                    "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?"
                    " WHERE acknowledged_at IS NULL",
                    (when, by),
                )
            else:
                wanted = tuple(ids)
                cursor = self._query(
                    "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?"
                    f" WHERE acknowledged_at IS NULL AND id IN ({', '.join('?' * len(wanted))})",
                    (when, by, *wanted),
                )
        return cursor.rowcount

    def recent(self, limit: int = 50) -> list[AlertRecord]:
        """Newest first."""
        rows = self._query("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))
        return [AlertRecord(**dict(row)) for row in rows]
