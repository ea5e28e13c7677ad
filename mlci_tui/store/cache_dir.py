"""The content-addressed cache of stages' outs, and the file hashes the store remembers.

::

    CACHE_DIR/objects/ab/cdef…     a file, named by its sha256; read-only
    CACHE_DIR/entries/ab/cdef….json  what a stage with those inputs produced (by cache key)
    CACHE_DIR/tmp/                 files being written, renamed into place when whole
    CACHE_DIR/format               "2" once no object shares its inode with anything

A directory is an object too: its manifest, a JSON list of every file's relative
path, sha256 and mode. An object is a file of its own, never a link to an out: a
file goes in, and comes back out, as a reflink (the filesystem shares the blocks
and copies them on the first write) where the filesystem can, else as a copy made
in the kernel (`copy_file_range`), else as a plain copy. So an out written in place
changes neither the cache nor an equal out. Entries are written whole and renamed,
so a reader sees a complete entry or none, and two runners writing the same one
race harmlessly. Nothing here is secret: outs are what stages wrote, entries hold
hashes and params.

`FileHashes` remembers each file's sha256 by (path, device, inode, size,
mtime), so an unchanged 1 GB dataset is not read again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import marshal
import os
import stat
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from mlci_tui.store.file_hashes import FileHashesTable, FileStat
from mlci_tui.store.paths import DIR_MODE, open_unless_database

CHUNK = 1 << 20
RACY_NS = 2_000_000_000
"""A hash taken within this long of the file's last change is not trusted next time:
a write in the same timestamp tick could leave size and mtime as they were."""
OBJECT_MODE = 0o444
"""Objects are read-only: nothing writes into one through a name it was given."""
FORMAT = "2"
"""The cache's format: "2" once no object shares its inode with an out (mlci before
it hard-linked them); see `CacheDir.make_objects_private`."""
_OPEN_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
"""Never waiting on a pipe put where a file was."""


def _ficlone() -> int:
    """The FICLONE ioctl, ``_IOW(0x94, 9, int)``: its direction bits sit higher on a
    few architectures."""
    machine = os.uname().machine.lower()
    high = machine.startswith(("ppc", "powerpc", "mips", "sparc", "alpha"))
    return (0x80000000 if high else 0x40000000) | (4 << 16) | (0x94 << 8) | 9


FICLONE = _ficlone()


class CacheDamaged(Exception):
    """An object in the cache no longer has the content its name says."""


class FileChanged(Exception):
    """A file is no longer what was hashed (written while it was put in the cache)."""


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
        return _sha256_of_file(file)


def _sha256_of_file(file: Any) -> str:
    digest = getattr(hashlib, "file_digest", None)
    if digest is not None:  # Python ≥ 3.11: reads into one buffer, GIL released
        return str(digest(file, "sha256").hexdigest())
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while size := file.readinto(buffer):
        hasher.update(view[:size])
    return hasher.hexdigest()


def open_file(path: str, *, follow: bool = True) -> int:
    """A descriptor of the regular file at ``path`` (through a link only if
    ``follow``); `OSError` if it is something else."""
    descriptor = open_unless_database(path, _OPEN_READ | (0 if follow else os.O_NOFOLLOW))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return descriptor


def hash_descriptor(descriptor: int) -> str:
    with open(descriptor, "rb", closefd=False) as file:
        return _sha256_of_file(file)


def clone(source: int, target: int, size: int) -> str:
    """Make the empty file ``target`` hold the ``size`` bytes of ``source``; how:
    ``reflink`` (the filesystem shares the blocks, and copies one when either file is
    written), ``copy_file_range`` (copied in the kernel), or ``copy``."""
    with contextlib.suppress(OSError):  # EOPNOTSUPP, EXDEV, ENOTTY …: not here
        fcntl.ioctl(target, FICLONE, source)
        return "reflink"
    copied = 0
    copy_range = getattr(os, "copy_file_range", None)  # Linux only
    with contextlib.suppress(OSError):  # ENOSYS, EXDEV, EINVAL …: copy by hand
        while copy_range is not None and copied < size:
            done = copy_range(source, target, size - copied, copied, copied)
            if done == 0:  # some filesystems (proc) say nothing is there
                break
            copied += done
    if copied == size and size:
        return "copy_file_range"
    os.ftruncate(target, 0)
    offset = 0
    while data := os.pread(source, CHUNK, offset):
        view = memoryview(data)
        while view:
            view = view[os.pwrite(target, view, offset + len(data) - len(view)) :]
        offset += len(data)
    return "copy"


class FileHasher:
    """Hashes files, reading only those whose stat changed since the store last saw them."""

    def __init__(self, table: FileHashesTable) -> None:
        self.table = table
        self.hashed_bytes = 0
        """Bytes read so far (for `mlci why` to say whether it had to read anything)."""

    def hashes(self, paths: Sequence[str]) -> dict[str, tuple[str, FileStat]]:
        """Path → (sha256, the identity of the file that was read). A path that vanished
        meanwhile is left out; `OSError` for one that cannot be read.

        The identity is the stat of the descriptor the bytes came from, taken before
        they were read: a file renamed over the path while it is read keeps the old
        file's identity, so comparing it with the path later shows the change."""
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
            try:
                descriptor = open_file(path)
            except FileNotFoundError:
                continue
            try:
                identity = file_stat(os.fstat(descriptor))
                hashed_at = time.time_ns()
                sha = hash_descriptor(descriptor)
                after = file_stat(os.fstat(descriptor))
            finally:
                os.close(descriptor)
            self.hashed_bytes += identity[2]
            result[path] = (sha, identity)
            if after == identity:  # else written as it was read: remembered by nobody
                fresh.append((path, identity, hashed_at, sha))
        self.table.remember(fresh)
        return result

    def digest_of(
        self, stats: Mapping[str, FileStat], cut: int
    ) -> tuple[str, Mapping[str, FileStat]]:
        """One digest of many files (a directory, a glob), given in order with their
        stats as just taken: the sha256 of their names (from character ``cut`` on) with
        their contents; and the stats of the files that were read (``stats`` if none was).

        When every file's stat is as it was the last time, the digest is the one
        remembered for that set of stats, without looking up each file's hash."""
        # marshal's format 2 writes equal values as equal bytes (it has no references
        # and no marks of interned names), and 10 000 stats in a third of the time
        # their text takes; a name that is not UTF-8 is written as it is.
        listed = marshal.dumps((cut, list(stats.items())), 2)
        fingerprint = hashlib.sha256(listed).hexdigest()
        newest = max(map(itemgetter(3), stats.values()), default=0)
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


def random_hex() -> str:
    """32 random hex digits, for a name no other writer picks. `uuid` is imported only
    when one is needed: it loads `platform`, which `mlci why` has no use for."""
    import uuid

    return uuid.uuid4().hex


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
    """One cache directory (``[pipeline] cache_dir``); shared safely by any number of
    runners. ``hasher`` remembers what each object was found to hold."""

    def __init__(self, root: Path, hasher: FileHasher) -> None:
        self.root = root
        self.hasher = hasher

    def object_path(self, sha: str) -> Path:
        return self.root / "objects" / sha[:2] / _name(sha)[2:]

    def entry_path(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{_name(key)[2:]}.json"

    def has(self, sha: str) -> bool:
        return _regular(self.object_path(sha))

    def known(self, shas: Collection[str]) -> dict[str, str]:
        """What the store knows of each object without reading it, by its identity
        (device, inode, size, times), which any write changes: ``intact``,
        ``damaged``, ``missing``, or ``unread`` (changed since it was read, or never
        read by this store)."""
        paths = {sha: str(self.object_path(sha)) for sha in shas}
        remembered = self.hasher.table.remembered(list(paths.values()))
        found = {}
        for sha, path in paths.items():
            try:
                info = os.lstat(path)
            except OSError:
                found[sha] = "missing"
                continue
            memo = remembered.get(path)
            if not stat.S_ISREG(info.st_mode):
                found[sha] = "missing"
            elif memo is None or tuple(memo[:5]) != file_stat(info):
                found[sha] = "unread"
            else:
                found[sha] = "intact" if memo[6] == sha else "damaged"
        return found

    def state(self, shas: Collection[str]) -> str:
        """``missing`` if an object is not there, ``damaged`` if one no longer holds
        what its name says, else ``intact``. Reads only objects whose identity the
        store does not know (once: what it read is remembered)."""
        known = self.known(shas)
        if "missing" in known.values():
            return "missing"
        unread = [str(self.object_path(sha)) for sha, state in known.items() if state == "unread"]
        try:
            hashes = self.hasher.hashes(unread)
        except OSError:
            return "damaged"
        for sha, state in known.items():
            path = str(self.object_path(sha))
            if state == "damaged" or (state == "unread" and hashes.get(path, ("",))[0] != sha):
                return "damaged"
        return "intact"

    def verified(self, sha: str) -> FileStat:
        """The identity of the object ``sha`` once its content is checked (read unless
        the store remembers it unchanged); `CacheDamaged`, and the object dropped, if
        it no longer holds what its name says."""
        path = str(self.object_path(sha))
        try:
            found = self.hasher.hashes([path]).get(path)
        except OSError:
            found = None
        if found is None or found[0] != sha:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise CacheDamaged("changed since it was stored")
        return found[1]

    def _temporary(self) -> Path:
        directory = self.root / "tmp"
        directory.mkdir(DIR_MODE, parents=True, exist_ok=True)
        # Who writes it, so that what a killed writer left can be told from a file
        # another process (or host, on a shared cache) is still writing.
        import socket  # imported when needed: only writers ask, never `mlci why`

        return directory / f"{os.getpid()}@{socket.gethostname()}-{random_hex()}"

    def put_file(self, path: str, sha: str, hashed: FileStat) -> str:
        """Store a copy of the file ``path``, whose content ``sha`` was read from the file
        ``hashed`` identifies, in place of any object of that name; how it was copied
        (see `clone`). `FileChanged` if the file is no longer the one hashed."""
        target = self.object_path(sha)
        target.parent.mkdir(DIR_MODE, parents=True, exist_ok=True)
        source = open_file(path, follow=False)
        try:
            if file_stat(os.fstat(source)) != hashed:
                raise FileChanged(path)
            temporary = self._temporary()
            try:
                method = self._copy_object(source, temporary, hashed[2])
                if file_stat(os.fstat(source)) != hashed:
                    raise FileChanged(path)
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
        finally:
            os.close(source)
        self.remember(target, sha)
        return method

    def _copy_object(self, source: int, temporary: Path, size: int) -> str:
        target = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            method = clone(source, target, size)
            os.fchmod(target, OBJECT_MODE)
        finally:
            os.close(target)
        return method

    def remember(self, target: Path, sha: str) -> None:
        """What the object just written holds, so that neither deciding nor restoring
        reads it again while it keeps its identity. Trusted at once: the two seconds a
        hash is otherwise held back are for files others may still be writing, and
        this one was made here and is read-only."""
        with contextlib.suppress(OSError):
            identity = file_stat(os.lstat(target))
            trusted = identity[3] + RACY_NS + 1
            self.hasher.table.remember([(str(target), identity, trusted, sha)])

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.object_path(sha)
        if not target.is_file():
            self._write(target, data, OBJECT_MODE)
        return sha

    def read_object(self, sha: str) -> bytes:
        """A small object (a manifest), checked against its name."""
        data = self.object_path(sha).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise CacheDamaged("changed since it was stored")
        return data

    def _write(self, target: Path, data: bytes, mode: int = 0o600) -> None:
        target.parent.mkdir(DIR_MODE, parents=True, exist_ok=True)
        temporary = self._temporary()
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fchmod(file.fileno(), mode)
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

    def restore_file(self, sha: str, destination: str, executable: bool, verified: FileStat) -> str:
        """Put a copy of the object ``sha`` at ``destination``, replacing what is there in
        one step; ``verified`` is the identity the object's content was checked at.
        Returns how it was copied (see `clone`); `CacheDamaged` if the object changed."""
        source = open_file(str(self.object_path(sha)), follow=False)
        try:
            if file_stat(os.fstat(source)) != verified:
                raise CacheDamaged("changed since it was stored")
            parent = os.path.dirname(destination)
            os.makedirs(parent, exist_ok=True)
            temporary = os.path.join(parent, f".mlci-restore-{random_hex()}")
            # The mode a stage's own `>` and `chmod +x` give, under the same umask.
            mode = 0o777 if executable else 0o666
            target = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                try:
                    method = clone(source, target, verified[2])
                finally:
                    os.close(target)
                if file_stat(os.fstat(source)) != verified:
                    raise CacheDamaged("changed while it was restored")
                os.replace(temporary, destination)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
        finally:
            os.close(source)
        return method

    def make_private(self, path: str, sha: str) -> bool:
        """Give the file at ``path``, which other names share, a file of its own with the
        same content and mode, checked against ``sha`` as it is copied; False, and
        nothing changed, if its content is not ``sha``."""
        source = open_file(path, follow=False)
        temporary = os.path.join(os.path.dirname(path), f".mlci-private-{random_hex()}")
        try:
            mode = stat.S_IMODE(os.fstat(source).st_mode)
            with open(temporary, "xb") as target:
                hasher = hashlib.sha256()
                while data := os.read(source, CHUNK):
                    hasher.update(data)
                    target.write(data)
                os.fchmod(target.fileno(), mode)
            if hasher.hexdigest() != sha:
                return False
            os.replace(temporary, path)
            return True
        finally:
            os.close(source)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def make_objects_private(self) -> int:
        """Once per cache: give every object an inode of its own, read-only, as mlci
        before format 2 left objects hard-linked with outs. An object whose content is
        no longer its name (an out written in place through the link) is dropped.
        Returns how many objects were shared."""
        marker = self.root / "format"
        with contextlib.suppress(OSError):
            if marker.read_text().strip() == FORMAT:
                return 0
        shared = 0
        for sha, path in list(self.objects()):
            with contextlib.suppress(OSError, ValueError):
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode):
                    continue
                if info.st_nlink > 1:
                    shared += 1
                    if not self.make_private(str(path), _name(sha)):
                        path.unlink()
                        continue
                    os.chmod(path, OBJECT_MODE)
                elif info.st_mode & 0o222:
                    os.chmod(path, OBJECT_MODE)
        self._write(marker, f"{FORMAT}\n".encode(), 0o644)
        return shared

    def clear_temporary(self, older_than_s: float = 3600.0) -> None:
        """Remove what writers that died left in ``tmp``: those of this host whose
        process is gone, and any not written to for ``older_than_s``."""
        import socket  # imported when needed: only writers ask, never `mlci why`

        limit = time.time() - older_than_s
        host = socket.gethostname()
        for path in (self.root / "tmp").glob("*"):
            with contextlib.suppress(OSError):
                if _writer_gone(path.name, host) or path.lstat().st_mtime < limit:
                    path.unlink()
