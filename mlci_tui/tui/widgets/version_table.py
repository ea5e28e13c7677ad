"""VersionTable: model versions newest first, with a trend of the key metric.

A filter (``/``) keeps the versions whose name, status or description holds its
text; Esc clears it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable

from mlci_tui.metric_keys import MetricKey, labels
from mlci_tui.store.records import VersionRecord
from mlci_tui.tui.screens.search import filter_hint, filter_title
from mlci_tui.tui.text import metric_cell, plain, state_text
from mlci_tui.units import metric_text, sparkline

MARKER = "\u203a"
"""Beside the highlighted row: the highlight must show without colour too."""
DESCRIPTION_ROOM = 32
"""Columns DESCRIPTION gets, at least, before CREATED and LIVE give way to it."""
TREND_WIDTH = 60
"""Versions the trend covers at most: one bar each."""


class VersionTable(DataTable[Text], inherit_bindings=False):
    """One row per version; the row key is the version number. Its keys are its
    own: a table's would move a cell cursor this table does not have."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Newer version", show=False, id="versions.up"),
        Binding("down", "cursor_down", "Older version", show=False, id="versions.down"),
        Binding("pageup", "page_up", "A page of versions up", show=False, id="versions.page-up"),
        Binding(
            "pagedown", "page_down", "A page of versions down", show=False, id="versions.page-down"
        ),
        Binding("home,ctrl+home", "scroll_top", "Newest version", show=False, id="versions.top"),
        Binding("end,ctrl+end", "scroll_bottom", "Oldest version", show=False, id="versions.end"),
        Binding("left", "scroll_left", "Scroll left", show=False, id="versions.left"),
        Binding("right", "scroll_right", "Scroll right", show=False, id="versions.right"),
        Binding("enter", "app.rollback", "Roll back to it", show=False, id="versions.rollback"),
        Binding("d", "app.compare_version", "Compare with live", show=False, id="versions.diff"),
        Binding("escape", "clear_filter", "Clear the filter", show=False, id="versions.unfilter"),
    ]

    class Filtered(Message):
        """The filter changed: its text, "" when none."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.versions: list[VersionRecord] = []
        """The versions shown: those the filter keeps."""
        self.all_versions: list[VersionRecord] = []
        self.filter_text = ""
        self.metrics: list[MetricKey] = []
        self.default: int | None = None
        """The version the highlight rests on until someone moves it: the one
        `mlci rollback` would pick, else the live one."""
        self.picked: int | None = None
        """The version someone put the highlight on; None: it follows `default`."""
        self._marked: str | None = None
        self._fitted: tuple[tuple[str, ...], int | None] = ((), None)
        """The columns left out and DESCRIPTION's width, as last built."""

    def show(
        self, versions: Sequence[VersionRecord], metrics: Sequence[MetricKey], default: int | None
    ) -> None:
        """Replace the rows. The highlight stays on the version picked, or, when none
        was (or it is gone), moves to ``default`` as the table changes under it: it
        never rests on a row only because that row was there first."""
        shown = (self.all_versions, self.metrics, self.default)
        if (list(versions), list(metrics), default) == shown:
            return
        self.all_versions, self.metrics, self.default = list(versions), list(metrics), default
        self._build()

    def set_filter(self, text: str) -> None:
        """Keep the versions whose name, status or description holds ``text`` (any
        case); "" keeps all."""
        if text == self.filter_text:
            return
        self.filter_text = text
        self._build()
        self.post_message(self.Filtered(text))

    def action_clear_filter(self) -> None:
        if not self.filter_text:
            raise SkipAction()
        self.set_filter("")

    def _kept(self, version: VersionRecord) -> bool:
        words = f"{version.name} {version.status.text} {_description(version)}"
        return self.filter_text.lower() in words.lower()

    def _cells(self) -> tuple[list[tuple[str, str | Text]], list[list[Text]]]:
        """The columns (key, label) and a row of cells per version."""
        metrics = self.metrics
        columns: list[tuple[str, str | Text]] = [
            ("marker", " "),
            ("version", "VERSION"),
            ("created", "CREATED"),
            ("status", "STATUS"),
        ]
        shown = labels(metrics)
        for key in metrics:
            columns.append((f"metric:{key.text}", Text(shown[key].upper()[:12], justify="right")))
        columns += [("live", "LIVE"), ("description", "DESCRIPTION")]
        rows = []
        for version in self.versions:
            created = time.strftime("%m-%d %H:%M", time.localtime(version.created_at))
            description = _description(version)
            if version.pruned_at is not None:
                description = f"{description} (pruned)".strip()
            rows.append(
                [
                    Text(" "),
                    Text(version.name, style="bold"),
                    Text(created),
                    state_text(version.status),
                    *(metric_cell(version.metrics.get(key)) for key in metrics),
                    plain(version.live_text(metrics)),
                    plain(description),
                ]
            )
        return columns, rows

    def _fit(
        self, columns: list[tuple[str, str | Text]], rows: list[list[Text]]
    ) -> tuple[tuple[str, ...], int | None]:
        """The columns to leave out and the width DESCRIPTION gets (None: all of it):
        it takes what the others leave, and CREATED, then LIVE, give way while that
        is less than `DESCRIPTION_ROOM` (the why of a rollback matters more)."""
        room = self.scrollable_content_region.width
        if not room:
            return (), None  # not laid out yet: fitted when it is
        pad = 2 * self.cell_padding
        widths = {
            key: (label if isinstance(label, Text) else Text(label)).cell_len
            for key, label in columns
        }
        for row in rows:
            for (key, _), cell in zip(columns, row, strict=True):
                widths[key] = max(widths[key], cell.cell_len)
        wanted = min(widths["description"], DESCRIPTION_ROOM)
        for hidden in ((), ("created",), ("created", "live")):
            others = sum(
                w + pad for key, w in widths.items() if key not in (*hidden, "description")
            )
            left = room - others - pad
            if left >= wanted:
                break
        if left >= widths["description"]:
            return hidden, None
        return hidden, max(left, len("DESCRIPTION"))

    def on_resize(self) -> None:
        self._refit()

    def watch_show_vertical_scrollbar(self) -> None:
        # The bar takes columns without a resize: fitted again once it is drawn.
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self.versions and self._fit(*self._cells()) != self._fitted:
            self._build()

    def _build(self) -> None:
        self.versions = [v for v in self.all_versions if self._kept(v)]
        columns, rows = self._cells()
        hidden, width = self._fitted = self._fit(columns, rows)
        self.clear(columns=True)
        self._marked = None
        for key, label in columns:
            if key not in hidden:
                self.add_column(label, key=key)
        for version, row in zip(self.versions, rows, strict=True):
            if width is not None:
                row[-1].truncate(width, overflow="ellipsis")
            cells = [cell for (key, _), cell in zip(columns, row, strict=True) if key not in hidden]
            self.add_row(*cells, key=str(version.number))
        picked = self.picked
        if picked is None or not self._move_to(picked):
            self.follow_default()
            if any(v.number == picked for v in self.all_versions):
                self.picked = picked  # only filtered out: picked again when it shows
        self._mark()

    def follow_default(self) -> None:
        """The highlight on `default` (the newest version without one), following it."""
        self.picked = None
        if self.default is None or not self._move_to(self.default):
            self._move_to(self.versions[0].number if self.versions else None)

    def select_version(self, number: int) -> bool:
        """Put the highlight on version ``number`` and keep it there; False if it is
        not listed."""
        if not self._move_to(number):
            return False
        self.picked = number
        return True

    def _move_to(self, number: int | None) -> bool:
        for row, version in enumerate(self.versions):
            if version.number == number:
                self.move_cursor(row=row, animate=False)
                self._mark()
                return True
        return False

    # Every way a person moves the highlight makes its version the one picked.

    def _moved_by_hand(self) -> None:
        selected = self.selected_version
        self.picked = None if selected is None else selected.number

    def action_cursor_up(self) -> None:
        super().action_cursor_up()
        self._moved_by_hand()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._moved_by_hand()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._moved_by_hand()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._moved_by_hand()

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self._moved_by_hand()

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self._moved_by_hand()

    async def _on_click(self, event: events.Click) -> None:
        await super()._on_click(event)
        if event.style.meta.get("row", -1) >= 0:  # a row, not the header
            self._moved_by_hand()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._mark()

    def _mark(self) -> None:
        """The marker on the highlighted row only."""
        selected = self.selected_version
        key = None if selected is None else str(selected.number)
        if key == self._marked:
            return
        if self._marked is not None and self._marked in self.rows:
            self.update_cell(self._marked, "marker", Text(" "))
        if key is not None:
            self.update_cell(key, "marker", Text(MARKER, style="bold"))
        self._marked = key

    @property
    def selected_version(self) -> VersionRecord | None:
        if not 0 <= self.cursor_row < len(self.versions):
            return None
        return self.versions[self.cursor_row]


class VersionHeading(Widget):
    """The line over the table: how many versions, and the first key metric's trend
    from the oldest listed to the newest, its ends named (``v1 ▁▅█ v3``) and its
    range given (the bars' scale is `units.sparkline`'s, not the range's)."""

    DEFAULT_CSS = """
    VersionHeading { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.listed = 0
        self.total = 0
        self.key: str | None = None
        self.points: list[tuple[str, float]] = []
        """(version name, value) of the key metric, oldest first."""

    def show(
        self, listed: int, total: int, key: str | None, points: list[tuple[str, float]]
    ) -> None:
        self.listed, self.total, self.key, self.points = listed, total, key, points
        self.refresh()

    def render(self) -> Text:
        if not self.listed:
            return Text("versions · none yet: a full run that passes registers one", end="")
        text = Text(f"{self.total} version{'s' * (self.total != 1)}", end="")
        if self.total > self.listed:
            text.append(f" (newest {self.listed} listed)")
        points = self.points
        if self.key is None or len(points) < 2:
            return text
        values = [value for _, value in points]
        first, last = points[0][0], points[-1][0]
        low, high = metric_text(min(values)), metric_text(max(values))
        span = low if low == high else f"{low}–{high}"
        width = self.size.width
        label = plain(f" · {self.key} {first} ")
        for ends in (f" {last} · {span}", f" {last}", ""):
            room = width - text.cell_len - label.cell_len - len(ends)
            bars = min(len(values), TREND_WIDTH, room)
            if bars >= min(len(values), 3):
                text.append_text(label)
                text.append(sparkline(values, bars), style="bold")
                text.append(ends)
                break
        return text


class VersionPanel(Vertical):
    """The version table under a line with the key metric's trend."""

    DEFAULT_CSS = """
    VersionPanel { height: auto; max-height: 12; }
    VersionPanel VersionTable { height: auto; max-height: 10; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.table = VersionTable(id="versions")
        self.heading = VersionHeading(id="version-heading")
        self._shown: tuple[object, ...] | None = None

    def on_version_table_filtered(self, message: VersionTable.Filtered) -> None:
        self.border_title = filter_title("model versions", message.text)
        self.border_subtitle = filter_hint(message.text)

    def compose(self) -> ComposeResult:
        yield self.heading
        yield self.table

    def show(
        self,
        versions: Sequence[VersionRecord],
        metrics: Sequence[MetricKey],
        total: int,
        default: int | None,
    ) -> None:
        shown = (tuple(versions), tuple(metrics), total, default)
        if shown == self._shown:
            return  # every change below costs a layout pass
        self._shown = shown
        self.table.show(versions, metrics, default)
        key = metrics[0] if metrics else None
        # Oldest first, as a trend reads; the table lists the newest first.
        points = [
            (v.name, v.metrics[key])
            for v in reversed(versions[:TREND_WIDTH])
            if key is not None and key in v.metrics
        ]
        named = labels(metrics)[key] if key is not None else None
        self.heading.show(len(versions), total, named, points)


def _description(version: VersionRecord) -> str:
    """DESCRIPTION's text: a version promoted from an experiment says so first, as
    `mlci versions` does (its deploy's reason names the experiment only while it is the
    latest word on the version)."""
    description = version.description or ""
    if version.experiment_id is None:
        return description
    origin = version.made_by
    return f"{origin} · {description}" if description else origin
