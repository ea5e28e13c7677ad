"""`mlci mlflow sync` and `mlci mlflow status`: the store's mirror in MLflow."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from mlci_tui.commands.common import load, open_store, relative
from mlci_tui.errors import ExitCode


def handle_mlflow_sync(args: argparse.Namespace) -> int:
    from mlci_tui.execution.executors.local import LocalExecutor, become_subreaper
    from mlci_tui.masking import SecretMasker
    from mlci_tui.mirror.sync import mirror_target, sync
    from mlci_tui.textsafe import visible_text

    config = load(args)
    mirror_target(config)  # no [mlflow]: a usage error before the store is touched
    open_store(config, create=True).close()  # recovery first, as every command does
    masker = SecretMasker(config.secret_values(os.environ))
    result = asyncio.run(
        sync(
            config,
            executor=LocalExecutor(subreaper=become_subreaper()),
            masker=masker,
            environ=os.environ,
            alert=args.auto,
        )
    )
    text = visible_text(result.text)
    if result.ok:
        print(text)
        return ExitCode.PASSED
    print(f"mlci: {text}", file=sys.stderr)
    return ExitCode.FAILED


def handle_mlflow_status(args: argparse.Namespace) -> int:
    from mlci_tui.config import redacted_uri
    from mlci_tui.mirror.items import behind, wanted
    from mlci_tui.mirror.sync import mirror_target
    from mlci_tui.store.records import iso_time
    from mlci_tui.textsafe import visible_text

    config = load(args)
    mirror = mirror_target(config)
    with open_store(config) as store:
        items = wanted(store).items(mirror.alias)
        lacking = behind(store, mirror, items)
        total = len(items)
        last = store.mirrored.syncs(mirror.key, 1)
    if args.json:
        print(
            json.dumps(
                {
                    "tracking_uri": redacted_uri(mirror.tracking_uri),
                    "experiment": mirror.experiment,
                    "model_name": mirror.model_name,
                    "alias": mirror.alias,
                    "items": total,
                    "behind": [item.label for item in lacking],
                    "last_sync": None
                    if not last
                    else {
                        "started_at": iso_time(last[0].started_at),
                        "ended_at": iso_time(last[0].ended_at),
                        "outcome": last[0].outcome,
                        "message": last[0].message,
                    },
                },
                indent=2,
            )
        )
        return ExitCode.PASSED
    lines = [
        f"mlflow: {visible_text(mirror.key)} (alias {mirror.alias}), for {relative(config.path)}"
    ]
    if not lacking:
        lines.append(f"up to date: all {total} items mirrored")
    else:
        shown = ", ".join(visible_text(item.label) for item in lacking[:10])
        more = f" and {len(lacking) - 10} more" if len(lacking) > 10 else ""
        lines.append(f"behind by {len(lacking)} of {total}: {shown}{more} (mlci mlflow sync)")
    if last:
        sync = last[0]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sync.started_at))
        said = visible_text(sync.message or "")
        lines.append(f"last sync: {sync.outcome} at {when}" + (f": {said}" if said else ""))
    else:
        lines.append("last sync: never")
    print("\n".join(lines))
    return ExitCode.PASSED
