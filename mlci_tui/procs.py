"""Finding and stopping the processes a stage started, wherever they went.

Each stage attempt runs in its own session and process group, with a unique
``MLCI_PROCESS_TAG`` in its environment. A process that stays in the group is
reached by `os.killpg`; one that left it (``setsid``, a daemon) still carries
the tag, and on Linux the runner is a child subreaper, so such orphans become
its children instead of init's and are cheap to find.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

TAG_VARIABLE = "MLCI_PROCESS_TAG"


def new_tag() -> str:
    """A fresh value for `TAG_VARIABLE`: 32 random hex digits."""
    return os.urandom(16).hex()


def process_started(pid: int) -> float | None:
    """When ``pid`` started, to tell it from a later process that reuses the number.

    On Linux this is seconds since boot, from the kernel's start ticks: unlike a
    wall-clock start time it does not move when the system clock is stepped.
    """
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as file:
                fields = file.read().rsplit(b")", 1)[1].split()
            return int(fields[19]) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None
    import psutil  # imported when needed: it costs start-up time

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (not a reuse)."""
    import psutil  # imported when needed: it costs start-up time

    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    if started is None:
        return True
    now = process_started(pid)
    return now is None or abs(now - started) < 0.05


def ended_here(host: str | None, pid: int | None, started: float | None) -> bool:
    """Whether the process ``pid`` that ``host`` recorded is known to have ended.

    Only a process of this host can be checked: one of another host sharing
    the store, or one without a pid, is never taken for dead.
    """
    import socket  # imported when needed: only recovery and cancelling ask

    if pid is None or host != socket.gethostname():
        return False
    return not is_alive(pid, started)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether a process group has a member that is not a zombie. A zombie whose
    parent does not reap it (a container's init may not) still counts as a member
    for `os.killpg`, but it runs nothing."""
    if not group_exists(pgid):
        return False
    import psutil  # imported when needed: it costs start-up time

    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def tagged(
    tags: Collection[str], candidates: list[psutil.Process] | None = None
) -> list[psutil.Process]:
    """Live processes carrying one of ``tags``, among ``candidates`` (default: all)."""
    return matching(lambda env: env.get(TAG_VARIABLE) in tags, candidates)


def matching(
    wanted: Callable[[dict[str, str]], bool], candidates: list[psutil.Process] | None = None
) -> list[psutil.Process]:
    """Live processes whose environment satisfies ``wanted``, among ``candidates``."""
    import psutil  # imported when needed: it costs start-up time

    if candidates is None:
        candidates = list(psutil.process_iter())
    own = os.getpid()
    found = []
    for process in candidates:
        if process.pid == own or not running(process):
            continue
        try:
            environment = process.environ()
        except (psutil.Error, OSError):
            continue
        if wanted(environment):
            found.append(process)
    return found


def child_pids() -> list[int]:
    """Pids of this process's children; cheap on Linux, where the kernel lists them.

    Only the main thread's list is read: stage commands are started from it, and
    the kernel gives orphans to a subreaper's main thread.
    """
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as file:
            return [int(pid) for pid in file.read().split()]
    except OSError:  # not Linux, or a kernel without CONFIG_PROC_CHILDREN
        import psutil

        return [child.pid for child in psutil.Process().children()]


def orphans(tags: Collection[str] | None, exclude: Collection[int] = ()) -> list[psutil.Process]:
    """Tagged processes re-parented to this (subreaper) process — every one, tag or
    not, with ``tags`` None — with their descendants; ``exclude`` names children that
    are not orphans (a stage's own command)."""
    pids = [pid for pid in child_pids() if pid not in exclude]
    if not pids:
        return []
    import psutil  # imported when needed: it costs start-up time

    found: list[psutil.Process] = []
    candidates = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            candidates.append(psutil.Process(pid))
    for child in candidates if tags is None else tagged(tags, candidates):
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
    """Stop every process carrying one of ``tags``; see `kill_processes`."""
    return kill_processes(tagged(tags) if tags else [], pgids, grace)


def kill_processes(processes: list[psutil.Process], pgids: Collection[int], grace: float) -> int:
    """Stop ``processes``, and the groups among ``pgids`` that one of them is in:
    SIGTERM, up to ``grace`` seconds, then SIGKILL.

    A recorded group id is only signalled when one of the processes proves the
    group is still the stage's, never a later group that reuses the number.
    Blocking; for recovery, not for the event loop. Returns how many there were.
    """
    import psutil  # imported when needed: it costs start-up time

    groups = set()
    for process in processes:
        with contextlib.suppress(OSError):
            pgid = os.getpgid(process.pid)
            if pgid in pgids:
                groups.add(pgid)
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    deadline = time.monotonic() + grace
    while any(running(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    reap(processes)
    return len(processes)


def running(process: psutil.Process) -> bool:
    """Whether ``process`` still runs: neither gone nor a zombie."""
    import psutil  # imported when needed: it costs start-up time

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def describe_exit(code: int | None) -> str:
    """``exit code 3``, ``killed by SIGKILL``, for an exit status (negative: a signal)."""
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
