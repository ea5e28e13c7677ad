"""HelpScreen: every key of the dashboard, by pane, read from the bindings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mlci_tui.tui.keys import key_text

KEY_COLUMN = 16
_CLOSE = Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help.close")


class HelpScreen(ModalScreen[None]):
    """``groups``: a title and the bindings of each pane, as `MlciApp.key_groups` gives."""

    BINDINGS: ClassVar[list[BindingType]] = [_CLOSE]
    DASHBOARD_KEYS = False
    """Keys under the help act on nothing but it (`MlciApp.check_action`)."""
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    HelpScreen .help--title { text-style: bold; }
    HelpScreen .help--group { text-style: bold; color: $accent; margin-top: 1; }
    HelpScreen .help--close { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, groups: Sequence[tuple[str, Sequence[Binding]]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        close = key_text(self.app, _CLOSE)
        with VerticalScroll():
            yield Static(Text("Keys"), classes="help--title")
            for title, bindings in self.groups:
                yield Static(Text(title), classes="help--group")
                yield Static(self._rows(bindings))
            yield Static(Text(f"{close}: close  ·  ↑ ↓ pgup pgdn: scroll"), classes="help--close")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def _rows(self, bindings: Sequence[Binding]) -> Table:
        """Keys in one column, what they do in the next: a description that wraps
        goes on under itself, not under the keys."""
        rows = Table.grid(padding=(0, 1, 0, 0))
        rows.add_column(min_width=KEY_COLUMN - 1, style="bold", no_wrap=True)
        rows.add_column(ratio=1)
        for binding in bindings:
            what = Text(binding.description)
            if binding.tooltip:
                what.append(f": {binding.tooltip}", style="dim")
            rows.add_row(key_text(self.app, binding), what)
        return rows
