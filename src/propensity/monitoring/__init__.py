"""Monitoring: input drift, score drift and performance decay against a bundle's training profile.

The statistics live in :mod:`~propensity.monitoring.stats`, the DuckDB aggregation of the new rows
in :mod:`~propensity.monitoring.drift`, score and performance checks in
:mod:`~propensity.monitoring.performance`; :func:`propensity.workflows.monitoring.monitor` runs them.
"""

from propensity.monitoring.drift import FeatureDrift, feature_drift
from propensity.monitoring.performance import realised_performance, score_drift
from propensity.monitoring.thresholds import STATUS_ORDER, Thresholds, worst

__all__ = [
    "STATUS_ORDER",
    "FeatureDrift",
    "Thresholds",
    "feature_drift",
    "realised_performance",
    "score_drift",
    "worst",
]
