"""The command palette (ctrl+p): the dashboard's own commands, by the names the
help gives them, and the things they act on (a version, a run, a stage). A
command that acts is the palette's way to an action of the app's `ACTING`: a
read-only dashboard does not offer it, here as on its keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Provider

if TYPE_CHECKING:
    from typing import Protocol

    from mlci_tui.config import Config
    from mlci_tui.store.reader import Snapshot

    class Dashboard(Protocol):
        """What the palette uses of the app (`MlciApp`, which imports this module)."""

        config: Config
        snapshot: Snapshot
        read_only: bool

        def offers(self, action: str) -> bool: ...
        def offers_now(self, action: str) -> bool: ...
        def action_log(self, action: str) -> None: ...
        def action_show_alerts(self) -> None: ...
        def action_pick_run(self) -> None: ...
        def action_show_graph(self) -> None: ...
        def action_toggle_run_log(self) -> None: ...
        def action_help(self) -> None: ...
        def action_show_experiments(self) -> None: ...
        def action_focus_versions(self) -> None: ...
        def action_plot(self) -> None: ...
        def action_quit_dashboard(self) -> None: ...
        def action_start_run(self) -> None: ...
        def action_rerun_stage(self) -> None: ...
        def action_rerun_failed(self) -> None: ...
        def action_cancel_run(self) -> None: ...
        def action_rollback(self) -> None: ...
        def action_answer(self) -> None: ...
        def rollback_to(self, number: int) -> None: ...
        def show_stage(self, name: str) -> None: ...
        def open_run(self, run_id: int) -> None: ...


Command = tuple[str, str, Callable[[], object]]
"""What the palette lists: its name, what it does, and what runs it."""


def dashboard_commands(app: Dashboard) -> list[Command]:
    """Every action the dashboard's keys offer, by the name the help gives it (but
    next and previous match, which go on with a search), then the things they act on."""
    log = app.action_log
    # The app's actions that act, by name: listed only where the app offers them now
    # (Answer while a decision is pending, Roll back with a [deploy]), as its keys.
    acting = [
        ("Run", "params, forces, what would run; then start it", "start_run"),
        ("Re-run stage", "the selected stage, forced", "rerun_stage"),
        ("Re-run failed", "the stages of the shown run that did not pass", "rerun_failed"),
        ("Cancel", "cancel the running run, after a confirmation", "cancel_run"),
        ("Roll back", "to the highlighted version, after a confirmation", "rollback"),
        ("Answer", "the monitor's pending decision", "answer"),
    ]
    found: list[Command] = [
        (name, help_text, getattr(app, f"action_{action}"))
        for name, help_text, action in acting
        if app.offers_now(action)
    ]
    found += [
        (
            "Experiments",
            "the table, live: sort, filter, diff, plot",
            app.action_show_experiments,
        ),
        ("Versions", "the versions, at the one a rollback would choose", app.action_focus_versions),
        (
            "Plot",
            "the stage's metric series; on the versions, a metric across them",
            app.action_plot,
        ),
        ("Search", "search the log of the selected stage", partial(log, "search")),
        (
            "Follow",
            "follow the newest log line on or off",
            partial(log, "toggle_follow"),
        ),
        ("Zoom", "the log over the whole screen, or back", partial(log, "zoom")),
        ("Wrap", "wrap long log lines on or off", partial(log, "toggle_wrap")),
        (
            "Copy",
            "the lines in view, or the line a search found, to the clipboard",
            partial(log, "copy"),
        ),
        (
            "Whole run",
            "every stage's log interleaved, or the selected stage's",
            app.action_toggle_run_log,
        ),
        ("Graph", "which stage needs which, with their states", app.action_show_graph),
        (
            "Alerts",
            "every alert" if app.read_only else "every alert, and acknowledging them",
            app.action_show_alerts,
        ),
        ("Runs", "pick a past run to read its logs", app.action_pick_run),
        ("Help", "every key", app.action_help),
        ("Quit", "a run goes on", app.action_quit_dashboard),
    ]
    snapshot = app.snapshot
    if app.offers_now("rollback"):
        live = snapshot.live
        for version in snapshot.versions[:50]:
            if live is None or version.number != live.number:
                found.append(
                    (
                        f"Roll back to {version.name}",
                        f"{version.status.text}, after a confirmation",
                        partial(app.rollback_to, version.number),
                    )
                )
    if snapshot.run is not None:
        for stage in snapshot.run.stages:
            found.append(
                (
                    f"Show stage {stage.name}",
                    f"its log in run {snapshot.run.id} ({stage.state.text})",
                    partial(app.show_stage, stage.name),
                )
            )
    latest = snapshot.latest_run_id or 0
    for run_id in range(latest, max(0, latest - 20), -1):
        found.append((f"Open run {run_id}", "read its logs", partial(app.open_run, run_id)))
    return found


class DashboardCommands(Provider):
    def commands(self) -> list[Command]:
        return dashboard_commands(self.app)  # type: ignore[arg-type]

    async def discover(self) -> AsyncIterator[DiscoveryHit]:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> AsyncIterator[Hit]:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
