"""RunDialog: the params and forces of a run to start, and what it would run.

``r`` opens it for a full run, ``e`` for one stage and ``E`` for the failed ones
(`RunPlan` says which). Each param has a field, filled in with the config's
value; a field changed is a ``--set``, checked as `mlci run --set` checks it
(`config.with_params`), and a wrong value is one line here instead of a run.
Space on a stage of the table forces it. The table is `mlci run --dry-run
--json` of the same arguments, read again (off the UI thread: it hashes files)
whenever they change, so it says what the run Enter starts would run and find
cached, and why, as `mlci why` does. Enter starts at once, even before the
table is filled in: ``r`` Enter is a default run. The answer is the arguments
of `mlci run`, which the app starts detached.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, NamedTuple

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static
from textual.worker import get_current_worker

from mlci_tui.config import Config, param_text, with_masked_params, with_params
from mlci_tui.errors import MlciError
from mlci_tui.masking import SecretMasker
from mlci_tui.textsafe import FIELD_TEXT, field_text
from mlci_tui.tui.keys import hints
from mlci_tui.tui.text import middle_cut, plain

_START = Binding("enter", "start", "Start", id="run.start")
"""Not a priority binding: a field's Enter (submit) and the table's (select a row)
start too (`_entered`). A priority binding is looked up when the key arrives, which
for ``r`` Enter typed at once is before ``r`` has opened the dialog."""
_FORCE = Binding("space", "force", "Force", id="run.force")
_CANCEL = Binding("escape", "dismiss(None)", "Cancel", id="run.cancel")

WOULD_STYLES = {"run": "bold", "cached": "cyan", "fail": "bold red", "unknown": "dim"}


class RunPlan(NamedTuple):
    """What the dialog offers to start."""

    title: str
    targets: tuple[str, ...] = ()
    """The stages of ``--stage``: none for a full run."""
    forced: tuple[str, ...] = ()
    """The stages forced when the dialog opens."""
    note: str = ""
    """What the user should know about this run before starting it (shown under the title)."""
    params: Mapping[str, str] = MappingProxyType({})
    """Fields filled in with other than the config's value (a re-run's params): each
    one is a ``--set`` unless changed back."""


class PlannedStage(NamedTuple):
    """One row of `mlci run --dry-run --json`."""

    stage: str
    would: str
    """``run``, ``cached``, ``fail`` or ``unknown``, as `mlci why` says."""
    why: str


Preview = Callable[[list[str]], list[PlannedStage]]
"""Runs `mlci run --dry-run --json ARGS` and reads its rows; raises `MlciError`
with its one line when it refuses them."""


def run_args(targets: tuple[str, ...], sets: list[str], forced: list[str]) -> list[str]:
    """The arguments of `mlci run` (one token each, so a value that starts with ``-``
    is still a value)."""
    return [
        *(f"--stage={name}" for name in targets),
        *(f"--set={text}" for text in sets),
        *(f"--force={name}" for name in forced),
    ]


class RunDialog(ModalScreen[list[str] | None]):
    """Answers the arguments of `mlci run` to start, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [_START, _FORCE, _CANCEL]
    # Below 24 rows the blank lines between the parts go, for the table's rows.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-tall"), (40, "-huge")]  # noqa: RUF012 (Textual declares it so)
    DEFAULT_CSS = """
    RunDialog { align: center middle; }
    RunDialog #run-box {
        width: 100%; max-width: 110; height: auto; max-height: 100%;
        border: round $primary; border-title-style: bold; border-title-color: $text;
        background: $surface; padding: 0 1;
    }
    RunDialog .run--note { color: $text-muted; }
    RunDialog #run-params { height: auto; max-height: 6; }
    RunDialog .run--param { height: 1; }
    RunDialog .run--param Label { padding-right: 1; }
    RunDialog .run--param Input { width: 1fr; }
    /* The WHY column is cut at the edge: the line under the table has it whole. */
    RunDialog #run-plan { height: auto; overflow-x: hidden; }
    RunDialog #run-why { height: auto; max-height: 2; color: $text-muted; }
    RunDialog #run-command { height: auto; }
    RunDialog #run-command.-error { text-style: bold; color: $error; }
    RunDialog .run--keys { color: $text-muted; }
    RunDialog.-tall #run-plan, RunDialog.-tall #run-command { margin-top: 1; }
    RunDialog.-short #run-params { max-height: 3; }
    RunDialog.-short #run-why { max-height: 1; }
    RunDialog.-huge #run-params { max-height: 14; }
    """

    def __init__(
        self,
        config: Config,
        plan: RunPlan,
        planned: list[str],
        preview: Preview,
        masker: SecretMasker,
    ) -> None:
        """``planned``: the stages the run would have, in order (shown until the
        preview says more)."""
        super().__init__()
        self.config = config
        self.plan = plan
        self.masker = masker
        self.preview = preview
        self.forced = set(plan.forced)
        self.stages = list(planned)
        self.rows: dict[str, PlannedStage] = {}
        # A param holding a secret's value is masked everywhere: its field starts
        # empty (empty keeps the config's value) and shows what is typed as dots.
        masked = with_masked_params(config, masker).params
        self.secret = {name for name, value in masked.items() if value != config.params[name]}
        # A field shows a value's terminal-safe form (no escape reaches the screen):
        # left as it is, it is no --set, so the run gets the config's value itself.
        self.shown = {
            name: "" if name in self.secret else field_text(param_text(value))
            for name, value in masked.items()
        }
        """The config's value of each field: a field that holds it is no ``--set``."""
        self.args: list[str] | None = run_args(plan.targets, [], self._forced())
        """What Enter starts; None while a field holds a value `--set` refuses."""
        self._asked: list[str] | None = None
        """The arguments of the preview in flight, if one is."""
        self._answer: list[PlannedStage] | str | None = None
        """What the table (or the error line) shows of a preview of `args`, if it does."""
        self._starting = False
        """Enter was pressed over a preview: the preview in flight checks it (`_answered`)."""
        self._previewed = False
        """A preview was shown: from then on Enter starts only what one shows."""
        self._source = _read(config.path)
        """The config file as this dialog read it: what its fields show."""
        self._typed = SecretMasker([])
        """The values typed into the fields of secrets: masked wherever shown."""
        self._room = 0
        """The rows the table was given last (`_fit`)."""

    def compose(self) -> ComposeResult:
        labels = [f"{name} (secret)" if name in self.secret else name for name in self.shown]
        width = max(map(len, labels), default=0)
        with Vertical(id="run-box") as box:
            # Stage names only (names are letters, digits, _ and -): no markup.
            box.border_title = self.plan.title
            if self.plan.note:
                yield Static(plain(self.plan.note), classes="run--note")
            if self.shown:
                # Not a stop of tab itself: its fields are (it scrolls to the focused one).
                with VerticalScroll(id="run-params", can_focus=False):
                    for index, (name, label) in enumerate(zip(self.shown, labels, strict=True)):
                        secret = name in self.secret
                        with Horizontal(classes="run--param"):
                            yield Label(plain(label.ljust(width)))
                            # A secret's field starts empty whatever a re-run had.
                            value = self.plan.params.get(name, self.shown[name])
                            yield Input(
                                self.shown[name] if secret else field_text(value),
                                placeholder="*** (its environment variable sets it)"
                                if secret
                                else "",
                                password=secret,
                                # A value typed here would reach the run's command line
                                # and its record, which mask only the environment's
                                # secrets: a secret is set where it is kept.
                                disabled=secret,
                                compact=True,
                                id=f"param-{index}",
                                select_on_focus=False,
                                restrict=FIELD_TEXT,
                            )
            table: DataTable[Text] = DataTable(cursor_type="row", id="run-plan")
            yield table
            yield Static(id="run-why")
            yield Static(id="run-command")
            pairs = [(_START, "start"), (_FORCE, "force the stage"), (_CANCEL, "cancel")]
            yield Static(Text(hints(self.app, pairs)), classes="run--keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("FORCE", key="force")
        table.add_column("STAGE", key="stage")
        table.add_column("WOULD", key="would")
        table.add_column("WHY", key="why")
        self._fill()
        if self.plan.targets and self.plan.targets[0] in self.stages:
            table.move_cursor(row=self.stages.index(self.plan.targets[0]))
        self._changed()
        fields = self.query(Input)
        # At once (`focus` would wait for the keys already read), unless keys typed
        # right after `r` (a tab) moved it already.
        if self.focused is None:
            self.set_focus(fields.first() if fields else table)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _say(self, text: str, *, error: bool = False) -> None:
        """The line under the table: the command Enter starts, or what is wrong."""
        line = self.query_one("#run-command", Static)
        line.update(plain(self._mask(text)))
        line.set_class(error, "-error")
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The table gets the rows the dialog has left (it scrolls in them): what is
        under it, the command and the keys, stays in view."""
        boxes = self.query("#run-box")
        if not boxes:
            return  # dismissed before the refresh this waited for (r, then Enter at once)
        box = boxes.only_one(Vertical)
        table = self.query_one(DataTable)
        others = sum(
            child.outer_size.height + child.styles.margin.height
            for child in box.children
            if child is not table
        )
        room = self.size.height - box.styles.border.spacing.height - others
        room = max(room - table.styles.margin.height, 3)
        # Fields the list has no room for are reached with tab: the border says so.
        params = self.query("#run-params")
        hidden = 0
        if params:
            shown_rows = params.first().size.height
            hidden = max(0, len(self.shown) - shown_rows) if shown_rows else 0
        box.border_subtitle = f"{hidden} more param{'s' * (hidden != 1)}: tab" if hidden else ""
        if room != self._room:
            self._room = room
            table.styles.max_height = room

    # What the fields and forces say -----------------------------------------------------

    def _sets(self) -> list[str]:
        """``NAME=VALUE`` of each field changed from the config's value."""
        fields = self.query(Input)
        return [
            f"{name}={field.value}"
            for name, field in zip(self.shown, fields, strict=True)
            if field.value != self.shown[name]
        ]

    def _mask(self, text: str) -> str:
        return self._typed.mask_text(self.masker.mask_text(text))

    def _forced(self) -> list[str]:
        return [name for name in self.config.stages if name in self.forced]

    @on(Input.Changed)
    def _changed(self) -> None:
        sets = self._sets()
        fields = self.query(Input)
        self._typed = SecretMasker(
            field.value for name, field in zip(self.shown, fields, strict=True) if field.password
        )
        self.rows = {}
        self._answer = None
        self._starting = False
        try:
            with_params(self.config, sets)
        except MlciError as error:
            self.args = None
            self._say(str(error), error=True)
            self._fill()
            return
        self.args = run_args(self.plan.targets, sets, self._forced())
        self._say(shlex.join(["mlci", "run", *self.args]))
        self._fill()
        if self._asked is None:
            self._ask(self.args)

    def _ask(self, args: list[str]) -> None:
        """One preview at a time: one asked meanwhile waits for it (`_answered`)."""
        self._asked = args
        self._preview(args)

    # The preview --------------------------------------------------------------------

    @work(thread=True, group="run-preview")
    def _preview(self, args: list[str]) -> None:
        try:
            rows: list[PlannedStage] | str = self.preview(args)
        except MlciError as error:
            rows = str(error)
        if _read(self.config.path) != self._source:
            rows = (
                f"{self.config.path.name} changed since this dialog opened: Esc, then open it again"
            )
        if not get_current_worker().is_cancelled:
            with contextlib.suppress(RuntimeError):  # the app closed meanwhile
                self.app.call_from_thread(self._answered, args, rows)

    def _answered(self, args: list[str], rows: list[PlannedStage] | str) -> None:
        if not self.is_attached:  # closed meanwhile
            return
        self._asked = None
        if args != self.args:
            # Changed meanwhile: what was asked is not what Enter would start.
            if self.args is not None:
                self._ask(self.args)
            return
        starting, self._starting = self._starting, False
        self._previewed = True
        if starting and rows == self._answer and not isinstance(rows, str):
            self.dismiss(args)  # what runs is what the table shows
            return
        self._answer = rows
        if isinstance(rows, str):
            self._say(rows, error=True)
            if starting:
                self.app.bell()
            return
        # The command is the one shown already: what it would do is what changed.
        changed = "what would run changed: Enter again to start"
        self._say(changed if starting else shlex.join(["mlci", "run", *args]))
        self.rows = {row.stage: row for row in rows}
        self.stages = [row.stage for row in rows]
        self._fill()

    def _fill(self) -> None:
        """The table as the latest preview has it (``…`` for what it has not said)."""
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for name in self.stages:
            row = self.rows.get(name)
            force = "[x]" if name in self.forced else "[ ]" if name in self.config.stages else ""
            would = (
                Text("…", style="dim")
                if row is None
                else Text(row.would, WOULD_STYLES.get(row.would, ""))
            )
            table.add_row(
                Text(force),
                # A long name is cut in its middle: WOULD and WHY stay in view.
                plain(middle_cut(name, max(12, self.size.width // 4))),
                would,
                plain("" if row is None else self._mask(row.why)),
                key=name,
            )
        if self.stages:
            table.move_cursor(row=min(max(cursor, 0), len(self.stages) - 1))
        self._show_why()

    @on(DataTable.RowHighlighted)
    def _show_why(self) -> None:
        table = self.query_one(DataTable)
        why = self.query_one("#run-why", Static)
        if not 0 <= table.cursor_row < len(self.stages):
            why.update("")
            return
        name = self.stages[table.cursor_row]
        row = self.rows.get(name)
        why.update(plain(self._mask(f"{name}: {row.why}")) if row is not None else "")

    # Keys ---------------------------------------------------------------------------

    def action_force(self) -> None:
        table = self.query_one(DataTable)
        if self.focused is not table or not 0 <= table.cursor_row < len(self.stages):
            return
        name = self.stages[table.cursor_row]
        if name not in self.config.stages:
            self.app.notify(
                f"{name} takes no --force: it deploys when the run makes a new version",
                severity="warning",
                markup=False,
            )
            return
        self.forced ^= {name}
        self._changed()

    @on(Input.Submitted)
    @on(DataTable.RowSelected)
    def _entered(self, event: Input.Submitted | DataTable.RowSelected) -> None:
        event.stop()
        self.action_start()

    def action_start(self) -> None:
        """Starts what the fields and forces say. Once a preview is shown, it is asked
        again first (files may have changed since): the run starts only if it is the
        same. Before any preview arrived (``r`` Enter typed at once), at once."""
        if self.args is None:
            self.app.bell()  # the line under the table says what is wrong
            return
        if self._answer is None and not self._previewed:
            self.dismiss(self.args)
            return
        if not self._starting:
            self._starting = True
            self._say("checking what would run…")
            if self._asked is None:
                self._ask(self.args)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
