"""The benchmark suite's own machinery: regression warnings, same-mode comparison, failures, peak memory."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from benchmarks._common import Figure, guarded, isolated
from benchmarks.run import failures, last_values, markdown, regressions


def _result(name: str, value: float | None, better: str, unit: str = "s", **extra) -> dict:
    return {
        "benchmark": "b",
        "figures": [{"name": name, "value": value, "better": better, "unit": unit, **extra}],
    }


@pytest.mark.parametrize(
    ("old", "new", "better", "warned"),
    [
        (10.0, 12.5, "lower", True),  # 25 % slower
        (10.0, 11.5, "lower", False),  # 15 % slower: noise on a shared machine
        (10.0, 5.0, "lower", False),  # faster is never a regression
        (0.80, 0.60, "higher", True),  # 25 % lower quality
        (0.80, 0.70, "higher", False),  # 12.5 % lower
        (0.80, 0.95, "higher", False),
        (-1.0, -1.3, "higher", True),  # a negative figure: the change is relative to |old|
    ],
)
def test_a_figure_more_than_20_percent_worse_is_a_warning(old, new, better, warned):
    warnings = regressions([_result("f", new, better)], {"b/f": old})
    assert bool(warnings) is warned
    if warned:
        assert warnings[0].startswith("WARNING: b/f regressed")
        assert f"{old:g} -> {new:g}" in warnings[0]


def test_missing_values_are_not_compared():
    assert regressions([_result("f", None, "lower", error="boom")], {"b/f": 1.0}) == []
    assert regressions([_result("f", 3.0, "lower")], {}) == []
    assert regressions([_result("f", 3.0, "lower")], {"b/f": 0}) == []


def test_the_threshold_is_a_parameter():
    assert regressions([_result("f", 11.5, "lower")], {"b/f": 10.0}, threshold=0.10)


def test_last_values_takes_the_latest_run_of_the_same_mode(tmp_path):
    def record(stamp: str, quick: bool, value: float) -> None:
        payload = {"quick": quick, "benchmarks": [_result("f", value, "lower")]}
        (tmp_path / f"{stamp}.json").write_text(json.dumps(payload))

    record("2025-01-01T000000Z", False, 1.0)
    record("2025-01-02T000000Z", True, 2.0)
    record("2025-01-03T000000Z", False, 3.0)
    record("2025-01-04T000000Z", True, 4.0)
    (tmp_path / "2025-01-05T000000Z.json").write_text("{ not json")
    assert last_values(False, tmp_path) == {"b/f": 3.0}
    assert last_values(True, tmp_path) == {"b/f": 4.0}


def test_a_failing_part_becomes_an_error_figure_and_the_rest_is_kept(capsys):
    def fails() -> list[Figure]:
        raise ValueError("row 515 column 'X' value '2': not a boolean")

    figures = guarded("ok", "cmd ok", lambda: [Figure("ok_auc", 0.9, "", "higher")])
    figures += guarded("coil2000", "cmd coil", fails)
    assert [f.name for f in figures] == ["ok_auc", "coil2000_error"]
    error = figures[1]
    assert error.value is None and error.command == "cmd coil"
    assert error.error == "ValueError: row 515 column 'X' value '2': not a boolean"
    assert "Traceback" in capsys.readouterr().err

    results = [{"benchmark": "tables", "figures": [f.to_dict() for f in figures]}]
    results.append({"benchmark": "api", "figures": [], "error": "RuntimeError: no wrk"})
    assert failures(results) == [
        "api: RuntimeError: no wrk",
        "tables/coil2000_error: ValueError: row 515 column 'X' value '2': not a boolean",
    ]
    info = {"cores": 2, "memory_gb": 24, "cpu": "cpu", "python": "3.11"}
    table = markdown(
        "stamp", info, results, False, seconds=42.0, load=[1.5, 1.0, 0.5], warnings=["WARNING: x"]
    )
    assert "| tables | ok_auc | 0.9 |" in table
    assert "| tables | coil2000_error | **error**: ValueError" in table
    assert "| api | **error** | RuntimeError: no wrk |" in table
    assert "Suite wall time 42 s, load average (1/5/15 min) at the end 1.5/1/0.5." in table
    assert table.rstrip().endswith("- WARNING: x")


def _allocate(mib: int) -> int:
    block = b"x" * (mib * 2**20)  # written, so resident
    return len(block)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is read from Linux's /proc")
def test_an_isolated_stage_reports_its_own_peak_memory_not_its_parents():
    held = b"x" * (1024 * 2**20)  # ru_maxrss would carry this into the spawned child
    _, _, empty = isolated(_allocate, 0)  # the interpreter and the imports alone
    size, _, peak = isolated(_allocate, 200)
    assert size == 200 * 2**20
    assert peak < 1024, peak  # the parent's gigabyte is not in it
    assert 150 <= peak - empty <= 260, (empty, peak)  # the stage's own 200 MiB is
    assert len(held) == 1024 * 2**20


def test_the_events_baseline_learns_only_from_snapshots_whose_labels_end_by_the_test_cutoff():
    from benchmarks.bench_events import training_rows

    cutoffs = pd.to_datetime(["2024-01-01", "2024-01-31", "2024-03-01", "2024-03-31"])
    frame = pd.DataFrame({"customer_id": ["a", "b"] * 4, "cutoff": cutoffs.repeat(2)})
    # the latest cutoff is the model's held-out test; 2024-03-01 + 45 days reaches past it
    kept = training_rows(frame, horizon_days=45)
    assert sorted(kept["cutoff"].dt.strftime("%m-%d").unique()) == ["01-01", "01-31"]
    assert len(training_rows(frame, horizon_days=30)) == 6


def test_the_recency_frequency_baseline_ranks_recent_frequent_buyers_first():
    from benchmarks.bench_events import recency_frequency, recency_frequency_baseline

    train = pd.DataFrame(
        {
            "days_since_last_purchase": [1, 3, 5, 8, 60, 90, 120, None, None],
            "tenure_days": [200, 150, 300, 100, 100, 200, 150, 30, 90],
            "n_orders_all": [9, 6, 4, 7, 1, 1, 2, 0, 0],
            "bought": [1, 1, 1, 0, 1, 0, 0, 0, 0],
        }
    )
    score = pd.DataFrame(
        {"days_since_last_purchase": [2, 100, None], "tenure_days": [50, 120, 10], "n_orders_all": [5, 1, 0]}
    )
    p = recency_frequency_baseline(train, "bought", score)
    assert p[0] > p[1] and p[0] > p[2]
    # a customer who never bought counts as if the last purchase were when first seen
    assert recency_frequency(score)[2].tolist() == pytest.approx([np.log1p(10), 0.0])


def test_the_shop_report_baseline_computes_the_same_product_table():
    from benchmarks.bench_shop_report import pandas_product_table

    from propensity.analytics.products import product_analytics
    from propensity.engines import get_engine
    from tests.analytics.test_products import hand_events

    with get_engine("duckdb", threads=1) as eng:
        ours = product_analytics(eng.from_frame(hand_events()), engine=eng).products.set_index("product_id")
    theirs = pandas_product_table(hand_events()).set_index("product_id").loc[ours.index]
    for col in (
        "viewers",
        "carters",
        "buyers",
        "view_buyers",
        "abandoned",
        "orders",
        "revenue",
        "conversion_rate",
    ):
        assert theirs[col].astype(float).tolist() == pytest.approx(
            ours[col].astype(float).tolist(), nan_ok=True
        ), col
