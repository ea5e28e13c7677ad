"""The connection helpers every part of the store shares."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlci_tui.errors import StoreError

BUSY_TIMEOUT_S = 30.0


class Connection:
    """An open SQLite database with error translation and write transactions."""

    def __init__(self, connection: sqlite3.Connection, db_path: Path) -> None:
        self._db = connection
        self.db_path = db_path

    def transaction(self) -> _Transaction:
        return _Transaction(self._db, self.db_path)

    def _query(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            cursor = self._db.execute(sql, tuple(parameters))
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.db_path}: {describe_error(error)}") from None
        cursor.row_factory = sqlite3.Row
        return cursor


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: takes the write lock up front, so a busy
    store makes writers wait (busy timeout) rather than fail half-way."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self._path}: {describe_error(error)}") from None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.DatabaseError as error:
                self._rollback()
                raise StoreError(f"{self._path}: {describe_error(error)}") from None
        self._rollback()

    def _rollback(self) -> None:
        # A failed COMMIT may already have ended the transaction.
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")


def describe_error(error: sqlite3.Error) -> str:
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return f"the database is damaged ({text}); the log files under runs/ are still readable"
    if "readonly" in text or "read-only" in text:
        return "the run store is read-only here, and this needs to write it"
    if "locked" in text or "busy" in text:
        return f"the database stayed locked by another process for {BUSY_TIMEOUT_S:.0f}s"
    return text
