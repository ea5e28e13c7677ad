"""An experiment's workspace: the project as it was when the experiment started.

The project is snapshotted into ``<state_dir>/experiments/<id>/project`` —
everything, ignored data included, but the state dir, the cache dir and tools'
caches — so that a user editing files, or a run writing outs, changes nothing an
experiment sees. How, from the cheapest:

- ``overlay``: in a mount namespace of the worker's own (`private_mounts`), the
  snapshot is the read-only lower layer of an overlay mounted at ``merged``; the
  experiment's writes land in ``upper``. Large files are not copied into the
  snapshot: each is put in the content-addressed cache (once; an out a stage made
  is there already) and the snapshot holds a hard link to that read-only object,
  which the overlay never writes through — a write copies the file up first.
  Small files are copied (a copy costs less than a hash and a link).
- ``reflink``: where no overlay can be mounted, every file is cloned into the
  snapshot (the filesystem shares the blocks until one side writes).
- ``copy``: else every file is copied, in the kernel where it can be.

The snapshot never holds a link to a user's file: an in-place write to it would
show through. Whatever the method, the hashes of the files the snapshot took are
remembered for their new paths, so a 1 GB dataset is not read again to decide
whether a stage is cached.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from mlci_tui.store.cache_dir import (
    RACY_NS,
    CacheDir,
    FileChanged,
    clone,
    file_stat,
    open_file,
    sha256_file,
)
from mlci_tui.store.file_hashes import FileStat
from mlci_tui.store.paths import DIR_MODE

SKIPPED = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
"""Tools' caches: made again by the tools, and never an input."""
SHARED_MIN = 1 << 20
"""Files this large are shared from the cache under an overlay, not copied."""
EXPERIMENTS_DIR = Path(".mlci") / "experiments"
"""Under the project, whatever ``state_dir`` says (as the outs lock is): one directory
per experiment's workspace. Not in a store elsewhere, where every out of the workspace
would be inside the store."""
SHARED_LIST = "shared"
"""In a workspace's directory: the cache objects its snapshot links to, one a line."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2
_MS_RDONLY = 1


def experiment_dir(root: Path, experiment_id: int) -> Path:
    """The directory of an experiment's workspace, in the project at ``root``."""
    return root / EXPERIMENTS_DIR / str(experiment_id)


class WorkspaceError(Exception):
    """The workspace could not be made; the message says why."""


class Workspace(NamedTuple):
    directory: Path
    """``<state_dir>/experiments/<id>``: everything of the workspace is inside."""
    path: Path
    """The project as the experiment's stages see it."""
    method: str
    """``overlay``, ``reflink`` or ``copy``."""
    copied_bytes: int
    shared_bytes: int
    """Bytes of large files linked from the cache (``overlay``) or cloned (``reflink``)."""
    seconds: float
    unreadable: int = 0

    def describe(self) -> str:
        shared = f", {_size(self.shared_bytes)} shared without copying" if self.shared_bytes else ""
        left_out = (
            f"; {self.unreadable} unreadable file{'s' * (self.unreadable != 1)} left out"
            if self.unreadable
            else ""
        )
        return (
            f"workspace by {self.method} in {self.seconds * 1000:.0f} ms:"
            f" {_size(self.copied_bytes)} copied{shared}{left_out}"
        )


def _size(count: int) -> str:
    from mlci_tui.units import format_bytes

    return format_bytes(count)


def private_mounts() -> bool:
    """Give this process a mount namespace of its own (and a user namespace, when it is
    not root, to be allowed to mount in it), whose mounts nobody else sees and which
    goes when the process and its children end. Must be called before any thread
    starts. False where the kernel refuses (a container without user namespaces)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    for flags in (_CLONE_NEWNS, _CLONE_NEWNS | _CLONE_NEWUSER):
        if flags & _CLONE_NEWUSER and uid == 0:
            continue  # root without the right to unshare gains nothing from a user namespace
        if libc.unshare(flags) != 0:
            continue
        if flags & _CLONE_NEWUSER:
            try:
                # The same ids inside as outside: stages run as the user, not as root.
                Path("/proc/self/setgroups").write_text("deny")
                Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
                Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
            except OSError:
                return False
        # Mounts made here must not propagate back to the namespace it came from.
        return libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) == 0
    return False


def _mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> bool:
    """Mount the overlay, then hide its layers under empty read-only mounts: a stage
    that walks out of the workspace (``../project/…``) must not write the snapshot,
    whose large files are the cache's objects, nor the upper layer behind the
    overlay's back. The overlay keeps its own hold on them."""
    if not _mount_layers(lower, upper, work, merged):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    for layer in (lower, upper, work):
        if libc.mount(b"none", os.fsencode(layer), b"tmpfs", _MS_RDONLY, b"size=4k") != 0:
            _unmount_all(merged, (lower, upper, work))
            return False
    return True


def _mount_layers(lower: Path, upper: Path, work: Path, merged: Path) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    base = f"lowerdir={lower},upperdir={upper},workdir={work}"
    # In a user namespace (not root) the overlay keeps its marks in user.* xattrs; one
    # mounted without them there fails every rename and removal of a lower directory.
    # redirect_dir: a directory of the snapshot can be renamed, as in the project (not
    # in a user namespace: there renaming one fails with EXDEV, which `mv` handles).
    extras = ("", ",userxattr") if os.getuid() == 0 else (",userxattr", "")
    for options in (base + ",redirect_dir=on", base):
        for extra in extras:
            if (
                libc.mount(
                    b"overlay", os.fsencode(merged), b"overlay", 0, os.fsencode(options + extra)
                )
                == 0
            ):
                return True
    return False


def _unmount_all(merged: Path, layers: Sequence[Path]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for path in (merged, *layers):
        libc.umount2(os.fsencode(path), _MNT_DETACH)


def make(
    project: Path,
    directory: Path,
    *,
    exclude: Collection[Path],
    cache: CacheDir | None,
    overlay: bool,
) -> Workspace:
    """Snapshot ``project`` under ``directory`` and return the workspace; with
    ``overlay`` (this process has `private_mounts`), mount one over the snapshot.
    `WorkspaceError` saying why it could not be made."""
    began = time.monotonic()
    lower = directory / "project"
    try:
        directory.mkdir(DIR_MODE, parents=True, exist_ok=True)
        lower.mkdir(DIR_MODE)
    except OSError as error:
        raise WorkspaceError(f"{directory}: cannot make the workspace: {error.strerror}") from None
    if overlay and cache is not None:
        # Once per cache, before any object gets a second name here: an earlier mlci's
        # links are found by their count, and these must not be taken for them.
        with contextlib.suppress(OSError):
            cache.make_objects_private()
    skipped = {_identity(path) for path in (*exclude, directory)}
    skipped.discard(None)
    snapshot = _Snapshot(project, lower, skipped, cache, share=overlay)
    try:
        snapshot.copy_tree(str(project), str(lower))
    except OSError as error:
        what = error.filename or project
        raise WorkspaceError(f"{what}: cannot snapshot the project: {error.strerror}") from None
    path, method = lower, snapshot.method
    if overlay:
        merged = directory / "merged"
        upper, work = directory / "upper", directory / "work"
        for made in (merged, upper, work):
            made.mkdir(DIR_MODE, exist_ok=True)
        if _mount_overlay(lower, upper, work, merged):
            path, method = merged, "overlay"
        elif snapshot.shared_bytes:
            # Large files are cache objects linked into the snapshot: without the overlay
            # above them a stage could write through, so they get files of their own.
            snapshot.unshare()
            method = snapshot.method
    if cache is not None:
        snapshot.remember(path, cache)
    if snapshot.linked:
        shared = sorted({snapshot.known[relative] for relative in snapshot.linked})
        (directory / SHARED_LIST).write_text("\n".join(shared) + "\n")
    return Workspace(
        directory,
        path,
        method,
        snapshot.copied_bytes,
        snapshot.shared_bytes,
        time.monotonic() - began,
        snapshot.unreadable,
    )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class _Snapshot:
    def __init__(
        self,
        project: Path,
        lower: Path,
        skipped: set[tuple[int, int] | None],
        cache: CacheDir | None,
        *,
        share: bool,
    ) -> None:
        self.project = str(project)
        self.real = os.path.realpath(project)
        self.lower = str(lower)
        self.skipped = skipped
        self.cache = cache
        self.share = share
        self.copied_bytes = 0
        self.shared_bytes = 0
        self.methods: set[str] = set()
        self.known: dict[str, str] = {}
        """Relative path → sha256, for the files whose content is known (shared ones)."""
        self.linked: list[str] = []
        self.unreadable = 0
        """Files and directories the user cannot read: left out, as they are of no use."""

    @property
    def method(self) -> str:
        return "reflink" if self.methods == {"reflink"} else "copy"

    def copy_tree(self, source: str, target: str) -> None:
        try:
            with os.scandir(source) as entries:
                listed = list(entries)
        except PermissionError:
            self.unreadable += 1  # as for the user's own run: it cannot read it either
            return
        for entry in listed:
            destination = os.path.join(target, entry.name)
            if entry.is_symlink():
                link = None if self._skipped_link(entry.path) else self._link_target(entry.path)
                if link is not None:
                    os.symlink(link, destination)
            elif entry.is_dir():
                info = entry.stat()
                if entry.name in SKIPPED or (info.st_dev, info.st_ino) in self.skipped:
                    continue
                os.mkdir(destination, stat.S_IMODE(info.st_mode) | 0o700)
                self.copy_tree(entry.path, destination)
                os.utime(destination, ns=(info.st_atime_ns, info.st_mtime_ns))
            elif entry.is_file():
                self._file(entry.path, destination, entry.stat())
            # Anything else (a pipe, a socket, a device) is no input a copy could give.

    def _skipped_link(self, path: str) -> bool:
        """A link to the store, the cache or a workspace (``.mlci`` on another disk)."""
        try:
            info = os.stat(path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) in self.skipped

    def _link_target(self, path: str) -> str | None:
        """Where a link in the snapshot points: into the snapshot where the project's
        link leads into the project (by any path: through other links, an alias of the
        project), as a relative link; else where it leads. None for a link to a
        directory holding the project (``up -> ..``): through it, a stage would reach
        the project itself, so it is left out."""
        where = os.path.realpath(path)
        home = os.path.realpath(os.path.dirname(path))
        if where == self.real or where.startswith(self.real + os.sep):
            return os.path.relpath(where, home)
        if self.real.startswith(where.rstrip(os.sep) + os.sep):
            return None
        return where

    def _file(self, source: str, destination: str, info: os.stat_result) -> None:
        plain = not info.st_mode & 0o111
        if self.share and self.cache is not None and info.st_size >= SHARED_MIN and plain:
            with contextlib.suppress(FileChanged, OSError):
                self._share(source, destination)
                return
        try:
            descriptor = open_file(source, follow=False)
        except PermissionError:
            self.unreadable += 1
            return
        try:
            opened = os.fstat(descriptor)
            mode = stat.S_IMODE(opened.st_mode) | 0o600
            target = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                self.methods.add(clone(descriptor, target, opened.st_size))
                os.utime(target, ns=(opened.st_atime_ns, opened.st_mtime_ns))
            finally:
                os.close(target)
            if opened.st_size >= SHARED_MIN:
                self._known_copy(source, destination, descriptor, file_stat(opened))
        finally:
            os.close(descriptor)
        self.copied_bytes += opened.st_size

    def _known_copy(
        self, source: str, destination: str, descriptor: int, identity: FileStat
    ) -> None:
        """A large file whose hash the store knows: so is its copy's, when the file did
        not change while it was copied."""
        if self.cache is None:
            return
        memo = self.cache.hasher.table.remembered([source]).get(source)
        if (
            memo is not None
            and memo[:5] == identity
            and memo[5] - identity[3] > RACY_NS
            and file_stat(os.fstat(descriptor)) == identity
        ):
            self.known[os.path.relpath(destination, self.lower)] = memo[6]

    def _share(self, source: str, destination: str) -> None:
        """The file as a link to its object in the cache, which it is put in first."""
        assert self.cache is not None
        found = self.cache.hasher.hashes([source]).get(source)
        if found is None:
            raise FileChanged(source)
        sha, identity = found
        if not self.cache.has(sha):
            self.cache.put_file(source, sha, identity)
        obj = self.cache.object_path(sha)
        self.cache.verified(sha)
        os.link(obj, destination)
        # The link changed the object's ctime: what it holds is still known.
        self.cache.remember(obj, sha)
        relative = os.path.relpath(destination, self.lower)
        self.known[relative] = sha
        self.linked.append(relative)
        self.shared_bytes += identity[2]

    def unshare(self) -> None:
        for relative in self.linked:
            path = os.path.join(self.lower, relative)
            temporary = path + ".mlci-copy"
            with open(path, "rb") as source, open(temporary, "xb") as target:
                self.methods.add(
                    clone(source.fileno(), target.fileno(), os.fstat(source.fileno()).st_size)
                )
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
            self.copied_bytes += os.path.getsize(path)
        self.shared_bytes = 0
        self.linked.clear()

    def remember(self, root: Path, cache: CacheDir) -> None:
        """What the shared files hold, under the paths the stages will hash them by."""
        rows = []
        for relative, sha in self.known.items():
            path = os.path.join(root, relative)
            with contextlib.suppress(OSError):
                identity = file_stat(os.stat(path))
                rows.append((path, identity, identity[3] + RACY_NS + 1, sha))
        cache.hasher.table.remember(rows)


def unmount(workspace: Workspace) -> None:
    """Take the overlay down (before its layers are removed or merged): the namespace
    would drop it when the worker ends, but not before."""
    if workspace.method == "overlay":
        layers = [workspace.directory / name for name in ("project", "upper", "work")]
        _unmount_all(workspace.path, layers)


def keep(workspace: Workspace, cache: CacheDir | None = None) -> Path:
    """After the experiment: the workspace as its stages left it, as one directory a
    person can look into (`--keep`). Under an overlay, what the experiment wrote is
    moved over the snapshot, and the files shared with the cache get their own."""
    unchanged = _unchanged_objects(workspace.directory, cache)
    lower = workspace.directory / "project"
    upper = workspace.directory / "upper"
    if workspace.method == "overlay":
        _apply_upper(str(upper), str(lower))
        for name in ("upper", "work", "merged"):
            _remove_tree(workspace.directory / name)
    for root, _, files in os.walk(lower):
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                    # Still a cache object's link: a copy of its own before anyone edits it.
                    temporary = path + ".mlci-copy"
                    shutil.copyfile(path, temporary)
                    os.chmod(temporary, 0o644)
                    os.replace(temporary, path)
    (workspace.directory / SHARED_LIST).unlink(missing_ok=True)
    if cache is not None:
        for sha in unchanged:
            cache.remember(cache.object_path(sha), sha)
    return lower


def _apply_upper(upper: str, lower: str) -> None:
    """Move an overlay's upper layer over its lower one: whiteouts remove, an opaque
    directory replaces, anything else is moved into place."""
    with os.scandir(upper) as entries:
        listed = list(entries)
    for entry in listed:
        target = os.path.join(lower, entry.name)
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
            _remove_path(target)
        elif entry.is_dir(follow_symlinks=False):
            opaque = _opaque(entry.path)
            if opaque or not os.path.isdir(target) or os.path.islink(target):
                _remove_path(target)
                os.rename(entry.path, target)
            else:
                _apply_upper(entry.path, target)
        else:
            if os.path.isdir(target) and not os.path.islink(target):
                _remove_path(target)
            os.replace(entry.path, target)


def _opaque(path: str) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        with contextlib.suppress(OSError):
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
    return False


def _remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        _remove_tree(Path(path))
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def remove(directory: Path, cache: CacheDir | None = None) -> None:
    """Remove a workspace whole (its overlay is gone with its worker's namespace).

    Unlinking a cache object's name changes the object's ctime, which the store's
    memory of what it holds includes: an object nothing changed since it was last
    known (its identity, ctime too, as remembered) is known again after, so that the
    next workspace does not read a 1 GB object again to check it."""
    unchanged = _unchanged_objects(directory, cache)
    _remove_tree(directory)
    if cache is not None:
        for sha in unchanged:
            cache.remember(cache.object_path(sha), sha)


def _unchanged_objects(directory: Path, cache: CacheDir | None) -> list[str]:
    if cache is None:
        return []
    try:
        shas = (directory / SHARED_LIST).read_text().split()
    except OSError:
        return []
    paths = {sha: str(cache.object_path(sha)) for sha in shas}
    remembered = cache.hasher.table.remembered(list(paths.values()))
    unchanged = []
    for sha, path in paths.items():
        memo = remembered.get(path)
        with contextlib.suppress(OSError):
            if memo is not None and memo[6] == sha and tuple(memo[:5]) == file_stat(os.lstat(path)):
                unchanged.append(sha)
    return unchanged


def _remove_tree(path: Path) -> None:
    def writable(function: object, name: str, _: object) -> None:
        # The overlay's work directory is left without permissions; a stage may have
        # made a directory read-only.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o700)
            if not os.path.islink(name):  # a link's target is not the workspace's
                os.chmod(name, 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(name) and not os.path.islink(name):
                os.rmdir(name)
            else:
                os.unlink(name)

    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path, onerror=writable)


def code_state(root: Path) -> tuple[str | None, str | None]:
    """The commit checked out at ``root``, and a hash of what the work tree changed
    since it (tracked changes and untracked files that are not ignored); None for a
    clean tree. ``(None, None)`` outside a git work tree or without git."""

    def git(*args: str) -> bytes | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    changes = git("diff", "HEAD", "--binary")
    untracked = git("ls-files", "--others", "--exclude-standard", "-z")
    if changes is None or untracked is None:
        return commit.decode().strip(), None
    digest = hashlib.sha256(changes)
    for name in sorted(filter(None, untracked.split(b"\0"))):
        digest.update(b"\0" + name + b"\0")
        with contextlib.suppress(OSError):
            digest.update(sha256_file(os.path.join(root, os.fsdecode(name))).encode())
    if not changes and not untracked.strip(b"\0"):
        return commit.decode().strip(), None
    return commit.decode().strip(), digest.hexdigest()[:12]
