"""Finding and stopping the processes a stage started, wherever they went.

Each stage attempt runs in its own session and process group, with a unique
``MLCI_PROCESS_TAG`` in its environment. A process that stays in the group is
reached by `os.killpg`; one that left it (``setsid``, a daemon) still carries
the tag, and on Linux the runner is a child subreaper, so such orphans become
its children instead of init's and are cheap to find.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Collection

import psutil

TAG_VARIABLE = "MLCI_PROCESS_TAG"
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); True if it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def process_started(pid: int) -> float | None:
    """The start time of ``pid`` as psutil reports it, or None if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (not a reuse)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 0.01
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def has_tag(process: psutil.Process, tags: Collection[str]) -> bool:
    try:
        return process.environ().get(TAG_VARIABLE) in tags
    except (psutil.Error, OSError):
        return False


def tagged(
    tags: Collection[str], candidates: list[psutil.Process] | None = None
) -> list[psutil.Process]:
    """Live processes carrying one of ``tags``, among ``candidates`` (default: all)."""
    if candidates is None:
        candidates = list(psutil.process_iter())
    own = os.getpid()
    return [p for p in candidates if p.pid != own and _running(p) and has_tag(p, tags)]


def child_pids() -> list[int]:
    """Pids of this process's children; cheap on Linux, where the kernel lists them."""
    try:
        pids = []
        for task in os.scandir("/proc/self/task"):
            with open(f"{task.path}/children") as file:
                pids.extend(int(pid) for pid in file.read().split())
        return pids
    except OSError:  # not Linux, or a kernel without CONFIG_PROC_CHILDREN
        return [child.pid for child in psutil.Process().children()]


def orphans(tags: Collection[str], exclude: Collection[int] = ()) -> list[psutil.Process]:
    """Tagged processes re-parented to this (subreaper) process, with their descendants;
    ``exclude`` names children that are not orphans (a stage's own command)."""
    found: list[psutil.Process] = []
    candidates = []
    for pid in child_pids():
        if pid not in exclude:
            with contextlib.suppress(psutil.Error):
                candidates.append(psutil.Process(pid))
    for child in tagged(tags, candidates):
        found.append(child)
        with contextlib.suppress(psutil.Error):
            found.extend(child.children(recursive=True))
    return found


def reap(processes: list[psutil.Process]) -> None:
    """Collect the exit status of any of ``processes`` that are our zombie children."""
    for process in processes:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(process.pid, os.WNOHANG)


def kill_tagged(tags: Collection[str], pgids: Collection[int], grace: float) -> int:
    """Stop every process carrying one of ``tags``, and the groups among ``pgids`` that
    such a process is in: SIGTERM, up to ``grace`` seconds, then SIGKILL.

    A recorded group id is only signalled when a tagged process proves the group
    is still the stage's, never a later group that reuses the number. Blocking;
    for recovery, not for the event loop. Returns how many processes were found.
    """
    processes = tagged(tags) if tags else []
    groups = set()
    for process in processes:
        with contextlib.suppress(OSError):
            if os.getpgid(process.pid) in pgids:
                groups.add(os.getpgid(process.pid))
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    deadline = time.monotonic() + grace
    while any(_running(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    reap(processes)
    return len(processes)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
