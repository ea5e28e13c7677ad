"""VersionTable: model versions newest first, with a trend of the key metric."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Sparkline

from mlci_tui.metric_keys import MetricKey, labels
from mlci_tui.store.records import VersionRecord
from mlci_tui.tui.text import metric_cell, plain, state_text
from mlci_tui.units import position

MARKER = "\u203a"
"""Beside the highlighted row: the highlight must show without colour too."""


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
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.versions: list[VersionRecord] = []
        self.metrics: list[MetricKey] = []
        self.default: int | None = None
        """The version the highlight rests on until someone moves it: the one
        `mlci rollback` would pick, else the live one."""
        self.picked: int | None = None
        """The version someone put the highlight on; None: it follows `default`."""
        self._marked: str | None = None

    def show(
        self, versions: Sequence[VersionRecord], metrics: Sequence[MetricKey], default: int | None
    ) -> None:
        """Replace the rows. The highlight stays on the version picked, or, when none
        was (or it is gone), moves to ``default`` as the table changes under it: it
        never rests on a row only because that row was there first."""
        if (list(versions), list(metrics), default) == (self.versions, self.metrics, self.default):
            return
        self.versions, self.metrics, self.default = list(versions), list(metrics), default
        self.clear(columns=True)
        self._marked = None
        self.add_column(" ", key="marker")
        self.add_column("VERSION", key="version")
        self.add_column("CREATED", key="created")
        self.add_column("STATUS", key="status")
        shown = labels(metrics)
        for key in metrics:
            header = Text(shown[key].upper()[:12], justify="right")
            self.add_column(header, key=f"metric:{key.text}")
        self.add_column("LIVE", key="live")
        self.add_column("DESCRIPTION", key="description")
        for version in versions:
            created = time.strftime("%m-%d %H:%M", time.localtime(version.created_at))
            description = version.description or ""
            if version.pruned_at is not None:
                description = f"{description} (pruned)".strip()
            cells = [
                Text(" "),
                Text(version.name, style="bold"),
                Text(created),
                state_text(version.status),
                *(metric_cell(version.metrics.get(key)) for key in metrics),
                plain(version.live_text(metrics)),
                plain(description),
            ]
            self.add_row(*cells, key=str(version.number))
        if self.picked is None or not self._move_to(self.picked):
            self.follow_default()
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


class VersionPanel(Vertical):
    """The version table under a title line with the key metric's trend."""

    DEFAULT_CSS = """
    VersionPanel { height: auto; max-height: 12; }
    VersionPanel > #version-title { height: 1; width: 1fr; }
    VersionPanel #version-heading { width: auto; padding: 0 1; color: $text-muted; }
    VersionPanel Sparkline { height: 1; margin: 0 1; }
    VersionPanel VersionTable { height: auto; max-height: 10; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.table = VersionTable(id="versions")
        self.heading = Label("versions", id="version-heading")
        self.trend: Sparkline = Sparkline([], id="trend")
        self._shown: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="version-title"):
            yield self.heading
            yield self.trend
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
        trend = [v.metrics[key] for v in reversed(versions[:60]) if key and key in v.metrics]
        sparkline = self.trend
        # Where each lies between the lowest and highest: the Sparkline divides by
        # their difference, which overflows for -1.7e308 and 1.7e308.
        low, high = min(trend, default=0.0), max(trend, default=0.0)
        sparkline.data = [position(value, low, high) for value in trend]
        sparkline.display = len(trend) >= 2
        # A cell per version: stretched over the whole width, two points look like ten.
        sparkline.styles.width = min(60, max(2, len(trend)))
        newest = f" (newest {len(versions)} of {total})" if total > len(versions) else ""
        named = labels(metrics)[key] if key else ""
        heading = f"versions{newest}" + (f" · {named} trend" if key and len(trend) >= 2 else "")
        if not versions:
            heading = "versions · none yet: a full run that passes registers one"
        self.heading.update(Text(heading))
