"""AlertsScreen: every alert, newest first, and acknowledging them.

The screen only asks: it is dismissed with the ids to acknowledge (the app
starts ``mlci alerts --ack`` for them, as it starts every change), or None.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from mlci_tui.store.records import AlertRecord
from mlci_tui.tui.keys import binding_for, hints
from mlci_tui.tui.text import plain
from mlci_tui.units import local_time

_ALL = Binding("A", "acknowledge_all", "Acknowledge all", id="alerts.all")
_CLOSE = Binding("escape", "dismiss(None)", "Close", id="alerts.close")
_ONE = binding_for(DataTable, "select_cursor")
"""The table's own key that picks a row: it acknowledges that alert."""


class AlertsScreen(ModalScreen[list[int] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [_ALL, _CLOSE]
    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen > Vertical {
        width: 95%; max-width: 140; height: 80%;
        border: thick $warning; background: $surface;
    }
    AlertsScreen DataTable { height: 1fr; }
    AlertsScreen .alerts--keys { color: $text-muted; padding: 0 1; }
    AlertsScreen #alert-message { height: auto; max-height: 4; padding: 0 1; }
    """

    def __init__(self, alerts: list[AlertRecord]) -> None:
        super().__init__()
        self.alerts = alerts

    def compose(self) -> ComposeResult:
        unseen = sum(alert.acknowledged_at is None for alert in self.alerts)
        title = f"Alerts, newest first · {unseen} not acknowledged" if self.alerts else "No alerts"
        with Vertical():
            yield Static(Text(title, style="bold"), classes="alerts--keys")
            yield DataTable(cursor_type="row", zebra_stripes=True)
            # The highlighted alert's whole message: the table's column cuts it.
            yield Static(id="alert-message")
            pairs = [(_ONE, "acknowledge this one"), (_ALL, "acknowledge all"), (_CLOSE, "close")]
            yield Static(Text(hints(self.app, pairs)), classes="alerts--keys")

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        table.add_columns("", "WHEN", "KIND", "VERSION", "MESSAGE")
        for alert in self.alerts:
            seen = alert.acknowledged_at is not None
            table.add_row(
                # A word, not only a colour: it must read the same without colour.
                Text("seen" if seen else "NEW", style="" if seen else "bold"),
                Text(local_time(alert.created_at)),
                plain(alert.kind),
                Text("-" if alert.version is None else f"v{alert.version}"),
                plain(alert.message),
                key=str(alert.id),
            )
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.alerts):
            message = self.alerts[event.cursor_row].message
            self.query_one("#alert-message", Static).update(plain(message))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter (and a click) on a row: the table's own binding, which takes the key.
        event.stop()
        if 0 <= event.cursor_row < len(self.alerts):
            alert = self.alerts[event.cursor_row]
            self.dismiss([alert.id] if alert.acknowledged_at is None else [])

    def action_acknowledge_all(self) -> None:
        self.dismiss([alert.id for alert in self.alerts if alert.acknowledged_at is None])
