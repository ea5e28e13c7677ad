"""Recovery: settling everything a process that died left behind.

A runner killed outright (kill -9, a power loss) leaves its run ``running``,
stage processes of it alive, and Ray jobs of it on a cluster; a deploy or
rollback killed outright leaves its deployment ``running``, holding the
deploy lock, and its command's processes alive; an MLflow sync killed outright
leaves its sync ``running``; an experiment's worker killed outright leaves its
experiment ``running`` and its workspace. Every command that opens the store calls `recover`
first, so the next one to look sets all of it right: the run is marked
``interrupted``, its processes and jobs are stopped, the deployment is
completed (the pointer had moved) or marked interrupted, and the sync is
marked interrupted and alerted (`mirror.sync.recover_syncs`), and the
experiment ends as its run did (else ``interrupted``), its workspace removed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mlci_tui import procs
from mlci_tui.config import Config
from mlci_tui.errors import StoreError
from mlci_tui.states import (
    DeployKind,
    DeployOutcome,
    ExperimentState,
    RunState,
    StageState,
    VersionStatus,
)
from mlci_tui.store import Store
from mlci_tui.store.logs import LogWriter
from mlci_tui.store.paths import STAGING
from mlci_tui.store.records import RunRecord, StageRecord

JOB_STOP_TIMEOUT_S = 15.0
"""How long recovery waits for a job elsewhere to acknowledge its stop."""
LEFTOVER_GRACE_S = 2.0
"""SIGTERM to SIGKILL for the processes a dead runner or deployer left."""
GONE = "the runner stopped unexpectedly"


def _note(path: Path, text: str, time: float) -> None:
    try:
        log = LogWriter(path)
    except OSError:
        return  # no log to add to (its directory gone): the store says it anyway
    try:
        log.note(text, time)
    except OSError:
        pass  # a full disk: the store's message says it
    finally:
        log.close()


def recover(store: Store, config: Config) -> str | None:
    """Settle what dead runners and deployers left in ``store``.

    Returns why runs could not be marked (a full disk, a store locked past the
    busy timeout): the store can still be read, and the next command tries
    again. Deployments are settled only when one is left running.
    """
    problem = None
    try:
        recover_runs(store)
        if store.experiments.in_state(ExperimentState.RUNNING):
            recover_experiments(store, config)
        recover_registrations(store)
        if store.mirrored.running_syncs():
            # Only then: the mirror's module costs every command start-up time.
            from mlci_tui.mirror.sync import recover_syncs

            recover_syncs(store, config)
    except StoreError as error:
        problem = str(error)
    if store.deployments.running():
        recover_deployments(store, config)
    return problem


def runner_gone(run: RunRecord) -> bool:
    """Whether a run still marked running has lost its runner (on this host)."""
    return not run.state.finished and procs.ended_here(run.host, run.pid, run.pid_started)


def recover_runs(store: Store, *, grace: float = LEFTOVER_GRACE_S) -> list[int]:
    """Mark runs of this host whose runner is gone as ``interrupted``.

    Their leftover stage processes are stopped first, so nothing they started
    outlives them. Runs from other hosts sharing the store are left alone: a
    pid means nothing across machines. Returns the ids of the runs marked.
    """
    marked = []
    for run in store.runs.in_state(RunState.RUNNING):
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
                store.runs.update_stage(run.id, name, message=problem)
        store.runs.close_stages(run.id, StageState.CANCELLED, GONE, now)
        if store.runs.finish(
            run.id,
            RunState.INTERRUPTED,
            exit_code=None,
            ended_at=now,
            message=f"the runner (pid {run.pid}) stopped without finishing the run",
            only_if=RunState.RUNNING,
        ):
            marked.append(run.id)
            # Said where the stage's output ends too (`mlci logs`, the log pane): by
            # the one process that marked the run, so once.
            for stage in running:
                _note(store.log_path(run.id, stage.name), problems.get(stage.name) or GONE, now)
    return marked


def recover_experiments(store: Store, config: Config) -> list[int]:
    """Mark experiments whose worker is gone (on this host) as their run ended, else
    ``interrupted``, and remove their workspaces (unless kept). Runs first: the run
    of a worker killed outright is marked interrupted by `recover_runs`."""
    from mlci_tui.service import workspace
    from mlci_tui.store.cache_dir import CacheDir, FileHasher

    cache = CacheDir(config.pipeline.cache_dir, FileHasher(store.file_hashes))
    marked = []
    for experiment in store.experiments.in_state(ExperimentState.RUNNING):
        if not procs.ended_here(experiment.host, experiment.pid, experiment.pid_started):
            continue
        run = None if experiment.run_id is None else store.runs.get(experiment.run_id)
        state = ExperimentState.INTERRUPTED
        if run is not None and run.state.finished:
            state = ExperimentState.of_run(run.state)
        message = None
        if state is ExperimentState.INTERRUPTED:
            message = f"its worker (pid {experiment.pid}) stopped without finishing it"
        if store.experiments.finish(experiment.id, state, ended_at=time.time(), message=message):
            marked.append(experiment.id)
            if not experiment.keep:
                workspace.remove(workspace.experiment_dir(config.root, experiment.id), cache)
    return marked


def recover_registrations(store: Store) -> list[int]:
    """Finish or fail versions whose registering runner died between recording the
    version and moving its copy into place, and delete copies nobody will finish.
    Returns the numbers of the versions settled."""
    try:
        staged = [p for p in (store.state_dir / "versions").iterdir() if p.name.startswith(STAGING)]
    except OSError:
        staged = []
    dead = [p for p in staged if not _copier_alive(p)]
    if not dead:
        # A version is recorded only once its copy is made: without a copy nobody
        # finishes, no registration is half-done (every command passes here).
        return []
    settled = []
    for version in store.versions.registered():
        if store.version_dir(version.number).exists():
            continue
        run = store.runs.get(version.run_id) if version.run_id is not None else None
        if run is not None and not run.state.finished:
            continue  # still registering it, or recovery of its run comes first
        from mlci_tui.registry.artifacts import commit_copy, digest

        copy = next(
            (
                p
                for p in dead
                if (p / version.artifact_name).exists()
                and digest(p / version.artifact_name)[0] == version.sha256
            ),
            None,
        )
        if copy is not None:
            commit_copy(copy, store.version_dir(version.number))
            dead.remove(copy)
        else:
            store.versions.set_status(
                version.number,
                VersionStatus.FAILED,
                "its artifact never reached the store: the runner stopped while copying it",
            )
        settled.append(version.number)
    for copy in dead:
        shutil.rmtree(copy, ignore_errors=True)
    return settled


def _copier_alive(copy: Path) -> bool:
    """Whether the process that is making ``copy`` (``.staging-PID-HEX``) is alive."""
    pid = copy.name.removeprefix(STAGING).split("-", 1)[0]
    if not pid.isdigit():  # named before copies carried their process
        return time.time() - copy.stat().st_mtime < 24 * 3600
    return procs.is_alive(int(pid), None)


def recover_deployments(store: Store, config: Config, now: float | None = None) -> list[int]:
    """Settle deployments whose process died: completed if the pointer had moved,
    else interrupted — never left holding the lock. Their leftover processes are
    stopped. Returns the ids settled."""
    # Only when a deployment was left running: these cost every command start-up time.
    from mlci_tui.registry.audit import is_stale, succeeded_statuses
    from mlci_tui.registry.pointer import link_artifact, read_pointer

    now = time.time() if now is None else now
    settled = []
    pointer = read_pointer(store.state_dir)
    for deployment in store.deployments.running():
        if not is_stale(deployment, config, now):
            continue
        if deployment.process_tag:
            procs.kill_tagged({deployment.process_tag}, (), grace=LEFTOVER_GRACE_S)
        if pointer is not None and pointer.deployment_id == deployment.id:
            version = store.versions.get(deployment.to_version)
            live = (
                None
                if deployment.from_version is None
                else store.versions.get(deployment.from_version)
            )
            name = version.name if version else f"v{deployment.to_version}"
            store.deployments.finish(
                deployment.id,
                DeployOutcome.SUCCEEDED,
                ended_at=now,
                message="completed; recorded after the deploying process stopped",
                statuses=succeeded_statuses(deployment, name, live),
                # Whatever analysis was to follow never ran: owed, when there is one.
                owes_analysis=deployment.to_version
                if deployment.kind is DeployKind.DEPLOY and config.monitor is not None
                else None,
            )
            link_artifact(store.state_dir, Path(pointer.artifact))
        else:
            store.deployments.finish(
                deployment.id,
                DeployOutcome.INTERRUPTED,
                ended_at=now,
                message="the deploying process stopped before it finished;"
                " the live version did not change",
            )
        settled.append(deployment.id)
    return settled


def _stop_job(stage: StageRecord) -> str | None:
    """Stop the job a stage of a dead runner left running elsewhere (a Ray job)."""
    # Only for a dead run with such a job: the imports cost every command start-up time.
    from mlci_tui.events import ExternalJob
    from mlci_tui.execution.executors import stop_job

    assert stage.job_id is not None
    job = ExternalJob(stage.job_kind or "", stage.job_id, stage.job_address or "")
    problem = stop_job(job, JOB_STOP_TIMEOUT_S)
    if problem is None:
        return None
    return f"the runner stopped unexpectedly; its {job.kind} job {job.id} may still run: {problem}"


def _of_run(tags: set[str], run_id: int, state_dir: Path) -> Callable[[dict[str, str]], bool]:
    """Whether a process environment belongs to the run (see `execution.command.environment`)."""
    directory = str(state_dir.resolve())

    def belongs(env: dict[str, str]) -> bool:
        if env.get(procs.TAG_VARIABLE) in tags:
            return True
        return env.get("MLCI_RUN_ID") == str(run_id) and env.get("MLCI_STATE_DIR") == directory

    return belongs
