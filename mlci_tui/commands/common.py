"""What the command handlers share: loading the config, opening the store,
running async work that Ctrl-C cancels."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlci_tui.errors import Cancelled, NotFound

if TYPE_CHECKING:
    import asyncio

    from mlci_tui.config import Config
    from mlci_tui.registry.model_registry import Registry
    from mlci_tui.store import RunRecord, Store

T = TypeVar("T")


def load(args: argparse.Namespace) -> Config:
    """The config ``--config`` names (the parser fills in the default), with the
    params that ``--set`` gives."""
    from mlci_tui.config import load_config, with_params

    config = load_config(args.config)
    sets = getattr(args, "set", None)
    return with_params(config, sets) if sets else config


def open_store(config: Config, *, create: bool = False) -> Store:
    """The store, with what dead runs and deployments left settled; `NotFound` if none yet."""
    from mlci_tui.errors import StoreMissing
    from mlci_tui.service.recovery import recover
    from mlci_tui.store import Store

    try:
        store = Store.open(config.pipeline.state_dir, create=create)
    except StoreMissing:
        raise NotFound(
            f"no runs yet in {relative(config.pipeline.state_dir)} (start one with `mlci run`)"
        ) from None
    # Recovery writes; a store nobody can write is shown as it is.
    problem = None if store.readonly else recover(store, config)
    if problem:
        from mlci_tui.textsafe import visible_text

        print(f"mlci: warning: {visible_text(problem)}", file=sys.stderr)
    return store


def open_registry(config: Config, *, create: bool = False) -> Registry:
    from mlci_tui.registry.model_registry import Registry

    return Registry(open_store(config, create=create), config)


def find_run(store: Store, run_id: int | None) -> RunRecord:
    run = store.runs.latest() if run_id is None else store.runs.get(run_id)
    if run is None:
        raise NotFound("no runs yet" if run_id is None else f"no run {run_id}")
    return run


def stage_hint(name: str, names: list[str]) -> str:
    """``; did you mean "train"?``, or the list of what there is."""
    import difflib  # only for a mistyped name

    close = difflib.get_close_matches(name, names, n=1)
    return f'; did you mean "{close[0]}"?' if close else f" (stages: {', '.join(names)})"


def run_cancellable(main: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(hurry)``: the first SIGINT/SIGTERM cancels it (raising `Cancelled`),
    a second sets ``hurry`` so that processes are stopped without a grace period.
    SIGHUP is ignored: work such as a deploy finishes when the terminal goes away."""
    import asyncio
    import signal

    async def wrapper() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        hurry = asyncio.Event()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                task.cancel()
            else:
                hurry.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        # Caught, not ignored: an ignored signal would stay ignored in child processes.
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        return await main(hurry)

    try:
        return asyncio.run(wrapper())
    except asyncio.CancelledError:
        raise Cancelled("cancelled") from None


def relative(path: Path) -> str:
    """A path as it is shown: relative to here, with its controls made visible."""
    from mlci_tui.textsafe import visible_text

    try:
        return visible_text(os.path.relpath(path))
    except ValueError:
        return visible_text(str(path))
