"""Choose how to calibrate a candidate's probabilities: none, sigmoid (Platt) or isotonic.

The choice is made on cross-fitted out-of-fold predictions — for each fold, the
calibrator is fitted on the other folds' predictions and applied to this fold's — and
the method with the lowest log loss wins (Brier reported beside it). The chosen
calibrator is then refitted on all out-of-fold predictions and applied to the model
refitted on all training rows: the same scheme as scikit-learn's
``CalibratedClassifierCV(ensemble=False)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from propensity.metrics import metric_value
from propensity.pipeline import Calibrator, IdentityCalibrator, IsotonicCalibrator, SigmoidCalibrator, _logit

__all__ = ["METHODS", "CalibrationChoice", "choose_calibration", "fit_calibrator"]

CalibrationMethod = Literal["none", "sigmoid", "isotonic"]
METHODS: tuple[CalibrationMethod, ...] = ("none", "sigmoid", "isotonic")


def fit_calibrator(method: str, p: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit one calibrator on raw probabilities ``p`` and outcomes ``y``."""
    if method == "none":
        return IdentityCalibrator()
    if method == "sigmoid":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p).reshape(-1, 1), y)
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


class CalibrationChoice:
    """The chosen method, its calibrator (fitted on all OOF rows) and the cross-fitted OOF probabilities."""

    def __init__(
        self,
        method: CalibrationMethod,
        calibrator: Calibrator,
        oof: np.ndarray,
        scores: dict[str, dict[str, float]],
    ) -> None:
        self.method = method
        self.calibrator = calibrator
        self.oof = oof
        self.scores = scores


def choose_calibration(
    p: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    methods: Sequence[CalibrationMethod] = METHODS,
) -> CalibrationChoice:
    """Pick the calibration with the lowest cross-fitted out-of-fold log loss."""
    scores: dict[str, dict[str, float]] = {}
    crossfit: dict[str, np.ndarray] = {}
    for method in methods:
        out = np.empty_like(p)
        for tr, va in folds:
            out[va] = fit_calibrator(method, p[tr], y[tr])(p[va])
        crossfit[method] = out
        scores[method] = {
            "log_loss": round(float(metric_value("log_loss", y, out) or 0.0), 6),
            "brier": round(float(metric_value("brier", y, out) or 0.0), 6),
        }
    best = min(methods, key=lambda m: (scores[m]["log_loss"], scores[m]["brier"]))
    return CalibrationChoice(best, fit_calibrator(best, p, y), crossfit[best], scores)
