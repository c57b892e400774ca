"""Shop analytics on Spark are the analytics on DuckDB: one Ibis definition, every table equal.

The Spark cases run ``local[2]`` (``SPARK_LOCAL_IP=127.0.0.1``) and are marked slow.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from propensity.analytics import EventStore, analytics_tables
from tests.analytics.test_tables import hand_events
from tests.cli.test_core import assert_user_error, invoke
from tests.engines.test_scoring_parity import _needs_spark
from tests.features.test_features import assert_same_features


@pytest.fixture
def spark_scorings(monkeypatch) -> list[tuple]:
    """The calls of the Spark scoring path (``score_events_on_spark``), which still runs."""
    import propensity.workflows.spark as spark_scoring

    calls: list[tuple] = []
    real = spark_scoring.score_events_on_spark

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(spark_scoring, "score_events_on_spark", counted)
    return calls


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
def test_analyze_with_a_model_on_spark_writes_the_tables_of_duckdb(
    small_shop, event_model, tmp_path, spark_scorings
):
    """Every table and figure of ``analyze --model`` equal, the segments' propensity included; on
    Spark the customers are scored by the Spark scoring path (``mapInPandas``), not on DuckDB."""
    _needs_spark()
    _, bundle = event_model
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / engine
        result = invoke(
            "analyze",
            small_shop / "events.parquet",
            "--out",
            outs[engine],
            "--engine",
            engine,
            "--model",
            bundle,
            "--no-charts",
        )
        assert result.exit_code == 0, result.output
    assert len(spark_scorings) == 1  # scored on the executors once, for the spark run only
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
    segments = pd.read_csv(duck / "rfm_segments.csv")
    assert segments["scored"].sum() > 500 and segments["expected_buyers"].sum() > 1  # the model's figures


def test_analyze_refuses_an_unknown_engine(small_shop, tmp_path):
    result = invoke("analyze", small_shop / "events.parquet", "--out", tmp_path / "a", "--engine", "pandas")
    assert_user_error(result, "'engine' parameter must be one of duckdb, spark. Got 'pandas'")
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_the_dashboard_data_is_the_same_on_either_engine(small_shop, event_model, tmp_path, monkeypatch):
    """``PROPENSITY_ENGINE`` picks the engine of every dashboard aggregate (products included) and of
    the scored customers; Spark's tables and scores equal DuckDB's."""
    _needs_spark()
    pytest.importorskip("streamlit")
    from propensity.config import get_settings
    from propensity.dashboard import data

    _, bundle = event_model
    version = data._load_model(str(bundle)).version
    seen = {}
    try:
        for engine in ("duckdb", "spark"):
            monkeypatch.setenv("PROPENSITY_ENGINE", engine)
            get_settings.cache_clear()
            cache = tmp_path / engine
            store, _ = data._load_store(str(small_shop / "events.parquet"), str(cache), data.engine_name())
            assert store.engine.name == engine
            key = f"parity-{engine}"  # a cache key of its own: every table computed by this engine
            snap = data._snapshot(str(bundle), version, store.source, str(cache), str(store.data_end))
            products = data.products(store, key, 5)
            assert products is not None
            seen[engine] = {
                "kpis": data.kpis(store, key),
                "snapshot": snap,
                "products": products,
                "tables": {
                    "activity_weekly": data.activity(store, key, "week"),
                    "funnel_by_device": data.funnel_table(store, key, "device"),
                    "cohort_retention": data.cohorts(store, key),
                    "rfm_customers": data.rfm(store, key),
                    "rfm_segments": data.segments(store, key, snap[["customer_id", "probability"]], key),
                    "products": products.products,
                    "categories": products.categories,
                    "conversion": products.top("conversion", n=20),
                },
            }
            store.close()
    finally:
        monkeypatch.delenv("PROPENSITY_ENGINE")
        get_settings.cache_clear()
    duck, spark = seen["duckdb"], seen["spark"]
    sums = ("revenue", "avg_order_value")  # summed in another order: equal to the last few bits
    assert {k: v for k, v in spark["kpis"].items() if k not in sums} == {
        k: v for k, v in duck["kpis"].items() if k not in sums
    }
    assert [spark["kpis"][k] for k in sums] == pytest.approx([duck["kpis"][k] for k in sums], rel=1e-12)
    assert_same_tables(spark["tables"], duck["tables"])
    assert (
        len(duck["tables"]["products"]) > 10 and duck["products"].rankings() == spark["products"].rankings()
    )
    a, b = duck["snapshot"], spark["snapshot"]
    assert b["customer_id"].tolist() == a["customer_id"].tolist() and len(a) > 500
    np.testing.assert_allclose(b["probability"], a["probability"], rtol=0, atol=1e-12)
    assert b["band"].tolist() == a["band"].tolist()
    assert_same_features(b.drop(columns=["probability", "band"]), a.drop(columns=["probability", "band"]))


def test_customer_scores_are_the_snapshot_scores(small_shop, event_model):
    """The batch scoring path ``analyze --model`` and ``report-shop`` now take gives the customers,
    probabilities and bands the in-memory snapshot gave them (DuckDB; the engines agree above)."""
    from propensity.workflows.events import customer_scores, customer_snapshot

    model, _ = event_model
    events = small_shop / "events.parquet"
    scored = customer_scores(model, events, as_of="2024-04-01")
    snap = customer_snapshot(model, events, as_of="2024-04-01")
    assert list(scored.columns) == ["customer_id", "probability", "decision", "band", "eligible"]
    assert scored["customer_id"].tolist() == snap["customer_id"].tolist() and len(scored) > 500
    np.testing.assert_allclose(scored["probability"], snap["probability"], rtol=0, atol=1e-12)
    assert scored["band"].tolist() == snap["band"].astype(str).tolist()
    assert scored["decision"].tolist() == snap["decision"].tolist()
