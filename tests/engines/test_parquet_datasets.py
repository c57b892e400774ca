"""Event logs as Parquet folders and partitioned datasets, on both engines, as one file.

A folder of part files (Spark's output) and a dataset partitioned into ``key=value`` folders are
read by ``score``, ``features`` and ``train --from-events`` like the single file they were cut from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from propensity.workflows.events import score_events, train_from_events
from tests.cli.test_core import assert_user_error, invoke
from tests.engines.test_scoring_parity import AS_OF, ENGINES, _needs_spark


@pytest.fixture(scope="module")
def datasets(small_shop, tmp_path_factory) -> dict[str, Path]:
    """The small shop's log as one file, a folder of three part files and a dataset partitioned by month."""
    log = small_shop / "events.parquet"
    frame = pd.read_parquet(log)
    root = tmp_path_factory.mktemp("datasets")
    parts = root / "parts"
    parts.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[chunk].to_parquet(parts / f"part-{i:05d}.parquet", index=False)
    (parts / "_SUCCESS").write_text("")  # what Spark leaves next to its part files
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # the log's own timestamps are text (it is a raw log): the month is its first 7 characters
    month = pa.array(frame["ts"].astype(str).str[:7].where(frame["ts"].notna(), "none"))
    ds.write_dataset(
        table.append_column("month", month),
        root / "by_month",
        format="parquet",
        partitioning=["month"],
        partitioning_flavor="hive",
    )
    return {"file": log, "parts": parts, "by_month": root / "by_month"}


def _scores(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("customer_id").reset_index(drop=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_score_reads_a_folder_and_a_partitioned_dataset_like_the_file(
    engine, event_model, datasets, tmp_path
):
    if engine == "spark":
        _needs_spark()
    model, _ = event_model
    ref = score_events(model, datasets["file"], tmp_path / "ref.parquet", as_of=AS_OF, engine="duckdb")
    expected = _scores(tmp_path / "ref.parquet")
    for name in ("parts", "by_month"):
        out = tmp_path / f"{name}_{engine}.parquet"
        summary = score_events(model, datasets[name], out, as_of=AS_OF, engine=engine)
        got = _scores(out)
        assert got["customer_id"].astype(str).tolist() == expected["customer_id"].astype(str).tolist(), name
        np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=1e-12)
        assert summary.validation["rows_in"] == ref.validation["rows_in"], name
        assert summary.validation["rows_quarantined"] == ref.validation["rows_quarantined"], name


def test_features_and_train_from_events_read_a_partitioned_dataset(datasets, tmp_path):
    for name in ("file", "by_month"):
        result = invoke("features", datasets[name], "--as-of", AS_OF, "--out", tmp_path / f"{name}.parquet")
        assert result.exit_code == 0, result.output
    a, b = (_scores(tmp_path / f"{name}.parquet") for name in ("file", "by_month"))
    pd.testing.assert_frame_equal(b, a)
    sets = [
        train_from_events(
            datasets[name],
            horizon_days=14,
            cutoffs=2,
            step_days=14,
            lookbacks=(7, 30),
            candidates=["logistic_regression"],
            seed=3,
        ).training_set.frame
        for name in ("file", "by_month")
    ]
    a, b = (f.sort_values(["cutoff", "customer_id"]).reset_index(drop=True) for f in sets)
    pd.testing.assert_frame_equal(b, a)


def test_a_folder_without_parquet_files_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "notes.txt").write_text("no events here")
    result = invoke("features", tmp_path / "logs", "--as-of", AS_OF, "--out", tmp_path / "f.parquet")
    assert_user_error(result, "folder without Parquet files")
