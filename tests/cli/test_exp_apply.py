"""`mlci exp apply`: an experiment's outs back from the cache, its params into the
params file or a `--set` line — with real `mlci exp run`s, real stores and files."""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.config import load_config
from mlci_tui.config.param_sets import set_argument, set_params
from mlci_tui.service.outs_lock import lock_outs
from mlci_tui.store import Store
from tests.helpers import SWEEP_PARAMS, Project, experiment, mlci_env, sweep_project

SETS = ("train.lr=0.3", "train.optimizer=sgd")


def tree(path: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file under ``path``: its bytes and whether it is executable."""
    return {
        str(file.relative_to(path)): (file.read_bytes(), os.access(file, os.X_OK))
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }


def forced_run(where: Path, *sets: str) -> dict[str, tuple[bytes, bool]]:
    """The oracle: `mlci run --set … --force` in a fresh copy of the sweep's sources."""
    fresh = sweep_project(where)
    arguments = [part for text in sets for part in ("--set", text)]
    result = fresh.mlci("run", *arguments, "--force")
    assert result.returncode == 0, result.stderr
    return tree(where / "build")


def applied(project: Project, *args: str) -> subprocess.CompletedProcess[bytes]:
    return project.mlci("exp", "apply", *args)


def test_apply_restores_the_bytes_a_forced_run_makes(tmp_path: Path) -> None:
    project = sweep_project(tmp_path / "work")
    assert project.mlci("run").returncode == 0
    number = experiment(project, *SETS)
    before = tree(project.path / "build")
    result = applied(project, str(number))
    assert result.returncode == 0, result.stderr
    after = tree(project.path / "build")
    assert after != before
    assert after == forced_run(tmp_path / "fresh", *SETS)
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith(f"applied experiment #{number} try: outs build/extra")
    # The line that runs it again, as `mlci run --set` reads it.
    assert lines[-1] == "mlci run --set train.lr=0.3 --set train.optimizer=sgd"
    # Applied again, nothing differs: nothing is written.
    again = applied(project, str(number))
    assert b"outs all were as it left them" in again.stdout


def test_changed_files_are_refused_without_a_terminal_and_asked_on_one(tmp_path: Path) -> None:
    project = sweep_project(tmp_path)
    assert project.mlci("run").returncode == 0
    number = experiment(project, *SETS)
    notes = project.path / "build" / "extra" / "notes.txt"
    notes.write_text("my own notes\n")
    (project.path / "build" / "extra" / "mine.txt").write_text("added by hand\n")
    before = tree(project.path / "build")

    refused = applied(project, str(number))
    assert refused.returncode == 2
    assert refused.stderr == (
        b"mlci: 2 changed files would be overwritten (build/extra/mine.txt, \xe2\x80\xa6):"
        b" pass --yes to overwrite them\n"
    )
    assert tree(project.path / "build") == before

    command = project.in_terminal("exp", "apply", str(number))
    declined = subprocess.run(command, input=b"n\n", capture_output=True, cwd=project.path)
    assert b"overwrite 2 changed files? [y/N]" in declined.stdout
    assert b"build/extra/notes.txt" in declined.stdout and declined.returncode == 1
    assert tree(project.path / "build") == before

    accepted = subprocess.run(command, input=b"y\n", capture_output=True, cwd=project.path)
    assert accepted.returncode == 0, accepted.stdout
    assert notes.read_text() == "notes 0.3\n"
    assert not (project.path / "build" / "extra" / "mine.txt").exists()


def test_files_a_run_or_an_apply_left_are_no_changes(tmp_path: Path) -> None:
    """What the workspace's run left, or an earlier apply, is overwritten unasked."""
    project = sweep_project(tmp_path)
    assert project.mlci("run").returncode == 0
    first = experiment(project, "train.lr=0.3", name="one")
    second = experiment(project, "train.lr=0.4", name="two")
    assert applied(project, str(first)).returncode == 0
    result = applied(project, str(second))
    assert result.returncode == 0, result.stderr
    assert (project.path / "build" / "extra" / "notes.txt").read_text() == "notes 0.4\n"


def test_a_missing_cache_object_is_named_and_nothing_is_applied(tmp_path: Path) -> None:
    project = sweep_project(tmp_path)
    assert project.mlci("run").returncode == 0
    number = experiment(project, *SETS)
    config = load_config(str(project.config_path))
    with contextlib.closing(Store.open(project.state_dir)) as store:
        record = store.experiments.get(number)
        assert record is not None and record.run_id is not None
        run = store.runs.get(record.run_id)
    assert run is not None
    train = next(stage for stage in run.stages if stage.name == "train")
    entry_path = config.pipeline.cache_dir / "entries" / train.cache_key[:2]
    entry = (entry_path / f"{train.cache_key[2:]}.json").read_text()
    import json

    sha = json.loads(entry)["outs"]["build/model.txt"]["sha"]
    (config.pipeline.cache_dir / "objects" / sha[:2] / sha[2:]).unlink()
    before = tree(project.path / "build")
    result = applied(project, str(number), "--yes")
    assert result.returncode == 1
    assert result.stderr == (
        b"mlci: out build/model.txt of stage train is missing from the cache"
        b" (removed by mlci cache gc?): run the experiment again\n"
    )
    # build/extra comes first and could have been restored: it was not.
    assert tree(project.path / "build") == before


def test_params_go_into_the_params_file_where_they_are(tmp_path: Path) -> None:
    project = sweep_project(tmp_path / "work", params_file=True)
    assert project.mlci("run").returncode == 0
    number = experiment(project, "train.lr=0.3", 'train.optimizer="s g d"', "train.depth=5")
    result = applied(project, str(number))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1] == (
        "params written into params.toml: train.lr, train.depth, train.optimizer"
    )
    assert (project.path / "params.toml").read_text() == SWEEP_PARAMS.replace(
        "lr = 0.02", "lr = 0.3"
    ).replace("depth = 3", "depth = 5").replace('"adam"', '"s g d"')
    # The config now reads what the experiment ran with: its outs are the run's.
    rerun = project.mlci("run")
    assert rerun.returncode == 0
    fresh = tmp_path / "fresh"
    expected = forced_run(fresh, "train.lr=0.3", 'train.optimizer="s g d"', "train.depth=5")
    assert tree(project.path / "build") == expected


def test_a_params_file_it_cannot_change_in_place_is_left_and_the_line_printed(
    tmp_path: Path,
) -> None:
    project = sweep_project(tmp_path, params_file=True)
    inline = 'train = { lr = 0.02, depth = 3, optimizer = "adam" }  # one line\n'
    (project.path / "params.toml").write_text(inline)
    number = experiment(project, "train.lr=0.3")
    result = applied(project, str(number))
    assert result.returncode == 0, result.stderr
    assert (project.path / "params.toml").read_text() == inline
    lines = result.stdout.decode().splitlines()
    assert lines[-2] == "params not written: params.toml cannot be changed only where they are; run"
    assert lines[-1] == "mlci run --set train.lr=0.3"


def test_a_param_that_held_a_secret_is_never_written_back_masked(tmp_path: Path) -> None:
    """The store keeps a secret param masked (`***`): apply leaves the file's own value
    rather than replacing it with the mask, writes the rest, and says so."""
    project = sweep_project(tmp_path, params_file=True)
    text = project.config_path.read_text()
    project.config_path.write_text(
        text.replace('name = "sweep"', 'name = "sweep"\nsecrets = ["SWEEP_TOKEN"]', 1)
    )
    env = mlci_env(SWEEP_TOKEN="s3cr3t-token")
    result = project.mlci(
        "exp", "run", "--set", 'train.optimizer="s3cr3t-token"', "--set", "train.lr=0.3", env=env
    )
    assert result.returncode == 0, result.stderr
    result = project.mlci("exp", "apply", "1", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert (
        "param train.optimizer held a secret, which the store keeps masked:"
        " left as the config has it"
    ) in lines
    assert lines[-1] == "params written into params.toml: train.lr"
    assert (project.path / "params.toml").read_text() == SWEEP_PARAMS.replace(
        "lr = 0.02", "lr = 0.3"
    )


def test_only_an_experiment_that_passed_is_applied(tmp_path: Path) -> None:
    project = sweep_project(tmp_path)
    failed = project.mlci("exp", "run", "--set", "train.lr=0.7", "--name", "bad")
    assert failed.returncode == 1
    result = applied(project, "1")
    assert result.returncode == 2
    assert result.stderr == (
        b"mlci: experiment #1 bad failed: only an experiment that passed can be applied\n"
    )
    assert applied(project, "9").stderr == b"mlci: no experiment #9 (see mlci exp show)\n"


def test_a_run_holding_the_outs_lock_is_not_disturbed(tmp_path: Path) -> None:
    project = sweep_project(tmp_path)
    assert project.mlci("run").returncode == 0
    number = experiment(project, *SETS)
    before = tree(project.path / "build")
    descriptor = lock_outs(load_config(str(project.config_path)))
    try:
        result = applied(project, str(number))
    finally:
        os.close(descriptor)
    assert result.returncode == 2
    assert result.stderr.endswith(b"wait for it to end, or cancel it\n")
    assert result.stderr.count(b"\n") == 1
    assert tree(project.path / "build") == before


def test_cache_gc_keeps_what_experiments_need_until_they_are_removed(tmp_path: Path) -> None:
    project = sweep_project(tmp_path, deploy=True)
    number = experiment(project, *SETS)
    for lr in ("0.05", "0.06"):  # newer runs of the workspace: gc keeps only the last
        assert project.mlci("run", "--set", f"train.lr={lr}").returncode == 0
    assert project.mlci("cache", "gc", "--keep-runs", "1").returncode == 0
    assert applied(project, str(number), "--yes").returncode == 0
    assert project.mlci("exp", "promote", str(number)).returncode == 0

    config = load_config(str(project.config_path))
    with contextlib.closing(Store.open(project.state_dir)) as store:
        record = store.experiments.get(number)
        assert record is not None and record.run_id is not None
        run = store.runs.get(record.run_id)
        assert run is not None
        keys = {stage.cache_key for stage in run.stages if stage.name == "train"}
        store.experiments.remove(number)
    (key,) = keys
    assert key is not None
    entry = config.pipeline.cache_dir / "entries" / key[:2] / f"{key[2:]}.json"
    assert entry.exists()
    # Its run made a version, which keeps the run: a second experiment without one goes.
    other = experiment(project, "train.lr=0.31")
    with contextlib.closing(sqlite3.connect(project.state_dir / "mlci.db")) as db:
        (other_key,) = db.execute(
            "SELECT cache_key FROM stages JOIN experiments ON experiments.run_id = stages.run_id"
            " WHERE experiments.id = ? AND stages.name = 'train'",
            (other,),
        ).fetchone()
    other_entry = config.pipeline.cache_dir / "entries" / other_key[:2] / f"{other_key[2:]}.json"
    assert project.mlci("cache", "gc", "--keep-runs", "1").returncode == 0
    assert other_entry.exists()
    with contextlib.closing(Store.open(project.state_dir)) as store:
        store.experiments.remove(other)
    assert project.mlci("cache", "gc", "--keep-runs", "1").returncode == 0
    assert not other_entry.exists()
    assert entry.exists()  # the promoted version's run still needs it


INTEGERS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXTS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))
KINDS = [st.booleans(), INTEGERS, FLOATS, TEXTS]
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_-]{0,8})?", fullmatch=True)


@st.composite
def param_pairs(draw: st.DrawFn) -> tuple[dict, dict]:
    """Params as a config declares them, and values of the same kinds (an experiment's)."""
    declared: dict = {}
    chosen: dict = {}
    for name in draw(st.lists(NAMES, min_size=1, max_size=4, unique=True)):
        kind = draw(st.sampled_from(KINDS))
        value = draw(kind)
        if draw(st.booleans()):  # an array of that kind
            declared[name] = (value,)
            chosen[name] = tuple(draw(st.lists(kind, max_size=3)))
        else:
            declared[name] = value
            chosen[name] = draw(kind)
    return declared, chosen


@settings(max_examples=300, deadline=None)
@given(param_pairs())
def test_the_printed_set_values_read_back_as_the_experiments_params(pair: tuple) -> None:
    """What `mlci exp apply` prints (`set_argument`, shell-quoted) is what `--set`
    reads back: the same values, of the same types."""
    declared, chosen = pair
    words = ["mlci", "run"]
    for name, value in chosen.items():
        words += ["--set", set_argument(name, declared[name], value)]
    said = shlex.split(shlex.join(words))
    sets = [said[i + 1] for i, word in enumerate(said) if word == "--set"]
    back = set_params(declared, sets)
    for name, value in chosen.items():
        assert _same(back[name], value), (name, value, back[name])


def _same(one: object, other: object) -> bool:
    if isinstance(one, tuple) and isinstance(other, tuple):
        return len(one) == len(other) and all(_same(a, b) for a, b in zip(one, other, strict=True))
    return type(one) is type(other) and one == other
