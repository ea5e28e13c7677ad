"""The engine, in-process, with real subprocesses: order, parallelism, retries,
timeouts, cancellation, metrics and gates."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import psutil
import pytest

from mlci_tui.events import CommandNoted, StageStarted
from mlci_tui.masking import SecretMasker
from mlci_tui.states import RunState, StageState
from tests.helpers import PROGRAMS, PYTHON, Project, engine_for, output, pid_alive, read_pids


async def test_stages_run_in_dependency_order_and_pass(project: Project) -> None:
    engine, events = engine_for(
        project,
        """
[stages.c]
command = "echo c >> order"
needs = ["b"]
[stages.b]
command = "echo b >> order"
needs = ["a"]
[stages.a]
command = "echo a >> order"
""",
    )
    result = await engine.run()
    assert result.state is RunState.PASSED and result.exit_code == 0
    assert (project.path / "order").read_text() == "a\nb\nc\n"
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["a", "b", "c"]


async def test_independent_stages_run_side_by_side(project: Project) -> None:
    # Each stage waits for the other to have started: only parallel runs can pass.
    barrier = (
        "touch {me}.started; i=0; while [ ! -e {other}.started ]; do"
        " i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done"
    )
    engine, _ = engine_for(
        project,
        f"""
[pipeline]
max_parallel = 2
[stages.a]
command = "{barrier.format(me="a", other="b")}"
[stages.b]
command = "{barrier.format(me="b", other="a")}"
[stages.after]
command = "true"
needs = ["a", "b"]
""",
    )
    result = await engine.run()
    assert result.state is RunState.PASSED
    assert result.stages["after"].state is StageState.PASSED


async def test_max_parallel_is_never_exceeded(project: Project) -> None:
    stage = (
        'command = "touch $MLCI_STAGE.on; ls *.on | wc -l >> counts; sleep 0.3; rm $MLCI_STAGE.on"'
    )
    engine, _ = engine_for(
        project,
        "[pipeline]\nmax_parallel = 2\n" + "".join(f"[stages.s{i}]\n{stage}\n" for i in range(5)),
    )
    assert (await engine.run()).state is RunState.PASSED
    counts = [int(n) for n in (project.path / "counts").read_text().split()]
    assert len(counts) == 5 and max(counts) == 2


async def test_a_failed_stage_skips_what_needs_it_but_not_the_rest(project: Project) -> None:
    engine, _ = engine_for(
        project,
        """
[stages.bad]
command = "exit 3"
[stages.downstream]
command = "true"
needs = ["bad"]
[stages.further]
command = "true"
needs = ["downstream"]
[stages.independent]
command = "true"
""",
    )
    result = await engine.run()
    assert result.state is RunState.FAILED and result.exit_code == 1
    states = {name: event.state for name, event in result.stages.items()}
    assert states == {
        "bad": StageState.FAILED,
        "downstream": StageState.SKIPPED,
        "further": StageState.SKIPPED,
        "independent": StageState.PASSED,
    }
    assert result.stages["bad"].exit_code == 3
    assert result.stages["downstream"].message == "bad did not pass"


async def test_retry_after_a_failure_then_pass(project: Project) -> None:
    engine, events = engine_for(
        project,
        """
[stages.flaky]
command = "n=$(cat tries 2>/dev/null || echo 0); echo $((n+1)) > tries; [ $n -ge 1 ]"
retries = 2
""",
    )
    result = await engine.run()
    assert result.state is RunState.PASSED
    assert result.stages["flaky"].attempt == 2
    assert (project.path / "tries").read_text() == "2\n"
    notes = [e.text for e in events if isinstance(e, CommandNoted)]
    assert notes == ["attempt 1 of 3 failed (exit code 1); retrying in 1.00s"]


async def test_retries_run_out(project: Project) -> None:
    engine, _ = engine_for(project, '[stages.never]\ncommand = "exit 1"\nretries = 1\n')
    result = await engine.run()
    assert result.stages["never"].state is StageState.FAILED
    assert result.stages["never"].attempt == 2


async def test_timeout_kills_the_whole_tree_including_a_backgrounded_grandchild(
    project: Project,
) -> None:
    engine, _ = engine_for(
        project,
        f"""
[pipeline]
kill_grace = "1s"
[stages.slow]
command = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids"]
timeout = "1s"
""",
    )
    result = await engine.run()
    stage = result.stages["slow"]
    assert stage.state is StageState.FAILED
    assert stage.message == "timed out after 1.00s"
    parent, grandchild = read_pids(project.path / "pids")
    assert not pid_alive(parent) and not pid_alive(grandchild)


async def test_sigterm_ignored_then_killed_after_grace(project: Project) -> None:
    engine, _ = engine_for(
        project,
        f"""
[pipeline]
kill_grace = "0.5s"
[stages.stubborn]
command = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids", "--ignore-term"]
timeout = "1s"
""",
    )
    result = await engine.run()
    assert result.stages["stubborn"].state is StageState.FAILED
    parent, grandchild = read_pids(project.path / "pids")
    assert not pid_alive(parent) and not pid_alive(grandchild)


async def test_a_grandchild_left_behind_by_a_passing_stage_is_stopped(project: Project) -> None:
    engine, _ = engine_for(
        project,
        f'[stages.leaky]\ncommand = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids", "--exit"]\n',
    )
    result = await engine.run()
    assert result.stages["leaky"].state is StageState.PASSED
    _, grandchild = read_pids(project.path / "pids")
    assert not pid_alive(grandchild)


async def test_cancel_stops_running_stages_and_cancels_the_rest(project: Project) -> None:
    engine, _ = engine_for(
        project,
        f"""
[pipeline]
kill_grace = "2s"
[stages.long]
command = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids"]
[stages.later]
command = "true"
needs = ["long"]
""",
    )
    task = asyncio.ensure_future(engine.run())
    while not (project.path / "pids").exists():
        await asyncio.sleep(0.02)
    engine.cancel()
    result = await task
    assert result.state is RunState.CANCELLED and result.exit_code == 130
    assert result.stages["long"].state is StageState.CANCELLED
    assert result.stages["later"].state is StageState.CANCELLED
    parent, grandchild = read_pids(project.path / "pids")
    assert not pid_alive(parent) and not pid_alive(grandchild)


async def test_metrics_from_lines_and_file_and_passing_gates(project: Project) -> None:
    engine, _ = engine_for(
        project,
        """
[stages.evaluate]
command = "echo '::metric accuracy=0.93 loss=0.2'; echo '{\\"f1\\": 0.88}' > $MLCI_METRICS_FILE"
gates = ["accuracy >= 0.9", "f1 > 0.85", "loss < 0.3"]
""",
    )
    result = await engine.run()
    stage = result.stages["evaluate"]
    assert stage.state is StageState.PASSED
    assert stage.metrics == {"accuracy": 0.93, "loss": 0.2, "f1": 0.88}


async def test_a_failed_gate_fails_the_stage_with_a_clear_message(project: Project) -> None:
    engine, _ = engine_for(
        project,
        """
[stages.evaluate]
command = "echo '::metric accuracy=0.61'"
gates = ["accuracy >= 0.85"]
[stages.deploy]
command = "true"
needs = ["evaluate"]
""",
    )
    result = await engine.run()
    stage = result.stages["evaluate"]
    assert stage.state is StageState.FAILED and stage.exit_code == 0
    assert stage.failed_gate == "accuracy >= 0.85"
    # What broke it, with the value: not the gate as written.
    assert stage.message == "accuracy 0.61 < 0.85"
    assert result.stages["deploy"].state is StageState.SKIPPED


async def test_a_gate_on_a_metric_never_reported_fails(project: Project) -> None:
    engine, _ = engine_for(project, '[stages.e]\ncommand = "true"\ngates = ["auc > 0.5"]\n')
    result = await engine.run()
    assert result.stages["e"].message == "auc was not reported (needed by auc > 0.5)"


async def test_missing_artifact_fails_the_stage(project: Project) -> None:
    engine, _ = engine_for(project, '[stages.train]\ncommand = "true"\nartifact = "model.bin"\n')
    result = await engine.run()
    assert result.stages["train"].state is StageState.FAILED
    assert "model.bin was not produced" in (result.stages["train"].message or "")


async def test_a_command_that_cannot_start_fails_clearly(project: Project) -> None:
    engine, _ = engine_for(project, '[stages.x]\ncommand = ["/no/such/program"]\n')
    result = await engine.run()
    assert result.stages["x"].state is StageState.FAILED
    assert (
        result.stages["x"].message == "cannot start '/no/such/program': No such file or directory"
    )


async def test_environment_of_a_stage(project: Project) -> None:
    engine, events = engine_for(
        project,
        """
[pipeline]
name = "envtest"
env = { SHARED = "p", OVERRIDE = "pipeline" }
[stages.show]
command = "echo $SHARED $OVERRIDE $MLCI_PIPELINE $MLCI_STAGE $MLCI_ATTEMPT $PYTHONUNBUFFERED"
env = { OVERRIDE = "stage" }
""",
        run_id=7,
    )
    await engine.run()
    assert output(events, "show") == b"p stage envtest show 1 1\n"


async def test_secrets_are_masked_before_any_subscriber_sees_them(project: Project) -> None:
    engine, events = engine_for(
        project,
        '[stages.leak]\ncommand = "echo token=$TOKEN; echo $TOKEN >&2"\n',
        masker=SecretMasker(["s3cr3t-value"]),
        environ={**os.environ, "TOKEN": "s3cr3t-value"},
    )
    await engine.run()
    assert output(events, "leak") == b"token=***\n***\n"


HOLD_60_MB = "import time; b = bytearray(60_000_000); sum(range(3_000_000)); time.sleep(0.6)"


async def test_stage_resources_are_measured(project: Project) -> None:
    # The runner here is pytest, bigger than the stage: its wait4 peak cannot tell
    # them apart, so the memory is held until the samples have seen it.
    engine, _ = engine_for(
        project,
        f"""
[stages.work]
command = ["{PYTHON}", "-c", "{HOLD_60_MB}"]
""",
    )
    result = await engine.run()
    stage = result.stages["work"]
    assert stage.peak_rss_bytes is not None and stage.peak_rss_bytes > 60_000_000
    assert stage.cpu_seconds is not None and stage.cpu_seconds > 0


@pytest.mark.parametrize("sig", [signal.SIGTERM])
async def test_stage_killed_by_a_signal_reports_it(project: Project, sig: signal.Signals) -> None:
    engine, _ = engine_for(project, f'[stages.s]\ncommand = "kill -{sig.value} $$"\n')
    result = await engine.run()
    assert result.stages["s"].exit_code == -sig.value
    assert result.stages["s"].message == f"killed by {sig.name}"


# Leaves a grandchild that ignores SIGTERM, and goes on only once it does: a
# SIGTERM arriving before the trap would end it at once.
STUBBORN_GRANDCHILD = """
(trap "" TERM; : > ready; exec sleep 300) > /dev/null 2>&1 &
echo $! > gc.pid
while [ ! -e ready ]; do sleep 0.01; done
"""


async def test_a_timeout_during_the_kill_grace_still_kills_everything(project: Project) -> None:
    # The command exits at once; the stage's timeout then fires while the stop
    # waits out the long grace period.
    engine, _ = engine_for(
        project,
        f"""
[pipeline]
kill_grace = "30s"
[stages.s]
command = '''{STUBBORN_GRANDCHILD}'''
timeout = "2s"
""",
    )
    result = await engine.run()
    assert result.stages["s"].state is StageState.FAILED
    assert result.stages["s"].message == "timed out after 2.00s"
    assert not pid_alive(int((project.path / "gc.pid").read_text()))


async def test_cancelling_twice_during_the_stop_still_kills_everything(project: Project) -> None:
    engine, events = engine_for(
        project,
        f"""
[pipeline]
kill_grace = "30s"
[stages.s]
command = '''{STUBBORN_GRANDCHILD}printf last; sleep 300'''
""",
    )
    task = asyncio.ensure_future(engine.run())
    while not (project.path / "gc.pid").exists() or not output(events, "s"):
        await asyncio.sleep(0.02)
    engine.cancel()
    await asyncio.sleep(0.3)
    engine.cancel()
    result = await task
    assert result.state is RunState.CANCELLED
    assert not pid_alive(int((project.path / "gc.pid").read_text()))
    assert output(events, "s") == b"last"


async def test_a_missing_working_directory_is_named(project: Project) -> None:
    engine, _ = engine_for(project, '[stages.s]\ncommand = "true"\ncwd = "nowhere"\n')
    result = await engine.run()
    assert result.stages["s"].message == (
        f"the working directory {project.path / 'nowhere'} does not exist"
    )


def test_every_executor_a_config_may_name_has_a_module() -> None:
    import importlib

    from mlci_tui.config import EXECUTORS
    from mlci_tui.execution.executors import KINDS

    assert set(KINDS) == set(EXECUTORS)
    for module in KINDS.values():
        # Loading an executor's module must not load its engine (Ray, say) yet.
        assert callable(importlib.import_module(module).create)


def test_what_an_executor_adds_to_a_key_is_named_after_it_and_hides_its_environment(
    tmp_path: Path,
) -> None:
    from mlci_tui.config import EXECUTORS, load_config
    from mlci_tui.execution.executors import cache_inputs
    from mlci_tui.pipeline.stage_cache import _STAGE_INPUTS

    path = tmp_path / "config.toml"
    path.write_text(
        '[stages.a]\ncommand = "true"\n'
        '[executors.ray]\naddress = "ray://127.0.0.1:1"\n'
        '[executors.ray.runtime_env]\nenv_vars = { MODE = "fast" }\npip = ["x"]\n'
    )
    config = load_config(path)
    hidden = {"MODE": "(hashed)"}
    for kind in EXECUTORS:
        inputs = cache_inputs(kind, config, lambda env: hidden if env else {})
        assert not set(inputs) & _STAGE_INPUTS
        assert all(name.startswith(f"{kind}_") for name in inputs)
    assert cache_inputs("ray", config, lambda env: hidden if env else {}) == {
        "ray_runtime_env": {"working_dir": None, "pip": ("x",), "env_vars": hidden}
    }


def test_no_stray_processes_left_by_this_module() -> None:
    # Last in the file, so that it sees what every test above left running. Only
    # children are seen here; grandchildren are checked by the tests that make them.
    leftovers = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                leftovers.append(child)
    assert leftovers == []
