"""The log view on its own, over real log files: where it opens, how its keys move
it, search over the whole log, lines redrawn with ``\\r``, zoom and wrap."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from mlci_tui.states import Stream
from mlci_tui.store import logs
from mlci_tui.store.logs import LogWriter
from mlci_tui.tui.widgets.log_view import LogView
from tests.helpers import settle, text_of, until

BIG = 300_001


class Viewer(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView()


def numbered(path: Path, count: int, prefix: str = "line") -> Path:
    writer = LogWriter(path)
    for start in range(0, count, 50_000):
        lines = [
            b"%s %06d" % (prefix.encode(), i) for i in range(start, min(count, start + 50_000))
        ]
        writer.output(Stream.STDOUT, b"\n".join(lines), 1.0)
    writer.close()
    return path


def written(path: Path, data: bytes) -> Path:
    """A log of what a stage printed in one chunk, ``data``."""
    writer = LogWriter(path)
    writer.output(Stream.STDOUT, data, 1.0)
    writer.close()
    return path


def rows(view: LogView) -> list[str]:
    return [text_of(view.render_line(y)).rstrip() for y in range(view.size.height)]


async def opened(pilot: Pilot, path: Path, lines: int) -> LogView:
    view = pilot.app.query_one(LogView)
    view.show(path)
    view.focus()
    await until(pilot, lambda: view.index is not None and len(view.index) == lines)
    await settle(pilot)
    return view


async def test_a_large_log_opens_at_its_last_line_and_every_key_moves_as_named(
    tmp_path: Path,
) -> None:
    path = numbered(tmp_path / "big.log", BIG)
    async with Viewer().run_test(size=(60, 20)) as pilot:
        view = await opened(pilot, path, BIG)
        height = view.size.height
        assert rows(view)[-1] == f"line {BIG - 1:06d}"
        await pilot.press("home")
        await until(pilot, lambda: rows(view)[0] == "line 000000")
        assert not view.follow
        await pilot.press("pagedown")
        await settle(pilot)
        assert rows(view)[0] == f"line {height:06d}"
        await pilot.press("pagedown", "pageup")
        await settle(pilot)
        assert rows(view)[0] == f"line {height:06d}"
        await pilot.press("end")
        await settle(pilot)
        assert rows(view)[-1] == f"line {BIG - 1:06d}" and view.follow
        await pilot.press("pageup")
        await settle(pilot)
        assert rows(view)[-1] == f"line {BIG - 1 - height:06d}" and not view.follow
        # End again, now that follow is off and back on: still the last line.
        await pilot.press("end")
        await settle(pilot)
        assert rows(view)[-1] == f"line {BIG - 1:06d}"


async def test_end_goes_to_the_last_line_even_when_follow_is_on(tmp_path: Path) -> None:
    path = numbered(tmp_path / "log", 500)
    async with Viewer().run_test(size=(60, 12)) as pilot:
        view = await opened(pilot, path, 500)
        view.scroll_to(y=100, animate=False, immediate=True)  # follow stays on
        await settle(pilot)
        assert view.follow and rows(view)[0] == "line 000100"
        await pilot.press("end")
        await settle(pilot)
        assert rows(view)[-1] == "line 000499"


async def test_a_growing_log_is_followed_to_its_newest_line(tmp_path: Path) -> None:
    path = numbered(tmp_path / "log", 1000)
    async with Viewer().run_test(size=(60, 12)) as pilot:
        view = await opened(pilot, path, 1000)
        writer = LogWriter(path)
        writer.output(Stream.STDOUT, b"the newest line", 2.0)
        writer.close()
        view.poll()
        await until(pilot, lambda: rows(view)[-1] == "the newest line")


async def test_search_covers_lines_above_the_view_and_wraps_with_a_note(tmp_path: Path) -> None:
    path = numbered(tmp_path / "log", 5000, "row")
    async with Viewer().run_test(size=(80, 20)) as pilot:
        view = await opened(pilot, path, 5000)
        assert rows(view)[-1] == "row 004999"
        assert view.search("row 000123")
        await until(pilot, lambda: view.match_line == 123)
        assert "row 000123" in rows(view)
        assert "wrapped" not in view.status  # a new query starts from the first line
        await until(pilot, lambda: "match 1 of 1" in view.status)
        assert view.search("row 00499")  # rows 4990-4999
        await until(pilot, lambda: view.match_line == 4990)
        await until(pilot, lambda: "match 1 of 10" in view.status)
        view.action_previous_match()
        await until(pilot, lambda: view.match_line == 4999)
        assert "search wrapped to the bottom" in view.status
        assert "match 10 of 10" in view.status
        view.action_next_match()
        await until(pilot, lambda: view.match_line == 4990)
        assert "wrapped to the top" in view.status
        view.action_next_match()
        await until(pilot, lambda: view.match_line == 4991)
        assert "wrapped" not in view.status and "match 2 of 10" in view.status
        assert not view.search("no such row")
        await until(pilot, lambda: "no match for 'no such row'" in view.status)
        assert str(view.border_subtitle) == view.status


async def test_a_line_redrawn_with_carriage_returns_shows_its_latest_state(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log"
    # What a progress bar leaves: pieces flushed before the line ends.
    writer = LogWriter(path)
    writer.output(Stream.STDOUT, b"before", 1.0)
    writer.output(Stream.STDOUT, b"progress  10%", 1.1, partial=True)
    writer.output(Stream.STDOUT, b"\rprogress  50%", 1.2, partial=True)
    writer.output(Stream.STDOUT, b"\rprogress 100%\nafter", 1.3)
    writer.close()
    async with Viewer().run_test(size=(60, 8)) as pilot:
        view = await opened(pilot, path, 3)
        assert rows(view)[:3] == ["before", "progress 100%", "after"]


async def test_z_zooms_the_log_and_w_wraps_long_lines(tmp_path: Path) -> None:
    long = b"".join(b"%03d " % i for i in range(40))  # 160 columns
    path = written(tmp_path / "log", b"\n".join([b"short", long, b"last"]))
    async with Viewer().run_test(size=(60, 10)) as pilot:
        view = await opened(pilot, path, 3)
        assert rows(view)[:3] == ["short", long.decode()[:60].rstrip(), "last"]
        view.action_toggle_wrap()
        await settle(pilot)
        assert view.wrap
        shown = rows(view)
        width = view.scrollable_content_region.width  # the scrollbar's gutter kept
        assert shown[1:4] == [long.decode()[i : i + width].rstrip() for i in range(0, 160, width)]
        assert shown[4] == "last"
        view.action_toggle_wrap()
        await settle(pilot)
        assert rows(view)[1] == long.decode()[: view.size.width].rstrip()
        view.action_zoom()
        await settle(pilot)
        assert view.is_maximized
        view.action_zoom()
        await settle(pilot)
        assert not view.is_maximized


async def test_wrapped_lines_show_the_last_line_and_no_horizontal_scrollbar(
    tmp_path: Path,
) -> None:
    lines = [b"%02d " % i + b"x" * 150 for i in range(40)] + [b"the last line"]
    path = written(tmp_path / "log", b"\n".join(lines))
    async with Viewer().run_test(size=(60, 12)) as pilot:
        view = await opened(pilot, path, 41)
        view.action_toggle_wrap()
        await settle(pilot)
        assert not view.show_horizontal_scrollbar
        assert_last(rows(view))
        view.action_zoom()
        await settle(pilot)
        assert_last(rows(view))


def assert_last(shown: list[str]) -> None:
    """The last line is on screen, with nothing under it (a wrapped line is never
    cut at the top, so blank rows may follow)."""
    assert "the last line" in shown
    assert not any(shown[shown.index("the last line") + 1 :])


async def test_a_narrow_log_opened_after_a_wide_one_has_no_horizontal_scrollbar(
    tmp_path: Path,
) -> None:
    wide = written(tmp_path / "wide", b"w" * 200)
    narrow = numbered(tmp_path / "narrow", 3)
    async with Viewer().run_test(size=(60, 12)) as pilot:
        view = await opened(pilot, wide, 1)
        assert view.show_horizontal_scrollbar
        view = await opened(pilot, narrow, 3)
        assert not view.show_horizontal_scrollbar
        assert rows(view)[:3] == ["line 000000", "line 000001", "line 000002"]


async def test_a_huge_line_shows_its_start_marked_as_cut_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "log"
    piece = b"a" * (1 << 20)
    writer = LogWriter(path)
    for _ in range(100):  # a 100 MB line, written in pieces as the runner does
        writer.output(Stream.STDOUT, piece, 1.0, partial=True)
    writer.output(Stream.STDOUT, b"\nafter", 1.0)
    writer.close()
    async with Viewer().run_test(size=(80, 12)) as pilot:
        view = await opened(pilot, path, 2)
        await until(pilot, lambda: rows(view)[0].startswith("[a line of 10"))
        first, second = rows(view)[:2]
        assert first.startswith("[a line of 100.0 MB, cut; `mlci logs` has all of it] aaaa")
        assert second == "after"


async def test_a_wrapped_line_loses_no_character_beside_the_scrollbar(tmp_path: Path) -> None:
    long = "".join(f"{i:03d}," for i in range(75))  # 300 columns, each place unique
    lines = [b"line %02d" % i for i in range(60)] + [long.encode()]
    path = written(tmp_path / "log", b"\n".join(lines))
    async with Viewer().run_test(size=(80, 24)) as pilot:
        view = await opened(pilot, path, 61)
        view.action_toggle_wrap()  # `w`, which the dashboard binds
        await settle(pilot)
        assert view.wrap and view.show_vertical_scrollbar
        # What the screen shows, not what the view would draw: the scrollbar covers
        # the view's right-hand columns.
        region = view.scrollable_content_region
        screen = [text_of(s) for s in pilot.app.screen._compositor.render_strips()]
        shown = [row[region.x : region.right] for row in screen[region.y : region.bottom]]
        start = next(i for i, row in enumerate(shown) if row.startswith("000,"))
        assert "".join(shown[start:]).rstrip() == long


async def test_a_followed_log_of_wide_lines_keeps_its_last_line_above_the_scrollbar(
    tmp_path: Path,
) -> None:
    # Lines are measured as they are drawn: the horizontal scrollbar comes after the
    # first frame, and takes a row the last line was on.
    path = numbered(tmp_path / "log", 100, "w" * 90)
    async with Viewer().run_test(size=(60, 12)) as pilot:
        view = await opened(pilot, path, 100)
        await until(pilot, lambda: view.show_horizontal_scrollbar)
        await settle(pilot)
        assert view.scroll_offset.y == view.max_scroll_y
        # The last row above the scrollbar is the last line.
        assert view.scroll_offset.y + view.scrollable_content_region.height - 1 == 99


async def test_a_line_read_before_its_chunks_entry_is_drawn_again_in_its_streams_colour(
    tmp_path: Path,
) -> None:
    """The view may read a chunk's bytes before the runner has written its entry:
    the line is drawn as the chunk before's stream, then again once it is known."""
    path = tmp_path / "log"
    writer = LogWriter(path)
    writer.output(Stream.STDOUT, b"out1", 1.0)
    writer.output(Stream.STDERR, b"err1", 2.0)
    writer.close()

    def styles(y: int) -> list:
        return [segment.style.clear_meta_and_links() for segment in view.render_line(y)]

    async with Viewer().run_test(size=(60, 8)) as pilot:
        view = await opened(pilot, path, 2)
        assert styles(0) != styles(1)
        with path.open("ab") as file:
            file.write(b"out2\n")  # its entry, a stdout chunk's, comes a moment later
        view.poll()
        await until(pilot, lambda: rows(view)[2] == "out2")
        assert styles(2) == styles(1)
        with logs.index_path(path).open("ab") as file:
            file.write(logs.ENTRY.pack(path.stat().st_size << 2 | 0, 3.0))
        view.poll()
        await until(pilot, lambda: styles(2) == styles(0))
