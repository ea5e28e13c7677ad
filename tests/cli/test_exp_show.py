"""`mlci exp show`, `exp diff` and `exp remove` over experiments that real `mlci exp
run` processes ran; and the commands that show the workspace's runs keep showing
those, saying where the experiments are."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mlci_tui.store import Store
from tests.helpers import Project, mlci_env, run, setup

SECRET = "sekrit-9f3a"
TRAIN = "import os; print('::metric loss=' + os.environ['MLCI_PARAM_TRAIN_LR'])"
EVALUATE = (
    "import os; print('::metric accuracy=%s' % (1 - float(os.environ['MLCI_PARAM_TRAIN_LR'])))"
)
CONFIG = f"""
[pipeline]
name = "tiny"
secrets = ["TOKEN"]

[params]
train.lr = 0.1
train.depth = 3
train.tag = "x"

[stages.train]
command = {json.dumps("{python} -c " + json.dumps(TRAIN))}
params = ["train"]

[stages.evaluate]
command = {json.dumps("{python} -c " + json.dumps(EVALUATE))}
needs = ["train"]
params = ["train"]
gates = ["accuracy >= 0.5"]
"""


def env() -> dict[str, str]:
    return mlci_env(TOKEN=SECRET)


def mlci(project: Project, *args: str) -> tuple[int, str, str]:
    done = project.mlci(*args, env=env())
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A run of the workspace, then three experiments that ran (lr 0.1, 0.2, 0.3;
    their tag, a secret, masked) and one queued."""
    project = Project(tmp_path_factory.mktemp("sweep"))
    project.write(CONFIG)
    # First: the newest run of all is an experiment's, not the workspace's.
    code, out, err = mlci(project, "run", "--set", "train.lr=0.05")
    assert code == 0, out + err
    code, out, err = mlci(
        project, "exp", "run", "--set", "train.lr=0.1,0.2,0.3", "--set", f"train.tag={SECRET}"
    )
    assert code == 0, out + err
    code, out, err = mlci(project, "exp", "run", "--queue", "--set", "train.lr=0.4")
    assert code == 0, out + err
    return project


def test_show_is_one_row_per_experiment_with_the_params_that_differ_and_the_best_marked(
    sweep: Project,
) -> None:
    code, out, err = mlci(sweep, "exp", "show")
    assert code == 0, err
    lines = out.splitlines()
    headers = ["ID", "NAME", "STATE", "DURATION", "CODE", "train.lr", "train.tag"]
    assert lines[0].split() == [*headers, "accuracy", "loss"]
    assert "train.depth" not in lines[0], "a param every row shares is left out"
    rows = lines[1:5]
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4"]
    assert "queued" in rows[3] and "passed" in rows[0]
    # The best accuracy (higher is better, as its gate says) is lr 0.1's.
    assert "0.9*" in rows[0] and "0.8*" not in rows[1] and "0.7*" not in rows[2]
    assert lines[-1] == "* the best of its column (accuracy: higher is better)"
    assert SECRET not in out and "***" in out
    assert "run " not in "\n".join(rows), "the workspace's run is not an experiment"


def test_runs_adds_the_workspaces_runs(sweep: Project) -> None:
    code, out, _ = mlci(sweep, "exp", "show", "--runs", "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [row["kind"] for row in rows] == ["run"] + ["experiment"] * 4
    assert rows[0]["params"]["train.lr"] == 0.05


def test_sort_puts_the_best_first_and_filter_keeps_what_holds(sweep: Project) -> None:
    code, out, _ = mlci(sweep, "exp", "show", "--sort", "loss", "--json")
    assert code == 0
    ids = [row["id"] for row in json.loads(out)["rows"]]
    # loss has no direction: ascending, the queued one (no loss) last.
    assert ids == [1, 2, 3, 4]
    code, out, _ = mlci(sweep, "exp", "show", "--sort", "accuracy", "--filter", "accuracy<0.85")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["2", "3"]
    assert "0.8*" in out.splitlines()[1]
    code, out, _ = mlci(sweep, "exp", "show", "--filter", "state=queued", "--json")
    assert [row["id"] for row in json.loads(out)["rows"]] == [4]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sort", "speed"], "mlci: --sort: no column 'speed' (columns: id, name, state,"),
        (["--filter", "accuracy>=high"], "accuracy compares with a number, got 'high'"),
        (["--filter", "nonsense"], "--filter 'nonsense': expected COLUMN OP VALUE"),
        (["--json", "--csv"], "--json and --csv: choose one"),
    ],
)
def test_bad_sort_or_filter_is_one_line_and_exit_2(
    sweep: Project, args: list[str], expected: str
) -> None:
    code, out, err = mlci(sweep, "exp", "show", *args)
    assert code == 2 and out == ""
    assert expected in err and err.count("\n") == 1, err


def test_json_and_csv_carry_every_field(sweep: Project) -> None:
    code, out, _ = mlci(sweep, "exp", "show", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["params"] == ["train.lr", "train.tag"]
    accuracy = next(m for m in document["metrics"] if m["name"] == "accuracy")
    assert accuracy == {
        "stage": "evaluate",
        "name": "accuracy",
        "label": "accuracy",
        "better": "higher",
        "best_id": "e1",
    }
    first = document["rows"][0]
    assert first["best"] == ["accuracy"] and first["run_id"] is not None
    assert first["params"] == {"train.lr": 0.1, "train.depth": 3, "train.tag": "***"}
    assert SECRET not in out
    code, out, _ = mlci(sweep, "exp", "show", "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [row["id"] for row in table] == ["1", "2", "3", "4"]
    assert table[0]["param:train.tag"] == "***" and table[0]["metric:evaluate.accuracy"] == "0.9"
    assert table[3]["state"] == "queued" and table[3]["metric:evaluate.accuracy"] == ""
    assert SECRET not in out


def test_markdown_fits_a_job_summary_and_says_what_it_left_out(tmp_path: Path) -> None:
    from mlci_tui.commands.exp_show import table_markdown
    from mlci_tui.store.experiment_table import read_experiments
    from mlci_tui.store.experiments import NewExperiment

    with Store.open(tmp_path / ".mlci") as store:
        long = "n" * 2000
        store.experiments.add(
            [NewExperiment(f"{long}{i}", {"p": i}, (f"p={i}",)) for i in range(100)],
            config_path="c",
            batch=None,
            keep=False,
            now=1.0,
        )
        table = read_experiments(store, None)
    whole = table_markdown(table)
    assert whole.count(long) == 100 and "left out" not in whole
    cut = table_markdown(table, limit=50_000)
    assert len(cut.encode()) <= 50_000
    kept = cut.count(long)
    assert 0 < kept < 100
    assert f"*{100 - kept} more rows left out to fit 48 KiB" in cut


def test_markdown_is_a_table_with_the_best_in_bold(sweep: Project) -> None:
    code, out, _ = mlci(sweep, "exp", "show", "--md")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "### Experiments (4)"
    assert lines[2].startswith("| id | name | state |")
    assert "**0.9**" in lines[4]
    assert lines[-1] == "**bold**: the best of its column (accuracy: higher is better)"


def test_an_empty_store_says_how_to_start(project: Project) -> None:
    project.write(CONFIG)
    for args in ([], ["--md"]):
        code, out, _ = mlci(project, "exp", "show", *args)
        assert (code, out) == (
            0,
            "no experiments yet: start some with `mlci exp run --set PARAM=V1,V2`\n",
        )
    code, out, _ = mlci(project, "exp", "show", "--json")
    assert code == 0 and json.loads(out)["rows"] == []


def test_names_and_params_with_escapes_or_markup_are_shown_inert(project: Project) -> None:
    project.write(CONFIG)
    with Store.open(project.state_dir) as store:
        from mlci_tui.store.experiments import NewExperiment

        store.experiments.add(
            [
                NewExperiment(
                    f"evil\x1b]0;title\x07[bold]x | y {SECRET}",
                    {"train.tag": f"\x1b[2J*{SECRET}*"},
                    (),
                )
            ],
            config_path=str(project.config_path),
            batch="held",
            keep=False,
            now=1.0,
        )
    for args in ([], ["--md"], ["--csv"], ["--json"]):
        code, out, err = mlci(project, "exp", "show", *args)
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out and SECRET not in out, (args, out)
    code, out, _ = mlci(project, "exp", "show", "--md")
    row = out.splitlines()[4]
    assert "\\[bold\\]x \\| y \\*\\*\\*" in row, row


def test_diff_compares_two_experiments_as_mlci_diff_compares_runs(sweep: Project) -> None:
    code, out, err = mlci(sweep, "exp", "diff", "1", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("#1 ") and " → #3 " in lines[0]
    assert any(line.split()[:4] == ["train.lr", "0.1", "→", "0.3"] for line in lines)
    assert any(line.startswith("accuracy") and "pass" in line for line in lines)
    code, out, _ = mlci(sweep, "exp", "diff", "1", "3", "--json")
    document = json.loads(out)
    assert document["old"]["label"].startswith("#1 ")
    code, out, err = mlci(sweep, "exp", "diff", "1", "4")
    assert (code, out) == (1, "")
    assert (
        err == "mlci: experiment #4 train.lr=0.4 never started (queued): it has no run to compare\n"
    )
    code, _, err = mlci(sweep, "exp", "diff", "1", "99")
    assert code == 1 and err == "mlci: no experiment 99 (see `mlci exp show`)\n"


def test_status_diff_report_and_metrics_keep_meaning_the_workspaces_runs(sweep: Project) -> None:
    status = json.loads(mlci(sweep, "status", "--json")[1])
    assert status["kind"] == "run" and status["params"]["train.lr"] == 0.05
    code, out, _ = mlci(sweep, "status")
    assert code == 0
    assert out.splitlines()[-1] == "experiments: 1 queued, 3 ended — mlci exp show"
    # diff's defaults are the workspace's runs; with nothing live to compare with, the
    # refusal says how to compare experiments.
    code, out, err = mlci(sweep, "diff")
    assert (code, out) == (1, "")
    assert err.endswith(
        "; experiments: mlci exp diff A B compares two (mlci exp show lists them)\n"
    ), err
    code, out, _ = mlci(sweep, "report", "--json")
    assert json.loads(out)["run"]["run_id"] == status["run_id"]
    code, out, _ = mlci(sweep, "metrics", "--json")
    assert json.loads(out)["run_id"] == status["run_id"]
    # An experiment's run is still reached by its id.
    experiment_run = json.loads(mlci(sweep, "exp", "show", "--json")[1])["rows"][0]["run_id"]
    code, out, _ = mlci(sweep, "status", "--run", str(experiment_run), "--json")
    assert code == 0 and json.loads(out)["kind"] == "experiment"
    code, out, _ = mlci(sweep, "logs", "evaluate", "--run", str(experiment_run))
    assert code == 0 and "::metric accuracy=0.9" in out
    code, out, _ = mlci(sweep, "diff", str(experiment_run), "--json")
    assert code in (0, 1)
    code, out, _ = mlci(sweep, "diff", str(experiment_run), str(status["run_id"]), "--json")
    assert json.loads(out)["new"]["run"] == status["run_id"]


def test_status_without_a_run_of_the_workspace_says_where_the_experiments_are(
    project: Project,
) -> None:
    project.write(CONFIG)
    assert mlci(project, "exp", "run", "--set", "train.lr=0.2")[0] == 0
    code, out, err = mlci(project, "status")
    assert (code, out) == (1, "")
    assert err == "mlci: no runs yet; experiments: 1 ended — mlci exp show\n"


def test_the_mirror_leaves_experiments_runs_out(sweep: Project) -> None:
    from mlci_tui.mirror.items import wanted

    with Store.open(sweep.state_dir) as store:
        runs = wanted(store).runs
        kinds = {run.id: run.kind for run in runs}
        experiment_runs = {e.run_id for e in store.experiments.all()} - {None}
    assert set(kinds.values()) == {"run"} and len(kinds) == 1
    assert not experiment_runs & kinds.keys()


def test_remove_refuses_a_queued_or_missing_one_and_removes_nothing(sweep: Project) -> None:
    for ids, expected in (
        (
            ["1", "4"],
            "mlci: experiment #4 train.lr=0.4 is queued: cancel it first with"
            " `mlci exp cancel 4`; nothing removed\n",
        ),
        (["1", "77"], "mlci: no experiment 77; nothing removed\n"),
    ):
        code, out, err = mlci(sweep, "exp", "remove", *ids)
        assert (code, out, err) == (2, "", expected)
    assert [row["id"] for row in json.loads(mlci(sweep, "exp", "show", "--json")[1])["rows"]] == [
        1,
        2,
        3,
        4,
    ]


def test_remove_forgets_an_experiment_its_run_its_logs_and_its_kept_workspace(
    project: Project, tmp_path: Path
) -> None:
    project.write(CONFIG)
    assert mlci(project, "exp", "run", "--keep", "--set", "train.lr=0.1,0.2")[0] == 0
    with Store.open(project.state_dir) as store:
        first, second = store.experiments.all()
    assert first.run_id is not None and second.run_id is not None
    workspace = project.state_dir / "experiments" / str(first.id)
    run_dir = project.state_dir / "runs" / str(first.run_id)
    assert workspace.is_dir() and run_dir.is_dir()
    # The second's directory is a link to somewhere else: only the link goes.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    other = project.state_dir / "experiments" / str(second.id)
    shutil.rmtree(other)
    other.symlink_to(outside)

    code, out, err = mlci(project, "exp", "remove", str(first.id), str(second.id))
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"removed experiment {first.label} (run {first.run_id} and its logs, its workspace)"
    )
    assert not workspace.exists() and not run_dir.exists()
    assert not other.exists() and (outside / "precious").read_text() == "keep me"
    with sqlite3.connect(project.state_dir / "mlci.db") as db:
        assert db.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM metrics").fetchone() == (0,)
    assert mlci(project, "exp", "show")[1].startswith("no experiments yet")
    assert os.listdir(project.state_dir / "experiments") == []


def test_cache_gc_keeps_what_the_newest_runs_of_the_workspace_used(project: Project) -> None:
    """`--keep-runs 1` counts the workspace's runs: the experiments run after it do
    not push its newest run's outs out of the cache."""
    write = "import os; open('out.txt', 'w').write(os.environ['MLCI_PARAM_TRAIN_LR'])"
    project.write(
        f"""
[pipeline]
name = "cached"

[params]
train.lr = 0.1

[stages.train]
command = {json.dumps("{python} -c " + json.dumps(write))}
deps = ["data.txt"]
params = ["train"]
outs = ["out.txt"]
"""
    )
    (project.path / "data.txt").write_text("data")
    assert mlci(project, "run", "--set", "train.lr=0.05")[0] == 0
    assert mlci(project, "exp", "run", "--set", "train.lr=0.1,0.2")[0] == 0
    code, out, err = mlci(project, "cache", "gc", "--keep-runs", "1")
    assert code == 0, err
    # --keep-runs counts the workspace's runs; the last line says what else keeps entries.
    assert out.splitlines()[-1] == (
        "experiments: 2, whose entries stay until they are removed"
        " — mlci exp show lists them, mlci exp remove ID forgets one"
    )
    (project.path / "out.txt").unlink()
    assert mlci(project, "run", "--set", "train.lr=0.05")[0] == 0
    assert json.loads(mlci(project, "status", "--json")[1])["stages"][0]["state"] == "cached"
    assert (project.path / "out.txt").read_text() == "0.05"


def test_on_a_terminal_the_best_is_bold_and_no_color_turns_colour_off(sweep: Project) -> None:
    for extra, painted in (({}, True), ({"NO_COLOR": "1"}, False)):
        done = subprocess.run(
            sweep.in_terminal("exp", "show"),
            cwd=sweep.path,
            env={**env(), **extra},
            capture_output=True,
            timeout=60,
        )
        out = done.stdout.decode()
        assert done.returncode == 0 and "0.9*" in out
        assert ("\x1b[1;32m0.9*\x1b[0m" in out) == painted
        assert ("\x1b[" in out) == painted


def test_diff_of_the_workspaces_runs_ends_saying_how_to_compare_experiments(
    project: Project,
) -> None:
    setup(project)
    for seed in (1, 2):
        assert run(project, seed) == 0
    hint = "experiments: mlci exp diff A B compares two (mlci exp show lists them)"
    assert hint not in mlci(project, "diff")[1], "no experiment yet: no hint"
    assert mlci(project, "exp", "run")[0] == 0
    code, out, err = mlci(project, "diff")
    assert code == 0, err
    assert out.splitlines()[0] == "v1 (run 1) → v2 (run 2)" and out.splitlines()[-1] == hint
    assert hint not in mlci(project, "diff", "--json")[1] + mlci(project, "diff", "--md")[1]
    assert hint not in mlci(project, "diff", "1", "2")[1], "sides named: no hint"
