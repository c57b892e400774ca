"""How good a model is, where it fails and why it scores as it does — as data.

Everything the report (``report.html``) plots is computed here and written to
``evaluation.json``; the report only draws it, so tests and the dashboard read the same
numbers. Two entry points:

- :func:`evaluate_training` — after ``propensity train``: out-of-fold predictions on the
  training rows and the held-out test set (``TrainingResult.run``);
- :func:`evaluate` — ``propensity evaluate MODEL DATA``: a saved model on new labelled rows.

Schema of ``evaluation.json`` (``schema_version`` 1)
----------------------------------------------------
Numbers are plain floats; ``null`` means undefined (e.g. ROC-AUC on one class), and
``undefined`` maps say why. Probabilities are *calibrated* unless a key says ``raw``.

``schema``, ``schema_version``, ``kind`` (``"training"`` | ``"evaluation"``), ``created_at``,
``propensity_version``

``model``: ``version``, ``winner``, ``family``, ``target``, ``positive``, ``negative``, ``calibration``
(method), ``calibration_scores`` {method: {log_loss, brier}}, ``selection_metric``, ``threshold``, ``policy`` {``kind``, ``params``, ``rationale``}, ``policy_in_words``,
``bands`` [{``name``, ``lower``, ``upper``, ``meaning``}], ``features`` [{``name``, ``role``, ``description``}]

``data``: ``source``, ``rows_in``, ``rows_quarantined``, ``quarantine_reasons`` {reason: rows},
``rows_used``, ``rows_train``, ``rows_test``, ``test_source``, ``positive_rate``,
``unexpected_columns``, ``imputed_columns``, ``unknown_categories`` {column: rows}

``main``: name of the data set that slices, explanations and examples use (``"test"`` after
training, ``"evaluation"`` for new data).

``datasets``: {name: dataset}; names ``"oof"`` (out-of-fold, training rows), ``"test"``,
``"evaluation"``. A dataset has
  ``label``; ``n``; ``positives``;
  ``metrics``: :func:`propensity.metrics.binary_metrics` at the policy threshold (``roc_auc``,
  ``pr_auc``, ``brier``, ``log_loss``, ``lift_top10``, ``precision``, ``recall``, ``f1``,
  ``contacted_share``, ``confusion`` {tp, fp, fn, tn}, ``undefined`` {metric: why});
  ``raw_metrics``: {``brier``, ``log_loss``} of the uncalibrated probabilities (or null);
  ``roc``: {``fpr`` [], ``tpr`` [], ``auc``} or null; ``pr``: {``recall`` [], ``precision`` [],
  ``average_precision``, ``base_rate``} or null (curves thinned to ≤ 400 points);
  ``calibration``: {``calibrated``: bins, ``raw``: bins or null} with bins
  [{``mean_predicted``, ``observed_rate``, ``count``}] (equal-count bins);
  ``histogram``: {``edges`` [], ``positives`` [], ``negatives`` []} (counts of calibrated scores);
  ``sweep``: {``threshold`` [], ``contacted`` [], ``tp`` [], ``contacted_share`` [], ``precision`` [],
  ``recall`` [], ``f1`` [], ``profit`` []} — contact everyone with probability ≥ threshold;
  ``deciles``: [{``decile`` (1 = highest scores), ``customers``, ``buyers``, ``rate``, ``lift``,
  ``cumulative_buyers``, ``cumulative_capture``, ``cumulative_lift``, ``min_score``, ``max_score``}];
  ``gain``: {``share_contacted`` [0, 0.01, …, 1], ``share_captured`` [], ``lift`` []} by rank;
  ``profit``: {``value``, ``cost``, ``source`` (``policy`` | ``given`` | ``example``),
  ``share_contacted`` [], ``contacted`` [], ``buyers`` [], ``profit`` [] (contacting the top share
  by rank), ``best``
  {share_contacted, profit, threshold}, ``at_threshold`` {contacted, profit}, ``contact_all``,
  ``contact_none``} — profit = buyers reached × value − contacts × cost.

``candidates``: the manifest's candidate reports (name, family, oof, test, fit_seconds, …).

``slices``: {``dataset``, ``overall_roc_auc``, ``columns`` [{``column``, ``role`` (``numeric
(quartiles)`` when the model has no categorical column), ``description``, ``levels`` [{``level``, ``n``,
``share``, ``positives``, ``positive_rate``, ``mean_score``, ``roc_auc``, ``pr_auc``, ``brier``,
``precision``, ``recall``, ``contacted_share``, ``weak`` (bool), ``note``}]}]}

``explanations``: {``space`` (log-odds before calibration), ``dataset``, ``sample_rows``,
``base``, ``importance`` [{``feature``, ``description``, ``mean_abs``, ``share``}] (all features,
strongest first), ``beeswarm`` [{``feature``, ``shap`` [], ``color`` [] (0–1 value rank or
null), ``value`` [] (text), ``jitter`` []}], ``dependence`` [{``feature``, ``role``, ``x`` [],
``shap`` []}], ``examples`` [{``kind`` (high | borderline | low), ``id``, ``probability``,
``raw``, ``base``, ``decision``, ``band``, ``actual``, ``contributions`` [{``feature``, ``value``,
``contribution``, ``text``}], ``other`` {``features``, ``contribution``}}]} — or
{``error``: why} when the model cannot be explained.

``warnings``: [text] — what a reader must know (single class, imputed columns, quarantined rows …).

How event-log models will plug in: the event-feature pipeline builds a labelled table at a
cutoff (features as of the cutoff, outcome over the horizon); :func:`evaluate` takes that
table unchanged, so ``evaluate`` on an event log is "build the table, then call this".
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from propensity.errors import DataError, PropensityError, SchemaError
from propensity.explain import SPACE, explain_features, format_reason, format_value
from propensity.manifest import FeatureSpec
from propensity.metrics import binary_metrics, metric_value, percent
from propensity.pipeline import TrainedModel, band_of

if TYPE_CHECKING:  # pragma: no cover
    from propensity.training.trainer import TrainingRun
from propensity.schema import FALSE_TEXTS, TRUE_TEXTS, category_text, did_you_mean, shown_columns
from propensity.sources import atomic_path

__all__ = [
    "EXAMPLE_PROFIT",
    "SCHEMA_VERSION",
    "ScoredSet",
    "build_evaluation",
    "customer_example",
    "evaluate_frame",
    "evaluate_training",
    "write_evaluation",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Value of a conversion and cost of a contact used for the profit curve when nobody gave them.
EXAMPLE_PROFIT = (10.0, 1.0)

_CURVE_POINTS = 400
_EXPLAIN_ROWS = 2000
_EXPLAIN_ROWS_FOREST = 200  # exact tree SHAP on deep forests costs ~10-300 ms per row
_FOREST_SECONDS = 15.0
_BEESWARM_POINTS = 600
_TOP_BEESWARM = 12
_TOP_DEPENDENCE = 4
_SLICE_COLUMNS = 6
_SLICE_LEVELS = 12
_WATERFALL = 8


@dataclass
class ScoredSet:
    """One set of labelled, scored rows to evaluate.

    ``proba`` is the calibrated probability; ``raw`` the model's probability before
    calibration (``None`` when unknown); ``features`` the typed input rows (for slices and
    explanations; ``None`` skips them); ``ids`` the id column when there is one.
    """

    name: str
    label: str
    y: np.ndarray
    proba: np.ndarray
    raw: np.ndarray | None = None
    features: pd.DataFrame | None = None
    ids: pd.Series | None = None


# --------------------------------------------------------------------------- small helpers


def _f(x: Any, digits: int = 6) -> float | None:
    if x is None:
        return None
    v = float(x)
    return None if not math.isfinite(v) else round(v, digits)


def _arr(a: np.ndarray, digits: int = 5) -> list[float | None]:
    a = np.asarray(a, dtype="float64")
    out = np.round(a, digits).tolist()
    if np.isfinite(a).all():
        return out
    return [v if math.isfinite(v) else None for v in out]


def _thin(n: int, points: int = _CURVE_POINTS) -> np.ndarray:
    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype("int64"))


def _two_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < len(y)


# --------------------------------------------------------------------------- curves and tables


def roc_data(y: np.ndarray, p: np.ndarray) -> dict[str, Any] | None:
    """ROC curve (thinned) and its area; ``None`` unless both classes are present."""
    if not _two_classes(y):
        return None
    fpr, tpr, _ = skm.roc_curve(y, p)
    keep = _thin(len(fpr))
    return {"fpr": _arr(fpr[keep]), "tpr": _arr(tpr[keep]), "auc": _f(skm.roc_auc_score(y, p))}


def pr_data(y: np.ndarray, p: np.ndarray) -> dict[str, Any] | None:
    """Precision–recall curve (thinned), average precision and the base rate."""
    if not _two_classes(y):
        return None
    precision, recall, _ = skm.precision_recall_curve(y, p)
    keep = _thin(len(precision))
    return {
        "recall": _arr(recall[keep]),
        "precision": _arr(precision[keep]),
        "average_precision": _f(skm.average_precision_score(y, p)),
        "base_rate": _f(y.mean()),
    }


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability data: equal-count bins of predicted probability with the observed rate."""
    if len(y) == 0:
        return []
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, min(bins, len(y))):
        if len(part) == 0:
            continue
        out.append(
            {
                "mean_predicted": _f(p[part].mean()),
                "observed_rate": _f(y[part].mean()),
                "count": len(part),
            }
        )
    return out


def histogram(y: np.ndarray, p: np.ndarray, bins: int = 50) -> dict[str, Any]:
    """Counts of calibrated scores per class on ``bins`` equal-width bins of [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    pos, _ = np.histogram(p[y == 1], bins=edges)
    neg, _ = np.histogram(p[y == 0], bins=edges)
    return {"edges": _arr(edges, 4), "positives": pos.tolist(), "negatives": neg.tolist()}


def _counts_at(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with ``p >= t`` and positives among them, for every threshold ``t``."""
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    below = np.concatenate([[0], np.cumsum(ys)])
    idx = np.searchsorted(ps, thresholds, side="left")
    contacted = len(p) - idx
    tp = int(ys.sum()) - below[idx]
    return contacted.astype("int64"), tp.astype("int64")


def threshold_sweep(
    y: np.ndarray, p: np.ndarray, threshold: float, value: float, cost: float
) -> dict[str, Any]:
    """Precision, recall, F1, contacted share and profit for a grid of thresholds (chosen one included)."""
    grid = np.linspace(0.0, 1.0, 101)
    if len(p):
        grid = np.concatenate([grid, np.quantile(p, np.linspace(0, 1, 201)), [threshold]])
    t = np.unique(np.round(grid, 6))
    contacted, tp = _counts_at(y, p, t)
    n, positives = len(y), int(y.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(contacted > 0, tp / np.maximum(contacted, 1), np.nan)
        recall = tp / positives if positives else np.full(len(t), np.nan)
        f1 = np.where(contacted + positives > 0, 2 * tp / np.maximum(contacted + positives, 1), np.nan)
    return {
        "threshold": _arr(t, 6),
        "contacted": contacted.tolist(),
        "tp": tp.tolist(),
        "contacted_share": _arr(contacted / n if n else np.zeros(len(t))),
        "precision": _arr(precision),
        "recall": _arr(recall),
        "f1": _arr(f1),
        "profit": _arr(tp * value - contacted * cost, 2),
    }


def decile_table(y: np.ndarray, p: np.ndarray, groups: int = 10) -> list[dict[str, Any]]:
    """Customers ranked by score (ties by row order) in ``groups`` near-equal groups, best first."""
    n = len(y)
    if n == 0:
        return []
    order = np.argsort(-p, kind="stable")
    base = y.mean()
    positives = int(y.sum())
    rows, cum_n, cum_pos = [], 0, 0
    for i, part in enumerate(np.array_split(order, min(groups, n))):
        buyers = int(y[part].sum())
        cum_n += len(part)
        cum_pos += buyers
        rate = buyers / len(part)
        rows.append(
            {
                "decile": i + 1,
                "customers": len(part),
                "buyers": buyers,
                "rate": _f(rate),
                "lift": _f(rate / base) if base > 0 else None,
                "cumulative_buyers": cum_pos,
                "cumulative_capture": _f(cum_pos / positives) if positives else None,
                "cumulative_lift": _f((cum_pos / cum_n) / base) if base > 0 else None,
                "min_score": _f(p[part].min()),
                "max_score": _f(p[part].max()),
            }
        )
    return rows


def gain_curve(y: np.ndarray, p: np.ndarray, steps: int = 100) -> dict[str, Any]:
    """Share of buyers captured when contacting the top share of customers by score."""
    n, positives = len(y), int(y.sum())
    share = np.linspace(0.0, 1.0, steps + 1)
    if n == 0:
        return {"share_contacted": _arr(share), "share_captured": [], "lift": []}
    cum = np.concatenate([[0], np.cumsum(y[np.argsort(-p, kind="stable")])])
    k = np.ceil(share * n - 1e-9).astype("int64")
    if not positives:
        return {
            "share_contacted": _arr(share),
            "share_captured": [None] * len(share),
            "lift": [None] * len(share),
        }
    captured = cum[k] / positives
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(k > 0, (cum[k] / np.maximum(k, 1)) / (positives / n), np.nan)
    return {"share_contacted": _arr(share), "share_captured": _arr(captured), "lift": _arr(lift)}


def profit_data(
    y: np.ndarray, p: np.ndarray, threshold: float, value: float, cost: float, source: str
) -> dict[str, Any]:
    """Profit of contacting the top share of customers by score: buyers × value − contacts × cost."""
    n = len(y)
    order = np.argsort(-p, kind="stable")
    cum = np.concatenate([[0], np.cumsum(y[order])])
    profit_all = cum * value - np.arange(n + 1) * cost
    keep = _thin(n + 1, 201)
    best = int(np.argmax(profit_all))
    contacted, tp = _counts_at(y, p, np.asarray([threshold]))
    return {
        "value": value,
        "cost": cost,
        "source": source,
        "share_contacted": _arr(keep / n if n else keep * 0.0),
        "contacted": keep.tolist(),
        "buyers": cum[keep].astype("int64").tolist(),
        "profit": _arr(profit_all[keep], 2),
        "best": {
            "share_contacted": _f(best / n) if n else None,
            "contacted": best,
            "profit": _f(profit_all[best], 2),
            "threshold": _f(p[order][best - 1]) if best > 0 else None,
        },
        "at_threshold": {
            "contacted": int(contacted[0]),
            "share_contacted": _f(contacted[0] / n) if n else None,
            "profit": _f(tp[0] * value - contacted[0] * cost, 2),
        },
        "contact_all": _f(profit_all[-1], 2),
        "contact_none": 0.0,
    }


def dataset_summary(
    scored: ScoredSet, threshold: float, value: float, cost: float, profit_source: str
) -> dict[str, Any]:
    """Every curve and table of one scored set (see the module docstring)."""
    y = np.asarray(scored.y).astype("int64")
    p = np.asarray(scored.proba, dtype="float64")
    raw = None if scored.raw is None else np.asarray(scored.raw, dtype="float64")
    # Calibrators are increasing, so the raw scores hold the model's order: ranking figures
    # (ROC, PR, lift) read it there. For out-of-fold rows this skips the fold-to-fold reordering
    # of the cross-fitted calibrators; elsewhere it changes nothing.
    order = p if raw is None else raw
    metrics = binary_metrics(y, p, threshold, ranking=order)
    raw_metrics = None
    if raw is not None:
        raw_metrics = {"brier": metric_value("brier", y, raw), "log_loss": metric_value("log_loss", y, raw)}
    return {
        "label": scored.label,
        "n": len(y),
        "positives": int(y.sum()),
        "metrics": metrics,
        "raw_metrics": raw_metrics,
        "roc": roc_data(y, order),
        "pr": pr_data(y, order),
        "calibration": {
            "calibrated": calibration_bins(y, p),
            "raw": calibration_bins(y, raw) if raw is not None else None,
        },
        "histogram": histogram(y, p),
        "sweep": threshold_sweep(y, p, threshold, value, cost),
        "deciles": decile_table(y, p),
        "gain": gain_curve(y, p),
        "profit": profit_data(y, p, threshold, value, cost, profit_source),
    }


# --------------------------------------------------------------------------- slices


def _level_labels(col: pd.Series, spec: FeatureSpec) -> pd.Series:
    if spec.role == "boolean":
        text = col.map({1.0: "yes", 0.0: "no"})
    else:
        text = category_text(col)
    return text.fillna("(missing)").astype(str)


def _numeric_bands(col: pd.Series) -> tuple[pd.Series, list[str]]:
    """Quartile ranges of a numeric column as labels, lowest first (for models with no categorical columns)."""
    valid = col.dropna()
    edges = np.unique(np.quantile(valid, [0, 0.25, 0.5, 0.75, 1])) if len(valid) else np.array([])
    if len(edges) < 2:
        return pd.Series(np.where(col.isna(), "(missing)", "all"), index=col.index), ["all"]
    labels = [f"up to {format_value(edges[1])}"]
    labels += [f"over {format_value(a)} to {format_value(b)}" for a, b in pairwise(edges[1:])]
    cut = pd.cut(col, bins=list(edges), labels=labels, include_lowest=True)
    return cut.astype(object).where(col.notna(), "(missing)").astype(str), labels


def slices(
    model: TrainedModel,
    scored: ScoredSet,
    threshold: float,
    order: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics per level of the main categorical (and boolean) columns, so a weak segment shows.

    Columns are taken in ``order`` (e.g. by importance), at most six; levels are the twelve
    most frequent, the rest pooled as "other". A level is *weak* when it has at least 100
    rows with both outcomes and its ROC-AUC is 0.05 or more below the whole set's.
    """
    if scored.features is None or len(scored.y) == 0:
        return {"dataset": scored.name, "columns": []}
    specs = {f.name: f for f in model.manifest.input_schema.features}
    names = list(order or specs)
    chosen = [n for n in names if specs[n].role in ("categorical", "boolean")][:_SLICE_COLUMNS]
    numeric_fallback = False
    if not chosen:
        chosen = [n for n in names if specs[n].role == "numeric"][:2]
        numeric_fallback = True
    y = np.asarray(scored.y).astype("int64")
    p = np.asarray(scored.proba, dtype="float64")
    overall = metric_value("roc_auc", y, p)
    out = []
    for name in chosen:
        spec = specs[name]
        labels, top = _slice_labels(scored.features[name].reset_index(drop=True), spec, numeric_fallback)
        values = labels.to_numpy()
        levels = [_level_block(str(level), y, p, values == level, threshold, overall) for level in top]
        out.append(
            {
                "column": name,
                "role": "numeric (quartiles)" if numeric_fallback else spec.role,
                "description": spec.description,
                "levels": levels,
            }
        )
    return {"dataset": scored.name, "overall_roc_auc": _f(overall), "columns": out}


def _slice_labels(col: pd.Series, spec: FeatureSpec, numeric: bool) -> tuple[pd.Series, list[str]]:
    """Each row's level label, and the levels to show in order (rare ones pooled as "other")."""
    labels, ordered = _numeric_bands(col) if numeric else (_level_labels(col, spec), [])
    counts = labels.value_counts()
    top = list(counts.index[:_SLICE_LEVELS])
    if len(counts) > _SLICE_LEVELS:
        labels = labels.where(labels.isin(top), f"other ({len(counts) - _SLICE_LEVELS} levels)")
        top.append(f"other ({len(counts) - _SLICE_LEVELS} levels)")
    if numeric:
        top = [t for t in ordered if (labels == t).any()]
        if (labels == "(missing)").any():
            top.append("(missing)")
    return labels, top


def _level_block(
    level: str, y: np.ndarray, p: np.ndarray, mask: np.ndarray, threshold: float, overall: float | None
) -> dict[str, Any]:
    """One level's metrics, and whether it is weak (100+ rows, both outcomes, ROC-AUC 0.05 below overall)."""
    ym, pm = y[mask], p[mask]
    m = binary_metrics(ym, pm, threshold)
    weak = bool(
        overall is not None
        and m["roc_auc"] is not None
        and len(ym) >= 100
        and min(int(ym.sum()), len(ym) - int(ym.sum())) >= 10
        and m["roc_auc"] <= overall - 0.05
    )
    note = ""
    if m["roc_auc"] is None:
        note = "one outcome only: ROC-AUC undefined"
    elif len(ym) < 100:
        note = "fewer than 100 rows: treat with care"
    elif weak:
        note = f"ROC-AUC {m['roc_auc']:.3f} vs {overall:.3f} overall"
    return {
        "level": level,
        "n": len(ym),
        "share": _f(len(ym) / len(y)),
        "positives": int(ym.sum()),
        "positive_rate": _f(m["positive_rate"]),
        "mean_score": _f(pm.mean()) if len(pm) else None,
        "roc_auc": _f(m["roc_auc"]),
        "pr_auc": _f(m["pr_auc"]),
        "brier": _f(m["brier"]),
        "precision": _f(m.get("precision")),
        "recall": _f(m.get("recall")),
        "contacted_share": _f(m.get("contacted_share")),
        "weak": weak,
        "note": note,
    }


# --------------------------------------------------------------------------- explanations


def _display_values(col: pd.Series, spec: FeatureSpec | None) -> list[str]:
    return [format_value(v, spec) for v in col.to_numpy(dtype=object)]


def _rank01(col: pd.Series) -> list[float | None]:
    if col.dtype.kind == "M":
        col = col.astype("int64").where(col.notna())
    if col.dtype == object:
        return [None] * len(col)
    ranks = col.rank(pct=True)
    return [None if pd.isna(v) else round(float(v), 3) for v in ranks]


def _example(
    model: TrainedModel, typed: pd.DataFrame, kind: str, p: float, actual: int | None, ident: Any
) -> dict[str, Any]:
    specs = {f.name: f for f in model.manifest.input_schema.features}
    ex = explain_features(model, typed)
    values = ex.values[0]
    order = np.argsort(-np.abs(values), kind="stable")
    shown, rest = order[:_WATERFALL], order[_WATERFALL:]
    contributions = []
    for j in shown:
        name = ex.features[j]
        v = typed[name].iloc[0]
        contributions.append(
            {
                "feature": name,
                "value": format_value(v, specs.get(name)),
                "contribution": _f(values[j]),
                "text": format_reason(name, v, float(values[j]), specs.get(name)),
            }
        )
    return {
        "kind": kind,
        "id": None if ident is None else str(ident),
        "probability": _f(p),
        "raw": _f(ex.raw[0]),
        "raw_probability": _f(1 / (1 + math.exp(-ex.raw[0]))),
        "base": _f(ex.base[0]),
        "decision": bool(p >= model.threshold),
        "band": str(band_of(np.asarray([p]), model.manifest.policy)[0]),
        "actual": None if actual is None else int(actual),
        "contributions": contributions,
        "other": {"features": len(rest), "contribution": _f(values[rest].sum()) if len(rest) else 0.0},
    }


def customer_example(model: TrainedModel, typed: pd.DataFrame, *, ident: Any = None) -> dict[str, Any]:
    """One customer explained the way the report's examples are (``explanations.examples[i]``).

    Parameters
    ----------
    model
        A trained or loaded model.
    typed
        One validated, typed row (``model.prepare(frame).features``).
    ident
        The customer's id, echoed as ``id``.

    Returns
    -------
    dict
        ``id``, ``probability`` (calibrated), ``raw`` and ``base`` (log-odds), ``decision``,
        ``band``, ``actual`` (``None``: unknown), the strongest ``contributions`` [{``feature``,
        ``value``, ``contribution``, ``text``}] and the sum of the ``other`` ones — what
        :func:`propensity.report.figures.waterfall` draws.
    """
    if len(typed) != 1:
        raise DataError(f"customer_example explains one row at a time; got {len(typed)} rows.")
    p = float(model.pipeline.proba(typed)[0])
    return _example(model, typed, "customer", p, None, ident)


def _forest_rows(model: TrainedModel, typed: pd.DataFrame) -> int:
    """Rows to explain for a random forest: exact tree SHAP on deep trees costs ~10–300 ms per row,
    so the sample is sized to about ``_FOREST_SECONDS`` of work (between 50 and 200 rows)."""
    explain_features(model, typed.head(1))  # imports shap and parses the trees
    probe = typed.head(10)
    start = time.perf_counter()
    explain_features(model, probe)
    per_row = (time.perf_counter() - start) / max(len(probe), 1)
    return int(np.clip(_FOREST_SECONDS / max(per_row, 1e-6), 50, _EXPLAIN_ROWS_FOREST))


def explanations(model: TrainedModel, scored: ScoredSet, *, seed: int = 0) -> dict[str, Any]:
    """Global importance, beeswarm and dependence data on a sample, and three example customers."""
    if scored.features is None or len(scored.y) == 0:
        return {"error": "no rows to explain"}
    typed = scored.features.reset_index(drop=True)
    n = len(typed)
    rng = np.random.default_rng(seed)
    try:
        limit = _EXPLAIN_ROWS
        if "random_forest" in model.pipeline.families:
            limit = _forest_rows(model, typed)
        sample = np.sort(rng.choice(n, size=min(n, limit), replace=False))
        part = typed.iloc[sample].reset_index(drop=True)
        ex = explain_features(model, part)
    except (PropensityError, ImportError) as exc:
        log.warning("explanations skipped: %s", exc)
        return {"error": str(exc)}
    specs = {f.name: f for f in model.manifest.input_schema.features}
    mean_abs = np.abs(ex.values).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    rank = np.argsort(-mean_abs, kind="stable")
    importance = [
        {
            "feature": ex.features[j],
            "description": specs[ex.features[j]].description,
            "role": specs[ex.features[j]].role,
            "mean_abs": _f(mean_abs[j]),
            "share": _f(mean_abs[j] / total),
        }
        for j in rank
    ]
    return {
        "space": SPACE,
        "dataset": scored.name,
        "sample_rows": len(part),
        "base": _f(float(ex.base[0])) if len(ex.base) else None,
        "importance": importance,
        "beeswarm": _beeswarm(ex, part, specs, rank, rng),
        "dependence": _dependence(ex, part, specs, rank),
        "examples": _examples(model, scored, typed),
    }


def _beeswarm(
    ex: Any, part: pd.DataFrame, specs: Mapping[str, FeatureSpec], rank: np.ndarray, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """SHAP values of the strongest features on (a sample of) the explained rows, coloured by value."""
    swarm_rows = np.arange(len(part))
    if len(part) > _BEESWARM_POINTS:
        swarm_rows = np.sort(rng.choice(len(part), size=_BEESWARM_POINTS, replace=False))
    beeswarm = []
    for j in rank[:_TOP_BEESWARM]:
        name = ex.features[j]
        col = part[name].iloc[swarm_rows]
        beeswarm.append(
            {
                "feature": name,
                "shap": _arr(ex.values[swarm_rows, j], 4),
                "color": _rank01(col),
                "value": _display_values(col, specs[name]),
                "jitter": _arr(rng.uniform(-0.32, 0.32, size=len(swarm_rows)), 3),
            }
        )
    return beeswarm


def _dependence(
    ex: Any, part: pd.DataFrame, specs: Mapping[str, FeatureSpec], rank: np.ndarray
) -> list[dict[str, Any]]:
    """SHAP value against feature value for the strongest features."""
    dependence = []
    for j in rank[:_TOP_DEPENDENCE]:
        name = ex.features[j]
        spec = specs[name]
        col = part[name]
        if spec.role == "numeric":
            x: list[Any] = [None if pd.isna(v) else float(v) for v in col]
        elif spec.role == "datetime":
            x = [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in col]
        else:
            x = _display_values(col, spec)
        dependence.append({"feature": name, "role": spec.role, "x": x, "shap": _arr(ex.values[:, j], 4)})
    return dependence


def _examples(model: TrainedModel, scored: ScoredSet, typed: pd.DataFrame) -> list[dict[str, Any]]:
    """Three customers explained: one scored high, one at the threshold, one low."""
    n = len(typed)
    p = np.asarray(scored.proba, dtype="float64")
    y = np.asarray(scored.y).astype("int64")
    asc = np.argsort(p, kind="stable")
    picks = {
        "high": int(asc[round(0.99 * (n - 1))]),
        "borderline": int(np.argmin(np.abs(p - model.threshold))),
        "low": int(asc[round(0.10 * (n - 1))]),
    }
    ids = scored.ids.reset_index(drop=True) if scored.ids is not None else None
    return [
        _example(
            model,
            typed.iloc[[i]],
            kind,
            float(p[i]),
            int(y[i]),
            ids.iloc[i] if ids is not None else f"{scored.name} row {i + 1}",
        )
        for kind, i in picks.items()
    ]


# --------------------------------------------------------------------------- assembling


def _policy_words(model: TrainedModel, main: dict[str, Any], main_label: str) -> str:
    pol = model.manifest.policy
    m = main["metrics"]
    text = (
        f"Contact a customer when the predicted probability is at least {pol.threshold:.3f} "
        f"({pol.rationale})."
    )
    if m.get("contacted_share") is not None:
        text += (
            f" On the {main_label} this contacts {percent(m['contacted_share'])} of customers "
            f"({m['confusion']['tp'] + m['confusion']['fp']:,}) and reaches {percent(m.get('recall'))} of the "
            f"buyers, with {percent(m.get('precision'))} of those contacted buying."
        )
    return text


def _profit_params(model: TrainedModel, value: float | None, cost: float | None) -> tuple[float, float, str]:
    if value is not None and cost is not None:
        return float(value), float(cost), "given"
    params = model.manifest.policy.params
    if "value" in params and "cost" in params:
        return float(params["value"]), float(params["cost"]), "policy"
    return EXAMPLE_PROFIT[0], EXAMPLE_PROFIT[1], "example"


def _model_block(model: TrainedModel) -> dict[str, Any]:
    m = model.manifest
    return {
        "version": m.model_version,
        "winner": m.winner,
        "family": model.pipeline.family,
        "target": m.task.target,
        "positive": m.task.positive,
        "negative": m.task.negative,
        "calibration": m.calibration.method,
        "calibration_scores": m.calibration.scores,
        "selection_metric": m.provenance.metric,
        "ensemble": m.ensemble.model_dump(mode="json") if m.ensemble is not None else None,
        "threshold": m.policy.threshold,
        "policy": {"kind": m.policy.kind, "params": m.policy.params, "rationale": m.policy.rationale},
        "bands": [
            {"name": b.name, "lower": b.lower, "upper": b.upper, "meaning": b.meaning} for b in m.policy.bands
        ],
        "features": [
            {"name": f.name, "role": f.role, "description": f.description} for f in m.input_schema.features
        ],
    }


def build_evaluation(
    model: TrainedModel,
    sets: Sequence[ScoredSet],
    *,
    kind: str,
    main: str,
    data: Mapping[str, Any],
    warnings: Sequence[str] = (),
    value: float | None = None,
    cost: float | None = None,
    explain: bool = True,
) -> dict[str, Any]:
    """Assemble ``evaluation.json`` from scored sets (the lower-level entry point of both commands)."""
    from propensity import __version__

    value_, cost_, source = _profit_params(model, value, cost)
    threshold = model.threshold
    datasets = {s.name: dataset_summary(s, threshold, value_, cost_, source) for s in sets}
    main_set = next(s for s in sets if s.name == main)
    notes = list(warnings)
    for s in sets:
        undefined = datasets[s.name]["metrics"]["undefined"]
        if undefined:
            listed = ", ".join(f"{k} ({v})" for k, v in undefined.items())
            notes.append(f"On the {s.label}, these metrics are undefined: {listed}.")
    expl: dict[str, Any] = (
        explanations(model, main_set) if explain else {"error": "explanations were not requested"}
    )
    order = [str(row["feature"]) for row in expl.get("importance", [])] or None
    model_block = _model_block(model)
    model_block["policy_in_words"] = _policy_words(model, datasets[main], main_set.label)
    evaluation = {
        "schema": "propensity-evaluation",
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "propensity_version": __version__,
        "model": model_block,
        "data": dict(data),
        "main": main,
        "datasets": datasets,
        "candidates": [c.model_dump() for c in model.manifest.candidates],
        "slices": slices(model, main_set, threshold, order),
        "explanations": expl,
        "warnings": notes,
    }
    return _clean(evaluation)


def _clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def evaluate_training(model: TrainedModel, run: TrainingRun | None) -> dict[str, Any]:
    """The evaluation of a model fresh from training: out-of-fold and held-out test predictions.

    ``run`` is the training's in-memory record (``TrainingResult.run``).

    Raises
    ------
    PropensityError
        ``run`` is ``None`` (a model loaded from a bundle has none): evaluate it on labelled data.
    """
    if run is None:
        raise PropensityError(
            "This model has no training run (it was loaded from a bundle); evaluate it on labelled "
            "data with propensity.evaluate(model, data) or `propensity evaluate`."
        )
    m = model.manifest
    prov = m.provenance
    sets = [
        ScoredSet(
            "oof",
            "out-of-fold predictions on the training rows",
            run.y_train,
            run.oof,
            run.oof_raw,
            run.X_train,
        ),
        ScoredSet(
            "test",
            f"test set ({prov.test_source})",
            run.y_test,
            run.test_proba,
            run.test_raw,
            run.X_test,
            run.ids_test,
        ),
    ]
    data = {
        "source": prov.data_source,
        "rows_in": prov.rows_in,
        "rows_quarantined": prov.rows_quarantined,
        "quarantine_reasons": prov.quarantine_reasons,
        "rows_used": prov.rows_used,
        "rows_train": prov.rows_train,
        "rows_test": prov.rows_test,
        "test_source": prov.test_source,
        "refit_rows": prov.refit_rows,
        "positive_rate": m.task.positive_rate,
        "unexpected_columns": [],
        "imputed_columns": [],
        "unknown_categories": {},
        "target_note": m.task.note,
    }
    warnings = []
    if prov.rows_quarantined:
        warnings.append(
            f"{prov.rows_quarantined:,} of {prov.rows_in:,} rows were quarantined and not used (see quarantine.csv)."
        )
    return build_evaluation(model, sets, kind="training", main="test", data=data, warnings=warnings)


def target_labels(values: pd.Series, positive: str, negative: str) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels of a target column for a model trained with ``positive``/``negative`` labels.

    Returns ``(y, unusable)``: ``y`` is 1 for the positive value, 0 for the negative one;
    ``unusable`` marks missing values and values that are neither (unless the model was
    trained one-vs-rest, where every other value is negative). Yes/no spellings match across
    files (``TRUE`` in training, ``1`` or ``yes`` now).
    """
    text = category_text(values)
    missing = text.isna().to_numpy()
    low = text.fillna("").str.lower()
    pos_low, neg_low = positive.lower(), negative.lower()
    if pos_low in TRUE_TEXTS | FALSE_TEXTS and neg_low in TRUE_TEXTS | FALSE_TEXTS:
        pos_set = TRUE_TEXTS if pos_low in TRUE_TEXTS else FALSE_TEXTS
        neg_set = FALSE_TEXTS if pos_set is TRUE_TEXTS else TRUE_TEXTS
        is_pos = low.isin(pos_set).to_numpy()
        is_neg = low.isin(neg_set).to_numpy()
    else:
        is_pos = (text == positive).to_numpy()
        is_neg = (~missing & ~is_pos) if negative.startswith("rest (") else (text == negative).to_numpy()
    unusable = missing | ~(is_pos | is_neg)
    return is_pos.astype("int64"), unusable


def evaluate_frame(
    model: TrainedModel,
    frame: pd.DataFrame,
    *,
    source: str = "DataFrame",
    target: str | None = None,
    value: float | None = None,
    cost: float | None = None,
    allow_missing: bool = False,
    quarantine_path: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a model on labelled rows already read; return the ``evaluation.json`` data.

    :func:`propensity.evaluate` (in :mod:`propensity.workflows.evaluation`) finds the model and
    reads the file, then calls this. Parameters are as there; ``source`` names the rows.

    Raises
    ------
    SchemaError
        The target column is absent, or the rows lack columns the model needs.
    DataError
        No row with a usable outcome and readable features remains.
    """
    task = model.manifest.task
    target = target or task.target
    _check_target(frame, target, task)
    features = frame.drop(columns=[target])
    missing_req, missing_opt, unexpected = _check_feature_columns(model, features, allow_missing)
    y_all, unusable = target_labels(frame[target], task.positive, task.negative)
    prepared = model.prepare(features, allow_missing=allow_missing)
    quarantine = prepared.quarantine
    if unusable.any():
        reason = f"target is missing or not one of {task.positive!r} / {task.negative!r}"
        quarantine.add(unusable, target, frame[target][unusable], reason)
    good = ~quarantine.bad
    if not good.any():
        reasons = ", ".join(f"{k}: {v}" for k, v in quarantine.counts_by_reason().items())
        raise DataError(f"No usable rows to evaluate: all {len(frame):,} were quarantined ({reasons}).")
    typed = prepared.features[good].reset_index(drop=True)
    y = y_all[good]
    X = model.pipeline.encoder.transform(typed)
    raw = model.pipeline.raw_proba_encoded(X)
    ids = prepared.ids[good].reset_index(drop=True) if model.id_column in frame.columns else None
    name = Path(source).name if source != "DataFrame" else source
    scored = ScoredSet(
        "evaluation", f"evaluation data ({name})", y, model.pipeline.calibrator(raw), raw, typed, ids
    )
    imputed = missing_req + missing_opt
    data_block = {
        "source": source,
        "rows_in": len(frame),
        "rows_quarantined": quarantine.n_bad_rows,
        "quarantine_reasons": quarantine.counts_by_reason(),
        "rows_used": int(good.sum()),
        "positive_rate": _f(y.mean()),
        "unexpected_columns": unexpected,
        "imputed_columns": imputed,
        "unknown_categories": prepared.unknown_categories,
        "target_column": target,
    }
    warnings = _evaluation_warnings(model, y, target, data_block)
    evaluation = build_evaluation(
        model,
        [scored],
        kind="evaluation",
        main="evaluation",
        data=data_block,
        warnings=warnings,
        value=value,
        cost=cost,
    )
    if quarantine.n_bad_rows and quarantine_path is not None:
        evaluation["data"]["quarantine_file"] = str(quarantine.write(quarantine_path))
    return evaluation


def _check_target(frame: pd.DataFrame, target: str, task: Any) -> None:
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise SchemaError(
            f"The evaluation data have no column '{target}', the outcome the model was trained to predict "
            f"('{task.target}' = {task.positive!r}).{did_you_mean(target, columns)} Pass --target COL naming the "
            f"column that holds the outcome; the columns are: {shown_columns(columns)}."
        )


def _check_feature_columns(
    model: TrainedModel, features: pd.DataFrame, allow_missing: bool
) -> tuple[list[str], list[str], list[str]]:
    """``(missing required, missing optional, unexpected)``; refuses missing required columns."""
    missing_req, missing_opt, unexpected = model.check_columns(list(features.columns))
    if missing_req and not allow_missing:
        raise SchemaError(
            "The data do not match the model: missing column(s) "
            + ", ".join(map(repr, missing_req + missing_opt))
            + " that the model was trained on"
            + (f"; unexpected column(s) {', '.join(map(repr, unexpected[:30]))}" if unexpected else "")
            + ". Is this the right model for this file? Rename the columns, or pass --allow-missing to "
            "impute the missing ones (scores will be less accurate)."
        )
    return missing_req, missing_opt, unexpected


def _evaluation_warnings(
    model: TrainedModel, y: np.ndarray, target: str, data: Mapping[str, Any]
) -> list[str]:
    """What the report says about the evaluation rows before any figure."""
    task = model.manifest.task
    warnings = []
    if data["rows_quarantined"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in data["quarantine_reasons"].items())
        warnings.append(
            f"{data['rows_quarantined']:,} of {data['rows_in']:,} rows were quarantined and not evaluated ({reasons})."
        )
    if data["imputed_columns"]:
        warnings.append(
            f"Absent column(s) imputed by the model: {', '.join(data['imputed_columns'])} — scores are less accurate."
        )
    if data["unknown_categories"]:
        listed = ", ".join(f"{k}: {v}" for k, v in data["unknown_categories"].items())
        warnings.append(f"Categories not seen in training were scored as 'other' ({listed} rows).")
    if data["unexpected_columns"]:
        warnings.append(
            f"Column(s) not used by the model were ignored: {', '.join(data['unexpected_columns'][:20])}."
        )
    if not _two_classes(y):
        only = task.positive if y.sum() else task.negative
        warnings.append(
            f"The evaluation data hold a single outcome ({target} = {only!r} in every usable row), so the "
            "model's ranking cannot be judged; calibration, Brier score and log loss are still shown."
        )
    return warnings


def write_evaluation(evaluation: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``evaluation.json`` (atomic: temporary file, then rename)."""
    path = Path(path)
    text = json.dumps(evaluation, indent=1, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
