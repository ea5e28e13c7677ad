"""The stage graph's edges from deps over outs, and the glob rules they rest on,
held by oracles: the standard library's own globbing on a real file tree, and a
brute-force search for a path under an out that a glob covers."""

from __future__ import annotations

import contextlib
import glob as stdlib_glob
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui import dag
from mlci_tui.config import load_config
from mlci_tui.globs import Glob, covers, may_cover
from mlci_tui.pipeline.outs import TOOL_CACHES, glob_files, tree_files
from mlci_tui.store.cache_dir import file_stats

# A small world of names, so that random patterns and paths meet often; each
# pattern part below matches at least one of the names.
NAMES = ["a", "b", "x.csv", ".h", "ab"]
PATTERN_PARTS = ["*", "**", "*.csv", "a", "b", "?", ".*", "[ab]", "x.csv"]

parts_of_paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4)
patterns = st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=4).filter(
    lambda parts: any(part != "**" for part in parts)
)


@settings(max_examples=500, deadline=None)
@given(pattern=patterns, parts=parts_of_paths)
def test_may_cover_is_exactly_whether_some_path_under_it_is_covered(pattern, parts) -> None:
    # Any path a pattern of at most 4 parts covers under `parts` is found within 4
    # more names drawn from NAMES (each part matches one of them).
    witnessed = covers(pattern, parts) or any(
        covers(pattern, [*parts, *more])
        for depth in range(1, 5)
        for more in itertools.product(NAMES, repeat=depth)
    )
    assert may_cover(pattern, parts) == witnessed


file_trees = st.lists(parts_of_paths, min_size=1, max_size=12)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=file_trees, pattern=patterns)
def test_a_glob_covers_what_the_shell_globbing_of_python_finds(
    tmp_path_factory: pytest.TempPathFactory, files, pattern
) -> None:
    root = tmp_path_factory.mktemp("tree")
    made = _make_tree(root, files)
    found = set(glob_files(Glob(root, tuple(pattern))))
    assert found == _stdlib_covered(root, pattern, made)


# What a directory holds: files, directories, links (to files, to directories, up
# the tree into a loop, to nothing), a pipe, a tool's cache.
WALK_NAMES = ["a", "b", "c.txt", ".h", "__pycache__"]
walk_items = st.lists(
    st.tuples(
        st.sampled_from(["file", "dir", "link", "pipe"]),
        st.lists(st.sampled_from(WALK_NAMES), min_size=1, max_size=3),
        st.lists(st.sampled_from([*WALK_NAMES, ".."]), min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=walk_items)
def test_a_dep_walk_finds_what_os_walk_finds_in_order_with_each_file_stat(
    tmp_path_factory: pytest.TempPathFactory, items
) -> None:
    """`tree_files` against `os.walk` through links (each directory once, tools'
    caches left out): the same regular files, in the order a key hashes them (sorted
    by their names, directory by directory), each with the stat `file_stats` takes."""
    root = tmp_path_factory.mktemp("tree") / "root"
    root.mkdir()
    for kind, parts, target in items:
        path = root.joinpath(*parts)
        if os.path.lexists(path):
            continue  # a pipe there would make writing wait
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "file":
                path.write_text("/".join(parts))
            elif kind == "dir":
                path.mkdir()
            elif kind == "pipe":
                os.mkfifo(path)
            else:
                path.symlink_to(os.path.join(*target))
    found = tree_files(str(root))
    assert list(found) == sorted(found, key=lambda path: path.split(os.sep))
    assert found == file_stats(_walked(str(root)))


def _walked(root: str) -> list[str]:
    """The regular files `os.walk` finds through links, each directory once (first in
    sorted order), tools' caches left out."""
    seen: set[tuple[int, int]] = set()
    files = []
    for directory, directories, names in os.walk(root, followlinks=True):
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in seen:
            directories[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        directories[:] = sorted(d for d in directories if d not in TOOL_CACHES)
        files += [os.path.join(directory, name) for name in names]
    return [path for path in files if os.path.isfile(path)]


def _make_tree(root: Path, files: list[list[str]]) -> set[str]:
    """The files of ``files`` (a path that is a directory of another is skipped)."""
    made: set[str] = set()
    for parts in files:
        path = root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue
        made.add(str(path))
    return {path for path in made if os.path.isfile(path)}


def _stdlib_covered(base: Path, pattern: list[str], files: set[str]) -> set[str]:
    """The files under what `glob.glob` matches (a file, or a directory holding it)."""
    matched = stdlib_glob.glob(os.path.join(glob_escape(base), *pattern), recursive=True)
    covered = set()
    for path in matched:
        if path.endswith(os.sep) and not os.path.isdir(path):
            continue  # Python's glob, unlike the shell, gives a file for `name/**`
        path = os.path.normpath(path)
        if path == os.path.normpath(base):
            continue  # what a glob matches lies below its base: `data/**` is not `data`
        covered |= {f for f in files if f == path or f.startswith(path + os.sep)}
    return covered


def glob_escape(path: Path) -> str:
    return stdlib_glob.escape(str(path))


# Edges ---------------------------------------------------------------------------

# Paths of a project: a few directories deep, with names a pattern can meet.
project_paths = st.lists(
    st.sampled_from(["data", "sub", "x.csv", "m.pkl", ".h"]), min_size=1, max_size=3
)
dep_patterns = st.lists(
    st.sampled_from(["*", "**", "*.csv", "sub", "?.csv"]), min_size=1, max_size=3
)


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[dict[str, list], dict[str, list[tuple[str, ...]]], list]:
    """Stages' deps (paths and globs) and outs (paths that never overlap), and the
    files a run might leave in each out (an out is a file or a directory)."""
    count = draw(st.integers(2, 5))
    names = [f"s{index}" for index in range(count)]
    outs: dict[str, list[tuple[str, ...]]] = {name: [] for name in names}
    taken: list[tuple[str, ...]] = []
    for _ in range(draw(st.integers(1, 6))):
        out = tuple(draw(project_paths))
        if any(out[: len(t)] == t or t[: len(out)] == out for t in taken):
            continue
        taken.append(out)
        outs[draw(st.sampled_from(names))].append(out)
    deps: dict[str, list] = {}
    for name in names:
        chosen = []
        for _ in range(draw(st.integers(0, 3))):
            base = tuple(draw(project_paths))
            if draw(st.booleans()):
                chosen.append((base, tuple(draw(dep_patterns))))
            else:
                chosen.append((base, None))
        deps[name] = chosen
    # What each out is after a run: a file, or a directory of a few files.
    contents = []
    for out in taken:
        if draw(st.booleans()):
            contents.append(out)
        else:
            for inner in draw(st.lists(project_paths, min_size=1, max_size=3)):
                contents.append(out + tuple(inner))
    return deps, outs, contents


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pipeline=pipelines())
def test_a_stage_needs_every_stage_whose_out_it_can_read_on_a_real_tree(
    tmp_path_factory: pytest.TempPathFactory, pipeline
) -> None:
    spec_deps, spec_outs, contents = pipeline
    root = tmp_path_factory.mktemp("project")
    deps = {
        name: [
            Glob(root.joinpath(*base), pattern) if pattern else root.joinpath(*base)
            for base, pattern in chosen
        ]
        for name, chosen in spec_deps.items()
    }
    outs = {name: [root.joinpath(*out) for out in paths] for name, paths in spec_outs.items()}
    files = _make_tree(root, [list(parts) for parts in contents])
    edges = dag.reads(deps, outs)
    for reader, reader_deps in deps.items():
        read = set()
        for dep in reader_deps:
            read |= _read_by(dep, files)
        for writer, writer_outs in outs.items():
            if writer == reader:
                continue
            if any(f == str(o) or f.startswith(str(o) + os.sep) for f in read for o in writer_outs):
                assert writer in edges.get(reader, {}), (reader, writer, read)


def _read_by(dep: Path | Glob, files: set[str]) -> set[str]:
    """Brute force: the files of the tree a dep reads."""
    if isinstance(dep, Glob):
        return _stdlib_covered(dep.base, list(dep.pattern), files)
    return {f for f in files if f == str(dep) or f.startswith(str(dep) + os.sep)}


@pytest.mark.parametrize(
    ("dep", "out", "reads"),
    [
        ("data", "data/clean.csv", True),  # a directory dep holds the out
        ("data/clean.csv", "data/clean.csv", True),
        ("data/clean.csv", "data", True),  # the out (a directory) holds the dep
        ("data/*.csv", "data/clean.csv", True),
        ("data/*.csv", "data", True),  # the out holds the glob's base
        ("data/raw/*.csv", "data", True),
        ("data/*.csv", "data/model.pkl", False),
        ("data/*.csv", "data/sub", False),  # what it holds is a level too deep
        ("data/*/train.csv", "data/sub", True),  # it may hold sub/train.csv
        ("data/**/*.csv", "data/sub", True),
        ("data/**/*.csv", "data/model.pkl", True),  # may be a directory of CSVs
        ("data/**/*.csv", "data/.cache", False),  # ** skips hidden directories
        ("data/.*/*.csv", "data/.cache", True),
        ("data/*.csv", "data/.clean.csv", False),
        ("data/*.csv", "other/clean.csv", False),
        ("data-old", "data", False),
        ("data", "data-old/x", False),
    ],
)
def test_which_dep_reads_which_out(tmp_path: Path, dep: str, out: str, reads: bool) -> None:
    (tmp_path / "config.toml").write_text(
        f'[stages.reader]\ncommand = "true"\ndeps = ["{dep}"]\n'
        f'[stages.writer]\ncommand = "true"\nouts = ["{out}"]\n'
    )
    config = load_config(tmp_path / "config.toml", environ={})
    reader = config.stages["reader"]
    assert (reader.needs == ("writer",)) is reads
    assert list(config.stages) == (["writer", "reader"] if reads else ["reader", "writer"])
    if reads:
        assert reader.needs_text(config.root) == (f"writer (its out {out})",)


def test_a_named_need_shows_no_outs_and_an_artifact_is_read_as_an_out(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        """
[stages.evaluate]
command = "true"
needs = ["train"]
deps = ["build/model.json", "build/data/test.csv"]
[stages.train]
command = "true"
needs = ["prepare"]
artifact = "build/model.json"
[stages.prepare]
command = "true"
outs = ["build/data", "build/meta.json", "build/more", "build/extra"]
"""
    )
    config = load_config(tmp_path / "config.toml", environ={})
    evaluate = config.stages["evaluate"]
    assert evaluate.needs == ("train", "prepare")
    assert evaluate.inferred == {"prepare": (tmp_path / "build/data",)}
    assert evaluate.needs_text(config.root) == ("train", "prepare (its out build/data)")
    (tmp_path / "config.toml").write_text(
        '[stages.all]\ncommand = "true"\ndeps = ["build"]\n'
        '[stages.prepare]\ncommand = "true"\n'
        'outs = ["build/a", "build/b", "build/c", "build/d", "build/e"]\n'
    )
    config = load_config(tmp_path / "config.toml", environ={})
    assert config.stages["all"].needs_text(config.root) == (
        "prepare (its outs build/a, build/b, build/c, 2 more)",
    )


def test_the_edges_of_a_chain_of_ten_thousand_stages() -> None:
    # Each stage reads the directory the next one writes into: a chain of 10 000.
    root = Path("/project")
    count = 10_000
    deps = {f"s{i}": [root / f"d{i + 1}"] for i in range(count)}
    outs = {f"s{i}": [root / f"d{i}" / "out.csv"] for i in range(count)}
    edges = dag.reads(deps, outs)
    assert len(edges) == count - 1
    assert all(
        edges[f"s{i}"] == {f"s{i + 1}": [dag.Read(0, root / f"d{i + 1}" / "out.csv")]}
        for i in range(count - 1)
    )
