"""A metric is its stage and its name: two stages reporting one name are two metrics
in every comparison, and text names them ``stage.name`` exactly where they collide."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mlci_tui.checks import parse_check
from mlci_tui.commands.reports import diff_markdown, diff_text, md
from mlci_tui.metric_keys import MetricKey, labels, split
from mlci_tui.states import RunState, StageState, VersionStatus
from mlci_tui.store.compare import Side, compare, compare_versions
from mlci_tui.store.records import RunRecord, StageRecord, VersionRecord

STAGES = ["train", "evaluate", "monitor", "a.b"]
NAMES = ["accuracy", "loss", "f1", "b.c", "latency_ms"]

values = st.floats(allow_nan=False, allow_infinity=False, width=64)
reported = st.dictionaries(
    st.tuples(st.sampled_from(STAGES), st.sampled_from(NAMES)).map(lambda t: MetricKey(*t)),
    values,
    max_size=len(STAGES) * len(NAMES),
)


def side(run_id: int, metrics: dict[MetricKey, float]) -> Side:
    stages = tuple(
        StageRecord(
            name=stage,
            position=i,
            needs=(),
            state=StageState.PASSED,
            metrics={k.name: v for k, v in metrics.items() if k.stage == stage},
        )
        for i, stage in enumerate(STAGES)
    )
    return Side(RunRecord(run_id, "p", RunState.PASSED, 0.0, stages=stages), None)


@given(reported, reported)
def test_every_stage_and_name_is_one_row_of_a_diff(
    old: dict[MetricKey, float], new: dict[MetricKey, float]
) -> None:
    gate = (MetricKey("evaluate", "accuracy"), parse_check("accuracy >= 0.5"))
    comparison = compare(side(1, old), side(2, new), [gate])
    data = json.loads(json.dumps(comparison.to_json()))
    rows = Counter((m["stage"], m["name"]) for m in data["metrics"])
    assert set(rows) == {tuple(k) for k in {**old, **new}}
    assert set(rows.values()) <= {1}
    for m in data["metrics"]:
        key = MetricKey(m["stage"], m["name"])
        assert (m["old"], m["new"]) == (old.get(key), new.get(key))
        assert m["gates"] == (["accuracy >= 0.5"] if key == gate[0] else [])
    # Text: one line per metric, named by its name, or stage.name where two stages
    # in the diff report that name.
    names = Counter(k.name for k in {**old, **new})
    shown = comparison.metric_labels
    assert len(set(shown)) == len(shown)
    for row, label in zip(comparison.metrics, shown, strict=True):
        assert label == (f"{row.stage}.{row.name}" if names[row.name] > 1 else row.name)
    text = diff_text(comparison)
    markdown = diff_markdown(comparison)
    for label in shown:
        assert sum(line.split()[:1] == [label] for line in text) == 1
        assert sum(line.startswith(f"| {md(label)} |") for line in markdown) == 1


def version(number: int, metrics: dict[MetricKey, float]) -> VersionRecord:
    return VersionRecord(
        number, None, 0.0, "m", "m", False, "0" * 64, 1, metrics, VersionStatus.REGISTERED
    )


@given(
    st.one_of(st.none(), reported),
    reported,
    st.lists(st.tuples(st.sampled_from(STAGES), st.sampled_from(NAMES)), unique=True),
)
def test_the_key_metrics_lead_and_every_other_follows_once_by_stage_and_name(
    live: dict[MetricKey, float] | None,
    target: dict[MetricKey, float],
    first: list[tuple[str, str]],
) -> None:
    keys = [MetricKey(*pair) for pair in first]
    old = None if live is None else version(1, live)
    comparison = compare_versions(old, version(2, target), [])
    rows = comparison.metrics_led_by(keys)
    got = [MetricKey(row.stage, row.name) for row in rows]
    reported_keys = {**(live or {}), **target}
    assert got == keys + sorted(reported_keys.keys() - set(keys))
    for key, row in zip(got, rows, strict=True):
        assert (row.old, row.new) == ((live or {}).get(key), target.get(key))


@given(st.lists(st.tuples(st.sampled_from(STAGES), st.sampled_from(NAMES))))
def test_labels_name_a_metric_by_its_stage_only_where_its_name_collides(
    pairs: list[tuple[str, str]],
) -> None:
    keys = [MetricKey(*p) for p in pairs]
    shown = labels(keys)
    assert len(set(shown.values())) == len(shown) == len(set(keys))
    for key, label in shown.items():
        others = {k.stage for k in keys if k.name == key.name} - {key.stage}
        assert label == (key.text if others else key.name)


def test_a_name_before_a_dot_is_a_stage_only_when_a_stage_has_it() -> None:
    stages = ["train", "a", "a.b"]
    assert split("train.loss", stages) == ("train", "loss")
    assert split("val.loss", stages) == (None, "val.loss")
    assert split("loss", stages) == (None, "loss")
    assert split("train.", stages) == (None, "train.")
    # The longest stage name that fits: a stage name may hold a dot.
    assert split("a.b.c", stages) == ("a.b", "c")
    assert split("a.c", stages) == ("a", "c")
