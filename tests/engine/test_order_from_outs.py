"""Order from deps over outs, held by an oracle: random pipelines of file,
directory and glob deps and outs are run for real (every stage at once where the
graph allows), and afterwards which stage read an out of which is worked out by
brute force on the tree the run left — the standard library's globbing, a walk
for directories. Every such reader must have started after its writer ended."""

from __future__ import annotations

import asyncio
import glob as stdlib_glob
import itertools
import json
import os
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from mlci_tui import dag
from mlci_tui.config import load_config
from mlci_tui.errors import ConfigError
from mlci_tui.pipeline.engine import Engine
from mlci_tui.states import RunState

NAMES = ["data", "sub", "x.csv", "m.pkl", ".h"]
PATTERN_PARTS = ["*", "**", "*.csv", "sub", "?.csv"]


def _magic(part: str) -> bool:
    return bool(set(part) & set("*?["))


paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple)
patterns = st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=3).filter(
    lambda parts: any(_magic(part) for part in parts)
)


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


@st.composite
def pipelines(draw: st.DrawFn) -> list[dict]:
    """Stages in a random order, each with outs (never overlapping another's), the
    files it leaves in each (one file, or a directory of some), and deps."""
    count = draw(st.integers(2, 5))
    stages: list[dict] = [{"name": f"s{i}", "outs": [], "deps": []} for i in range(count)]
    taken: list[tuple[str, ...]] = []
    for _ in range(draw(st.integers(1, 6))):
        out = draw(paths)
        if any(_overlap(out, other) for other in taken):
            continue
        taken.append(out)
        files = [()] if draw(st.booleans()) else draw(st.lists(paths, min_size=1, max_size=3))
        draw(st.sampled_from(stages))["outs"].append((out, files))
    # Deps near the outs, so that most pipelines read some: an out's directories,
    # the out, and paths inside it.
    near = sorted({out[:depth] for out in taken for depth in range(1, len(out) + 1)})
    near += [(*out, "x.csv") for out in taken]
    for stage in stages:
        own = [out for out, _ in stage["outs"]]
        for _ in range(draw(st.integers(0, 3))):
            base = draw(st.sampled_from(near) | paths if near else paths)
            pattern = draw(st.none() | patterns)
            # A stage may not read inside what it removes before it runs.
            if pattern is None:
                clash = any(_overlap(base, out) for out in own)
            else:
                literal = (*base, *itertools.takewhile(lambda part: not _magic(part), pattern))
                clash = any(literal[: len(out)] == out for out in own)
            text = "/".join(("w", *base, *(pattern or ())))
            if not clash and text not in stage["deps"]:
                stage["deps"].append(text)
    return stages


def _config(stages: list[dict], log: Path) -> str:
    lines = ["[pipeline]", f"max_parallel = {len(stages)}"]
    for stage in stages:
        name = stage["name"]
        script = [f"echo start {name} >> {shlex.quote(str(log))}"]
        for out, files in stage["outs"]:
            for inner in files:
                path = "/".join(("w", *out, *inner))
                script.append(f"mkdir -p {shlex.quote(os.path.dirname(path))}")
                script.append(f"echo {name} > {shlex.quote(path)}")
        script.append(f"echo end {name} >> {shlex.quote(str(log))}")
        lines += [
            f"[stages.{name}]",
            f"command = {json.dumps('; '.join(script))}",
            f"deps = {json.dumps(stage['deps'])}",
            f"outs = {json.dumps(['/'.join(('w', *out)) for out, _ in stage['outs']])}",
        ]
    return "\n".join(lines) + "\n"


def _read_files(root: Path, dep: str) -> set[str]:
    """Brute force: the files under ``root`` the dep reads now."""
    files = {
        os.path.join(directory, name)
        for directory, _, names in os.walk(root / "w")
        for name in names
    }
    parts = dep.split("/")
    magic = next((i for i, part in enumerate(parts) if _magic(part)), None)
    literal = str(root.joinpath(*parts[:magic]))
    if magic is None:
        found = [literal]
    else:
        found = stdlib_glob.glob(os.path.join(stdlib_glob.escape(str(root)), dep), recursive=True)
    covered = set()
    for path in found:
        if path.endswith(os.sep) and not os.path.isdir(path):
            continue  # Python's glob, unlike the shell, gives a file for `name/**`
        path = os.path.normpath(path)
        if magic is not None and path == literal:
            continue  # what a glob matches lies below its base: `data/**` is not `data`
        covered |= {f for f in files if f == path or f.startswith(path + os.sep)}
    return covered


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stages=pipelines())
def test_every_stage_starts_after_every_stage_whose_out_it_read(
    tmp_path_factory: pytest.TempPathFactory, stages: list[dict]
) -> None:
    root = tmp_path_factory.mktemp("pipeline")
    log = root / "order.log"
    (root / "config.toml").write_text(_config(stages, log))
    try:
        config = load_config(root / "config.toml", environ={})
    except ConfigError as error:
        # Reading made a cycle: refused, and only then.
        assert ": cycle " in str(error), error
        assume(False)
        return
    engine = Engine(config, metrics_path=lambda stage: root / f"{stage}.metrics.json")
    result = asyncio.run(engine.run())
    assert result.state is RunState.PASSED, result
    events = log.read_text().split("\n")
    position = {line: index for index, line in enumerate(events) if line}
    writers = {
        str(root.joinpath("w", *out)): stage["name"] for stage in stages for out, _ in stage["outs"]
    }
    needs = {name: stage.needs for name, stage in config.stages.items()}
    pairs = 0
    for stage in stages:
        reader = stage["name"]
        read = set().union(*(_read_files(root, dep) for dep in stage["deps"]))
        for file in read:
            owners = [
                w for out, w in writers.items() if file == out or file.startswith(out + os.sep)
            ]
            for writer in owners:
                if writer == reader:
                    continue
                assert writer in dag.upstream(needs, [reader]), (reader, writer, file)
                assert position[f"end {writer}"] < position[f"start {reader}"], (reader, writer)
                pairs += 1
    event(f"reads of another stage's out: {min(pairs, 3)}{'+' * (pairs >= 3)}")
