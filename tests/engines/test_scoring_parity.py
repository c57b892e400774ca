"""Scoring on Spark is scoring on DuckDB: the same features, scores and quarantine, one loop.

The Spark cases run ``local[2]`` (``SPARK_LOCAL_IP=127.0.0.1``) and are marked slow: a session
takes ~10 s to start on a small box. The in-process cases check the per-partition function
without Spark (it is the same object ``mapInPandas`` runs on executors).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propensity.bundle import MODEL_FILE
from propensity.errors import BundleError, DataError, ParameterError
from propensity.workflows.events import event_features_at, model_event_spec, score_events, train_from_events
from propensity.workflows.scoring import score_file
from propensity.workflows.spark import (
    KIND,
    PAYLOAD,
    PartitionScorer,
    ShippedBundle,
    executor_model,
    score_table_on_spark,
)
from tests.features.test_features import assert_same_features


def _needs_spark() -> None:
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("PySpark is not installed (pip install 'propensity[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (java on PATH), none found")


ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]
AS_OF = "2024-04-01"


@pytest.fixture(scope="module")
def dirty_table(tmp_path_factory, customer_table) -> Path:
    """The session's customer table without its target, with rows the model must quarantine."""
    frame = customer_table.drop(columns="purchased").copy()
    frame["age"] = frame["age"].astype("float64")
    frame.loc[[3, 40], "age"] = -7.0  # never negative in training
    frame["visits_30d"] = frame["visits_30d"].astype(str)
    frame.loc[[10, 11, 2999], "visits_30d"] = "many"  # not a number
    frame.loc[[40], "visits_30d"] = "?"  # a row with two problems
    frame.loc[5, "country"] = "Atlantis"  # unseen category: scored as other, counted
    path = tmp_path_factory.mktemp("spark_table") / "customers.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def event_reference(event_model, small_shop, tmp_path_factory):
    model, _ = event_model
    out = tmp_path_factory.mktemp("duck_events") / "scores.parquet"
    summary = score_events(model, small_shop / "events.parquet", out, as_of=AS_OF, engine="duckdb")
    return summary, pd.read_parquet(out)


@pytest.mark.parametrize("engine", ENGINES)
def test_event_features_scores_and_quarantine_agree_across_engines(
    engine, event_model, event_reference, small_shop, tmp_path
):
    if engine == "spark":
        _needs_spark()
    model, _ = event_model
    spec = model_event_spec(model)
    features = {}
    for name in ("duckdb", engine):  # the features the scores are computed from
        with event_features_at(small_shop / "events.parquet", spec, AS_OF, engine=name) as (ev, rows):
            features[name] = ev.engine.execute(rows.features)
    assert_same_features(features[engine], features["duckdb"])

    out = tmp_path / "scores.parquet"
    summary = score_events(
        model,
        small_shop / "events.parquet",
        out,
        as_of=AS_OF,
        engine=engine,
        partition_by=["band"] if engine == "spark" else (),
    )
    ref_summary, ref = event_reference
    got = pd.read_parquet(out)
    if engine == "spark":
        assert out.is_dir() and {p.name for p in out.glob("band=*")} <= {
            "band=high",
            "band=medium",
            "band=low",
        }
    a = ref.sort_values("customer_id").reset_index(drop=True)
    b = got.sort_values("customer_id").reset_index(drop=True)
    assert list(a["customer_id"].astype(str)) == list(b["customer_id"].astype(str))
    np.testing.assert_allclose(b["probability"], a["probability"], rtol=0, atol=1e-12)
    for col in ("decision", "eligible"):
        assert b[col].astype(bool).tolist() == a[col].astype(bool).tolist(), col
    assert b["band"].astype(str).tolist() == a["band"].astype(str).tolist()
    assert (pd.to_datetime(b["as_of"]) == pd.Timestamp(AS_OF)).all()
    # the log's quarantine and every count of the summary
    for key in ("rows_in", "rows_ok", "rows_quarantined", "reasons"):
        assert summary.validation[key] == ref_summary.validation[key], key
    assert summary.validation["rows_quarantined"] > 0  # the shop has dirty rows
    for key in ("customers", "eligible", "scored", "contacted", "contacted_eligible", "bands"):
        assert getattr(summary, key) == getattr(ref_summary, key), key
    assert summary.expected_conversions == pytest.approx(ref_summary.expected_conversions, abs=0.011)
    assert Path(summary.quarantine).exists()


@pytest.mark.parametrize("engine", ENGINES)
def test_table_scores_and_quarantine_agree_across_engines(engine, trained, dirty_table, tmp_path):
    if engine == "spark":
        _needs_spark()
    _, bundle = trained
    ref = score_file(bundle, dirty_table, tmp_path / "duck.parquet")
    out = tmp_path / "scores.parquet"
    summary = (score_table_on_spark if engine == "spark" else score_file)(bundle, dirty_table, out)
    for key in (
        "rows_in",
        "rows_scored",
        "rows_quarantined",
        "contacted",
        "bands",
        "quarantine_reasons",
        "unknown_categories",
    ):
        assert getattr(summary, key) == getattr(ref, key), key
    assert summary.rows_quarantined == 5 and summary.unknown_categories
    a = pd.read_parquet(tmp_path / "duck.parquet").sort_values("customer_id").reset_index(drop=True)
    b = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
    assert b["customer_id"].tolist() == a["customer_id"].tolist()
    np.testing.assert_allclose(b["probability"], a["probability"], rtol=0, atol=1e-12)
    assert b["band"].astype(str).tolist() == a["band"].astype(str).tolist()
    # the same quarantine file: rows numbered as in the input file
    pd.testing.assert_frame_equal(
        pd.read_csv(summary.quarantine), pd.read_csv(ref.quarantine), check_dtype=False
    )


# ------------------------------------------------------------------------------ without Spark


def test_the_partition_function_runs_the_scoring_loop_and_reports_its_counts(trained, dirty_table):
    model, bundle = trained
    frame = pd.read_parquet(dirty_table)
    frame["_row_index"] = np.arange(len(frame))
    scorer = PartitionScorer(
        bundle=ShippedBundle.of(model, bundle),
        scored_at="2026-01-01T00:00:00+00:00",
        columns=["customer_id", "probability", "decision", "band", "model_version", "scored_at"],
    )
    parts = list(scorer(iter([frame.iloc[:1000], frame.iloc[1000:]])))
    scores = pd.concat([p for p in parts if (p[KIND] == "score").all()], ignore_index=True)
    counts = pd.concat([p for p in parts if (p[KIND] == "counts").all()], ignore_index=True)
    assert len(scores) == len(frame) - 5 and len(counts) == 1
    assert scores["band"].map(type).eq(str).all()  # plain values for Spark's Arrow conversion
    payload = json.loads(counts[PAYLOAD].iloc[0])
    assert payload["rows_in"] == len(frame) and payload["rows_quarantined"] == 5
    rows = sorted({r["row"] for r in payload["quarantine"]})
    assert rows == [4, 11, 12, 41, 3000]  # 1-based rows of the file, across both batches


def test_a_bundle_altered_on_the_way_is_refused_by_the_executor_loader(trained):
    model, bundle = trained
    shipped = ShippedBundle.of(model, bundle)
    tampered = ShippedBundle("tampered0001", {**shipped.files, MODEL_FILE: shipped.files[MODEL_FILE] + b"\0"})
    assert executor_model(shipped).version == model.version  # cached by content, not by version
    with pytest.raises(BundleError, match="modified after the bundle was written"):
        executor_model(tampered)
    same_version = ShippedBundle(shipped.version, tampered.files)
    with pytest.raises(BundleError, match="modified after the bundle was written"):
        executor_model(same_version)
    assert executor_model(shipped).version == model.version


def test_spark_output_must_be_parquet_and_partitions_known_columns(trained, dirty_table, tmp_path):
    _, bundle = trained
    with pytest.raises(ParameterError, match="writes Parquet"):
        score_table_on_spark(bundle, dirty_table, tmp_path / "scores.csv")
    with pytest.raises(ParameterError, match="'partition_by' parameter"):
        score_table_on_spark(bundle, dirty_table, tmp_path / "scores.parquet", partition_by=["country"])
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "notes.txt").write_text("not scores")
    with pytest.raises(DataError, match="not an earlier Spark output"):
        score_table_on_spark(bundle, dirty_table, keep)
    assert (keep / "notes.txt").exists()
    csv = tmp_path / "t.csv"
    pd.read_parquet(dirty_table).to_csv(csv, index=False)
    with pytest.raises(DataError, match="is not Parquet"):
        score_table_on_spark(bundle, csv, tmp_path / "scores.parquet")


@pytest.mark.slow
def test_a_training_set_built_on_spark_is_the_duckdb_one(small_shop, tmp_path):
    """``train --from-events --engine spark``: snapshots and labels on Spark, collected for the fit."""
    _needs_spark()
    sets = {}
    for engine in ("duckdb", "spark"):
        result = train_from_events(
            small_shop / "events.parquet",
            horizon_days=14,
            cutoffs=2,
            step_days=14,
            lookbacks=(7, 30),
            engine=engine,
            candidates=["logistic_regression"],
            seed=3,
        )
        sets[engine] = result.training_set.frame
        assert result.model.manifest.events.engine == engine
    a, b = (f.sort_values(["cutoff", "customer_id"]).reset_index(drop=True) for f in sets.values())
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
    assert a["customer_id"].astype(str).tolist() == b["customer_id"].astype(str).tolist()
    assert (a["cutoff"] == b["cutoff"]).all()
    for col in a.columns.drop(["customer_id", "cutoff"]):
        if a[col].dtype == object or b[col].dtype == object:
            assert a[col].fillna("<NA>").tolist() == b[col].fillna("<NA>").tolist(), col
            continue
        np.testing.assert_allclose(
            b[col].to_numpy(dtype="float64"),
            a[col].to_numpy(dtype="float64"),
            rtol=1e-9,
            atol=1e-12,
            err_msg=col,
        )
