"""MlciApp: the dashboard, a viewer of the run store.

It never runs stages or deploys itself: ``r`` and ``R`` start detached
``mlci run`` / ``mlci rollback`` processes that outlive it, and everything
on screen is read back from the store. Read-only (`mlci tui --read-only`), it
offers none of the keys that act (`MlciApp.ACTING`). It polls cheaply twice a second (the
store reader says when a read is due: SQLite's ``data_version``, or a run in
progress), so it idles at about no CPU and shows a run started anywhere
within a second. Its keys are its ``BINDINGS`` and its panes': the footer
and the help screen are built from them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical
from textual.driver import Driver
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget

from mlci_tui import procs
from mlci_tui.config import Config, load_config, need_text, param_text
from mlci_tui.errors import ExitCode, MlciError, UsageError
from mlci_tui.masking import MASK, SecretMasker
from mlci_tui.states import RunState, StageState
from mlci_tui.store.reader import Snapshot, StoreReader
from mlci_tui.store.records import AlertRecord, RunRecord, StageRecord, VersionRecord
from mlci_tui.textsafe import field_text, terminal_line
from mlci_tui.tui.driver import clearing
from mlci_tui.tui.keys import bindings_of, keys_of, without
from mlci_tui.tui.read_again import ReadAgain
from mlci_tui.tui.screens.search import filter_hint, filter_title, open_filter
from mlci_tui.tui.text import plain
from mlci_tui.tui.widgets.alert_bar import AlertBar
from mlci_tui.tui.widgets.header_bar import HeaderBar
from mlci_tui.tui.widgets.key_bar import KeyBar
from mlci_tui.tui.widgets.log_view import LogView
from mlci_tui.tui.widgets.stage_pane import StageList, StagePane
from mlci_tui.tui.widgets.version_table import VersionPanel, VersionTable

if TYPE_CHECKING:
    from mlci_tui.store.compare import Comparison
    from mlci_tui.tui.screens.run_dialog import PlannedStage, RunPlan

# The screens are imported where they open: the first frame needs none of them.

POLL_S = 0.5
_KEY_NAMES = {"enter": "Enter", "escape": "Esc"}
# The screen's own keys for moving between panes, named as the README names them.
PANE_MOVES = {"app.focus_next": "Next pane", "app.focus_previous": "Previous pane"}

Spawner = Callable[[list[str]], "subprocess.Popen[bytes] | None"]


def _dashboard_commands() -> type[Provider]:
    """The palette's commands, imported when the palette first opens."""
    from mlci_tui.tui.palette import DashboardCommands

    return DashboardCommands


class MlciApp(App[None]):
    """The dashboard for one pipeline."""

    CSS_PATH = Path(__file__).parent / "app.tcss"
    # A zoomed log keeps the keys line, as it kept Textual's Footer.
    ALLOW_IN_MAXIMIZED_VIEW: ClassVar[str] = "KeyBar"
    TITLE = "mlci"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {_dashboard_commands}
    # The screen's classes by size, for app.tcss's layouts (README: "At each size").
    # Not ClassVar-annotated: Textual declares them as (optional) instance attributes.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-medium"), (30, "-tall")]  # noqa: RUF012
    NOTIFICATION_TIMEOUT = 3
    ACTING: ClassVar[frozenset[str]] = frozenset(
        {"start_run", "rerun_stage", "rerun_failed", "cancel_run", "rollback", "answer"}
    )
    """The actions that change something (each starts an `mlci` process that does, or
    signals a runner). A read-only dashboard offers none of them: `check_action`
    hides their keys from the key bar and turns them off, and the help and the
    palette leave them out (`offers`)."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "r",
            "start_run",
            "Run",
            tooltip="a dialog: params, forces, what would run",
            id="run",
        ),
        Binding(
            "e",
            "show_experiments",
            "Experiments",
            # In the help, not the footer: at 80 columns it would push ? and q out.
            show=False,
            # What it does read-only too: its keys that act are on its own key bar.
            tooltip="the table, live: sort, filter, diff, plot",
            id="experiments",
        ),
        Binding(
            "s",
            "rerun_stage",
            "Re-run stage",
            show=False,
            tooltip="the selected stage, forced",
            id="rerun",
        ),
        Binding(
            "E",
            "rerun_failed",
            "Re-run failed",
            show=False,
            tooltip="what did not pass in the shown run",
            id="rerun.failed",
        ),
        Binding("c", "cancel_run", "Cancel", tooltip="cancel the running run", id="cancel"),
        Binding(
            "v",
            "focus_versions",
            "Versions",
            tooltip="the versions, at the one a rollback would choose",
            id="versions",
        ),
        Binding("R", "rollback", "Roll back", tooltip="to the highlighted version", id="rollback"),
        Binding("a", "answer", "Answer", tooltip="the monitor's pending decision", id="answer"),
        Binding("p", "pick_run", "Runs", tooltip="show a past run, or compare two", id="runs"),
        Binding(
            "g",
            "plot",
            "Plot",
            tooltip="the stage's metric series; on the versions, a metric across them",
            id="plot",
        ),
        Binding("A", "show_alerts", "Alerts", show=False, tooltip="newest first", id="alerts"),
        Binding(
            "D",
            "show_graph",
            "Graph",
            show=False,
            tooltip="which stage needs which, with their states",
            id="graph",
        ),
        Binding(
            "slash",
            "find",
            "Search",
            tooltip="the log; on the stages or the versions, a filter of the list",
            id="search",
        ),
        *LogView.DASHBOARD_BINDINGS,
        Binding(
            "L",
            "toggle_run_log",
            "Whole run",
            show=False,
            tooltip="every stage's log as one, as mlci run prints it (or back)",
            id="log.run",
        ),
        Binding("question_mark", "help", "Help", tooltip="this list", id="help"),
        Binding("q", "quit_dashboard", "Quit", tooltip="a run goes on", id="quit"),
        # Textual's ctrl+c only says how to quit, and its ctrl+q quits without saying
        # that a run goes on: here both quit as q does, from any screen.
        Binding("ctrl+c", "quit_dashboard", "Quit", show=False, priority=True, id="quit.ctrl-c"),
        Binding("ctrl+q", "quit_dashboard", "Quit", show=False, priority=True, id="quit.ctrl-q"),
        # Textual binds it too, but unlisted: declared here, the help shows it.
        Binding(
            "ctrl+p",
            "command_palette",
            "Commands",
            show=False,
            priority=True,
            tooltip="every action, by name",
            id="palette",
        ),
    ]

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = POLL_S,
        spawn: Spawner | None = None,
        read_only: bool = False,
    ) -> None:
        # Without colour, plain attributes (bold, reverse) rather than Textual's greys,
        # which turn dim text into dark grey on black.
        super().__init__(ansi_color=True if os.environ.get("NO_COLOR") else None)
        self.config = config
        self.read_only = read_only
        """Nothing that acts is offered (`ACTING`): what `mlci serve --read-only` serves."""
        self.clock = clock
        self.poll_interval = poll_interval
        self.reader = StoreReader(config.pipeline.state_dir)
        self.spawn: Spawner = spawn or self._spawn_detached
        self.snapshot = Snapshot()
        self.pinned: int | None = None
        """The run the user picked; None follows the latest run."""
        self.auto_stage = True
        """Whether the log follows whichever stage is running."""
        self.whole_run = False
        """Whether the log shows the whole run's log rather than the selected stage's."""
        self._keep_stage: str | None = None
        """The stage shown when another run was picked, to show again in that run."""
        self._children: list[tuple[subprocess.Popen[bytes], str, IO[bytes]]] = []
        self._settling: set[int] = set()
        """Runs whose runner died, for which recovery was asked (once each)."""
        self._reads = ReadAgain(self._start_read)
        self._footer_answer = False
        self._records: dict[str, StageRecord] = {}
        """The shown run's stages by name."""
        # Held here, not queried: a modal screen on top would hide them from queries.
        self.header = HeaderBar(config.pipeline.name, read_only=read_only, id="header")
        self.stages = StageList(id="stages", fill=self._fill_pane)
        self.log_view = LogView(id="log")
        self.version_panel = VersionPanel(id="version-panel")
        self.version_panel.border_title = "model versions"
        self.alert_bar = AlertBar(answers=not read_only, id="alerts")

    # Layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.header
        with Horizontal(id="main"):
            with Vertical(id="stages-box") as box:
                box.border_title = "stages"
                yield self.stages
            yield self.log_view
        yield self.version_panel
        yield self.alert_bar
        # ctrl+p is in the help: at 80 columns the footer has no room for it.
        yield KeyBar()

    def on_mount(self) -> None:
        self.stages.focus()
        self.set_interval(self.poll_interval, self._poll)
        self._show_overview()
        self._poll()

    def _show_overview(self) -> None:
        """The run and its stages, in the first frame: read here, in milliseconds (one
        indexed query; in WAL mode a reader waits for no writer). The versions, the
        alerts and the logs, which can take longer, follow from the read `_poll` starts."""
        try:
            overview = self.reader.overview(self.pinned)
        except Exception:  # a damaged store: the read that follows says so
            return
        self._show_run(overview)

    # Watching the store ----------------------------------------------------------

    @property
    def reading(self) -> bool:
        """Whether a read of the store is in flight (or its result not yet shown)."""
        return self._reads.running

    def _poll(self) -> None:
        self._reap_children()
        if self.reader.due(self.pinned):
            self._reads.request()
        run = self.snapshot.run
        if run is not None and run.state is RunState.RUNNING:
            self.log_view.poll()

    def _start_read(self) -> None:
        # The run to read is the one pinned when the read starts, not when it was asked.
        self._read_store(self.pinned)

    @work(thread=True, group="store")
    def _read_store(self, pinned: int | None) -> None:
        try:
            snapshot = self.reader.snapshot(pinned)
        except Exception as error:  # a damaged store: say so, keep the dashboard up
            self._hand_over(self._failed, error)
            return
        self._hand_over(self._apply, snapshot)

    def _hand_over(self, callback: Callable[..., None], *args: object) -> None:
        """Run ``callback`` on the UI thread, unless the app has closed meanwhile."""
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(callback, *args)

    def _failed(self, error: Exception) -> None:
        self.say(str(error), title="cannot read the store", severity="error")
        self._reads.done()

    def _apply(self, snapshot: Snapshot) -> None:
        self._show_run(snapshot)
        self._show_log()
        default = snapshot.rollback_target or snapshot.live
        self.version_panel.show(
            snapshot.versions,
            list(self.config.key_metrics),
            snapshot.version_count,
            None if default is None else default.number,
        )
        self.alert_bar.show(snapshot)
        run = snapshot.run
        if snapshot.runner_gone and run is not None:
            self._settle(run)
        # The footer is rebuilt on every refresh of the bindings: only when it changes.
        if bool(snapshot.decisions) != self._footer_answer:
            self._footer_answer = bool(snapshot.decisions)
            self.refresh_bindings()
        self._reads.done()

    def _show_run(self, snapshot: Snapshot) -> None:
        """The header and the stage panes, from ``snapshot``."""
        previous = self.snapshot.run
        self.snapshot = snapshot
        run = snapshot.run
        self._records = {stage.name: stage for stage in run.stages} if run else {}
        now = self.clock()
        log = self.log_view
        self.header.show(snapshot, now, log.follow)
        stages = self.stages
        new_run = run is not None and (previous is None or previous.id != run.id)
        planned = self.planned_stages
        names = [s.name for s in run.stages] if run else []
        # Stages of the config the run shown does not have (none yet, or added since).
        names += [name for name in planned if name not in self._records]
        if new_run and run is not None:
            kept, self._keep_stage = self._keep_stage, None
            self.auto_stage = True
            if kept is not None and run.stage(kept) is not None:
                self.auto_stage = False
                stages.set_stages(names)
                stages.select(kept)
        stages.set_stages(names)
        self._fill_panes(now)
        if run is not None and self.auto_stage:
            active = _active_stage(run)
            if active is not None and active != stages.selected_name:
                stages.select(active)

    def _fill_panes(self, now: float) -> None:
        """Each stage pane in view, from the snapshot."""
        for pane in self.stages.panes():
            self._fill_pane(pane, now)

    def _fill_pane(self, pane: StagePane, now: float | None = None) -> None:
        """The figures of ``pane``'s stage, from the snapshot."""
        name = pane.stage_name
        record = self._records.get(name)
        pane.update_stage(
            record,
            self.snapshot.tails.get(name, ()),
            self.clock() if now is None else now,
            needs=self.planned_stages.get(name, ()),
            in_run=self.snapshot.run is None or record is not None,
            clock_stopped=self.snapshot.runner_gone,
        )

    def on_stage_list_filtered(self, message: StageList.Filtered) -> None:
        """Other panes shown: filled at once, and the pane's title says the filter is on."""
        self._fill_panes(self.clock())
        box = self.query_one("#stages-box")
        box.border_title = filter_title("stages", message.text)
        box.border_subtitle = filter_hint(message.text)

    @cached_property
    def planned_stages(self) -> dict[str, tuple[str, ...]]:
        """What the config would run, and what each stage needs (with the outs it reads
        of a stage it does not name): the stages of a full run's graph (`Config.edges`),
        mlci's own deploy and monitor included when configured (read once: the config
        does not change under a dashboard)."""
        root = self.config.root
        return {
            name: tuple(need_text(edge.source, edge.outs, root) for edge in edges)
            for name, edges in self.config.edges_into().items()
        }

    def _settle(self, run: RunRecord) -> None:
        """A run whose runner died: recovery stops what it left and marks it
        interrupted. The dashboard only reads; `mlci recover` does it, detached, as
        `r` starts a run."""
        if run.id in self._settling:
            return
        self._settling.add(run.id)
        if self.snapshot.readonly:
            self.say(
                f"run {run.id}'s runner is gone; the store is read-only here, so it"
                " stays marked running until mlci runs where it can write",
                severity="warning",
            )
        elif self.spawn(["recover"]) is not None:
            self.say(
                f"run {run.id}'s runner is gone: stopping what it left, marking it interrupted",
                severity="warning",
            )

    def _show_log(self) -> None:
        run = self.snapshot.run
        stages = self.stages
        log = self.log_view
        name = stages.selected_name
        if run is None or name is None:
            log.show(None)
            log.border_title = "log"
            return
        if self.whole_run:
            logs = [(s.name, self.reader.log_path(run.id, s.name)) for s in run.stages]
            log.show_run(logs)
            log.border_title = f"log · run {run.id} · every stage (L: {name} only)"
            log.show_job("")
            return
        path = self.reader.log_path(run.id, name)
        if path != log.path or log.run_logs is not None:
            log.show(path)
            log.border_title = f"log · {name} · run {run.id}"
        record = run.stage(name)
        job = ""
        if record is not None and record.job_id is not None:
            job = f"{record.job_kind} job {record.job_id} · {record.job_address}"
        log.show_job(job)

    def on_stage_list_selected(self, message: StageList.Selected) -> None:
        if message.by_user:
            # Picking a stage by hand stops the log jumping to the running one,
            # unless the pick is the running one.
            self.auto_stage = message.name == _active_stage(self.snapshot.run)
        # The selection is painted first; switching the log is the slower part.
        self.call_after_refresh(self._show_log)

    def on_log_view_follow_changed(self, message: LogView.FollowChanged) -> None:
        self.header.show(self.snapshot, self.clock(), message.follow)

    # Actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that cannot do anything now (the footer shows what can)."""
        # r and c stay in the footer whatever runs: changing the footer rebuilds it,
        # and that must not happen each time a run starts or ends.
        if not getattr(self.screen, "DASHBOARD_KEYS", True):
            # A screen with keys of its own (the experiments, the help): the main
            # screen's would act on what is hidden under it; quitting and help stay.
            return action in ("quit_dashboard", "help")
        return self.offers_now(action)

    def offers(self, action: str) -> bool:
        """Whether the dashboard offers ``action`` (the app's) at all: in a read-only
        one, none that acts."""
        return not (self.read_only and action in self.ACTING)

    def offers_now(self, action: str) -> bool:
        """Whether ``action`` can do anything now, on the keys as in the palette: one
        the dashboard offers, an answer only while a decision is pending, a rollback
        only with a `[deploy]`."""
        if not self.offers(action):
            return False
        if action == "answer":
            return bool(self.snapshot.decisions)
        if action == "rollback":
            return self.config.deploy is not None
        return True

    def action_start_run(self) -> None:
        from mlci_tui.tui.screens.run_dialog import RunPlan

        self._open_run_dialog(RunPlan("Start a run"))

    def action_rerun_stage(self) -> None:
        from mlci_tui.tui.screens.run_dialog import RunPlan

        name = self.stages.selected_name
        if name is None:
            hidden = "the filter hides every stage: Esc clears it"
            self.say(hidden if self.stages.filter_text else "no stage selected", severity="warning")
            return
        if name not in self.config.stages:
            if name in self.planned_stages:
                self.say(f"{name} runs only in a full run: r starts one", severity="warning")
            else:
                self.say(f"stage {name} is not in the config any more", severity="warning")
            return
        needs = [n for n in self.config.selected([name]) if n != name]
        what = f"with what it needs ({', '.join(needs)}), cached if unchanged" if needs else ""
        note = " ".join(filter(None, [f"Runs {name}, forced,", what])).rstrip(",") + "."
        params, said = self._shown_run_params()
        self._open_run_dialog(
            RunPlan(
                f"Re-run {name}", (name,), (name,), note + said + self._no_version_note(), params
            )
        )

    def action_rerun_failed(self) -> None:
        from mlci_tui.tui.screens.run_dialog import RunPlan

        run = self.snapshot.run
        if run is None:
            self.say("no run yet: r starts one", severity="warning")
            return
        failed = [
            s.name for s in run.stages if s.state not in (StageState.PASSED, StageState.CACHED)
        ]
        if not failed:
            self.say(f"run {run.id} has no stage that did not pass", severity="warning")
            return
        targets = tuple(name for name in failed if name in self.config.stages)
        title = f"Re-run what did not pass in run {run.id}: {', '.join(failed)}"
        # Deploy and monitor run in a full run alone; a stage gone from the config, never.
        full_only = [name for name in failed if name not in targets and name in self.planned_stages]
        gone = [name for name in failed if name not in targets and name not in full_only]
        if not targets and not full_only:
            self.say(
                f"{' and '.join(gone)}: not in the config any more; r starts a run",
                severity="warning",
            )
            return
        said = [f"{' and '.join(full_only)}: only in a full run (r)."] if full_only else []
        if gone:
            said.append(f"{' and '.join(gone)}: not in the config any more.")
        params, with_params = self._shown_run_params()
        if not targets:
            note = " ".join([*said, "A full run: the stages are cached if unchanged."])
            self._open_run_dialog(RunPlan(title, note=note + with_params, params=params))
            return
        note = " ".join(["With what they need, cached if unchanged.", *said]) + with_params
        self._open_run_dialog(
            RunPlan(title, targets, note=note + self._no_version_note(), params=params)
        )

    def _shown_run_params(self) -> tuple[dict[str, str], str]:
        """The params the shown run had where they differ from the config's (a re-run
        of it runs with them: each is a ``--set`` in the dialog), and a sentence that
        says so. A run records its params with secrets masked (``***``): those are left
        out, as the dialog leaves a secret's field empty; so is a value with a control
        character, which a field cannot show as it is."""
        run = self.snapshot.run
        if run is None:
            return {}, ""
        differ = {
            name: param_text(value)
            for name, value in run.params.items()
            if name in self.config.params
            and param_text(value) != param_text(self.config.params[name])
        }
        kept = {
            name: text
            for name, text in differ.items()
            if MASK.decode() not in text and text == field_text(text)
        }
        said = f" With run {run.id}'s params ({', '.join(kept)})." if kept else ""
        if left := [name for name in differ if name not in kept]:
            # Said, not silently replaced by the config's: the re-run differs there.
            said += (
                f" Not filled in ({', '.join(left)}): run {run.id} recorded them masked or"
                " with control characters; the config's values are used."
            )
        return kept, said

    def _no_version_note(self) -> str:
        if self.config.artifact_stage is None:
            return ""
        return " No version is registered: only a full run (r) registers and deploys one."

    def _open_run_dialog(self, plan: RunPlan) -> None:
        """The run dialog for ``plan``, unless a run runs; what it answers is started."""
        from mlci_tui.tui.screens.run_dialog import RunDialog

        running = self._running_run()
        if running is not None:
            self.say(f"run {running.id} is still running", severity="warning")
            return
        # The config as it is now, not as the dashboard read it at its start: the
        # fields are what the run reads.
        try:
            config = load_config(self.config.path)
        except MlciError as error:
            self.say(str(error), severity="error")
            return
        planned = list(config.selected(plan.targets)) if plan.targets else list(config.layers)
        masker = SecretMasker(config.secret_values(os.environ))
        dialog = RunDialog(config, plan, planned, self.dry_run, masker)
        self.push_screen(dialog, self._start_run)

    def dry_run(self, args: list[str]) -> list[PlannedStage]:
        """What `mlci run ARGS` would run and find cached, and why: `mlci run --dry-run
        --json`, the decisions `mlci why` prints (a process: the dashboard runs no
        pipeline code itself). `UsageError` with its line when mlci refuses."""
        from mlci_tui.tui.screens.run_dialog import PlannedStage

        done = subprocess.run(
            self._mlci(["run", *args, "--dry-run", "--json"]),
            cwd=self.config.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise UsageError(
                lines[-1] if lines else f"mlci run --dry-run: exit code {done.returncode}"
            )
        return [
            PlannedStage(row["stage"], row["decision"], "; ".join(row["reasons"]))
            for row in json.loads(done.stdout)
        ]

    def _start_run(self, args: list[str] | None) -> None:
        if args is None:
            return
        running = self._running_run()  # one may have started while the dialog was open
        if running is not None:
            self.say(f"run {running.id} is still running", severity="warning")
            return
        if self.spawn(["run", *args]) is not None:
            self.pinned = None
            self.say("starting a run; it goes on if you quit")
            self._reads.request()

    def action_cancel_run(self) -> None:
        from mlci_tui.tui.screens.confirm import ConfirmScreen

        run = self._running_run()
        if run is None:
            self.say("no run is running", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._cancel(run)

        body = "Its running stages are stopped."
        shown = self.snapshot.run
        if shown is not None and shown.id != run.id:
            # The run on screen is another (picked with p): say which one this stops.
            body = f"run {run.id} is running; you are looking at run {shown.id}. {body}"
        self.push_screen(
            ConfirmScreen(
                f"Cancel run {run.id}?",
                plain(body),
                yes="cancel the run",
                no="keep it running",
            ),
            answered,
        )

    def _cancel(self, run: RunRecord) -> None:
        if run.host != socket.gethostname() or run.pid is None:
            self.say(f"run {run.id} runs on {run.host}; cancel it there", severity="error")
            return
        if procs.ended_here(run.host, run.pid, run.pid_started):
            self.say(f"run {run.id} has no runner any more", severity="warning")
            return
        os.kill(run.pid, signal.SIGTERM)
        self.say(f"cancelling run {run.id}")

    def action_focus_versions(self) -> None:
        """Focus the versions, on the one `mlci rollback` would go back to: v R y rolls back."""
        table = self.version_panel.table
        # At once, not after the keys already read (`focus` waits for them): `v g`
        # typed together plots the versions.
        self.screen.set_focus(table)
        table.follow_default()

    def action_rollback(self) -> None:
        target = self.version_panel.table.selected_version
        if target is None:
            self.say("no version highlighted: press v, then pick one", severity="warning")
            return
        self._confirm_rollback(target)

    def rollback_to(self, number: int) -> None:
        """Roll back to version ``number``, after the confirmation (the palette's way)."""
        target = next((v for v in self.snapshot.versions if v.number == number), None)
        if target is not None:
            self.version_panel.table.select_version(number)
            self._confirm_rollback(target)

    def _confirm_rollback(self, target: VersionRecord) -> None:
        from mlci_tui.store.compare import compare_versions
        from mlci_tui.tui.screens.rollback import rollback_screen

        live = self.snapshot.live
        if live is not None and live.number == target.number:
            self.say(f"{target.name} is already live", severity="warning")
            return
        if target.pruned_at is not None:
            self.say(f"the artifact of {target.name} was pruned", severity="error")
            return

        def answered(yes: bool | None) -> None:
            if yes and self.spawn(["rollback", target.name, "--reason", "from the dashboard"]):
                self.say(f"rolling back to {target.name}")

        screen = rollback_screen(
            compare_versions(live, target, self.config.metric_checks),
            self.snapshot.rollback_target,
            self.clock(),
            list(self.config.key_metrics),
        )
        self.push_screen(screen, answered)

    def action_plot(self) -> None:
        if self.focused is self.version_panel.table:
            versions, metrics = self.snapshot.versions, list(self.config.key_metrics)
            self.open_plot(lambda plots: plots.VersionPlotScreen(versions, metrics))
            return
        run, name = self.snapshot.run, self.stages.selected_name
        if name is None and self.stages.filter_text:
            self.say("the filter hides every stage: Esc clears it", severity="warning")
            return
        if run is None or name is None or run.stage(name) is None:
            start = ": start a run with r" if self.offers("start_run") else ""
            self.say(f"no stage of a run to plot yet{start}", severity="warning")
            return
        run_id = run.id

        def running() -> bool:
            shown = self.snapshot.run
            record = shown.stage(name) if shown is not None and shown.id == run_id else None
            return record is not None and not record.state.finished

        self.open_plot(lambda plots: plots.SeriesPlotScreen(self.reader, run_id, name, running))

    def action_show_experiments(self) -> None:
        from mlci_tui.tui.screens.experiments_screen import ExperimentsScreen

        self.push_screen(
            ExperimentsScreen(
                self.reader,
                self.config,
                self.clock,
                poll_interval=self.poll_interval,
                readonly=self.read_only or self.snapshot.readonly,
                key_bar=KeyBar(),
            )
        )

    @work(thread=True, exclusive=True, group="plot")
    def open_plot(self, make: Callable[[ModuleType], Screen[None]]) -> None:
        """The plot screen's module is imported here, off the UI thread, the first time:
        it brings textual-plot and numpy (0.2-0.5 s), which the dashboard's start skips."""
        import mlci_tui.tui.screens.plot as plots

        def show() -> None:
            self.push_screen(make(plots))

        self._hand_over(show)

    def action_compare_version(self) -> None:
        """Compare the highlighted version with the live one."""
        target = self.version_panel.table.selected_version
        live = self.snapshot.live
        if target is None:
            self.say("no version highlighted: press v, then pick one", severity="warning")
            return
        if live is None:
            self.say("no version is live to compare with", severity="warning")
            return
        self.compare("live", target.name)

    @work(thread=True, exclusive=True, group="diff")
    def compare(self, old: str, new: str) -> None:
        """The diff of ``old`` and ``new`` (``12``, ``v3``, ``live``), read off the UI thread."""
        try:
            artifact = self.config.artifact_stage
            comparison = self.reader.comparison(
                old, new, self.config.metric_checks, artifact.name if artifact else None
            )
        except MlciError as error:
            message = str(error)
            self._hand_over(lambda: self.say(message, severity="error"))
            return
        self._hand_over(self._show_comparison, comparison)

    def _show_comparison(self, comparison: Comparison) -> None:
        from mlci_tui.tui.screens.diff import DiffScreen

        self.push_screen(DiffScreen(comparison))

    def action_answer(self) -> None:
        from mlci_tui.tui.screens.decision import DecisionScreen

        # check_action lets `a` run only while a decision is pending; the palette may
        # have listed it before the decision was answered elsewhere.
        if not self.snapshot.decisions:
            self.say("no decision is pending", severity="warning")
            return
        decision = self.snapshot.decisions[0]

        def answered(answer: str | None) -> None:
            # DecisionScreen answers "rollback" only for a decision with a target.
            if answer == "rollback":
                reason = f"confirmed: {decision.finding}"
                if self.spawn(["rollback", f"v{decision.target}", "--reason", reason]):
                    self.say(f"rolling back to v{decision.target}")
            elif answer == "dismiss" and self.spawn(["alerts", "--dismiss"]):
                self.say("decision dismissed")

        self.push_screen(DecisionScreen(decision), answered)

    def action_pick_run(self) -> None:
        self._pick_run()

    def open_run(self, run_id: int) -> None:
        """Show run ``run_id`` (the palette's way to pick a run)."""
        self.pinned = None if run_id == self.snapshot.latest_run_id else run_id
        self._keep_stage = self.stages.selected_name
        self._reads.request()

    def show_stage(self, name: str) -> None:
        """Show stage ``name``'s log, as picking it in the stage list does."""
        self.stages.select(name, by_user=True)

    def action_show_alerts(self) -> None:
        self._read_alerts()

    @work(thread=True, exclusive=True, group="alerts")
    def _read_alerts(self) -> None:
        self._hand_over(self._show_alerts, self.reader.alerts())

    def _show_alerts(self, alerts: list[AlertRecord]) -> None:
        from mlci_tui.tui.screens.alerts_screen import AlertsScreen

        def acknowledge(ids: list[int]) -> bool:
            if self.spawn(["alerts", "--ack", *map(str, ids)]) is None:
                return False
            self.say(f"acknowledged {len(ids)} alert{'s' * (len(ids) != 1)}")
            return True

        # Read-only: the alerts to read, nothing to acknowledge them with.
        self.push_screen(AlertsScreen(alerts, None if self.read_only else acknowledge))

    @work(thread=True, exclusive=True, group="runs")
    def _pick_run(self) -> None:
        self._hand_over(self._show_runs, self.reader.runs())

    def _show_runs(self, runs: list[RunRecord]) -> None:
        from mlci_tui.tui.screens.runs_screen import LATEST, RunsScreen

        def picked(run_id: int | tuple[int, int] | None) -> None:
            if run_id is None:
                return
            if isinstance(run_id, tuple):
                self.compare(str(run_id[0]), str(run_id[1]))
                return
            self.pinned = None if run_id == LATEST else run_id
            # Keep the stage in view if the other run has it too (see `_apply`).
            self._keep_stage = self.stages.selected_name
            self._reads.request()

        self.push_screen(RunsScreen(runs, self.clock()), picked)

    def action_toggle_run_log(self) -> None:
        """``L``: the whole run's log, or back to the selected stage's."""
        self.whole_run = not self.whole_run
        self._show_log()

    def action_find(self) -> None:
        """``/``: search the log, or filter the list that has the focus."""
        if self.focused is self.stages:
            open_filter(self, "stages", self.stages.filter_text, self.stages.set_filter)
        elif self.focused is self.version_panel.table:
            table = self.version_panel.table
            open_filter(self, "versions", table.filter_text, table.set_filter)
        else:
            self.log_view.action_search()

    def on_log_view_no_match(self, message: LogView.NoMatch) -> None:
        """Nothing in this stage's log: the next stage of the run with a match (after
        this one, or before it searching backwards), told under the log."""
        run, current = self.snapshot.run, self.stages.selected_name
        if run is None or current is None:
            return
        names = [s.name for s in run.stages if s.started_at is not None]
        if current in names:
            at = names.index(current)
            names = names[at + 1 :] + names[:at]
        if not message.forward:
            names.reverse()
        paths = [(name, self.reader.log_path(run.id, name)) for name in names]
        self._search_stages(run.id, current, message.query, message.forward, paths)

    @work(thread=True, exclusive=True, group="search-stages")
    def _search_stages(
        self,
        run_id: int,
        current: str,
        query: str,
        forward: bool,
        paths: list[tuple[str, Path]],
    ) -> None:
        from mlci_tui.store.log_index import LogIndex

        found = None
        for name, path in paths:
            index = LogIndex(path)
            try:
                index.update()
                if index.search(query, -1) is not None:
                    found = name
                    break
            finally:
                index.close()
        self._hand_over(self._searched_stages, run_id, current, query, forward, found)

    def _searched_stages(
        self, run_id: int, current: str, query: str, forward: bool, found: str | None
    ) -> None:
        run, log = self.snapshot.run, self.log_view
        if run is None or run.id != run_id or self.stages.selected_name != current:
            return  # the user moved on meanwhile
        if log.search_text != query:
            return
        shown = terminal_line(query, keep_color=False)
        if found is None:
            log.say_search(f"no match for {shown!r} in any stage of run {run_id}")
            return
        if found not in self.stages.names:
            self.stages.set_filter("")  # the stage found must show in the list
        self.stages.select(found, by_user=True)
        self._show_log()
        log.search_when_read(query, forward=forward, note=f"none in {current}; found in {found}")

    def action_log(self, action: str) -> None:
        """A key of the log's (`LogView.DASHBOARD_BINDINGS`), pressed in any pane."""
        getattr(self.log_view, f"action_{action}")()

    def action_show_graph(self) -> None:
        from mlci_tui.tui.screens.graph import GraphScreen

        masker = SecretMasker(self.config.secret_values(os.environ))
        self.push_screen(GraphScreen(self.config, self._graph_states, masker.mask_text))

    def _graph_states(self) -> tuple[str, dict[str, StageState | None]]:
        """The run shown and its stages' states, for the graph (all pending before
        the first run, as the stage panes show them)."""
        run = self.snapshot.run
        if run is None:
            return "no run yet", dict.fromkeys(self.config.layers)
        return f"run {run.id}", {stage.name: stage.state for stage in run.stages}

    def action_help(self) -> None:
        from mlci_tui.tui.screens.help import HelpScreen

        screen = self.screen
        if getattr(screen, "DASHBOARD_KEYS", True):
            self.push_screen(HelpScreen(self.key_groups()))
            return
        # A screen with keys of its own: those it offers now, and the app's that stay.
        mine = bindings_of(type(self))
        # The app's priority keys win over the screen's (ctrl+c quits, never copies).
        first = [key for b in mine if b.priority for key in keys_of(b)]
        own = without(
            (
                b
                for b in bindings_of(type(screen))
                if screen.check_action(b.action, ()) is not False
            ),
            first,
        )
        taken = [key for b in own for key in keys_of(b)]  # its q closes it, say
        kept = without((b for b in mine if self.check_action(b.action, ())), taken)
        title = getattr(screen, "HELP_TITLE", type(screen).__name__)
        self.push_screen(HelpScreen([(f"{title} · focused", own), ("Everywhere", kept)]))

    def key_groups(self) -> list[tuple[str, list[Binding]]]:
        """Every key of the dashboard the dashboard offers, by the pane it acts in: what
        the help shows."""
        log = LogView.DASHBOARD_BINDINGS
        panes: list[tuple[str, type[Widget], list[Binding]]] = [
            (
                "Log (search and follow work from every pane)",
                LogView,
                [*log, *bindings_of(LogView)],
            ),
            ("Stages", StageList, bindings_of(StageList)),
            ("Versions", VersionTable, self._offered(bindings_of(VersionTable), "app.")),
        ]
        # The screen's keys but its copy (ctrl+c is the app's: it quits).
        moving = [
            replace(b, description=PANE_MOVES[b.action])
            for b in bindings_of(Screen)
            if b.action in PANE_MOVES
        ]
        focused = [
            (f"{title} · focused", keys)
            for title, kind, keys in panes
            if isinstance(self.focused, kind)
        ]
        others = [
            (title, keys) for title, kind, keys in panes if not isinstance(self.focused, kind)
        ]
        # The pane with the focus comes first: its keys are the ones at hand.
        return [
            *focused,
            ("Everywhere", self._offered(b for b in bindings_of(type(self)) if b not in log)),
            ("Moving between panes", moving),
            *others,
        ]

    def _offered(self, bindings: Iterable[Binding], prefix: str = "") -> list[Binding]:
        """The ``bindings`` the dashboard offers. A pane's name the app's actions with
        ``prefix`` (``app.rollback``); its own actions are its own, never the app's."""
        return [
            b
            for b in bindings
            if not b.action.startswith(prefix) or self.offers(b.action[len(prefix) :])
        ]

    def action_quit_dashboard(self) -> None:
        running = self._running_run()
        message = None
        if running is not None:
            message = (
                f"run {running.id} goes on in the background;"
                " watch it again with `mlci`, or `mlci status`"
            )
        self.reader.close()
        self.exit(message=message)

    # Helpers ------------------------------------------------------------------------

    def get_driver_class(self) -> type[Driver]:
        return clearing(super().get_driver_class())

    def get_key_display(self, binding: Binding) -> str:
        """Enter and Esc by name: a hint reads "y / Enter: …", not "y / ⏎: …"."""
        return _KEY_NAMES.get(binding.key) or super().get_key_display(binding)

    def say(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information"
    ) -> None:
        """A notification in plain text, control bytes made visible: messages quote
        untrusted names and errors. (Textual's own, through `notify`, keep their markup.)"""
        self.notify(
            terminal_line(message, keep_color=False),
            title=terminal_line(title, keep_color=False),
            severity=severity,
            markup=False,
        )

    def _running_run(self) -> RunRecord | None:
        """The newest run that runs, whichever run is on screen."""
        return self.snapshot.running

    def _spawn_detached(self, args: list[str]) -> subprocess.Popen[bytes] | None:
        """Start ``mlci ARGS`` in its own session, so that it outlives the dashboard
        and a lost terminal; its stderr goes to a file, shown if it fails."""
        errors = tempfile.TemporaryFile()  # noqa: SIM115 (open until the child ends)
        try:
            child = subprocess.Popen(
                self._mlci(args),
                cwd=self.config.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
        except OSError as error:
            errors.close()
            self.say(f"cannot start mlci {args[0]}: {error}", severity="error")
            return None
        # `mlci exp promote` failing is said as that, not as `mlci exp`.
        self._children.append((child, " ".join(args[:2]) if args[0] == "exp" else args[0], errors))
        return child

    def _mlci(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "mlci_tui", *args, "--config", str(self.config.path)]

    def _reap_children(self) -> None:
        for entry in list(self._children):
            child, command, errors = entry
            code = child.poll()
            if code is None:
                continue
            self._children.remove(entry)
            if code not in (ExitCode.PASSED, ExitCode.CANCELLED):
                errors.seek(0)
                lines = errors.read().decode("utf-8", "replace").strip().splitlines()
                reason = lines[-1] if lines else f"exit code {code}"
                # A failed run shows on screen.
                if not (command == "run" and code == ExitCode.FAILED):
                    self.say(reason, title=f"mlci {command}", severity="error")
            errors.close()


def _active_stage(run: RunRecord | None) -> str | None:
    """The stage to show when following: the running one, else the last that ran."""
    if run is None:
        return None
    running = [s for s in run.stages if s.state is StageState.RUNNING]
    if running:
        return running[-1].name
    started = [s for s in run.stages if s.started_at is not None]
    failed = [s for s in started if s.state is StageState.FAILED]
    if failed:
        return failed[0].name
    return started[-1].name if started else None


def make_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    poll_interval: float = POLL_S,
    spawn: Spawner | None = None,
    read_only: bool = False,
) -> MlciApp:
    """The dashboard for ``config``; ``read_only``, without the keys that act."""
    return MlciApp(
        config, clock=clock, poll_interval=poll_interval, spawn=spawn, read_only=read_only
    )
