"""Finding runs whose runner died, and cleaning up after them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from mlci_tui import procs
from mlci_tui.states import RunState, StageState
from mlci_tui.store.db import Store
from mlci_tui.store.records import RunRecord, StageRecord

JOB_STOP_TIMEOUT_S = 15.0
"""How long recovery waits for a job elsewhere to acknowledge its stop."""


def runner_gone(run: RunRecord) -> bool:
    """Whether a run still marked running has lost its runner (on this host)."""
    if run.state.finished or run.host != socket.gethostname() or run.pid is None:
        return False
    return not procs.is_alive(run.pid, run.pid_started)


def recover_interrupted(store: Store, *, grace: float = 2.0) -> list[int]:
    """Mark runs of this host whose runner is gone as ``interrupted``.

    Their leftover stage processes are stopped first, so nothing they started
    outlives them. Runs from other hosts sharing the store are left alone: a
    pid means nothing across machines. Returns the ids of the runs marked.
    """
    marked = []
    for run in store.runs_in_state(RunState.RUNNING):
        if not runner_gone(run):  # which also leaves other hosts' runs alone
            continue
        running = [stage for stage in run.stages if stage.state is StageState.RUNNING]
        # Jobs elsewhere first: stopped through their system they end as "stopped";
        # a head on this machine would otherwise see its job's process killed below.
        problems = {stage.name: _stop_job(stage) for stage in running if stage.job_id}
        tags = {stage.process_tag for stage in running if stage.process_tag}
        pgids = {stage.pgid for stage in running if stage.pgid}
        # By environment, not only by the recorded tags: a stage may have started
        # in the instant before the runner died, before its tag reached the store.
        leftovers = procs.matching(_of_run(tags, run.id, store.state_dir))
        procs.kill_processes(leftovers, pgids, grace)
        now = time.time()
        for name, problem in problems.items():
            if problem is not None:
                store.update_stage(run.id, name, message=problem)
        store.close_stages(run.id, StageState.CANCELLED, "the runner stopped unexpectedly", now)
        if store.finish_run(
            run.id,
            RunState.INTERRUPTED,
            exit_code=None,
            ended_at=now,
            message=f"the runner (pid {run.pid}) stopped without finishing the run",
            only_if=RunState.RUNNING,
        ):
            marked.append(run.id)
    return marked


def _stop_job(stage: StageRecord) -> str | None:
    """Stop the job a stage of a dead runner left running elsewhere (a Ray job)."""
    from mlci_tui.pipeline.events import ExternalJob
    from mlci_tui.pipeline.executors import stop_job

    assert stage.job_id is not None
    job = ExternalJob(stage.job_kind or "", stage.job_id, stage.job_address or "")
    problem = stop_job(job, JOB_STOP_TIMEOUT_S)
    if problem is None:
        return None
    return f"the runner stopped unexpectedly; its {job.kind} job {job.id} may still run: {problem}"


def _of_run(tags: set[str], run_id: int, state_dir: Path) -> Callable[[dict[str, str]], bool]:
    """Whether a process environment belongs to the run (see `Engine._environment`)."""
    directory = str(state_dir.resolve())

    def belongs(env: dict[str, str]) -> bool:
        if env.get(procs.TAG_VARIABLE) in tags:
            return True
        return env.get("MLCI_RUN_ID") == str(run_id) and env.get("MLCI_STATE_DIR") == directory

    return belongs
