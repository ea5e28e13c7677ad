"""The cache directory's hasher: what the store remembers of a file, and when it is read again."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from mlci_tui.store import Store
from mlci_tui.store.cache_dir import FileHasher


def test_the_hash_of_an_unchanged_file_is_remembered(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(1 << 16))
    old = time.time_ns() - 10_000_000_000
    os.utime(data, ns=(old, old))
    with Store.open(tmp_path / ".mlci") as store:
        first = FileHasher(store.file_hashes)
        sha = first.hashes([str(data)])[str(data)][0]
        assert sha == hashlib.sha256(data.read_bytes()).hexdigest()
        assert first.hashed_bytes == 1 << 16
    with Store.open(tmp_path / ".mlci") as store:
        again = FileHasher(store.file_hashes)
        assert again.hashes([str(data)])[str(data)][0] == sha
        assert again.hashed_bytes == 0, "an unchanged file is not read again"


def test_a_file_rewritten_within_its_timestamp_is_hashed_again(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("one")
    with Store.open(tmp_path / ".mlci") as store:
        hasher = FileHasher(store.file_hashes)
        before = hasher.hashes([str(data)])[str(data)][0]
        stamp = data.stat().st_mtime_ns
        data.write_text("two")
        # Same size, same mtime: only the hash being that recent says to look again.
        os.utime(data, ns=(stamp, stamp))
        after = hasher.hashes([str(data)])[str(data)][0]
    assert before != after == hashlib.sha256(b"two").hexdigest()
