"""The per-record path (scalar coercion + RecordEncoder + RowPredictor) equals the column path exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from propensity.pipeline import RecordEncoder, RowPredictor, TabularEncoder
from propensity.schema import (
    Quarantine,
    Role,
    boolean_value,
    category_value,
    coerce_features,
    datetime_value,
)

ROLES = {
    "amount": Role.NUMERIC,
    "visits": Role.NUMERIC,
    "member": Role.BOOLEAN,
    "device": Role.CATEGORICAL,
    "tier": Role.CATEGORICAL,
    "signup": Role.DATETIME,
    "last_seen": Role.DATETIME,
}
DEVICES = ["mobile", "desktop", "tablet", "tv"]  # "tv" is rare in training -> "other"

DATE_TEXTS = [
    "2023-01-05",
    " 2023-01-05 ",
    "20230105",
    "2023-1-5",
    "2023-01-05T10:11:12",
    "2023-01-05 23:59",
    "2023-01-05T10:00:00+02:00",
    "2023-01-05T22:30:00-05:00",
    "2023-12-31T23:30:00Z",
    "2023-01-05T10:00:00.123456",
    "2023-01-05T10:00:00.123456789",
    "05/01/2023",
    "Jan 5 2023",
    "2023-W01-1",
    "0001-01-01",
    "9999-12-31T00:00:00",
    "2262-04-11",
    "1677-09-21",
    "not a date",
    "",
    "1",
]
BOOL_TEXTS = ["yes", "No", " TRUE ", "f", "1", "0.0", "1e0", "2", "maybe", "", True, False, 1, 0, 1.0, 2]


def training_frame(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "visits": rng.poisson(3, n).astype(float),
            "member": rng.random(n) < 0.4,
            "device": np.r_[["tv", "tv"], rng.choice(DEVICES[:3], n - 2, p=[0.5, 0.4, 0.1])],
            "tier": rng.choice([1, 2, 3], n).astype(str),
            "signup": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "last_seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        }
    )
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    return frame


def random_cell(rng: np.random.Generator, role: Role, col: str) -> Any:
    u = rng.random()
    if u < 0.1:
        return None
    if u < 0.13:
        return math.nan
    if role is Role.NUMERIC:
        return float(rng.normal(5, 20)) if rng.random() < 0.7 else int(rng.integers(-5, 50))
    if role is Role.BOOLEAN:
        return BOOL_TEXTS[rng.integers(len(BOOL_TEXTS))]
    if role is Role.CATEGORICAL:
        if col == "tier":  # numbers and text of numbers must agree: 2, 2.0, "2"
            return [1, 2.0, "3", " 2 ", 4, "9", 2.5, True][rng.integers(8)]
        return [*DEVICES, "smart-fridge", " mobile", "", "Mobile"][rng.integers(len(DEVICES) + 4)]
    if rng.random() < 0.5:
        return DATE_TEXTS[rng.integers(len(DATE_TEXTS))]
    stamp = pd.Timestamp("2020-01-01") + pd.Timedelta(seconds=int(rng.integers(0, 10**8)))
    tz = ["", "Z", "+05:30", "-08:00"][rng.integers(4)]
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + tz


SCALAR = {
    Role.NUMERIC: lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v),
    Role.BOOLEAN: boolean_value,
    Role.CATEGORICAL: category_value,
    Role.DATETIME: datetime_value,
}


def record_path(raw: pd.DataFrame, encoder: RecordEncoder) -> tuple[np.ndarray, np.ndarray]:
    rows = np.full((len(raw), encoder.n_outputs), np.nan)
    bad = np.zeros(len(raw), dtype=bool)
    for i, record in enumerate(raw.to_dict(orient="records")):
        typed = {}
        try:
            for col, role in ROLES.items():
                typed[col] = SCALAR[role](record[col])
        except ValueError:
            bad[i] = True
            continue
        rows[i] = encoder.encode(typed)
    return rows, bad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_record_encoder_equals_tabular_encoder_on_random_records(seed):
    rng = np.random.default_rng(seed)
    encoder = TabularEncoder(ROLES).fit(training_frame(rng))
    assert encoder.levels_["device"] == ["mobile", "desktop", "tablet"]  # "tv" was rare
    assert encoder.datetime_parts_["last_seen"][-1] == "hour"
    n = 1500
    raw = pd.DataFrame(
        {
            col: pd.Series([random_cell(rng, role, col) for _ in range(n)], dtype=object)
            for col, role in ROLES.items()
        }
    )
    quarantine = Quarantine(n)
    typed = coerce_features(raw, ROLES, quarantine)
    expected = encoder.transform(typed)
    rows, bad = record_path(raw, RecordEncoder(encoder))
    np.testing.assert_array_equal(bad, quarantine.bad)
    assert 0 < bad.sum() < n  # the mix really contains bad and good rows
    np.testing.assert_array_equal(rows[~bad], expected[~bad])  # NaN == NaN here, bit-exact otherwise
    # The mix covered what it should: missing cells, unseen and rare levels, several datetime shapes.
    good = ~bad
    assert np.isnan(expected[good]).any(axis=0).all()
    other = float(len(encoder.levels_["device"]))
    assert (expected[good, encoder.output_names_.index("device")] == other).sum() > 20


def test_unknown_categories_are_named():
    encoder = TabularEncoder(ROLES).fit(training_frame(np.random.default_rng(0)))
    rec = RecordEncoder(encoder)
    assert rec.unknown_categories({"device": "smart-fridge", "tier": "2"}) == ["device"]
    assert rec.unknown_categories({"device": None}) == []


def test_scalar_datetime_fast_path_matches_pandas_on_iso_texts():
    for text in ("2023-01-05T10:00:00+02:00", "2023-06-30", "2023-01-05 07:08:09.5"):
        fast = datetime_value(text)
        slow = pd.to_datetime(pd.Series([text]), utc=True, format="mixed").dt.tz_localize(None).iloc[0]
        assert fast == slow.to_pydatetime()
    with pytest.raises(ValueError, match="not a date/time"):
        datetime_value("0001-01-01")  # valid ISO, but outside what pandas (and so batch scoring) accepts


def test_row_predictor_equals_batch_prediction(trained, customer_table):
    model, _ = trained
    pipeline = model.pipeline
    prepared = model.prepare(customer_table.head(300))
    X = pipeline.encoder.transform(prepared.features)
    predictor = RowPredictor(pipeline)
    singles = np.array([predictor(row) for row in X])
    # A linear model's one-row matrix product may sum in another order than the 300-row one
    # (BLAS), so the generic route agrees to the last few bits; LightGBM is exact (below).
    np.testing.assert_allclose(singles, pipeline.proba_encoded(X), rtol=0, atol=1e-12)


def test_row_predictor_lightgbm_fast_path_is_exact(trained, customer_table):
    from propensity.pipeline import ScoringPipeline

    model, _ = trained
    lgbm = next(c for c in model.manifest.candidates if c.name == "lightgbm")
    assert lgbm.error is None
    # Build a LightGBM pipeline on the same encoder (the winner may be the linear model).
    import lightgbm

    encoder = model.pipeline.encoder
    prepared = model.prepare(customer_table)
    X = encoder.transform(prepared.features)
    y = customer_table["purchased"].to_numpy()
    est = lightgbm.LGBMClassifier(n_estimators=60, num_threads=1, verbose=-1).fit(
        X, y, categorical_feature=encoder.categorical_outputs_
    )
    pipeline = ScoringPipeline(encoder, est, model.pipeline.calibrator, family="lightgbm")
    predictor = RowPredictor(pipeline)
    assert predictor.route == "lightgbm-single-row"
    X[::7, 0] = np.nan
    singles = np.array([predictor(row) for row in X[:500]])
    np.testing.assert_array_equal(singles, pipeline.proba_encoded(X[:500]))
