"""SearchScreen: the text to find in the log."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Input


class SearchScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="search.cancel"),
    ]
    DEFAULT_CSS = """
    SearchScreen { align: center bottom; background: transparent; }
    SearchScreen Input { width: 100%; border: tall $accent; }
    """

    def __init__(self, previous: str) -> None:
        super().__init__()
        self.previous = previous

    def compose(self) -> ComposeResult:
        yield Input(value=self.previous, placeholder="search the log (Enter to find)")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
