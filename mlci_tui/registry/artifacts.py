"""Artifact files and directories: copying into the store and hashing.

A directory's digest covers every file's relative path, size and content, in
sorted order, so the same tree always gives the same sha256 and any change —
a byte, a name, a file added or removed — gives another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

CHUNK = 1 << 20


def digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and total size in bytes of a file or a directory tree."""
    if path.is_dir():
        total = hashlib.sha256()
        size = 0
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            file_hash, file_size = _file_digest(file)
            relative = file.relative_to(path).as_posix()
            total.update(f"{relative}\0{file_size}\0{file_hash}\n".encode())
            size += file_size
        return total.hexdigest(), size
    return _file_digest(path)


def _file_digest(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def stage_copy(source: Path, parent: Path) -> Path:
    """Copy ``source`` (file or directory) into a new hidden directory under ``parent``,
    flushed to disk; `commit_copy` then makes it appear under its final name at once."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        target = staging / source.name
        if source.is_dir():
            shutil.copytree(source, target)
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


def _sync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        sync_directory(Path(directory))


def sync_directory(path: Path) -> None:
    """fsync a directory, so a rename inside it survives a power loss."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
