"""propensity: who will buy (or churn), why, whom to contact — in batch, over HTTP, live.

The public API is small and imported lazily, so ``import propensity`` stays fast::

    import propensity
    model = propensity.train("shoppers.csv", target="Revenue", out="models/shoppers")
    model = propensity.load_model("models/shoppers")
    scores = model.decide(new_rows)

    # from an event or order log
    model = propensity.train_from_events("events.parquet", horizon_days=30, cutoffs=6, out="models/shop")
    propensity.score_events("models/shop", "events.parquet", "scores.parquet", as_of="2024-12-31")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "PolicySpec",
    "ScoreSummary",
    "TrainedModel",
    "__version__",
    "compute_features",
    "feature_registry",
    "generate_shop",
    "load_events",
    "load_model",
    "resolve_model",
    "save_model",
    "score_events",
    "score_file",
    "train",
    "train_from_events",
    "validate_events",
]

_LAZY = {
    "train": "propensity.api",
    "score_file": "propensity.api",
    "resolve_model": "propensity.api",
    "ScoreSummary": "propensity.api",
    "load_model": "propensity.bundle",
    "save_model": "propensity.bundle",
    "TrainedModel": "propensity.pipeline",
    "PolicySpec": "propensity.training.policy",
    "generate_shop": "propensity.synthetic",
    "load_events": "propensity.events.validate",
    "validate_events": "propensity.events.validate",
    "feature_registry": "propensity.events.features",
    "compute_features": "propensity.events.workflow",
    "train_from_events": "propensity.events.workflow",
    "score_events": "propensity.events.workflow",
}

if TYPE_CHECKING:  # pragma: no cover
    from propensity.api import ScoreSummary, resolve_model, score_file, train
    from propensity.bundle import load_model, save_model
    from propensity.events.features import feature_registry
    from propensity.events.validate import load_events, validate_events
    from propensity.events.workflow import compute_features, score_events, train_from_events
    from propensity.pipeline import TrainedModel
    from propensity.synthetic import generate_shop
    from propensity.training.policy import PolicySpec


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'propensity' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
