from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from propensity.errors import DataError, InsufficientDataError, SchemaError
from propensity.schema import Quarantine, Role, coerce_features, infer_roles, load_roles_file, parse_target


@pytest.fixture
def mixed() -> pd.DataFrame:
    n = 60
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * (n // 2))
    return pd.DataFrame(
        {
            "cust_id": [f"K{i:04d}" for i in range(n)],
            "age": rng.integers(18, 80, n).astype(float),
            "member": np.where(rng.random(n) < 0.5, "yes", "no"),
            "flag01": rng.integers(0, 2, n),
            "city": rng.choice(["Leeds", "York", "Bath"], n),
            "RegionCode": rng.integers(1, 6, n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "comment": [f"this is a long free text comment number {i}" for i in range(n)],
            "constant": "same",
            "empty": [None] * n,
            "bought_flag": y,  # named like the target -> leak
            "refund_amount": y * 10.0 + 1,  # separates the target perfectly -> leak
            "bought": y,
        }
    )


def test_roles_are_inferred_with_reasons(mixed):
    y, _ = parse_target(mixed["bought"])
    roles = infer_roles(mixed, "bought", y=y)
    got = {c.name: c.role for c in roles.columns}
    assert got == {
        "cust_id": Role.ID,
        "age": Role.NUMERIC,
        "member": Role.BOOLEAN,
        "flag01": Role.NUMERIC,
        "city": Role.CATEGORICAL,
        "RegionCode": Role.CATEGORICAL,
        "signup": Role.DATETIME,
        "comment": Role.TEXT,
        "constant": Role.CONSTANT,
        "empty": Role.EMPTY,
        "bought_flag": Role.LEAK,
        "refund_amount": Role.LEAK,
        "bought": Role.TARGET,
    }
    assert roles.id_column == "cust_id"
    assert "resembles the target" in roles["bought_flag"].note
    assert "separates the target" in roles["refund_amount"].note
    assert set(roles.features) == {"age", "member", "flag01", "city", "RegionCode", "signup"}


def test_overrides_and_id_option_win(mixed, tmp_path):
    y, _ = parse_target(mixed["bought"])
    path = tmp_path / "roles.yaml"
    path.write_text("id: cust_id\ncolumns:\n  RegionCode: numeric\n  refund_amount: numeric\n")
    overrides, id_col = load_roles_file(path)
    roles = infer_roles(mixed, "bought", id_column=id_col, overrides=overrides, y=y)
    assert roles["RegionCode"].role is Role.NUMERIC and roles["RegionCode"].source == "override"
    assert roles["refund_amount"].role is Role.NUMERIC  # an explicit override is not second-guessed


def test_roles_file_errors_are_clear(tmp_path):
    path = tmp_path / "roles.yaml"
    path.write_text("age: numbr\n")
    with pytest.raises(DataError, match="'numbr', which is not one of"):
        load_roles_file(path)


def test_unknown_target_suggests_close_names(mixed):
    with pytest.raises(SchemaError, match="Did you mean 'bought'"):
        infer_roles(mixed, "Bought_")


def test_missing_separation_is_a_leak():
    n = 80
    y = np.array([0, 1] * (n // 2))
    frame = pd.DataFrame({"cancel_date": np.where(y == 1, "2024-01-01", None), "x": np.arange(n) % 7, "t": y})
    roles = infer_roles(frame, "t", y=y)
    assert roles["cancel_date"].role is Role.LEAK
    assert "missing" in roles["cancel_date"].note


@pytest.mark.parametrize(
    ("values", "positive", "negative"),
    [
        ([True, False, True, False], "TRUE", "FALSE"),
        (["yes", "no", "no", "no"], "yes", "no"),
        ([1, 0, 0, 0], "1", "0"),
        (["churned", "active", "active", "active"], "churned", "active"),  # rarer value is positive
    ],
)
def test_target_positive_class(values, positive, negative):
    y, spec = parse_target(pd.Series(values * 5, name="t"))
    assert (spec.positive, spec.negative) == (positive, negative)
    assert set(np.unique(y)) == {0, 1}


def test_missing_and_rare_target_values_are_quarantined():
    values = [0, 1] * 200 + [None, 2]
    q = Quarantine(len(values))
    y, _spec = parse_target(pd.Series(values, name="t"), quarantine=q)
    assert (y == -1).sum() == 2
    assert q.counts_by_reason() == {
        "missing target": 1,
        "target value is not one of the two classes ['0', '1']": 1,
    }
    frame = q.to_frame()
    assert frame["row"].tolist() == [401, 402]


def test_three_classes_and_one_class_are_errors():
    with pytest.raises(SchemaError, match="3 classes.*--positive"):
        parse_target(pd.Series(["a", "b", "c"] * 10, name="t"))
    with pytest.raises(InsufficientDataError, match="single class"):
        parse_target(pd.Series([1] * 10, name="t"))
    y, spec = parse_target(pd.Series(["a", "b", "c"] * 10, name="t"), positive="c")
    assert y.sum() == 10 and "one-vs-rest" in spec.note


def test_coercion_quarantines_junk_cells_with_row_and_reason():
    frame = pd.DataFrame(
        {
            "n": ["1", "2.5", "abc", None, "inf"],
            "b": ["yes", "no", "maybe", "1", None],
            "d": ["2024-01-01", "not a date", "2024-02-03", None, "2024-03-04 10:00"],
            "c": [1, 2.0, "3", None, "x"],
        }
    )
    q = Quarantine(len(frame))
    typed = coerce_features(
        frame, {"n": Role.NUMERIC, "b": Role.BOOLEAN, "d": Role.DATETIME, "c": Role.CATEGORICAL}, q
    )
    rows = q.to_frame()
    assert set(map(tuple, rows[["row", "column", "reason"]].to_numpy())) == {
        (3, "n", "not a number"),
        (5, "n", "not a number"),
        (3, "b", "not a yes/no (true/false, 1/0) value"),
        (2, "d", "not a date/time"),
    }
    assert q.bad.tolist() == [False, True, True, False, True]
    assert typed["c"].tolist()[:3] == ["1", "2", "3"]  # 1, 2.0 and "3" are the same category
    assert typed["b"].tolist()[:2] == [1.0, 0.0]


def test_category_text_of_whole_floats_beyond_int64_does_not_crash():
    from propensity.schema import category_text

    text = category_text(pd.Series([1e308, 2.0, np.nan])).tolist()  # found by the CLI fuzz tests
    assert text[1] == "2" and text[0].startswith("1000") and pd.isna(text[2])
    assert category_text(pd.Series([1.0, -3.0, np.nan])).tolist()[:2] == ["1", "-3"]
