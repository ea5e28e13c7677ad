"""DecisionScreen: answer the monitor's question — roll back, or dismiss."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from mlci_tui.store.records import DecisionRecord
from mlci_tui.tui.keys import hints
from mlci_tui.tui.text import plain

_ROLLBACK = Binding("y", "answer('rollback')", "Roll back", id="decision.rollback")
_DISMISS = Binding("d", "answer('dismiss')", "Dismiss", id="decision.dismiss")
_LATER = Binding("escape,n", "answer(None)", "Later", id="decision.later")


class DecisionScreen(ModalScreen[str | None]):
    """Dismissed with ``"rollback"``, ``"dismiss"`` or None (decide later)."""

    BINDINGS: ClassVar[list[BindingType]] = [_ROLLBACK, _DISMISS, _LATER]
    DEFAULT_CSS = """
    DecisionScreen { align: center middle; }
    DecisionScreen > Vertical {
        width: 80%; max-width: 90; height: auto;
        border: thick $error; background: $surface; padding: 0 1;
    }
    DecisionScreen .decision--keys { margin-top: 1; color: $text-muted; }
    """

    def __init__(self, decision: DecisionRecord) -> None:
        super().__init__()
        self.decision = decision

    def compose(self) -> ComposeResult:
        decision = self.decision
        body = Text(end="")
        body.append(f"v{decision.version} failed its analysis:\n", style="bold")
        body.append_text(plain(decision.finding))
        pairs = [(_DISMISS, "dismiss"), (_LATER, "later")]
        if decision.target:
            pairs.insert(0, (_ROLLBACK, f"roll back to v{decision.target}"))
        keys = hints(self.app, pairs)
        with Vertical():
            yield Static(Text("The monitor asks for a decision", style="bold"))
            yield Static(body)
            yield Static(Text(keys), classes="decision--keys")

    def action_answer(self, answer: str | None) -> None:
        if answer == "rollback" and not self.decision.target:
            return
        self.dismiss(answer)
