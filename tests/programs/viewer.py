"""A headless dashboard that watches the newest run until it ends, then prints what
each stage pane shows as its last line, as JSON: `viewer.py CONFIG`. It prints
``ready`` first, once it has read the store and drawn it; it fails if it never
sees the run running."""

import asyncio
import json
import sys

from mlci_tui.config import load_config
from mlci_tui.states import RunState
from mlci_tui.tui.app import make_app
from tests.helpers import run_state, shown, until


async def main() -> None:
    app = make_app(load_config(sys.argv[1]), poll_interval=0.2)
    async with app.run_test(headless=True, size=(100, 30)) as pilot:
        await shown(pilot)
        print("ready", flush=True)
        await until(pilot, lambda: run_state(app) is RunState.RUNNING, 300, "the run to start")
        # The read that shows the run ended reads every stage's log again, after the
        # stages wrote their last lines: no later read is needed.
        await shown(pilot, lambda: run_state(app) not in (None, RunState.RUNNING), 600, "its end")
        last = {
            pane.stage_name: pane.last_lines[-1].content.decode() if pane.last_lines else None
            for pane in app.stages.panes()
        }
        print(json.dumps(last))


asyncio.run(main())
