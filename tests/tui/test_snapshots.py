"""SVG snapshots of every screen and modal of the dashboard, at 100x30 and 80x24:
the main screen with no runs (and with stages that need others for their outs, and
with more stages than fit, scrolled to the end), a
run in progress, one whose runner died, a failed and a finished run;
the help (`HelpScreen`), the runs (`RunsScreen`, and filtered), the search
(`SearchScreen`), the stages and the versions filtered, the whole run's log,
the rollback (to the default target and to another) and cancel confirmations
(`ConfirmScreen`), a pending decision (`DecisionScreen`), the alerts
(`AlertsScreen`, and after one is acknowledged in it), the zoomed log, the command
palette (`DashboardCommands`), the stage graph (`GraphScreen`), a stage's metric
plot and a metric across versions (`PlotScreen`, with and without colour), a comparison
(`DiffScreen`), the run dialog (`RunDialog`, at 80x24 and 60x15), the experiments
(`ExperimentsScreen`: one running, the best marked), its promote confirmation and
two experiments' loss curves overlaid (`ExperimentPlotScreen`); a read-only
dashboard (`mlci tui --read-only`: the main screen, also at 60x15, its help and
its alerts). The
store is real, written with fixed times, and the app's clock is fixed, so
every render is the same."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from mlci_tui.config import load_config
from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import (
    DeployKind,
    DeployOutcome,
    RunState,
    StageState,
    Stream,
    VersionStatus,
)
from mlci_tui.store import Store
from mlci_tui.store.deployment_request import DeploymentRequest
from mlci_tui.store.logs import LogWriter
from mlci_tui.tui.app import MlciApp, make_app
from mlci_tui.tui.screens.confirm import ConfirmScreen
from tests.helpers import HOSTILE, Project, settle, setup, shown, until
from tests.tui.experiments_store import write_experiments

T0 = 1_790_000_000.0


SIZES = [(100, 30), (80, 24)]


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


def write_log(store: Store, run: int, stage: str, lines: list[str], at: float) -> None:
    log = LogWriter(store.log_path(run, stage))
    log.output(Stream.STDOUT, "\n".join(lines).encode(), at)
    log.close()


def make_store(
    tmp_path: Path,
    *,
    failed: bool = False,
    running: bool = False,
    decision: bool = False,
    alerts: bool = False,
    cached: bool = False,
    series: bool = False,
    runner_gone: bool = False,
    read_only: bool = False,
) -> MlciApp:
    project = Project(tmp_path)
    setup(project)
    config_path = project.config_path
    # The pipeline's name is in the header: a realistic one.
    text = config_path.read_text().replace('name = "tiny"', 'name = "churn-model"')
    # One key metric, named by its stage (the versions' metrics are evaluate's).
    text = text.replace("[registry]\n", '[registry]\nkey_metrics = ["evaluate.accuracy"]\n')
    config_path.write_text(text)
    config = load_config(config_path, environ={})
    store = Store.open(config.pipeline.state_dir)
    for number in (1, 2, 3):
        earlier = store.runs.create(
            "churn-model",
            [("train", (), 1)],
            started_at=T0 - 3600 * (4 - number),
            pid=1,
            pid_started=None,
            host="build-host",
            config_path=str(config_path),
        )
        store.runs.update_stage(earlier, "train", state=StageState.PASSED, exit_code=0)
        store.runs.finish(
            earlier, RunState.PASSED, exit_code=0, ended_at=T0 - 3600 * (4 - number) + 60
        )
    for number, accuracy in ((1, 0.91), (2, 0.93), (3, 0.95)):
        store.versions.add(
            run_id=number,
            created_at=T0 - 3600 * (4 - number),
            artifact_name="model.txt",
            source_path="build/model.txt",
            is_dir=False,
            sha256=f"{number:x}" * 64,
            size_bytes=42,
            metrics={
                MetricKey("evaluate", "accuracy"): accuracy,
                MetricKey("evaluate", "f1"): accuracy - 0.03,
            },
            git_commit=f"{number}abc0123def",
            git_dirty=False,
            params={"train.lr": 0.05 if number < 3 else 0.02, "train.epochs": 40},
        )
    for to, previous in ((1, None), (2, 1), (3, 2)):
        deployment = store.deployments.begin(
            DeploymentRequest(
                kind=DeployKind.DEPLOY,
                from_version=previous,
                to_version=to,
                user="ci",
                reason=f"run {to} passed",
                run_id=to,
                pid=1,
                pid_started=None,
                host="build-host",
                process_tag="x",
            ),
            started_at=T0 - 3600 * (4 - to) + 10,
            is_stale=lambda d: True,
        )
        statuses = [(to, VersionStatus.LIVE, "deployed")]
        if previous:
            statuses.append((previous, VersionStatus.PREVIOUS, f"superseded by v{to}"))
        store.deployments.finish(
            deployment.id,
            DeployOutcome.SUCCEEDED,
            ended_at=T0 - 3600 * (4 - to) + 11,
            message=f"v{to} is live",
            statuses=statuses,
        )
    # A runner of this host that has died (kill -9): a process that ended.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = store.runs.create(
        "churn-model",
        [("train", (), 1), ("evaluate", ("train",), 1), ("deploy", ("evaluate",), 1)],
        started_at=T0,
        pid=dead.pid if runner_gone else 1,
        pid_started=None,
        host=socket.gethostname() if runner_gone else "build-host",
        config_path=str(config_path),
    )
    if cached:
        store.runs.update_stage(
            run_id,
            "train",
            state=StageState.CACHED,
            started_at=T0,
            ended_at=T0 + 0.004,
            cached_from_run=2,
            cached_from_stage="train",
            message="same inputs as run 2, stage train",
        )
    else:
        store.runs.update_stage(
            run_id,
            "train",
            state=StageState.PASSED,
            attempt=1,
            exit_code=0,
            started_at=T0,
            ended_at=T0 + 42.5,
            peak_rss_bytes=120 << 20,
            cpu_seconds=40.1,
        )
    train_lines = [f"epoch {i}/5  loss={1 / (i + 1):.4f}" for i in range(1, 6)]
    write_log(store, run_id, "train", ["training on 8000 samples", *train_lines], T0 + 1)
    for version, accuracy in ((2, 0.9375), (3, 0.9425)):
        store.samples.add(
            version=version,
            passed=True,
            metrics={"accuracy": accuracy},
            finding=None,
            created_at=T0 - 600,
            run_id=version,
        )
    if alerts:
        for at, kind, version, message in (
            (T0 - 7200, "deploy_failed", 2, "deploy of v2 failed: exit code 3"),
            (T0 - 3000, "rollback", 2, "rolled back from v3 to v2: [b]try the old one[/b]"),
            (T0 + 30, "run_failed", None, "run 3 failed: evaluate"),
        ):
            store.alerts.add(kind, message, created_at=at, version=version, run_id=None)
        store.alerts.acknowledge([1], by="ci", when=T0)
    if running or runner_gone:
        store.runs.update_stage(
            run_id,
            "evaluate",
            state=StageState.RUNNING,
            attempt=1,
            started_at=T0 + 43,
            cpu_percent=97.0,
            rss_bytes=310 << 20,
        )
    elif failed:
        store.runs.update_stage(
            run_id,
            "evaluate",
            state=StageState.FAILED,
            attempt=1,
            exit_code=0,
            started_at=T0 + 43,
            ended_at=T0 + 45,
            peak_rss_bytes=30 << 20,
            failed_gate="accuracy >= 0.97",
            message="gate accuracy >= 0.97 failed: accuracy 0.951 < 0.97",
        )
        store.runs.update_stage(
            run_id, "deploy", state=StageState.SKIPPED, message="evaluate did not pass"
        )
        store.runs.finish(
            run_id, RunState.FAILED, exit_code=1, ended_at=T0 + 45, message="failed: evaluate"
        )
    else:
        store.runs.update_stage(
            run_id,
            "evaluate",
            state=StageState.PASSED,
            attempt=1,
            exit_code=0,
            started_at=T0 + 43,
            ended_at=T0 + 45,
            peak_rss_bytes=30 << 20,
        )
        store.runs.update_stage(
            run_id,
            "deploy",
            state=StageState.PASSED,
            attempt=1,
            exit_code=0,
            started_at=T0 + 45,
            ended_at=T0 + 46,
            peak_rss_bytes=20 << 20,
        )
        write_log(store, run_id, "deploy", ["deploying v3", "v3 is now served"], T0 + 45)
        store.runs.finish(run_id, RunState.PASSED, exit_code=0, ended_at=T0 + 46)
    evaluation = [f"scoring batch {i}/40: {'█' * (i // 2)}" for i in range(1, 41)]
    write_log(store, run_id, "evaluate", [*evaluation, "accuracy 0.951"], T0 + 44)
    if series:
        loss = [(step, 0.08 + 0.6 * 0.9**step + 0.01 * (step % 3)) for step in range(1, 41)]
        store.series.record_points(
            run_id,
            "train",
            [("loss", s, v) for s, v in loss] + [("val_loss", s, v + 0.05) for s, v in loss],
            T0 + 30,
        )
        store.runs.record_metrics(
            run_id, "train", {"loss": loss[-1][1], "val_loss": loss[-1][1] + 0.05}
        )
        store.series.record_points(run_id, "evaluate", [("accuracy", 0, 0.951)], T0 + 44)
        store.runs.record_metrics(run_id, "evaluate", {"accuracy": 0.951})
    if decision:
        store.decisions.add(
            version=3, target=2, finding="accuracy 0.61 < 0.85", created_at=T0 + 100
        )
    store.close()
    # What the dashboard would start (`mlci recover`) is asked for, not started: the
    # picture is of the moment it saw the runner gone.
    # Recovery asked for, alerts acknowledged: pictured as asked, nothing started.
    spawn = (lambda args: subprocess.Popen(["true"])) if runner_gone or alerts else None
    return make_app(
        config, clock=lambda: T0 + 120, poll_interval=3600, spawn=spawn, read_only=read_only
    )


async def loaded(pilot) -> None:
    """The dashboard has read the store, with its run, and drawn it."""
    await shown(pilot, lambda: pilot.app.snapshot.run is not None, what="the run")


def empty_store(tmp_path: Path) -> MlciApp:
    """A pipeline that never ran: its stages are shown pending, with what they need."""
    project = Project(tmp_path)
    setup(project)
    config = load_config(project.config_path, environ={})
    Store.open(config.pipeline.state_dir).close()
    return make_app(config, clock=lambda: T0 + 120, poll_interval=3600)


def reading_store(tmp_path: Path) -> MlciApp:
    """A pipeline that never ran, whose stages need others for the outs they read:
    each pane says which out (wrapped over the lines the pane has)."""
    (tmp_path / "config.toml").write_text(
        """
[pipeline]
name = "churn-model"
[stages.train]
command = "true"
deps = ["data"]
outs = ["build/model.txt"]
[stages.prepare]
command = "true"
outs = ["data/clean.csv"]
[stages.evaluate]
command = "true"
needs = ["train"]
deps = ["build/model.txt", "data/clean.csv"]
"""
    )
    config = load_config(tmp_path / "config.toml", environ={})
    Store.open(config.pipeline.state_dir).close()
    return make_app(config, clock=lambda: T0 + 120, poll_interval=3600)


def many_stages_store(tmp_path: Path) -> MlciApp:
    """A pipeline of 40 stages that never ran: more than the list has rows for."""
    (tmp_path / "config.toml").write_text(
        '[pipeline]\nname = "shards"\n'
        + "".join(
            f'[stages.shard-{i:02d}]\ncommand = "true"\n'
            + (f'needs = ["shard-{i - 1:02d}"]\n' if i else "")
            for i in range(40)
        )
    )
    config = load_config(tmp_path / "config.toml", environ={})
    Store.open(config.pipeline.state_dir).close()
    return make_app(config, clock=lambda: T0 + 120, poll_interval=3600)


async def near_the_end(pilot) -> None:
    """The stage list scrolled to its end, then the selection two stages up."""
    await settled(pilot)
    await pilot.press("end", "up", "up")
    await settle(pilot)


def pressing(*keys: str):
    """The keys, pressed once the store is shown; the picture is taken when the app
    has taken them in (a screen opened, its reads drawn)."""

    async def before(pilot) -> None:
        await loaded(pilot)
        await pilot.press(*keys)
        # A blinking cursor would make the picture depend on when it is taken.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await settle(pilot)

    return before


async def settled(pilot) -> None:
    """A store without runs: shown once the config's stages are drawn."""
    await shown(pilot)


def experiments_store(tmp_path: Path) -> MlciApp:
    """The finished run's store with a sweep of six experiments beside it: passed,
    failed, running and queued."""
    app = make_store(tmp_path)
    write_experiments(app.config.pipeline.state_dir, app.config.path, t0=T0 - 600)
    return app


def in_experiments(*keys: str):
    """``e``, then once the experiments are drawn, ``keys``."""

    async def before(pilot) -> None:
        from mlci_tui.tui.screens.experiments_screen import ExperimentsScreen

        await loaded(pilot)
        await pilot.press("e")
        app = pilot.app
        await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen) and app.screen.loaded)
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return before


SCREENS = {
    "no_runs": (empty_store, settled),
    "needs_from_outs": (reading_store, settled),
    "many_stages": (many_stages_store, near_the_end),
    "running": (lambda path: make_store(path, running=True), loaded),
    "runner_gone": (lambda path: make_store(path, runner_gone=True), loaded),
    "failed_run": (lambda path: make_store(path, failed=True), loaded),
    "finished_run": (make_store, loaded),
    "cached_run": (lambda path: make_store(path, cached=True), loaded),
    "help": (make_store, pressing("question_mark")),
    "runs": (lambda path: make_store(path, failed=True), pressing("p")),
    "search": (make_store, pressing("tab", "slash", *"epoch")),
    "search_found": (
        lambda path: make_store(path, failed=True),
        pressing("tab", "slash", *"batch 1", "enter", "n"),
    ),
    "stages_filter": (make_store, pressing("slash", *"ev", "enter")),
    "versions_filter": (make_store, pressing("v", "slash", *"live", "enter")),
    "runs_filter": (lambda path: make_store(path, failed=True), pressing("p", "slash", *"fail")),
    "whole_run_log": (lambda path: make_store(path, failed=True), pressing("L")),
    "rollback_confirmation": (make_store, pressing("v", "R")),
    # Not the version `mlci rollback` would pick: the confirmation names that one.
    "rollback_not_default": (make_store, pressing("v", "down", "R")),
    "cancel_confirmation": (lambda path: make_store(path, running=True), pressing("c")),
    "decision": (lambda path: make_store(path, decision=True), pressing("a")),
    "alerts": (lambda path: make_store(path, failed=True, alerts=True), pressing("A")),
    "alerts_acknowledged": (
        lambda path: make_store(path, failed=True, alerts=True),
        pressing("A", "enter"),
    ),
    "alert_bar": (lambda path: make_store(path, failed=True, alerts=True), loaded),
    "zoomed_log": (lambda path: make_store(path, failed=True), pressing("z", "w")),
    "palette": (make_store, pressing("ctrl+p", *"roll")),
    "plot": (lambda path: make_store(path, series=True), pressing("up", "up", "g")),
    "plot_hidden_line": (
        lambda path: make_store(path, series=True),
        pressing("up", "up", "g", "2"),
    ),
    "plot_versions": (make_store, pressing("v", "g")),
    "diff": (lambda path: make_store(path, series=True), pressing("v", "down", "d")),
    "graph": (lambda path: make_store(path, failed=True), pressing("D")),
    "experiments": (experiments_store, in_experiments()),
    "experiments_promote": (experiments_store, in_experiments("down", "P")),
    "experiments_plot": (
        experiments_store,
        in_experiments("space", "down", "down", "down", "space", "g"),
    ),
    # `mlci tui --read-only`: the header says so; no key that acts in the key bar, the
    # alert bar, the help or the alerts.
    "read_only": (lambda path: make_store(path, decision=True, read_only=True), loaded),
    "read_only_help": (
        lambda path: make_store(path, read_only=True),
        pressing("question_mark"),
    ),
    "read_only_alerts": (
        lambda path: make_store(path, failed=True, alerts=True, read_only=True),
        pressing("A"),
    ),
}


@pytest.mark.parametrize("size", SIZES, ids=["100x30", "80x24"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare, tmp_path: Path, screen: str, size: tuple[int, int]) -> None:
    build, before = SCREENS[screen]
    assert snap_compare(build(tmp_path), terminal_size=size, run_before=before)


def test_read_only_at_the_smallest_size(snap_compare, tmp_path: Path) -> None:
    app = make_store(tmp_path, decision=True, read_only=True)
    assert snap_compare(app, terminal_size=(60, 15), run_before=loaded)


def test_the_rollback_confirmation_scrolled_at_the_smallest_size(
    snap_compare, tmp_path: Path
) -> None:
    """Scrolled to its end at 60x15: the question, the heads of its columns (now, after)
    and its keys stay in sight over the rows that scrolled."""

    async def before(pilot) -> None:
        await loaded(pilot)
        await pilot.press("v", "down", "R")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)

    assert snap_compare(make_store(tmp_path), terminal_size=(60, 15), run_before=before)


@pytest.mark.parametrize("size", [(60, 15), (200, 50)], ids=["60x15", "200x50"])
def test_the_graph_at_the_smallest_and_largest_sizes(
    snap_compare, tmp_path: Path, size: tuple[int, int]
) -> None:
    async def before(pilot) -> None:
        await settled(pilot)
        await pilot.press("D")
        await settle(pilot)

    assert snap_compare(reading_store(tmp_path), terminal_size=size, run_before=before)


def test_plot_without_colour(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under NO_COLOR the lines are told apart by their markers."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_store(tmp_path, series=True)
    assert snap_compare(app, terminal_size=(100, 30), run_before=pressing("up", "up", "g"))


def test_hostile_output(snap_compare, tmp_path: Path) -> None:
    """Markup, terminal escapes, control bytes and invalid UTF-8, shown as harmless text."""
    config_path = tmp_path / "config.toml"
    config_path.write_text('[pipeline]\nname = "hostile"\n[stages.evil]\ncommand = "true"\n')
    config = load_config(config_path, environ={})
    store = Store.open(config.pipeline.state_dir)
    run_id = store.runs.create(
        "hostile",
        [("evil", (), 1)],
        started_at=T0,
        pid=1,
        pid_started=None,
        host="build-host",
        config_path=str(config_path),
    )
    log = LogWriter(store.log_path(run_id, "evil"))
    log.output(Stream.STDOUT, HOSTILE.rstrip(b"\n"), T0 + 1)
    log.output(Stream.STDERR, b"\x1b[1;31mbold red on stderr\x1b[0m \x07\x7f", T0 + 2)
    log.close()
    store.runs.update_stage(
        run_id, "evil", state=StageState.PASSED, exit_code=0, started_at=T0, ended_at=T0 + 3
    )
    store.runs.finish(run_id, RunState.PASSED, exit_code=0, ended_at=T0 + 3)
    store.close()
    app = make_app(config, clock=lambda: T0 + 120, poll_interval=3600)
    assert snap_compare(app, terminal_size=(100, 30), run_before=loaded)


DIALOG_PIPELINE = """
[pipeline]
name = "churn-model"

[params]
train.epochs = 40
train.lr = 0.05
train.seed = 0

[stages.prepare]
command = "mkdir -p build && cp data.csv build/clean.csv && echo prepared"
deps = ["data.csv"]
outs = ["build/clean.csv"]

[stages.train]
command = "cat build/clean.csv > build/model.txt && echo seed $MLCI_PARAM_TRAIN_SEED"
deps = ["build/clean.csv"]
params = ["train"]
outs = ["build/model.txt"]

[stages.report]
command = "echo report"
needs = ["prepare"]
deps = ["data.csv"]
"""


def dialog_store(tmp_path: Path) -> MlciApp:
    """A pipeline that ran once for real (so its stages can be cached), its times and
    figures then fixed in the store so that every render is the same."""
    project = Project(tmp_path)
    project.write(DIALOG_PIPELINE)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    assert project.mlci("run").returncode == 0
    db = sqlite3.connect(project.state_dir / "mlci.db")
    with db:
        db.execute("UPDATE runs SET started_at = ?, ended_at = ?", (T0, T0 + 12))
        db.execute(
            "UPDATE stages SET started_at = ?, ended_at = ?, cpu_percent = NULL,"
            " rss_bytes = NULL, peak_rss_bytes = NULL, cpu_seconds = NULL",
            (T0, T0 + 4),
        )
    db.close()
    config = load_config(project.config_path, environ={})
    return make_app(config, clock=lambda: T0 + 120, poll_interval=3600)


@pytest.mark.parametrize("size", [(80, 24), (60, 15)], ids=["80x24", "60x15"])
def test_run_dialog(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """`r`, a param changed and `report` forced: the preview says prepare is cached,
    train and report run (forced), and why."""
    keys = ("r", "tab", "tab", "ctrl+u", "1", "tab", "down", "down", "space")
    assert snap_compare(dialog_store(tmp_path), terminal_size=size, run_before=pressing(*keys))


# The main screen at each size, from 60x15 to 200x50 (README: "At each size"). ------

DEMO_LIKE = """
[pipeline]
name = "pump-failure"
[params]
train.seed = 0
[stages.test]
command = "true"
[stages.prepare]
command = "true"
[stages.train]
command = "true"
needs = ["test", "prepare"]
artifact = "build/model.json"
[stages.evaluate]
command = "true"
needs = ["train"]
gates = ["accuracy >= 0.90"]
[deploy]
command = "true"
[monitor]
command = "true"
checks = ["accuracy >= 0.85"]
"""


def demo_like_store(tmp_path: Path) -> MlciApp:
    """The demo's shape, after its last step: six stages, the monitor failed and
    rolled v3 back to v1 (an alert says so), each version saying why in a long
    DESCRIPTION."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(DEMO_LIKE)
    config = load_config(config_path, environ={})
    store = Store.open(config.pipeline.state_dir)
    names = ["test", "prepare", "train", "evaluate", "deploy", "monitor"]
    needs = {"train": ("test", "prepare"), "evaluate": ("train",), "deploy": ("evaluate",)}
    needs["monitor"] = ("deploy",)
    for number in (1, 2):
        earlier = store.runs.create(
            "pump-failure",
            [(name, needs.get(name, ()), 1) for name in names],
            started_at=T0 - 3600 * (4 - number),
            pid=1,
            pid_started=None,
            host="build-host",
            config_path=str(config_path),
        )
        store.runs.finish(
            earlier, RunState.PASSED, exit_code=0, ended_at=T0 - 3600 * (4 - number) + 60
        )
    run_id = store.runs.create(
        "pump-failure",
        [(name, needs.get(name, ()), 1) for name in names],
        started_at=T0,
        pid=1,
        pid_started=None,
        host="build-host",
        config_path=str(config_path),
    )
    for at, name in enumerate(names):
        state = StageState.FAILED if name == "monitor" else StageState.PASSED
        store.runs.update_stage(
            run_id,
            name,
            state=state,
            attempt=1,
            exit_code=0,
            started_at=T0 + 8 * at,
            ended_at=T0 + 8 * at + 7.5,
            peak_rss_bytes=(20 + at) << 20,
            message="v3 failed its analysis: accuracy 0.5675 < 0.85" if name == "monitor" else None,
        )
        lines = [
            f"{name}: step {i}/30 loss={1 / (i + 1):.4f} accuracy=0.95{i % 10}" for i in range(30)
        ]
        write_log(store, run_id, name, lines, T0 + 8 * at + 1)
    store.runs.finish(run_id, RunState.ROLLED_BACK, exit_code=1, ended_at=T0 + 52)
    for number, accuracy in ((1, 0.951), (2, 0.957), (3, 0.956)):
        store.versions.add(
            run_id=number,
            created_at=T0 - 3600 * (4 - number),
            artifact_name="model.json",
            source_path="build/model.json",
            is_dir=False,
            sha256=f"{number:x}" * 64,
            size_bytes=42,
            metrics={
                MetricKey("evaluate", "accuracy"): accuracy,
                MetricKey("evaluate", "f1"): accuracy - 0.02,
            },
            git_commit=None,
            git_dirty=None,
            params={"train.seed": number - 1},
        )
    why = {
        3: (VersionStatus.ROLLED_BACK, "auto-rolled back: accuracy 0.5675 < 0.85"),
        2: (VersionStatus.ROLLED_BACK, "rolled back to v1"),
        1: (VersionStatus.LIVE, "rolled back from v3 (automatic)"),
    }
    deployment = store.deployments.begin(
        DeploymentRequest(
            kind=DeployKind.AUTO_ROLLBACK,
            from_version=3,
            to_version=1,
            user="monitor",
            reason="accuracy 0.5675 < 0.85",
            run_id=3,
            pid=1,
            pid_started=None,
            host="build-host",
            process_tag="x",
        ),
        started_at=T0 + 50,
        is_stale=lambda d: True,
    )
    store.deployments.finish(
        deployment.id,
        DeployOutcome.SUCCEEDED,
        ended_at=T0 + 51,
        message="v1 is live",
        statuses=[(n, status, text) for n, (status, text) in why.items()],
    )
    # What the monitor measured of each (the LIVE column).
    for number, live in ((1, 0.9575), (2, 0.955), (3, 0.5675)):
        store.samples.add(
            version=number,
            passed=live >= 0.85,
            metrics={"accuracy": live},
            finding=None,
            created_at=T0 + 40 + number,
            run_id=number,
        )
    store.alerts.add(
        "auto_rollback",
        "rolled back from v3 to v1: accuracy 0.5675 < 0.85",
        created_at=T0 + 51,
        version=3,
        run_id=None,
    )
    store.close()
    return make_app(config, clock=lambda: T0 + 120, poll_interval=3600)


EVERY_SIZE = [(60, 15), (80, 24), (100, 30), (200, 50)]


@pytest.mark.parametrize("size", EVERY_SIZE, ids=[f"{w}x{h}" for w, h in EVERY_SIZE])
@pytest.mark.parametrize("colour", [True, False], ids=["colour", "no_color"])
def test_main_screen_at_each_size(
    snap_compare,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    colour: bool,
) -> None:
    if not colour:
        monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(demo_like_store(tmp_path), terminal_size=size, run_before=loaded)
