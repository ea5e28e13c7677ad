"""What a stage reads and writes, as the cache sees it: dep files, and outs.

**Deps** are files, directories and globs. A directory is every regular file
under it, links to files and to directories followed (each directory once:
a link back up cannot loop), tool caches (`__pycache__`, `.git`, …) left out,
and pipes or sockets never opened. A glob is matched the way the shell's
``**`` globbing does (hidden names only by a pattern that starts with a dot),
over that same walk of its literal base, so it can neither loop nor hang.

**Outs** are taken as they are: a file by its content and executable bit, a
link as a link (its target text), a directory as a manifest of every file,
link and directory in it. Restoring makes the out exactly that again, and
never writes through a link: a link where a directory should be is replaced,
not followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlci_tui.globs import Glob, covers
from mlci_tui.store.cache import CacheDir, FileHasher, canonical, sha256_of

TOOL_CACHES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})
"""Directories inside a dep that tools write as they run: never inputs."""
SHA256 = re.compile(r"[0-9a-f]{64}")
Meta = dict[str, Any]
"""What an out is: ``{"kind": "file", "sha": …, "exe": …}``, ``{"kind": "link",
"target": …}`` or ``{"kind": "dir", "sha": <manifest>}``."""


class CacheDamaged(Exception):
    """An object in the cache no longer has the content its name says."""


# Deps --------------------------------------------------------------------------


def tree_files(root: str, exclude: Collection[tuple[int, int]] = ()) -> list[str]:
    """Every regular file under ``root``, sorted, through links (each directory once),
    leaving out the directories (device, inode) in ``exclude`` and tools' caches."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set(exclude)

    def walk(directory: str) -> None:
        try:
            info = os.stat(directory)
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        if (info.st_dev, info.st_ino) in seen:
            return
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_dir():
                    if entry.name not in TOOL_CACHES:
                        walk(entry.path)
                elif entry.is_file():
                    found.append(entry.path)

    walk(root)
    return found


def glob_files(dep: Glob, exclude: Collection[tuple[int, int]] = ()) -> list[str]:
    """The files a glob dep covers: those it matches, and those under a directory it
    matches."""
    base = str(dep.base)
    files = tree_files(base, exclude)
    cut = len(base) + 1
    return [path for path in files if covers(dep.pattern, path[cut:].split(os.sep))]


# Outs --------------------------------------------------------------------------


class Outs:
    """Outs as they are in the work tree, put into the cache, and restored from it."""

    def __init__(self, hasher: FileHasher, directory: CacheDir) -> None:
        self.hasher = hasher
        self.dir = directory

    def snapshot(self, path: Path) -> tuple[Meta | None, list[list[Any]], dict[str, str]]:
        """What the out at ``path`` is now (None if nothing is there), its manifest when
        it is a directory, and the sha256 of each regular file in it."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None, [], {}
        if stat.S_ISLNK(info.st_mode):
            return {"kind": "link", "target": os.readlink(path)}, [], {}
        if stat.S_ISREG(info.st_mode):
            sha = self._hashes([str(path)])[str(path)]
            return {"kind": "file", "sha": sha, "exe": _executable(info)}, [], {str(path): sha}
        if not stat.S_ISDIR(info.st_mode):
            raise ValueError(f"{path.name} is neither a file, a directory nor a link")
        entries = list(_walk_out(str(path)))
        shas = self._hashes([full for kind, full, _ in entries if kind == "f"])
        cut = len(str(path)) + 1
        manifest: list[list[Any]] = []
        for kind, full, extra in entries:
            relative = full[cut:]
            if kind == "f":
                manifest.append(["f", relative, shas[full], extra])
            elif kind == "l":
                manifest.append(["l", relative, extra])
            else:
                manifest.append(["d", relative])
        return {"kind": "dir", "sha": sha256_of(manifest)}, manifest, shas

    def _hashes(self, paths: list[str]) -> dict[str, str]:
        found = self.hasher.hashes(paths)
        missing = [path for path in paths if path not in found]
        if missing:
            raise FileNotFoundError(f"{missing[0]} vanished while it was read")
        return {path: sha for path, (sha, _) in found.items()}

    def store(self, manifest: list[list[Any]], shas: Mapping[str, str]) -> None:
        """Put what `snapshot` found into the cache."""
        for full, sha in shas.items():
            self.dir.put_file(full, sha)
        if manifest:
            self.dir.put_bytes(canonical(manifest))

    def available(self, meta: Meta) -> bool:
        """Whether the cache holds all it needs to make an out ``meta`` again."""
        if meta["kind"] == "link":
            return True
        if not self.dir.has(meta["sha"]):
            return False
        if meta["kind"] == "file":
            return True
        try:
            manifest = self.manifest(meta["sha"])
        except (OSError, ValueError):
            return False
        return all(self.dir.has(entry[2]) for entry in manifest if entry[0] == "f")

    def manifest(self, sha: str) -> list[list[Any]]:
        """A directory's manifest from the cache, each entry checked: no path in it may
        lead out of its directory, and every name of an object is a sha256."""
        try:
            entries = json.loads(self.dir.read_object(sha))
            checked = [_checked(entry) for entry in entries]
        except (TypeError, KeyError, IndexError, AttributeError) as error:
            raise ValueError(f"a malformed manifest ({error})") from None
        return checked

    def restore(
        self, path: Path, meta: Meta, current: Meta | None, now: list[list[Any]], name: str
    ) -> None:
        """Make the out at ``path`` what ``meta`` says; ``current`` and ``now`` are what
        `snapshot` found there."""
        if meta["kind"] == "link":
            _remove(path)
            _symlink(meta["target"], path)
        elif meta["kind"] == "file":
            self._check(meta["sha"], name)
            _remove(path)
            self.dir.restore_file(meta["sha"], str(path), meta["exe"])
        else:
            manifest = self.manifest(meta["sha"])
            if current is None or current["kind"] != "dir":
                _remove(path)
                path.mkdir(parents=True)
                now = []
            self._restore_dir(path, manifest, now, name)

    def _restore_dir(
        self, path: Path, manifest: list[list[Any]], now: list[list[Any]], name: str
    ) -> None:
        have = {entry[1]: entry for entry in now}
        wanted = {entry[1] for entry in manifest}
        # Deepest first, so that a directory is empty when its turn comes.
        for relative in sorted(set(have) - wanted, key=lambda r: -r.count(os.sep)):
            _remove(path / relative)
        for entry in manifest:  # sorted: a directory comes before what is in it
            target = path / entry[1]
            if have.get(entry[1]) == entry:
                continue
            if entry[0] == "d":
                _remove(target)
                target.mkdir()
            elif entry[0] == "l":
                _remove(target)
                _symlink(entry[2], target)
            else:
                self._check(entry[2], os.path.join(name, entry[1]))
                _remove(target)
                self.dir.restore_file(entry[2], str(target), entry[3])

    def _check(self, sha: str, name: str) -> None:
        """Raise `CacheDamaged` (and drop the object) if it was changed in place: an out
        and its cached copy are one file, and an out can be written to."""
        object_path = str(self.dir.object_path(sha))
        found = self.hasher.hashes([object_path]).get(object_path)
        if found is None or found[0] != sha:
            with contextlib.suppress(OSError):
                os.unlink(object_path)
            raise CacheDamaged(f"the cache's copy of {name} was changed since it was stored")

    def planned_files(self, path: Path, meta: Meta) -> Iterator[tuple[str, str]]:
        """(file, sha256) of every regular file an out ``meta`` at ``path`` has."""
        if meta["kind"] == "file":
            yield str(path), meta["sha"]
        elif meta["kind"] == "dir":
            with contextlib.suppress(OSError, ValueError):
                for entry in self.manifest(meta["sha"]):
                    if entry[0] == "f":
                        yield str(path / entry[1]), entry[2]

    def objects_of(self, meta: Meta) -> set[str]:
        """The objects an out ``meta`` needs."""
        if meta["kind"] == "link":
            return set()
        found = {meta["sha"]}
        if meta["kind"] == "dir":
            with contextlib.suppress(OSError, ValueError):
                found |= {entry[2] for entry in self.manifest(meta["sha"]) if entry[0] == "f"}
        return found


def valid_meta(meta: object) -> bool:
    """Whether an entry's description of an out is one mlci writes."""
    if not isinstance(meta, dict):
        return False
    kind = meta.get("kind")
    if kind == "link":
        return isinstance(meta.get("target"), str)
    if kind == "file":
        return _is_sha(meta.get("sha")) and isinstance(meta.get("exe"), bool)
    return kind == "dir" and _is_sha(meta.get("sha"))


def _is_sha(value: object) -> bool:
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


def _checked(entry: list[Any]) -> list[Any]:
    kind, relative = entry[0], entry[1]
    parts = Path(relative).parts if isinstance(relative, str) else ()
    if (
        not parts
        or Path(relative).is_absolute()
        or ".." in parts
        or relative != os.path.normpath(relative)
    ):
        raise ValueError(f"a manifest names {relative!r}")
    if kind == "f" and _is_sha(entry[2]) and isinstance(entry[3], bool) and len(entry) == 4:
        return entry
    if kind == "l" and isinstance(entry[2], str) and len(entry) == 3:
        return entry
    if kind == "d" and len(entry) == 2:
        return entry
    raise ValueError(f"a manifest entry {entry!r:.80}")


def _walk_out(root: str) -> Iterator[tuple[str, str, Any]]:
    """("f", path, executable), ("l", path, target) or ("d", path, None) for everything
    under ``root``, sorted by path; links are not followed."""
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            yield "l", entry.path, os.readlink(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            yield "d", entry.path, None
            yield from _walk_out(entry.path)
        elif entry.is_file(follow_symlinks=False):
            yield "f", entry.path, _executable(entry.stat(follow_symlinks=False))


def _executable(info: os.stat_result) -> bool:
    return bool(info.st_mode & stat.S_IXUSR)


def _remove(path: Path) -> None:
    """Whatever is at ``path``: a link (never what it leads to), a file, a directory."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)


def _symlink(target: str, path: Path) -> None:
    temporary = path.with_name(f".mlci-restore-{uuid.uuid4().hex}")
    os.symlink(target, temporary)
    os.replace(temporary, path)


def remove_outs(paths: tuple[Path, ...]) -> None:
    """Before a stage runs: what it writes is then all there is, and it never writes
    into a file the cache shares by hard link."""
    for path in paths:
        _remove(path)
