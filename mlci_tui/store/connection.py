"""The connection helpers every part of the store shares."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mlci_tui.errors import StoreBusy, StoreError

BUSY_TIMEOUT_S = 30.0


class Connection:
    """An open SQLite database with error translation and write transactions."""

    def __init__(self, connection: sqlite3.Connection, db_path: Path) -> None:
        self._db = connection
        self.db_path = db_path

    def transaction(self) -> _Transaction:
        return _Transaction(self._db, self.db_path)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction: every query inside sees the store as one commit left
        it, never half of a write that commits meanwhile. In WAL mode a reader takes
        no lock a writer waits for."""
        self._query("BEGIN DEFERRED")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("COMMIT")

    def _query(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            cursor = self._db.execute(sql, tuple(parameters))
        except sqlite3.DatabaseError as error:
            raise _translate(self.db_path, error, self._db) from None
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
            raise _translate(self._path, error, self._db) from None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, *rest: object
    ) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.DatabaseError as failed:
                self._rollback()
                raise _translate(self._path, failed, self._db) from None
        self._rollback()
        if isinstance(error, sqlite3.DatabaseError):
            # A statement of the transaction's own: one line, as from `_query`.
            raise _translate(self._path, error, self._db) from None

    def _rollback(self) -> None:
        # A failed COMMIT may already have ended the transaction.
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")


def _translate(path: Path, error: sqlite3.DatabaseError, db: sqlite3.Connection) -> StoreError:
    """The one-line error for ``error``: `StoreBusy` when the lock was not released."""
    text = f"{path}: {describe_error(error, db)}"
    return StoreBusy(text) if _busy(str(error)) else StoreError(text)


def _busy(text: str) -> bool:
    return "locked" in text or "busy" in text


def describe_error(error: sqlite3.Error, db: sqlite3.Connection | None = None) -> str:
    text = str(error)
    if "not a database" in text or "malformed" in text:
        verdict = "" if db is None else f"; PRAGMA integrity_check: {integrity(db)}"
        return (
            f"the database is damaged ({text}{verdict}); the log files under runs/"
            " are still readable"
        )
    if "readonly" in text or "read-only" in text:
        return "the run store is read-only here, and this needs to write it"
    if _busy(text):
        return f"the database stayed locked by another process for {BUSY_TIMEOUT_S:.0f}s"
    return text


def integrity(db: sqlite3.Connection) -> str:
    """The first problem ``PRAGMA integrity_check`` finds, in one line (only asked once
    the database proved damaged: it reads all of it)."""
    try:
        rows = db.execute("PRAGMA integrity_check(1)").fetchall()
    except sqlite3.DatabaseError as error:
        return f"cannot run ({error})"
    found = " ".join(str(row[0]) for row in rows).replace("\n", " ")
    return found[:200] + ("…" if len(found) > 200 else "")
