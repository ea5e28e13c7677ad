"""`mlci mlflow sync`: one sync of the store's mirror, recorded whatever happens.

One sync at a time per store (a lock file beside it); each is a row of
`mirror_syncs`. A failed one is also an alert of kind `mlflow_sync_failed`
when the sync before it did not fail already, so an outage is one alert,
not one per run.
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
from mlci_tui.masking import SecretMasker
from mlci_tui.mirror.items import Target, target
from mlci_tui.mirror.mlflow_push import Pusher
from mlci_tui.pipeline.executors.base import StageExecutor
from mlci_tui.store import Store
from mlci_tui.store.mirror import SYNC_FAILED, SYNC_SUCCEEDED

LOCK = "mlflow-sync.lock"
MLFLOW_SYNC_FAILED = "mlflow_sync_failed"


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
    executor: StageExecutor,
    masker: SecretMasker,
    environ: Mapping[str, str],
    alert: bool,
) -> SyncResult:
    """Bring the mirror up to date; with ``alert``, a failure is also an alert."""
    mirror = mirror_target(config)
    with Store.open(config.pipeline.state_dir) as store, _locked(store):
        sync_id = store.start_sync(mirror.key, time.time())
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
        store.end_sync(sync_id, SYNC_SUCCEEDED, text, when=time.time())
        return SyncResult(True, text)


async def record_failure(
    store: Store,
    config: Config,
    sync_id: int,
    problem: str,
    *,
    alert: bool,
    executor: StageExecutor,
    masker: SecretMasker,
    environ: Mapping[str, str],
) -> None:
    """End sync ``sync_id`` as failed; with ``alert``, an alert too, unless the sync
    before it failed as well (one outage, one alert)."""
    key = mirror_target(config).key
    failed_before = [s.outcome for s in store.syncs(key, 2) if s.id != sync_id][:1] == [SYNC_FAILED]
    store.end_sync(sync_id, SYNC_FAILED, problem, when=time.time())
    if alert and not failed_before:
        from mlci_tui.alerts import Alerter

        alerter = Alerter(store, config, masker, executor=executor, environ=environ)
        await alerter.send(MLFLOW_SYNC_FAILED, f"{problem}; `mlci mlflow sync` sends it later")


@contextlib.contextmanager
def _locked(store: Store) -> Iterator[None]:
    """The store's sync lock, held while the sync runs (a second sync waits)."""
    fd = os.open(store.state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
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
