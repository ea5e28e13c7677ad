"""What the command handlers share: opening the store, running async work."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Defined by the command line, which is loaded already: importing it costs nothing.
from mlci_tui.cli import DEFAULT_CONFIG
from mlci_tui.errors import MlciError

if TYPE_CHECKING:
    import asyncio

    from mlci_tui.config import Config
    from mlci_tui.registry.versions import Registry
    from mlci_tui.store import RunRecord, Store

T = TypeVar("T")


class NotFound(MlciError):
    """What was asked for does not exist (yet): no runs, no such run."""

    exit_code = 1


class Cancelled(MlciError):
    """Ctrl-C or SIGTERM stopped the command."""

    exit_code = 130


def config_path(args: argparse.Namespace) -> str:
    return getattr(args, "config", DEFAULT_CONFIG)


def load(args: argparse.Namespace) -> Config:
    from mlci_tui.config import load_config

    return load_config(config_path(args))


def open_store(config: Config, *, create: bool = False) -> Store:
    """The store, with crashed runs and deployments settled; `NotFound` if none yet."""
    from mlci_tui.store import open_store as open_run_store
    from mlci_tui.store.db import StoreMissing

    try:
        store = open_run_store(config.pipeline.state_dir, create=create)
    except StoreMissing:
        raise NotFound(
            f"no runs yet in {relative(config.pipeline.state_dir)} (start one with `mlci run`)"
        ) from None
    if store.recovery_error:
        print(f"mlci: warning: {store.recovery_error}", file=sys.stderr)
    if store.running_deployments():
        # Only then is the registry's recovery (and its imports) needed.
        from mlci_tui.registry.deployer import recover_deployments
        from mlci_tui.registry.versions import Registry

        recover_deployments(Registry(store, config))
    return store


def open_registry(config: Config, *, create: bool = False) -> Registry:
    from mlci_tui.registry.versions import Registry

    return Registry(open_store(config, create=create), config)


def find_run(store: Store, run_id: int | None) -> RunRecord:
    run = store.latest_run() if run_id is None else store.run(run_id)
    if run is None:
        raise NotFound("no runs yet" if run_id is None else f"no run {run_id}")
    return run


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
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def run_id(text: str) -> int:
    """An argparse type: a run id, which SQLite can hold."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a run number, got {text!r}") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a run number, got {text!r}")
    return value
