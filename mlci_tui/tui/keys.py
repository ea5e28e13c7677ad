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
            if binding.description:
                found += without([binding], seen)
            seen.update(keys_of(binding))
        if not klass.__dict__.get("_inherit_bindings", True):
            break  # declared with inherit_bindings=False: its bases' keys do not apply
    return found


def binding_for(cls: type[DOMNode], action: str) -> Binding:
    """``cls``'s own binding of ``action`` (a table's key that picks a row, say)."""
    return next(b for b in bindings_of(cls) if b.action == action)


def without(bindings: Iterable[Binding], keys: Iterable[str]) -> list[Binding]:
    """``bindings`` with ``keys`` taken out (a binding left with none is dropped)."""
    taken = set(keys)
    left: list[Binding] = []
    for binding in bindings:
        own = keys_of(binding)
        kept = [key for key in own if key not in taken]
        if kept:
            left.append(binding if kept == own else _only(binding, kept))
    return left


def key_text(app: App[object], binding: Binding) -> str:
    """The binding's keys as the footer shows them: ``y / ⏎``."""
    return " / ".join(app.get_key_display(_only(binding, [key])) for key in keys_of(binding))


def hints(app: App[object], pairs: Iterable[tuple[Binding, str]]) -> str:
    """A modal's line of keys: ``y / Enter: roll back to v2 · n / Esc: cancel``."""
    return " · ".join(f"{key_text(app, binding)}: {what}" for binding, what in pairs)


def _declared(bindings: Iterable[BindingType]) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in bindings]


def keys_of(binding: Binding) -> list[str]:
    return [key.strip() for key in binding.key.split(",") if key.strip()]


def _only(binding: Binding, keys: list[str]) -> Binding:
    return Binding(
        ",".join(keys),
        binding.action,
        binding.description,
        show=binding.show,
        key_display=binding.key_display,
        priority=binding.priority,
        tooltip=binding.tooltip,
        id=binding.id,
    )
