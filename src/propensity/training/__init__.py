"""Training: hold-out, candidates, cross-validation, tuning, calibration, the decision policy.

- :mod:`~propensity.training.trainer` — :class:`TrainConfig` and :func:`fit`, the whole fit in order;
- :mod:`~propensity.training.holdout` — validation and the test split;
- :mod:`~propensity.training.selection` — candidates on shared folds, screening, tuning, the winner;
- :mod:`~propensity.training.candidates` — the model families; :mod:`~propensity.training.cv`, folds;
- :mod:`~propensity.training.calibration`, :mod:`~propensity.training.policy` — calibration choice, threshold;
- :mod:`~propensity.training.describe` — what the manifest records about a fit.
"""

from propensity.training.policy import PolicySpec
from propensity.training.trainer import FitResult, ProgressEvent, TrainConfig, TrainingRun, fit

__all__ = ["FitResult", "PolicySpec", "ProgressEvent", "TrainConfig", "TrainingRun", "fit"]
