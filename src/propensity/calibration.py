"""Calibrators: map a model's raw probability to a calibrated one, never reordering customers.

Three methods — none, sigmoid (Platt scaling on the log-odds) and isotonic — share one call
signature. The bundle stores the fitted calibrator inside the scoring pipeline; choosing between
them (cross-fitted out-of-fold log loss) is training's job, in
:mod:`propensity.training.calibration`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from propensity.metrics import logit

__all__ = [
    "METHODS",
    "Calibrator",
    "IdentityCalibrator",
    "IsotonicCalibrator",
    "SigmoidCalibrator",
    "fit_calibrator",
]

CalibrationMethod = Literal["none", "sigmoid", "isotonic"]
METHODS: tuple[CalibrationMethod, ...] = ("none", "sigmoid", "isotonic")


class Calibrator(Protocol):
    """Maps raw probabilities to calibrated ones; ``method`` names the technique."""

    method: str

    def __call__(self, p: np.ndarray) -> np.ndarray: ...


class IdentityCalibrator:
    method = "none"

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(p, dtype="float64")


@dataclass
class SigmoidCalibrator:
    """Platt scaling on the log-odds: ``sigmoid(a * logit(p) + b)``."""

    a: float
    b: float
    method: str = "sigmoid"

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * logit(p) + self.b)))


@dataclass
class IsotonicCalibrator:
    """Isotonic regression stored as its breakpoints, applied with linear interpolation.

    A tiny multiple of the raw score is added so that calibration never merges customers
    the model ranked apart: ranking metrics (ROC-AUC, PR-AUC, lift) are unchanged by it.
    """

    x: np.ndarray
    y: np.ndarray
    tie_break: float = 1e-6
    method: str = "isotonic"

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype="float64")
        out = np.interp(p, self.x, self.y) + self.tie_break * (p - 0.5)
        return np.clip(out, 0.0, 1.0)


def fit_calibrator(method: str, p: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit one calibrator on raw probabilities ``p`` and outcomes ``y``."""
    if method == "none":
        return IdentityCalibrator()
    if method == "sigmoid":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit(p).reshape(-1, 1), y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a <= 0:  # scores that rank no better than chance: the base rate, never the reverse order
            rate = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
            a, b = 1e-6, float(np.log(rate / (1 - rate)))
        # every calibrator is increasing, so ranking metrics are those of the raw scores
        return SigmoidCalibrator(a=a, b=b)
    if method == "isotonic":
        eps = min(1e-3, 0.5 / max(len(y), 1))
        iso = IsotonicRegression(out_of_bounds="clip", y_min=eps, y_max=1 - eps).fit(p, y)
        return IsotonicCalibrator(x=np.asarray(iso.X_thresholds_), y=np.asarray(iso.y_thresholds_))
    raise ValueError(f"Unknown calibration '{method}'; choose one of {', '.join(METHODS)}.")
