"""Finding runs whose runner died, and cleaning up after them."""

from __future__ import annotations

import socket
import time

from mlci_tui import procs
from mlci_tui.states import RunState, StageState
from mlci_tui.store.db import Store


def recover_interrupted(store: Store, *, grace: float = 2.0) -> list[int]:
    """Mark runs of this host whose runner is gone as ``interrupted``.

    Their leftover stage processes are stopped first, so nothing they started
    outlives them. Runs from other hosts sharing the store are left alone: a
    pid means nothing across machines. Returns the ids of the runs marked.
    """
    host = socket.gethostname()
    marked = []
    for run in store.runs_in_state(RunState.RUNNING):
        if run.host != host or (run.pid and procs.is_alive(run.pid, run.pid_started)):
            continue
        running = [stage for stage in run.stages if stage.state is StageState.RUNNING]
        tags = {stage.process_tag for stage in running if stage.process_tag}
        pgids = {stage.pgid for stage in running if stage.pgid}
        procs.kill_tagged(tags, pgids, grace)
        now = time.time()
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
