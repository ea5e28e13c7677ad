"""`mlci exp apply` and `mlci exp promote`: an experiment's outs and params into the
workspace, its artifact into production (`service.experiment_results`)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from mlci_tui.commands.common import load, open_store
from mlci_tui.errors import UsageError

if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.service.experiment_results import ExperimentResults
    from mlci_tui.store import Store

SHOWN_FILES = 20
"""Changed files listed before asking; the rest are counted."""


def handle_exp_apply(args: argparse.Namespace) -> int:
    from mlci_tui.textsafe import visible_text

    config = load(args)
    with open_store(config) as store:
        results = _results(store, config)
        plan = results.plan_apply(args.id)
        label = visible_text(results.masker.mask_text(plan.experiment.label))
        if plan.changed and not _overwrite(plan.changed, yes=args.yes):
            print("nothing applied")
            return 1
        restored = results.apply(plan)
    what = ", ".join(visible_text(name) for name in restored) or "all were as it left them"
    print(f"applied experiment {label}: outs {what}")
    for name in plan.dropped:
        print(f"param {visible_text(name)} is no longer in the config: left out")
    for name in plan.masked:
        print(
            f"param {visible_text(name)} held a secret, which the store keeps masked:"
            " left as the config has it"
        )
    if not plan.params:
        if not plan.masked:
            print("params: as the config has them already")
    elif plan.params_text is not None:
        assert config.pipeline.params_file is not None
        where = visible_text(os.path.relpath(config.pipeline.params_file))
        names = ", ".join(visible_text(name) for name in plan.params)
        print(f"params written into {where}: {names}")
    else:
        if config.pipeline.params_file is not None:
            where = visible_text(os.path.relpath(config.pipeline.params_file))
            print(f"params not written: {where} cannot be changed only where they are; run")
        else:
            print("params: the config holds them in [params]; to run with them:")
        print(visible_text(_set_line(args, config, plan.params)))
    return 0


def handle_exp_promote(args: argparse.Namespace) -> int:
    from mlci_tui.commands.common import open_registry
    from mlci_tui.commands.registry import deploy_analysed
    from mlci_tui.registry.model_registry import deploys_unchanged
    from mlci_tui.textsafe import visible_text

    config = load(args)
    registry = open_registry(config)
    with registry.store as store:
        results = _results(store, config)
        experiment, run = results.finished(args.id, "promoted")
        label = results.masker.mask_text(experiment.label)
        if config.deploy is None:
            raise UsageError("no [deploy] table in the config: nothing knows how to deploy")
        out = results.artifact(run, label)
        with results.artifact_copy(out) as copy:
            # The code it ran: its commit, and whether the work tree had changes then.
            dirty = None if experiment.git_commit is None else experiment.code_hash is not None
            version, new = registry.register(
                run.id,
                results.metrics(run),
                run.params,
                source=copy,
                experiment_id=experiment.id,
                git=(experiment.git_commit, dirty),
            )
        shown = visible_text(label)
        if new:
            print(
                f"registered {version.name} from experiment {shown} (sha256 {version.sha256[:12]})",
                flush=True,
            )
        else:
            live = registry.live()
            if not deploys_unchanged(version, live, redeploy=True):
                print(f"artifact unchanged: {version.name} is live; nothing deployed")
                return 0
            print(f"artifact unchanged: same as {version.name}; deploys it", flush=True)
        reason = f"experiment {label}" + (f": {args.reason}" if args.reason else "")
        return deploy_analysed(
            registry,
            version,
            reason=reason,
            force=False,
            analyse=config.monitor is not None,
        )


def _results(store: Store, config: Config) -> ExperimentResults:
    from mlci_tui.masking import SecretMasker
    from mlci_tui.service.experiment_results import ExperimentResults

    return ExperimentResults(store, config, SecretMasker(config.secret_values(os.environ)))


def _overwrite(changed: list[str], *, yes: bool) -> bool:
    """Whether to overwrite the user's changed files: ``--yes``, or asked on a terminal;
    `UsageError` with neither."""
    from mlci_tui.textsafe import visible_text

    count = len(changed)
    files = f"{count} changed file{'s' * (count != 1)}"
    if yes:
        return True
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            f"{files} would be overwritten ({visible_text(changed[0])}"
            f"{', …' if count > 1 else ''}): pass --yes to overwrite them"
        )
    print("changed here since the workspace's last run, and different in the experiment:")
    for name in changed[:SHOWN_FILES]:
        print(f"  {visible_text(name)}")
    if count > SHOWN_FILES:
        print(f"  … and {count - SHOWN_FILES} more")
    try:
        answer = input(f"overwrite {files}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _set_line(args: argparse.Namespace, config: Config, params: dict[str, Any]) -> str:
    """``mlci run --set …`` that runs the pipeline with ``params``."""
    from mlci_tui.config.param_sets import set_argument

    words = ["mlci", "run"]
    if os.path.abspath(args.config) != os.path.abspath("config.toml"):
        words += ["--config", args.config]
    for name, value in params.items():
        words += ["--set", set_argument(name, config.params[name], value)]
    return shlex.join(words)
