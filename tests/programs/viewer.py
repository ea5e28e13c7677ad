"""A headless dashboard that watches until the newest run ends, then prints what
each stage pane shows as its last line, as JSON: `viewer.py CONFIG`."""

import asyncio
import json
import sys

from mlci_tui.config import load_config
from mlci_tui.states import RunState
from mlci_tui.tui.app import make_app


async def main() -> None:
    app = make_app(load_config(sys.argv[1]), poll_interval=0.2)
    async with app.run_test(headless=True, size=(100, 30)) as pilot:
        seen_running = False
        for _ in range(6000):
            run = app.snapshot.run
            if run is not None and run.state is RunState.RUNNING:
                seen_running = True
            if seen_running and run is not None and run.state is not RunState.RUNNING:
                break
            await pilot.pause(0.05)
        await pilot.pause(1.0)  # the last poll after the run ended
        last = {
            pane.stage_name: pane.last_lines[-1].content.decode() if pane.last_lines else None
            for pane in app.stages.panes()
        }
        print(json.dumps({"seen_running": seen_running, "last": last}))


asyncio.run(main())
