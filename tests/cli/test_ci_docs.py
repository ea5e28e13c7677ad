"""docs/ci.md holds a GitHub Actions workflow and a GitLab CI job: they parse, keep
the stage cache, and every `mlci` command in them runs, as written, on the demo."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import junitparser
import yaml

from tests.helpers import (
    PYTHON,
    ROOT,
    check_github_markup,
    demo_project,
    gitlab_sections,
    mlci_env,
)

DOC = ROOT / "docs" / "ci.md"


def yaml_blocks() -> list[dict]:
    text = DOC.read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def mlci_lines(commands: list[str]) -> list[str]:
    lines = [line.strip() for command in commands for line in command.splitlines()]
    return [line for line in lines if line.startswith("mlci ")]


def run_lines(lines: list[str], cwd: Path, bin_dir: Path, **env: str) -> list[bytes]:
    """Each line exactly as written, by sh, with `mlci` this checkout's; what each printed."""
    environ = mlci_env(**env)
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ['PATH']}"
    printed = []
    for line in lines:
        result = subprocess.run(
            ["sh", "-c", line], cwd=cwd, env=environ, capture_output=True, timeout=300
        )
        assert result.returncode == 0, (line, result.stderr.decode())
        printed.append(result.stdout)
    return printed


def mlci_on_path(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mlci"
    script.write_text(f'#!/bin/sh\nexec "{PYTHON}" -m mlci_tui "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_the_workflows_parse_keep_the_cache_and_their_mlci_commands_run(tmp_path: Path) -> None:
    github, gitlab = yaml_blocks()
    steps = github["jobs"]["pipeline"]["steps"]
    cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".mlci/cache"
    github_lines = mlci_lines([step["run"] for step in steps if "run" in step])
    assert github_lines[0] == "mlci run --junit reports/junit.xml"
    job = gitlab["model"]
    assert job["cache"]["paths"] == [".mlci/cache"]
    assert job["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    gitlab_lines = mlci_lines(job["script"] + job["after_script"])
    assert gitlab_lines == [
        "mlci run --junit reports/junit.xml",
        "mlci report --md > reports/report.md",
    ]

    bin_dir = mlci_on_path(tmp_path)
    first = demo_project(tmp_path / "github")
    summary = tmp_path / "summary.md"
    printed = run_lines(
        github_lines,
        first.path,
        bin_dir,
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    stages = ["test", "prepare", "train", "evaluate", "deploy", "monitor"]
    # Each stage a group, its output between stop-commands and their resume.
    groups = check_github_markup(printed[0], dict.fromkeys(stages, False))
    assert sorted(groups) == sorted(stages)
    text = summary.read_text()
    # The first run of a pipeline: nothing was live before it to compare it with.
    assert "## pump-failure · run 1 · passed" in text and "- registered v1" in text
    suite = next(iter(junitparser.JUnitXml.fromfile(str(first.path / "reports" / "junit.xml"))))
    names = [case.name for case in suite]
    assert names == stages
    assert suite.failures == 0 and suite.skipped == 0

    # The next job starts from a fresh checkout with the cache the first one kept.
    second = demo_project(tmp_path / "gitlab")
    shutil.copytree(first.state_dir / "cache", second.state_dir / "cache")
    printed = run_lines(gitlab_lines, second.path, bin_dir, GITLAB_CI="true")
    edges = gitlab_sections(printed[0])
    assert [edge for edge, _ in edges] == ["start", "end"] * len(stages)
    assert [name for _, name in edges[::2]] == [name for _, name in edges[1::2]]
    assert sorted(name for _, name in edges[::2]) == sorted(f"mlci_{stage}" for stage in stages)
    suite = next(iter(junitparser.JUnitXml.fromfile(str(second.path / "reports" / "junit.xml"))))
    cached = {p.name for p in suite.properties() if p.name.startswith("mlci.cached.")}
    assert cached == {f"mlci.cached.{name}" for name in ("test", "prepare", "train", "evaluate")}
    report = (second.path / "reports" / "report.md").read_text()
    assert report.startswith("## pump-failure · run 1 · passed")
    assert "| train | cached |" in report
