"""HeaderBar: pipeline, the run shown and its state, the live model version; in a
read-only dashboard, first of all, that it is one."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from mlci_tui.store.reader import Snapshot
from mlci_tui.tui.text import STATE_STYLES, middle_cut, plain, state_text
from mlci_tui.tui.widgets.stage_pane import MIN_NAME
from mlci_tui.units import format_duration


class HeaderBar(Widget):
    DEFAULT_CSS = """
    HeaderBar {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(self, pipeline: str, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pipeline = pipeline
        self.read_only = read_only
        self._pipeline_text = plain(pipeline)
        """Made safe once: the name never changes."""
        self.snapshot = Snapshot()
        self.now = 0.0
        self.follow = True

    def show(self, snapshot: Snapshot, now: float, follow: bool) -> None:
        self.snapshot, self.now, self.follow = snapshot, now, follow
        self.refresh()

    def render(self) -> Text:
        """The whole line where it fits; else shorter words, then the pipeline's name
        cut in its middle: what the run and the versions are doing matters more. A
        read-only dashboard says so first, at every width (reversed: seen without
        colour too)."""
        width = max(1, self.size.width)
        badge = Text(end="")
        if self.read_only:
            badge.append("read-only", style="bold reverse")
            badge.append(" ")
        status = self._status(short=False)
        name = self._pipeline_text
        text = Text("mlci ", style="bold", end="") + badge + name + status
        if text.cell_len > width:
            status = self._status(short=True)
            room = width - badge.cell_len - status.cell_len
            # Where the name does not fit beside what runs, what runs is shown (from
            # after its leading " · ").
            shown = plain(middle_cut(name.plain, room)) + status if room >= MIN_NAME else status[3:]
            text = badge + shown
        else:
            experiments = self._experiments(short=False)
            if text.cell_len + experiments.cell_len > width:
                experiments = self._experiments(short=True)
            if text.cell_len + experiments.cell_len <= width:
                text += experiments
        text.truncate(width, overflow="ellipsis")
        return text

    def _experiments(self, *, short: bool) -> Text:
        """Where the experiments are (the run shown is the workspace's, as `mlci status`
        says it): last, and only where the rest leaves room for it."""
        total, running, queued = self.snapshot.experiments
        if not total:
            return Text(end="")
        counts = [(running, "running"), (queued, "queued")]
        if short:
            n, what = next(((n, what) for n, what in counts if n), (total, ""))
            said = f" · {n} exp {what} (e)".replace("  ", " ")
        else:
            active = ", ".join(f"{n} {what}" for n, what in counts if n)
            said = f" · experiments: {active or total} (e)"
        return Text(said, style="dim", end="")

    def _status(self, *, short: bool) -> Text:
        """All but the pipeline's name; ``short``: in fewer words."""
        snapshot = self.snapshot
        text = Text(end="")
        run = snapshot.run
        if run is None:
            if self.read_only:
                text.append(" · no runs yet", style="dim")
            else:
                text.append(
                    " · no runs yet: r starts one"
                    if short
                    else " · no runs yet — press r to start one",
                    style="dim",
                )
        else:
            experiment = snapshot.experiment
            if experiment is None:
                text.append(f" · run {run.id} ")
            else:
                # An experiment's run, picked in the experiments (e): named as one; its
                # name is the user's (untrusted) text.
                text.append(" · experiment ")
                text.append_text(plain(f"#{experiment.id}" if short else experiment.label))
                text.append(f" (run {run.id}) ")
            text.append_text(state_text(run.state))
            if snapshot.runner_gone:
                # Its clock stopped when the runner died: no duration to tick on.
                text.append(" · runner gone", style="bold red")
            else:
                text.append(f" {format_duration(run.duration_s(self.now))}")
            if snapshot.latest_run_id is not None and snapshot.latest_run_id != run.id:
                latest = (
                    f" (latest {snapshot.latest_run_id})"
                    if short
                    else f" (latest: run {snapshot.latest_run_id})"
                )
                text.append(latest, style="dim")
        live = snapshot.live
        text.append(" · live ")
        if live is None:
            text.append("none", style="dim")
        else:
            text.append(live.name, style=STATE_STYLES.get(live.status, ""))
        if snapshot.deploying is not None:
            deploying = snapshot.deploying
            text.append(f" · {deploying.kind.text} to v{deploying.to_version}…", style="yellow")
        if not self.follow:
            text.append(" · follow off (f)", style="dim")
        return text
