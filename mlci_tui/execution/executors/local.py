"""Running a stage as a local subprocess tree.

The command gets its own session and process group, stdin from /dev/null and
two pipes. The pipes are read with non-blocking ``os.read`` in large chunks
from the event loop (no ``readline``: a line may be any length). A thread
waits for the process with ``wait4`` to get its exact CPU time and peak RSS.
When the command ends — or is stopped — everything still running in its
group or carrying its tag is stopped too: SIGTERM, the grace period, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from mlci_tui import procs

if TYPE_CHECKING:
    import psutil

    from mlci_tui.config import Config
from mlci_tui.events import CommandSampled
from mlci_tui.execution.executors.base import AttemptResult, AttemptSpec, StartedCallback
from mlci_tui.execution.output import OutputSink
from mlci_tui.states import Stream

READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20
GATHER_S = 0.001
GATHER_BELOW = 256 << 10
"""A read smaller than this right after another waits `GATHER_S` before the next."""
TICK_S = 0.25
SAMPLE_EVERY_TICKS = 4
DRAIN_TIMEOUT_S = 2.0
KILL_WAIT_S = 2.0
PEAK_MARGIN = 1 << 20
"""How far above the runner's own peak a waited peak must be to be the stage's."""
# ru_maxrss is in kilobytes on Linux, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux), so that
    `LocalExecutor.stop_orphans` finds what a command left; True if it worked."""
    return _set_subreaper(1)


def stop_being_subreaper() -> None:
    """Let orphaned descendants go to init again, as before `become_subreaper`."""
    _set_subreaper(0)


def is_subreaper() -> bool:
    """Whether orphaned descendants of this process become its children."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # imported when needed: it costs start-up time

    state = ctypes.c_int(0)
    return _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(state)) and bool(state.value)


def _set_subreaper(on: int) -> bool:
    return _prctl(_PR_SET_CHILD_SUBREAPER, on)


def _prctl(option: int, argument: object) -> bool:
    """``prctl(option, argument)`` on Linux; whether it worked."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, argument, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class LocalExecutor:
    """Runs attempts as subprocesses of this process."""

    def __init__(self, *, subreaper: bool = False) -> None:
        self.subreaper = subreaper
        """Whether orphans of stages are re-parented to us (see `become_subreaper`)."""
        self.commands: set[int] = set()
        """Pids of running stage commands: their own threads reap them, nobody else may."""

    def stop_orphans(self, grace: float) -> int:
        """Stop every orphan still re-parented to us: at the end of a run, what the
        run's commands left that no single one of them could be told to own."""
        if not self.subreaper or not self.reap_orphans():
            return 0
        return procs.kill_processes(procs.orphans(None, exclude=self.commands), (), grace)

    def reap_orphans(self) -> list[int]:
        """Collect orphans that died as our children (we are their subreaper); a zombie
        still counts as a member of its process group, so it would look like a survivor.
        Returns the orphans still alive."""
        alive: list[int] = []
        if not self.subreaper:
            return alive
        for pid in procs.child_pids():
            if pid in self.commands:
                continue
            try:
                reaped, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if reaped == 0:
                alive.append(pid)
        return alive

    async def run(
        self, spec: AttemptSpec, sink: OutputSink, started: StartedCallback
    ) -> AttemptResult:
        argv = ["/bin/sh", "-c", spec.command] if isinstance(spec.command, str) else spec.command
        if not spec.cwd.is_dir():
            return AttemptResult(None, error=f"the working directory {spec.cwd} does not exist")
        # What the child's wait4 peak cannot be below: however it is spawned (fork,
        # vfork, posix_spawn), it starts as a copy of this process, whose peak memory
        # the kernel counts as the child's until it execs (see `_Attempt.watch`).
        own_peak = peak_of(os.getpid()) or 0
        try:
            process = subprocess.Popen(
                argv,
                cwd=spec.cwd,
                env=dict(spec.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            return AttemptResult(None, error=f"cannot start {argv[0]!r}: {reason}")
        self.commands.add(process.pid)
        started(process.pid, process.pid)
        return await _Attempt(process, spec, sink, self, own_peak).watch()


class _Attempt:
    """One running command: its pipes, its exit, its samples and its stopping."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        spec: AttemptSpec,
        sink: OutputSink,
        executor: LocalExecutor,
        runner_peak: int,
    ) -> None:
        self.process = process
        self.runner_peak = runner_peak
        self.pid = process.pid
        self.spec = spec
        self.sink = sink
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[tuple[int, float, int]] = self.loop.create_future()
        self.drained = asyncio.Event()
        self.open_pipes: dict[int, Stream] = {}
        self._last_read: dict[int, float] = {}
        self.peak_rss = 0
        self.sampler = _TreeSampler(self.pid)
        self.cancelled = False
        self.hurried = False
        self.cpu_before_stop = 0.0
        """The CPU time of the tree as it was about to be stopped: a shell killed before
        it waited for its child reports none of the child's time."""

    async def watch(self) -> AttemptResult:
        self._start_reading()
        self._watch_exit()
        ticker = asyncio.ensure_future(self._tick())
        try:
            await asyncio.shield(self.exited)
        except asyncio.CancelledError:
            self.cancelled = True
        finally:
            ticker.cancel()
        # Whether the command ended or is being stopped, whatever it started goes
        # too, and the pipes are read to their end. This is never abandoned half-way.
        await self._stop(self.spec.kill_grace)
        status, cpu_seconds, maxrss = self.exited.result()
        cpu_seconds = max(cpu_seconds, self.cpu_before_stop)
        self.sink.cpu_seconds = cpu_seconds
        if self.cancelled:
            raise asyncio.CancelledError
        return AttemptResult(
            exit_code=os.waitstatus_to_exitcode(status),
            peak_rss_bytes=self._peak(maxrss * _MAXRSS_UNIT),
            cpu_seconds=cpu_seconds,
        )

    def _peak(self, waited: int) -> int | None:
        """The stage's own peak memory: the peak ``wait4`` reports when it is above the
        runner's (only then is it the stage's), else the peak the samples saw; None when
        the stage ended before the first sample and stayed below the runner."""
        own = waited if waited > self.runner_peak + PEAK_MARGIN else 0
        return max(self.peak_rss, own) or None

    async def _calmly(self, awaitable: Awaitable[object]) -> None:
        """Await while stopping: a cancellation arriving now (a second Ctrl-C, a
        timeout firing) only hurries the stop; it is raised once the stop is done."""
        try:
            await awaitable
        except asyncio.CancelledError:
            self.cancelled = True
            self.hurried = True

    def _watch_exit(self) -> None:
        """Learn of the command's exit without blocking: a pidfd the event loop
        watches (Linux), else a thread blocked in ``wait4``. Either way ``wait4``
        reaps it, which gives its exact CPU time and peak memory."""
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait, name=f"wait-{self.pid}", daemon=True).start()
            return

        def readable() -> None:
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            self._exited(self._reap(0))

        self.loop.add_reader(pidfd, readable)

    def _wait(self) -> None:
        result = self._reap(0)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self.loop.call_soon_threadsafe(self._exited, result)

    def _reap(self, flags: int) -> tuple[int, float, int]:
        try:
            _, status, usage = os.wait4(self.pid, flags)
            result = (status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
        except ChildProcessError:
            result = (0, 0.0, 0)
        # Popen must not reap this pid again later: it may belong to someone else by then.
        self.process.returncode = 0
        return result

    def _exited(self, result: tuple[int, float, int]) -> None:
        self.executor.commands.discard(self.pid)
        if not self.exited.done():
            self.exited.set_result(result)

    def _start_reading(self) -> None:
        for pipe, stream in (
            (self.process.stdout, Stream.STDOUT),
            (self.process.stderr, Stream.STDERR),
        ):
            assert pipe is not None
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            if hasattr(fcntl, "F_SETPIPE_SZ"):
                # Fewer, larger reads under floods of output; the default is 64 KiB.
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            self.open_pipes[fd] = stream
            self.loop.add_reader(fd, self._read, fd)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_pipe(fd)
            return
        self.sink.feed(self.open_pipes[fd], data)
        now = time.monotonic()
        if len(data) < GATHER_BELOW and now - self._last_read.get(fd, 0.0) < GATHER_S:
            # A flood in small writes: each read costs the same whatever its size, so
            # let the pipe gather a while (the stage goes on writing into it).
            self.loop.remove_reader(fd)
            self.loop.call_later(GATHER_S, self._resume, fd)
        self._last_read[fd] = now

    def _resume(self, fd: int) -> None:
        if fd in self.open_pipes:
            self.loop.add_reader(fd, self._read, fd)

    def _drain_now(self, fd: int) -> None:
        while fd in self.open_pipes:
            try:
                data = os.read(fd, READ_SIZE)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self.sink.feed(self.open_pipes[fd], data)

    def _close_pipe(self, fd: int) -> None:
        if self.open_pipes.pop(fd, None) is None:
            return
        self.loop.remove_reader(fd)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed and pipe.fileno() == fd:
                pipe.close()
        if not self.open_pipes:
            self.drained.set()

    async def _tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK_S)
            self.sink.flush_stale()
            if ticks == 0 or ticks % SAMPLE_EVERY_TICKS == 1:
                sample = self.sampler.sample()
                if sample is not None:
                    cpu, rss, peak = sample
                    self.peak_rss = max(self.peak_rss, peak)
                    # The first sample only starts the CPU measurement: shown from the next.
                    if ticks:
                        self.sink.emit(
                            CommandSampled(
                                self.sink.stage, cpu, rss, self.peak_rss, self.sink.clock()
                            )
                        )
            ticks += 1

    def _leftovers(self) -> list[psutil.Process]:
        """Processes of this attempt that left its group: its tree and tagged orphans."""
        # Once the command has exited its descendants are orphans: no tree to walk.
        found = [] if self.exited.done() else self.sampler.descendants()
        if self.executor.reap_orphans():
            # Alone, every orphan is this command's, whatever it did to its environment
            # (`env -i`, an unset tag); beside others, only those with its tag are.
            alone = self.executor.commands <= {self.pid}
            tags = None if alone else {self.spec.process_tag}
            found += procs.orphans(tags, exclude=self.executor.commands)
        return [p for p in found if _pgid(p) != self.pid]

    async def _stop(self, grace: float) -> None:
        """Stop the whole tree, wait for the pipes to end, and flush the last output."""
        leftovers = self._leftovers()
        if not self.exited.done():
            self.cpu_before_stop = self.sampler.cpu_seconds()
        if not self.exited.done() or procs.group_alive(self.pid) or leftovers:
            await self._terminate(leftovers, grace)
        if self.open_pipes and not self.hurried:
            with contextlib.suppress(asyncio.TimeoutError):
                await self._calmly(asyncio.wait_for(self.drained.wait(), DRAIN_TIMEOUT_S))
        for fd in list(self.open_pipes):
            # A process outside our reach may still hold the pipe: take what is in it
            # now, then stop listening.
            self._drain_now(fd)
            self._close_pipe(fd)
        self.sink.close()

    async def _terminate(self, leftovers: list[psutil.Process], grace: float) -> None:
        self._signal(leftovers, signal.SIGTERM)
        loop = self.loop
        deadline = loop.time() + grace
        while loop.time() < deadline and not (self.spec.hurry.is_set() or self.hurried):
            if self._finished(leftovers):
                break
            await self._calmly(asyncio.sleep(0.05))
        else:
            leftovers += self._leftovers()
            self._signal(leftovers, signal.SIGKILL)
            # SIGKILL cannot be refused, but dying takes a moment: wait for it, so that
            # when the stage is reported stopped, nothing of it runs any more.
            deadline = loop.time() + KILL_WAIT_S
            while loop.time() < deadline and not self._finished(leftovers):
                await self._calmly(asyncio.sleep(0.01))
        while not self.exited.done():
            await self._calmly(asyncio.shield(self.exited))
        procs.reap(leftovers)

    def _finished(self, leftovers: list[psutil.Process]) -> bool:
        self.executor.reap_orphans()
        return (
            self.exited.done()
            and not procs.group_alive(self.pid)
            and not any(procs.running(p) for p in leftovers)
        )

    def _signal(self, leftovers: list[psutil.Process], sig: int) -> None:
        procs.signal_group(self.pid, sig)
        for process in leftovers:
            with contextlib.suppress(Exception):  # gone already (psutil.Error)
                process.send_signal(sig)


class _TreeSampler:
    """CPU % and RSS of a process and its descendants; keeps `Process` objects
    between samples because `cpu_percent` measures since the previous call.

    psutil is imported on the first sample, so stages shorter than that cost
    nothing here.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.known: dict[int, psutil.Process] = {}
        self.started = False

    def _root(self) -> psutil.Process | None:
        import psutil

        if not self.started:
            self.started = True
            with contextlib.suppress(psutil.Error):
                self.known[self.pid] = psutil.Process(self.pid)
                # The first cpu_percent() only starts the measurement.
                self.known[self.pid].cpu_percent(None)
        return self.known.get(self.pid)

    def descendants(self) -> list[psutil.Process]:
        import psutil

        root = self._root()
        if root is None:
            return []
        try:
            return root.children(recursive=True)
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """The CPU time the process and its descendants alive now have spent, with
        what each has reaped of its own children's."""
        import psutil

        root = self._root()
        total = 0.0
        for process in [root, *self.descendants()] if root is not None else []:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    def sample(self) -> tuple[float, int, int] | None:
        """CPU % (since the last sample), RSS now, and the peak RSS of the processes
        alive now (each one's own high-water mark, so a spike between samples counts)."""
        import psutil

        root = self._root()
        if root is None:
            return None
        current = {self.pid: root}
        for child in self.descendants():
            current[child.pid] = self.known.get(child.pid, child)
        self.known = current
        cpu = 0.0
        rss = peak = 0
        for process in current.values():
            try:
                with process.oneshot():
                    cpu += process.cpu_percent(None)
                    now = process.memory_info().rss
            except psutil.Error:
                continue
            rss += now
            peak += max(now, peak_of(process.pid) or 0)
        return cpu, rss, peak


def peak_of(pid: int) -> int | None:
    """The peak RSS of process ``pid`` so far (``VmHWM``), in bytes; None where the
    system does not say (not Linux) or the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def create(config: Config) -> LocalExecutor:
    return LocalExecutor()
