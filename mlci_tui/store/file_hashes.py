"""The ``file_hashes`` and ``tree_hashes`` tables: the sha256 of files (and of sets
of files) as of their stats, so that `store.cache_dir.FileHasher` reads a file only
when it changed. Apart from the cache itself, since every `Store` has this table
and the cache's imports are only paid for by runs that use it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlci_tui.store.connection import Connection

_BATCH = 500
FileStat = tuple[int, int, int, int, int]
"""What says a file is unchanged: (device, inode, size, mtime_ns, ctime_ns). The
ctime catches a rewrite that puts the mtime back (``touch -d``, ``cp -p``). A plain
tuple: 10 000 named tuples cost `mlci why` 20 ms."""


class FileHashesTable(Connection):
    """The ``file_hashes`` table: a file's sha256 as of its `FileStat`. Paths are kept
    as bytes, as the file system has them: a name need not be UTF-8 (``store.file_hashes``)."""

    def __init__(self, connection: sqlite3.Connection, db_path: Path, *, readonly: bool) -> None:
        super().__init__(connection, db_path)
        self.readonly = readonly
        """A read-only store remembers nothing new: hashes are worked out again."""

    def remembered(self, paths: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """Path → (device, inode, size, mtime_ns, ctime_ns when hashed, when it was
        hashed in ns, sha256), for the paths known."""
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(paths), _BATCH):
            batch = [os.fsencode(path) for path in paths[start : start + _BATCH]]
            rows = self._query(
                "SELECT path, device, inode, size, mtime_ns, ctime_ns, hashed_at_ns, sha256"
                f" FROM file_hashes WHERE path IN ({', '.join('?' * len(batch))})",
                batch,
            )
            found.update((os.fsdecode(row[0]), row[1:]) for row in rows)
        return found

    def remembered_tree(self, fingerprint: str) -> tuple[str, int] | None:
        """The digest of a set of files with these stats, and when it was taken."""
        row = self._query(
            "SELECT sha256, hashed_at_ns FROM tree_hashes WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def remember_tree(self, fingerprint: str, sha: str, hashed_at: int) -> None:
        if self.readonly:
            return
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO tree_hashes (fingerprint, sha256, hashed_at_ns)"
                " VALUES (?, ?, ?)",
                (fingerprint, sha, hashed_at),
            )

    def forget_gone(self) -> int:
        """Drop what is remembered of files that are gone, and every set's digest (each
        is worked out again from its files' hashes); how many rows went."""
        rows = self._query("SELECT path FROM file_hashes").fetchall()
        gone = [(path,) for (path,) in rows if not os.path.lexists(bytes(path))]
        with self.transaction():
            self._db.executemany("DELETE FROM file_hashes WHERE path = ?", gone)
            trees = self._db.execute("DELETE FROM tree_hashes").rowcount
        return len(gone) + max(0, trees)

    def remember(self, rows: Iterable[tuple[str, FileStat, int, str]]) -> None:
        values = [
            (os.fsencode(path), *stat_, hashed_at, sha) for path, stat_, hashed_at, sha in rows
        ]
        if not values or self.readonly:
            return
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO file_hashes"
                " (path, device, inode, size, mtime_ns, ctime_ns, hashed_at_ns, sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
