"""Synthetic data set: will an industrial pump fail within the next 30 days?

Each sample is one day of sensor readings from one pump; the label is 1 if the pump
failed within 30 days. Failing pumps run hotter, vibrate more and lose pressure and flow.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

FEATURE_NAMES = (
    "bearing_temp_c",
    "vibration_mm_s",
    "pressure_bar",
    "flow_l_min",
    "runtime_khours",
    "humidity_pct",
)
LABEL_NAME = "fails_within_30d"
FAILURE_RATE = 0.35

# Per feature: (mean for healthy pumps, shift for failing pumps, standard deviation).
# Humidity is deliberately uninformative, so a trained model should give it a weight near 0.
_PROFILES = (
    (62.0, 11.0, 6.0),
    (4.5, 2.2, 1.0),
    (6.0, -0.6, 0.75),
    (120.0, -12.0, 12.0),
    (20.0, 5.0, 5.0),
    (45.0, 0.0, 12.0),
)

# Reading offsets at drift=1.0: a firmware update that makes the temperature and vibration
# sensors read high. The pumps themselves are unchanged, so the labels do not move with
# the readings and a model trained before the update starts raising false alarms.
_DRIFT_OFFSETS = (10.0, 1.8, 0.0, 0.0, 0.0, 0.0)

Sample = tuple[list[float], int]


def make_dataset(n: int, seed: int, drift: float = 0.0) -> list[Sample]:
    """Return `n` (features, label) samples; the same arguments give the same data."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for _ in range(n):
        label = int(rng.random() < FAILURE_RATE)
        features = [
            round(rng.gauss(mean + label * shift, std) + drift * offset, 3)
            for (mean, shift, std), offset in zip(_PROFILES, _DRIFT_OFFSETS, strict=True)
        ]
        samples.append((features, label))
    return samples


def write_csv(path: str | Path, samples: list[Sample]) -> None:
    """Write samples as CSV with a header row, creating parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*FEATURE_NAMES, LABEL_NAME])
        for features, label in samples:
            writer.writerow([*features, label])


def read_csv(path: str | Path) -> list[Sample]:
    """Read samples written by `write_csv`; raise ValueError if the file is malformed."""
    expected_header = [*FEATURE_NAMES, LABEL_NAME]
    samples: list[Sample] = []
    with Path(path).open(newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != expected_header:
            raise ValueError(f"{path}: expected header {','.join(expected_header)}")
        for row in reader:
            if len(row) != len(expected_header):
                raise ValueError(f"{path}:{reader.line_num}: wrong number of columns")
            try:
                features = [float(value) for value in row[:-1]]
                label = int(row[-1])
            except ValueError as exc:
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
            if label not in (0, 1):
                raise ValueError(f"{path}:{reader.line_num}: label must be 0 or 1")
            samples.append((features, label))
    if not samples:
        raise ValueError(f"{path}: no samples")
    return samples
