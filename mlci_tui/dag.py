"""The stage graph: order and cycles, as pure functions over names.

`graphlib` does the graph work; what is ours is the order among stages that
could run in either order (as written in the config) and how a cycle reads
(from the stage written first, each needing the next).
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Mapping, Sequence


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]`` where each needs the next, starting at the stage
    written first, or ``None``."""
    try:
        _sorter(needs).prepare()
    except graphlib.CycleError as error:
        # graphlib lists each node before a node that needs it: read it backwards.
        cycle: list[str] = list(reversed(error.args[1]))[:-1]
        position = {name: index for index, name in enumerate(needs)}
        start = min(range(len(cycle)), key=lambda index: position[cycle[index]])
        cycle = cycle[start:] + cycle[:start]
        return [*cycle, cycle[0]]
    return None


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Stages so that each comes after what it needs, otherwise in mapping order.

    The graph must be acyclic (check with `find_cycle` first).
    """
    position = {name: index for index, name in enumerate(needs)}
    sorter = _sorter(needs)
    sorter.prepare()
    ready: list[tuple[int, str]] = []
    order: list[str] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, (position[name], name))
        _, name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
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


def _sorter(needs: Mapping[str, Sequence[str]]) -> graphlib.TopologicalSorter[str]:
    """Each stage after what it needs; names that are not stages are left out."""
    return graphlib.TopologicalSorter(
        {name: [need for need in deps if need in needs] for name, deps in needs.items()}
    )
