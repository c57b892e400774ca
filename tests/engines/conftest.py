"""Fixtures of the engine tests: a model trained on the small shop's log."""

from __future__ import annotations

import pytest

from propensity.workflows.events import train_from_events


@pytest.fixture(scope="session")
def event_model(tmp_path_factory, small_shop):
    out = tmp_path_factory.mktemp("spark_event_model") / "model"
    result = train_from_events(
        small_shop / "events.parquet",
        horizon_days=14,
        cutoffs=2,
        step_days=14,
        lookbacks=(7, 30),
        out=out,
        candidates=["lightgbm"],
        seed=3,
    )
    return result.model, out
