"""GraphScreen: which stage needs which (`Config.incoming`, as `mlci dag` draws it),
with each stage's state in the run shown, as the stage pane shows it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.screen import ModalScreen
from textual.widgets import Static

from mlci_tui.config import Config
from mlci_tui.states import StageState
from mlci_tui.tui.keys import key_text
from mlci_tui.tui.text import GLYPHS, STATE_STYLES, plain

ARROW = "◀── "
REFRESH_S = 0.5
"""How often the states are read again from the app's latest snapshot."""
NOT_IN_RUN = "not in this run"
_CLOSE = Binding("escape,D", "dismiss(None)", "Close", id="graph.close")

States = Callable[[], tuple[str, Mapping[str, StageState | None]]]
"""What the run shown is called, and each stage's state in it (None: it has no such stage)."""


class GraphScreen(ModalScreen[None]):
    """The stages by layer, each with its state and the stages it runs after."""

    BINDINGS: ClassVar[list[BindingType]] = [_CLOSE]
    DEFAULT_CSS = """
    GraphScreen { align: center middle; }
    GraphScreen > ScrollableContainer {
        width: auto; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
        scrollbar-size-vertical: 1; scrollbar-size-horizontal: 1;
    }
    GraphScreen #graph-body { width: auto; }
    GraphScreen .graph--title { text-style: bold; width: auto; }
    GraphScreen .graph--close { color: $text-muted; width: auto; }
    """

    def __init__(self, config: Config, states: States, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.config = config
        self.states = states
        # A path in a reason may hold a secret's value: masked as `mlci dag` masks it.
        self.rows = {
            name: [(mask(source), mask(why)) for source, why in rows]
            for name, rows in config.incoming().items()
        }
        self.stage_layers = config.layers

    def compose(self) -> ComposeResult:
        with ScrollableContainer():
            yield Static(id="graph-title", classes="graph--title")
            yield Static(id="graph-body")
            close = key_text(self.app, _CLOSE)
            yield Static(
                Text(f"\n{close}: close  ·  ↑ ↓ ← → pgup pgdn: scroll"), classes="graph--close"
            )

    def on_mount(self) -> None:
        self.query_one(ScrollableContainer).focus()
        self.show()
        self.set_interval(REFRESH_S, self.show)

    def show(self) -> None:
        """Draw the graph with the states of the run shown now."""
        run, states = self.states()
        title = Text("Stages and what each runs after · ")
        title.append_text(plain(run))
        self.query_one("#graph-title", Static).update(title)
        self.query_one("#graph-body", Static).update(self.body(states))

    def body(self, states: Mapping[str, StageState | None]) -> Text:
        number = len(str(max(self.stage_layers.values()) + 1))
        shown = [states.get(name) for name in self.stage_layers]
        word_width = max(
            len(NOT_IN_RUN if name not in states else (state or StageState.PENDING).text)
            for name, state in zip(self.stage_layers, shown, strict=True)
        )
        name_width = max(len(name) for name in self.stage_layers)
        sources = [source for rows in self.rows.values() for source, _ in rows]
        source_width = max(map(len, sources), default=0)
        text = Text(end="")
        for name in self.stage_layers:
            in_run = name in states
            state = states.get(name) or StageState.PENDING
            style = STATE_STYLES.get(state, "") if in_run else "italic"
            word = state.text if in_run else NOT_IN_RUN
            text.append("\n")
            text.append(f"{self.stage_layers[name] + 1:>{number}} ", style="dim")
            text.append(f"{GLYPHS[state]} ", style=style)
            text.append(word.ljust(word_width + 1), style=style)
            text.append_text(plain(name.ljust(name_width + 1)))
            head = number + word_width + name_width + 5
            for index, (source, why) in enumerate(self.rows[name]):
                if index:
                    text.append("\n" + " " * head)
                text.append(ARROW, style="bold")
                text.append_text(plain(source.ljust(source_width + 1)))
                reason = plain(why)
                reason.stylize("dim")
                text.append_text(reason)
        return text
