"""The run dialog (`r`), re-running a stage (`s`) and the failed ones (`E`): what
it offers is what `mlci run` does with the same arguments, and what it previews is
what then runs."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual import events
from textual.widgets import DataTable, Input, Static

from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.screens.run_dialog import RunDialog
from tests.helpers import (
    Project,
    dashboard,
    notices,
    settle,
    shown,
    text_of,
    until,
)

PIPELINE = """
[params]
a.n = 0
b.n = 0
b.name = "plain"

[stages.one]
command = "echo one $MLCI_PARAM_A_N $(cat in.txt) > one.out"
deps = ["in.txt"]
params = ["a"]
outs = ["one.out"]

[stages.two]
command = "[ ! -e break ] && cat one.out > two.out && echo two $MLCI_PARAM_B_N >> two.out"
deps = ["one.out"]
params = ["b.n"]
outs = ["two.out"]

[stages.three]
command = "echo three $MLCI_PARAM_B_N $MLCI_PARAM_B_NAME"
needs = ["one"]
deps = ["in.txt"]
params = ["b"]
"""
"""`two` reads `one`'s out (a need by reading it); `three` needs `one` by name and
has no outs; `two` fails while the file `break` exists."""


def project_at(path: Path, *, extra: str = "") -> Project:
    project = Project(path)
    project.write(PIPELINE + extra)
    (path / "in.txt").write_text("x\n")
    return project


def screen_text(app: MlciApp) -> str:
    """What the terminal shows, line by line, as plain text."""
    return "\n".join(text_of(strip) for strip in app.screen._compositor.render_strips())


def field(app: MlciApp, param: str) -> Input:
    dialog = app.screen
    assert isinstance(dialog, RunDialog)
    return dialog.query(Input)[list(dialog.shown).index(param)]


async def type_into(pilot, app: MlciApp, param: str, text: str) -> None:
    field(app, param).focus()
    await pilot.press("ctrl+u", *text)  # the field emptied, then typed into


async def toggle_force(pilot, app: MlciApp, stage: str) -> None:
    dialog = app.screen
    assert isinstance(dialog, RunDialog)
    table = dialog.query_one(DataTable)
    table.focus()
    table.move_cursor(row=dialog.stages.index(stage))
    await pilot.press("space")


async def opened(pilot, app: MlciApp, key: str) -> RunDialog:
    """Press ``key`` (`r`, `s` or `E`) and wait for the run dialog it opens."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, RunDialog))
    dialog = app.screen
    assert isinstance(dialog, RunDialog)
    return dialog


async def previewed(pilot, app: MlciApp) -> dict[str, str]:
    """Once the preview of what the dialog would start is in: each stage's verdict."""
    dialog = app.screen
    assert isinstance(dialog, RunDialog)
    await until(pilot, lambda: dialog.rows and dialog._asked is None, what="the preview")
    await settle(pilot)
    return {name: row.would for name, row in dialog.rows.items()}


def latest(project: Project) -> dict:
    return project.status()


# r ---------------------------------------------------------------------------------


async def test_r_enter_starts_a_default_run_and_esc_starts_nothing(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        await pilot.press("r", "escape")
        await until(pilot, lambda: not isinstance(app.screen, RunDialog))
        assert spawned == []
        # Typed at once, as fast as a terminal sends them: a default run.
        await pilot.press("r", "enter")
        await until(pilot, lambda: spawned == [["run"]])
        assert not isinstance(app.screen, RunDialog)


async def test_a_dialog_closed_before_the_refresh_it_waited_for_leaves_the_dashboard_up(
    tmp_path: Path,
) -> None:
    """`r` then Enter at once can close the dialog before a refresh it asked for (to
    fit its table to what is left): what was to fit is gone, and nothing fails."""
    project = project_at(tmp_path)
    app = dashboard(project, spawn=lambda args: True)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        for _ in range(3):
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, RunDialog))
            dialog = app.screen
            assert isinstance(dialog, RunDialog)
            await settle(pilot)
            await dialog.dismiss(None)
            dialog._fit()  # what a refresh scheduled before the close then calls
            await settle(pilot)
            assert not isinstance(app.screen, RunDialog) and app.is_running


async def test_a_value_set_refuses_is_its_one_line_and_starts_nothing(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    cli = project.mlci("run", "--set", "a.n=1.5")
    assert cli.returncode == 2
    refused = cli.stderr.decode().strip().removeprefix("mlci: ")
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        await opened(pilot, app, "r")
        assert field(app, "a.n").value == "0"
        assert field(app, "b.name").value == "plain"
        await type_into(pilot, app, "a.n", "1.5")
        await settle(pilot)
        assert refused in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunDialog) and spawned == []
        await type_into(pilot, app, "a.n", "3")
        await type_into(pilot, app, "b.name", "-x y")
        await settle(pilot)
        assert refused not in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: bool(spawned))
    assert spawned == [["run", "--set=a.n=3", "--set=b.name=-x y"]]
    # What the dialog passed is what the CLI takes: a value that starts with "-" too.
    assert project.mlci("run", *spawned[0][1:]).returncode == 0
    assert project.log("three") == b"three 0 -x y\n"


# The preview against what runs: an oracle ------------------------------------------

Step = tuple[str, int | None, int | None, frozenset[str], str]
"""A key (``r``, or ``s`` on a stage: ``s:two``), the values typed for a.n and b.n
(None: left as the config has it), the stages forced, and what in.txt holds."""

STEPS = st.tuples(
    st.sampled_from(["r", "s:one", "s:two", "s:three"]),
    st.none() | st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.frozensets(st.sampled_from(["one", "two", "three"])),
    st.sampled_from(["x\n", "y\n"]),
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=2, max_size=3))
async def test_what_the_dialog_previews_is_what_then_runs(
    tmp_path: Path, steps: list[Step]
) -> None:
    """Whatever is typed, forced, re-run or changed on disk: each stage the preview
    says runs, runs; each it says is cached, is; the run has the stages it lists."""
    project = project_at(Path(tempfile.mkdtemp(dir=tmp_path)))
    assert project.mlci("run").returncode == 0
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        for number, (key, a, b, forced, data) in enumerate(steps, start=2):
            (project.path / "in.txt").write_text(data)
            if key.startswith("s:"):
                app.stages.select(key[2:], by_user=True)
                await pilot.press("s")
            else:
                await opened(pilot, app, "r")
            dialog = app.screen
            assert isinstance(dialog, RunDialog)
            for param, value in (("a.n", a), ("b.n", b)):
                if value is not None:
                    await type_into(pilot, app, param, str(value))
            for stage in forced & set(dialog.stages):
                await toggle_force(pilot, app, stage)
            preview = await previewed(pilot, app)
            args = dialog.args
            await pilot.press("enter")
            await until(
                pilot,
                lambda: (
                    app.snapshot.latest_run_id == number  # noqa: B023
                    and app.snapshot.running is None
                ),
                what=f"run {number} to end",
            )
            ran = {s["name"]: s["state"] for s in latest(project)["stages"]}
            assert list(ran) == list(preview), (args, preview, ran)
            for stage, would in preview.items():
                expected = {"run": {"passed"}, "cached": {"cached"}, "fail": {"failed"}}
                assert ran[stage] in expected.get(would, {"passed", "cached"}), (
                    args,
                    stage,
                    preview,
                    ran,
                )


# e and E ---------------------------------------------------------------------------


async def test_s_reruns_the_selected_stage_forced_with_what_it_needs(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    assert project.mlci("run").returncode == 0
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        app.stages.select("two", by_user=True)
        await opened(pilot, app, "s")
        dialog = app.screen
        assert isinstance(dialog, RunDialog)
        assert dialog.args == ["--stage=two", "--force=two"]
        text = screen_text(app)
        assert "Re-run two" in text
        assert "Runs two, forced, with what it needs (one), cached if unchanged." in text
        assert await previewed(pilot, app) == {"one": "cached", "two": "run"}
        await pilot.press("enter")
        await until(pilot, lambda: app.snapshot.latest_run_id == 2 and not app.snapshot.running)
    assert {s["name"]: s["state"] for s in latest(project)["stages"]} == {
        "one": "cached",
        "two": "passed",
    }
    assert said[-1] == "starting a run; it goes on if you quit"


async def test_shift_e_reruns_the_stages_that_did_not_pass(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    (project.path / "break").touch()
    assert project.mlci("run").returncode == 1
    assert {s["name"]: s["state"] for s in latest(project)["stages"]} == {
        "one": "passed",
        "two": "failed",
        "three": "passed",
    }
    (project.path / "break").unlink()
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        await opened(pilot, app, "E")
        dialog = app.screen
        assert isinstance(dialog, RunDialog)
        assert dialog.args == ["--stage=two"]
        assert "Re-run what did not pass in run 1: two" in screen_text(app)
        assert await previewed(pilot, app) == {"one": "cached", "two": "run"}
        await pilot.press("enter")
        await until(pilot, lambda: app.snapshot.latest_run_id == 2 and not app.snapshot.running)
        # Nothing failed in run 2: E says so.
        said = notices(app)
        await pilot.press("E")
        await until(pilot, lambda: said == ["run 2 has no stage that did not pass"])
    assert {s["name"]: s["state"] for s in latest(project)["stages"]} == {
        "one": "cached",
        "two": "passed",
    }


HOLD = "i=0; while [ ! -e go ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i + 1)); done"


async def test_r_e_and_shift_e_refuse_while_a_run_runs(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.write(f'[stages.held]\ncommand = "{HOLD}"\n')
    runner = project.start("run")
    try:
        app = dashboard(project)
        said = notices(app)
        async with app.run_test(size=(80, 24)) as pilot:
            await shown(pilot, lambda: app.snapshot.running is not None)
            for key in ("r", "s", "E"):
                await pilot.press(key)
                await until(pilot, lambda: len(said) == 1)
                assert said.pop() == "run 1 is still running"
                assert not isinstance(app.screen, RunDialog)
    finally:
        (project.path / "go").touch()
        runner.communicate(timeout=60)


async def test_s_on_deploy_says_it_runs_only_in_a_full_run(tmp_path: Path) -> None:
    from tests.helpers import setup

    project = Project(tmp_path)
    setup(project)
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        app.stages.select("deploy", by_user=True)
        await pilot.press("s")
        await until(pilot, lambda: said == ["deploy runs only in a full run: r starts one"])
        assert not isinstance(app.screen, RunDialog)


# Secrets ---------------------------------------------------------------------------

SECRET = "s3cr3t-t0ken-4711"


async def test_a_secret_in_a_param_is_never_shown_nor_passed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("API_TOKEN", SECRET)
    extra = '\n[pipeline]\nsecrets = ["API_TOKEN"]\n'
    project = project_at(tmp_path)
    project.write(extra + PIPELINE.replace('b.name = "plain"', f'b.name = "{SECRET}"'))
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        await opened(pilot, app, "r")
        secret = field(app, "b.name")
        assert secret.value == "" and secret.password and secret.disabled
        await previewed(pilot, app)
        # A value typed holding the secret, in a field of no secret: what is wrong is
        # said, masked.
        await type_into(pilot, app, "a.n", SECRET)
        await settle(pilot)
        line = str(app.screen.query_one("#run-command").render())
        assert line == "--set a.n=***: expected an integer, as the config has (0)"
        await type_into(pilot, app, "a.n", "0")
        await previewed(pilot, app)
        assert SECRET not in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: bool(spawned))
    # The field left empty is not passed: no secret on the run's command line.
    assert spawned == [["run"]]


# What the dialog shows is safe, checked again on Enter, and a re-run's own ---------

HOSTILE = r"\u001b]0;PWNED\u0007\u001b]52;c;cHduZWQ=\u0007x \u001b[31mred\u001b[0m a\u202eb\u2066c"
"""A string param (as TOML writes it) that sets the title, writes the clipboard, colours
and reorders the line, if it reaches the terminal as it is."""


def drawn(app: MlciApp) -> str:
    """Every character the screen's segments would write, as they are."""
    return "".join(
        segment.text for strip in app.screen._compositor.render_strips() for segment in strip
    )


async def test_a_param_value_reaches_the_screen_safe_and_runs_as_the_config_has_it(
    tmp_path: Path,
) -> None:
    project = project_at(tmp_path)
    project.write(PIPELINE.replace('b.name = "plain"', f'b.name = "{HOSTILE}"'))
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        await opened(pilot, app, "r")
        await previewed(pilot, app)
        screen = drawn(app)
        unsafe = [c for c in screen if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
        assert not unsafe and "\u202e" not in screen and "\u2066" not in screen
        assert "x red a<U+202E>b<U+2066>c" in screen_text(app)
        # Pasted escapes are refused: the field keeps what it had.
        field(app, "b.name").focus()
        await settle(pilot)
        field(app, "b.name").post_message(events.Paste("\x1b]0;T\x07"))
        await settle(pilot)
        assert field(app, "b.name").value == "x red a<U+202E>b<U+2066>c"
        # Left as it is, the field is no --set: the run gets the config's value itself.
        await pilot.press("enter")
        await until(pilot, lambda: bool(spawned))
    assert spawned == [["run"]]


async def test_enter_checks_the_preview_again_and_starts_only_what_it_showed(
    tmp_path: Path,
) -> None:
    project = project_at(tmp_path)
    assert project.mlci("run").returncode == 0
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        await opened(pilot, app, "r")
        assert await previewed(pilot, app) == {"one": "cached", "two": "cached", "three": "cached"}
        # A dep changes while the dialog is open: Enter shows what would run now.
        (project.path / "in.txt").write_text("changed\n")
        await pilot.press("enter")
        changed = "what would run changed: Enter again to start"
        await until(pilot, lambda: changed in screen_text(app), what="the line saying so")
        assert isinstance(app.screen, RunDialog) and spawned == []
        assert await previewed(pilot, app) == {"one": "run", "two": "unknown", "three": "run"}
        # The config changes (here: breaks): its fields may no longer be what a run
        # reads, so Enter says so and starts nothing.
        project.write(PIPELINE + "bogus = 1\n")
        line = app.screen.query_one("#run-command", Static)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                line.has_class("-error")
                and "config.toml changed since this dialog opened" in str(line.render())
            ),
            what="the line saying so",
        )
        assert isinstance(app.screen, RunDialog) and spawned == []
        # Opened again on a broken config: its error, and no dialog.
        said = notices(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RunDialog))
        await pilot.press("r")
        cli = project.mlci("run", "--dry-run")
        assert cli.returncode == 2
        refused = cli.stderr.decode().strip().rpartition("config.toml:")[2]
        await until(pilot, lambda: any(refused in m for m in said), what="the config's error")
        assert not isinstance(app.screen, RunDialog)
        # Fixed: a dialog on it, and Enter over its preview starts it.
        project.write(PIPELINE)
        await opened(pilot, app, "r")
        await previewed(pilot, app)
        await pilot.press("enter")
        await until(pilot, lambda: bool(spawned))
    assert spawned == [["run"]]


async def test_a_secrets_field_takes_no_typing(tmp_path: Path, monkeypatch) -> None:
    """A value typed for a secret would reach the run's command line and its record,
    which mask only the environment's secrets: the field is not editable."""
    monkeypatch.setenv("API_TOKEN", SECRET)
    project = project_at(tmp_path)
    project.write(
        '[pipeline]\nsecrets = ["API_TOKEN"]\n'
        + PIPELINE.replace('b.name = "plain"', f'b.name = "{SECRET}"')
    )
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        await opened(pilot, app, "r")
        await previewed(pilot, app)
        secret = field(app, "b.name")
        assert secret.disabled and not secret.focusable  # tab and clicks pass it by
        secret.focus()
        await pilot.press(*"n3w-v4lue")
        await settle(pilot)
        assert secret.value == "" and not secret.has_focus
        await type_into(pilot, app, "a.n", "0")
        await previewed(pilot, app)
        await pilot.press("enter")
        await until(pilot, lambda: bool(spawned))
    assert all("b.name" not in arg for arg in spawned[0])


async def test_s_and_shift_e_rerun_with_the_shown_runs_params(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    (project.path / "break").touch()
    assert project.mlci("run", "--set", "a.n=1", "--set", "b.name=other").returncode == 1
    (project.path / "break").unlink()
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        await opened(pilot, app, "E")
        dialog = app.screen
        assert isinstance(dialog, RunDialog)
        assert dialog.args == ["--stage=two", "--set=a.n=1", "--set=b.name=other"]
        assert field(app, "a.n").value == "1"
        assert "With run 1's params (a.n, b.name)." in screen_text(app)
        # The run's own inputs: one is cached as run 1 made it.
        assert await previewed(pilot, app) == {"one": "cached", "two": "run"}
        await pilot.press("escape")
        app.stages.select("three", by_user=True)
        await opened(pilot, app, "s")
        dialog = app.screen
        assert isinstance(dialog, RunDialog)
        assert dialog.args == [
            "--stage=three",
            "--set=a.n=1",
            "--set=b.name=other",
            "--force=three",
        ]
        await pilot.press("enter")
        await until(pilot, lambda: app.snapshot.latest_run_id == 2 and not app.snapshot.running)
    assert project.log("three") == b"three 0 other\n"
    assert project.stage("one")["state"] == "cached"
    assert said[-1] == "starting a run; it goes on if you quit"


async def test_shift_e_says_when_what_failed_is_not_in_the_config_any_more(
    tmp_path: Path,
) -> None:
    project = Project(tmp_path)
    project.write(
        '[stages.a]\ncommand = "true"\n[stages.x]\ncommand = "false"\n'
        '[stages.y]\ncommand = "true"\nneeds = ["x"]\n'
    )
    assert project.mlci("run").returncode == 1
    project.write('[stages.a]\ncommand = "true"\n[stages.z]\ncommand = "true"\n')
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        await pilot.press("E")
        await until(pilot, lambda: bool(said))
        assert said == ["x and y: not in the config any more; r starts a run"]
        assert not isinstance(app.screen, RunDialog)


async def test_params_the_list_has_no_room_for_are_counted_on_its_border(
    tmp_path: Path,
) -> None:
    many = "".join(f"c.p{i} = {i}\n" for i in range(9))
    project = project_at(tmp_path)
    project.write(PIPELINE.replace("[params]\n", "[params]\n" + many))
    for size, more in (((80, 24), "6 more params: tab"), ((120, 50), "")):
        app = dashboard(project)
        async with app.run_test(size=size) as pilot:
            await shown(pilot)
            await pilot.press("r")
            await until(pilot, lambda app=app: isinstance(app.screen, RunDialog))
            box = app.screen.query_one("#run-box")
            # 12 params: at 80x24 the list shows 6 of them, at 50 rows all.
            await until(
                pilot,
                lambda box=box, more=more: str(box.border_subtitle) == more,
                what=f"{more!r} at {size}",
            )
            await settle(pilot)
            assert str(box.border_subtitle) == more


async def test_a_long_stage_name_leaves_would_and_why_in_view_at_60x15(tmp_path: Path) -> None:
    long = "prepare_" + "x" * 56
    project = Project(tmp_path)
    project.write(f'[stages.{long}]\ncommand = "echo hi"\n')
    app = dashboard(project)
    async with app.run_test(size=(60, 15)) as pilot:
        await shown(pilot)
        await opened(pilot, app, "r")
        await until(pilot, lambda: "no deps" in screen_text(app), what="the preview")
        (row,) = [line for line in screen_text(app).splitlines() if "no deps" in line]
        assert "run" in row.split() and "prepare" in row, row


async def test_enter_right_after_a_change_waits_for_the_changes_preview(tmp_path: Path) -> None:
    """Once a preview was shown, Enter starts only what a preview shows: typed before
    the new one is in, it waits for it, shows it, and asks for Enter again."""
    project = project_at(tmp_path)
    assert project.mlci("run").returncode == 0
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    asked = threading.Event()
    held = threading.Event()
    real = app.dry_run

    def slow(args: list[str]) -> list:
        if any(arg.startswith("--set=") for arg in args):
            asked.set()
            held.wait(30)  # the change's preview is in flight until released
        return real(args)

    app.dry_run = slow  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        await opened(pilot, app, "r")
        assert await previewed(pilot, app) == {"one": "cached", "two": "cached", "three": "cached"}
        await type_into(pilot, app, "a.n", "5")
        await until(pilot, lambda: asked.is_set(), what="the change's preview asked")
        dialog = app.screen
        assert isinstance(dialog, RunDialog)
        await pilot.press("enter")
        # Enter taken (it waits for the preview in flight), and nothing started.
        await until(pilot, lambda: dialog._starting, what="Enter taken")
        assert spawned == [] and app.screen is dialog
        held.set()
        changed = "what would run changed: Enter again to start"
        await until(pilot, lambda: changed in screen_text(app), what="the line saying so")
        assert spawned == []
        assert (await previewed(pilot, app))["one"] == "run"
        await pilot.press("enter")
        await until(pilot, lambda: bool(spawned))
    assert spawned == [["run", "--set=a.n=5"]]


async def test_a_param_of_the_shown_run_a_field_cannot_hold_is_said_not_dropped(
    tmp_path: Path,
) -> None:
    project = project_at(tmp_path)
    assert project.mlci("run", "--set", 'b.name="x\\u0007y"').returncode == 0
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.run is not None)
        app.stages.select("three", by_user=True)
        await opened(pilot, app, "s")
        await until(pilot, lambda: "Not filled in (b.name)" in screen_text(app), what="the note")
        assert field(app, "b.name").value == "plain"
