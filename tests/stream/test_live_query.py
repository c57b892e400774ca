"""The stream scorer's compiled feature query: the batch path's features, without compiling per batch."""

from __future__ import annotations

import pandas as pd
import pytest

from propensity.engines import get_engine
from propensity.events.validate import ROW, flag_rows
from propensity.loading import resolve_model
from propensity.workflows.events import event_features_at, model_event_spec
from propensity.workflows.live import _feature_query, _verdict_query


@pytest.mark.parametrize("day", ["2024-02-10 13:07:09", "2024-03-20 00:00:00"])
def test_compiled_feature_query_equals_the_batch_features(stream_model, stream_log, day):
    spec = model_event_spec(resolve_model(stream_model))
    raw = pd.read_parquet(stream_log)
    history = raw.astype(str).where(raw.notna(), None).astype("string")
    as_of = pd.Timestamp(day)
    engine = get_engine("duckdb")
    try:
        query = _feature_query(engine, spec, list(history.columns))
        assert query.usable  # the as-of enters the SQL only as literals the query can replace
        live = query.run(history, as_of)
    finally:
        engine.close()
    with event_features_at(history, spec, as_of, export_time=as_of) as (ev, rows):
        batch = ev.engine.execute(rows.features)
    assert len(live) > 50
    pd.testing.assert_frame_equal(live.reset_index(drop=True), batch.reset_index(drop=True), check_dtype=True)


def test_compiled_verdicts_equal_flag_rows(stream_model, stream_log):
    spec = model_event_spec(resolve_model(stream_model))
    raw = pd.read_parquet(stream_log)
    frame = raw.astype(str).where(raw.notna(), None).astype("string")
    export = pd.Timestamp("2024-03-01 12:00:00")  # inside the log: later events are refused as future
    engine = get_engine("duckdb")
    try:
        query = _verdict_query(engine, spec, list(frame.columns))
        assert query.usable
        live = query.run(frame.assign(**{ROW: range(len(frame))}), export).drop(columns=ROW)
        batch = flag_rows(frame, spec.mapping, engine=engine, export_time=export)
    finally:
        engine.close()
    assert (
        live["reason"].notna().sum() > 0 and (live["reason"] == "timestamp after the end of the data").any()
    )
    live, batch = live.reset_index(drop=True), batch.reset_index(drop=True)
    cols = ["customer_id", "reason", "column", "value"]
    pd.testing.assert_frame_equal(live[cols], batch[cols])
    # the same instants of the valid events (the compiled query keeps DuckDB's microseconds, flag_rows gives ns)
    valid = batch["reason"].isna()
    assert [str(pd.Timestamp(t)) for t in live["ts"][valid]] == [
        str(pd.Timestamp(t)) for t in batch["ts"][valid]
    ]
