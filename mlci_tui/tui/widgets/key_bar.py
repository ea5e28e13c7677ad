"""KeyBar: the keys the screen offers now, on the bottom line.

It shows what Textual's compact `Footer` shows (each action's first key and
its description, keys that cannot act now dimmed, a click presses the key)
as one line of text; a key that would be cut off at the edge is left out, but
the last two (help, then quit or close) stay, keys before them giving way.
The `Footer` builds a widget per key and builds them all again at every
change of the bindings, which is every change of focus: 150 ms here, a third
of the dashboard's first frame and most of what `v` or Tab cost.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

_ENABLED = Style()
_DISABLED = Style(dim=True)
LAST_KEPT = 2
"""How many of the last keys (help, then quit or close) a short line keeps."""


class _Key(NamedTuple):
    key: str
    start: int
    end: int
    enabled: bool


class KeyBar(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key", "key-bar--description"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[_Key] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        gap = self.rich_style
        entries: list[tuple[str, str, str, bool]] = []
        shown: set[str] = set()
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if not binding.show or binding.action in shown:
                continue
            shown.add(binding.action)
            display = self.app.get_key_display(binding)
            description = f" {binding.description}" if binding.description else ""
            entries.append((binding.key, display, description, enabled))
        # The last keys (help, then quit or close) stay when the line is short: the
        # keys before them are left out from the end instead.
        width = self.size.width
        cells = [
            cell_len(display) + cell_len(description) + 1 for _, display, description, _ in entries
        ]
        kept = entries[-LAST_KEPT:]
        room = width - sum(cells[-LAST_KEPT:]) + 1
        chosen: list[tuple[str, str, str, bool]] = []
        for entry, size in zip(entries[:-LAST_KEPT], cells, strict=False):
            if size > room:
                break  # a key cut off is no help; `?` lists them all
            chosen.append(entry)
            room -= size
        line = Text(no_wrap=True, overflow="crop")
        keys: list[_Key] = []
        for key, display, description, enabled in [*chosen, *kept]:
            start = line.cell_len
            if start + cell_len(display) + cell_len(description) > width:
                break
            dim = _ENABLED if enabled else _DISABLED
            line.append(display, key_style + dim)
            line.append(description, description_style + dim)
            keys.append(_Key(key, start, line.cell_len, enabled))
            line.append(" ", gap)
        self._keys = keys
        return line

    def on_click(self, event: events.Click) -> None:
        for key in self._keys:
            if key.start <= event.x < key.end:
                if key.enabled:
                    self.app.simulate_key(key.key)
                else:
                    self.app.bell()
                return
