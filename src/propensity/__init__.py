"""propensity: who will buy (or churn), why, whom to contact — in batch, over HTTP, live.

The public API is small and imported lazily, so ``import propensity`` stays fast::

    import propensity
    model = propensity.train("shoppers.csv", target="Revenue", out="models/shoppers")
    model = propensity.load_model("models/shoppers")
    scores = model.decide(new_rows)
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
    "__version__",
    "evaluate",
    "load_model",
    "resolve_model",
    "save_model",
    "score_file",
    "train",
]

_LAZY = {
    "train": "propensity.api",
    "score_file": "propensity.api",
    "resolve_model": "propensity.api",
    "evaluate": "propensity.evaluation",
    "ScoreSummary": "propensity.api",
    "load_model": "propensity.bundle",
    "save_model": "propensity.bundle",
    "TrainedModel": "propensity.pipeline",
    "PolicySpec": "propensity.training.policy",
}

if TYPE_CHECKING:  # pragma: no cover
    from propensity.api import ScoreSummary, resolve_model, score_file, train
    from propensity.bundle import load_model, save_model
    from propensity.evaluation import evaluate
    from propensity.pipeline import TrainedModel
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
