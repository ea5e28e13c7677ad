"""Where everything lives under `state_dir`: one place for the store's layout.

::

    mlci.db                    SQLite (WAL): runs, stages, versions, the audit trail
    runs/N/STAGE.log           what each stage of run N printed (see `logs`)
    runs/N/STAGE.metrics.json  the stage's $MLCI_METRICS_FILE
    runs/N/params.json         the run's params ($MLCI_PARAMS_FILE)
    versions/vN/ARTIFACT       each version's artifact, as registered
    deployments/ID.log         the output of a deploy or rollback outside a run
    current.json, current      the live version (see `registry.pointer`)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

DB_NAME = "mlci.db"
# Logs and metrics may hold what a stage should not have printed: the store is
# its owner's alone (the umask can only make these stricter).
DIR_MODE = 0o700
FILE_MODE = 0o600
STAGING = ".staging-"
"""How a copy still being made under ``versions/`` is named: ``.staging-PID-HEX``."""


_BY_DESCRIPTOR = hasattr(os, "O_PATH") and os.path.isdir("/proc/self/fd")
"""Whether a file can be looked at without being opened, then opened through that
look (Linux: ``O_PATH``, then ``/proc/self/fd``)."""
_DATABASES: set[str] = set()
"""The databases this process has opened through SQLite (see `open_unless_database`)."""


def opened_by_sqlite(database: Path) -> None:
    """Note that SQLite holds ``database`` open in this process."""
    _DATABASES.add(os.path.abspath(database))


def open_unless_database(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags)``, refused (`OSError` EPERM) when ``path`` is, or leads
    to, a database SQLite holds open in this process, or its ``-wal`` or ``-shm``.

    On POSIX, closing *any* descriptor of a file drops every lock the process holds
    on it, SQLite's own included; a reader that then closed would take itself for
    the last connection and delete the WAL under the run (SQLite's "how to corrupt"
    §2.2). A path a stage or a config names — a dep, an out, an artifact, a metrics
    file — may be a link (or a hard link) to the store's database, so it is looked
    at first through an ``O_PATH`` descriptor, whose close drops no lock, and only
    then opened, through that descriptor: the file judged is the file opened.
    """
    if not _BY_DESCRIPTOR:  # macOS: looked at by its name, then opened (a narrow race)
        info = os.stat(path, follow_symlinks=not flags & os.O_NOFOLLOW)
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) in _database_files():
            raise OSError(errno.EPERM, "it is the run store's database", os.fspath(path))
        return os.open(path, flags | os.O_CLOEXEC)
    probe = os.open(path, os.O_PATH | os.O_CLOEXEC | (flags & os.O_NOFOLLOW))
    try:
        info = os.fstat(probe)
        if stat.S_ISLNK(info.st_mode):  # O_NOFOLLOW on a link, as os.open refuses it
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path))
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) in _database_files():
            raise OSError(errno.EPERM, "it is the run store's database", os.fspath(path))
        return os.open(f"/proc/self/fd/{probe}", (flags & ~os.O_NOFOLLOW) | os.O_CLOEXEC)
    finally:
        os.close(probe)


def _database_files() -> set[tuple[int, int]]:
    """The device and inode of each database SQLite holds here, and of its -wal and
    -shm (found by their names, never opened)."""
    found = set()
    for database in _DATABASES:
        for name in (database, database + "-wal", database + "-shm"):
            with contextlib.suppress(OSError):
                info = os.stat(name)
                found.add((info.st_dev, info.st_ino))
    return found


def keep_private(path: Path) -> None:
    """Take group and other access away from a file a command wrote into the store."""
    with contextlib.suppress(OSError):  # not written: nothing to protect
        os.chmod(path, os.stat(path).st_mode & 0o700)


def write_private(path: Path, text: str) -> None:
    """Write a file of the store (the run's params) for its owner alone."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def make_private(state_dir: Path) -> None:
    """Create ``state_dir``, its ``runs`` and its database file, for their owner only.

    The database file is never opened here, only made: on POSIX, closing *any*
    descriptor of a file drops every lock the process holds on it, SQLite's own
    included. A reader that then closed would take itself for the last connection
    and delete the WAL under a running writer (SQLite's "how to corrupt" §2.2).
    So a new database is made as a private file under another name and linked
    into place, and an existing one is left alone.
    """
    state_dir.mkdir(DIR_MODE, parents=True, exist_ok=True)
    (state_dir / "runs").mkdir(DIR_MODE, exist_ok=True)
    database = db_path(state_dir)
    if os.path.lexists(database):
        return
    # SQLite gives the -wal and -shm files the database file's mode.
    empty = state_dir / f".{DB_NAME}-{os.getpid()}-{os.urandom(6).hex()}"
    os.close(os.open(empty, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    try:
        os.link(empty, database)
    except FileExistsError:  # another process made it meanwhile: theirs is as good
        pass
    except OSError:
        # No hard links here: SQLite makes the file, `Store.open` then takes group
        # and other access away (the state dir is its owner's alone meanwhile).
        pass
    finally:
        os.unlink(empty)


def db_path(state_dir: Path) -> Path:
    return state_dir / DB_NAME


def run_dir(state_dir: Path, run_id: int) -> Path:
    return state_dir / "runs" / str(run_id)


def log_path(state_dir: Path, run_id: int, stage: str) -> Path:
    return run_dir(state_dir, run_id) / f"{stage}.log"


def metrics_path(state_dir: Path, run_id: int, stage: str) -> Path:
    return run_dir(state_dir, run_id) / f"{stage}.metrics.json"


def params_path(state_dir: Path, run_id: int) -> Path:
    return run_dir(state_dir, run_id) / "params.json"


def version_dir(state_dir: Path, number: int) -> Path:
    return state_dir / "versions" / f"v{number}"


def deployment_log(state_dir: Path, deployment_id: int) -> Path:
    return state_dir / "deployments" / f"{deployment_id}.log"
