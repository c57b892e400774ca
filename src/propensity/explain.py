"""Why a model scores a customer the way it does: per-feature contributions and reason codes.

Space of the numbers
    Every contribution here is in **log-odds of the model's raw output, before calibration**,
    per **input feature** (the columns a caller provides; a datetime column's parts are summed
    back into the column). For each row ``base + values.sum(axis=1) == raw``, where ``raw`` is
    the model's raw log-odds; the calibrated probability the model returns is
    ``calibrator(sigmoid(raw))``. Calibration is monotone, so the sign of a contribution says
    whether the feature pushed the customer's chance up or down.

How, per model family
    - LightGBM: exact tree SHAP — LightGBM's own ``predict(..., pred_contrib=True)`` (equal to
      SHAP's ``TreeExplainer``) for small batches; from :data:`FAST_TREESHAP_ROWS` rows on,
      :mod:`propensity.kernels.shap`, which computes the same values in O(leaves × depth) per row
      instead of O(leaves × depth²) (tests compare the two).
    - XGBoost: the same, with XGBoost's own ``predict(..., pred_contribs=True)`` for small batches.
    - Random forest: exact tree SHAP from ``shap.TreeExplainer`` (imported lazily; ~2.5 s) for
      small batches. Deep forest trees make exact SHAP very slow (~20 rows/s measured), so from
      :data:`FAST_TREESHAP_ROWS` rows on a forest is explained by path attribution (Saabas,
      the figures of ``TreeExplainer.shap_values(approximate=True)``, computed by a parallel
      numba kernel in :mod:`propensity.kernels.shap`; shap's own loop runs at ~12,000 rows/s): also
      additive, and on the test table it named the same strongest reason as exact SHAP for 85 % of rows.
      A forest's raw output is an *average probability*, not log-odds; its SHAP values (in
      probability) are rescaled per row by ``(logit(p) − logit(p̄)) / (p − p̄)`` onto log-odds,
      which keeps each value's sign, the ranking within the row and exact additivity.
      Probabilities are clipped to [1e-4, 1 − 1e-4] (a forest can say exactly 0 or 1).
    - Ensemble (:class:`~propensity.pipeline.LogOddsEnsemble`): the weighted sum of its
      members' values and bases, with the ensemble's weights. The ensemble's raw log-odds is the
      same weighted sum of its members' log-odds, so the sum stays exact.
    - Logistic regression: linear SHAP through its preprocessing: each design-matrix column
      ``k`` (quantile-normal numbers, missing indicators, one-hot levels) contributes
      ``w_k · (z_k − mean_k)`` with the training mean of that column, summed per input column.
      This is exact: the model is additive in its input columns.

Reason codes
    :func:`reason_codes` turns the ``k`` largest contributions of each row into text. A
    feature's :attr:`~propensity.manifest.FeatureSpec.description` drives the wording:

    - with ``{value}`` in it, the value is put in place: ``"no visit in {value} days"`` →
      ``no visit in 45 days (−0.30)``;
    - ``"days since last add to cart"`` (``days|hours|weeks|months since …``) →
      ``last add to cart 2 days ago (+0.41)``;
    - any other description → ``pages per visit: 4.2 (+0.12)``;
    - no description → ``PageValues = 38.2 (+1.10)``, ``VisitorType = New_Visitor (+0.35)``,
      ``newsletter = yes (+0.28)``, ``age missing (−0.02)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from propensity.errors import DataError, PropensityError
from propensity.manifest import FeatureSpec
from propensity.metrics import logit
from propensity.pipeline import FOREST_CLIP, LogOddsEnsemble, ScoringPipeline, TrainedModel

__all__ = [
    "SPACE",
    "Explanation",
    "Reason",
    "explain",
    "explain_features",
    "format_reason",
    "format_value",
    "reason_codes",
    "reason_codes_for",
    "reason_columns",
]

#: What the numbers of an :class:`Explanation` are, in words (used by reports and the API).
SPACE = "log-odds of the model's raw output, before calibration"

_RF_CLIP = FOREST_CLIP
_MIN_SHOWN = 0.005  # contributions that would print as (+0.00) are not reasons


@dataclass
class Reason:
    """One reason a row scored as it did.

    ``feature`` is the input column; ``value`` its value as a JSON-friendly Python value
    (float, str, ISO date-time, or ``None`` when missing); ``contribution`` the SHAP value in
    log-odds before calibration; ``text`` the readable reason, e.g. ``PageValues = 38.2 (+1.10)``.
    """

    feature: str
    value: Any
    contribution: float
    text: str


@dataclass
class Explanation:
    """Per-row contributions in log-odds space *before calibration*, per input feature.

    ``base + values.sum(axis=1) == raw`` holds for every row (up to float rounding), where
    ``raw`` is the model's raw log-odds (see the module docstring for each family).

    Attributes
    ----------
    features
        Input feature names, in the model's order (the columns of ``values``).
    values
        ``(n_rows, n_features)`` contributions.
    base
        ``(n_rows,)`` expected raw log-odds (the same for every row of one model).
    raw
        ``(n_rows,)`` the model's raw log-odds for each row.
    """

    features: list[str]
    values: np.ndarray
    base: np.ndarray
    raw: np.ndarray

    def frame(self) -> pd.DataFrame:
        """Contributions as a DataFrame (one column per feature)."""
        return pd.DataFrame(self.values, columns=self.features)


# --------------------------------------------------------------------------- contributions


def _feature_groups(pipeline: ScoringPipeline) -> np.ndarray:
    """For each encoded column, the index of the input feature it came from."""
    enc = pipeline.encoder
    groups: list[int] = []
    for i, (col, role) in enumerate(enc.roles.items()):
        width = len(enc.datetime_parts_[col]) if role == "datetime" else 1
        groups.extend([i] * width)
    return np.asarray(groups, dtype="int64")


def _aggregate(values: np.ndarray, groups: np.ndarray, n_features: int) -> np.ndarray:
    """Sum encoded-column contributions into input features."""
    if len(groups) == n_features and np.array_equal(groups, np.arange(n_features)):
        return values
    out = np.zeros((values.shape[0], n_features), dtype="float64")
    for j in range(n_features):
        out[:, j] = values[:, groups == j].sum(axis=1)
    return out


#: From this many rows on, tree models use propensity's own exact TreeSHAP (numba, O(leaves × depth)
#: per row); below it, the libraries' own routine (no compilation cost for a few rows).
FAST_TREESHAP_ROWS = 2000
_FAST: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_FOREST_PATHS: contextvars.ContextVar[bool | None] = contextvars.ContextVar("forest_paths", default=None)


@contextlib.contextmanager
def forest_path_attribution(on: bool | None) -> Iterator[None]:
    """Explain random forests by path attribution (``True``) or exact SHAP (``False``) inside
    the block, whatever the batch size: a job explaining a file in chunks decides once, so
    its last, small chunk is not explained differently (and ~1,000x slower). ``None``: by batch size."""
    token = _FOREST_PATHS.set(on)
    try:
        yield
    finally:
        _FOREST_PATHS.reset(token)


def _fast_treeshap(est: Any, kind: str) -> Any:
    """The compiled fast explainer of a tree model, or ``None`` (a path with too many features)."""
    if est in _FAST:
        return _FAST[est]
    from propensity.kernels.shap import FastTreeShap, ForestPathAttribution
    from propensity.kernels.trees import lightgbm_trees, xgboost_trees

    fast: Any
    if kind == "lightgbm":
        fast = FastTreeShap.build(lightgbm_trees(est.booster_))
    elif kind == "random_forest":
        fast = ForestPathAttribution.build(est)
    else:
        trees, margin = xgboost_trees(est.get_booster())
        fast = FastTreeShap.build(trees, margin)
    _FAST[est] = fast
    return fast


def _lightgbm(est: Any, X: np.ndarray, n_jobs: int | None) -> tuple[np.ndarray, np.ndarray]:
    fast = _fast_treeshap(est, "lightgbm") if len(X) >= FAST_TREESHAP_ROWS else None
    if fast is not None:
        values, base = fast.shap_values(X, n_jobs)
        return values, np.full(len(X), base)
    kwargs = {"num_threads": n_jobs} if n_jobs else {}
    contrib = np.asarray(est.booster_.predict(X, pred_contrib=True, **kwargs), dtype="float64")
    return contrib[:, :-1], contrib[:, -1]


def _xgboost(est: Any, X: np.ndarray, n_jobs: int | None) -> tuple[np.ndarray, np.ndarray]:
    import xgboost as xgb

    best = None
    try:
        best = est.best_iteration  # set only when early stopping ran; then predict_proba stops there too
    except AttributeError:
        best = None
    if best is None and len(X) >= FAST_TREESHAP_ROWS:
        fast = _fast_treeshap(est, "xgboost")
        if fast is not None:
            values, base = fast.shap_values(X, n_jobs)
            return values, np.full(len(X), base)
    booster = est.get_booster()
    dm = xgb.DMatrix(X, missing=np.nan, nthread=n_jobs or -1)
    kwargs: dict[str, Any] = {}
    if best is not None:
        kwargs["iteration_range"] = (0, int(best) + 1)
    contrib = np.asarray(booster.predict(dm, pred_contribs=True, **kwargs), dtype="float64")
    return contrib[:, :-1], contrib[:, -1]


_TREE_EXPLAINERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _tree_explainer(est: Any) -> Any:
    explainer = _TREE_EXPLAINERS.get(est)
    if explainer is None:
        try:
            with warnings.catch_warnings():  # shap's matplotlib colour maps warn on import
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                import shap
        except ImportError as exc:  # pragma: no cover - shap is in the explain extra
            raise PropensityError(
                "Explaining a random forest needs SHAP: pip install 'propensity[explain]'."
            ) from exc
        explainer = shap.TreeExplainer(est)
        _TREE_EXPLAINERS[est] = explainer
    return explainer


def _random_forest(est: Any, X: np.ndarray, n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    approximate = _FOREST_PATHS.get()
    if approximate is None:  # path attribution for large batches: exact SHAP is ~20 rows/s on deep trees
        approximate = len(X) >= FAST_TREESHAP_ROWS
    fast = _fast_treeshap(est, "random_forest") if approximate else None
    if fast is not None:
        phi, e = fast.values(X, n_jobs)
    else:
        explainer = _tree_explainer(est)
        phi = np.asarray(
            explainer.shap_values(X, approximate=approximate, check_additivity=False), dtype="float64"
        )
        if phi.ndim == 3:  # (rows, features, classes)
            phi = phi[:, :, 1]
        expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype="float64"))
        e = float(expected[1] if expected.size > 1 else expected[0])
    p = np.clip(e + phi.sum(axis=1), _RF_CLIP, 1 - _RF_CLIP)
    e_c = float(np.clip(e, _RF_CLIP, 1 - _RF_CLIP))
    base = logit(np.asarray([e_c]))[0]
    raw = logit(p)
    delta = p - e_c
    # Rows whose probability equals the average get the derivative of the logit instead.
    safe = np.abs(delta) > 1e-12
    scale = np.where(safe, (raw - base) / np.where(safe, delta, 1.0), 1.0 / (p * (1 - p)))
    values = phi * scale[:, None]
    # Clipping moved p; put the (tiny) remainder on the row's largest contribution so the sum is exact.
    gap = raw - base - values.sum(axis=1)
    if np.any(np.abs(gap) > 0):
        j = np.argmax(np.abs(values), axis=1)
        values[np.arange(len(values)), j] += gap
    return values, np.full(len(values), base)


def _linear_design(est: Any) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """The preprocessing, the classifier, the coefficient of each design column and its encoded source column."""
    pre = est.named_steps["pre"]
    clf = est.named_steps["clf"]
    coef = np.asarray(clf.coef_, dtype="float64").ravel()
    source = np.empty(len(coef), dtype="int64")
    for name, trans, columns in pre.transformers_:
        if name == "remainder" or trans == "drop":
            continue
        block = pre.output_indices_[name]
        cols = list(columns)
        if name == "num":
            imputer = trans.steps[0][1]
            ind = getattr(imputer, "indicator_", None)
            extra = [cols[i] for i in ind.features_] if ind is not None else []
            mapping = cols + extra
        elif name == "cat":
            onehot = trans.steps[-1][1]
            mapping = [c for c, cats in zip(cols, onehot.categories_, strict=True) for _ in cats]
        else:  # pragma: no cover - LogisticFamily only builds "num" and "cat"
            raise PropensityError(f"Cannot explain the linear model's '{name}' preprocessing step.")
        if len(mapping) != block.stop - block.start:
            raise PropensityError("The linear model's design matrix does not match its preprocessing.")
        source[block] = mapping
    return pre, clf, coef, source


def _logistic(est: Any, X: np.ndarray, n_encoded: int) -> tuple[np.ndarray, np.ndarray]:
    pre, clf, coef, source = _linear_design(est)
    mean = getattr(est, "background_mean_", None)
    if mean is None:
        raise PropensityError(
            "This logistic-regression bundle has no training means (it was trained before explanations "
            "existed); retrain it to explain its scores."
        )
    Z = pre.transform(X)
    # Map design columns to encoded columns once: (m × n_encoded) with the coefficient in place.
    W = np.zeros((len(coef), n_encoded), dtype="float64")
    W[np.arange(len(coef)), source] = coef
    values = np.asarray(Z @ W, dtype="float64") - np.asarray(mean) @ W
    base = float(clf.intercept_[0] + coef @ np.asarray(mean))
    return values, np.full(X.shape[0], base)


def _encoded_contributions(pipeline: ScoringPipeline, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _estimator_contributions(pipeline.estimator, X, pipeline.n_jobs, pipeline.family)


def _estimator_contributions(
    est: Any, X: np.ndarray, n_jobs: int | None, family: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    family = family or type(est).__name__
    if isinstance(est, LogOddsEnsemble):
        # The blend is linear in its members' log-odds, so its SHAP values are the weighted sum
        # of theirs: exact and additive like each member's.
        values = np.zeros(X.shape, dtype="float64")
        base = np.zeros(X.shape[0], dtype="float64")
        for member, weight, fam in zip(est.members, est.weights, est.families, strict=True):
            v, b = _estimator_contributions(member, X, n_jobs, fam)
            values += weight * v
            base += weight * b
        return values, base
    if hasattr(est, "booster_") and hasattr(est.booster_, "num_trees"):
        return _lightgbm(est, X, n_jobs)
    if hasattr(est, "get_booster"):
        return _xgboost(est, X, n_jobs)
    if hasattr(est, "estimators_") and hasattr(est, "n_outputs_"):
        return _random_forest(est, X, n_jobs)
    if hasattr(est, "named_steps") and "clf" in est.named_steps:
        return _logistic(est, X, X.shape[1])
    raise PropensityError(f"Explanations are not available for the model family '{family}'.")


def explain_features(model: TrainedModel, typed: pd.DataFrame) -> Explanation:
    """Contributions for rows that are already validated and typed (``model.prepare(...).features``).

    :func:`explain` validates raw input first; batch scoring, which has already validated a
    chunk, calls this directly.
    """
    pipeline = model.pipeline
    names = list(pipeline.encoder.roles)
    if len(typed) == 0:
        empty = np.zeros(0)
        return Explanation(names, np.zeros((0, len(names))), empty, empty)
    X = pipeline.encoder.transform(typed)
    enc_values, base = _encoded_contributions(pipeline, X)
    values = _aggregate(enc_values, _feature_groups(pipeline), len(names))
    raw = base + values.sum(axis=1)
    return Explanation(names, values, np.asarray(base, dtype="float64"), raw)


def _validated(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    prepared = model.prepare(frame)
    if not prepared.good.all():
        problems = prepared.quarantine.to_frame().head(5)
        listed = "; ".join(
            f"row {r.row} column '{r.column}' value {r.value!r}: {r.reason}" for r in problems.itertuples()
        )
        raise DataError(f"{prepared.quarantine.n_bad_rows} row(s) cannot be explained: {listed}.")
    return prepared.features


def explain(model: TrainedModel, frame: pd.DataFrame) -> Explanation:
    """Per-row, per-input-feature contributions to the model's raw log-odds (before calibration).

    Parameters
    ----------
    model
        A trained or loaded model.
    frame
        Raw input rows with the model's feature columns (validated like :meth:`TrainedModel.predict_proba`).

    Returns
    -------
    Explanation
        ``base + values.sum(axis=1) == raw`` for every row.

    Raises
    ------
    SchemaError
        A required feature column is absent.
    DataError
        A row holds a value that cannot be read (the message names row, column and value).
    PropensityError
        The model family cannot be explained.

    Example
    -------
    >>> ex = explain(model, customers.head(3))  # doctest: +SKIP
    >>> ex.frame().round(2)                    # doctest: +SKIP
    """
    return explain_features(model, _validated(model, frame))


# --------------------------------------------------------------------------- reason text

_SINCE = re.compile(r"^\s*(days|hours|weeks|months)\s+since\s+(.+?)\s*$", re.IGNORECASE)


def format_value(value: Any, spec: FeatureSpec | None = None) -> str:
    """A feature value as a person would write it: ``38.2``, ``3``, ``yes``, ``2024-03-01``, ``missing``."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return "missing"
    role = spec.role if spec is not None else None
    if role == "boolean":
        return "yes" if float(value) >= 0.5 else "no"
    if isinstance(value, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d %H:%M") if (ts.hour or ts.minute) else ts.strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        a = abs(v)
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.2f}".rstrip("0").rstrip(".")
        return f"{v:.3g}"
    return str(value)


def _signed(contribution: float) -> str:
    return f"{'+' if contribution >= 0 else '−'}{abs(contribution):.2f}"


def _phrase(name: str, value: Any, spec: FeatureSpec | None) -> str:
    shown = format_value(value, spec)
    description = (spec.description if spec is not None else "").strip()
    if description:
        if "{value}" in description:
            return description.replace("{value}", shown)
        since = _SINCE.match(description)
        if since and shown != "missing":
            unit, what = since.group(1).lower(), since.group(2)
            try:
                amount = float(value)
            except (TypeError, ValueError):
                return f"{description}: {shown}"
            if unit == "days" and 0 < amount < 1:  # "0.0851 days ago" reads as "2 hours ago"
                hours = round(amount * 24)
                if hours == 0:
                    return f"{what} {max(1, round(amount * 1440))} min ago"
                return f"{what} {hours} hour{'s' if hours != 1 else ''} ago"
            if amount == 0 and unit == "days":
                return f"{what} today"
            singular = unit[:-1] if amount == 1 else unit
            return f"{what} {shown} {singular} ago"
        if since:
            return f"no {since.group(2)} recorded"
        return f"{description}: {shown}"
    if shown == "missing":
        return f"{name} missing"
    return f"{name} = {shown}"


def format_reason(name: str, value: Any, contribution: float, spec: FeatureSpec | None = None) -> str:
    """The text of one reason, e.g. ``PageValues = 38.2 (+1.10)`` (see the module docstring)."""
    return f"{_phrase(name, value, spec)} ({_signed(contribution)})"


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest |values| per row, strongest first."""
    k = min(k, values.shape[1])
    mag = np.abs(values)
    if k < values.shape[1]:
        part = np.argpartition(-mag, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(values.shape[1]), (len(values), 1))
    order = np.argsort(-np.take_along_axis(mag, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


@dataclass
class _Top:
    """The ``k`` strongest contributions per row, with their text (vectorised: ~100k rows/s)."""

    features: list[str]
    index: np.ndarray  # (n, k) feature index, strongest first
    contribution: np.ndarray  # (n, k)
    shown: np.ndarray  # (n, k) bool: strong enough to be a reason
    text: np.ndarray  # (n, k) object: reason text ("" when not shown)


def _plain_values(col: pd.Series, role: str) -> np.ndarray:
    """A column as JSON-friendly Python values (float, str, ISO date-time; None when missing)."""
    missing = col.isna().to_numpy()
    if role == "datetime":
        values = np.asarray([ts.isoformat() if not pd.isna(ts) else None for ts in col], dtype=object)
    elif role == "categorical":
        values = col.astype(object).to_numpy()
    else:
        values = col.to_numpy(dtype="float64").astype(object)
    values[missing] = None
    return values


def _top_reasons(model: TrainedModel, typed: pd.DataFrame, k: int) -> _Top:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"The 'k' parameter of reason_codes must be an int >= 1. Got {k!r} instead.")
    ex = explain_features(model, typed)
    specs = {f.name: f for f in model.manifest.input_schema.features}
    top = _top(ex.values, k) if len(ex.values) else np.zeros((0, min(k, len(ex.features))), dtype="int64")
    contrib = np.take_along_axis(ex.values, top, axis=1)
    shown = np.abs(contrib) >= _MIN_SHOWN
    shown = np.cumprod(shown, axis=1).astype(bool)  # strongest first: stop at the first weak one
    phrases = np.full(top.shape, "", dtype=object)
    for j, name in enumerate(ex.features):
        mask = (top == j) & shown
        if not mask.any():
            continue
        rows = np.nonzero(mask)[0]
        values = typed[name].to_numpy()[rows]
        # Phrase each distinct value once (counts, levels and dates repeat a lot).
        codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=False)
        texts = np.asarray([_phrase(name, u, specs.get(name)) for u in uniques], dtype=object)
        phrases[mask] = texts[codes]
    signs = np.where(contrib >= 0, " (+", " (−")
    amounts = np.char.mod("%.2f)", np.abs(contrib)) if contrib.size else np.zeros(contrib.shape, dtype=str)
    text = np.where(shown, phrases + signs.astype(object) + amounts.astype(object), "")
    return _Top(ex.features, top, contrib, shown, text)


def reason_codes(model: TrainedModel, frame: pd.DataFrame, k: int = 3) -> list[list[Reason]]:
    """The ``k`` strongest reasons for each row's score, strongest first, as readable text.

    A reason is a feature whose contribution (log-odds, before calibration) is among the
    ``k`` largest in absolute value; contributions below 0.005 are left out, so a row can
    have fewer than ``k`` reasons.

    Raises
    ------
    SchemaError, DataError
        As :func:`explain`.

    Example
    -------
    >>> [r.text for r in reason_codes(model, customers.head(1), k=2)[0]]  # doctest: +SKIP
    ['cart_adds_30d = 3 (+1.21)', 'days_since_last_visit = 45 (−0.30)']
    """
    return reason_codes_for(model, _validated(model, frame), k)


def reason_codes_for(model: TrainedModel, typed: pd.DataFrame, k: int = 3) -> list[list[Reason]]:
    """:func:`reason_codes` for rows that are already validated and typed (``model.prepare(...).features``).

    The scoring service calls this with the records it has validated, so ``/explain`` and
    ``propensity score --reasons`` give the same reasons in the same words.
    """
    top = _top_reasons(model, typed, k)
    roles = {f.name: f.role for f in model.manifest.input_schema.features}
    used = np.unique(top.index[top.shown])
    values = {j: _plain_values(typed[top.features[j]], roles[top.features[j]]) for j in used.tolist()}
    index, contribution, text = top.index.tolist(), top.contribution.tolist(), top.text.tolist()
    counts = top.shown.sum(axis=1).tolist()
    return [
        [
            Reason(top.features[j], values[j][i], c, t)
            for j, c, t in zip(index[i][:n], contribution[i][:n], text[i][:n], strict=True)
        ]
        for i, n in enumerate(counts)
    ]


def reason_columns(model: TrainedModel, typed: pd.DataFrame, k: int) -> pd.DataFrame:
    """Columns ``reason_1`` … ``reason_k`` (text; empty when a row has fewer reasons) for typed rows.

    Used by batch scoring (``propensity score --reasons K``) on chunks it has already validated.
    """
    top = _top_reasons(model, typed, k)
    names = [f"reason_{i + 1}" for i in range(k)]
    data = {
        name: top.text[:, i] if i < top.text.shape[1] else np.full(len(top.text), "", dtype=object)
        for i, name in enumerate(names)
    }
    return pd.DataFrame(data, columns=names)
