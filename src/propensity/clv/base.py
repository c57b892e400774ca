"""What the lifetime-value models share: the typed fit result and the pymc-marketing fitting call.

Fitting goes through pymc-marketing (``pymc_marketing.clv``), imported inside :func:`fit_pymc`
only: importing it takes seconds and pulls in PyMC and PyTensor, which scoring never needs. The
models' predictions are closed forms in numpy/scipy in each model's module, evaluated from the
parameters a fit stored (see :mod:`propensity.clv.predict`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from propensity.errors import InsufficientDataError, ParameterError

__all__ = [
    "FIT_METHODS",
    "MAX_STORED_DRAWS",
    "FitMethod",
    "ModelFit",
    "Params",
    "distinct_pairs",
    "fit_pymc",
    "gather",
    "param_arrays",
]

log = logging.getLogger(__name__)

FitMethod = Literal["map", "mcmc"]
FIT_METHODS: tuple[str, ...] = ("map", "mcmc")
#: Posterior draws kept per fit (thinned evenly): enough for 90 % intervals, small in a bundle.
MAX_STORED_DRAWS = 400
#: Parameters as scalars (a point estimate) or arrays broadcasting against the customers.
Params = Mapping[str, Any]


@dataclass
class ModelFit:
    """One fitted lifetime-value model: what a bundle stores and predictions read.

    Attributes
    ----------
    model
        ``bgnbd``, ``pareto_nbd`` or ``gamma_gamma``.
    params
        Point estimates (the MAP, or the posterior mean for ``mcmc``) by name, e.g. ``r``, ``alpha``.
    log_likelihood
        Total log-likelihood of the fitting data at ``params``, from the closed form.
    fit_seconds
        Wall time of the pymc-marketing fit (model build, PyTensor compilation and optimisation).
    customers
        Customers the model was fitted on.
    method
        ``map`` (maximum a posteriori with flat priors, i.e. maximum likelihood) or ``mcmc``.
    priors
        The priors, as text (``HalfFlat`` for every parameter by default).
    posterior
        With ``mcmc``: up to :data:`MAX_STORED_DRAWS` draws per parameter (thinned evenly), which
        give the credible intervals; ``None`` for MAP.
    notes
        Anything a reader should know (customers excluded from the fit and why).
    """

    model: str
    params: dict[str, float]
    log_likelihood: float
    fit_seconds: float
    customers: int
    method: str = "map"
    priors: dict[str, str] = field(default_factory=dict)
    posterior: dict[str, list[float]] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelFit:
        return cls(**dict(data))

    def draws(self) -> dict[str, np.ndarray] | None:
        """Posterior draws as arrays of shape ``(draws, 1)`` (they broadcast against customers)."""
        if not self.posterior:
            return None
        return {k: np.asarray(v, dtype="float64")[:, None] for k, v in self.posterior.items()}


#: Below this many customers, evaluating every customer is cheaper than finding the distinct ones.
DISTINCT_ABOVE = 1000


def distinct_pairs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The distinct ``(a, b)`` pairs of two customer columns and each customer's index among them.

    The Gauss hypergeometric terms of BG/NBD and Pareto/NBD depend on a customer only through a
    pair such as (frequency, T). Summaries count whole days, so a million customers share a few
    thousand pairs: evaluating ``hyp2f1`` once per pair and gathering is what keeps a million
    customers' predictions in seconds (``hyp2f1`` costs microseconds a call). Returns the inputs
    and ``None`` for short or non-1-D inputs, where the lookup would cost more than it saves.
    """
    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    if a.ndim != 1 or a.shape != b.shape or len(a) < DISTINCT_ABOVE:
        return a, b, None
    # Two float64 columns viewed as one complex128 key: pandas hashes it in one pass.
    key = np.column_stack([a, b]).view(np.complex128).ravel()
    codes, uniques = pd.factorize(key)
    return np.ascontiguousarray(uniques.real), np.ascontiguousarray(uniques.imag), codes


def gather(values: Any, inverse: np.ndarray | None) -> Any:
    """Per-customer values back from per-pair ones (the last axis); unchanged without an index."""
    return values if inverse is None else np.asarray(values)[..., inverse]


def param_arrays(params: Params, names: Sequence[str]) -> list[Any]:
    """The named parameters in order; a clear error when one is missing or not positive."""
    out = []
    for name in names:
        if name not in params:
            raise ParameterError(f"The model parameters lack {name!r}: expected {', '.join(names)}.")
        value = params[name]
        if np.any(np.asarray(value) <= 0) or not np.all(np.isfinite(np.asarray(value, dtype="float64"))):
            raise ParameterError(f"The model parameter {name!r} must be positive and finite. Got {value!r}.")
        out.append(value)
    return out


def fit_pymc(
    model_class: str,
    data: pd.DataFrame,
    names: Sequence[str],
    *,
    model: str,
    log_likelihood: Callable[[dict[str, float]], float],
    method: str = "map",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    notes: Sequence[str] = (),
) -> ModelFit:
    """Fit ``pymc_marketing.clv.<model_class>`` with flat priors on ``names`` and return the :class:`ModelFit`.

    ``map`` maximises the posterior, which under flat (``HalfFlat``) priors is the likelihood:
    the published maximum-likelihood estimates. ``mcmc`` samples with NUTS (``chains`` chains
    one after the other, so the shared machine's other cores stay free). ``log_likelihood`` gives
    the total log-likelihood of ``data`` at the point estimate (the model's closed form).

    Raises
    ------
    ParameterError
        Unknown method, or pymc-marketing is not installed.
    InsufficientDataError
        No customer to fit on.
    """
    if method not in FIT_METHODS:
        raise ParameterError(
            f"The 'method' parameter must be one of {', '.join(FIT_METHODS)}. Got {method!r} instead."
        )
    if data.empty:
        raise InsufficientDataError(f"No customer to fit the {model_class} on.")
    started = time.perf_counter()
    # Imported here: pymc-marketing pulls in PyMC and PyTensor (seconds); scoring never needs them.
    try:
        import pymc_marketing.clv as clv
        from pymc_extras.prior import Prior
    except ImportError as exc:  # pragma: no cover - the clv extra is part of `all`
        raise ParameterError(
            f"Fitting lifetime-value models needs pymc-marketing ({exc}): pip install 'propensity[clv]'."
        ) from exc

    cls = getattr(clv, model_class)
    fitted = cls(model_config={name: Prior("HalfFlat") for name in names})
    if method == "map":
        fitted.fit(data=data, method="map", progressbar=False)
    else:
        fitted.fit(
            data=data,
            method="mcmc",
            draws=draws,
            tune=tune,
            chains=chains,
            cores=1,
            random_seed=seed,
            progressbar=False,
        )
    seconds = time.perf_counter() - started
    posterior = fitted.fit_result if method == "map" else fitted.idata.posterior
    point = {name: float(np.asarray(posterior[name]).mean()) for name in names}
    kept: dict[str, list[float]] | None = None
    if method == "mcmc":
        flat = {name: np.asarray(posterior[name]).reshape(-1) for name in names}
        n = len(next(iter(flat.values())))
        pick = np.unique(np.linspace(0, n - 1, min(n, MAX_STORED_DRAWS)).round().astype(int))
        kept = {name: [float(v) for v in values[pick]] for name, values in flat.items()}
    log.info("%s fitted by %s in %.1f s: %s", model_class, method, seconds, point)
    return ModelFit(
        model=model,
        params=point,
        log_likelihood=float(log_likelihood(point)),
        fit_seconds=round(seconds, 3),
        customers=len(data),
        method=method,
        priors=dict.fromkeys(names, "HalfFlat"),
        posterior=kept,
        notes=list(notes),
    )
