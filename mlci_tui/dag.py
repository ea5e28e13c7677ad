"""The stage graph: its edges, order and cycles, as pure functions (no I/O).

A stage needs those its config names in ``needs``, and those whose outs it can
read (`reads`), as DVC orders stages: a dep that is an out, lies inside one, or
holds one, and a glob that covers or may cover one. `graphlib` does the graph
work; what is ours is the order among stages that could run in either order (as
written in the config) and how a cycle reads (from the stage written first, each
needing the next).
"""

from __future__ import annotations

import bisect
import graphlib
import heapq
import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import NamedTuple

from mlci_tui.globs import Glob, may_cover


class Read(NamedTuple):
    """One way a stage reads another's out: its dep (by index in its deps) and the out."""

    dep: int
    out: PurePath


def reads(
    deps: Mapping[str, Sequence[PurePath | Glob]], outs: Mapping[str, Sequence[PurePath]]
) -> dict[str, dict[str, list[Read]]]:
    """For each stage, the other stages whose outs one of its deps can read, in the
    order of ``outs``, with how. Paths are absolute and normalised.

    A plain dep reads an out it equals, lies inside, or holds (then it is a
    directory). A glob reads an out that holds its base, and an out under its base
    that the pattern covers or may cover: taken as a directory whatever it is, since
    what an out is is only known once it is made (so ``data/**/*.csv`` reads the out
    ``data/model.pkl``, while ``data/*.csv`` does not).
    """
    writers: dict[str, tuple[str, PurePath]] = {}
    for name, written in outs.items():
        for out in written:
            writers.setdefault(str(out), (name, out))
    ordered = sorted(writers)
    position = {name: index for index, name in enumerate(outs)}
    found: dict[str, dict[str, list[Read]]] = {}
    for reader, read in deps.items():
        seen: dict[str, list[Read]] = {}
        for index, dep in enumerate(read):
            base = dep.base if isinstance(dep, Glob) else dep
            # Outs that hold the dep (or the glob's base), then outs under it.
            holding = [str(base), *(str(parent) for parent in base.parents)]
            candidates = [writers[path] for path in holding if path in writers]
            prefix = os.path.join(str(base), "")
            at = bisect.bisect_left(ordered, prefix)
            while at < len(ordered) and ordered[at].startswith(prefix):
                path = ordered[at]
                at += 1
                inside = path[len(prefix) :].split(os.sep)
                if not isinstance(dep, Glob) or may_cover(dep.pattern, inside):
                    candidates.append(writers[path])
            for writer, out in candidates:
                if writer != reader:
                    seen.setdefault(writer, []).append(Read(index, out))
        if seen:
            found[reader] = {w: seen[w] for w in sorted(seen, key=lambda w: position[w])}
    return found


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


def layers(needs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each stage's layer: 0 for one that needs nothing, else one more than the
    highest of those it needs (so a layer's stages may run side by side). Acyclic."""
    found: dict[str, int] = {}
    for name in topological_order(needs):
        found[name] = 1 + max((found[n] for n in needs[name] if n in found), default=-1)
    return found


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
