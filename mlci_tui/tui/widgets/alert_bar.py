"""AlertBar: the newest alert nobody has acknowledged, or a rollback waiting for a
decision (and, where the dashboard answers it, the key that does). Acknowledging
every alert (``A``) clears it."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

from mlci_tui.store.reader import Snapshot
from mlci_tui.store.records import AlertRecord
from mlci_tui.tui.text import plain


class AlertBar(Widget):
    DEFAULT_CSS = """
    AlertBar {
        height: 1;
        padding: 0 1;
        background: $warning 20%;
        display: none;
    }
    AlertBar.-decision { background: $error 30%; }
    AlertBar.-shown { display: block; }
    """

    def __init__(self, *, answers: bool = True, id: str | None = None) -> None:
        """``answers``: whether the dashboard answers a decision (`a`): not read-only."""
        super().__init__(id=id)
        self.answers = answers
        self.snapshot = Snapshot()

    def show(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.set_class(bool(snapshot.decisions or self._unseen()), "-shown")
        self.set_class(bool(snapshot.decisions), "-decision")
        self.refresh()

    def _unseen(self) -> list[AlertRecord]:
        """The alerts nobody has acknowledged, newest first."""
        return [alert for alert in self.snapshot.alerts if alert.acknowledged_at is None]

    def render(self) -> Text:
        snapshot = self.snapshot
        text = Text(end="")
        if snapshot.decisions:
            decision = snapshot.decisions[0]
            text.append("decision needed: ", style="bold")
            text.append_text(plain(f"v{decision.version} failed its analysis: {decision.finding}"))
            target = f"roll back to v{decision.target}?" if decision.target else "no target"
            if self.answers:
                text.append(f" — {target} ", style="bold")
                text.append("press a", style="reverse")
            else:
                text.append(f" — {target}", style="bold")
        elif unseen := self._unseen():
            alert = unseen[0]
            when = time.strftime("%H:%M:%S", time.localtime(alert.created_at))
            text.append(f"{when} {alert.kind}: ", style="bold")
            text.append_text(plain(alert.message))
            more = f" (+{len(unseen) - 1} more)" if len(unseen) > 1 else ""
            text.append(f"{more} — ", style="bold")
            text.append("A: alerts", style="reverse")
        text.truncate(max(1, self.size.width), overflow="ellipsis")
        return text
