"""`mlci run`, `validate`, `status` and `logs`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import BinaryIO

from mlci_tui.commands.common import find_run, load, open_store, relative, stage_hint
from mlci_tui.errors import ExitCode, NotFound, StoreError, UsageError
from mlci_tui.states import DeployOutcome, ExperimentState, RunState

ALL_STAGES = "*"
"""What a bare ``--force`` stands for."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from mlci_tui.commands.report_file import ReportFile
    from mlci_tui.config import Config
    from mlci_tui.pipeline.stage_cache import Decision, StageCache
    from mlci_tui.store import RunRecord, Store


def handle_validate(args: argparse.Namespace) -> int:
    from mlci_tui.masking import SecretMasker
    from mlci_tui.textsafe import visible_text

    config = load(args)
    # Names, gates and paths come from the config, which a secret may be written into.
    mask = SecretMasker(config.secret_values(os.environ)).mask_text
    count = len(config.stages)
    print(
        f"{relative(config.path)} is valid: pipeline {visible_text(mask(config.pipeline.name))},"
        f" {count} stage{'s' * (count != 1)}"
    )
    width = max(len(name) for name in config.stages)
    for index, (name, stage) in enumerate(config.stages.items(), start=1):
        parts = [f"{index:>3}. {name.ljust(width)}"]
        if stage.needs:
            parts.append(f"needs {', '.join(stage.needs_text(config.root))}")
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
        # Paths (in needs, artifact, outs) are the config's: shown, never obeyed.
        print(visible_text(mask("  ".join(parts).rstrip())))
    if config.deploy is not None:
        extra = ["deploy"] + (["monitor"] if config.monitor else [])
        print(f"     then, when every stage passed: {' → '.join(extra)}")
    return 0


def handle_run(args: argparse.Namespace) -> int:
    config = load(args)
    for name in args.stage:
        if name not in config.stages:
            raise UsageError(
                f"--stage {name}: no such stage{stage_hint(name, list(config.stages))}"
            )
    forced = args.force or []
    for name in forced:
        if name != ALL_STAGES and name not in config.stages:
            raise UsageError(
                f"--force {name}: no such stage{stage_hint(name, list(config.stages))}"
            )
    force: bool | list[str] = ALL_STAGES in forced or forced
    if args.json and not args.dry_run:
        raise UsageError("--json: only with --dry-run (a run prints its output as it comes)")
    if args.dry_run:
        return _print_plan(config, args.stage, force=force, as_json=args.json)
    from mlci_tui.commands.report_file import open_report

    # Before anything runs: a report that could not be written must not wait for the end.
    reports = Reports()
    try:
        if args.junit is not None:
            what = f"--junit {args.junit}".rstrip()
            reports.junit = open_report(config, args.junit, what, append=False)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if os.environ.get("GITHUB_ACTIONS") == "true" and summary:
            what = f"GITHUB_STEP_SUMMARY={summary}"
            reports.summary = open_report(config, summary, what, append=True)
            if reports.junit is not None and reports.junit.same_file(reports.summary):
                raise UsageError(f"{what}: is the --junit file too; each report needs its own")
        return _run(args, config, force, reports)
    finally:
        for report in (reports.junit, reports.summary):
            if report is not None:
                report.close()


class Reports:
    """The report files of `mlci run`, checked before it runs and written at its end."""

    junit: ReportFile | None = None
    summary: ReportFile | None = None
    """``$GITHUB_STEP_SUMMARY`` under GitHub Actions."""


def _run(
    args: argparse.Namespace, config: Config, force: bool | list[str], reports: Reports
) -> int:
    from mlci_tui.commands.console import run_summary, use_color
    from mlci_tui.commands.live_printer import BackgroundWriter, LivePrinter
    from mlci_tui.service.runner import Runner

    with Runner.start(config, targets=args.stage, force=force, redeploy=args.redeploy) as runner:
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
            from mlci_tui.textsafe import visible_text

            lines.append(visible_text(runner.mirror_text))
        text = "\n".join(lines).encode() + b"\n"
        if printer.github:
            from mlci_tui.commands.ci_markup import github_quoted

            text = github_quoted(text)  # a stage's message may look like a command
        with contextlib.suppress(OSError):
            out.write(text)
            out.flush()
    if run is None or (reports.junit is None and reports.summary is None):
        return result.exit_code
    from mlci_tui.store import Store

    with Store.open(config.pipeline.state_dir, create=False) as store:
        return _write_reports(config, store, run, reports, result.exit_code)


def _write_reports(
    config: Config, store: Store, run: RunRecord, reports: Reports, code: int
) -> int:
    """The JUnit file and, under GitHub Actions, the job summary: the run is recorded
    whatever becomes of them, and a report that cannot be written fails the command."""
    written: list[tuple[ReportFile, bytes]] = []
    if reports.junit is not None:
        from mlci_tui.commands.junit import junit_xml

        xml = junit_xml(run, lambda stage: store.log_path(run.id, stage))
        written.append((reports.junit, xml))
    if reports.summary is not None:
        from mlci_tui.commands.reports import report_markdown

        written.append((reports.summary, report_markdown(store, config, run).encode()))
    from mlci_tui.textsafe import visible_text

    for report, data in written:
        try:
            report.write(data)
        except OSError as error:
            print(
                f"mlci: cannot write {visible_text(report.what)}: {error.strerror}",
                file=sys.stderr,
            )
            code = code or ExitCode.FAILED
    return code


def handle_status(args: argparse.Namespace) -> int:
    from mlci_tui.commands.console import run_summary, use_color

    with open_store(load(args)) as store:
        experiments = experiments_line(store.experiments.counts())
        try:
            run = find_run(store, args.run)
        except NotFound as error:
            if experiments is None or args.run is not None:
                raise
            raise NotFound(f"{error}; {experiments}") from None
        last = store.deployments.latest()
    if last is not None and last.outcome is DeployOutcome.POINTER_FAILED:
        from mlci_tui.textsafe import visible_text

        # Where production is, the store cannot say: the one thing to fix first.
        message = visible_text(last.message or "")
        print(f"mlci: warning: deployment {last.id}: {message}", file=sys.stderr)
    from mlci_tui.service.recovery import runner_gone  # imported by open_store already

    gone = runner_gone(run)
    if args.json:
        import json  # only here: `mlci validate` and `mlci run` never need it

        print(json.dumps({**run.to_json(), "runner_gone": gone}, indent=2))
    else:
        print("\n".join(run_summary(run, color=use_color(sys.stdout.buffer, os.environ))))
        if experiments is not None:
            print(f"\n{experiments}")
    if gone:
        # Recovery could not mark it (a full disk, a store locked too long): the row
        # still says running, but no process will finish it.
        print(
            f"mlci: run {run.id}'s runner is gone; the store could not be written to mark"
            " it interrupted (any mlci command, or `mlci recover`, tries again)",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    # As `mlci run` would have exited: a script can ask whether the last run passed.
    running_or_passed = (RunState.RUNNING, RunState.PASSED)
    return ExitCode.PASSED if run.state in running_or_passed else ExitCode.FAILED


def experiments_line(counts: Mapping[ExperimentState, int]) -> str | None:
    """``experiments: 2 running, 5 queued, 12 ended — mlci exp show``: how `mlci status`,
    which shows the workspace's runs, says where the experiments are; None without any."""
    if not counts:
        return None
    running = counts.get(ExperimentState.RUNNING, 0)
    queued = counts.get(ExperimentState.QUEUED, 0)
    ended = sum(counts.values()) - running - queued
    parts = [f"{n} {what}" for n, what in ((running, "running"), (queued, "queued")) if n]
    parts += [f"{ended} ended"] if ended or not parts else []
    return f"experiments: {', '.join(parts)} — mlci exp show"


def handle_recover(args: argparse.Namespace) -> int:
    """What every command does as it opens the store, asked for alone (the dashboard
    asks for it when it sees a run whose runner died)."""
    from mlci_tui.errors import StoreMissing
    from mlci_tui.service.recovery import recover
    from mlci_tui.store import Store

    config = load(args)
    try:
        store = Store.open(config.pipeline.state_dir, create=False)
    except StoreMissing:
        raise NotFound(f"no runs yet in {relative(config.pipeline.state_dir)}") from None
    with store:
        if store.readonly:
            raise StoreError(f"{store.state_dir}: the run store is read-only; nothing is settled")
        before = {run.id for run in store.runs.in_state(RunState.RUNNING)}
        problem = recover(store, config)
        settled = before - {run.id for run in store.runs.in_state(RunState.RUNNING)}
    if problem:
        raise StoreError(problem)
    for run_id in sorted(settled):
        print(f"run {run_id}: its runner was gone; what it left is stopped, and it is interrupted")
    if not settled:
        print("nothing to recover")
    return ExitCode.PASSED


def handle_logs(args: argparse.Namespace) -> int:
    from mlci_tui import textsafe
    from mlci_tui.commands.ci_markup import (
        GitLabSectionFilter,
        github_quoted,
        gitlab_plain,
        resume_commands,
        stop_commands,
        stop_token,
    )
    from mlci_tui.store.logs import COPY_CHUNK, LogCursor, Note

    config = load(args)
    if args.stage is None:
        return _whole_run_log(args, config)
    with open_store(config) as store:
        run = find_run(store, args.run)
        stage = run.stage(args.stage)
        if stage is None:
            names = [s.name for s in run.stages]
            raise UsageError(
                f"run {run.id} has no stage {args.stage!r}{stage_hint(args.stage, names)}"
            )
        if stage.started_at is None and (stage.state.finished or not args.follow):
            why = f": {stage.message}" if stage.message else ""
            if stage.state.finished:
                raise NotFound(
                    f"stage {stage.name} of run {run.id} did not run ({stage.state.text}{why})"
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
        errors = sys.stderr.buffer
        terminal = out.isatty()
        color = terminal and not os.environ.get("NO_COLOR")
        # In a CI job's log, nothing the stage printed is read as the CI system's markup.
        github = os.environ.get("GITHUB_ACTIONS") == "true"
        plain = GitLabSectionFilter() if os.environ.get("GITLAB_CI") == "true" else None
        ended = True
        apart = True
        """The terminal's cursor is at a line's start: no line of the stage's is open."""

        def note(text: str) -> None:
            """mlci's own line (a retry, a timeout, why the stage failed), on stderr:
            stdout stays exactly what the stage printed. Its text may quote anything.
            After a line the stage left open it starts a line of its own, as both
            streams often share one terminal (the newline is on stderr)."""
            nonlocal apart
            out.flush()
            line = f"mlci: {textsafe.terminal_line(text, keep_color=False)}\n"
            data = line.encode() if apart else b"\n" + line.encode()
            apart = True
            if github:
                data = github_quoted(data)
            elif plain is not None:
                data = gitlab_plain(data)
            errors.write(data)
            errors.flush()

        def show(chunk: bytes) -> None:
            """Bytes of the stage's output, made safe for a terminal (whole lines but for
            a range's last) or for a GitLab job's log."""
            nonlocal ended, apart
            if terminal:
                chunk = _terminal_lines(chunk, color=color)
            if plain is not None:
                chunk = plain(chunk)
            if chunk:
                out.write(chunk)
                ended = apart = chunk.endswith(b"\n")

        def copy(source: BinaryIO, start: int, end: int) -> None:
            """Bytes ``start`` to ``end`` of the log: into a file or a pipe as they are,
            by the kernel; else line by line through `show`."""
            nonlocal ended, apart
            if not terminal and plain is None:
                out.flush()
                with contextlib.suppress(OSError, ValueError):  # not a file: copied below
                    while start < end:
                        sent = os.sendfile(out.fileno(), source.fileno(), start, end - start)
                        if not sent:
                            return  # the file is shorter than its index says
                        start += sent
                        ended = apart = os.pread(source.fileno(), 1, start - 1) == b"\n"
            source.seek(start)
            carry = b""
            while start < end:
                chunk = source.read(min(COPY_CHUNK, end - start))
                if not chunk:
                    break
                start += len(chunk)
                chunk = carry + chunk
                cut = chunk.rfind(b"\n") + 1 if start < end else len(chunk)
                carry = chunk[cut:]
                show(chunk[:cut])

        def emit() -> None:
            if cursor.legacy:  # an earlier version's log: record by record
                for record in cursor.records():
                    if isinstance(record, Note):
                        note(record.text)
                    else:
                        show(record)
                out.flush()
                return
            for item in cursor.read(to_end=True):
                if isinstance(item, Note):
                    note(item.text)
                    continue
                try:
                    source = open(cursor.path, "rb")  # noqa: SIM115 (closed below)
                except FileNotFoundError:
                    break  # deleted under us: `_follow` says so
                with source:
                    copy(source, *item)
            out.flush()

        token = stop_token() if github else None
        if token is not None:
            out.write(stop_commands(token))
        try:
            _follow(args, config, store, run, path, emit, gone, seen)
        finally:
            tail = b"" if plain is None else plain(b"", last=True)
            if token is not None:
                tail += b"" if ended and not tail else b"\n"
                tail += resume_commands(token)
            out.write(tail)
            out.flush()
        return 0


def _terminal_lines(block: bytes, *, color: bool) -> bytes:
    """Lines joined by newlines, each made safe for a terminal (the newlines are the
    lines' ends, not characters to show)."""
    from mlci_tui import textsafe

    lines = block.split(b"\n")
    return "\n".join(
        textsafe.terminal_line(textsafe.decode(line), keep_color=color) for line in lines
    ).encode()


def _whole_run_log(args: argparse.Namespace, config: Config) -> int:
    """`mlci logs` without a stage: every stage's output interleaved as `mlci run`
    printed it, each line after its ``[stage]`` label, mlci's notes as ``-- …``
    lines; with ``-f``, until the run ends. A line a running stage is still writing
    is printed once it ends. In a CI job, as a stage's log is (see `handle_logs`)."""
    from mlci_tui import textsafe
    from mlci_tui.commands.ci_markup import (
        GitLabSectionFilter,
        resume_commands,
        stop_commands,
        stop_token,
    )
    from mlci_tui.commands.console import paint
    from mlci_tui.service.recovery import recover, runner_gone
    from mlci_tui.store.logs import COPY_CHUNK, Note
    from mlci_tui.store.run_log import RunLog, stage_labels

    out = sys.stdout.buffer
    terminal = out.isatty()
    color = terminal and not os.environ.get("NO_COLOR")
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    plain = GitLabSectionFilter() if os.environ.get("GITLAB_CI") == "true" else None
    with open_store(config) as store:
        run = find_run(store, args.run)
        names = [stage.name for stage in run.stages]
        labels = {
            name: (paint(label.text, label.color, color) + label.pad).encode()
            for name, label in stage_labels(names).items()
        }
        log = RunLog([(name, store.log_path(run.id, name)) for name in names])
        printed = 0

        def write(label: bytes, block: bytes) -> None:
            """Lines of a stage's output (joined by newlines), each after its label."""
            if terminal:
                block = _terminal_lines(block, color=color)
            # One C-level replace puts the label before every line of the block.
            text = label + block.replace(b"\n", b"\n" + label) + b"\n"
            out.write(text if plain is None else plain(text))

        def emit(running: set[str]) -> None:
            """Print what the stages' logs gained, a stretch of lines at a time; a line a
            running stage is still writing waits for its end."""
            nonlocal printed
            log.update()
            if log.problem is not None:
                raise StoreError(log.problem)
            for position, first, count in log.stretches(printed):
                name = log.names[position]
                index = log.indexes[position]
                for piece in index.pieces(first, first + count):
                    if isinstance(piece, Note):
                        note = textsafe.terminal_line(f"-- {piece.text}", keep_color=False)
                        line = labels[name] + note.encode() + b"\n"
                        out.write(line if plain is None else plain(line))
                        printed += 1
                        continue
                    waits = piece.partial and name in running
                    with open(index.path, "rb") as source:
                        source.seek(piece.start)
                        left, carry = piece.end - piece.start, b""
                        while left > 0:
                            chunk = source.read(min(COPY_CHUNK, left))
                            if not chunk:
                                break
                            left -= len(chunk)
                            data = carry + chunk
                            cut = data.rfind(b"\n")
                            if cut >= 0:
                                write(labels[name], data[:cut])
                            carry = data[cut + 1 :]
                    if not waits:
                        write(labels[name], carry)  # the last line (its newline not in it)
                    if waits:
                        printed += piece.lines - 1
                        out.flush()
                        return  # its end is still to come
                    printed += piece.lines
            out.flush()

        token = stop_token() if github else None
        if token is not None:
            out.write(stop_commands(token))
        try:
            while True:
                current = store.runs.get(run.id)
                assert current is not None
                ended = current.state.finished or not args.follow
                if not ended and runner_gone(current):
                    problem = recover(store, config)
                    if problem:
                        raise StoreError(problem)
                    ended = True
                running = (
                    set() if ended else {s.name for s in current.stages if not s.state.finished}
                )
                emit(running)
                if ended:
                    return 0
                time.sleep(0.2)
        finally:
            if plain is not None:
                out.write(plain(b"", last=True))
            if token is not None:
                out.write(resume_commands(token))
            out.flush()
            log.close()


def _follow(
    args: argparse.Namespace,
    config: Config,
    store: Store,
    run: RunRecord,
    path: Path,
    emit: Callable[[], None],
    gone: NotFound,
    seen: bool,
) -> None:
    """Print what the stage's log holds, and with ``-f`` what it gets, until the stage ends."""
    from mlci_tui.service.recovery import recover, runner_gone

    emit()
    if not args.follow:
        return
    while True:
        current = store.runs.get(run.id)
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
            return
        time.sleep(0.2)


def handle_why(args: argparse.Namespace) -> int:
    config = load(args)
    targets = []
    if args.stage is not None:
        if args.stage not in config.stages:
            raise UsageError(
                f"no stage {args.stage!r}{stage_hint(args.stage, list(config.stages))}"
            )
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
    from mlci_tui.pipeline.stage_cache import StageCache, plan
    from mlci_tui.textsafe import visible_text

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
    # Reasons name paths and params of the config: made visible before they are laid out.
    table = [[d.stage, d.verdict, visible_text("; ".join(d.reasons))] for d in decisions]
    for line in render_table(["STAGE", "WOULD", "WHY"], table, right=set()):
        print(line)
    return 0


def _deploy_plan(
    config: Config, store: Store, cache: StageCache, decisions: list[Decision]
) -> list[Decision]:
    """What the deploy (and monitor) stages of a full run would do."""
    from mlci_tui.pipeline.stage_cache import Decision
    from mlci_tui.registry.artifacts import digest
    from mlci_tui.registry.model_registry import (
        analysis_cut_short,
        cut_short_text,
        deploys_unchanged,
        unchanged_text,
    )

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
        version = store.versions.with_sha256(sha)
        live = store.versions.live()
        if version is None:
            deploy = Decision("deploy", None, False, ("a new version: deploys it",))
        else:
            again = deploys_unchanged(version, live)
            deploy = Decision("deploy", None, not again, (unchanged_text(version, live),))
    if config.monitor is None:
        return [deploy]
    if deploy.cached:
        live = store.versions.live()
        owed = analysis_cut_short(store, config, live, time.time())
        if live is not None and owed is not None:
            analyse = Decision("monitor", None, False, (cut_short_text(live, owed),), runs=True)
            return [deploy, analyse]
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


def handle_cache_gc(args: argparse.Namespace) -> int:
    from mlci_tui.pipeline.stage_cache import collect_garbage
    from mlci_tui.units import format_bytes

    config = load(args)
    with open_store(config) as store:
        result = collect_garbage(config, store, keep_runs=args.keep_runs, dry_run=args.dry_run)
        experiments = sum(store.experiments.counts().values())
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {result.entries} entr{'y' if result.entries == 1 else 'ies'} and"
        f" {result.objects} file{'s' * (result.objects != 1)} ({format_bytes(result.bytes)});"
        f" kept {result.kept_entries} entr{'y' if result.kept_entries == 1 else 'ies'}"
        f" ({format_bytes(result.kept_bytes)}) in {relative(config.pipeline.cache_dir)}"
    )
    if experiments:
        # --keep-runs counts the workspace's runs: say what else holds entries.
        print(
            f"experiments: {experiments}, whose entries stay until they are removed"
            " — mlci exp show lists them, mlci exp remove ID forgets one"
        )
    return 0
