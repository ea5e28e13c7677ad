"""`mlci dag`: the stages and their edges, each with where it comes from (a name in
``needs``, or a dep over another stage's out), as text or JSON. The edges are the
config's (`Config.edges`); this module only lays them out."""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from collections.abc import Callable

from mlci_tui.commands.common import load
from mlci_tui.config import Config

WIDTH = 80
"""The text fits this many columns, unless a name is longer than fits."""
NAME_ROOM = 24
"""Names up to this long are padded into a column; longer ones push the rest right."""
ARROW = "◀── "


def handle_dag(args: argparse.Namespace) -> int:
    from mlci_tui.masking import SecretMasker

    config = load(args)
    # Paths come from the config, which a secret may be written into.
    mask = SecretMasker(config.secret_values(os.environ)).mask_text
    if args.json:
        print(json.dumps(graph_document(config, mask), indent=2))
    else:
        print("\n".join(graph_lines(config, mask)))
    return 0


def graph_document(config: Config, mask: Callable[[str], str]) -> dict[str, object]:
    """The graph as `mlci dag --json` prints it: stages in order with their layer (from
    1, as the text numbers them), and every edge with its kind, the outs it is for and a
    reason in words."""
    edges = config.edges
    layer = config.layers
    return {
        "pipeline": mask(config.pipeline.name),
        "stages": [
            {"name": mask(name), "layer": layer[name] + 1, "builtin": name not in config.stages}
            for name in layer
        ],
        "edges": [
            {
                "from": mask(edge.source),
                "to": mask(edge.target),
                "kind": edge.kind,
                "outs": [mask(_path(config, out)) for out in edge.outs],
                "reason": mask(edge.why(config.root, shown=len(edge.outs))),
            }
            for edge in edges
        ],
    }


def graph_lines(config: Config, mask: Callable[[str], str]) -> list[str]:
    """The graph as text: one row per stage, by layer (stages of one layer may run
    side by side), each with what it runs after and why."""
    from mlci_tui.textsafe import visible_text

    layer = config.layers
    count = len(config.stages)
    builtin = [name for name in layer if name not in config.stages]
    then = f", then {' and '.join(builtin)}" if builtin else ""
    lines = [
        visible_text(mask(f"{config.pipeline.name}: {count} stage{'s' * (count != 1)}{then}")),
        "",
    ]
    number = len(str(max(layer.values()) + 1))
    name_width = min(NAME_ROOM, max(len(name) for name in layer))
    rows = config.incoming()
    sources = [source for found in rows.values() for source, _ in found]
    source_width = min(NAME_ROOM, max(map(len, sources), default=0))
    for name in layer:
        head = f"{layer[name] + 1:>{number}}  {name:<{name_width}}  "
        if not rows[name]:
            lines.append(head.rstrip())
            continue
        indent = " " * len(head)
        for index, (source, why) in enumerate(rows[name]):
            start = (head if index == 0 else indent) + ARROW + f"{source:<{source_width}}  "
            room = max(WIDTH - len(start), 24)
            wrapped = textwrap.wrap(why, room, break_on_hyphens=False) or [""]
            lines.append(start + wrapped[0])
            lines += [" " * len(start) + more for more in wrapped[1:]]
    key = (
        f"Each stage runs after the stages on its {ARROW.strip()} rows; stages of one layer"
        " (the number) may run side by side."
    )
    lines += ["", *textwrap.wrap(key, WIDTH)]
    return [visible_text(mask(line)) for line in lines]


def _path(config: Config, path: os.PathLike[str]) -> str:
    return os.path.relpath(path, config.root)
