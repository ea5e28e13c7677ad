"""The floor under the dashboard's first frame: a Textual app of one line of text.

    python -m benchmarks.hello

Measured as the dashboard is (`benchmarks.probe frame`): Textual's headless
driver at 100x30, a line on stdout the moment the first frame is painted. It
imports nothing of mlci's.
"""

from __future__ import annotations

import asyncio
import json

from textual.app import App, ComposeResult
from textual.widgets import Static


class Hello(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello")


async def main() -> None:
    async with Hello().run_test(headless=True, size=(100, 30)) as pilot:
        await pilot.pause()
        print(json.dumps({"first_frame": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    print(json.dumps({}), flush=True)
