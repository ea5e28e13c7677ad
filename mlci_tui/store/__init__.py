"""The run store: SQLite (WAL) for state, append-only files for logs.

The single source of truth of every run: runners write it, the dashboard and
every other command read it. Settling what dead processes left in it is the
service layer's (`mlci_tui.service.recovery`), not the store's.
"""

from __future__ import annotations

from mlci_tui.store.db import Store
from mlci_tui.store.records import RunRecord, StageRecord

__all__ = ["RunRecord", "StageRecord", "Store"]
