"""The ``monitor_samples`` table: each check of a version, so that failures in a row
are counted across `mlci monitor --once` invocations."""

from __future__ import annotations

import json
from collections.abc import Mapping

from mlci_tui.store.connection import Connection


class SamplesTable(Connection):
    """The monitor's checks of each version (``store.samples``)."""

    def add(
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
