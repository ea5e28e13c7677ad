"""HelpScreen: every key, from `KEYS`, a list kept by hand beside the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("r", "start a run (it goes on after you quit)"),
    ("c", "cancel the running run (asks first)"),
    ("v", "focus the version table"),
    ("R", "roll back to the highlighted version (asks first)"),
    ("a", "answer the monitor's pending decision"),
    ("p", "pick a past run to read its logs"),
    ("/", "search the log; n / N: next / previous match"),
    ("f", "follow the log's newest line on or off"),
    ("tab", "next pane: stages, log, versions"),
    ("↑ ↓", "move in the focused pane"),
    ("?", "this help"),
    ("q", "quit (a run in progress goes on)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: auto; max-width: 80; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with VerticalScroll():
            yield Static(Text("Keys", style="bold"))
            yield Static(table)
            yield Static(Text("Esc: close", style="dim"))
