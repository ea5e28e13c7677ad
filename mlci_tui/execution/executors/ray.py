"""Running a stage as a Ray job, through Ray's Jobs API.

The stage's command becomes the job's entrypoint, submitted to the cluster at
``[executors.ray] address`` (else ``$RAY_ADDRESS``). Its output is streamed
back over the job's log websocket into the same `OutputSink` as a local
stage's, so masking, log files, ``::metric`` lines and gates work unchanged;
Ray merges stdout and stderr, so all of it arrives as stdout. The job's final
state decides the exit: ``SUCCEEDED`` is 0, ``FAILED`` is the driver's exit
code, a job that never started is an error.

Stopping (a cancel, a timeout, Ctrl-C) calls ``stop_job`` and waits until Ray
reports the job ended. A runner killed outright leaves the job's id in the
store, and recovery calls `stop_job` here.

Ray is imported on first use, in a thread: it takes a second or more, and
pipelines without Ray stages never pay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlci_tui.config import RAY_INSTALL, Config, RayConfig
from mlci_tui.events import ExternalJob
from mlci_tui.execution.executors.base import AttemptResult, AttemptSpec, StartedCallback
from mlci_tui.execution.output import OutputSink
from mlci_tui.states import Stream

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

KIND = "ray"
POLL_S = 0.5
"""How often the job's state is asked for when the log stream cannot tell."""
STOP_WAIT_S = 30.0
"""How long, beyond the grace period, a stopped job may take to end."""
UNREACHABLE_AFTER_S = 30.0
"""How long the cluster may not answer before the stage gives up on the job."""
LOG_CLOSE_WAIT_S = 10.0
"""How long the log stream may stay open after the job ended."""

_T = TypeVar("_T")

# Ray's job manager writes its own lines into the job's log before the command's
# output: "2026-11-26 10:00:00,123<TAB>INFO job_manager.py:581 -- Runtime env is
# setting up." then "Running entrypoint for job <id>: <command>".
_RAY_LINE = re.compile(
    rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\t[A-Z]+ \S+\.py:\d+ -- (.*)$", re.DOTALL
)
_ENTRYPOINT_LINE = "Running entrypoint for job "
LOOK_LIMIT = 1 << 20
"""Bytes of output in which Ray's entrypoint line is looked for, line by line."""


def cache_inputs(
    config: Config, env: Callable[[Mapping[str, str]], dict[str, str]]
) -> dict[str, object]:
    """What the job is given changes what it makes: its pip, working_dir, env."""
    ray = config.executors.ray
    if ray is None:
        return {}
    runtime = ray.runtime_env
    return {
        "ray_runtime_env": {
            "working_dir": runtime.working_dir,
            "pip": runtime.pip,
            "env_vars": env(runtime.env_vars),
        }
    }


def create(config: Config) -> RayExecutor:
    return RayExecutor(config.executors.ray or RayConfig(), config.pipeline.name)


class RayExecutor:
    """Runs attempts as Ray jobs on one cluster."""

    def __init__(self, settings: RayConfig, pipeline: str) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self._clients: dict[str, JobSubmissionClient] = {}

    def address(self, environ: Mapping[str, str]) -> str | None:
        """The cluster's address: the config's (``$VARIABLES`` expanded), else ``$RAY_ADDRESS``."""
        if self.settings.address:
            return _expand(self.settings.address, environ) or None
        return environ.get("RAY_ADDRESS") or None

    async def run(
        self, spec: AttemptSpec, sink: OutputSink, started: StartedCallback
    ) -> AttemptResult:
        address = self.address(spec.env)
        if address is None:
            return AttemptResult(
                None,
                error="no Ray cluster to run on: set address in [executors.ray] or $RAY_ADDRESS",
            )
        try:
            client = await _calm(self._client(address))
        except ImportError:
            return AttemptResult(None, error=f"Ray is not installed ({RAY_INSTALL})")
        except Exception as error:  # Ray raises plain exceptions for all of these
            return AttemptResult(
                None, error=f"cannot reach the Ray cluster at {address}: {_one_line(error)}"
            )
        job = ExternalJob(KIND, _submission_id(spec), address)
        submitting = asyncio.ensure_future(
            asyncio.to_thread(client.submit_job, **self._submission(spec, job))
        )
        try:
            await asyncio.shield(submitting)
        except asyncio.CancelledError:
            # The request may reach Ray whatever happens here: wait for the answer,
            # and stop the job if there is one.
            with contextlib.suppress(Exception):
                await _calm(submitting)
                await _calm(asyncio.to_thread(client.stop_job, job.id))
            raise
        except Exception as error:
            return AttemptResult(None, error=f"Ray refused the job: {_one_line(error)}")
        started(None, None, job)
        return await _Job(client, job, spec, sink).watch()

    async def _client(self, address: str) -> JobSubmissionClient:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = await asyncio.to_thread(_connect, address)
        return client

    def _submission(self, spec: AttemptSpec, job: ExternalJob) -> dict[str, Any]:
        settings = self.settings
        runtime_env = settings.runtime_env.for_ray()
        # The config's environment and mlci's variables travel with the job; the
        # runner's own environment (its PATH, its HOME) means nothing on a cluster.
        runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **spec.own_env}
        metadata = {
            **settings.metadata,
            "mlci_pipeline": self.pipeline,
            "mlci_stage": spec.stage,
            "mlci_attempt": spec.own_env.get("MLCI_ATTEMPT", "1"),
        }
        if "MLCI_RUN_ID" in spec.own_env:
            metadata["mlci_run_id"] = spec.own_env["MLCI_RUN_ID"]
        submission: dict[str, Any] = {
            "entrypoint": _entrypoint(spec, runtime_env.get("working_dir")),
            "submission_id": job.id,
            "runtime_env": runtime_env,
            "metadata": metadata,
        }
        for key in ("entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory"):
            value = getattr(settings, key)
            if value is not None:
                submission[key] = value
        return submission


class _Job:
    """One submitted job: its log stream, its end, and its stopping."""

    def __init__(
        self, client: JobSubmissionClient, job: ExternalJob, spec: AttemptSpec, sink: OutputSink
    ) -> None:
        self.client = client
        self.job = job
        self.spec = spec
        self.sink = sink
        self.received = 0
        """Characters of the job's log passed on so far."""
        self.pending = b""
        self.looking = True
        """Whether Ray's line announcing the entrypoint is still to come."""
        self.looked = 0
        self.output_began = False
        self.entrypoint_marker = f"{_ENTRYPOINT_LINE}{job.id}: ".encode()
        self.stream_error: str | None = None

    async def watch(self) -> AttemptResult:
        tail = asyncio.ensure_future(self._tail())
        cancelled = False
        try:
            await asyncio.shield(tail)
        except asyncio.CancelledError:
            cancelled = True
        if cancelled:
            hurried = await self._stop()
            await self._finish_tail(tail, 0.5 if hurried else LOG_CLOSE_WAIT_S)
            self._close()
            raise asyncio.CancelledError
        try:
            info = await _calm(self._ended())
        except asyncio.CancelledError:
            await self._stop()
            self._close()
            raise
        except _Unreachable as error:
            self.sink.note(str(error))
            self._close()
            return AttemptResult(None, error=str(error))
        if self.stream_error is not None:
            await self._catch_up()
        self._close()
        return _result(info)

    async def _tail(self) -> None:
        """Pass the job's log on as it arrives; returns when Ray closes the stream,
        which it does once the job has ended."""
        try:
            async for chunk in self.client.tail_job_logs(self.job.id):
                self.received += len(chunk)
                self._feed(chunk.encode("utf-8", "surrogateescape"))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # aiohttp and Ray raise a variety here
            self.stream_error = _one_line(error)

    async def _finish_tail(self, tail: asyncio.Future[None], wait: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(tail), wait)
        tail.cancel()
        with contextlib.suppress(BaseException):
            await tail

    async def _ended(self) -> Any:
        """The job's final details, asking until Ray has them."""
        unanswered_since: float | None = None
        while True:
            try:
                info = await asyncio.to_thread(self.client.get_job_info, self.job.id)
            except Exception as error:
                now = time.monotonic()
                unanswered_since = unanswered_since or now
                if now - unanswered_since > UNREACHABLE_AFTER_S:
                    raise _Unreachable(
                        f"lost contact with the Ray cluster at {self.job.address}"
                        f" ({_one_line(error)}); job {self.job.id} may still run"
                    ) from None
            else:
                unanswered_since = None
                if _terminal(info.status):
                    return info
            await asyncio.sleep(POLL_S)

    async def _stop(self) -> bool:
        """Ask Ray to stop the job and wait until it has ended; returns whether the
        wait was cut short (a second Ctrl-C)."""
        self.sink.note(f"stopping Ray job {self.job.id}")
        hurried = False
        try:
            await _calm(asyncio.to_thread(self.client.stop_job, self.job.id))
        except asyncio.CancelledError:
            hurried = True
        except Exception as error:
            self.sink.note(f"could not stop Ray job {self.job.id}: {_one_line(error)}")
            return False
        deadline = time.monotonic() + self.spec.kill_grace + STOP_WAIT_S
        while time.monotonic() < deadline and not hurried:
            try:
                status = await _calm(asyncio.to_thread(self.client.get_job_status, self.job.id))
            except asyncio.CancelledError:
                hurried = True
                break
            except Exception:
                status = None
            if status is not None and _terminal(status):
                self.sink.note(f"Ray job {self.job.id} ended {status.value}")
                return False
            try:
                await asyncio.sleep(POLL_S)
            except asyncio.CancelledError:
                hurried = True
            hurried = hurried or self.spec.hurry.is_set()
        self.sink.note(f"Ray job {self.job.id} was asked to stop and has not ended yet")
        return hurried

    async def _catch_up(self) -> None:
        """After the log stream broke: fetch the whole log and pass on what is missing."""
        self.sink.note(f"the Ray log stream broke ({self.stream_error}); fetching the rest")
        try:
            text = await asyncio.to_thread(self.client.get_job_logs, self.job.id)
        except Exception as error:
            self.sink.note(f"could not fetch the rest of the log: {_one_line(error)}")
            return
        self._feed(text[self.received :].encode("utf-8", "surrogateescape"))

    def _feed(self, data: bytes) -> None:
        """Pass output on. Ray's own lines about the job become notes: its job
        manager's before the command's output, and the line announcing the
        entrypoint, which may come after the command's first lines."""
        if self.looking:
            data = self.pending + data
            self.pending = b""
            output: list[bytes] = []
            while self.looking:
                end = data.find(b"\n")
                if end < 0:
                    self.pending, data = data, b""
                    break
                line, data = data[:end], data[end + 1 :]
                self.looked += end + 1
                if self.looked > LOOK_LIMIT:
                    self.looking = False
                note = self._ray_note(line)
                if note is None:
                    self.output_began = True
                    output.append(line + b"\n")
                    continue
                if output:
                    self.sink.feed(Stream.STDOUT, b"".join(output))
                    output.clear()
                self.sink.note(note)
            if output:
                self.sink.feed(Stream.STDOUT, b"".join(output))
        if data:
            self.sink.feed(Stream.STDOUT, data)

    def _ray_note(self, line: bytes) -> str | None:
        """The note for one of Ray's lines, or None for the command's own output."""
        if line.startswith(self.entrypoint_marker):
            self.looking = False
            return f"running as Ray job {self.job.id} on {self.job.address}"
        if self.output_began:
            return None
        match = _RAY_LINE.match(line)
        return None if match is None else "ray: " + match.group(1).decode("utf-8", "replace")

    def _close(self) -> None:
        if self.pending:
            self.sink.feed(Stream.STDOUT, self.pending)
            self.pending = b""
        self.sink.close()


class _Unreachable(Exception):
    pass


def _result(info: Any) -> AttemptResult:
    status = info.status.value
    if status == "SUCCEEDED":
        return AttemptResult(0)
    code = getattr(info, "driver_exit_code", None)
    if status == "FAILED" and code is not None:
        return AttemptResult(int(code))
    reason = _one_line(info.message) if info.message else "no reason given"
    if status == "STOPPED":
        return AttemptResult(None, error=f"the Ray job was stopped outside mlci ({reason})")
    return AttemptResult(None, error=f"the Ray job failed: {reason}")


def _terminal(status: Any) -> bool:
    return str(getattr(status, "value", status)) in ("SUCCEEDED", "FAILED", "STOPPED")


def _connect(address: str) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    # Ray logs to the runner's stderr (every websocket it closes, for one);
    # what matters of it reaches the stage's log as notes.
    # Its loggers carry their own levels, so the shared handler is the place to quiet.
    for handler in logging.getLogger("ray").handlers:
        handler.setLevel(logging.ERROR)
    return JobSubmissionClient(address)


def stop_job(job: ExternalJob, timeout: float) -> str | None:
    """Stop a job a dead runner left, waiting up to ``timeout`` seconds for it to end.
    Returns why it could not be stopped, or None."""
    try:
        client = _connect(job.address)
        client.stop_job(job.id)
    except ImportError:
        return f"Ray is not installed ({RAY_INSTALL})"
    except Exception as error:
        return _one_line(error)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if _terminal(client.get_job_status(job.id)):
                return None
        time.sleep(POLL_S)
    return f"asked to stop, still running after {timeout:.0f}s"


def _entrypoint(spec: AttemptSpec, working_dir: str | None) -> str:
    command = spec.command if isinstance(spec.command, str) else shlex.join(spec.command)
    if working_dir is None:
        # Without a working_dir Ray starts the command in a directory of its own;
        # a head on this machine can run it where a local stage would.
        return f"cd {shlex.quote(str(spec.cwd))} && {command}"
    root = Path(working_dir).resolve()
    cwd = spec.cwd.resolve()
    if cwd != root and cwd.is_relative_to(root):
        return f"cd {shlex.quote(str(cwd.relative_to(root)))} && {command}"
    return command


def _submission_id(spec: AttemptSpec) -> str:
    """Unique, and readable in Ray's dashboard: mlci-<run>-<stage>-<attempt>-<tag>."""
    run = spec.own_env.get("MLCI_RUN_ID", "0")
    attempt = spec.own_env.get("MLCI_ATTEMPT", "1")
    stage = re.sub(r"[^A-Za-z0-9_-]", "_", spec.stage)
    return f"mlci-{run}-{stage}-{attempt}-{spec.process_tag[:8]}"


def _expand(text: str, environ: Mapping[str, str]) -> str:
    def variable(match: re.Match[str]) -> str:
        return environ.get(match.group(1) or match.group(2), "")

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", variable, text)


def _one_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    first = text.splitlines()[0].strip()
    return first if len(first) <= 300 else first[:299] + "…"


async def _calm(awaitable: Awaitable[_T]) -> _T:
    """Await a thread's work; if cancelled meanwhile, still wait for the work to end
    (a request half-made would be lost), then raise the cancellation."""
    future = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise
