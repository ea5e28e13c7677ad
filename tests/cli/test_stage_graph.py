"""`mlci dag`: its edges are the config's, each with where it comes from, and the
drawing reads at 80 columns with nothing of the config's steering the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlci_tui import dag
from mlci_tui.commands.stage_graph import graph_document
from mlci_tui.config import load_config
from mlci_tui.errors import ConfigError
from tests.helpers import Project, run_python
from tests.unit.test_dag import pipelines


def toml_paths(paths: list[str]) -> str:
    return json.dumps(paths)


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, dict[str, list[str]]]:
    """A config of stages with deps and outs that may read each other's, and names
    in ``needs`` (of stages written before, so that they make no cycle alone)."""
    deps, outs, _ = draw(pipelines())
    names = list(deps)
    named: dict[str, list[str]] = {}
    text = ""
    for index, name in enumerate(names):
        earlier = names[:index]
        named[name] = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        dep_paths = list(dict.fromkeys("/".join(b + (p or ())) for b, p in deps[name]))
        out_paths = ["/".join(out) for out in outs[name]]
        text += (
            f'[stages.{name}]\ncommand = "true"\nneeds = {json.dumps(named[name])}\n'
            f"deps = {toml_paths(dep_paths)}\nouts = {toml_paths(out_paths)}\n"
        )
    return text, named


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=configs())
def test_the_edges_are_the_named_needs_and_every_out_a_dep_reads(
    tmp_path_factory: pytest.TempPathFactory, config: tuple[str, dict[str, list[str]]]
) -> None:
    text, named = config
    root = tmp_path_factory.mktemp("project")
    (root / "config.toml").write_text(text)
    try:
        loaded = load_config(root / "config.toml", environ={})
    except ConfigError as error:
        # A cycle that reading outs makes, or an out that is a dep of its own stage.
        assume("cycle" not in str(error) and "dep of this stage" not in str(error))
        raise
    read = dag.reads(
        {name: stage.deps for name, stage in loaded.stages.items()},
        {name: stage.products for name, stage in loaded.stages.items()},
    )
    expected = {(need, name, "needs", ()) for name, needs in named.items() for need in needs}
    for reader, writers in read.items():
        for writer, how in writers.items():
            if writer not in named[reader]:
                outs = tuple(dict.fromkeys(str(r.out.relative_to(root)) for r in how))
                expected.add((writer, reader, "out", outs))
    document = graph_document(loaded, lambda text: text)
    edges = {
        (edge["from"], edge["to"], edge["kind"], tuple(edge["outs"])) for edge in document["edges"]
    }
    assert edges == expected
    # Layers: after everything a stage runs after, and as early as that allows.
    layer = {stage["name"]: stage["layer"] for stage in document["stages"]}
    assert list(layer) == list(loaded.stages)
    for name in layer:
        before = [source for source, target, _, _ in edges if target == name]
        assert layer[name] == 1 + max((layer[s] for s in before), default=0)


def init_project(tmp_path: Path) -> Project:
    result = run_python("-m", "mlci_tui", "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return Project(tmp_path)


def test_dag_draws_the_init_pipeline_at_80_columns(tmp_path: Path) -> None:
    result = init_project(tmp_path).mlci("dag")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == (
        "my-model: 3 stages, then deploy and monitor\n"
        "\n"
        "1  test\n"
        "2  train     ◀── test         named in needs\n"
        "3  evaluate  ◀── train        a dep reads its out build/model.json\n"
        "4  deploy    ◀── every stage  deploys the run's version once every stage passed\n"
        "5  monitor   ◀── deploy       checks each version deployed\n"
        "\n"
        "Each stage runs after the stages on its ◀── rows; stages of one layer (the\n"
        "number) may run side by side.\n"
    )


def test_dag_json_gives_every_edge_with_its_kind_and_reason(tmp_path: Path) -> None:
    project = init_project(tmp_path)
    result = project.mlci("dag", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(s["name"], s["layer"], s["builtin"]) for s in document["stages"]] == [
        ("test", 1, False),
        ("train", 2, False),
        ("evaluate", 3, False),
        ("deploy", 4, True),
        ("monitor", 5, True),
    ]
    # As the text numbers them.
    drawn = [line.split()[:2] for line in project.mlci("dag").stdout.decode().splitlines()[2:7]]
    assert drawn == [[str(s["layer"]), s["name"]] for s in document["stages"]]
    assert [(e["from"], e["to"], e["kind"], e["outs"]) for e in document["edges"]] == [
        ("test", "train", "needs", []),
        ("train", "evaluate", "out", ["build/model.json"]),
        ("test", "deploy", "builtin", []),
        ("train", "deploy", "builtin", []),
        ("evaluate", "deploy", "builtin", []),
        ("deploy", "monitor", "builtin", []),
    ]
    assert document["edges"][1]["reason"] == "a dep reads its out build/model.json"


def test_dag_wraps_long_reasons_and_keeps_paths_from_steering_the_terminal(
    tmp_path: Path,
) -> None:
    project = Project(tmp_path)
    outs = [
        f"build/{'long-directory-name/' * 2}part{index}\x1b]0;owned\x07.bin" for index in range(5)
    ]
    project.write(
        f'[stages.make]\ncommand = "true"\nouts = {json.dumps(outs)}\n'
        '[stages.use]\ncommand = "true"\ndeps = ["build"]\n'
    )
    text = project.mlci("dag")
    assert text.returncode == 0, text.stderr
    shown = text.stdout.decode()
    assert "\x1b" not in shown and "\x07" not in shown
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    assert "2 more" in shown
    document = json.loads(project.mlci("dag", "--json").stdout)
    assert len(document["edges"][0]["outs"]) == 5
    assert document["edges"][0]["outs"][0].endswith("part0\x1b]0;owned\x07.bin")


def test_dag_of_a_broken_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.write('[stages.a]\ncommand = "true"\nneeds = ["b"]\n')
    result = project.mlci("dag")
    assert result.returncode == 2
    assert result.stdout == b""
    assert len(result.stderr.splitlines()) == 1
