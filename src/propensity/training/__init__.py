"""Training: candidates, cross-validation, tuning, calibration and the decision policy."""

from propensity.training.policy import PolicySpec
from propensity.training.trainer import ProgressEvent, TrainConfig, TrainingRun, fit

__all__ = ["PolicySpec", "ProgressEvent", "TrainConfig", "TrainingRun", "fit"]
