"""How the dashboard lays itself out and says where the keys go: the versions'
trend (honest, in a named direction, absent before any version), the focused
pane told apart with and without colour, and a layout for each size from 60x15
to 200x50 in which the stages, the log and the versions stay readable."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from mlci_tui.states import VersionStatus
from mlci_tui.store.records import VersionRecord
from mlci_tui.tui.widgets.version_table import VersionPanel
from tests.helpers import settle, text_of

BARS = set("▁▂▃▄▅▆▇█")


def version(number: int, accuracy: float) -> VersionRecord:
    return VersionRecord(
        number=number,
        run_id=number,
        created_at=1_790_000_000.0 + number,
        artifact_name="model.json",
        source_path="build/model.json",
        is_dir=False,
        sha256="0" * 64,
        size_bytes=1,
        metrics={"accuracy": accuracy},
        status=VersionStatus.PREVIOUS,
    )


class OnePanel(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.panel = VersionPanel()

    def compose(self) -> ComposeResult:
        yield self.panel


def screen_lines(pilot: Pilot) -> list[str]:
    return [text_of(strip) for strip in pilot.app.screen._compositor.render_strips()]


async def trend_after(pilot: Pilot, accuracies: Sequence[float]) -> str:
    """The screen's line with the trend once versions v1… with ``accuracies`` (oldest
    first) are shown, newest first as the store gives them."""
    listed = [version(n, a) for n, a in enumerate(accuracies, 1)][::-1]
    pilot.app.panel.show(listed, ["accuracy"], len(listed), None)
    await settle(pilot)
    return next(line for line in screen_lines(pilot) if BARS & set(line))


async def test_the_versions_trend_is_flat_when_flat_oldest_first_and_absent_before_any() -> None:
    app = OnePanel()
    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot)
        assert not BARS & set("".join(screen_lines(pilot))), "bars before any version"
        app.panel.show([], ["accuracy"], 0, None)
        await settle(pilot)
        lines = screen_lines(pilot)
        assert not BARS & set("".join(lines))
        assert any("none yet" in line for line in lines)
        # The series: a thousandth apart is flat, not `██▁█`.
        line = await trend_after(pilot, [0.957, 0.957, 0.956, 0.957])
        assert "accuracy v1 ▄▄▄▄ v4" in line, line
        # A real climb climbs, from the oldest (named first) to the newest.
        line = await trend_after(pilot, [0.91, 0.93, 0.95])
        assert "accuracy v1 ▁▅█ v3 · 0.91–0.95" in line, line
