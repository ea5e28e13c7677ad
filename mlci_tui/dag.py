"""The stage graph: order and cycles, as pure functions over names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]``, or ``None``; stages are visited in mapping order."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for need in needs.get(name, ()):
            if state.get(need) == 1:
                return [*path[path.index(need) :], need]
            if need in needs and need not in state:
                found = visit(need)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in needs:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Stages so that each comes after what it needs, otherwise in mapping order.

    The graph must be acyclic (check with `find_cycle` first).
    """
    position = {name: index for index, name in enumerate(needs)}
    remaining = {name: {n for n in deps if n in needs} for name, deps in needs.items()}
    order: list[str] = []
    while remaining:
        ready = min((n for n, deps in remaining.items() if not deps), key=position.__getitem__)
        order.append(ready)
        del remaining[ready]
        for deps in remaining.values():
            deps.discard(ready)
    return order


def upstream(needs: Mapping[str, Sequence[str]], targets: Sequence[str]) -> set[str]:
    """``targets`` and everything they need, transitively."""
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(needs.get(name, ()))
    return seen
