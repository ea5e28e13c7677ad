"""AlertsScreen: every alert, newest first, and acknowledging them.

The screen only asks: ``acknowledge`` (the app's, which starts ``mlci alerts
--ack``, as it starts every change) is called with the ids to acknowledge, and
says whether it could start that. Enter acknowledges the highlighted alert and
the dialog stays open on the next new one, so several are acknowledged in one
visit; ``A`` acknowledges every new one and closes it. Without ``acknowledge``
(a read-only dashboard) the alerts are only read: neither key is offered.
"""

from __future__ import annotations

from collections.abc import Callable
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

_SEEN, _NEW = "seen", "NEW"
"""The state column's words: an alert acknowledged, or not yet."""

Acknowledge = Callable[[list[int]], bool]
"""Acknowledges the alerts of these ids; False if that could not be started."""


class AlertsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [_ALL, _CLOSE]
    ACTING: ClassVar[frozenset[str]] = frozenset({"acknowledge_all"})
    """The actions that change something: offered only with ``acknowledge`` (as is
    Enter's, which is the table's own)."""
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

    def __init__(self, alerts: list[AlertRecord], acknowledge: Acknowledge | None) -> None:
        super().__init__()
        self.alerts = alerts
        self.acknowledge = acknowledge
        self.acknowledged = {alert.id for alert in alerts if alert.acknowledged_at is not None}
        """Ids acknowledged, before the dialog opened or in it."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title(), id="alerts-title", classes="alerts--keys")
            yield DataTable(cursor_type="row", zebra_stripes=True)
            # The highlighted alert's whole message: the table's column cuts it.
            yield Static(id="alert-message")
            acting = [(_ONE, "acknowledge this one"), (_ALL, "acknowledge all and close")]
            pairs = [*(acting if self.acknowledge else []), (_CLOSE, "close")]
            yield Static(Text(hints(self.app, pairs)), classes="alerts--keys")

    def _title(self) -> Text:
        if not self.alerts:
            return Text("No alerts", style="bold")
        unseen = len(self.alerts) - len(self.acknowledged)
        return Text(f"Alerts, newest first · {unseen} not acknowledged", style="bold")

    @staticmethod
    def _state(seen: bool) -> Text:
        # A word, not only a colour: it must read the same without colour.
        return Text(_SEEN if seen else _NEW, style="" if seen else "bold")

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        # As wide as the longer word: a column fits what it first holds, and every
        # alert may be new when the dialog opens.
        table.add_column("", key="state", width=max(len(_SEEN), len(_NEW)))
        table.add_columns("WHEN", "KIND", "VERSION", "MESSAGE")
        for alert in self.alerts:
            table.add_row(
                self._state(alert.id in self.acknowledged),
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.acknowledge is not None or action not in self.ACTING

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter (and a click) on a row: the table's own binding, which takes the key.
        event.stop()
        row = event.cursor_row
        if self.acknowledge is None or not 0 <= row < len(self.alerts):
            return
        alert = self.alerts[row]
        if alert.id in self.acknowledged or not self.acknowledge([alert.id]):
            return
        self.acknowledged.add(alert.id)
        table: DataTable[Text] = self.query_one(DataTable)
        table.update_cell(str(alert.id), "state", self._state(True))
        self.query_one("#alerts-title", Static).update(self._title())
        # On to the next new one below, so that Enter again acknowledges it.
        later = [i for i in range(row + 1, len(self.alerts)) if self._new(i)]
        if later:
            table.move_cursor(row=later[0])

    def _new(self, row: int) -> bool:
        return self.alerts[row].id not in self.acknowledged

    def action_acknowledge_all(self) -> None:
        new = [alert.id for alert in self.alerts if alert.id not in self.acknowledged]
        # check_action offers this only with `acknowledge`.
        if not new or (self.acknowledge is not None and self.acknowledge(new)):
            self.dismiss(None)
