"""`mlci mlflow sync`: one sync of the store's mirror, recorded whatever happens.

One sync at a time per store (a lock file beside it, held by the sync's process
while it works); each is a row of `mirror_syncs`. A failed one is also an alert
of kind `mlflow_sync_failed` when the sync before it did not fail already, so
an outage is one alert, not one per run.

A sync whose process is gone (killed outright, or stopped at its timeout) cannot
record how it ended: a row left ``running`` while nobody holds the lock is such
a sync's. Recovery (every command), the runner that started it, and the next
sync end it — ``interrupted``, or ``failed`` with the reason its starter knows —
and alert it as a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from mlci_tui.config import Config, redacted_uri, uri_password
from mlci_tui.errors import MirrorError, UsageError
from mlci_tui.execution.executors.base import Executor
from mlci_tui.masking import SecretMasker
from mlci_tui.mirror.items import Target, target
from mlci_tui.mirror.mlflow_push import Pusher
from mlci_tui.store import Store
from mlci_tui.store.mirrored import SYNC_FAILED, SYNC_INTERRUPTED, SYNC_SUCCEEDED

LOCK = "mlflow-sync.lock"
MLFLOW_SYNC_FAILED = "mlflow_sync_failed"
GONE = "the sync stopped before it ended (its process is gone: killed?)"


class SyncResult(NamedTuple):
    ok: bool
    text: str
    """What was sent, or why not: one line."""


def mirror_target(config: Config) -> Target:
    if config.mlflow is None:
        raise UsageError(
            f"{config.path.name}: no [mlflow] table: nothing says where to mirror"
            " (see the README's MLflow section)"
        )
    return target(config, config.mlflow)


async def sync(
    config: Config,
    *,
    executor: Executor,
    masker: SecretMasker,
    environ: Mapping[str, str],
    alert: bool,
) -> SyncResult:
    """Bring the mirror up to date; with ``alert``, a failure is also an alert."""
    mirror = mirror_target(config)
    with Store.open(config.pipeline.state_dir) as store, _locked(store):
        # With the lock ours, a sync still marked running is one whose process died.
        context = _Context(executor, masker, environ)
        await _end_dead_syncs(store, config, GONE, SYNC_INTERRUPTED, context)
        sync_id = store.mirrored.start_sync(mirror.key, time.time())
        try:
            sent = Pusher(store, mirror).push()
        except Exception as error:  # MLflow raises every kind; none may escape
            where = redacted_uri(mirror.tracking_uri)
            problem = masker.mask_text(f"mlflow: not mirrored to {where}: {_describe(error)}")
            # A database driver's message may quote the URI it was given, password and all.
            if (password := uri_password(mirror.tracking_uri)) is not None:
                from urllib.parse import unquote

                for form in (password, unquote(password)):
                    problem = problem.replace(form, "***")
            await record_failure(
                store,
                config,
                sync_id,
                problem,
                alert=alert,
                executor=executor,
                masker=masker,
                environ=environ,
            )
            return SyncResult(False, problem)
        text = f"mlflow: sent {', '.join(sent)}" if sent else "mlflow: up to date"
        store.mirrored.end_sync(sync_id, SYNC_SUCCEEDED, text, when=time.time())
        return SyncResult(True, text)


class _Context(NamedTuple):
    """What an alert command is run with."""

    executor: Executor
    masker: SecretMasker
    environ: Mapping[str, str]


async def record_failure(
    store: Store,
    config: Config,
    sync_id: int,
    problem: str,
    *,
    alert: bool,
    executor: Executor,
    masker: SecretMasker,
    environ: Mapping[str, str],
) -> None:
    """End sync ``sync_id`` as failed; with ``alert``, an alert too, unless the sync
    before it failed as well (one outage, one alert)."""
    store.mirrored.end_sync(sync_id, SYNC_FAILED, problem, when=time.time())
    if alert:
        key = mirror_target(config).key
        await _alert(store, config, key, sync_id, problem, _Context(executor, masker, environ))


async def record_lost_sync(
    store: Store,
    config: Config,
    problem: str,
    *,
    executor: Executor,
    masker: SecretMasker,
    environ: Mapping[str, str],
) -> None:
    """A sync process that ended without recording how (stopped at its timeout,
    killed): its row, if it made one, ended as failed with ``problem``, or a failed
    row made for it; alerted as a failure."""
    context = _Context(executor, masker, environ)
    with _locked(store, wait=False) as held:
        # Held by another sync, the lock leaves the lost one's row to recovery.
        if held and await _end_dead_syncs(store, config, problem, SYNC_FAILED, context):
            return
    key = mirror_target(config).key
    sync_id = store.mirrored.start_sync(key, time.time(), outcome=SYNC_FAILED)
    await record_failure(store, config, sync_id, problem, alert=True, **context._asdict())


def recover_syncs(store: Store, config: Config) -> list[int]:
    """Recovery: end the syncs whose process is gone as interrupted, each alerted as
    a failed sync. A sync that holds the lock is alive: nothing is touched then.
    Returns the ids ended."""
    import asyncio

    from mlci_tui.execution.executors.local import LocalExecutor

    context = _Context(LocalExecutor(), SecretMasker(config.secret_values(os.environ)), os.environ)
    with _locked(store, wait=False) as held:
        if not held:
            return []
        return asyncio.run(_end_dead_syncs(store, config, GONE, SYNC_INTERRUPTED, context))


async def _end_dead_syncs(
    store: Store, config: Config, problem: str, outcome: str, context: _Context
) -> list[int]:
    """With the sync lock held: end every sync still marked running (its process
    is gone) with ``outcome`` and ``problem``, and alert each."""
    ended = []
    for sync in store.mirrored.running_syncs():
        if store.mirrored.end_sync(sync.id, outcome, problem, when=time.time(), if_running=True):
            ended.append(sync.id)
            await _alert(store, config, sync.target, sync.id, problem, context)
    return ended


async def _alert(
    store: Store, config: Config, target: str, sync_id: int, problem: str, context: _Context
) -> None:
    """Alert the failure of sync ``sync_id`` to ``target``, unless the sync to it before
    failed too: one outage, one alert."""
    earlier = [s for s in store.mirrored.syncs(target, 20) if s.id < sync_id]
    if earlier and earlier[0].outcome in (SYNC_FAILED, SYNC_INTERRUPTED):
        return
    from mlci_tui.alerter import Alerter

    alerter = Alerter(
        store, config, context.masker, executor=context.executor, environ=context.environ
    )
    await alerter.send(MLFLOW_SYNC_FAILED, f"{problem}; `mlci mlflow sync` sends it later")


@contextlib.contextmanager
def _locked(store: Store, *, wait: bool = True) -> Iterator[bool]:
    """The store's sync lock, held while the sync runs (a second sync waits); not
    ``wait``-ing, whether it was free. The lock goes with the last descriptor of its
    holder, so a sync killed outright leaves it free."""
    fd = os.open(store.state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _describe(error: BaseException) -> str:
    """One line: MLflow's messages run over many lines, with every retry; a server
    that cannot be reached is said so, with the system's reason."""
    if isinstance(error, MirrorError):
        return str(error)
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror[:1].lower() + cause.strerror[1:]
            return f"cannot reach the tracking server ({reason})"
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:299] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
