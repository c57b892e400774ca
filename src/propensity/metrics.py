"""Binary-classification metrics used everywhere (selection, manifest, report, dashboard).

All functions take the 0/1 outcome ``y`` and the predicted probability (or score) ``p`` and
return plain floats, or ``None`` where a metric is undefined (for example ROC-AUC when the
data hold a single class) — never an exception, so a report can say *which* metric is
undefined instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "RANKING_METRICS",
    "binary_metrics",
    "cbpe",
    "confusion_at",
    "lift_at",
    "logit",
    "metric_value",
    "percent",
    "sigmoid",
]


def logit(p: Any) -> np.ndarray:
    """Log-odds of probabilities, clipped to [1e-12, 1 - 1e-12] so 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype="float64"), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def sigmoid(margin: Any) -> np.ndarray:
    """Probabilities of log-odds (the inverse of :func:`logit`)."""
    return 1.0 / (1.0 + np.exp(-margin))


def percent(share: Any, digits: int = 1, *, sep: str = "") -> str:
    """A share as a percentage for people: ``percent(0.1234)`` → ``"12.3%"``; ``None`` → ``"–"``.

    ``sep`` goes between the number and the sign (the HTML report writes ``"12.3 %"``).
    """
    if share is None:
        return "–"
    return f"{100 * float(share):.{digits}f}{sep}%"


#: Metrics that can be used for model selection, and whether higher is better.
HIGHER_IS_BETTER: Mapping[str, bool] = {
    "pr_auc": True,
    "roc_auc": True,
    "lift_top10": True,
    "log_loss": False,
    "brier": False,
}
METRICS = tuple(HIGHER_IS_BETTER)
#: Metrics that depend only on the order of the scores (any increasing map leaves them unchanged).
RANKING_METRICS = ("pr_auc", "roc_auc", "lift_top10")

_EPS = 1e-15


def _two_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < int(y.sum()) < y.size


def lift_at(y: np.ndarray, p: np.ndarray, fraction: float = 0.1) -> float | None:
    """Positive rate among the ``fraction`` highest scores divided by the overall positive rate.

    The top group holds ``ceil(fraction * n)`` rows; ties are broken by row order (stable sort).
    """
    y = np.asarray(y)
    if y.size == 0 or y.sum() == 0:
        return None
    k = max(1, int(np.ceil(fraction * y.size)))
    order = np.argsort(-np.asarray(p, dtype="float64"), kind="stable")[:k]
    return float(y[order].mean() / y.mean())


def confusion_at(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    """Counts of the confusion matrix when contacting every row with ``p >= threshold``."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(p) >= threshold
    return {
        "tp": int((pred & y).sum()),
        "fp": int((pred & ~y).sum()),
        "fn": int((~pred & y).sum()),
        "tn": int((~pred & ~y).sum()),
    }


def metric_value(name: str, y: np.ndarray, p: np.ndarray) -> float | None:
    """One named metric (see :data:`METRICS`)."""
    y = np.asarray(y)
    p = np.asarray(p, dtype="float64")
    if name == "lift_top10":
        return lift_at(y, p, 0.1)
    if name == "brier":
        return float(skm.brier_score_loss(y, p)) if y.size else None
    if name == "log_loss":
        return float(skm.log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])) if y.size else None
    if not _two_classes(y):
        return None
    if name == "roc_auc":
        return float(skm.roc_auc_score(y, p))
    if name == "pr_auc":
        return float(skm.average_precision_score(y, p))
    raise ValueError(f"Unknown metric '{name}'; choose one of {', '.join(METRICS)}.")


def binary_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float | None = None, ranking: np.ndarray | None = None
) -> dict[str, Any]:
    """Every headline metric of a set of predictions.

    ``ranking``, when given, supplies the order for :data:`RANKING_METRICS` instead of ``p``:
    the uncalibrated scores of out-of-fold predictions, whose cross-fitted calibrators differ
    from fold to fold and so reorder rows across folds, which the one final calibrator does not.

    Returns
    -------
    dict
        ``n``, ``positives``, ``positive_rate``, ``roc_auc``, ``pr_auc``, ``brier``, ``log_loss``,
        ``lift_top10``; with ``threshold`` also ``threshold``, ``precision``, ``recall``, ``f1``,
        ``contacted_share`` and the confusion counts. ``undefined`` lists metrics that cannot
        be computed on these data (e.g. ROC-AUC with one class), each with the reason.
    """
    y = np.asarray(y).astype("int64")
    p = np.asarray(p, dtype="float64")
    out: dict[str, Any] = {
        "n": int(y.size),
        "positives": int(y.sum()),
        "positive_rate": float(y.mean()) if y.size else None,
    }
    undefined: dict[str, str] = {}
    for name in METRICS:
        value = metric_value(name, y, ranking if ranking is not None and name in RANKING_METRICS else p)
        out[name] = value
        if value is None:
            undefined[name] = "needs both outcomes in the data" if y.size else "no rows"
    if threshold is not None:
        cm = confusion_at(y, p, threshold)
        contacted = cm["tp"] + cm["fp"]
        precision = cm["tp"] / contacted if contacted else None
        recall = cm["tp"] / (cm["tp"] + cm["fn"]) if (cm["tp"] + cm["fn"]) else None
        f1 = (
            (2 * cm["tp"] / (2 * cm["tp"] + cm["fp"] + cm["fn"]))
            if (cm["tp"] + cm["fp"] + cm["fn"])
            else None
        )
        out.update(
            threshold=float(threshold),
            precision=precision,
            recall=recall,
            f1=f1,
            contacted_share=contacted / y.size if y.size else None,
            confusion=cm,
        )
        if precision is None:
            undefined["precision"] = "nobody is above the threshold"
        if recall is None:
            undefined["recall"] = "no positives in the data"
    out["undefined"] = undefined
    return out


def cbpe(probability: np.ndarray, threshold: float) -> dict[str, float]:
    """Expected ROC-AUC, precision, recall and positive rate of calibrated probabilities.

    Each row counts as ``p`` of a positive and ``1 - p`` of a negative; ranking by ``p`` gives
    the expected true- and false-positive rates at every cut, and their trapezoid the expected
    ROC-AUC (NannyML's CBPE). Right when the calibration still holds on the new rows.
    """
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    if not len(p):
        return {
            "roc_auc": float("nan"),
            "precision": float("nan"),
            "recall": float("nan"),
            "positive_rate": float("nan"),
        }
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    pos, neg = ps.sum(), (1 - ps).sum()
    selected = p >= threshold
    expected = {
        "positive_rate": float(p.mean()),
        "precision": float(p[selected].mean()) if selected.any() else float("nan"),
        "recall": float(p[selected].sum() / pos) if pos > 0 else float("nan"),
    }
    if pos <= 0 or neg <= 0:
        expected["roc_auc"] = float("nan")
        return expected
    # Ties share one step: group equal probabilities so the curve does not depend on row order.
    _, first = np.unique(-ps, return_index=True)
    ends = np.append(first[1:], len(ps))
    tpr = np.concatenate([[0.0], np.cumsum(ps)[ends - 1] / pos])
    fpr = np.concatenate([[0.0], np.cumsum(1 - ps)[ends - 1] / neg])
    expected["roc_auc"] = float(np.trapezoid(tpr, fpr))
    return expected
