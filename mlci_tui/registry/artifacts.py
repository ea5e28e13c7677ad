"""Artifact files and directories: copying into the store and hashing.

A directory's digest covers every file's relative path, size and content, in
sorted order, so the same tree always gives the same sha256 and any change —
a byte, a name, a file added or removed — gives another. A symbolic link inside
is kept as a link and hashed by its target; one that leads out of the artifact
is refused, so nothing outside it is ever copied into the store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from pathlib import Path

from mlci_tui.errors import RegistryError
from mlci_tui.store.paths import DIR_MODE, STAGING, open_unless_database

CHUNK = 1 << 20


def digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and total size in bytes of a file or a directory tree."""
    if not path.is_dir():
        return _file_digest(path)
    total = hashlib.sha256()
    size = 0
    # Names are bytes to the file system: hashed as such, UTF-8 or not.
    root = os.fsencode(path)
    entries: list[tuple[bytes, bytes]] = []
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, root)
            if os.path.islink(full):
                entries.append((relative, b"\0link\0" + os.readlink(full) + b"\n"))
            elif name in files:
                file_hash, file_size = _file_digest(Path(os.fsdecode(full)))
                entries.append((relative, f"\0{file_size}\0{file_hash}\n".encode()))
                size += file_size
    # In the order of their parts, as the digests of earlier versions were taken.
    for relative, line in sorted(entries, key=lambda entry: entry[0].split(b"/")):
        total.update(relative + line)
    return total.hexdigest(), size


def _file_digest(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    # Opened without blocking and judged by what was opened: a FIFO with no writer
    # would hold the run in open() forever.
    descriptor = open_unless_database(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise RegistryError(
                f"{path} is neither a file, a directory nor a link; an artifact holds only those"
            )
        while chunk := file.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def stage_copy(source: Path, parent: Path) -> Path:
    """Copy ``source`` (file or directory) into a new hidden directory under ``parent``,
    flushed to disk; `commit_copy` then makes it appear under its final name at once."""
    parent.mkdir(DIR_MODE, parents=True, exist_ok=True)
    # Named by the copying process, so that recovery knows a copy nobody finishes.
    staging = parent / f"{STAGING}{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir(DIR_MODE)
    try:
        target = staging / source.name
        if source.is_dir():
            _refuse_links_out(source)
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
        _sync_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def commit_copy(staging: Path, destination: Path) -> None:
    """Rename a staged copy to ``destination``, durably."""
    os.replace(staging, destination)
    sync_directory(destination.parent)


def _refuse_links_out(root: Path) -> None:
    """Raise `RegistryError` for a link in ``root`` that leads out of it (or nowhere)."""
    inside = os.path.realpath(root)
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            link = os.path.join(directory, name)
            if not os.path.islink(link):
                continue
            target = os.path.realpath(link)
            if os.path.commonpath([inside, target]) != inside or not os.path.lexists(target):
                relative = os.path.relpath(link, root)
                raise RegistryError(
                    f"{root}: {relative} links to {os.readlink(link)}, outside the artifact;"
                    " only links within it are stored"
                )


def _sync_tree(root: Path) -> None:
    """Flush a copy to disk, its files for their owner only (the store's rule)."""
    for directory, _, files in os.walk(root):
        for name in files:
            if os.path.islink(os.path.join(directory, name)):
                continue  # kept as a link: nothing of its own to flush
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fchmod(fd, os.fstat(fd).st_mode & 0o700)
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(directory, os.stat(directory).st_mode & 0o700)
        sync_directory(Path(directory))


def sync_directory(path: Path) -> None:
    """fsync a directory, so a rename inside it survives a power loss."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
