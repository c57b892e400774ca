"""BG/NBD P(alive) and expected purchases as point-in-time features of ``train_from_events``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propensity.events.validate import load_events
from propensity.synthetic import generate_shop
from propensity.workflows.clv import CLV_FEATURES, clv_columns_at
from propensity.workflows.events import score_events, train_from_events

pytestmark = pytest.mark.slow  # BG/NBD is fitted with pymc-marketing at every cutoff

CUTOFF = pd.Timestamp("2024-05-01")


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> pd.DataFrame:
    """The synthetic shop's log as canonical events (naive-UTC timestamps), easy to append to."""
    folder = tmp_path_factory.mktemp("shop")
    generate_shop(300, days=180, seed=11, out=folder, dirty=False)
    with load_events(folder / "events.parquet") as ev:
        return ev.engine.execute(ev.events)


def _columns(frame: pd.DataFrame) -> pd.DataFrame:
    with load_events(frame) as ev:
        cols, info = clv_columns_at(ev, CUTOFF, 30)
    assert info["customers"] == len(cols) > 0
    return cols.sort_values("customer_id").reset_index(drop=True)


def test_events_at_or_after_the_cutoff_change_nothing(events):
    before = _columns(events)
    later = events[pd.to_datetime(events["ts"]) >= CUTOFF].copy()
    assert len(later) > 0
    extra = later.copy()
    extra["ts"] = pd.to_datetime(extra["ts"]) + pd.Timedelta(days=3)  # more activity after the cutoff
    burst = events.head(50).copy()
    burst["ts"] = CUTOFF  # purchases exactly at the cutoff belong to the future
    burst["event_type"] = "purchase"
    burst["amount"] = 10.0
    burst["customer_id"] = burst["customer_id"].astype(str) + "-new"
    appended = pd.concat([events, extra, burst], ignore_index=True)
    after = _columns(appended)
    pd.testing.assert_frame_equal(before, after)
    assert set(after.columns) == {"customer_id", *CLV_FEATURES}
    assert after["bgnbd_p_alive"].between(0, 1).all() and (after["bgnbd_expected_purchases"] >= 0).all()


def test_history_before_the_cutoff_does_change_them(events):
    """The leak-free test above could pass by ignoring the data: a change before the cutoff must show."""
    before = _columns(events)
    dropped = events[
        ~((pd.to_datetime(events["ts"]) < CUTOFF) & (events["event_type"] == "purchase"))
        | (events.index % 2 == 0)
    ]
    assert not _columns(dropped).equals(before)


def test_train_from_events_with_bgnbd_features_and_score_a_log(events, tmp_path):
    out = tmp_path / "model"
    result = train_from_events(
        events,
        horizon_days=30,
        cutoffs=2,
        out=out,
        clv_features=True,
        candidates=["logistic_regression", "lightgbm"],
        seed=1,
    )
    block = result.model.manifest.events
    assert block is not None and block.clv_features
    assert {"bgnbd_p_alive", "bgnbd_expected_purchases"} <= set(result.model.features)
    names = [d["name"] for d in block.features.definitions]
    assert names[-2:] == ["bgnbd_p_alive", "bgnbd_expected_purchases"]
    frame = result.training_set.frame
    buyers = frame["n_orders_all"] > 0
    assert frame.loc[buyers, "bgnbd_p_alive"].notna().all()
    assert frame.loc[~buyers, "bgnbd_p_alive"].isna().all()  # no purchase before the cutoff: missing
    # each cutoff's columns come from its own fit on its own history
    per_cutoff = frame.groupby("cutoff")["bgnbd_expected_purchases"].mean()
    assert len(per_cutoff) == 2 and not np.isclose(per_cutoff.iloc[0], per_cutoff.iloc[1])
    summary = score_events(out, events, tmp_path / "scores.parquet")
    assert summary.scored == summary.customers > 0
    assert Path(tmp_path / "scores.parquet").exists()
