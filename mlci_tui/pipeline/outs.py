"""What a stage reads and writes, as the cache sees it: dep files, and outs.

**Deps** are files, directories and globs. A directory is every regular file
under it, links to files and to directories followed (each directory once:
a link back up cannot loop), tool caches (`__pycache__`, `.git`, …) left out,
and pipes or sockets never opened. A glob is matched the way the shell's
``**`` globbing does (hidden names only by a pattern that starts with a dot),
over that same walk of its literal base, so it can neither loop nor hang.

**Outs** are taken as they are: a file by its content and executable bit, a
link as a link (its target text), a directory as a manifest of every file,
link and directory in it. Restoring makes the out exactly that again, each
file a file of its own (a reflink or a copy, never a link to the cache), and
never writes through a link: a link where a directory should be is replaced,
not followed, and an out behind a link (``build -> /elsewhere``) is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
from collections.abc import Collection, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from mlci_tui.config import link_above
from mlci_tui.globs import Glob, covers
from mlci_tui.store.cache_dir import (
    CacheDamaged,
    CacheDir,
    FileHasher,
    FileStat,
    canonical,
    file_stat,
    random_hex,
    sha256_of,
)

TOOL_CACHES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})
"""Directories inside a dep that tools write as they run: never inputs."""
SHA256 = re.compile(r"[0-9a-f]{64}")
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC
"""Never waiting on a pipe put where a directory was."""
_by_name = attrgetter("name")
Meta = dict[str, Any]
"""What an out is: ``{"kind": "file", "sha": …, "exe": …}``, ``{"kind": "link",
"target": …}`` or ``{"kind": "dir", "sha": <manifest>}``."""


class Snapshot(NamedTuple):
    """An out as it is in the work tree."""

    meta: Meta | None
    """What it is (None if nothing is there)."""
    manifest: list[list[Any]]
    """A directory's manifest."""
    files: dict[str, tuple[str, FileStat]]
    """Each regular file's sha256, and the identity of the file that was read."""
    shared: list[str]
    """Regular files with other names too (hard links), as earlier versions of mlci
    left outs and the cache."""


ABSENT = Snapshot(None, [], {}, [])


# Deps --------------------------------------------------------------------------


def tree_files(root: str, exclude: Collection[tuple[int, int]] = ()) -> dict[str, FileStat]:
    """Every regular file under ``root``, sorted, with its stat (through a link, as
    `file_stats` takes it); through links (each directory once), leaving out the
    directories (device, inode) in ``exclude`` and tools' caches. A file that vanishes
    during the walk is left out; `OSError` for one that cannot be stat-ed."""
    found: dict[str, FileStat] = {}
    seen: set[tuple[int, int]] = set(exclude)

    def walk(directory: str) -> None:
        try:
            descriptor = os.open(directory, _OPEN_DIRECTORY)
        except OSError:
            return
        try:
            prefix = directory if directory.endswith(os.sep) else directory + os.sep
            listed = _listing(descriptor, prefix, seen)
        finally:
            os.close(descriptor)  # one descriptor open at a time, whatever the depth
        for path, file in listed:
            if file is None:
                walk(path)
            else:
                found[path] = file

    walk(root)
    return found


def _listing(
    descriptor: int, prefix: str, seen: set[tuple[int, int]]
) -> list[tuple[str, FileStat | None]]:
    """What the walk takes from one directory, sorted by name: each file with its stat,
    each directory to walk with None; nothing if it cannot be read or was seen.

    Files are stat-ed by their names in the directory's descriptor: the kernel looks
    up one name, not the whole path, and a directory dep may hold 10 000 files."""
    try:
        info = os.fstat(descriptor)
        entries = sorted(os.scandir(descriptor), key=_by_name)
    except OSError:
        return []
    if (info.st_dev, info.st_ino) in seen:
        return []
    seen.add((info.st_dev, info.st_ino))
    listed: list[tuple[str, FileStat | None]] = []
    stat_ = os.stat
    for entry in entries:
        name = entry.name
        try:
            if entry.is_dir():
                if name not in TOOL_CACHES:
                    listed.append((prefix + name, None))
                continue
            if not entry.is_file():
                continue
        except OSError:
            continue
        try:
            listed.append((prefix + name, file_stat(stat_(name, dir_fd=descriptor))))
        except FileNotFoundError:
            continue
        except OSError as error:
            raise OSError(error.errno, error.strerror, prefix + name) from None
    return listed


def glob_files(dep: Glob, exclude: Collection[tuple[int, int]] = ()) -> dict[str, FileStat]:
    """The files a glob dep covers, with their stats (see `tree_files`): those it
    matches, and those under a directory it matches."""
    base = str(dep.base)
    files = tree_files(base, exclude)
    cut = len(base) + 1
    return {
        path: found
        for path, found in files.items()
        if covers(dep.pattern, path[cut:].split(os.sep))
    }


# Outs --------------------------------------------------------------------------


class Outs:
    """Outs as they are in the work tree, put into the cache, and restored from it."""

    def __init__(self, hasher: FileHasher, directory: CacheDir) -> None:
        self.hasher = hasher
        self.dir = directory

    def snapshot(self, path: Path) -> Snapshot:
        """What the out at ``path`` is now."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return ABSENT
        if stat.S_ISLNK(info.st_mode):
            return Snapshot({"kind": "link", "target": os.readlink(path)}, [], {}, [])
        if stat.S_ISREG(info.st_mode):
            files = self._hashes([str(path)])
            meta = {"kind": "file", "sha": files[str(path)][0], "exe": _executable(info)}
            return Snapshot(meta, [], files, [str(path)] if info.st_nlink > 1 else [])
        if not stat.S_ISDIR(info.st_mode):
            raise ValueError(f"{path.name} is neither a file, a directory nor a link")
        entries = list(_walk_out(str(path)))
        files = self._hashes([full for kind, full, _ in entries if kind == "f"])
        cut = len(str(path)) + 1
        manifest: list[list[Any]] = []
        shared = []
        for kind, full, extra in entries:
            relative = full[cut:]
            if kind == "f":
                manifest.append(["f", relative, files[full][0], _executable(extra)])
                if extra.st_nlink > 1:
                    shared.append(full)
            elif kind == "l":
                manifest.append(["l", relative, extra])
            else:
                manifest.append(["d", relative])
        return Snapshot({"kind": "dir", "sha": sha256_of(manifest)}, manifest, files, shared)

    def _hashes(self, paths: list[str]) -> dict[str, tuple[str, FileStat]]:
        found = self.hasher.hashes(paths)
        missing = [path for path in paths if path not in found]
        if missing:
            raise FileNotFoundError(f"{missing[0]} vanished while it was read")
        return found

    def store(self, snapshot: Snapshot) -> set[str]:
        """Put what `snapshot` found into the cache, but for the files it holds intact
        already; how the files went in (see `store.cache_dir.clone`). `FileChanged` if one
        was written meanwhile."""
        shas = {sha for sha, _ in snapshot.files.values()}
        known = self.dir.known(shas)
        methods = set()
        for full, (sha, identity) in snapshot.files.items():
            if known[sha] != "intact":
                methods.add(self.dir.put_file(full, sha, identity))
                known[sha] = "intact"
        if snapshot.manifest:
            self.dir.put_bytes(canonical(snapshot.manifest))
        return methods

    def unavailable(self, meta: Meta) -> str | None:
        """Whether the cache lacks what it needs to make an out ``meta`` again:
        ``missing``, ``damaged``, or None."""
        if meta["kind"] == "link":
            return None
        if meta["kind"] == "file":
            needed = [meta["sha"]]
        else:
            try:
                needed = [entry[2] for entry in self.manifest(meta["sha"]) if entry[0] == "f"]
            except CacheDamaged:
                return "damaged"
            except (OSError, ValueError):
                return "missing"
        state = self.dir.state(needed)
        return None if state == "intact" else state

    def manifest(self, sha: str) -> list[list[Any]]:
        """A directory's manifest from the cache, each entry checked: no path in it may
        lead out of its directory, and every name of an object is a sha256."""
        try:
            entries = json.loads(self.dir.read_object(sha))
            checked = [_checked(entry) for entry in entries]
        except (TypeError, KeyError, IndexError, AttributeError) as error:
            raise ValueError(f"a malformed manifest ({error})") from None
        return checked

    def restore(self, path: Path, meta: Meta, current: Snapshot, name: str) -> set[str]:
        """Make the out at ``path`` what ``meta`` says, from what `snapshot` found there;
        how its files were copied (see `store.cache_dir.clone`)."""
        if meta["kind"] == "link":
            _remove(path)
            _symlink(meta["target"], path)
            return set()
        if meta["kind"] == "file":
            verified = self._verified(meta["sha"], name)
            _remove(path)
            return {self._restore_file(meta["sha"], path, meta["exe"], verified, name)}
        manifest = self._manifest(meta["sha"], name)
        now = current.manifest
        if current.meta is None or current.meta["kind"] != "dir":
            _remove(path)
            path.mkdir(parents=True)
            now = []
        return self._restore_dir(path, manifest, now, name)

    def _restore_dir(
        self, path: Path, manifest: list[list[Any]], now: list[list[Any]], name: str
    ) -> set[str]:
        have = {entry[1]: entry for entry in now}
        wanted = {entry[1] for entry in manifest}
        methods = set()
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
                where = os.path.join(name, entry[1])
                verified = self._verified(entry[2], where)
                _remove(target)
                methods.add(self._restore_file(entry[2], target, entry[3], verified, where))
        return methods

    def _restore_file(
        self, sha: str, path: Path, executable: bool, verified: FileStat, name: str
    ) -> str:
        try:
            return self.dir.restore_file(sha, str(path), executable, verified)
        except CacheDamaged as error:
            raise CacheDamaged(f"the cache's copy of {name} {error}") from None

    def _verified(self, sha: str, name: str) -> FileStat:
        """The identity of the object ``sha`` once checked; `CacheDamaged` (and the
        object dropped) if it was changed since it was stored."""
        try:
            return self.dir.verified(sha)
        except CacheDamaged as error:
            raise CacheDamaged(f"the cache's copy of {name} was {error}") from None

    def _manifest(self, sha: str, name: str) -> list[list[Any]]:
        try:
            return self.manifest(sha)
        except CacheDamaged as error:
            raise CacheDamaged(f"the cache's manifest of {name} was {error}") from None

    def unshare(self, snapshot: Snapshot) -> int:
        """Give each file of an out that other names share (see `Snapshot.shared`) a file
        of its own, where its content is what was hashed; how many were."""
        done = 0
        for full in snapshot.shared:
            with contextlib.suppress(OSError):
                done += self.dir.make_private(full, snapshot.files[full][0])
        return done

    def planned_files(self, path: Path, meta: Meta) -> Iterator[tuple[str, str]]:
        """(file, sha256) of every regular file an out ``meta`` at ``path`` has."""
        if meta["kind"] == "file":
            yield str(path), meta["sha"]
        elif meta["kind"] == "dir":
            with contextlib.suppress(OSError, ValueError, CacheDamaged):
                for entry in self.manifest(meta["sha"]):
                    if entry[0] == "f":
                        yield str(path / entry[1]), entry[2]

    def planned_walk(self, path: Path, meta: Meta) -> list[tuple[str, str]] | None:
        """The files a dep's walk (`tree_files`) would find at ``path`` once the out
        ``meta`` is restored there, with their sha256, in the walk's order; None when
        that cannot be told before (a link in it that leads out of it)."""
        if meta["kind"] == "file":
            return [(str(path), meta["sha"])]
        if meta["kind"] == "link":
            return None
        try:
            return _walk_manifest(str(path), self.manifest(meta["sha"]))
        except (OSError, ValueError, CacheDamaged):
            return None

    def objects_of(self, meta: Meta) -> set[str]:
        """The objects an out ``meta`` needs."""
        if meta["kind"] == "link":
            return set()
        found = {meta["sha"]}
        if meta["kind"] == "dir":
            with contextlib.suppress(OSError, ValueError, CacheDamaged):
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


class _Outside(Exception):
    """A link in a manifest that leads out of its directory."""


def _walk_manifest(root: str, manifest: list[list[Any]]) -> list[tuple[str, str]] | None:
    """`tree_files` over a directory as its manifest describes it: links followed
    inside it, each directory once, tools' caches left out; None if a link leads out."""
    entries = {entry[1]: entry for entry in manifest}
    children: dict[str, list[str]] = {}
    for relative in entries:
        children.setdefault(os.path.dirname(relative), []).append(os.path.basename(relative))
    found: list[tuple[str, str]] = []
    seen: set[str] = set()

    def resolve(relative: str, depth: int = 0) -> list[Any] | None:
        entry = entries.get(relative)
        if entry is None or entry[0] != "l":
            return entry
        if depth > 40:  # a loop of links: the walk finds nothing there
            return None
        target = entry[2]
        joined = os.path.normpath(os.path.join(os.path.dirname(relative), target))
        if os.path.isabs(target) or joined == ".." or joined.startswith(".." + os.sep):
            raise _Outside
        if joined == ".":
            return ["d", ""]
        parts = joined.split(os.sep)
        for end in range(1, len(parts)):
            between = entries.get(os.sep.join(parts[:end]))
            if between is not None and between[0] == "l":
                raise _Outside  # through another link: not worth following here
        return resolve(joined, depth + 1)

    def walk(virtual: str, real: str) -> None:
        if real in seen:
            return
        seen.add(real)
        for name in sorted(children.get(real, [])):
            entry = resolve(os.path.join(real, name) if real else name)
            if entry is None:
                continue
            if entry[0] == "d":
                if name not in TOOL_CACHES:
                    walk(os.path.join(virtual, name), entry[1])
            elif entry[0] == "f":
                found.append((os.path.join(virtual, name), entry[2]))

    try:
        walk(root, "")
    except _Outside:
        return None
    return found


def _walk_out(root: str) -> Iterator[tuple[str, str, Any]]:
    """("f", path, its lstat), ("l", path, target) or ("d", path, None) for everything
    under ``root``, sorted by path; links are not followed. What a directory out holds
    and the cache could not give back (a pipe, a socket, a device, a directory that
    cannot be read) is a ValueError: the stage is not cached, rather than cached
    without it."""
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError as error:
        raise ValueError(f"{root} cannot be read ({error.strerror or error})") from None
    for entry in entries:
        if entry.is_symlink():
            yield "l", entry.path, os.readlink(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            yield "d", entry.path, None
            yield from _walk_out(entry.path)
        elif entry.is_file(follow_symlinks=False):
            yield "f", entry.path, entry.stat(follow_symlinks=False)
        else:
            raise ValueError(f"{entry.path} is neither a file, a directory nor a link")


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
    temporary = path.with_name(f".mlci-restore-{random_hex()}")
    os.symlink(target, temporary)
    os.replace(temporary, path)


def outs_behind_links(paths: Collection[Path], root: Path) -> str | None:
    """Why outs at ``paths`` may not be removed or written, if one is behind a link."""
    for path in paths:
        link = link_above(path, root)
        if link is not None:
            where = os.path.relpath(link, root)
            return (
                f"out {os.path.relpath(path, root)} is behind a link ({where} ->"
                f" {os.readlink(link)}): outs are removed before their stage runs, never"
                " through a link"
            )
    return None


def remove_outs(paths: tuple[Path, ...]) -> None:
    """Before a stage runs: what it writes is then all there is (see
    `outs_behind_links`, checked first)."""
    for path in paths:
        _remove(path)
