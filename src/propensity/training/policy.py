"""Decision policies: from calibrated out-of-fold probabilities to a contact threshold and bands.

- ``f1``: the threshold with the best F1 (balance of precision and recall);
- ``profit``: contact when the expected profit ``p·value − cost`` is positive, i.e. ``p > cost/value``;
- ``top``: contact a fixed share of customers (capacity);
- ``precision``: the lowest threshold whose precision is at least ``min`` (most buyers reached at that precision);
- ``recall``: the highest threshold whose recall is at least ``min`` (fewest contacts for that reach).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.metrics import precision_recall_curve

from propensity.errors import DataError, ParameterError
from propensity.manifest import Band, DecisionPolicy
from propensity.metrics import confusion_at

__all__ = ["PolicyKind", "PolicySpec", "choose_policy", "make_bands"]

PolicyKind = Literal["f1", "profit", "top", "precision", "recall"]


@dataclass(frozen=True)
class PolicySpec:
    """What the user asked for (``--policy`` and its options)."""

    kind: PolicyKind = "f1"
    value: float | None = None
    cost: float | None = None
    fraction: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("f1", "profit", "top", "precision", "recall"):
            raise ParameterError(
                f"The 'policy' parameter must be one of f1, profit, top, precision, recall. Got {self.kind!r} instead."
            )
        if self.kind == "profit" and (
            self.value is None or self.cost is None or self.value <= 0 or self.cost < 0
        ):
            raise ParameterError(
                "The profit policy needs --value V > 0 (margin of a conversion) and --cost C >= 0 (cost of a contact). "
                f"Got value={self.value}, cost={self.cost} instead."
            )
        if self.kind == "top" and (self.fraction is None or not 0 < self.fraction <= 1):
            raise ParameterError(f"The top policy needs --fraction F in (0, 1]. Got {self.fraction} instead.")
        if self.kind in ("precision", "recall") and (self.min is None or not 0 < self.min <= 1):
            raise ParameterError(f"The {self.kind} policy needs --min in (0, 1]. Got {self.min} instead.")
        if (self.value is None) != (self.cost is None):
            raise ParameterError("--value and --cost go together (both or neither).")

    def params(self) -> dict[str, float]:
        return {
            k: float(v) for k in ("value", "cost", "fraction", "min") if (v := getattr(self, k)) is not None
        }


def _f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def choose_policy(spec: PolicySpec, y: np.ndarray, p: np.ndarray) -> DecisionPolicy:
    """Choose the threshold on calibrated out-of-fold probabilities and describe it.

    Raises
    ------
    DataError
        If a precision or recall target cannot be met on these data (the message gives the best reachable).
    """
    y = np.asarray(y).astype("int64")
    p = np.asarray(p, dtype="float64")
    n = len(y)
    if spec.kind == "f1":
        threshold = _f1_threshold(y, p)
        why = "the threshold with the highest F1 on out-of-fold predictions"
    elif spec.kind == "profit":
        assert spec.value is not None and spec.cost is not None
        threshold = min(1.0, spec.cost / spec.value)
        why = (
            f"contact when the expected profit p×{spec.value:g} − {spec.cost:g} is positive, "
            f"i.e. probability ≥ {threshold:.4f}"
        )
    elif spec.kind == "top":
        assert spec.fraction is not None
        k = max(1, int(np.ceil(spec.fraction * n)))
        threshold = float(np.sort(p)[::-1][k - 1])
        why = f"contact the top {spec.fraction:.1%} of customers by probability (capacity)"
    else:
        assert spec.min is not None
        precision, recall, thresholds = precision_recall_curve(y, p)
        values = precision[:-1] if spec.kind == "precision" else recall[:-1]
        ok = np.flatnonzero(values >= spec.min)
        if ok.size == 0:
            raise DataError(
                f"No threshold reaches {spec.kind} ≥ {spec.min:g} on out-of-fold predictions; the best reachable "
                f"is {values.max():.3f}. Lower --min or choose another --policy."
            )
        # precision: lowest such threshold (most reach); recall: highest such threshold (fewest contacts)
        threshold = float(thresholds[ok[0]] if spec.kind == "precision" else thresholds[ok[-1]])
        why = f"the {'lowest' if spec.kind == 'precision' else 'highest'} threshold with {spec.kind} ≥ {spec.min:g} on out-of-fold predictions"
    expected = _expected(y, p, threshold, spec)
    return DecisionPolicy(
        kind=spec.kind,
        params=spec.params(),
        threshold=float(threshold),
        rationale=why,
        expected=expected,
        bands=make_bands(y, p, threshold),
    )


def _expected(y: np.ndarray, p: np.ndarray, threshold: float, spec: PolicySpec) -> dict[str, Any]:
    cm = confusion_at(y, p, threshold)
    contacted = cm["tp"] + cm["fp"]
    out: dict[str, Any] = {
        "rows": len(y),
        "contacted": contacted,
        "contacted_share": contacted / len(y) if len(y) else 0.0,
        "buyers_reached": cm["tp"],
        "precision": cm["tp"] / contacted if contacted else None,
        "recall": cm["tp"] / (cm["tp"] + cm["fn"]) if (cm["tp"] + cm["fn"]) else None,
        "expected_buyers": float(p[p >= threshold].sum()),
    }
    if spec.value is not None and spec.cost is not None:
        out["profit"] = float(cm["tp"] * spec.value - contacted * spec.cost)
        out["profit_contact_all"] = float(y.sum() * spec.value - len(y) * spec.cost)
    return out


def make_bands(y: np.ndarray, p: np.ndarray, threshold: float) -> list[Band]:
    """High = at or above the contact threshold; medium = above the average customer's chance; low = the rest."""
    base = float(np.mean(y)) if len(y) else 0.0
    medium_lower = base if base < threshold else threshold / 2
    edges: list[tuple[Literal["high", "medium", "low"], float, float, str]] = [
        ("high", threshold, 1.0, "at or above the contact threshold"),
        ("medium", medium_lower, threshold, "better than the average customer, below the threshold"),
        ("low", 0.0, medium_lower, "below the average customer's chance"),
    ]
    bands = []
    for name, lo, hi, meaning in edges:
        mask = (p >= lo) & ((p < hi) if name != "high" else np.ones_like(p, dtype=bool))
        bands.append(
            Band(
                name=name,
                lower=float(lo),
                upper=float(hi),
                share=float(mask.mean()) if len(p) else 0.0,
                observed_rate=float(y[mask].mean()) if mask.any() else None,
                meaning=meaning,
            )
        )
    return bands
