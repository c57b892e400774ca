"""propensity: who will buy (or churn), why, whom to contact — in batch, over HTTP, live.

The public API is small and imported lazily, so ``import propensity`` stays fast::

    import propensity
    result = propensity.train("shoppers.csv", target="Revenue", out="models/shoppers")
    model = propensity.load_model("models/shoppers")        # or result.model
    scores = model.decide(new_rows)

    # from an event or order log
    result = propensity.train_from_events("events.parquet", horizon_days=30, cutoffs=6, out="models/shop")
    propensity.score_events("models/shop", "events.parquet", "scores.parquet", as_of="2024-12-31")

The functions live in the application layer, :mod:`propensity.workflows`; see the README's
architecture map for which folder holds which stage.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The one deliberate import-time setting: OpenMP (used by LightGBM, XGBoost and scikit-learn)
# reads its wait policy once, when the library loads, so it must be set before they are
# imported. Spinning threads on a busy shared machine were measured to make a LightGBM fit
# 9x slower (68.7 s vs 7.8 s, 200k rows, 2 threads, load average 8); a passive wait costs
# next to nothing on an idle one. A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = [
    "PolicySpec",
    "ScoreSummary",
    "TrainedModel",
    "TrainingResult",
    "__version__",
    "compute_features",
    "evaluate",
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
    "train": "propensity.workflows.tables",
    "TrainingResult": "propensity.workflows.tables",
    "score_file": "propensity.workflows.scoring",
    "ScoreSummary": "propensity.workflows.scoring",
    "evaluate": "propensity.workflows.evaluation",
    "compute_features": "propensity.workflows.events",
    "train_from_events": "propensity.workflows.events",
    "score_events": "propensity.workflows.events",
    "resolve_model": "propensity.loading",
    "load_model": "propensity.bundle",
    "save_model": "propensity.bundle",
    "TrainedModel": "propensity.pipeline",
    "PolicySpec": "propensity.training.policy",
    "generate_shop": "propensity.synthetic",
    "load_events": "propensity.events.validate",
    "validate_events": "propensity.events.validate",
    "feature_registry": "propensity.features",
}

if TYPE_CHECKING:  # pragma: no cover
    from propensity.bundle import load_model, save_model
    from propensity.events.validate import load_events, validate_events
    from propensity.features import feature_registry
    from propensity.loading import resolve_model
    from propensity.pipeline import TrainedModel
    from propensity.synthetic import generate_shop
    from propensity.training.policy import PolicySpec
    from propensity.workflows.evaluation import evaluate
    from propensity.workflows.events import compute_features, score_events, train_from_events
    from propensity.workflows.scoring import ScoreSummary, score_file
    from propensity.workflows.tables import TrainingResult, train


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
