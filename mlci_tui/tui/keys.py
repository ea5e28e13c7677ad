"""The keys of the dashboard's panes and modals, read from their ``BINDINGS``.

Bindings are the one list of keys: the footer shows them, and the help screen
and the key hints of the modals are built from them here, so no list of keys
is kept by hand beside them.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode


def bindings_of(cls: type[DOMNode]) -> list[Binding]:
    """Every binding of ``cls`` and its bases that has a description, the most
    derived first; a key a subclass binds again is left out of its base's."""
    seen: set[str] = set()
    found: list[Binding] = []
    for klass in cls.__mro__:
        for binding in _declared(klass.__dict__.get("BINDINGS", ())):
            keys = [key for key in _keys(binding) if key not in seen]
            seen.update(_keys(binding))
            if keys and binding.description:
                found.append(binding if len(keys) == len(_keys(binding)) else _only(binding, keys))
    return found


def key_text(app: App[object], binding: Binding) -> str:
    """The binding's keys as the footer shows them: ``y / ⏎``."""
    return " / ".join(app.get_key_display(_only(binding, [key])) for key in _keys(binding))


def _declared(bindings: Iterable[BindingType]) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in bindings]


def _keys(binding: Binding) -> list[str]:
    return [key.strip() for key in binding.key.split(",") if key.strip()]


def _only(binding: Binding, keys: list[str]) -> Binding:
    return Binding(
        ",".join(keys),
        binding.action,
        binding.description,
        show=binding.show,
        key_display=binding.key_display,
        priority=binding.priority,
        id=binding.id,
    )
