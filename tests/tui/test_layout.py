"""How the dashboard lays itself out and says where the keys go: the versions'
trend (honest, in a named direction, absent before any version), the focused
pane told apart with and without colour, and a layout for each size from 60x15
to 200x50 in which the stages, the log and the versions stay readable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget

from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import VersionStatus
from mlci_tui.store.records import VersionRecord
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.widgets.version_table import VersionPanel
from tests.helpers import settle, text_of, until
from tests.tui.test_snapshots import EVERY_SIZE, demo_like_store, loaded

BARS = set("▁▂▃▄▅▆▇█")

ACCURACY = MetricKey("evaluate", "accuracy")


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
        metrics={ACCURACY: accuracy},
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
    pilot.app.panel.show(listed, [ACCURACY], len(listed), None)
    await settle(pilot)
    return next(line for line in screen_lines(pilot) if BARS & set(line))


async def test_the_versions_trend_is_flat_when_flat_oldest_first_and_absent_before_any() -> None:
    app = OnePanel()
    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot)
        assert not BARS & set("".join(screen_lines(pilot))), "bars before any version"
        app.panel.show([], [ACCURACY], 0, None)
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


# Which pane the keys act on, with and without colour. -------------------------------


def corner(pilot: Pilot, widget: Widget) -> str:
    """The top-left corner of ``widget``'s border, as drawn."""
    return screen_lines(pilot)[widget.region.y][widget.region.x]


def title_reversed(pilot: Pilot, widget: Widget, title: str) -> bool:
    strip = pilot.app.screen._compositor.render_strips()[widget.region.y]
    return any(title in segment.text and segment.style.reverse for segment in strip)


@pytest.mark.parametrize("colour", [True, False], ids=["colour", "no_color"])
async def test_the_focused_pane_has_a_heavy_border_and_a_reversed_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, colour: bool
) -> None:
    if not colour:
        monkeypatch.setenv("NO_COLOR", "1")
    app = demo_like_store(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        panes = {
            "stages": app.query_one("#stages-box"),
            "log": app.log_view,
            "model versions": app.version_panel,
        }

        async def focused(name: str) -> None:
            await settle(pilot)
            for title, pane in panes.items():
                heavy = title == name
                assert corner(pilot, pane) == ("┏" if heavy else "╭"), (name, title)
                assert title_reversed(pilot, pane, title) == heavy, (name, title)

        await focused("stages")
        await pilot.press("tab")
        await focused("log")
        await pilot.press("v")
        await focused("model versions")
        # A search (`/` on the log) leaves the keys on the log: the log says so.
        await pilot.press("escape", "shift+tab", "slash", *"step 3", "enter")
        await until(pilot, lambda: app.screen is app.screen_stack[0])
        await focused("log")


# A layout for each size. ------------------------------------------------------------


@pytest.mark.parametrize("size", EVERY_SIZE, ids=[f"{w}x{h}" for w, h in EVERY_SIZE])
async def test_at_each_size_every_stage_the_log_the_header_and_the_versions_show(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    width, height = size
    app = demo_like_store(tmp_path)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        await pilot.press("f")  # the header's longest state: follow off
        await settle(pilot)
        lines = screen_lines(pilot)
        assert lines[0].rstrip().endswith("live v1 · follow off (f)"), lines[0]
        box = app.query_one("#stages-box").region
        stages = "\n".join(line[box.x : box.right] for line in lines[box.y : box.bottom])
        for name in ("test", "prepare", "train", "evaluate", "deploy", "monitor"):
            assert f" {name} " in stages, (name, stages)
        assert app.log_view.size.height >= 5 and app.log_view.size.width >= 30
        # Its last line in view, above the sideways scrollbar a narrow log has.
        log = app.log_view.region
        assert any("step 29/30" in line[log.x : log.right] for line in lines[log.y : log.bottom])
        versions = app.version_panel.region
        shown = "\n".join(lines[versions.y : versions.bottom])
        why = "auto-rolled back: accuracy 0.5675 < 0.85"
        if height < 20:
            # Folded to its trend line, until it is focused.
            assert versions.height == 1 and "3 versions · accuracy v1" in shown, shown
            await pilot.press("v")
            await settle(pilot)
            lines = screen_lines(pilot)
            versions = app.version_panel.region
            shown = "\n".join(lines[versions.y : versions.bottom])
            assert all(f" v{n} " in shown for n in (1, 2, 3)), shown
        # The why of each version, whole where the width allows: never scrolled away.
        assert "DESCRIPTION" in shown and "auto-rolled" in shown, shown
        if width >= 100:
            assert why in shown, shown
        assert app.version_panel.table.max_scroll_x == 0


@pytest.mark.parametrize("size", EVERY_SIZE, ids=[f"{w}x{h}" for w, h in EVERY_SIZE])
async def test_at_each_size_the_rollback_confirmation_keeps_its_question_and_keys_in_sight(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """What does not fit between them (on a short screen: the hash, the age) is a
    scroll away, never cut off with the keys."""
    app = demo_like_store(tmp_path)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        await pilot.press("v")
        await until(pilot, lambda: app.version_panel.table.selected_version is not None)
        for _ in range(3):
            if app.version_panel.table.selected_version.name == "v2":
                break
            await pilot.press("up")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await settle(pilot)
        text = "\n".join(screen_lines(pilot))
        assert "Roll production back to v2?" in text, text
        assert "y / Enter: roll back to v2 · n / Esc: cancel" in text, text
        await pilot.press("end")
        await settle(pilot)
        text = "\n".join(screen_lines(pilot))
        assert "Roll production back to v2?" in text, text
        assert "y / Enter: roll back to v2 · n / Esc: cancel" in text, text
        for row in (" sha256 ", " age ", " commit "):
            assert row in text, (row, text)
        # Scrolled to its end, the columns still say which side is which, over the
        # rows they head.
        lines = screen_lines(pilot)
        heads = [line for line in lines if "now: v" in line and "after: v2" in line]
        assert len(heads) == 1, text
        sha = next(line for line in lines if " sha256 " in line)
        for head in ("now: v", "after: v2"):
            assert sha[heads[0].index(head)] != " ", (head, text)
