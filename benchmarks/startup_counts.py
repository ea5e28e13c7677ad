"""Start-up as instruction counts: `mlci --help`, `validate` and `status`.

Wall time on a shared machine varies by tens of percent from one run to the
next; the instructions a command executes under `valgrind --tool=callgrind`
with `PYTHONHASHSEED=0` repeat within a fraction of a percent, so two trees
can be compared by them. `python -m benchmarks.startup_counts [SOURCE…]`
prints, for each source tree (default: this one), the count of each command
in a copy of the demo project with one passed run in its store. Each command
runs once uncounted first, with bytecode written to a directory of its own:
an installed package has its bytecode, and compiling the source on every
start would be most of what is counted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"--help": ["--help"], "validate": ["validate"], "status": ["status"]}


def _project(work: Path, source: Path) -> Path:
    """The demo project with one run in its store."""
    project = work / "project"
    shutil.copytree(ROOT / "demo", project / "demo")
    shutil.copy(ROOT / "config.toml", project / "config.toml")
    subprocess.run(
        [sys.executable, "-m", "mlci_tui", "run"],
        cwd=project,
        env=_environment(source, work),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return project


def _environment(source: Path, work: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(source),
        "PYTHONHASHSEED": "0",
        "PYTHONPYCACHEPREFIX": str(work / "bytecode"),
        "NO_COLOR": "1",
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def instructions(project: Path, source: Path, arguments: list[str]) -> int:
    """The instructions `mlci ARGUMENTS` executes once its bytecode is written."""
    environment = _environment(source, project.parent)
    subprocess.run(
        [sys.executable, "-m", "mlci_tui", *arguments],
        cwd=project,
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    out = project / "callgrind.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "mlci_tui",
            *arguments,
        ],
        cwd=project,
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    summary = re.search(rb"^summary: (\d+)", out.read_bytes(), re.MULTILINE)
    out.unlink()
    if summary is None:
        raise SystemExit(f"{out}: callgrind wrote no summary")
    return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", type=Path, default=[ROOT])
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    for source in args.sources:
        with tempfile.TemporaryDirectory() as work:
            project = _project(Path(work), source.resolve())
            for name, arguments in COMMANDS.items():
                count = instructions(project, source.resolve(), arguments)
                print(f"{source}\tmlci {name}\t{count:,}", flush=True)


if __name__ == "__main__":
    main()
