"""`D`: the stage graph, with each stage's state in the run shown."""

from __future__ import annotations

from textual.containers import ScrollableContainer
from textual.widgets import Static

from mlci_tui.tui.screens.graph import GraphScreen
from tests.helpers import Project, dashboard, run_state, settle, until

PIPELINE = """
[stages.prepare]
command = "mkdir -p data && echo rows > data/clean.csv"
outs = ["data/clean.csv"]
[stages.train]
command = "exit 3"
deps = ["data"]
[stages.report]
command = "true"
needs = ["train"]
"""


def body(app) -> str:
    return str(app.screen.query_one("#graph-body", Static).render())


async def test_d_shows_which_stage_needs_which_with_the_states_of_the_run(
    project: Project,
) -> None:
    project.write(PIPELINE)
    assert project.mlci("run").returncode == 1
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: run_state(app) is not None)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, GraphScreen))
        await settle(pilot)
        lines = [line.rstrip() for line in body(app).splitlines() if line.strip()]
        assert lines == [
            "1 ✓ passed  prepare",
            "2 ✗ failed  train   ◀── prepare a dep reads its out data/clean.csv",
            "3 ↷ skipped report  ◀── train   named in needs",
        ]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, GraphScreen))
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, GraphScreen))
        await pilot.press("D")
        await until(pilot, lambda: not isinstance(app.screen, GraphScreen))


async def test_before_any_run_every_stage_is_pending(project: Project) -> None:
    project.write(PIPELINE)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, GraphScreen))
        await settle(pilot)
        assert [line.split()[1:3] for line in body(app).splitlines() if line.strip()] == [
            ["·", "pending"]
        ] * 3


async def test_a_big_graph_scrolls_at_60x15(project: Project) -> None:
    stages = "".join(
        f'[stages.s{i:02d}]\ncommand = "true"\nneeds = ["s{i - 1:02d}"]\n'
        if i
        else '[stages.s00]\ncommand = "true"\n'
        for i in range(30)
    )
    project.write(stages)
    app = dashboard(project)
    async with app.run_test(size=(60, 15)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, GraphScreen))
        await settle(pilot)
        scroll = app.screen.query_one(ScrollableContainer)
        assert scroll.size.width >= 40 and scroll.size.height >= 8
        assert scroll.virtual_size.height > scroll.size.height
        await pilot.press("end")
        await settle(pilot)
        assert scroll.scroll_y == scroll.max_scroll_y > 0


async def test_d_masks_a_secret_in_a_path_as_mlci_dag_does(project: Project) -> None:
    token = "s3cr3t-token-value"
    project.write(
        f'[pipeline]\nname = "sec-{token}"\nsecrets = ["API_TOKEN"]\n'
        f'env = {{ API_TOKEN = "{token}" }}\n'
        f'[stages.a]\ncommand = "true"\nouts = ["d/{token}.csv"]\n'
        f'[stages.b]\ncommand = "true"\ndeps = ["d/{token}.csv"]\n'
    )
    drawn = project.mlci("dag").stdout.decode()
    assert "d/***.csv" in drawn and token not in drawn
    app = dashboard(project)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        header = str(app.query_one("#header").render())
        assert "sec-***" in header and token not in header
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, GraphScreen))
        await settle(pilot)
        assert "a dep reads its out d/***.csv" in body(app)
        assert token not in body(app)
        assert token not in str(app.screen.query_one("#graph-title", Static).render())
