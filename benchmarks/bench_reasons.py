"""Reason codes for 100,000 rows (target ≤ 10 s), against scoring alone and the libraries' SHAP.

Data: the seeded synthetic customer table — the model is trained on 20,000 customers and
explains 100,000 *other* customers (all distinct rows; resampling a small public table would
repeat rows and flatter any cache). Models use the default settings with ``n_jobs`` = 2.
Figures per family:

- ``reasons_100k_<family>_seconds``: ``propensity.explain.reason_codes(model, rows, k=3)``,
  validation and text included; baseline = ``model.predict_proba`` on the same rows (how
  many times dearer explaining is than scoring);
- ``reasons_<family>_rows_per_second`` vs the library's own exact contributions
  (LightGBM ``pred_contrib`` / XGBoost ``pred_contribs``, on 10,000 rows) and vs
  ``shap.TreeExplainer.shap_values`` (5,000 rows);
- random forest (full run only): batches of 2,000+ rows are explained by path attribution
  (Saabas) — exact tree SHAP on 300 deep trees is ~50 ms per row — so it runs on all 100,000.

    python -m benchmarks.bench_reasons          # full
    python -m benchmarks.bench_reasons --quick  # LightGBM and logistic regression
"""

from __future__ import annotations

import os
import sys
import time
import warnings

from benchmarks._common import Figure, emit, speed_ratio

QUICK = True
ROWS = 100_000
COMMAND = "python -m benchmarks.bench_reasons"


def _data():
    from propensity.datasets import make_customer_table

    train = make_customer_table(20_000, seed=7)
    rows = make_customer_table(ROWS, seed=8).drop(columns=["purchased"])
    return train, rows, "purchased", "synthetic customer table (train 20k, explain 100k distinct)"


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _library_contrib(model, X):
    est = model.pipeline.estimator
    if model.pipeline.family == "lightgbm":
        return est.booster_.predict(X, pred_contrib=True, num_threads=2)
    import xgboost as xgb

    return est.get_booster().predict(xgb.DMatrix(X, missing=float("nan"), nthread=2), pred_contribs=True)


def run(quick: bool) -> list[Figure]:
    os.environ.setdefault("PROPENSITY_N_JOBS", "2")
    import propensity
    from propensity.explain import reason_codes

    train, rows, target, label = _data()
    families = ["lightgbm", "logistic_regression"]
    if not quick:
        families += ["xgboost", "random_forest"]
    figures: list[Figure] = []
    for family in families:
        if family == "xgboost":
            try:
                import xgboost  # noqa: F401
            except ImportError:
                continue
        model = propensity.train(train, target=target, candidates=[family], seed=0).model
        params = {
            "family": family,
            "rows": ROWS,
            "k": 3,
            "data": label,
            "n_jobs": int(os.environ["PROPENSITY_N_JOBS"]),
        }
        reason_codes(model, rows.head(3000), k=3)  # compile/cache the numba kernels outside the timing
        _, base = _timed(model.predict_proba, rows)
        reasons, seconds = _timed(reason_codes, model, rows, k=3)
        assert len(reasons) == ROWS and all(reasons[i] for i in range(0, ROWS, 997))
        figures.append(
            Figure(
                name=f"reasons_100k_{family}_seconds",
                value=round(seconds, 3),
                unit="s",
                better="lower",
                baseline=round(base, 3),
                baseline_name="predict_proba on the same rows",
                ratio=round(speed_ratio(seconds, base, "lower"), 4),
                target=10.0,
                note=f"{ROWS / seconds:,.0f} rows/s; e.g. '{reasons[0][0].text}'"
                + ("; path attribution (Saabas), not exact SHAP" if family == "random_forest" else ""),
                params=params,
                command=COMMAND,
            )
        )
        if family in ("lightgbm", "xgboost"):
            X = model.pipeline.encoder.transform(model.prepare(rows.head(10_000)).features)
            _, lib_seconds = _timed(_library_contrib, model, X)
            figures.append(
                Figure(
                    name=f"reasons_{family}_rows_per_second",
                    value=round(ROWS / seconds, 1),
                    unit="rows/s",
                    better="higher",
                    baseline=round(len(X) / lib_seconds, 1),
                    baseline_name=f"{family}'s own exact contributions, rows/s (values only, 10,000 rows)",
                    ratio=round(speed_ratio(ROWS / seconds, len(X) / lib_seconds, "higher"), 3),
                    params=params,
                    command=COMMAND,
                )
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import shap

                explainer = shap.TreeExplainer(model.pipeline.estimator)
                _, shap_seconds = _timed(explainer.shap_values, X[:5000])
            figures.append(
                Figure(
                    name=f"reasons_{family}_vs_shap_rows_per_second",
                    value=round(ROWS / seconds, 1),
                    unit="rows/s",
                    better="higher",
                    baseline=round(5000 / shap_seconds, 1),
                    baseline_name="shap.TreeExplainer.shap_values rows/s (values only, 5,000 rows)",
                    ratio=round(speed_ratio(ROWS / seconds, 5000 / shap_seconds, "higher"), 3),
                    params=params,
                    command=COMMAND,
                )
            )
    return figures


if __name__ == "__main__":
    emit("reasons", run("--quick" in sys.argv))
