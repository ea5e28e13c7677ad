"""The run store: SQLite (WAL) for state, append-only files for logs.

The single source of truth of every run: runners write it, the dashboard and
every other command read it.
"""

from __future__ import annotations

from pathlib import Path

from mlci_tui.errors import StoreError
from mlci_tui.store.db import Store
from mlci_tui.store.records import RunRecord, StageRecord
from mlci_tui.store.recovery import recover_interrupted

__all__ = ["RunRecord", "StageRecord", "Store", "open_store"]


def open_store(state_dir: Path, *, create: bool = True) -> Store:
    """Open the store and mark runs whose runner died as interrupted.

    Marking is a write: when it cannot be done (a full disk, a store locked
    past the busy timeout) the store still opens for reading, and the reason
    is kept in ``store.recovery_error``.
    """
    store = Store.open(state_dir, create=create)
    try:
        recover_interrupted(store)
    except StoreError as error:
        store.recovery_error = str(error)
    return store
