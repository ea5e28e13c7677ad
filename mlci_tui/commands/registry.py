"""`mlci versions`, `history`, `deploy`, `rollback`, `monitor` and `alerts`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from mlci_tui.commands.common import load, open_registry, open_store, run_cancellable
from mlci_tui.errors import UsageError

if TYPE_CHECKING:
    import asyncio

    from mlci_tui.commands.live_printer import LivePrinter
    from mlci_tui.config import Config
    from mlci_tui.execution.command import CommandContext
    from mlci_tui.registry.deployer import Deployer, DeployResult
    from mlci_tui.registry.model_registry import Registry
    from mlci_tui.store.records import VersionRecord


def handle_versions(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import use_color, version_table

    config = load(args)
    # Like `helm history`: the newest by default, everything when asked.
    limit = None if args.all else args.limit
    with open_store(config) as store:
        versions = store.versions.recent(limit=limit)
        total = store.versions.count() if limit is not None else len(versions)
    if args.json:
        print(json.dumps([v.to_json() for v in versions], indent=2))
        return 0
    if not versions:
        print("no versions yet: a passing run with an artifact registers one")
        return 0
    color = use_color(sys.stdout.buffer, os.environ)
    lines = version_table(versions, config.key_metrics, color=color)
    if total > len(versions):
        lines.append(f"… and {total - len(versions)} older (mlci versions --all)")
    print("\n".join(lines))
    return 0


def handle_history(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import history_table

    config = load(args)
    with open_store(config) as store:
        deployments = store.deployments.all()
    if args.json:
        print(json.dumps([d.to_json() for d in deployments], indent=2))
        return 0
    if not deployments:
        print("no deploys or rollbacks yet")
        return 0
    print("\n".join(history_table(deployments)))
    return 0


def handle_deploy(args: argparse.Namespace) -> int:
    config = load(args)
    registry = open_registry(config)
    with registry.store:
        version = registry.resolve(args.version)
        analyse = config.monitor is not None and not args.no_analysis
        return deploy_analysed(
            registry, version, reason=args.reason, force=args.force, analyse=analyse
        )


def deploy_analysed(
    registry: Registry, version: VersionRecord, *, reason: str | None, force: bool, analyse: bool
) -> int:
    """Deploy ``version``, then, when ``analyse``, analyse it as after a run's deploy
    (rolling back as the policy says); print how it went and return the exit code."""
    config = registry.config
    with _deploying(registry, config, "deploy", "monitor") as (deployer, printer, mirrored):

        async def deploy(hurry: asyncio.Event) -> tuple[DeployResult, str | None]:
            context = _context(printer, "deploy", hurry)
            result = await deployer.deploy(
                version, context, reason=reason, force=force, analysis=analyse
            )
            if not (result.succeeded and analyse):
                await mirrored()
                return result, None
            # As after a run's deploy: the monitor's checks still protect production.
            from mlci_tui.monitor.analysis import STAGE, Analysis
            from mlci_tui.monitor.policy import guard

            analysis = Analysis(registry, executor=deployer.executor, masker=deployer.masker)
            live = registry.store.versions.get(version.number) or version
            _, response = await guard(live, analysis, deployer, _context(printer, STAGE, hurry))
            await mirrored()
            return result, None if response is None else response.message

        result, failed = run_cancellable(deploy)
    if failed is not None:
        from mlci_tui.textsafe import visible_text

        print(f"mlci: {visible_text(failed)}", file=sys.stderr)
        return 1
    return _report(result)


def handle_rollback(args: argparse.Namespace) -> int:
    config = load(args)
    registry = open_registry(config)
    with registry.store:
        target = None if args.version is None else registry.resolve(args.version)
        with _deploying(registry, config, "rollback") as (deployer, printer, mirrored):

            async def rollback(hurry: asyncio.Event) -> DeployResult:
                context = _context(printer, "rollback", hurry)
                result = await deployer.rollback(target, context, reason=args.reason)
                await mirrored()
                return result

            result = run_cancellable(rollback)
    return _report(result)


def handle_monitor(args: argparse.Namespace) -> int:
    from mlci_tui.monitor.analysis import STAGE, Analysis
    from mlci_tui.monitor.watch import watch

    config = load(args)
    if config.monitor is None:
        raise UsageError("no [monitor] table in the config: nothing says how to check the model")
    registry = open_registry(config)
    with registry.store, _deploying(registry, config, STAGE) as (deployer, printer, mirrored):
        analysis = Analysis(registry, executor=deployer.executor, masker=deployer.masker)

        async def monitor(hurry: asyncio.Event) -> int:
            code = await watch(analysis, deployer, _context(printer, STAGE, hurry), once=args.once)
            await mirrored()
            return code

        return run_cancellable(monitor)


def handle_alerts(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import alert_lines

    config = load(args)
    with open_store(config) as store:
        if args.dismiss or args.ack is not None:
            from mlci_tui.registry.audit import current_user

            user = current_user(os.environ)
        if args.dismiss:
            pending = store.decisions.pending()
            for decision in pending:
                store.decisions.decide(decision.id, "dismissed", by=user, when=time.time())
            print(f"dismissed {len(pending)} pending decision{'s' * (len(pending) != 1)}")
            return 0
        if args.ack is not None:
            known = {alert.id for alert in store.alerts.recent(limit=-1)}
            missing = sorted(set(args.ack) - known)
            if missing:
                raise UsageError(f"--ack {missing[0]}: no such alert (see mlci alerts)")
            count = store.alerts.acknowledge(args.ack or None, by=user, when=time.time())
            print(f"acknowledged {count} alert{'s' * (count != 1)}")
            return 0
        alerts = store.alerts.recent()
        decisions = store.decisions.pending()
    if args.json:
        print(
            json.dumps(
                {
                    "alerts": [a.to_json() for a in alerts],
                    "pending_decisions": [d.to_json() for d in decisions],
                },
                indent=2,
            )
        )
        return 0
    print("\n".join(alert_lines(alerts, decisions)))
    return 0


@contextlib.contextmanager
def _deploying(
    registry: Registry, config: Config, *stages: str
) -> Iterator[tuple[Deployer, LivePrinter, Callable[[], Awaitable[None]]]]:
    """A deployer, a printer of ``stages``' output that is closed (flushed) at the
    end, and what waits for the MLflow syncs its deploys and rollbacks started."""
    from mlci_tui.alerter import Alerter
    from mlci_tui.commands.console import use_color
    from mlci_tui.commands.live_printer import BackgroundWriter, LivePrinter
    from mlci_tui.execution.executors.local import LocalExecutor, become_subreaper
    from mlci_tui.masking import SecretMasker
    from mlci_tui.registry.deployer import Deployer

    masker = SecretMasker(config.secret_values(os.environ))
    executor = LocalExecutor(subreaper=become_subreaper())
    out = sys.stdout.buffer
    color = use_color(out, os.environ)
    printer = LivePrinter(BackgroundWriter(out), stages, terminal=out.isatty(), color=color)
    settle: Callable[[], Awaitable[None]] = _nothing
    if config.mlflow is not None:
        from mlci_tui.events import CommandNoted
        from mlci_tui.mirror.trigger import Mirroring

        mirroring = Mirroring(
            config,
            executor=executor,
            masker=masker,
            environ=os.environ,
            report=lambda text: printer(CommandNoted(stages[0], text, time.time())),
        )
        settle = mirroring.settle
    deployer = Deployer(
        registry,
        executor=executor,
        masker=masker,
        alerter=Alerter(registry.store, config, masker, executor=executor),
    )
    if config.mlflow is not None:
        deployer.on_settled = mirroring.kick
    try:
        yield deployer, printer, settle
    finally:
        printer.close()


async def _nothing() -> None:
    return None


def _context(printer: LivePrinter, stage: str, hurry: asyncio.Event) -> CommandContext:
    """Output to the terminal as ``stage``'s; the deployment keeps a log of its own."""
    from mlci_tui.execution.command import CommandContext

    return CommandContext(printer, stage, hurry=hurry)


def _report(result: DeployResult) -> int:
    from mlci_tui.textsafe import visible_text

    if result.succeeded:
        print(visible_text(result.message))
        return 0
    print(f"mlci: {visible_text(result.message)}", file=sys.stderr)
    return 1
