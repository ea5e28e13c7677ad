"""Making experiments' workspaces in process, for the experiments benchmark.

    python -m benchmarks.workspace_probe CONFIG ROUNDS [--plan] [--only METHOD]

Gives this process a mount namespace of its own first (`private_mounts`: before
any thread, and never in the benchmark's own process, whose mounts it changes),
then makes ROUNDS workspaces of the project by each method — the overlay (when
the namespace allowed it) and the copy the worker falls back to
(`make(..., overlay=False)`: reflinks where the filesystem has them) — alternating,
each removed before the next. With ``--plan``, after the last of each, how long
the stage cache takes to decide every stage there, as a worker's run does first,
and how many bytes it had to read. ``--only overlay`` or ``--only copy`` makes
workspaces by that method alone. Prints one JSON object.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from mlci_tui.service import workspace

METHODS = ("overlay", "copy")


def _plan(config_path: Path, made: workspace.Workspace, store: Any) -> dict[str, Any]:
    """The stage cache's decisions in the workspace, as the worker reads its config
    there (the shared state and cache dirs)."""
    from mlci_tui.config import load_config
    from mlci_tui.pipeline.stage_cache import StageCache, plan

    project = load_config(config_path)
    config = load_config(made.path / config_path.relative_to(project.root))
    config = config._replace(
        pipeline=config.pipeline._replace(
            state_dir=project.pipeline.state_dir, cache_dir=project.pipeline.cache_dir
        )
    )
    cache = StageCache(config, store=store)
    started = time.perf_counter()
    decisions = plan(cache, config.selected([]))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "hashed_bytes": cache.hasher.hashed_bytes,
        "decisions": {d.stage: ("cached" if d.cached else "runs") for d in decisions},
    }


def main() -> None:
    mounts = workspace.private_mounts()  # first: before any thread starts
    from mlci_tui.config import load_config
    from mlci_tui.store import Store
    from mlci_tui.store.cache_dir import CacheDir, FileHasher

    config_path = Path(sys.argv[1]).resolve()
    rounds = int(sys.argv[2])
    options = sys.argv[3:]
    with_plan = "--plan" in options
    methods = [options[options.index("--only") + 1]] if "--only" in options else METHODS
    config = load_config(config_path)
    pipeline = config.pipeline
    store = Store.open(pipeline.state_dir)
    cache = CacheDir(pipeline.cache_dir, FileHasher(store.file_hashes))
    made_by: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
    plans: dict[str, dict[str, Any]] = {}
    places = pipeline.state_dir / "experiments"
    for number in range(rounds):
        order = METHODS if number % 2 == 0 else METHODS[::-1]
        for method in order:
            if method not in methods or (method == "overlay" and not mounts):
                continue
            directory = places / f"bench-{method}-{number}"
            before = shutil.disk_usage(places.parent).used
            read = cache.hasher.hashed_bytes
            started = time.perf_counter()
            made = workspace.make(
                config.root,
                directory,
                exclude=[pipeline.state_dir, pipeline.cache_dir],
                cache=cache,
                overlay=method == "overlay",
            )
            wall = time.perf_counter() - started
            try:
                made_by[method].append(
                    {
                        "seconds": wall,
                        "method": made.method,
                        "copied": made.copied_bytes,
                        "shared": made.shared_bytes,
                        # Bytes hashed to make it (a cache object verified again).
                        "read": cache.hasher.hashed_bytes - read,
                        # What the filesystem gave the workspace: near nothing for
                        # reflinks and links, the file's size for a copy.
                        "grown": shutil.disk_usage(places.parent).used - before,
                    }
                )
                if with_plan and number == rounds - 1:
                    plans[method] = _plan(config_path, made, store)
            finally:
                workspace.unmount(made)
                workspace.remove(directory, cache)
    store.close()
    print(json.dumps({"private_mounts": mounts, "made": made_by, "plan": plans}))


if __name__ == "__main__":
    main()
