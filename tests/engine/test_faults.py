"""Faults inside a run: a store that cannot be written stops the run with the reason."""

from __future__ import annotations

import errno

from mlci_tui.events import CommandOutput, RunNoted
from mlci_tui.states import RunState, StageState
from tests.helpers import (
    PROGRAMS,
    PYTHON,
    Project,
    engine_for,
)


def test_a_failing_store_write_fails_the_run_with_the_reason(project: Project) -> None:
    """The same as a full disk, simulated: the recording subscriber raises ENOSPC."""
    import asyncio

    engine, events = engine_for(
        project, f'[stages.big]\ncommand = ["{PYTHON}", "{PROGRAMS}/lines.py", "50000"]\n'
    )
    written = [0]

    def recorder(event: object) -> None:
        if isinstance(event, CommandOutput):
            written[0] += event.data.count(b"\n") + 1
            if written[0] > 10_000:
                raise OSError(errno.ENOSPC, "No space left on device")

    # After the event list: a subscriber that raises does not stop the others.
    engine.subscribe(recorder)
    result = asyncio.run(engine.run())
    assert result.state is RunState.FAILED and result.exit_code == 1
    assert result.message == "cannot record the run: [Errno 28] No space left on device"
    assert result.stages["big"].state is StageState.CANCELLED
    assert any(isinstance(e, RunNoted) and "stopping the run" in e.text for e in events)
