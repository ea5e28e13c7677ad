"""Monitor: score the served model on fresh data and report its health.

mlci runs this after each deploy and during ``mlci monitor``; the metrics it
prints are checked against ``[monitor] checks``. Setting ``MLCI_DEMO_DRIFT=1``
makes the fresh data drift (a sensor firmware update), so the model's
accuracy drops and the automatic rollback can be watched.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

from data import make_dataset
from model import LogisticRegression

SERVED_MODEL = Path("build/serving/model.json")
REQUESTS = 400


def main() -> int:
    try:
        model = LogisticRegression.load(SERVED_MODEL)
    except (OSError, ValueError) as exc:
        print(f"monitor: no served model to check: {exc}", file=sys.stderr)
        return 1
    drift = 1.0 if os.environ.get("MLCI_DEMO_DRIFT") == "1" else 0.0
    # Fresh traffic each time: production never sends the same data twice.
    samples = make_dataset(REQUESTS, seed=random.randrange(1 << 30), drift=drift)

    latencies = []
    correct = 0
    for features, label in samples:
        started = time.perf_counter()
        (prediction,) = model.predict([features])
        latencies.append((time.perf_counter() - started) * 1000)
        correct += prediction == label
    accuracy = correct / len(samples)
    p95 = statistics.quantiles(latencies, n=20)[-1]

    served = (SERVED_MODEL.parent / "VERSION").read_text().strip()
    print(f"{served}: {len(samples)} requests, accuracy {accuracy:.3f}, p95 latency {p95:.3f} ms")
    print(f"::metric accuracy={accuracy:.4f} latency_ms={p95:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
