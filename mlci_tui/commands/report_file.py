"""The files `mlci run` writes its reports into when it ends — ``--junit PATH`` and,
under GitHub Actions, ``$GITHUB_STEP_SUMMARY`` — checked before anything runs, so
that a careless path neither costs a run its report nor the project its store.

Refused up front, in one line (exit 2): a path inside the state directory or the
cache, or that is the config, compared by real path (links, ``..``) and, for a
file that exists, by device and inode (a hard link); a directory, a socket, a
block device; a pipe nobody reads; a device that takes no bytes (``/dev/full``);
a file that cannot be written, or a place where none can be made. A pipe or a
device is opened then, held through the run, and written without ever blocking:
a reader that stops reading costs the command at most `WRITE_TIMEOUT_S`.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from collections.abc import Callable
from pathlib import Path

from mlci_tui.commands.common import relative
from mlci_tui.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlci_tui.config import Config

WRITE_TIMEOUT_S = 10.0
"""How long a pipe or device may keep a report waiting before mlci gives up on it."""


class ReportFile:
    """Where a report goes: a regular file (made, replaced or appended to when it is
    written) or a pipe or device opened before the run."""

    def __init__(self, path: Path, what: str, *, append: bool, fd: int | None) -> None:
        self.path = path
        self.what = what
        """How the user named it: ``--junit reports/junit.xml``."""
        self.append = append
        self._fd = fd

    def write(self, data: bytes, timeout: float = WRITE_TIMEOUT_S) -> None:
        """Write ``data``; `OSError` if it could not be written whole."""
        if self._fd is not None:
            try:
                write_all(self._fd, data, timeout)
            finally:
                self.close()
        elif self.append:
            # Non-blocking: should the path have become a pipe since, no reader is an error.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
            try:
                write_all(fd, data, timeout)
            finally:
                os.close(fd)
        else:
            _replace(self.path, data)

    def same_file(self, other: ReportFile) -> bool:
        """Whether ``other`` would be written into this one's file."""
        if os.path.realpath(self.path) == os.path.realpath(other.path):
            return True
        try:
            return os.path.samefile(self.path, other.path)
        except OSError:
            return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_all(fd: int, data: bytes, timeout: float) -> None:
    """All of ``data`` to a descriptor that may be non-blocking, waiting for room at
    most ``timeout`` seconds in all."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise OSError(errno.ETIMEDOUT, f"nothing read it for {timeout:g}s") from None


def _replace(path: Path, data: bytes) -> None:
    """Whole or not at all: written beside the file, then renamed over it. Through a
    link, the file it names is replaced, not the link."""
    target = path.resolve()
    if not path.is_symlink():  # a link's directory is not made: it may be anywhere
        target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        staging.write_bytes(data)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def open_report(config: Config, name: str, what: str, *, append: bool) -> ReportFile:
    """The report file ``name``, checked now; `UsageError` says why it cannot be one.

    ``append`` (the job summary): added to, and its directory must exist (GitHub
    makes the file; a missing directory is a wrong variable, not a place to make).
    Otherwise (``--junit``) it is replaced whole, and missing directories are made.
    """
    if not name.strip():
        raise UsageError(f"{what}: expected a file name")
    path = Path(name)

    def refuse(why: str) -> UsageError:
        return UsageError(f"{what}: {why}")

    try:
        found: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        found = None
    except NotADirectoryError:
        raise refuse(f"{_file_on_the_way(path)} is not a directory") from None
    except OSError as error:
        raise refuse(f"cannot write: {error.strerror}") from None
    why = _protected(config, path, found)
    if why is not None:
        raise refuse(why)
    if found is None:
        _check_new(path, refuse, make_dirs=not append)
        return ReportFile(path, what, append=append, fd=None)
    mode = found.st_mode
    if stat.S_ISDIR(mode):
        raise refuse("is a directory")
    if stat.S_ISREG(mode):
        # Open to write, changing nothing, so that a read-only file is refused now.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as error:
            raise refuse(f"cannot write: {error.strerror}") from None
        return ReportFile(path, what, append=append, fd=None)
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        kind = "a socket" if stat.S_ISSOCK(mode) else "a block device"
        raise refuse(f"is {kind}, not a file")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise refuse("is a pipe that nothing reads") from None
        raise refuse(f"cannot write: {error.strerror}") from None
    try:
        os.write(fd, b"")  # what takes no byte (/dev/full) says so now
    except BlockingIOError:
        pass
    except OSError as error:
        os.close(fd)
        raise refuse(f"cannot write: {error.strerror}") from None
    return ReportFile(path, what, append=append, fd=fd)


def _protected(config: Config, path: Path, found: os.stat_result | None) -> str | None:
    """Why mlci must never write at ``path``: it is the config, or in the store or
    the cache, by its real path or, for a file that exists, its inode."""
    real = Path(os.path.realpath(path))
    if real == Path(os.path.realpath(config.path)):
        return "is the pipeline's config"
    places = [
        (config.pipeline.cache_dir, f"the cache {relative(config.pipeline.cache_dir)}"),
        (
            config.pipeline.state_dir,
            f"the state directory {relative(config.pipeline.state_dir)} (the run store)",
        ),
    ]
    lead = "is" if real == Path(os.path.abspath(path)) else f"leads to {relative(real)},"
    for directory, name in places:
        inside = Path(os.path.realpath(directory))
        if real == inside or inside in real.parents:
            return f"{lead} in {name}"
    if found is None or not stat.S_ISREG(found.st_mode):
        return None
    identity = (found.st_dev, found.st_ino)
    if _identity(config.path) == identity:
        return "is the pipeline's config (a hard link to it)"
    if found.st_nlink < 2:
        return None
    # A hard link: into the store (its database, say) or the cache?
    for directory, name in places:
        for root, _, files in os.walk(directory):
            for file in files:
                if _identity(Path(root, file)) == identity:
                    return f"is a hard link to {relative(Path(root, file))}, in {name}"
    return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def _file_on_the_way(path: Path) -> Path:
    """The first of ``path``'s ancestors that exists and is not a directory."""
    for parent in reversed(path.absolute().parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


def _check_new(path: Path, refuse: Callable[[str], UsageError], *, make_dirs: bool) -> None:
    """A file that does not exist yet: refused if it could not be made when written."""
    import tempfile

    target = Path(os.path.realpath(path))
    if path.is_symlink() and not target.parent.is_dir():
        raise refuse(f"links to {target}, whose directory does not exist")
    parent = target.parent
    if not parent.is_dir() and not make_dirs:
        raise refuse(f"its directory {parent} does not exist")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # missing directories are made when it is written
    if not parent.is_dir():
        raise refuse(f"{parent} is not a directory")
    try:
        # Tried for real: root passes every permission check, a read-only mount none.
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as error:
        raise refuse(f"cannot write in {parent}: {error.strerror}") from None
