"""ConfirmScreen: a yes/no question over the dashboard; ``y``/Enter or ``n``/Esc."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mlci_tui.tui.keys import hints

_YES = Binding("y,enter", "answer(True)", "Yes", id="confirm.yes")
_NO = Binding("n,escape", "answer(False)", "No", id="confirm.no")
MAX_HEIGHT = 28
"""The dialog's height at most, however tall the screen."""
AROUND_BODY = 6
"""The lines of the dialog that are not its body: borders, the title, the keys, and
the blank line after the title and before the keys."""


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [_YES, _NO]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 90%;
        max-width: 84;
        height: auto;
        border: round $warning;
        background: $surface;
        padding: 0 1;
    }
    ConfirmScreen .confirm--title { text-style: bold; margin-bottom: 1; }
    ConfirmScreen .confirm--body { height: auto; }
    /* Textual adds a horizontal scrollbar's height to a stable gutter's auto height:
       the body never scrolls sideways, so it has none. */
    ConfirmScreen .confirm--body.-headed {
        scrollbar-gutter: stable; scrollbar-size-horizontal: 0;
    }
    ConfirmScreen .confirm--keys { margin-top: 1; color: $text-muted; }
    """

    def __init__(
        self,
        title: str,
        body: RenderableType,
        yes: str = "yes",
        no: str = "cancel",
        header: RenderableType | None = None,
    ) -> None:
        """``header`` (one line: the heads of the body's columns) stays above the body
        when it scrolls, as wide as the body beside its scrollbar."""
        super().__init__()
        self.title_text = title
        self.body = body
        self.header = header
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text), classes="confirm--title")
            body = VerticalScroll(classes="confirm--body")
            if self.header is not None:
                header = Static(self.header, classes="confirm--header")
                # The body keeps room for its scrollbar, and the header as much, so
                # that their columns line up whether the body scrolls or not.
                body.add_class("-headed")
                header.styles.height = 1
                header.styles.padding = (0, body.styles.scrollbar_size_vertical, 0, 0)
                yield header
            with body:
                yield Static(self.body)
            keys = hints(self.app, [(_YES, self.yes), (_NO, self.no)])
            yield Static(Text(keys), classes="confirm--keys")

    def on_resize(self, event: events.Resize) -> None:
        # The body scrolls between the title and the keys: on a short screen both stay
        # in sight, and what does not fit is a scroll away.
        height = min(MAX_HEIGHT, event.size.height) - AROUND_BODY
        height -= self.header is not None
        self.query_one(".confirm--body").styles.max_height = max(1, height)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
