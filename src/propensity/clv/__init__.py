"""Customer lifetime value: who is still alive, how often they will buy, how much they are worth.

A package like pymc-marketing's ``clv/``: a summary module and one module per model.

- :mod:`~propensity.clv.summary` — frequency / recency / T / monetary value at a cutoff (and a
  holdout period), an Ibis expression run by DuckDB or Spark;
- :mod:`~propensity.clv.beta_geo` — BG/NBD; :mod:`~propensity.clv.pareto_nbd` — Pareto/NBD;
  :mod:`~propensity.clv.gamma_gamma` — Gamma-Gamma spend; each fits with pymc-marketing (MAP with
  flat priors by default, a posterior optionally) and evaluates its closed forms in numpy/scipy;
- :mod:`~propensity.clv.base` — the typed :class:`ModelFit`;
- :mod:`~propensity.clv.predict` — vectorised per-customer predictions and lifetime value;
- :mod:`~propensity.clv.fit` — fit several models, predict, and the holdout check;
- :mod:`~propensity.clv.model` — :class:`ClvModel`, a saved CLV bundle's models ready to score.

Importing this package imports neither Ibis nor pymc-marketing: the summary builds its expression
when called and pymc-marketing is imported only inside a fit, so scoring never loads PyMC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["ClvFit", "ClvModel", "ModelFit", "fit_clv", "holdout_check", "predict", "rfm_summary"]

_LAZY = {
    "ClvFit": "propensity.clv.fit",
    "fit_clv": "propensity.clv.fit",
    "holdout_check": "propensity.clv.fit",
    "predict": "propensity.clv.fit",
    "ModelFit": "propensity.clv.base",
    "ClvModel": "propensity.clv.model",
    "rfm_summary": "propensity.clv.summary",
}

if TYPE_CHECKING:  # pragma: no cover
    from propensity.clv.base import ModelFit
    from propensity.clv.fit import ClvFit, fit_clv, holdout_check, predict
    from propensity.clv.model import ClvModel
    from propensity.clv.summary import rfm_summary


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'propensity.clv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
