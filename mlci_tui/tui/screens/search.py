"""SearchScreen: a line of text at the bottom — what to find in the log, or what
to keep of a list (the stages, the runs, the versions) as it is typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input

from mlci_tui.textsafe import terminal_line


class SearchScreen(ModalScreen[str]):
    """Answers the text on Enter, and "" on Esc: Esc ends the search (or filter)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss('')", "Clear", id="search.cancel"),
    ]
    DEFAULT_CSS = """
    SearchScreen { align: center bottom; background: transparent; }
    SearchScreen Input { width: 100%; border: tall $accent; }
    """

    def __init__(
        self,
        previous: str,
        placeholder: str = "search the log (Enter to find, Esc to clear)",
        changed: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.previous = previous
        self.placeholder = placeholder
        self.changed = changed
        """Called with the text as it is typed: a filter narrows its list at once."""

    def compose(self) -> ComposeResult:
        yield Input(value=self.previous, placeholder=self.placeholder)

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.changed is not None:
            self.changed(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


def open_filter(app: App[Any], what: str, current: str, apply: Callable[[str], None]) -> None:
    """``/`` on a list: a filter that narrows it as it is typed; Enter keeps it, Esc
    clears it."""

    def done(text: str | None) -> None:
        apply(text or "")

    placeholder = f"filter the {what} (Enter keeps it, Esc clears it)"
    app.push_screen(SearchScreen(current, placeholder, changed=apply), done)


def filter_title(title: str, text: str) -> Content:
    """A list's title, saying when a filter is on: ``stages · filter /tr``."""
    if not text:
        return Content(title)
    return Content(f"{title} · filter /{terminal_line(text, keep_color=False)}")


def filter_hint(text: str) -> str:
    """Under a filtered list: how to see all of it again."""
    return "Esc clears the filter" if text else ""
