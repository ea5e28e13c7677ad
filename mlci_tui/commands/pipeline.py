"""`mlci run`, `validate`, `status` and `logs`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from mlci_tui.commands.common import find_run, load, open_store, relative
from mlci_tui.errors import ExitCode, NotFound, StoreError, UsageError
from mlci_tui.states import DeployOutcome, RunState

ALL_STAGES = "*"
"""What a bare ``--force`` stands for."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.pipeline.cache import Decision, StageCache
    from mlci_tui.store import RunRecord, Store


def command_validate(args: argparse.Namespace) -> int:
    config = load(args)
    count = len(config.stages)
    print(
        f"{relative(config.path)} is valid: pipeline {config.pipeline.name},"
        f" {count} stage{'s' * (count != 1)}"
    )
    width = max(len(name) for name in config.stages)
    for index, (name, stage) in enumerate(config.stages.items(), start=1):
        parts = [f"{index:>3}. {name.ljust(width)}"]
        if stage.needs:
            parts.append(f"needs {', '.join(stage.needs)}")
        if stage.gates:
            parts.append(f"gates {', '.join(str(g) for g in stage.gates)}")
        if stage.artifact:
            parts.append(f"artifact {relative(stage.artifact)}")
        if stage.outs:
            parts.append(f"outs {', '.join(relative(out) for out in stage.outs)}")
        if stage.cacheable:
            parts.append("cached when unchanged")
        if stage.executor != "local":
            parts.append(f"on {stage.executor}")
        print("  ".join(parts).rstrip())
    if config.deploy is not None:
        extra = ["deploy"] + (["monitor"] if config.monitor else [])
        print(f"     then, when every stage passed: {' → '.join(extra)}")
    return 0


def command_run(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import run_summary, use_color
    from mlci_tui.commands.live_printer import BackgroundWriter, LivePrinter
    from mlci_tui.service.runner import Runner

    config = load(args)
    for name in args.stage:
        if name not in config.stages:
            raise UsageError(f"--stage {name}: no such stage{_hint(name, list(config.stages))}")
    forced = args.force or []
    for name in forced:
        if name != ALL_STAGES and name not in config.stages:
            raise UsageError(f"--force {name}: no such stage{_hint(name, list(config.stages))}")
    force: bool | list[str] = ALL_STAGES in forced or forced
    if args.dry_run:
        return _print_plan(config, args.stage, force=force, as_json=False)
    junit = None if args.junit is None else Path(args.junit)
    if args.junit is not None:
        if not args.junit.strip():
            raise UsageError("--junit: expected a file name")
        _check_writable(config, Path(args.junit), f"--junit {args.junit}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if os.environ.get("GITHUB_ACTIONS") == "true" and summary:
        _check_writable(config, Path(summary), f"GITHUB_STEP_SUMMARY={summary}")
    runner = Runner(config, targets=args.stage, force=force, redeploy=args.redeploy)
    out = sys.stdout.buffer
    color = use_color(out, os.environ)
    printer = LivePrinter(
        BackgroundWriter(out),
        runner.engine.names,
        terminal=out.isatty(),
        color=color,
        github=os.environ.get("GITHUB_ACTIONS") == "true",
        gitlab=os.environ.get("GITLAB_CI") == "true",
        log_path=lambda stage: runner.store.log_path(runner.run_id, stage),
    )
    runner.subscribe(printer)
    try:
        result = runner.run()
    finally:
        printer.close()
    run = runner.record
    if run is not None and not printer.broken:
        lines = ["", *run_summary(run, color=color)]
        if runner.version is not None:
            lines.append(runner.version_summary())
        lines.append(f"logs: {relative(runner.store.run_dir(run.id))}")
        if runner.mirror_text is not None:
            from mlci_tui.textsafe import terminal_line

            lines.append(terminal_line(runner.mirror_text, keep_color=False))
        with contextlib.suppress(OSError):
            print("\n".join(lines), flush=True)
    if run is None:
        return result.exit_code
    return _ci_reports(config, run, junit, result.exit_code)


def _check_writable(config: Config, path: Path, what: str) -> None:
    """Refuse, before anything runs, a report file that could not be written at the
    end: a directory, the config itself, a link to nowhere, or a place where no file
    can be made (tried for real: root passes every permission check)."""
    import tempfile

    if path.is_dir():
        raise UsageError(f"{what}: is a directory")
    if path.exists() and not path.is_file():
        return  # a device or a pipe (/dev/stdout): written as it is
    target = path.resolve()
    if target == config.path.resolve():
        raise UsageError(f"{what}: is the pipeline's config")
    if path.is_symlink() and not target.parent.is_dir():
        raise UsageError(f"{what}: links to {target}, whose directory does not exist")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # missing directories are made when it is written
    if not parent.is_dir():
        raise UsageError(f"{what}: {parent} is not a directory")
    try:
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as error:
        raise UsageError(f"{what}: cannot write in {parent}: {error.strerror}") from None


def _ci_reports(config: Config, run: RunRecord, junit: Path | None, code: int) -> int:
    """The JUnit file and, under GitHub Actions, the job summary: the run is recorded
    whatever becomes of them, and a report that cannot be written fails the command."""
    github = os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("GITHUB_STEP_SUMMARY")
    if junit is None and not github:
        return code
    from mlci_tui.store import Store

    with Store.open(config.pipeline.state_dir, create=False) as store:
        return _write_reports(config, store, run, junit, bool(github), code)


def _write_reports(
    config: Config, store: Store, run: RunRecord, junit: Path | None, github: bool, code: int
) -> int:
    if junit is not None:
        from mlci_tui.commands.junit import junit_xml, write_junit

        try:
            write_junit(junit, junit_xml(run, lambda stage: store.log_path(run.id, stage)))
        except OSError as error:
            print(f"mlci: cannot write --junit {junit}: {error.strerror}", file=sys.stderr)
            code = code or ExitCode.FAILED
    if github:
        from mlci_tui.commands.reports import write_step_summary

        if not write_step_summary(store, config, run):
            code = code or ExitCode.FAILED
    return code


def command_status(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import run_summary, use_color

    with open_store(load(args)) as store:
        run = find_run(store, args.run)
        last = store.last_deployment()
    if last is not None and last.outcome is DeployOutcome.POINTER_FAILED:
        # Where production is, the store cannot say: the one thing to fix first.
        print(f"mlci: warning: deployment {last.id}: {last.message}", file=sys.stderr)
    if args.json:
        import json  # only here: `mlci validate` and `mlci run` never need it

        print(json.dumps(run.to_json(), indent=2))
    else:
        print("\n".join(run_summary(run, color=use_color(sys.stdout.buffer, os.environ))))
    # As `mlci run` would have exited: a script can ask whether the last run passed.
    running_or_passed = (RunState.RUNNING, RunState.PASSED)
    return ExitCode.PASSED if run.state in running_or_passed else ExitCode.FAILED


def command_logs(args: argparse.Namespace) -> int:
    from mlci_tui import textsafe
    from mlci_tui.service.recovery import recover, runner_gone
    from mlci_tui.store.logs import LogCursor, output_bytes

    config = load(args)
    with open_store(config) as store:
        run = find_run(store, args.run)
        stage = run.stage(args.stage)
        if stage is None:
            names = [s.name for s in run.stages]
            raise UsageError(f"run {run.id} has no stage {args.stage!r}{_hint(args.stage, names)}")
        if stage.started_at is None and (stage.state.finished or not args.follow):
            why = f": {stage.message}" if stage.message else ""
            if stage.state.finished:
                raise NotFound(
                    f"stage {stage.name} of run {run.id} did not run ({stage.state.value}{why})"
                )
            raise NotFound(
                f"stage {stage.name} of run {run.id} has not started yet (follow it: mlci logs -f)"
            )
        path = store.log_path(run.id, stage.name)
        cursor = LogCursor(path)
        gone = NotFound(f"the log of stage {stage.name} of run {run.id} is missing: {path}")
        # A started stage's log exists from its start, even if it prints nothing.
        seen = path.exists()
        if not seen and not args.follow:
            raise gone
        out = sys.stdout.buffer
        terminal = out.isatty()
        color = terminal and not os.environ.get("NO_COLOR")

        def emit() -> None:
            for chunk in output_bytes(cursor.read()):
                if terminal:
                    # The newline is the line's end, not a character to show.
                    ended = chunk.endswith(b"\n")
                    text = textsafe.decode(chunk[:-1] if ended else chunk)
                    chunk = textsafe.terminal_line(text, keep_color=color).encode()
                    chunk += b"\n" if ended else b""
                out.write(chunk)
            out.flush()

        emit()
        if not args.follow:
            return 0
        while True:
            current = store.run(run.id)
            assert current is not None
            stage = current.stage(args.stage)
            ended = stage is None or stage.state.finished or current.state.finished
            if not ended and runner_gone(current):
                # The runner died while we watched: record it, then show what it left.
                problem = recover(store, config)
                if problem:
                    raise StoreError(problem)
                ended = True
            emit()
            if not path.exists() and (seen or ended):
                raise gone
            seen = seen or path.exists()
            if ended:
                return 0
            time.sleep(0.2)


def command_why(args: argparse.Namespace) -> int:
    config = load(args)
    targets = []
    if args.stage is not None:
        if args.stage not in config.stages:
            raise UsageError(f"no stage {args.stage!r}{_hint(args.stage, list(config.stages))}")
        targets = [args.stage]
    return _print_plan(config, targets, force=False, as_json=args.json, only=args.stage)


def _print_plan(
    config: Config,
    targets: list[str],
    *,
    force: bool | list[str],
    as_json: bool,
    only: str | None = None,
) -> int:
    """Whether each stage would run or be cached, and why (`mlci why`, `run --dry-run`)."""
    from mlci_tui.commands.console import render_table
    from mlci_tui.config import with_masked_params
    from mlci_tui.masking import SecretMasker
    from mlci_tui.pipeline.cache import StageCache, plan
    from mlci_tui.textsafe import terminal_line

    masker = SecretMasker(config.secret_values(os.environ))
    config = with_masked_params(config, masker)
    with _cache_store(config) as store:
        cache = StageCache(config, force=force, store=store, masker=masker)
        decisions = plan(cache, config.selected(targets))
        if not targets and config.deploy is not None:
            decisions += _deploy_plan(config, store, cache, decisions)
    if only is not None:
        decisions = [d for d in decisions if d.stage == only]
    if as_json:
        import json

        rows = [
            {
                "stage": d.stage,
                "decision": d.verdict,
                "reasons": list(d.reasons),
                "cache_key": d.key,
                "cached_from": None
                if d.source is None
                else {
                    "run": d.source.run,
                    "stage": d.source.stage,
                    "store": None if d.source.store is None else d.source.store._asdict(),
                },
            }
            for d in decisions
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = [[d.stage, d.verdict, "; ".join(d.reasons)] for d in decisions]
    for line in render_table(["STAGE", "WOULD", "WHY"], table, right=set()):
        print(terminal_line(line, keep_color=False))
    return 0


def _deploy_plan(
    config: Config, store: Store, cache: StageCache, decisions: list[Decision]
) -> list[Decision]:
    """What the deploy (and monitor) stages of a full run would do."""
    from mlci_tui.pipeline.cache import Decision
    from mlci_tui.registry.artifacts import digest
    from mlci_tui.registry.versions import unchanged_text

    stage = config.artifact_stage
    assert stage is not None and stage.artifact is not None
    # The artifact as the cached stage would restore it, else as it is here.
    sha = cache.planned.get(str(stage.artifact))
    if sha is None and (stage.artifact.is_file() or stage.artifact.is_dir()):
        sha = digest(stage.artifact)[0]
    if not all(d.cached for d in decisions) or sha is None:
        why = f"deploys the version {stage.name} makes, unless a stored one has its artifact"
        deploy = Decision("deploy", None, False, (why,))
    else:
        version = store.version_with_sha256(sha)
        live = store.live_version()
        if version is None:
            deploy = Decision("deploy", None, False, ("a new version: deploys it",))
        else:
            deploy = Decision("deploy", None, True, (unchanged_text(version, live),))
    if config.monitor is None:
        return [deploy]
    if deploy.cached:
        return [deploy, Decision("monitor", None, True, ("nothing new is deployed",))]
    return [deploy, Decision("monitor", None, False, ("analyses what deploy deploys",))]


def _cache_store(config: Config) -> Store:
    """The store the cache remembers file hashes in: made if there is none yet."""
    from mlci_tui.errors import StoreMissing
    from mlci_tui.store import Store

    try:
        return Store.open(config.pipeline.state_dir, create=False)
    except StoreMissing:
        return Store.open(config.pipeline.state_dir)


def command_cache(args: argparse.Namespace) -> int:
    from mlci_tui.pipeline.cache import collect_garbage
    from mlci_tui.units import format_bytes

    config = load(args)
    with open_store(config) as store:
        result = collect_garbage(config, store, keep_runs=args.keep_runs, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {result.entries} entr{'y' if result.entries == 1 else 'ies'} and"
        f" {result.objects} file{'s' * (result.objects != 1)} ({format_bytes(result.bytes)});"
        f" kept {result.kept_entries} entr{'y' if result.kept_entries == 1 else 'ies'}"
        f" ({format_bytes(result.kept_bytes)}) in {relative(config.pipeline.cache_dir)}"
    )
    return 0


def _hint(name: str, names: list[str]) -> str:
    """``; did you mean "train"?``, or the list of what there is."""
    import difflib  # only for a mistyped name

    close = difflib.get_close_matches(name, names, n=1)
    return f'; did you mean "{close[0]}"?' if close else f" (stages: {', '.join(names)})"
