"""LogView: one stage's log, read from the store's file as it grows.

Only the lines on screen are read and rendered (the Line API), through a
small cache; the file is indexed, not loaded, so a log of millions of lines
costs 8 bytes a line. A line written in pieces (a progress bar flushed
early, a very long line) is one line here, and a carriage return in it shows
only what was drawn last, as a terminal would.

Follow mode keeps the newest line in view; scrolling up turns it off, ``f``
or End turns it back on. ``/`` searches the whole log from its first line
(match 1 is the first in the log), ``n``/``N`` step through the matches
(wrapping around, with "match 3 of 40" counted in a worker), Esc ends the
search; ``y`` copies the lines in view (or the matched line), ``w`` wraps long
lines, ``z`` zooms the log to the whole screen.

The log's keys are declared and handled here. Those that make sense from any
pane (`DASHBOARD_BINDINGS`) are also bound by the app, which passes them on,
so that ``n`` works while the stage list has focus.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.actions import SkipAction
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from mlci_tui.states import Stream
from mlci_tui.store.log_index import LogIndex
from mlci_tui.store.logs import LogRecord
from mlci_tui.store.run_log import RunLog, stage_labels
from mlci_tui.textsafe import terminal_line
from mlci_tui.tui.read_again import ReadAgain
from mlci_tui.tui.screens.search import SearchScreen
from mlci_tui.tui.text import output_line
from mlci_tui.units import format_bytes

RunLogs = tuple[tuple[str, Path], ...] | None
"""The stages' logs of a whole run's log: (stage, its log) in order."""
MAX_WIDTH = 1000
"""Columns a line may scroll to; longer lines are cut (the file keeps them whole)."""
MAX_WRAPPED_ROWS = 200
"""Rows a wrapped line may take; the rest of it is cut."""
FEW_LINES = 1000
"""Fewer lines than this after a stretch skipped while following are counted whole."""


class LogView(ScrollView, can_focus=True):
    """The log of one stage of one run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end", "last_line", "Last line", show=False, id="log.end"),
        Binding("home", "first_line", "First line", show=False, id="log.home"),
        Binding("escape", "clear_search", "End the search", show=False, id="log.search.clear"),
    ]
    DASHBOARD_BINDINGS: ClassVar[list[Binding]] = [
        Binding("n", "log('next_match')", "Next match", show=False, id="search.next"),
        Binding("N", "log('previous_match')", "Previous match", show=False, id="search.previous"),
        # Off the footer, which has no room left at 80 columns: the header says
        # "follow off (f)" when it is off, and the help lists it.
        Binding(
            "f",
            "log('toggle_follow')",
            "Follow",
            show=False,
            tooltip="the newest line, or not",
            id="follow",
        ),
        Binding(
            "z",
            "log('zoom')",
            "Zoom",
            show=False,
            tooltip="the log over the whole screen",
            id="log.zoom",
        ),
        Binding(
            "w",
            "log('toggle_wrap')",
            "Wrap",
            show=False,
            tooltip="long lines, or not",
            id="log.wrap",
        ),
        Binding(
            "y",
            "log('copy')",
            "Copy",
            show=False,
            tooltip="the lines in view, or the line a search found, to the clipboard",
            id="log.copy",
        ),
    ]
    """Keys of the log that work from any pane: the app binds them and calls `action_log`."""
    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        overflow: auto auto;
        scrollbar-color: $primary 40%;
        scrollbar-background: $surface;
        &:focus { background-tint: $foreground 4%; }
    }
    LogView > .log-view--note { color: $text-muted; text-style: italic; }
    LogView > .log-view--stderr { color: $warning; }
    LogView > .log-view--match { background: $accent 60%; }
    LogView > .log-view--current-match { background: $accent; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log-view--note",
        "log-view--stderr",
        "log-view--match",
        "log-view--current-match",
    }

    follow: reactive[bool] = reactive(True)
    search_text: reactive[str] = reactive("")
    wrap: reactive[bool] = reactive(False)

    class NoMatch(Message):
        """A search found nothing in this stage's log: the app looks in the others."""

        def __init__(self, query: str, forward: bool) -> None:
            super().__init__()
            self.query = query
            self.forward = forward

    class FollowChanged(Message):
        """Follow mode was turned on or off."""

        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index: LogIndex | RunLog | None = None
        self.path: Path | None = None
        """The stage's log shown; None when none is, or the whole run's is."""
        self.run_logs: RunLogs = None
        """The stages' logs shown as one (the whole run's log), or None."""
        self._labels: dict[str, Text] = {}
        self.match_line: int | None = None
        self.job_text = ""
        """Where the stage ran, when not here (a Ray job): set by the app, shown below."""
        self._search_note = ""
        self._matches: tuple[str, int, array[int]] | None = None
        """The lines matching a query, counted in a worker: (query, how much of the log
        was indexed, lines)."""
        self._cache: LRUCache[int, Strip] = LRUCache(512)
        self._wrapped: LRUCache[int, list[Strip]] = LRUCache(512)
        self._width = 0
        self._style: Style | None = None
        """The widget's own style, kept: computing it walks every ancestor."""
        self._reads = ReadAgain(self._start_indexing)
        self._drawn_lines = 0
        """How many lines the index had when the view last caught up with it."""
        self._settled = 0
        """How many of them had their stream known then (`LogIndex.settled`)."""
        self._to_top = False
        """Home was pressed while lines above were not counted yet (see `_indexed`)."""
        self._pending_search: tuple[str, bool, str] | None = None
        """A search to run once the file shown is read: (query, forward, note)."""

    # Which file -----------------------------------------------------------------

    def show(self, path: Path | None) -> None:
        """Show the log at ``path`` (None: nothing), following its end."""
        if path == self.path and self.run_logs is None:
            return
        self._open(path, None if path is None else LogIndex(path), None)

    def show_run(self, logs: Sequence[tuple[str, Path]]) -> None:
        """Show the logs of a run's stages as one, interleaved as `mlci run` printed
        them, each line after its stage's label; ``logs``: (stage, its log), in order."""
        if tuple(logs) == self.run_logs:
            return
        labels = stage_labels([name for name, _ in logs])
        self._labels = {
            name: Text.from_ansi(f"\x1b[{label.color}m{label.text}\x1b[0m{label.pad}", end="")
            for name, label in labels.items()
        }
        self._open(None, RunLog(logs), tuple(logs))

    def _open(self, path: Path | None, index: LogIndex | RunLog | None, run_logs: RunLogs) -> None:
        if self.index is not None:
            self.index.close()
        self.path = path
        self.run_logs = run_logs
        self.index = index
        self.match_line = None
        self._matches = None
        self._search_note = ""
        self._pending_search = None
        self._clear_caches()
        self._drawn_lines = self._settled = 0
        # Measured again for this file: a width kept from a wider log would show a
        # horizontal scrollbar with nothing to scroll to.
        self._width = 0
        self.virtual_size = Size(0, 0)
        self.follow = True
        self.scroll_to(0, 0, animate=False)
        self._show_status()
        self.poll()

    def poll(self) -> None:
        """Catch up with the file if it grew; called by the app's store watcher."""
        if self.index is not None:
            self._reads.request()

    def _start_indexing(self) -> None:
        if self.index is None:
            self._reads.done()
        else:
            self._index(self.index)

    @work(thread=True, exclusive=True, group="log-index")
    def _index(self, index: LogIndex | RunLog) -> None:
        # While following, a backlog nobody will see is skipped (LogIndex.update);
        # it is counted when the view stops following.
        follow = self.follow
        gap = not follow and not index.complete
        filled = index.fill_gap() if gap else 0
        added = index.update(follow=follow)
        if not index.complete and len(index) < FEW_LINES:
            # What was kept after the skipped stretch is a few long lines, the end of a
            # huge one perhaps: count the rest, so that a line shows from its start.
            filled += index.fill_gap()
            gap = True
        settled = index.settled
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self._indexed, index, added, filled, gap, settled)

    def _indexed(
        self,
        index: LogIndex | RunLog,
        added: int,
        filled: int = 0,
        gap: bool = False,
        settled: int = 0,
    ) -> None:
        # A pass over a file no longer shown changes nothing, but a poll asked
        # for meanwhile is for the file shown now: `done` runs it.
        if index is self.index and (added or gap or self._to_top or settled > self._settled):
            self._resize_virtual()
            # The line that was last may have grown (a line written in pieces), lines
            # read before their chunk's entry may have another stream, and lines may
            # have come after them: draw them all again.
            for line in range(min(self._drawn_lines - 1, self._settled), self._drawn_lines):
                self._forget(line)
            self._forget(len(index) - 1)
            self._drawn_lines = len(index)
            self._settled = settled
            if gap:
                # Lines were counted above: the first line after them may be longer.
                self._clear_caches()
            if self._to_top and index.complete:
                self._to_top = False
                self.scroll_to(y=0, animate=False, immediate=True, force=True)
            elif filled and not self.follow:
                # Lines were counted above the view: keep it on the same lines.
                y = self.scroll_offset.y + filled
                self.scroll_to(y=y, animate=False, immediate=True, force=True)
            if self.follow:
                self._to_end()
            self.refresh()
        if index is self.index and index.problem is not None:
            self._show_status()
        if index is self.index and self._pending_search is not None:
            query, forward, note = self._pending_search
            self._pending_search = None
            self.search(query, forward=forward, other_stages=False)
            self._search_note = " · ".join(filter(None, [note, self._search_note]))
            self._show_status()
        self._reads.done()

    def _resize_virtual(self) -> None:
        lines = len(self.index) if self.index is not None else 0
        if self.wrap:
            # Rows are drawn from a top line down; the last top is the one that puts
            # the last line at the bottom, so the thumb ends at the bottom with it.
            height = self.size.height
            self.virtual_size = Size(self._wrap_width, self._last_top() + height if lines else 0)
        else:
            self.virtual_size = Size(self._width, lines)

    def _to_end(self) -> None:
        """Show the last line, now and again once the layout has settled (a scroll
        area that has just grown may not scroll yet, so this forces it)."""
        self._scroll_end_now()
        self.call_after_refresh(self._scroll_end_now)

    def _scroll_end_now(self) -> None:
        if self.index is None:
            return
        top = self._last_top() if self.wrap else self.max_scroll_y
        self.scroll_to(0 if self.wrap else None, top, animate=False, immediate=True, force=True)

    # Rendering --------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        style = self._base_style
        if self.index is None:
            return Strip.blank(width, style)
        if self.wrap:
            return self._wrapped_row(scroll_y, y, self._wrap_width)
        line = scroll_y + y
        if line >= len(self.index):
            return Strip.blank(width, style)
        strip = self._strip(line)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, line)

    @property
    def _wrap_width(self) -> int:
        """The columns a wrapped row has: the view's, less the vertical scrollbar's
        (its gutter is kept while lines wrap, so the width never changes with it)."""
        return max(1, self.scrollable_content_region.width)

    def _wrapped_row(self, top: int, y: int, width: int) -> Strip:
        """Row ``y`` of the view when long lines wrap: lines from ``top`` down."""
        assert self.index is not None
        count = len(self.index)
        line, row = top, y
        while line < count:
            rows = self._rows(line, width)
            if row < len(rows):
                return rows[row].apply_offsets(0, line)
            row -= len(rows)
            line += 1
        return Strip.blank(width, self._base_style)

    def _rows(self, line: int, width: int) -> list[Strip]:
        cached = self._wrapped.get(line)
        if cached is not None and cached and cached[0].cell_length == width:
            return cached
        strip = self._strip(line)
        end = min(strip.cell_length, width * MAX_WRAPPED_ROWS)
        # `divide` returns the pieces up to the last cut: the end is a cut too.
        pieces = strip.divide([*range(width, end, width), end]) if end > width else [strip]
        rows = [piece.crop_extend(0, width, self._base_style) for piece in pieces]
        self._wrapped[line] = rows
        return rows

    def _last_top(self) -> int:
        """The top line that shows the last line at the bottom, lines wrapped."""
        assert self.index is not None
        width, height = self._wrap_width, max(1, self.size.height)
        line = len(self.index) - 1
        used = 0
        while line >= 0:
            used += len(self._rows(line, width))
            if used > height:
                return line + 1
            line -= 1
        return 0

    def _strip(self, line: int) -> Strip:
        cached = self._cache.get(line)
        if cached is not None:
            return cached
        assert self.index is not None
        record = self.index.line(line)
        if record is None:
            return Strip.blank(0)
        text = self._text(record)
        if self.search_text:
            self._highlight(text, line)
        if isinstance(self.index, RunLog):
            text = self._labels.get(self.index.stage_at(line) or "", Text()) + text
        text.stylize_before(self._base_style)
        strip = Strip(text.render(self.app.console), text.cell_len)
        self._cache[line] = strip
        if strip.cell_length > self._width and self._width < MAX_WIDTH and not self.wrap:
            # Lines are measured as they are drawn: widen the scroll area after this frame.
            self._width = min(MAX_WIDTH, strip.cell_length)
            self.call_after_refresh(self._widen)
        return strip

    def _text(self, record: LogRecord) -> Text:
        if record.stream is Stream.MESSAGE:
            text = Text("── ", end="") + output_line(record.content, color=False)
            text.stylize(self.get_component_rich_style("log-view--note"))
            return text
        text = output_line(record.content)
        if record.stream is Stream.STDERR:
            # Under the line's own colours, which win where it has any.
            text.stylize_before(self.get_component_rich_style("log-view--stderr"))
        if record.cut:
            # First, where it is seen: the end of the start shown is far to the right.
            note = f"[a line of {format_bytes(record.cut)}, cut; `mlci logs` has all of it] "
            text = Text(note, self.get_component_rich_style("log-view--note"), end="") + text
        return text

    def _widen(self) -> None:
        if not self.wrap and self.virtual_size.width < self._width:
            self.virtual_size = Size(self._width, self.virtual_size.height)
            if self.follow:
                # A horizontal scrollbar may have just taken the last row.
                self._to_end()

    @property
    def _base_style(self) -> Style:
        if self._style is None:
            self._style = self.rich_style
        return self._style

    def _highlight(self, text: Text, line: int) -> None:
        name = "log-view--current-match" if line == self.match_line else "log-view--match"
        style: Style = self.get_component_rich_style(name)
        for found in re.finditer(re.escape(self.search_text), text.plain, re.IGNORECASE):
            text.stylize(style, found.start(), found.end())

    def _clear_caches(self) -> None:
        self._cache.clear()
        self._wrapped.clear()

    def _forget(self, line: int) -> None:
        self._cache.discard(line)
        self._wrapped.discard(line)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None
        self._clear_caches()

    def on_resize(self) -> None:
        self._show_status()  # zoomed or not (Esc unzooms without asking this view)
        if self.wrap:
            self._wrapped.clear()
            self._resize_virtual()
        if self.follow:
            # Smaller (the versions below filled in, a terminal shrank): the last line
            # must stay in view.
            self._to_end()

    # Moving -------------------------------------------------------------------------

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        # Textual moves a thumb only while its bar shows: a bar that appears after
        # the view scrolled (a log read before the layout caught up) starts in place.
        if shown:
            self.vertical_scrollbar.position = self.scroll_y

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        if shown:
            self.horizontal_scrollbar.position = self.scroll_x
        if self.follow:
            # The bar takes (or gives back) a row without a resize: the last line
            # must stay in view (a narrow log on a short screen).
            self._to_end()

    def watch_follow(self, follow: bool) -> None:
        self.post_message(self.FollowChanged(follow))
        if self.index is None:
            return
        if follow:
            self._to_end()
        elif not self.index.complete:
            self.poll()  # count what following skipped

    def watch_search_text(self) -> None:
        # The highlights are in the cached lines; the reactive repaints after this.
        self._clear_caches()

    def watch_wrap(self, wrap: bool) -> None:
        top = int(self.scroll_offset.y)
        # Wrapped, nothing is wider than the view: no horizontal scrollbar takes a row.
        self.styles.overflow_x = "hidden" if wrap else "auto"
        # Room for the vertical scrollbar whether it shows or not: a bar appearing
        # would narrow the rows, which would change whether it is needed.
        self.styles.scrollbar_gutter = "stable" if wrap else "auto"
        self.scroll_to(x=0, animate=False, immediate=True)
        self._clear_caches()
        self._resize_virtual()
        if self.follow:
            self._to_end()
        else:
            self.scroll_to(0, top, animate=False, immediate=True, force=True)
        self._show_status()
        self.refresh()

    def action_last_line(self) -> None:
        """To the last line, whatever follow was; following while new lines come."""
        self.follow = True
        self._to_end()

    def action_first_line(self) -> None:
        self.follow = False
        if self.index is not None and not self.index.complete:
            # The lines above were skipped while following: count them, then go up.
            self._to_top = True
            self.poll()
            return
        self.scroll_to(y=0, animate=False, immediate=True, force=True)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap

    def action_zoom(self) -> None:
        """The log over the whole screen, or back (Esc too)."""
        if self.is_maximized:
            self.screen.minimize()
        else:
            self.screen.maximize(self, container=False)
        self.call_after_refresh(self._show_status)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    def on_key(self, event: events.Key) -> None:
        if event.key in ("up", "pageup", "ctrl+home"):
            self.follow = False

    # Copy ---------------------------------------------------------------------------

    def action_copy(self) -> None:
        """The line a search found, else the lines in view, to the clipboard as plain
        text (what the view shows, escapes dropped), through the terminal (OSC 52)."""
        if self.index is None or not len(self.index):
            self.app.notify("no log lines to copy", severity="warning", markup=False)
            return
        found = self.match_line if self.search_text else None
        lines = [found] if found is not None else self._lines_in_view()
        texts = [self._copy_text(line) for line in lines]
        self.app.copy_to_clipboard("\n".join(texts) + "\n")
        if found is not None:
            said = f"copied line {found + 1}, the match"
        else:
            said = f"copied {len(lines)} line{'s' * (len(lines) != 1)}"
        self.app.notify(said, markup=False)

    def _copy_text(self, line: int) -> str:
        """The line as shown, plain: what the view draws, before its search highlights."""
        return self._strip(line).text

    def _lines_in_view(self) -> list[int]:
        assert self.index is not None
        top, height, count = int(self.scroll_offset.y), self.size.height, len(self.index)
        if not self.wrap:
            return list(range(top, min(count, top + height)))
        lines: list[int] = []
        rows = 0
        while top < count and rows < height:
            lines.append(top)
            rows += len(self._rows(top, self._wrap_width))
            top += 1
        return lines

    # Search -------------------------------------------------------------------------

    def action_search(self) -> None:
        def searched(query: str | None) -> None:
            self.match_line = None  # a query submitted starts from the first line
            self.search(query or "")  # an empty query (Esc) ends the search
            self.focus()

        self.app.push_screen(SearchScreen(self.search_text), searched)

    def action_clear_search(self) -> None:
        """Esc: no query, no highlight, no "no match" left under the log."""
        if not (self.search_text or self._search_note or self._pending_search):
            raise SkipAction()  # nothing to clear: Esc goes on to the screen
        self._pending_search = None
        self.match_line = None
        self.search("")

    def search_when_read(self, query: str, *, forward: bool = True, note: str = "") -> None:
        """Search for ``query`` once the file just shown is read, saying ``note``
        (the app found the query in this stage after none in another)."""
        self._pending_search = (query, forward, note)
        self.poll()

    def action_next_match(self) -> None:
        self._step_match(forward=True)

    def action_previous_match(self) -> None:
        self._step_match(forward=False)

    def _step_match(self, *, forward: bool) -> None:
        if not self.search_text:
            self.action_search()
            return
        self.search(self.search_text, forward=forward)

    def search(self, query: str, *, forward: bool = True, other_stages: bool = True) -> bool:
        """Move to the next (or previous) line matching ``query``, over the whole log
        and wrapping around at its end; False if no line matches. A new query starts
        from the first line (or, backwards, the last), whatever is in view: match 1
        is the first in the log. With ``other_stages``, no match at all in this
        stage's log asks the app (`NoMatch`) to look in the run's other stages."""
        if query != self.search_text:
            self.match_line = None
        self.search_text = query
        self._search_note = ""
        if self.index is None or not query:
            self._show_status()
            return False
        filled = self.index.fill_gap()  # a search is over every line, skipped ones too
        if filled:
            self._clear_caches()
            self._resize_virtual()
            self.scroll_to(y=self.scroll_offset.y + filled, animate=False, immediate=True)
        start = self.match_line
        if start is None:
            start = -1 if forward else len(self.index)
        found = self.index.search(query, start, forward=forward)
        if found is None:
            found = self.index.search(query, -1 if forward else len(self.index), forward=forward)
            if found is not None and found != self.match_line:
                self._search_note = f"search wrapped to the {'top' if forward else 'bottom'}"
        if found is None:
            self._search_note = f"no match for {terminal_line(query, keep_color=False)!r}"
            self.match_line = None
            self._show_status()
            if other_stages and self.run_logs is None:
                self.post_message(self.NoMatch(query, forward))
            return False
        previous, self.match_line = self.match_line, found
        for line in (previous, found):
            if line is not None:
                self._forget(line)
        self.follow = False
        self.scroll_to(y=max(0, found - self.size.height // 2), animate=False, force=True)
        self._count(query)
        self._show_status()
        self.refresh()
        return True

    def _count(self, query: str) -> None:
        """Count the matches in a worker, unless counted for this query and file size."""
        assert self.index is not None
        counted = self._matches
        if counted is not None and counted[:2] == (query, self.index.indexed):
            return
        self._matches = None
        self._count_matches(self.index, query)

    @work(thread=True, exclusive=True, group="log-count")
    def _count_matches(self, index: LogIndex | RunLog, query: str) -> None:
        worker = get_current_worker()
        indexed = index.indexed
        found = index.matches(query, cancelled=lambda: worker.is_cancelled)
        if found is None:
            return
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self._counted, index, query, indexed, found)

    def _counted(
        self, index: LogIndex | RunLog, query: str, indexed: int, found: array[int]
    ) -> None:
        if index is self.index and query == self.search_text:
            self._matches = (query, indexed, found)
            self._show_status()

    def match_position(self) -> tuple[int, int] | None:
        """(k, n) for "match k of n", once the matches are counted."""
        if self._matches is None or self.match_line is None:
            return None
        found = self._matches[2]
        return bisect.bisect_left(found, self.match_line) + 1, len(found)

    @property
    def status(self) -> str:
        """What the log's bottom border says: where the stage ran, and the search."""
        parts = [self.job_text] if self.job_text else []
        if self.index is not None and self.index.problem is not None:
            parts.append(self.index.problem)
        if self.search_text and self.match_line is not None:
            position = self.match_position()
            counted = (
                "counting matches…" if position is None else "match {} of {}".format(*position)
            )
            parts.append(f"/{self.search_text} · {counted}")
        if self._search_note:
            parts.append(self._search_note)
        if self.wrap:
            parts.append("lines wrapped (w)")
        if self.is_maximized:
            parts.append("zoomed: z or Esc to go back")
        return " · ".join(parts)

    def say_search(self, note: str) -> None:
        """Say ``note`` about the search under the log (what the app found elsewhere)."""
        self._search_note = note
        self._show_status()

    def show_job(self, text: str) -> None:
        """Say where the stage ran (a Ray job), under the log."""
        if text != self.job_text:
            self.job_text = text
            self._show_status()

    def _show_status(self) -> None:
        # Plain content: the query was typed, the job's address comes from a config.
        self.border_subtitle = Content(terminal_line(self.status, keep_color=False))
