"""python -m benchmarks [--quick] [--out docs/benchmarks.md] [--only N] [--dvc PATH]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import scenarios, served
from benchmarks.harness import Scenario, find_tool
from benchmarks.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--only", type=int, action="append", help="run only scenario N")
    parser.add_argument("--dvc", help="the dvc to compare with (default: dvc on PATH)")
    args = parser.parse_args(argv)
    sizes = scenarios.QUICK if args.quick else scenarios.FULL
    dvc = find_tool("dvc", args.dvc)
    runs: dict[int, Callable[[Path], Scenario]] = {
        1: lambda work: scenarios.engine_overhead(work, sizes, dvc),
        2: lambda work: scenarios.log_throughput(work, sizes),
        3: lambda work: scenarios.dashboard_flood(work, sizes),
        4: lambda work: scenarios.startup(work, sizes),
        5: lambda work: scenarios.idle(work, sizes),
        6: lambda work: scenarios.scale(work, sizes),
        7: lambda work: scenarios.incremental(work, sizes, dvc),
        8: lambda work: scenarios.plots(work, sizes),
        9: lambda work: scenarios.many_stages(work, sizes),
        10: lambda work: scenarios.cache_copies(work, sizes),
        11: lambda work: scenarios.log_reading(work, sizes),
        12: lambda work: scenarios.experiments(work, sizes),
        13: lambda work: served.browser(work, sizes),
    }
    chosen = sorted(set(args.only or runs))
    if 5 in chosen and 4 not in chosen:
        chosen = sorted({*chosen, 4})  # idle watches the store the start-up scenario made
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as temporary:
        work = Path(temporary)
        for number in chosen:
            print(f"scenario {number}…", file=sys.stderr, flush=True)
            begun = time.perf_counter()
            result = runs[number](work)
            result.elapsed = time.perf_counter() - begun
            print(f"scenario {number} took {result.elapsed:.0f} s", file=sys.stderr, flush=True)
            result.command = f"python -m benchmarks{' --quick' if args.quick else ''}" + (
                f" --only {number} --out /tmp/bench-{number}.md"
            )
            results.append(result)
    elapsed = time.perf_counter() - started
    write_report(args.out, results, quick=args.quick, elapsed=elapsed)
    failed = [t for r in results for t in r.targets if not t.met]
    print(f"wrote {args.out} in {elapsed:.0f} s; targets missed: {len(failed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
