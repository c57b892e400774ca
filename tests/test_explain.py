"""Per-row contributions for every model family, and the reason codes built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import propensity
from propensity.errors import DataError, PropensityWarning, SchemaError
from propensity.explain import explain, format_reason, reason_codes, reason_columns
from propensity.manifest import FeatureSpec

FAMILIES = ["logistic_regression", "random_forest", "lightgbm", "xgboost"]


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, customer_table):
    if request.param == "xgboost":
        pytest.importorskip("xgboost", reason="xgboost (the 'xgboost' extra) is not installed")
    model = propensity.train(
        customer_table.head(1500), target="purchased", candidates=[request.param], folds=3, seed=1
    ).model
    assert model.pipeline.family == request.param
    return model


def _rows(model, customer_table, n):
    # Rows the model never saw, with a missing age among them (the model's missing-value path).
    rows = customer_table.iloc[2000 : 2000 + n].copy()
    rows.iloc[0, rows.columns.get_loc("age")] = np.nan
    return rows


def test_contributions_sum_to_the_raw_log_odds(family_model, customer_table):
    model = family_model
    rows = _rows(model, customer_table, 40 if model.pipeline.family == "random_forest" else 300)
    ex = explain(model, rows)
    assert ex.features == model.features  # input columns, not encoded parts (signup_date__month ...)
    assert ex.values.shape == (len(rows), len(model.features))
    np.testing.assert_allclose(ex.base + ex.values.sum(axis=1), ex.raw, atol=1e-9)
    # ... and the raw log-odds are the model's own uncalibrated output, computed independently.
    X = model.pipeline.encoder.transform(model.prepare(rows).features)
    raw_p = model.pipeline.raw_proba_encoded(X)
    if model.pipeline.family == "random_forest":
        raw_p = np.clip(raw_p, 1e-4, 1 - 1e-4)
    tol = 2e-5 if model.pipeline.family == "xgboost" else 1e-7  # xgboost sums in float32
    np.testing.assert_allclose(ex.raw, _logit(raw_p), atol=tol)
    # Calibrating sigmoid(raw) gives exactly what the model returns.
    np.testing.assert_allclose(
        model.pipeline.calibrator(1 / (1 + np.exp(-ex.raw))), model.predict_proba(rows), atol=1e-5
    )
    assert np.all(ex.base == ex.base[0])
    assert np.abs(ex.values).sum(axis=0).max() > 0


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer")
@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_tree_contributions_equal_shap_tree_explainer(family, customer_table):
    if family == "xgboost":
        pytest.importorskip("xgboost")
    shap = pytest.importorskip("shap")
    model = propensity.train(
        customer_table.head(1200), target="purchased", candidates=[family], folds=3, seed=2
    ).model
    rows = customer_table.iloc[2000:2200]
    ex = explain(model, rows)
    X = model.pipeline.encoder.transform(model.prepare(rows).features)
    phi = np.asarray(shap.TreeExplainer(model.pipeline.estimator).shap_values(X))
    if phi.ndim == 3:
        phi = phi[:, :, 1]
    # shap works per encoded column; sum the datetime parts back into their column
    names = model.pipeline.encoder.output_names_
    by_feature = np.column_stack(
        [
            phi[:, [i for i, n in enumerate(names) if n == f or n.startswith(f + "__")]].sum(axis=1)
            for f in ex.features
        ]
    )
    np.testing.assert_allclose(ex.values, by_feature, atol=1e-4 if family == "xgboost" else 1e-8)


def test_datetime_parts_are_summed_into_their_column(customer_table):
    model = propensity.train(
        customer_table.head(1200), target="purchased", candidates=["lightgbm"], folds=3, seed=2
    ).model
    rows = customer_table.iloc[2000:2050]
    X = model.pipeline.encoder.transform(model.prepare(rows).features)
    contrib = model.pipeline.estimator.booster_.predict(X, pred_contrib=True)
    parts = [i for i, n in enumerate(model.pipeline.encoder.output_names_) if n.startswith("signup_date__")]
    assert len(parts) >= 4
    ex = explain(model, rows)
    np.testing.assert_allclose(ex.frame()["signup_date"], contrib[:, parts].sum(axis=1))


def test_linear_contributions_are_local(customer_table):
    """Linear SHAP: changing one input changes only that input's contribution, by the change in log-odds."""
    model = propensity.train(
        customer_table.head(1500), target="purchased", candidates=["logistic_regression"], folds=3, seed=1
    ).model
    row = customer_table.iloc[[2100]].copy()
    other = row.copy()
    other["cart_adds_30d"] = row["cart_adds_30d"].iloc[0] + 4
    a, b = explain(model, row), explain(model, other)
    delta = b.values[0] - a.values[0]
    j = a.features.index("cart_adds_30d")
    assert delta[j] > 0.1  # more cart adds -> more likely to buy (the generator's truth)
    np.testing.assert_allclose(np.delete(delta, j), 0.0, atol=1e-12)
    assert b.raw[0] - a.raw[0] == pytest.approx(delta[j])
    np.testing.assert_allclose(a.base, b.base)


@pytest.mark.parametrize(
    ("spec", "value", "contribution", "text"),
    [
        (
            FeatureSpec(name="PageValues", role="numeric", dtype="float64", required=True, missing_share=0),
            38.2,
            1.1,
            "PageValues = 38.2 (+1.10)",
        ),
        (
            FeatureSpec(name="PageValues", role="numeric", dtype="float64", required=True, missing_share=0),
            0.01234,
            -0.3,
            "PageValues = 0.0123 (−0.30)",
        ),
        (
            FeatureSpec(
                name="Administrative_Duration",
                role="numeric",
                dtype="float64",
                required=True,
                missing_share=0,
            ),
            1234.56,
            0.2,
            "Administrative_Duration = 1234.6 (+0.20)",
        ),
        (
            FeatureSpec(
                name="dsl_cart",
                role="numeric",
                dtype="float64",
                required=False,
                missing_share=0.2,
                description="days since last add to cart",
            ),
            2.0,
            0.41,
            "last add to cart 2 days ago (+0.41)",
        ),
        (
            FeatureSpec(
                name="dsl_view",
                role="numeric",
                dtype="float64",
                required=False,
                missing_share=0.0,
                description="days since last view",
            ),
            0.0851,
            0.35,
            "last view 2 hours ago (+0.35)",
        ),
        (
            FeatureSpec(
                name="dsl_cart",
                role="numeric",
                dtype="float64",
                required=False,
                missing_share=0.2,
                description="days since last add to cart",
            ),
            1.0,
            0.41,
            "last add to cart 1 day ago (+0.41)",
        ),
        (
            FeatureSpec(
                name="dsl_cart",
                role="numeric",
                dtype="float64",
                required=False,
                missing_share=0.2,
                description="days since last add to cart",
            ),
            0.0,
            0.9,
            "last add to cart today (+0.90)",
        ),
        (
            FeatureSpec(
                name="dsl_cart",
                role="numeric",
                dtype="float64",
                required=False,
                missing_share=0.2,
                description="days since last add to cart",
            ),
            np.nan,
            -0.5,
            "no last add to cart recorded (−0.50)",
        ),
        (
            FeatureSpec(
                name="dsl_visit",
                role="numeric",
                dtype="float64",
                required=True,
                missing_share=0,
                description="no visit in {value} days",
            ),
            45.0,
            -0.3,
            "no visit in 45 days (−0.30)",
        ),
        (
            FeatureSpec(
                name="ppv",
                role="numeric",
                dtype="float64",
                required=True,
                missing_share=0,
                description="pages per visit",
            ),
            4.25,
            0.12,
            "pages per visit: 4.25 (+0.12)",
        ),
        (
            FeatureSpec(name="newsletter", role="boolean", dtype="object", required=True, missing_share=0),
            1.0,
            0.28,
            "newsletter = yes (+0.28)",
        ),
        (
            FeatureSpec(
                name="VisitorType", role="categorical", dtype="object", required=True, missing_share=0
            ),
            "New_Visitor",
            0.35,
            "VisitorType = New_Visitor (+0.35)",
        ),
        (
            FeatureSpec(name="age", role="numeric", dtype="float64", required=False, missing_share=0.05),
            np.nan,
            -0.02,
            "age missing (−0.02)",
        ),
        (
            FeatureSpec(name="signup_date", role="datetime", dtype="object", required=True, missing_share=0),
            pd.Timestamp("2023-04-01"),
            0.05,
            "signup_date = 2023-04-01 (+0.05)",
        ),
    ],
)
def test_reason_text(spec, value, contribution, text):
    assert format_reason(spec.name, value, contribution, spec) == text


def test_reason_codes_are_the_strongest_contributions(trained, customer_table):
    model, _ = trained
    rows = customer_table.iloc[100:160]
    ex = explain(model, rows)
    reasons = reason_codes(model, rows, k=3)
    assert len(reasons) == len(rows)
    for i, row in enumerate(reasons):
        assert 1 <= len(row) <= 3
        mags = [abs(r.contribution) for r in row]
        assert mags == sorted(mags, reverse=True)
        strongest = np.sort(np.abs(ex.values[i]))[::-1][: len(row)]
        np.testing.assert_allclose(mags, strongest)
        for r in row:
            assert r.contribution == pytest.approx(ex.values[i, ex.features.index(r.feature)])
            sign = "+" if r.contribution >= 0 else "−"
            assert r.text.endswith(f"({sign}{abs(r.contribution):.2f})")
            assert r.text.startswith(r.feature)  # no descriptions in this table: "name = value"


def test_reason_codes_use_feature_descriptions(customer_table):
    model = propensity.train(
        customer_table.head(1500),
        target="purchased",
        candidates=["lightgbm"],
        folds=3,
        seed=1,
        descriptions={
            "days_since_last_visit": "days since last visit",
            "cart_adds_30d": "{value} cart adds in 30 days",
        },
    ).model
    assert model.manifest.feature("days_since_last_visit").description == "days since last visit"
    rows = customer_table.iloc[2000:2400]
    texts = [r.text for row in reason_codes(model, rows, k=len(model.features)) for r in row]
    visit = [t for t in texts if t.startswith("last visit ")]
    carts = [t for t in texts if " cart adds in 30 days (" in t]
    assert visit and all(" ago (" in t or " today (" in t for t in visit)
    assert carts and not any(t.startswith("cart_adds_30d") for t in texts)


def test_reason_columns_match_reason_codes(trained, customer_table):
    model, _ = trained
    rows = customer_table.iloc[:50]
    cols = reason_columns(model, model.prepare(rows).features, 2)
    assert list(cols.columns) == ["reason_1", "reason_2"]
    expected = [[r.text for r in row] for row in reason_codes(model, rows, k=2)]
    assert cols["reason_1"].tolist() == [row[0] if row else "" for row in expected]
    assert cols["reason_2"].tolist() == [row[1] if len(row) > 1 else "" for row in expected]


def test_reasons_directional_on_cart_adds(trained, customer_table):
    """The synthetic shop's truth: a customer who added to cart never gets a lower cart contribution."""
    model, _ = trained
    rows = customer_table.iloc[:200].copy()
    none, many = rows.assign(cart_adds_30d=0), rows.assign(cart_adds_30d=5)
    j = model.features.index("cart_adds_30d")
    a, b = explain(model, none).values[:, j], explain(model, many).values[:, j]
    assert (b >= a - 1e-9).all() and (b - a).mean() > 0.3


def test_explain_validates_its_input(trained, customer_table):
    model, _ = trained
    with pytest.raises(SchemaError, match="'visits_30d'"):
        explain(model, customer_table.drop(columns=["visits_30d"]).head(3))
    bad = customer_table.head(3).astype({"visits_30d": object})
    bad.loc[1, "visits_30d"] = "lots"
    with pytest.raises(DataError, match="row 2 column 'visits_30d'"):
        reason_codes(model, bad)
    with pytest.raises(ValueError, match="'k' parameter"):
        reason_codes(model, customer_table.head(2), k=0)
    empty = explain(model, customer_table.head(0))
    assert empty.values.shape == (0, len(model.features))


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_fast_treeshap_equals_the_library_on_large_batches(family, customer_table):
    """Large batches use propensity's O(leaves × depth) TreeSHAP; it must equal the library's own values."""
    if family == "xgboost":
        xgb = pytest.importorskip("xgboost")
    pytest.importorskip("numba")
    from propensity import explain as explain_module

    model = propensity.train(
        customer_table.head(1500), target="purchased", candidates=[family], folds=3, seed=4
    ).model
    rows = pd.concat([customer_table] * 2, ignore_index=True).head(explain_module.FAST_TREESHAP_ROWS + 500)
    rows.loc[::7, "device"] = None  # missing category
    rows.loc[::11, "channel"] = "carrier_pigeon"  # unseen category -> "other" code
    rows.loc[::5, "age"] = np.nan
    rows.loc[::13, "cart_adds_30d"] = 0.0
    ex = explain(model, rows)
    est = model.pipeline.estimator
    assert explain_module._FAST.get(est) is not None, "the fast path did not run"
    X = model.pipeline.encoder.transform(model.prepare(rows).features)
    if family == "lightgbm":
        ref = est.booster_.predict(X, pred_contrib=True)
    else:
        ref = est.get_booster().predict(xgb.DMatrix(X, missing=np.nan), pred_contribs=True)
    names = model.pipeline.encoder.output_names_
    by_feature = np.column_stack(
        [
            ref[:, [i for i, n in enumerate(names) if n == f or n.startswith(f + "__")]].sum(axis=1)
            for f in ex.features
        ]
    )
    tol = 1e-5 if family == "xgboost" else 1e-9  # xgboost's own routine sums in float32
    np.testing.assert_allclose(ex.values, by_feature, atol=tol)
    np.testing.assert_allclose(ex.base, ref[:, -1], atol=tol)
    np.testing.assert_allclose(ex.raw, ref.sum(axis=1), atol=tol * 10)


def test_fast_treeshap_on_trees_with_more_than_63_splits():
    """Trees with more splits than one 63-bit decision word (tuned LightGBM, XGBoost deeper than 6)."""
    lgb = pytest.importorskip("lightgbm")
    pytest.importorskip("numba")
    from propensity.kernels.shap import FastTreeShap
    from propensity.kernels.trees import lightgbm_trees

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[::10, 2] = np.nan
    y = (X[:, 0] + np.sin(3 * X[:, 1]) + rng.normal(size=3000) > 0).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 100,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=5)
    trees = lightgbm_trees(booster)
    assert max(len(t.nodes) for t in trees) > 63
    fast = FastTreeShap.build(trees)
    assert fast is not None
    values, base = fast.shap_values(X, 2)
    ref = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(values, ref[:, :-1], atol=1e-9)
    assert base == pytest.approx(ref[0, -1])


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_fast_tree_predictor_equals_the_library_margin(family, customer_table):
    """Batch scoring walks LightGBM's trees itself; margins must equal the library's (missing values, categories)."""
    if family == "xgboost":
        xgb = pytest.importorskip("xgboost")
    pytest.importorskip("numba")
    from propensity import pipeline as pipeline_module
    from propensity.kernels.predict import FastTreePredictor
    from propensity.kernels.trees import lightgbm_trees, xgboost_trees

    model = propensity.train(
        customer_table.head(1500), target="purchased", candidates=[family], folds=3, seed=5
    ).model
    rows = pd.concat([customer_table] * 8, ignore_index=True).head(pipeline_module.FAST_PREDICT_ROWS + 10)
    rows.loc[::7, "device"] = None
    rows.loc[::11, "channel"] = "carrier_pigeon"
    rows.loc[::5, "age"] = np.nan
    X = model.pipeline.encoder.transform(model.prepare(rows).features)
    est = model.pipeline.estimator
    if family == "lightgbm":
        fast = FastTreePredictor.build(lightgbm_trees(est.booster_))
        np.testing.assert_array_equal(fast.margin(X, 2), est.booster_.predict(X, raw_score=True))
        # and batch scoring takes this route, with LightGBM's probabilities
        np.testing.assert_allclose(
            model.pipeline.raw_proba_encoded(X), est.booster_.predict(X), rtol=0, atol=1e-15
        )
        assert pipeline_module._TREE_PREDICTORS.get(est) is not None, "the fast path did not run"
    else:
        trees, margin = xgboost_trees(est.get_booster())
        ref = est.get_booster().predict(xgb.DMatrix(X, missing=np.nan), output_margin=True)
        np.testing.assert_allclose(FastTreePredictor.build(trees, margin).margin(X, 2), ref, atol=1e-5)


@pytest.mark.parametrize(
    ("params", "layout"),
    [
        ({}, "leaf_masks"),
        ({"zero_as_missing": True}, "leaf_masks"),
        ({"num_leaves": 100, "min_child_samples": 5}, "walk"),
    ],
)
def test_fast_tree_predictor_matches_lightgbm_bit_for_bit(params, layout):
    """Leaf-bitmask and walking kernels: NaN/zero missing rules, categories past code 64, big trees."""
    lgb = pytest.importorskip("lightgbm")
    pytest.importorskip("numba")
    from propensity.kernels.predict import FastTreePredictor
    from propensity.kernels.trees import lightgbm_trees

    rng = np.random.default_rng(3)
    n = 6000
    X = rng.normal(size=(n, 5))
    X[rng.random(n) < 0.2, 0] = 0.0
    X[rng.random(n) < 0.15, 1] = np.nan
    X[:, 4] = rng.integers(0, 150, size=n)  # a categorical column with codes well past 64
    y = X[:, 0] + np.nan_to_num(X[:, 1]) * X[:, 2] + (X[:, 4] % 7 == 3) + rng.normal(size=n) > 0.5
    model = lgb.LGBMClassifier(
        n_estimators=40, verbose=-1, n_jobs=1, min_data_per_group=5, cat_smooth=1, **params
    ).fit(X, y.astype(int), categorical_feature=[4])
    test = rng.normal(size=(3000, 5))
    test[::3, 0] = 0.0
    test[::4, 1] = np.nan
    test[::5, 2] = np.nan
    test[:, 4] = rng.integers(-2, 170, size=3000)  # negative and unseen codes go right
    test[::6, 4] = np.nan
    test[::13, 4] = 3.7  # LightGBM truncates a fractional code
    ref = model.booster_.predict(test, raw_score=True)
    for fast in (
        FastTreePredictor.build(lightgbm_trees(model.booster_)),  # from the JSON dump (as SHAP reads it)
        FastTreePredictor.from_lightgbm(model.booster_),  # from the text model (as batch scoring reads it)
    ):
        assert fast.layout == layout
        np.testing.assert_array_equal(fast.margin(test, 2), ref)
        np.testing.assert_array_equal(fast.margin(np.asfortranarray(test), 1), ref)


def test_forest_path_attribution_equals_shap_approximate():
    """The numba path attribution of a forest gives shap's approximate=True figures (NaN routing included)."""
    shap = pytest.importorskip("shap")
    pytest.importorskip("numba")
    from sklearn.ensemble import RandomForestClassifier

    from propensity.kernels.shap import ForestPathAttribution

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 6))
    X[::7, 1] = np.nan
    X[:, 5] = rng.integers(0, 4, 4000)
    y = (X[:, 0] + np.nan_to_num(X[:, 1]) * X[:, 2] + rng.normal(size=4000) > 0).astype(int)
    forest = RandomForestClassifier(
        n_estimators=30, min_samples_leaf=3, class_weight="balanced_subsample", random_state=0
    ).fit(X, y)
    test = rng.normal(size=(2500, 6))
    test[::5, 1] = np.nan
    test[::3, 4] = np.nan  # missing where training never was
    phi, base = ForestPathAttribution.build(forest).values(test, 2)
    explainer = shap.TreeExplainer(forest)
    ref = np.asarray(explainer.shap_values(test, approximate=True, check_additivity=False))
    ref = ref[:, :, 1] if ref.ndim == 3 else ref
    np.testing.assert_allclose(phi, ref, atol=1e-12)
    np.testing.assert_allclose(base + phi.sum(axis=1), forest.predict_proba(test)[:, 1], atol=1e-12)


def test_fast_treeshap_on_full_depth_six_xgboost_trees():
    """Depth-6 trees have 63 splits: exactly one decision word, the kernel's fast path."""
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("numba")
    from propensity.kernels.shap import FastTreeShap
    from propensity.kernels.trees import xgboost_trees

    rng = np.random.default_rng(1)
    X = rng.normal(size=(20000, 8))
    X[::9, 3] = np.nan
    y = (X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + rng.normal(size=20000) > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=6, min_child_weight=0, gamma=0, n_jobs=1).fit(X, y)
    trees, margin = xgboost_trees(model.get_booster())
    assert max(len(t.nodes) for t in trees) == 63
    fast = FastTreeShap.build(trees, margin)
    assert fast is not None and fast.arrays["slot_mask"].shape[1] == 1
    values, base = fast.shap_values(X, 2)
    ref = model.get_booster().predict(xgb.DMatrix(X, missing=np.nan), pred_contribs=True)
    np.testing.assert_allclose(values, ref[:, :-1], atol=1e-5)
    assert base == pytest.approx(float(ref[0, -1]), abs=1e-5)


def test_large_forest_batches_use_additive_path_attribution(customer_table, monkeypatch):
    """Forests explain large batches by path attribution: still additive, and close to exact SHAP."""
    pytest.importorskip("shap")
    from propensity import explain as explain_module

    model = propensity.train(
        customer_table.head(1500), target="purchased", candidates=["random_forest"], folds=3, seed=2
    ).model
    rows = customer_table.head(60)
    exact = explain(model, rows)
    monkeypatch.setattr(explain_module, "FAST_TREESHAP_ROWS", 50)
    approx = explain(model, rows)
    assert not np.allclose(approx.values, exact.values)  # a different method ran ...
    np.testing.assert_allclose(approx.base + approx.values.sum(axis=1), approx.raw, atol=1e-9)
    np.testing.assert_allclose(approx.raw, exact.raw, atol=1e-9)  # ... on the same predictions
    top_exact = np.abs(exact.values).argmax(axis=1)
    top_approx = np.abs(approx.values).argmax(axis=1)
    assert (top_exact == top_approx).mean() >= 0.6


def test_score_file_explains_every_chunk_of_a_forest_job_the_same_way(customer_table, tmp_path, monkeypatch):
    """A file's last, small chunk is not switched to (slow) exact SHAP: the method is decided once per job."""
    pytest.importorskip("shap")
    pytest.importorskip("numba")
    from propensity import explain as explain_module

    model = propensity.train(
        customer_table.head(1500), target="purchased", candidates=["random_forest"], folds=3, seed=2
    ).model
    rows = pd.concat([customer_table] * 3, ignore_index=True).head(2500)
    rows["customer_id"] = [f"c{i}" for i in range(len(rows))]
    path = tmp_path / "rows.parquet"
    rows.drop(columns=["purchased"]).to_parquet(path)

    def no_exact_shap(est):
        raise AssertionError("exact SHAP ran on a chunk of a path-attribution job")

    monkeypatch.setattr(explain_module, "_tree_explainer", no_exact_shap)
    with pytest.warns(PropensityWarning, match="path attribution"):
        summary = propensity.score_file(model, path, tmp_path / "out.csv", reasons=2, batch_rows=2000)
    out = pd.read_csv(tmp_path / "out.csv")
    assert summary.rows_scored == 2500 and out["reason_1"].notna().all()


def test_fast_tree_predictor_of_an_early_stopped_model_uses_its_best_iteration():
    """Cross-validation predicts early-stopped fold models with the kernel: as many trees as LightGBM uses."""
    lgb = pytest.importorskip("lightgbm")
    pytest.importorskip("numba")
    from propensity.kernels.predict import FastTreePredictor
    from propensity.pipeline import positive_proba

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30000, 6))
    y = (X[:, 0] + 2 * rng.normal(size=30000) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=500, learning_rate=0.3, verbose=-1, n_jobs=1)
    model.fit(
        X[:20000],
        y[:20000],
        eval_X=(X[20000:],),
        eval_y=(y[20000:],),
        callbacks=[lgb.early_stopping(10, verbose=False)],
    )
    assert model.best_iteration_ < 500
    fast = FastTreePredictor.from_lightgbm(model.booster_)
    np.testing.assert_array_equal(fast.margin(X, 2), model.booster_.predict(X, raw_score=True))
    np.testing.assert_allclose(positive_proba(model, X, 2), model.predict_proba(X)[:, 1], rtol=0, atol=1e-15)


def test_preloading_the_batch_kernel_needs_no_model_and_runs_once():
    """score_file starts loading the tree kernel before the bundle: one background thread per process."""
    pytest.importorskip("numba")
    from propensity import pipeline as pipeline_module
    from propensity.kernels._numba_predict import margin_leaf_masks

    pipeline_module.preload_batch_kernel()
    pipeline_module.preload_batch_kernel()
    assert len(pipeline_module._KERNEL_PRELOAD) == 1
    pipeline_module._KERNEL_PRELOAD[0].join(timeout=120)
    assert any(sig[0].layout == "F" for sig in margin_leaf_masks.signatures)
