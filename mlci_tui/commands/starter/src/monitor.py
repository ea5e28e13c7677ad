"""Monitor: check the live model on fresh traffic. config.toml's [monitor]
checks test the metrics it prints; failing ones roll production back."""

from __future__ import annotations

import random
import time
from pathlib import Path

from model import Model, make_data

SERVING = Path("serving")


def main() -> int:
    model = Model.load(SERVING / "model.json")
    samples = make_data(200, seed=random.randrange(1 << 30))
    started = time.perf_counter()
    correct = sum(model.predict(features) == truth for features, truth in samples)
    latency_ms = (time.perf_counter() - started) * 1000 / len(samples)
    accuracy = correct / len(samples)
    version = (SERVING / "VERSION").read_text().strip()
    print(f"{version}: accuracy {accuracy:.3f} on {len(samples)} requests")
    print(f"::metric accuracy={accuracy:.4f} latency_ms={latency_ms:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
