"""The content-addressed cache of stages' outs, and the file hashes the store remembers.

::

    CACHE_DIR/objects/ab/cdef…     a file, named by its sha256
    CACHE_DIR/entries/ab/cdef….json  what a stage with those inputs produced (by cache key)
    CACHE_DIR/tmp/                 files being written, renamed into place when whole

A directory is an object too: its manifest, a JSON list of every file's relative
path, sha256 and mode. Objects go in by hard link where the filesystem allows
(outs are removed before their stage runs, so a stage never writes into an object),
else by copy; entries are written whole and renamed, so a reader sees a complete
entry or none, and two runners writing the same one race harmlessly. Nothing here
is secret: outs are what stages wrote, entries hold hashes and params.

`FileHashes` remembers each file's sha256 by (path, device, inode, size,
mtime), so an unchanged 1 GB dataset is not read again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlci_tui.store.file_hashes import FileHashesTable, FileStat
from mlci_tui.store.paths import DIR_MODE

CHUNK = 1 << 20
RACY_NS = 2_000_000_000
"""A hash taken within this long of the file's last change is not trusted next time:
a write in the same timestamp tick could leave size and mtime as they were."""


def file_stats(paths: Sequence[str]) -> dict[str, FileStat]:
    """The stat of each path that exists."""
    found: dict[str, FileStat] = {}
    stat_ = os.stat
    for path in paths:  # a directory dep may hold 10 000 files: no context manager each
        try:
            found[path] = file_stat(stat_(path))
        except FileNotFoundError:
            continue
    return found


def file_stat(result: os.stat_result) -> FileStat:
    return (result.st_dev, result.st_ino, result.st_size, result.st_mtime_ns, result.st_ctime_ns)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """A file's sha256, read at disk speed (OpenSSL's sha256 uses the CPU's SHA extensions)."""
    with open(path, "rb") as file:
        digest = getattr(hashlib, "file_digest", None)
        if digest is not None:  # Python ≥ 3.11: reads into one buffer, GIL released
            return str(digest(file, "sha256").hexdigest())
        hasher = hashlib.sha256()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while size := file.readinto(buffer):
            hasher.update(view[:size])
        return hasher.hexdigest()


class FileHasher:
    """Hashes files, reading only those whose stat changed since the store last saw them."""

    def __init__(self, table: FileHashesTable) -> None:
        self.table = table
        self.hashed_bytes = 0
        """Bytes read so far (for `mlci why` to say whether it had to read anything)."""

    def hashes(self, paths: Sequence[str]) -> dict[str, tuple[str, FileStat]]:
        """Path → (sha256, the stat it was taken at). A path that vanished meanwhile is
        left out; `OSError` for one that cannot be read."""
        known = self.table.remembered(paths)
        result: dict[str, tuple[str, FileStat]] = {}
        fresh: list[tuple[str, FileStat, int, str]] = []
        for path in paths:
            try:
                current = file_stat(os.stat(path))
            except FileNotFoundError:
                continue
            memo = known.get(path)
            if memo is not None and memo[:5] == current and memo[5] - current[3] > RACY_NS:
                result[path] = (memo[6], current)
                continue
            hashed_at = time.time_ns()
            sha = sha256_file(path)
            self.hashed_bytes += current[2]
            after = file_stat(os.stat(path))
            result[path] = (sha, after)
            if after == current:
                fresh.append((path, current, hashed_at, sha))
        self.table.remember(fresh)
        return result

    def digest_of(self, paths: Sequence[str], cut: int) -> tuple[str, dict[str, FileStat]]:
        """One digest of many files (a directory, a glob): the sha256 of their names
        (from character ``cut`` on) with their contents; and the files' stats.

        When every file's stat is as it was the last time, the digest is the one
        remembered for that set of stats, without looking up each file's hash."""
        stats = file_stats(paths)
        # No path holds a NUL and no stat a newline, so the text reads back one way.
        lines = [str(cut), *(f"{path}\0{' '.join(map(str, s))}" for path, s in stats.items())]
        fingerprint = hashlib.sha256("\n".join(lines).encode(errors="surrogateescape")).hexdigest()
        newest = max((stat_[3] for stat_ in stats.values()), default=0)
        memo = self.table.remembered_tree(fingerprint)
        if memo is not None and memo[1] - newest > RACY_NS:
            return memo[0], stats
        hashed_at = time.time_ns()
        hashes = self.hashes(list(stats))
        digest = sha256_of([[path[cut:], hashes[path][0]] for path in stats if path in hashes])
        after = {path: found[1] for path, found in hashes.items()}
        if after == stats:
            self.table.remember_tree(fingerprint, digest, hashed_at)
        return digest, after


def _writer_gone(name: str, host: str) -> bool:
    pid, at, rest = name.partition("@")
    if not at or not pid.isdigit() or rest.rpartition("-")[0] != host:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def canonical(value: object) -> bytes:
    """JSON with sorted keys and no spaces; ASCII, so that a file name that is not
    UTF-8 (a lone surrogate in Python) is written as an escape, not refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_of(value: object) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _name(sha: str) -> str:
    """A sha256 in hex, or ValueError: a name read from an entry becomes a path."""
    if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
        raise ValueError(f"not a sha256: {sha[:80]!r}")
    return sha


class CacheDir:
    """One cache directory (``[pipeline] cache_dir``); shared safely by any number of runners."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def object_path(self, sha: str) -> Path:
        return self.root / "objects" / sha[:2] / _name(sha)[2:]

    def entry_path(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{_name(key)[2:]}.json"

    def has(self, sha: str) -> bool:
        return _regular(self.object_path(sha))

    def _temporary(self) -> Path:
        directory = self.root / "tmp"
        directory.mkdir(DIR_MODE, parents=True, exist_ok=True)
        # Who writes it, so that what a killed writer left can be told from a file
        # another process (or host, on a shared cache) is still writing.
        return directory / f"{os.getpid()}@{socket.gethostname()}-{uuid.uuid4().hex}"

    def put_file(self, path: str, sha: str) -> None:
        """Store the file ``path`` whose sha256 is ``sha``: a link to it, else a copy."""
        target = self.object_path(sha)
        if _regular(target):
            return
        target.parent.mkdir(DIR_MODE, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # not a file: nothing mlci wrote
        try:
            if not os.path.islink(path):
                os.link(path, target, follow_symlinks=False)
                return
        except FileExistsError:
            return
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
        temporary = self._temporary()
        try:
            shutil.copyfile(path, temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.object_path(sha)
        if not target.is_file():
            self._write(target, data)
        return sha

    def read_object(self, sha: str) -> bytes:
        return self.object_path(sha).read_bytes()

    def _write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(DIR_MODE, parents=True, exist_ok=True)
        temporary = self._temporary()
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def write_entry(self, key: str, entry: Mapping[str, Any]) -> None:
        self._write(self.entry_path(key), canonical(dict(entry)))

    def read_entry(self, key: str) -> dict[str, Any] | None:
        """The entry of ``key``, or None if there is none (or it cannot be read whole)."""
        try:
            data = json.loads(self.entry_path(key).read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def entries(self) -> Iterator[tuple[str, Path]]:
        for path in sorted((self.root / "entries").glob("*/*.json")):
            yield path.parent.name + path.stem, path

    def objects(self) -> Iterator[tuple[str, Path]]:
        for path in (self.root / "objects").glob("*/*"):
            yield path.parent.name + path.name, path

    def restore_file(self, sha: str, destination: str, executable: bool = False) -> None:
        """Put the object ``sha`` at ``destination``, replacing what is there in one step."""
        source = self.object_path(sha)
        parent = os.path.dirname(destination)
        os.makedirs(parent, exist_ok=True)
        temporary = os.path.join(parent, f".mlci-restore-{uuid.uuid4().hex}")
        try:
            # A link shares its mode with the object and every other link of it: only
            # when the mode is already right.
            if bool(os.stat(source).st_mode & stat.S_IXUSR) == executable:
                try:
                    os.link(source, temporary)
                except OSError:
                    shutil.copyfile(source, temporary)
            else:
                shutil.copyfile(source, temporary)
                mode = os.stat(temporary).st_mode
                bits = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
                os.chmod(temporary, (mode | bits) if executable else (mode & ~bits))
            os.replace(temporary, destination)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def clear_temporary(self, older_than_s: float = 3600.0) -> None:
        """Remove what writers that died left in ``tmp``: those of this host whose
        process is gone, and any not written to for ``older_than_s``."""
        limit = time.time() - older_than_s
        host = socket.gethostname()
        for path in (self.root / "tmp").glob("*"):
            with contextlib.suppress(OSError):
                if _writer_gone(path.name, host) or path.lstat().st_mtime < limit:
                    path.unlink()
