"""LogView: one stage's log, read from the store's file as it grows.

Only the lines on screen are read and rendered (the Line API), through a
small cache; the file is indexed, not loaded, so a log of millions of lines
costs 8 bytes a line. Follow mode keeps the newest line in view; scrolling
up turns it off, ``f`` or End turns it back on. ``/`` searches, ``n``/``N``
step through matches, which are highlighted.

The log's keys are declared and handled here. Those that make sense from any
pane (`DASHBOARD_BINDINGS`: search and follow) are also listed by the app,
which passes them on, so that ``/`` works while the stage list has focus.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from mlci_tui.states import Stream
from mlci_tui.store.log_index import LogIndex
from mlci_tui.tui.read_again import ReadAgain
from mlci_tui.tui.screens.search import SearchScreen
from mlci_tui.tui.text import output_line

MAX_WIDTH = 1000
"""Columns a line may scroll to; longer lines are cut (the file keeps them whole)."""


class LogView(ScrollView, can_focus=True):
    """The log of one stage of one run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end", "follow_on", "Last line", show=False, id="log.end"),
        Binding("home", "scroll_home", "First line", show=False, id="log.home"),
    ]
    DASHBOARD_BINDINGS: ClassVar[list[Binding]] = [
        Binding("slash", "log('search')", "Search", id="search"),
        Binding("n", "log('next_match')", "Next match", show=False, id="search.next"),
        Binding("N", "log('previous_match')", "Previous match", show=False, id="search.previous"),
        Binding("f", "log('toggle_follow')", "Follow", id="follow"),
    ]
    """Keys of the log that work from any pane: the app binds them and calls `action_log`."""

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

    class FollowChanged(Message):
        """Follow mode was turned on or off."""

        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index: LogIndex | None = None
        self.path: Path | None = None
        self.match_line: int | None = None
        self._cache: LRUCache[int, Strip] = LRUCache(512)
        self._width = 0
        self._style: Style | None = None
        """The widget's own style, kept: computing it walks every ancestor."""
        self._reads = ReadAgain(self._start_indexing)

    # Which file -----------------------------------------------------------------

    def show(self, path: Path | None) -> None:
        """Show the log at ``path`` (None: nothing), following its end."""
        if path == self.path:
            return
        if self.index is not None:
            self.index.close()
        self.path = path
        self.index = None if path is None else LogIndex(path)
        self.match_line = None
        self._cache.clear()
        # The width seen so far is kept: dropping it would hide and show the
        # horizontal scrollbar, a layout pass each time.
        self.virtual_size = Size(self._width, 0)
        self.follow = True
        self.scroll_to(0, 0, animate=False)
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
    def _index(self, index: LogIndex) -> None:
        # While following, a backlog nobody will see is skipped (LogIndex.update);
        # it is counted when the view stops following.
        follow = self.follow
        filled = 0 if follow else index.fill_gap()
        added = index.update(follow=follow)
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self._indexed, index, added, filled)

    def _indexed(self, index: LogIndex, added: int, filled: int = 0) -> None:
        # A pass over a file no longer shown changes nothing, but a poll asked
        # for meanwhile is for the file shown now: `done` runs it.
        if index is self.index and (added or filled):
            self.virtual_size = Size(self._width, len(index))
            if filled:
                # Lines were counted above the view: keep it on the same lines.
                self._cache.clear()
                if not self.follow:
                    y = self.scroll_offset.y + filled
                    self.scroll_to(y=y, animate=False, immediate=True)
            if self.follow:
                self.scroll_end(animate=False, immediate=True)
            self.refresh()
        self._reads.done()

    # Rendering --------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line = scroll_y + y
        width = self.size.width
        style = self._base_style
        if self.index is None or line >= len(self.index):
            return Strip.blank(width, style)
        strip = self._strip(line)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, line)

    def _strip(self, line: int) -> Strip:
        cached = self._cache.get(line)
        if cached is not None:
            return cached
        assert self.index is not None
        record = self.index.record(line)
        if record is None:
            return Strip.blank(0)
        if record.stream is Stream.MESSAGE:
            text = Text("── ", end="") + output_line(record.content, color=False)
            text.stylize(self.get_component_rich_style("log-view--note"))
        else:
            text = output_line(record.content)
            if record.stream is Stream.STDERR:
                # Under the line's own colours, which win where it has any.
                text.stylize_before(self.get_component_rich_style("log-view--stderr"))
        if self.search_text:
            self._highlight(text, line)
        text.stylize_before(self._base_style)
        strip = Strip(text.render(self.app.console), text.cell_len)
        self._cache[line] = strip
        if strip.cell_length > self._width and self._width < MAX_WIDTH:
            # Lines are measured as they are drawn: widen the scroll area after this frame.
            self._width = min(MAX_WIDTH, strip.cell_length)
            self.call_after_refresh(self._widen)
        return strip

    def _widen(self) -> None:
        if self.virtual_size.width < self._width:
            self.virtual_size = Size(self._width, self.virtual_size.height)

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

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None
        self._cache.clear()

    # Follow and search ------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        self.post_message(self.FollowChanged(follow))
        if self.index is None:
            return
        if follow:
            self.scroll_end(animate=False, immediate=True)
        elif not self.index.complete:
            self.poll()  # count what following skipped

    def watch_search_text(self) -> None:
        # The highlights are in the cached lines; the reactive repaints after this.
        self._cache.clear()

    def action_follow_on(self) -> None:
        self.follow = True

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_search(self) -> None:
        def searched(query: str | None) -> None:
            if query is None:
                return
            self.match_line = None
            found = self.search(query)  # an empty query clears the search
            if query and not found:
                self._warn(f"no match for {query!r}")
            self.focus()

        self.app.push_screen(SearchScreen(self.search_text), searched)

    def action_next_match(self) -> None:
        self._step_match(forward=True)

    def action_previous_match(self) -> None:
        self._step_match(forward=False)

    def _step_match(self, *, forward: bool) -> None:
        if not self.search_text:
            self.action_search()
            return
        if not self.search(self.search_text, forward=forward):
            self._warn(f"no more matches {'below' if forward else 'above'}")

    def _warn(self, message: str) -> None:
        # Plain text: the query is whatever was typed.
        self.notify(message, severity="warning", markup=False)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    def on_key(self, event: events.Key) -> None:
        if event.key in ("up", "pageup", "home", "ctrl+home"):
            self.follow = False

    def search(self, query: str, *, forward: bool = True) -> bool:
        """Move to the next (or previous) line matching ``query``; False if none."""
        self.search_text = query
        if self.index is None or not query:
            return False
        filled = self.index.fill_gap()  # a search is over every line, skipped ones too
        if filled:
            self._cache.clear()
            self.virtual_size = Size(self._width, len(self.index))
            self.scroll_to(y=self.scroll_offset.y + filled, animate=False, immediate=True)
        start = self.match_line if self.match_line is not None else self._search_origin(forward)
        found = self.index.search(query, start, forward=forward)
        if found is None:
            return False
        previous, self.match_line = self.match_line, found
        for line in (previous, found):
            if line is not None:
                self._cache.discard(line)
        self.follow = False
        self.scroll_to(y=max(0, found - self.size.height // 2), animate=False)
        self.refresh()
        return True

    def _search_origin(self, forward: bool) -> int:
        top = int(self.scroll_offset.y)
        return top - 1 if forward else top + self.size.height
