"""The cache's oracle: whatever happens to a project, a run that reuses the cache
leaves exactly the outs a forced run leaves in a fresh copy, and `mlci why` said
beforehand which stages would run and which would be cached.

A Hypothesis state machine builds a small real project — a directory dep, a glob
dep, a dep through a link, params, an env value, outs that are files, a directory
(with an executable, a link and an empty directory), a link, two outs with equal
content, a glob dep over other stages' outs, explicit `needs` — and changes it at
random: file contents, `touch`, renames over files, the link swapped, params in
the config and with `--set`, a command, an env value, files added to and removed
from the directory and the glob, outs deleted or written in place, the cache's
own files written. After each change it runs real `mlci` processes and checks:

- `mlci why` predicted the run: ``cached`` stages were cached, ``run`` stages ran
  (``unknown`` ones may do either), and right after the run it says ``cached``;
- the outs equal, byte for byte with their modes and links, the outs of
  `mlci run --force` in a fresh copy of the project's inputs;
- no out shares its inode with another out or with the cache.

CI runs a short profile (under three minutes on two cores); ``HYPOTHESIS_PROFILE=long``
runs a long one locally.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.helpers import Project

PROFILES = {
    "ci": settings(
        max_examples=8,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    ),
    "long": settings(
        max_examples=150,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    ),
}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

CONTENTS = ["", "1\n", "2\n", "hello\n", "hello\nworld\n", "x" * 5000]
"""Few contents, so that outs often come out equal and results come back."""
IN_NAMES = ["a.txt", "b.txt", "c.txt"]
SRC_NAMES = ["x.txt", "y.txt", "z.md"]
LINK_TARGETS = ["t1.txt", "t2.txt", "model.cfg"]
EDITABLE = ["model.cfg", "t1.txt", "t2.txt", "gen.sh"]

GEN = """mkdir -p gen/empty gen/sub
for f in src/*.txt; do cp "$f" gen/sub/; done
printf '#!/bin/sh\\necho hi\\n' > gen/run.sh
chmod +x gen/run.sh
ln -s run.sh gen/latest
cat src/*.txt | wc -c > gen/count
"""

CONFIG = """
[params]
p.x = {x}
p.y = "{y}"

[stages.prep]
command = '''mkdir -p build
for f in in/*; do if [ -f "$f" ]; then cat "$f"; fi; done > build/prep.txt
echo "x=$MLCI_PARAM_P_X" >> build/prep.txt'''
deps = ["in"]
params = ["p.x"]
outs = ["build/prep.txt"]

[stages.gen]
command = "sh gen.sh"
deps = ["src/*.txt", "gen.sh"]
outs = ["gen"]

[stages.twin]
command = "cat t1.txt > twin.txt"
deps = ["t1.txt"]
outs = ["twin.txt"]

[stages.train]
command = '''cat build/prep.txt gen/count model.cfg link.txt > build/model.txt
echo "$SEED $MLCI_PARAM_P_Y" >> build/model.txt
cp build/model.txt build/model.bin && chmod +x build/model.bin'''
needs = ["prep", "gen"]
deps = ["build/prep.txt", "gen", "model.cfg", "link.txt"]
params = ["p.y"]
env = { SEED = "{seed}" }
outs = ["build/model.txt", "build/model.bin"]

[stages.eval]
command = "{count} < build/model.txt > score.txt"
needs = ["train"]
deps = ["build/model.txt"]
outs = ["score.txt"]

[stages.pointer]
command = 'ln -s "p-$(cat t2.txt | head -c 20)" pointer'
deps = ["t2.txt"]
outs = ["pointer"]

[stages.summary]
command = "cat build/*.txt | wc -c > summary.txt"
needs = ["train"]
deps = ["build/*.txt"]
outs = ["summary.txt"]

[stages.report]
command = "cat score.txt twin.txt > report.txt"
needs = ["eval", "twin"]
outs = ["report.txt"]
"""
OUTS = [
    "build/prep.txt",
    "gen",
    "twin.txt",
    "build/model.txt",
    "build/model.bin",
    "score.txt",
    "pointer",
    "summary.txt",
    "report.txt",
]
NOT_INPUTS = {".mlci", "build", *OUTS}


def snapshot(root: Path, names: list[str]) -> dict[str, Any]:
    """Everything at ``names`` under ``root``, links not followed: kind, mode, bytes
    or link target, for every file, link and directory."""
    found: dict[str, Any] = {}

    def visit(path: Path, name: str) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            found[name] = None
            return
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            found[name] = ("file", oct(mode), path.read_bytes())
        elif stat.S_ISDIR(info.st_mode):
            found[name] = ("dir", oct(mode))
            for child in sorted(os.listdir(path)):
                visit(path / child, f"{name}/{child}")
        else:
            found[name] = ("other", oct(mode))

    for name in names:
        visit(root / name, name)
    return found


def fingerprint(root: Path, sets: tuple[str, ...]) -> str:
    """What a forced run's outs depend on: every input file, link and mode, and --set."""
    digest = hashlib.sha256(json.dumps(sets).encode())
    names = sorted(name for name in os.listdir(root) if name not in NOT_INPUTS)
    digest.update(repr(snapshot(root, names)).encode())
    return digest.hexdigest()


class CacheOracle(RuleBasedStateMachine):
    references: ClassVar[dict[str, dict[str, Any]]] = {}
    """Outs of forced runs in fresh copies, by `fingerprint` (shared by examples)."""

    def __init__(self) -> None:
        super().__init__()
        self.work = Path(tempfile.mkdtemp(prefix="mlci-oracle-"))
        self.project = Project(self.work / "project")
        self.params = {"x": 1, "y": "a", "seed": "1", "count": "wc -l"}
        self.sets: tuple[str, ...] = ()
        self.steps: list[str] = []

    def teardown(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    # The project ---------------------------------------------------------------

    def write_config(self) -> None:
        self.project.write(
            CONFIG.replace("{x}", str(self.params["x"]))
            .replace("{y}", str(self.params["y"]))
            .replace("{seed}", str(self.params["seed"]))
            .replace("{count}", str(self.params["count"]))
        )

    def path(self, name: str) -> Path:
        return self.project.path / name

    @initialize()
    def build(self) -> None:
        self.project.path.mkdir()
        self.write_config()
        for name, content in [
            ("in/a.txt", "1\n"),
            ("in/b.txt", "hello\n"),
            ("src/x.txt", "2\n"),
            ("src/z.md", "not matched\n"),
            ("model.cfg", "hello\n"),
            ("t1.txt", "hello\n"),
            ("t2.txt", "1\n"),
            ("gen.sh", GEN),
        ]:
            self.path(name).parent.mkdir(parents=True, exist_ok=True)
            self.path(name).write_text(content)
        self.path("link.txt").symlink_to("t1.txt")

    # Changes -------------------------------------------------------------------

    @rule(name=st.sampled_from(EDITABLE[:3]), content=st.sampled_from(CONTENTS))
    def edit(self, name: str, content: str) -> None:
        self.path(name).write_text(content)

    @rule(name=st.sampled_from(["model.cfg", "t1.txt", "in/a.txt", "src/x.txt", "gen.sh"]))
    def touch(self, name: str) -> None:
        if self.path(name).exists():
            os.utime(self.path(name))

    @rule(name=st.sampled_from(EDITABLE[:3]), content=st.sampled_from(CONTENTS))
    def rename_over(self, name: str, content: str) -> None:
        spare = self.path(name + ".new")
        spare.write_text(content)
        os.replace(spare, self.path(name))

    @rule(to=st.sampled_from(LINK_TARGETS))
    def swap_link(self, to: str) -> None:
        spare = self.path("link.txt.new")
        spare.symlink_to(to)
        os.replace(spare, self.path("link.txt"))

    @rule(x=st.sampled_from([1, 2, 3]), y=st.sampled_from(["a", "b"]))
    def set_params(self, x: int, y: str) -> None:
        self.params.update(x=x, y=y)
        self.write_config()

    @rule(x=st.sampled_from([None, 1, 2, 3]))
    def set_on_the_command_line(self, x: int | None) -> None:
        self.sets = () if x is None else ("--set", f"p.x={x}")

    @rule(count=st.sampled_from(["wc -l", "wc -c"]))
    def change_command(self, count: str) -> None:
        self.params["count"] = count
        self.write_config()

    @rule(seed=st.sampled_from(["1", "2"]))
    def change_env(self, seed: str) -> None:
        self.params["seed"] = seed
        self.write_config()

    @rule(
        where=st.sampled_from(["in", "src"]),
        index=st.integers(0, 2),
        content=st.sampled_from(CONTENTS),
    )
    def add_file(self, where: str, index: int, content: str) -> None:
        name = (IN_NAMES if where == "in" else SRC_NAMES)[index]
        self.path(f"{where}/{name}").write_text(content)

    @rule(where=st.sampled_from(["in", "src"]), index=st.integers(0, 2))
    def remove_file(self, where: str, index: int) -> None:
        name = (IN_NAMES if where == "in" else SRC_NAMES)[index]
        left = [p for p in self.path("src").glob("*.txt") if p.name != name]
        if where == "src" and not left:
            return  # a glob that matches nothing fails its stage, by design
        self.path(f"{where}/{name}").unlink(missing_ok=True)

    @rule(name=st.sampled_from(OUTS))
    def delete_out(self, name: str) -> None:
        path = self.path(name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()

    @rule(
        name=st.sampled_from(
            ["build/prep.txt", "twin.txt", "build/model.txt", "build/model.bin", "gen/count"]
        ),
        how=st.sampled_from(["append", "truncate", "chmod"]),
    )
    def edit_out_in_place(self, name: str, how: str) -> None:
        path = self.path(name)
        if not path.is_file() or path.is_symlink():
            return
        if how == "chmod":
            path.chmod(path.stat().st_mode ^ 0o100)
            return
        with open(path, "a" if how == "append" else "r+") as file:
            if how == "append":
                file.write("edited\n")
            else:
                file.truncate(0)

    @rule(index=st.integers(0, 50), how=st.sampled_from(["append", "truncate", "replace"]))
    def edit_cache_object(self, index: int, how: str) -> None:
        objects = sorted((self.project.state_dir / "cache" / "objects").glob("*/*"))
        if not objects:
            return
        path = objects[index % len(objects)]
        if how == "replace":
            spare = path.with_name(path.name + ".new")
            spare.write_bytes(b"replaced\n")
            os.replace(spare, path)
            return
        path.chmod(0o644)
        with open(path, "a" if how == "append" else "r+") as file:
            if how == "append":
                file.write("X")
            else:
                file.truncate(0)

    # What must hold after every change ---------------------------------------------

    @invariant()
    def a_run_equals_a_forced_run_in_a_fresh_copy(self) -> None:
        if not self.project.config_path.exists():
            return  # before `build`
        predicted = self.why()
        result = self.project.mlci("run", *self.sets)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        states = {s["name"]: s["state"] for s in self.project.status()["stages"]}
        for stage, row in predicted.items():
            expected = {"cached": {"cached"}, "run": {"passed"}, "unknown": {"cached", "passed"}}
            assert states[stage] in expected[row["decision"]], (stage, row, states)
        after = self.why()
        for stage, row in after.items():
            if stage != "report":  # no deps: it always runs
                assert row["decision"] == "cached", (stage, row)
        assert snapshot(self.project.path, OUTS) == self.reference()
        self.no_out_shares_a_file()

    def why(self) -> dict[str, dict]:
        result = self.project.mlci("why", "--json", *self.sets)
        assert result.returncode == 0, result.stderr
        return {row["stage"]: row for row in json.loads(result.stdout)}

    def reference(self) -> dict[str, Any]:
        """The outs of `mlci run --force` in a fresh copy of the project's inputs."""
        key = fingerprint(self.project.path, self.sets)
        if key not in self.references:
            fresh = Project(self.work / f"fresh-{key[:12]}")
            shutil.copytree(
                self.project.path,
                fresh.path,
                symlinks=True,
                ignore=lambda directory, names: (
                    [n for n in names if n in NOT_INPUTS]
                    if Path(directory) == self.project.path
                    else []
                ),
            )
            result = fresh.mlci("run", "--force", *self.sets)
            assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
            self.references[key] = snapshot(fresh.path, OUTS)
            shutil.rmtree(fresh.path)
        return self.references[key]

    def no_out_shares_a_file(self) -> None:
        seen: dict[tuple[int, int], str] = {}
        for name in OUTS:
            root = self.path(name)
            files = [root] if not root.is_dir() else [p for p in root.rglob("*")]
            for path in files:
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode):
                    assert info.st_nlink == 1, f"{path} has {info.st_nlink} names"
                    assert (info.st_dev, info.st_ino) not in seen, (path, seen)
                    seen[(info.st_dev, info.st_ino)] = str(path)
        for path in (self.project.state_dir / "cache" / "objects").glob("*/*"):
            assert os.lstat(path).st_nlink == 1, f"the cache's {path.name} has other names"


CacheOracle.TestCase.settings = PROFILES[PROFILE]
TestCacheOracle = CacheOracle.TestCase
