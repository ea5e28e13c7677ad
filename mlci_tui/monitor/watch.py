"""`mlci monitor`: checking production continuously, with the same rollback policy.

Every `interval` the live version is sampled. When `failures_before_rollback`
samples of it have failed in a row — counted in the store, so a cron job
running ``mlci monitor --once`` counts across runs — the policy applies once
for that streak. After a rollback the new live version is watched.
"""

from __future__ import annotations

import asyncio

from mlci_tui.monitor.analysis import Analysis
from mlci_tui.monitor.policy import respond
from mlci_tui.pipeline.command import CommandContext
from mlci_tui.registry.deployer import Deployer


async def watch(
    analysis: Analysis, deployer: Deployer, context: CommandContext, *, once: bool = False
) -> int:
    """Watch until cancelled (or one sample with ``once``); the exit status of the last
    sample: 0 passed, 1 failed or nothing live."""
    registry = deployer.registry
    monitor = analysis.monitor
    while True:
        live = registry.live()
        if live is None:
            context.note("nothing is live yet; deploy a version first", deployer.clock)
            if once:
                return 1
            await asyncio.sleep(monitor.interval)
            continue
        sample = await analysis.sample(live, context, label="sample")
        # A passing sample ends any streak: the store is asked only after a failure.
        if not sample.passed:
            failures = analysis.failures_in_a_row(live)
            if failures == monitor.failures_before_rollback:
                assert sample.finding is not None
                await respond(live, sample.finding, deployer, context)
            else:
                context.note(
                    f"{failures} of {monitor.failures_before_rollback} failures in a row",
                    deployer.clock,
                )
        if once:
            return 0 if sample.passed else 1
        await asyncio.sleep(monitor.interval)
