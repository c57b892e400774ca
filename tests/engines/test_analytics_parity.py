"""Shop analytics on Spark are the analytics on DuckDB: one Ibis definition, every table equal.

The Spark cases run ``local[2]`` (``SPARK_LOCAL_IP=127.0.0.1``) and are marked slow.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from propensity.analytics import EventStore, analytics_tables
from tests.analytics.test_tables import hand_events
from tests.cli.test_core import assert_user_error, invoke
from tests.engines.test_scoring_parity import _needs_spark

TABLES = (
    "activity_daily",
    "activity_weekly",
    "funnel",
    "funnel_by_device",
    "funnel_by_channel",
    "cohort_retention",
    "rfm_customers",
    "rfm_segments",
)


def assert_same_tables(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert set(left) == set(right)
    for name in left:
        # sums of amounts may be added in another order: equal to the last few bits
        pd.testing.assert_frame_equal(left[name], right[name], check_exact=False, rtol=1e-12, obj=name)


@pytest.mark.slow
def test_every_table_on_spark_equals_duckdb_on_the_hand_log():
    _needs_spark()
    results = {}
    for engine in ("duckdb", "spark"):
        with EventStore(hand_events(), engine=engine) as store:
            assert store.engine.name == engine
            results[engine] = analytics_tables(store, as_of="2024-04-01")
    (kpis_duck, duck), (kpis_spark, spark) = results["duckdb"], results["spark"]
    assert kpis_spark == kpis_duck
    assert_same_tables(spark, duck)
    assert duck["funnel"]["sessions"].tolist() == [6, 5, 4, 4]  # the hand-worked numbers of test_tables


@pytest.mark.slow
def test_analyze_on_spark_writes_the_tables_of_duckdb(small_shop, tmp_path):
    _needs_spark()
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / engine
        result = invoke("analyze", small_shop / "events.parquet", "--out", outs[engine], "--engine", engine)
        assert result.exit_code == 0, result.output
    duck, spark = outs["duckdb"], outs["spark"]
    checked = json.loads((duck / "validated" / "validation.json").read_text())
    on_spark = json.loads((spark / "validated" / "validation.json").read_text())
    for key in ("rows_in", "rows_ok", "rows_quarantined", "reasons"):
        assert on_spark[key] == checked[key], key
    kpis, kpis_spark = (json.loads((folder / "kpis.json").read_text()) for folder in (duck, spark))
    sums = ("revenue", "avg_order_value")  # summed in another order: equal to the last few bits
    assert {k: v for k, v in kpis_spark.items() if k not in sums} == {
        k: v for k, v in kpis.items() if k not in sums
    }
    assert [kpis_spark[k] for k in sums] == pytest.approx([kpis[k] for k in sums], rel=1e-12)
    assert_same_tables(
        {name: pd.read_csv(spark / f"{name}.csv") for name in TABLES},
        {name: pd.read_csv(duck / f"{name}.csv") for name in TABLES},
    )
    assert len(pd.read_csv(duck / "rfm_customers.csv")) > 500  # the shop, not an empty log


def test_analyze_refuses_an_unknown_engine(small_shop, tmp_path):
    result = invoke("analyze", small_shop / "events.parquet", "--out", tmp_path / "a", "--engine", "pandas")
    assert_user_error(result, "'engine' parameter must be one of duckdb, spark. Got 'pandas'")
    assert not (tmp_path / "a").exists()
