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

import numpy as np

from propensity.calibration import METHODS, CalibrationMethod, Calibrator, fit_calibrator
from propensity.metrics import metric_value

__all__ = ["METHODS", "CalibrationChoice", "choose_calibration", "fit_calibrator"]


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
