"""Point-in-time customer features and labels from canonical events, run by any engine.

Every feature uses **only events with ``ts < as_of``**; labels use only the horizon after it.
The package is one registry over small group modules, each declaring its features once
(name, Ibis expression, definition, window, unit, a phrase for reason codes):

- :mod:`~propensity.features.base` — :class:`FeatureDef`, :class:`FeatureConfig`, the context;
- :mod:`~propensity.features.counts` — activity per event type and window, spend, recency, trend;
- :mod:`~propensity.features.timing` — hour-of-day and weekend profile, device and channel shares;
- :mod:`~propensity.features.active_days` — active days per window;
- :mod:`~propensity.features.sessions` — sessions, visit length and depth, funnel rates;
- :mod:`~propensity.features.orders` — orders, average order value, days between orders;
- :mod:`~propensity.features.categories` — category diversity and the favourite category;
- :mod:`~propensity.features.registry` — the groups in order, :func:`build_features`,
  :func:`feature_registry`, level resolution and cutoff checks;
- :mod:`~propensity.features.labels` — labels, eligibility, rolling cutoffs, the training set.

Ibis is imported when an expression is built, never by importing this package.
"""

from __future__ import annotations

from propensity.features.base import DEFAULT_LOOKBACKS, FeatureConfig, FeatureDef, to_timestamp
from propensity.features.registry import (
    GROUPS,
    FeatureGroup,
    build_features,
    check_as_of,
    feature_registry,
    registry_frame,
    resolve_levels,
)

__all__ = [
    "DEFAULT_LOOKBACKS",
    "GROUPS",
    "FeatureConfig",
    "FeatureDef",
    "FeatureGroup",
    "build_features",
    "check_as_of",
    "feature_registry",
    "registry_frame",
    "resolve_levels",
    "to_timestamp",
]
