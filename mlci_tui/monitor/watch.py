"""`mlci monitor`: checking production continuously, with the same rollback policy.

Every `interval` the live version is sampled. When `failures_before_rollback`
samples of it have failed in a row — counted in the store, so a cron job
running ``mlci monitor --once`` counts across runs — the policy applies for
that streak. A rollback that failed (a deploy command that broke once) is
tried again while the streak holds, backing off: after 1, 3, 7, … more failed
samples. Asking and alerting happen once per streak. After a rollback the
new live version is watched.
"""

from __future__ import annotations

import asyncio

from mlci_tui.execution.command import CommandContext
from mlci_tui.monitor.analysis import Analysis
from mlci_tui.monitor.policy import respond
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
            beyond = failures - monitor.failures_before_rollback
            # Again at 1, 3, 7, ... samples beyond the first try: one more than a power of 2.
            retry = monitor.auto_rollback is True and beyond > 0 and (beyond + 1) & beyond == 0
            if beyond == 0 or retry:
                assert sample.finding is not None
                if retry:
                    context.note(
                        f"{failures} failures in a row, and {live.name} is still live:"
                        " trying the rollback again",
                        deployer.clock,
                    )
                await respond(live, sample.finding, deployer, context)
            else:
                context.note(
                    f"{failures} of {monitor.failures_before_rollback} failures in a row",
                    deployer.clock,
                )
        if once:
            return 0 if sample.passed else 1
        await asyncio.sleep(monitor.interval)
