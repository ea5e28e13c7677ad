"""No command writes a control character it was handed to a terminal: a pipeline
name, paths, param values, reasons, stage output and messages full of escape
sequences, C0 and C1 controls and direction controls go through every command's
text output on a real pseudo-terminal, and what reaches it holds none of them —
only mlci's own colours (off under NO_COLOR) and line redraws."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.cli import main
from mlci_tui.config import load_config
from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import DeployKind, DeployOutcome, RunState, StageState, VersionStatus
from mlci_tui.store import Store
from mlci_tui.store.deployment_request import DeploymentRequest
from tests.helpers import PYTHON, Project, mlci_env

# Each kind of thing that steers a terminal: a title (OSC), a screen clear and a
# colour (CSI), C1's CSI, a device control string, direction overrides and
# isolates, BEL, backspace, DEL, C1's NEL, a carriage return and a line feed.
HOSTILE = (
    "\x1b]0;PWNED\x07\x1b[2J\x1b[38;5;201mPINK\x9b31mC1\x1bP+q\x1b\\DCS"
    "\u202eRLO\u2066ISO\u200fRLM\x07\x08\x7f\x85\rCR\nLF"
)
SOME_HOSTILE = "\x1b]2;T\x07\x1b[8mX\u202eY\x9b2J"
# In a path: no "[", which would make a dep a pattern (and an out is none).
HOSTILE_PATH = "\x1b]0;PWNED\x07\x9b2J\x1bP+q\x1b\\\u202eRLO\u2066\x07\x08\x7f\x85\rCR\nLF"
# What may reach the terminal besides text: \t, \n and \r (the pty turns \n into
# \r\n), mlci's own colours, and the redraw of a progress line.
_OWN = re.compile(r"\x1b\[[0-9;]*m|\r\x1b\[2K")
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

STAGE = """
import os, sys
hostile = os.environ["MLCI_PARAM_NOTE"]
path = os.environ["MLCI_PARAM_PATH"]
step = sys.argv[1]
if step == "prepare":
    os.makedirs("data", exist_ok=True)
    open(f"data/clean{path}.csv", "w").write("x")
elif step == "train":
    os.makedirs("build", exist_ok=True)
    open(f"build/model{path}.txt", "w").write(open(f"data/clean{path}.csv").read() + hostile)
print("training", hostile, flush=True)
sys.stderr.write("warning " + hostile + "\\n")
print("::metric acc=0.9 loss=0.1")
"""


def _toml(text: str) -> str:
    """``text`` inside a TOML basic string: every control character escaped."""
    escaped = text.encode("unicode_escape").decode().replace('"', '\\"')
    return re.sub(r"\\x([0-9a-f]{2})", r"\\u00\1", escaped)


def _config() -> str:
    """The pipeline, with hostile text in its name, params, paths and environment."""
    note, path = _toml(HOSTILE), _toml(HOSTILE_PATH)
    env = f'env = {{ MLCI_PARAM_NOTE = "{note}", MLCI_PARAM_PATH = "{path}" }}'
    return f"""
[pipeline]
name = "demo{note}"
[params]
note = "{note}"
path = "{path}"
[stages.prepare]
command = ["{PYTHON}", "stage.py", "prepare"]
params = ["note", "path"]
deps = ["stage.py"]
outs = ["data/clean{path}.csv"]
[stages.train]
command = ["{PYTHON}", "stage.py", "train"]
needs = ["prepare"]
params = ["note", "path"]
deps = ["data"]
outs = ["build/model{path}.txt"]
artifact = "build/model{path}.txt"
gates = ["acc >= 0.5"]
[stages.check]
command = ["{PYTHON}", "stage.py", "check"]
params = ["note", "path"]
deps = ["extra{path}.txt"]
[deploy]
command = ["{PYTHON}", "stage.py", "deploy"]
{env}
[monitor]
command = ["{PYTHON}", "stage.py", "monitor"]
{env}
checks = ["acc >= 0.5"]
interval = "0.1s"
samples = 1
"""


def _on_terminal(project: Project, *args: str, color: bool = False) -> tuple[int, str]:
    """`mlci ARGS` on a pseudo-terminal (stdout and stderr): its exit and what it showed."""
    env = mlci_env(TERM="xterm-256color")
    if not color:
        env["NO_COLOR"] = "1"
    shown = subprocess.run(
        project.in_terminal(*args), cwd=project.path, env=env, capture_output=True, timeout=120
    )
    # script(1) exits as the command did.
    return shown.returncode, shown.stdout.decode("utf-8", "replace")


def _leaks(text: str) -> list[str]:
    """Each control that is not mlci's own, with what is around it."""
    rest = _OWN.sub("", text)
    return [rest[max(0, m.start() - 20) : m.end() + 20] for m in _FORBIDDEN.finditer(rest)]


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Three runs (v1, then v2 with another note, then a failed one), a deploy of v1
    and a rollback to v2 with hostile reasons (so an alert with one)."""
    project = Project(tmp_path_factory.mktemp("hostile"))
    project.write(_config())
    (project.path / "stage.py").write_text(STAGE)
    (project.path / f"extra{HOSTILE_PATH}.txt").write_text("x")
    assert _on_terminal(project, "run")[0] == 0
    assert _on_terminal(project, "run", "--set", f'note="{SOME_HOSTILE}"')[0] == 0
    assert _on_terminal(project, "deploy", "v1", "--reason", HOSTILE, "--no-analysis")[0] == 0
    assert _on_terminal(project, "rollback", "v2", "--reason", HOSTILE)[0] == 0
    (project.path / f"extra{HOSTILE_PATH}.txt").unlink()
    assert _on_terminal(project, "run")[0] == 1
    return project


COMMANDS = [
    ["validate"],
    ["why"],
    ["run", "--dry-run"],
    ["status"],
    ["status", "--run", "1"],
    ["logs", "train", "--run", "1"],
    ["versions"],
    ["history"],
    ["alerts"],
    ["report"],
    ["report", "--md"],
    ["report", "--run", "2"],
    ["diff"],
    ["diff", "--md"],
    ["diff", "v1", "v2"],
    ["metrics", "--run", "1"],
    ["metrics", "--run", "1", "--csv"],
    ["cache", "gc", "--dry-run"],
    ["mlflow", "status"],
    ["monitor", "--once"],
    ["rollback", "v1", "--reason", HOSTILE],
    ["deploy", "v404", "--reason", HOSTILE],
    ["deploy", "v2", "--reason", HOSTILE, "--force"],
    ["run", "--stage", "train", "--set", f"note={HOSTILE}"],
    ["logs", f"no{HOSTILE}"],
    ["run", "--set", f"nothing{HOSTILE}=1"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c)[:30] for c in COMMANDS])
@pytest.mark.parametrize("color", [False, True], ids=["no_color", "color"])
def test_no_control_from_a_name_or_message_reaches_the_terminal(
    hostile_project: Project, args: list[str], color: bool
) -> None:
    _, shown = _on_terminal(hostile_project, *args, color=color)
    assert shown.strip(), args
    assert _leaks(shown) == [], shown
    # A colour of the name's own never shows, nor anything after a clear or a title.
    assert "\x1b[38;5;201m" not in shown and "PWNED\x07" not in shown
    if not color:
        assert "\x1b[" not in _OWN.sub("", shown) and "\x1b" not in shown.replace("\r\x1b[2K", "")


# In-process, many names: the commands whose text is made safe wherever it goes.
CONTROLS = "".join(map(chr, [*range(1, 0x20), 0x7F, *range(0x80, 0xA0)]))
DIRECTION = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# No NUL: the config refuses it in any string.
dangerous = st.text(
    alphabet=st.sampled_from(CONTROLS + DIRECTION + "[]();:0123456789mPX^_\\Ha "),
    min_size=1,
    max_size=24,
)
STORE_COMMANDS = [
    ["validate"],
    ["status"],
    ["status", "--json"],
    ["versions"],
    ["history"],
    ["alerts"],
    ["report"],
    ["report", "--md"],
    ["diff", "1", "2"],
    ["diff", "1", "2", "--md"],
    ["metrics", "--run", "2"],
    ["why"],
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=dangerous)
def test_any_name_reason_or_message_is_shown_without_its_controls(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    path = text.replace("/", "_").replace("[", "(")
    config_path = root / "config.toml"
    note, where = _toml(text), _toml(path)
    lines = [
        "[pipeline]",
        f'name = "n{note}"',
        "[params]",
        f'note = "{note}"',
        "[stages.train]",
        'command = "true"',
        'params = ["note"]',
        f'deps = ["in{where}"]',
        f'outs = ["out{where}"]',
        "[stages.evaluate]",
        'command = "true"',
        'needs = ["train"]',
        f'deps = ["out{where}"]',
    ]
    config_path.write_text("\n".join(lines) + "\n")
    config = load_config(config_path, environ={})
    _hostile_store(config.pipeline.state_dir, str(config_path), text)
    for args in STORE_COMMANDS:
        main([*args, "--config", str(config_path)])
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        assert _leaks(shown) == [] and "\x1b" not in shown, (args, shown)


def _hostile_store(state_dir: Path, config_path: str, text: str) -> None:
    """Two runs, two versions, a deploy, an alert and a decision: ``text`` in every
    name, message, reason and description the store keeps."""
    store = Store.open(state_dir)
    now = time.time()
    for number in (1, 2):
        run = store.runs.create(
            text,
            [("train", (), 1), ("evaluate", ("train",), 1)],
            started_at=now,
            pid=1,
            pid_started=None,
            host=text,
            config_path=config_path,
            params={"note": text},
        )
        store.runs.update_stage(run, "train", state=StageState.PASSED, exit_code=0, reasons=(text,))
        store.runs.update_stage(
            run, "evaluate", state=StageState.FAILED, message=text, failed_gate=text
        )
        store.runs.record_metrics(run, "train", {"acc": 0.5 * number})
        store.series.record_points(run, "train", [("acc", 0, 0.5), ("acc", 1, 0.5 * number)], now)
        store.runs.finish(run, RunState.FAILED, exit_code=1, ended_at=now + 1, message=text)
        store.versions.add(
            run_id=run,
            created_at=now,
            artifact_name=text,
            source_path=text,
            is_dir=False,
            sha256=f"{number:x}" * 64,
            size_bytes=1,
            metrics={MetricKey("train", "acc"): 0.5 * number},
            git_commit=text,
            git_dirty=False,
            params={"note": text},
        )
    deployment = store.deployments.begin(
        DeploymentRequest(
            kind=DeployKind.DEPLOY,
            from_version=None,
            to_version=1,
            user=text,
            reason=text,
            run_id=1,
            pid=1,
            pid_started=None,
            host=text,
            process_tag="x",
        ),
        started_at=now,
        is_stale=lambda d: True,
    )
    store.deployments.finish(
        deployment.id,
        DeployOutcome.FAILED,
        ended_at=now,
        message=text,
        statuses=[(1, VersionStatus.FAILED, text)],
    )
    store.alerts.add("run_failed", text, created_at=now, version=1, run_id=2)
    store.decisions.add(version=1, target=None, finding=text, created_at=now)
    store.close()
