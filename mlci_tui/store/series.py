"""The ``metric_points`` table: every point of every metric series a stage
reported, with its step and time, read back by run, stage and name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mlci_tui.store.connection import Connection


class MetricPoint(NamedTuple):
    step: int
    value: float
    time: float


class Series(NamedTuple):
    """One metric of one stage of a run: its points in the order they came."""

    run_id: int
    stage: str
    name: str
    points: tuple[MetricPoint, ...]
    last_row: int
    """The newest point's row id: read on from here with ``after``."""


class SeriesTable(Connection):
    """Every point of every metric series (``store.series``)."""

    def record_points(
        self, run_id: int, stage: str, points: Iterable[tuple[str, int, float]], time: float
    ) -> None:
        """Add points ``(name, step, value)`` that arrived together at ``time``."""
        with self.transaction():
            self._db.executemany(
                "INSERT INTO metric_points (run_id, stage, name, step, value, time)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, stage, name, step, value, time) for name, step, value in points],
            )

    def forget_metrics(self, run_id: int, stage: str) -> None:
        """Drop a stage's values and series (an attempt that is retried)."""
        with self.transaction():
            for table in ("metrics", "metric_points"):
                self._db.execute(
                    f"DELETE FROM {table} WHERE run_id = ? AND stage = ?", (run_id, stage)
                )

    def copy(self, run_id: int, stage: str, from_run: int, from_stage: str) -> None:
        """Give a cached stage the series of the stage whose result it reuses."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO metric_points (run_id, stage, name, step, value, time)"
                " SELECT ?, ?, name, step, value, time FROM metric_points"
                " WHERE run_id = ? AND stage = ? ORDER BY rowid",
                (run_id, stage, from_run, from_stage),
            )

    def names(self, run_id: int, stage: str | None = None) -> list[tuple[str, str]]:
        """``(stage, name)`` of every metric of a run (or one stage), in first-seen order.

        Read from the last values (one row per metric), not by scanning the points."""
        where, parameters = _where(run_id, stage)
        rows = self._query(
            f"SELECT stage, name FROM metrics WHERE {where} ORDER BY rowid", parameters
        )
        return [(row["stage"], row["name"]) for row in rows]

    def get(self, run_id: int, stage: str, name: str, *, after: int = 0) -> Series:
        """The points of one series, or with ``after`` only those newer than that row."""
        rows = self._query(
            "SELECT rowid, step, value, time FROM metric_points"
            " WHERE run_id = ? AND stage = ? AND name = ? AND rowid > ? ORDER BY rowid",
            (run_id, stage, name, after),
        ).fetchall()
        points = tuple(MetricPoint(row["step"], row["value"], row["time"]) for row in rows)
        return Series(run_id, stage, name, points, rows[-1]["rowid"] if rows else after)

    def all(self, run_id: int, stage: str | None = None) -> list[Series]:
        """Every series of a run (or one stage), whole."""
        return [self.get(run_id, s, name) for s, name in self.names(run_id, stage)]


def _where(run_id: int, stage: str | None) -> tuple[str, Sequence[object]]:
    if stage is None:
        return "run_id = ?", (run_id,)
    return "run_id = ? AND stage = ?", (run_id, stage)
