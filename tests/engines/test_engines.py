"""One definition, two engines: DuckDB (default) and Spark (local mode) give the same results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from propensity.config import get_settings
from propensity.engines import get_engine, java_pattern
from propensity.engines.spark import SparkEngine
from propensity.errors import ParameterError
from propensity.events.validate import load_events
from propensity.features import FeatureConfig
from propensity.features.labels import Eligibility, LabelSpec, labelled_snapshot
from propensity.workflows.events import compute_features
from tests.features.fixtures import AS_OF, LEVELS, hand_log
from tests.features.test_features import assert_same_features

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]
CONFIG = FeatureConfig(lookbacks=(7, 30, 90), levels=LEVELS)
SHOP_CONFIG = FeatureConfig(
    lookbacks=(7, 30),
    levels={"device": ("mobile", "desktop", "tablet"), "channel": ("direct", "email", "organic")},
)


def run(engine: str, source, as_of, config: FeatureConfig, mapping=None, export_time="2030-01-01"):
    """Validation report, labelled features, and the canonical events, computed by ``engine``."""
    with load_events(source, mapping, engine=engine, export_time=export_time) as log:
        snap = log.engine.execute(
            labelled_snapshot(log.events, as_of, LabelSpec("purchase", 14), config, Eligibility(30))
        )
        report = log.report
    snap["eligible"] = snap["eligible"].astype(bool)
    return report, snap


@pytest.fixture(scope="module")
def reference(small_shop):
    """Everything computed once by DuckDB, the default engine."""
    return {
        "derived": run("duckdb", hand_log().drop(columns="session_id"), AS_OF, CONFIG),
        "shop": run(
            "duckdb", small_shop / "events.parquet", pd.Timestamp("2024-03-10"), SHOP_CONFIG, export_time=None
        ),
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_agree_on_validation_features_and_labels(engine, reference, small_shop):
    # the shop has session ids (and dirty rows, offsets, returns); the hand log's sessions are derived here
    cases = {
        "derived": (hand_log().drop(columns="session_id"), AS_OF, CONFIG, "2030-01-01"),
        "shop": (small_shop / "events.parquet", pd.Timestamp("2024-03-10"), SHOP_CONFIG, None),
    }
    for name, (source, as_of, config, export) in cases.items():
        report, snap = run(engine, source, as_of, config, export_time=export)
        ref_report, ref_snap = reference[name]
        for key in (
            "rows_in",
            "rows_ok",
            "rows_quarantined",
            "reasons",
            "customers",
            "first_event",
            "last_event",
            "event_types",
        ):
            assert getattr(report, key) == getattr(ref_report, key), (name, key)
        assert report.timestamps_with_offset == ref_report.timestamps_with_offset
        assert_same_features(snap, ref_snap)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_spark_writes_the_feature_and_quarantine_files_of_duckdb(tmp_path, small_shop, suffix, monkeypatch):
    # Spark writes from the executors (part files read back), never collecting the table to the driver;
    # its intermediate files live under PROPENSITY_SPARK_WORKDIR (a shared folder on a real cluster)
    scratch = tmp_path / "scratch"
    monkeypatch.setenv("PROPENSITY_SPARK_WORKDIR", str(scratch))
    get_settings.cache_clear()
    monkeypatch.setattr(SparkEngine, "close", _close_and_record(SparkEngine.close, seen := []))
    files = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / engine / f"features{suffix}"
        out.parent.mkdir()
        frame, summary = compute_features(
            small_shop / "events.parquet",
            "2024-03-10",
            lookbacks=(7, 30),
            horizon_days=14,
            out=out,
            engine=engine,
        )
        assert frame is None and summary.output == str(out)
        files[engine] = (out, Path(summary.quarantine))
    (duck, duck_q), (spark, spark_q) = files["duckdb"], files["spark"]
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    ours, theirs = read(spark), read(duck)
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs) > 100
    if suffix == ".parquet":
        assert pq.read_schema(spark).equals(pq.read_schema(duck))
    assert_same_features(ours, theirs)
    q_spark, q_duck = (pd.read_csv(p, dtype=str) for p in (spark_q, duck_q))
    q_spark, q_duck = (q.sort_values(list(q.columns)).reset_index(drop=True) for q in (q_spark, q_duck))
    assert len(q_duck) > 0
    pd.testing.assert_frame_equal(q_spark, q_duck)
    assert not list((tmp_path / "spark").glob("*batches*"))  # no part files left beside the output
    assert seen and all(Path(w).parent == scratch for w in seen)  # the engine worked under the setting
    assert scratch.is_dir() and not list(scratch.iterdir())  # and removed its folder when closed
    get_settings.cache_clear()


def _close_and_record(close, seen):
    def wrapped(self):
        if self._tmp is not None:
            seen.append(str(self._tmp))
        close(self)

    return wrapped


@pytest.mark.slow
def test_spark_reads_csv_with_a_mapping_and_a_timestamp_format(tmp_path):
    raw = pd.DataFrame(
        {
            "who": ["1", "1", "2", "2", "3"],
            "when": ["31/01/2024 10:00", "01/02/2024 11:30", "02/02/2024 09:00", "bad", "03/02/2024 12:00"],
            "what": ["catalog", "payment_done", "cart", "catalog", "Catalog"],
            "value": ["", "19.99", "", "", "x"],
        }
    )
    path = tmp_path / "log.csv"
    raw.to_csv(path, index=False)
    mapping = {
        "columns": {"customer_id": "who", "ts": "when", "event_type": "what", "amount": "value"},
        "events": {"view": ["catalog"], "add_to_cart": ["cart"], "purchase": ["payment_done"]},
        "timestamp_format": "%d/%m/%Y %H:%M",
        "timezone": "Europe/Berlin",
    }
    results = {}
    for engine in ("duckdb", "spark"):
        with load_events(path, mapping, engine=engine, export_time="2030-01-01", require_rows=False) as log:
            events = log.engine.execute(log.events).sort_values(["customer_id", "ts"]).reset_index(drop=True)
            results[engine] = (log.report.reasons, events[["customer_id", "ts", "event_type", "amount"]])
    assert (
        results["duckdb"][0]
        == results["spark"][0]
        == {
            "unparseable timestamp": 1,
            "unparseable amount or quantity": 1,
        }
    )
    pd.testing.assert_frame_equal(results["duckdb"][1], results["spark"][1], check_dtype=False)
    assert results["spark"][1]["ts"].iloc[0] == pd.Timestamp("2024-01-31 09:00")  # Berlin winter time = UTC+1


def test_engine_names_and_patterns():
    with pytest.raises(ParameterError, match="one of duckdb, spark"):
        get_engine("polars")
    assert java_pattern("%d/%m/%Y %H:%M:%S.%f") == "dd/MM/yyyy HH:mm:ss.SSSSSS"
    assert java_pattern("%Y-%m-%dT%H:%M%z") == "yyyy-MM-dd'T'HH:mmXXX"
    with pytest.raises(ParameterError, match="not supported on the spark engine"):
        java_pattern("%j")
