"""The benchmark suite still runs: `python -m benchmarks --quick` end to end.

It checks that every scenario ran and reported, never how fast anything was:
speed is for the report, not for a test."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ROOT, run_python


def test_the_quick_suite_runs_every_scenario(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    result = run_python("-m", "benchmarks", "--quick", "--out", str(report), cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    text = report.read_text()
    for title in (
        "1. Engine overhead",
        "2. Log throughput",
        "3. Dashboard under flood",
        "4. Start-up",
        "5. Idle",
        "6. Scale",
        "7. Incremental runs",
        "8. Metric plots",
        "9. Many stages",
        "10. Outs into and out of the cache",
        "11. Reading a log back",
        "12. Experiments",
        "13. In a browser",
    ):
        assert f"## {title}" in text
    assert "| scenario | target | measured | limit | moonshot | |" in text
    # What the store gave back is what the producer printed, however the runner's
    # stdout was read.
    for width in (60, 18):
        for sink in ("> /dev/null", "\\| cat > /dev/null"):
            row = f"lines missing from `mlci logs flood`, 100,000 × {width} B, `{sink}` | 0 |"
            assert row in text
    assert "runs whose `mlci logs flood` differs from the producer's bytes (of 5) | 0 |" in text
    assert "lines missing from `mlci logs flood` | 0 |" in text
    # Each of the sweep's experiments trained (distinct seeds: none is cached).
    assert "Experiments that trained, per sweep: 8 of 8." in text
    assert "| mlci exp show, 1,000 experiments |" in text
    # Every comparison names its peer and the peer's version.
    assert "peer: `tee` (tee (GNU coreutils)" in text
    assert "peers: make (GNU Make" in text
    assert "--quick" in text.splitlines()[2]
