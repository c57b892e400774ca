"""How many customers to contact, and what it is worth — the arithmetic behind the dashboard's
Model and Target pages, as plain functions.

- :func:`threshold_view`: the confusion matrix, precision, recall, contacted count and profit at
  a threshold, read from the threshold sweep that ``evaluation.json`` stores (so the numbers are
  the report's, not recomputed);
- :func:`plan_contacts`: given calibrated probabilities and a budget (contacts and/or money),
  contact the top customers by probability; expected buyers are the sum of their probabilities,
  and random targeting of the same number reaches ``contacts × base rate`` buyers.

Profit is ``buyers × value − contacts × cost``: ``value`` is what one conversion is worth (a
margin) and ``cost`` what one contact costs. With a per-customer value (``value_col``, e.g. a
lifetime value from ``propensity clv``), customers are ranked by *expected value*
``probability × value`` instead, and profit is the sum of the contacted expected values minus
the contacts' cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from propensity.errors import ParameterError, SchemaError

__all__ = ["ContactPlan", "ThresholdView", "plan_contacts", "threshold_view"]


def _check_money(name: str, value: float, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise ParameterError(
            f"The '{name}' parameter of {where} must be a number >= 0. Got {value!r} instead."
        )
    return v


@dataclass
class ThresholdView:
    """What contacting everyone with probability ≥ ``threshold`` does on a labelled set."""

    threshold: float
    n: int
    positives: int
    contacted: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None
    contacted_share: float
    value: float
    cost: float
    profit: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def threshold_view(
    sweep: Mapping[str, Sequence[Any]],
    *,
    n: int,
    positives: int,
    threshold: float,
    value: float,
    cost: float,
) -> ThresholdView:
    """The decision at ``threshold``, from a stored threshold sweep.

    Parameters
    ----------
    sweep
        ``evaluation.json``'s ``datasets[name]["sweep"]``: ascending ``threshold`` with, for each,
        ``contacted`` (rows with probability ≥ threshold) and ``tp`` (buyers among them).
    n, positives
        Rows and buyers of that data set (``datasets[name]["n"]`` and ``["positives"]``).
    threshold
        The threshold to look at; the sweep's nearest threshold is used (the sweep holds every
        multiple of 0.01 and the policy threshold, so a slider in steps of 0.01 is exact).
    value, cost
        Value of one conversion and cost of one contact, for ``profit``.

    Returns
    -------
    ThresholdView

    Example
    -------
    >>> ds = evaluation["datasets"]["test"]                                        # doctest: +SKIP
    >>> threshold_view(ds["sweep"], n=ds["n"], positives=ds["positives"],           # doctest: +SKIP
    ...                threshold=0.3, value=10, cost=1).precision
    """
    value = _check_money("value", value, "threshold_view")
    cost = _check_money("cost", cost, "threshold_view")
    grid = np.asarray(sweep.get("threshold", []), dtype="float64")
    if grid.size == 0:
        raise SchemaError("The threshold sweep is empty: the evaluation has no scored rows.")
    i = int(np.argmin(np.abs(grid - float(threshold))))
    contacted, tp = int(sweep["contacted"][i]), int(sweep["tp"][i])
    fp, fn = contacted - tp, positives - tp
    tn = n - contacted - fn
    precision = tp / contacted if contacted else None
    recall = tp / positives if positives else None
    f1 = 2 * tp / (contacted + positives) if contacted + positives else None
    return ThresholdView(
        threshold=float(grid[i]),
        n=n,
        positives=positives,
        contacted=contacted,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        precision=precision,
        recall=recall,
        f1=f1,
        contacted_share=contacted / n if n else 0.0,
        value=value,
        cost=cost,
        profit=tp * value - contacted * cost,
    )


@dataclass
class ContactPlan:
    """Whom to contact and what to expect (see :func:`plan_contacts`).

    ``selected`` is the contacted rows of the input, best first, with ``rank`` and
    ``expected_value`` (probability × value − cost); ``curve`` has, for a thinned grid of
    ``contacts`` from 0 to every candidate, the expected ``buyers``/``profit`` of targeting by
    score and the ``random_buyers``/``random_profit`` of contacting as many at random.
    ``value_col`` names the per-customer value column when one ranked the customers (then
    ``value`` is the candidates' mean value, for display).
    """

    candidates: int
    contacts: int
    limited_by: str
    value: float
    cost: float
    spend: float
    base_rate: float
    expected_buyers: float
    expected_profit: float
    random_buyers: float
    random_profit: float
    best_contacts: int
    best_profit: float
    min_probability: float | None
    selected: pd.DataFrame = field(repr=False)
    curve: pd.DataFrame = field(repr=False)
    value_col: str | None = None

    @property
    def extra_buyers(self) -> float:
        """Buyers reached beyond random targeting of the same number of customers."""
        return self.expected_buyers - self.random_buyers

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("selected", "curve")}
        out["extra_buyers"] = self.extra_buyers
        return out


def plan_contacts(
    scores: pd.DataFrame,
    *,
    value: float,
    cost: float,
    max_contacts: int | None = None,
    budget: float | None = None,
    profitable_only: bool = False,
    base_rate: float | None = None,
    probability_col: str = "probability",
    value_col: str | None = None,
    curve_points: int = 201,
) -> ContactPlan:
    """Contact the customers most likely to buy, within a budget, and compare with random targeting.

    Parameters
    ----------
    scores
        One row per candidate customer with a *calibrated* ``probability`` column (e.g. the
        output of ``propensity score``); other columns are carried into ``selected``.
    value, cost
        Value of one conversion and cost of one contact (both ≥ 0).
    value_col
        A column of ``scores`` with each customer's value of a conversion (≥ 0, e.g. ``clv``
        from ``propensity clv``): customers are then ranked by ``probability × value`` and
        ``value`` is ignored; missing values count as 0 and are reported by the caller.
    max_contacts
        At most this many contacts (``None``: no limit).
    budget
        At most this much money spent on contacts: ``floor(budget / cost)`` contacts
        (``None``, or a cost of 0: no limit).
    profitable_only
        Stop where a contact is no longer worth its cost (``probability × value ≤ cost``).
    base_rate
        Conversion rate of a randomly chosen candidate (default: the mean probability of all
        candidates, which calibration makes the expected rate).

    Returns
    -------
    ContactPlan
        ``expected_buyers`` = sum of the contacted probabilities; ``random_buyers`` =
        contacts × base rate; profits = buyers × value − contacts × cost (with ``value_col``:
        the contacted ``probability × value`` summed, and contacts × the candidates' mean
        expected value at random, minus the contacts' cost); ``limited_by`` says
        which limit decided the number (``candidates``, ``max_contacts``, ``budget`` or
        ``profitability``); ``best_contacts``/``best_profit`` is the most profitable number
        of contacts without the budget limits.

    Raises
    ------
    SchemaError
        ``scores`` lacks the probability column (or ``value_col``), or the values are negative.
    ParameterError
        A negative or non-numeric value, cost, budget or limit.

    Example
    -------
    >>> plan = plan_contacts(scores, value=40, cost=2, budget=1000)  # doctest: +SKIP
    >>> plan.contacts, round(plan.expected_profit)                  # doctest: +SKIP
    (500, 5520)
    """
    where = "plan_contacts"
    value = _check_money("value", value, where)
    cost = _check_money("cost", cost, where)
    p_all = _probabilities(scores, probability_col)
    n = len(p_all)
    rate = float(p_all.mean()) if base_rate is None and n else float(base_rate or 0.0)
    if not 0 <= rate <= 1:
        raise ParameterError(
            f"The 'base_rate' parameter of {where} must be in [0, 1]. Got {base_rate!r} instead."
        )
    if value_col is None:
        gain_all = p_all * value
        random_gain = rate * value
    else:
        values = _values(scores, value_col)
        value = float(values.mean()) if n else 0.0
        gain_all = p_all * values
        random_gain = float(gain_all.mean()) if base_rate is None and n else rate * value
    order = np.lexsort((-p_all, -gain_all))  # by expected value, then probability (value 0)
    p, gain = p_all[order], gain_all[order]
    worth = int(np.count_nonzero(gain > cost))
    k, limited_by = _contacts_limit(n, cost, worth, max_contacts, budget, profitable_only, where)
    cum = np.concatenate([[0.0], np.cumsum(p)])
    cum_gain = np.concatenate([[0.0], np.cumsum(gain)])
    buyers = float(cum[k])
    random_buyers = k * rate
    profit_curve = cum_gain - np.arange(n + 1) * cost
    best = int(np.argmax(profit_curve))
    selected = scores.iloc[order[:k]].copy()
    selected.insert(0, "rank", np.arange(1, k + 1))
    selected["expected_value"] = gain[:k] - cost
    return ContactPlan(
        candidates=n,
        contacts=k,
        limited_by=limited_by,
        value=value,
        cost=cost,
        spend=k * cost,
        base_rate=rate,
        expected_buyers=buyers,
        expected_profit=float(profit_curve[k]),
        random_buyers=random_buyers,
        random_profit=k * (random_gain - cost),
        best_contacts=best,
        best_profit=float(profit_curve[best]),
        min_probability=float(p[:k].min()) if k else None,
        selected=selected.reset_index(drop=True),
        curve=_plan_curve(cum, profit_curve, rate, random_gain, cost, (k, worth), curve_points),
        value_col=value_col,
    )


def _probabilities(scores: pd.DataFrame, probability_col: str) -> np.ndarray:
    if probability_col not in scores.columns:
        raise SchemaError(
            f"The scores lack the column '{probability_col}' (they have: {', '.join(map(str, scores.columns[:20]))})."
        )
    p_all = pd.to_numeric(scores[probability_col], errors="coerce").to_numpy(dtype="float64")
    if np.isnan(p_all).any() or (p_all < 0).any() or (p_all > 1).any():
        raise SchemaError(f"The '{probability_col}' column must hold probabilities in [0, 1] without gaps.")
    return p_all


def _values(scores: pd.DataFrame, value_col: str) -> np.ndarray:
    """Each candidate's value of a conversion: missing counts as 0, negative is refused."""
    if value_col not in scores.columns:
        raise SchemaError(
            f"The scores lack the value column '{value_col}' (they have: {', '.join(map(str, scores.columns[:20]))})."
        )
    values = pd.to_numeric(scores[value_col], errors="coerce").to_numpy(dtype="float64")
    values = np.where(np.isfinite(values), values, 0.0)
    if (values < 0).any():
        raise SchemaError(f"The '{value_col}' column must hold values >= 0.")
    return values


def _contacts_limit(
    n: int,
    cost: float,
    worth: int,
    max_contacts: int | None,
    budget: float | None,
    profitable_only: bool,
    where: str,
) -> tuple[int, str]:
    """How many to contact, and which limit decided it (the tightest one wins)."""
    k, limited_by = n, "candidates"
    if max_contacts is not None:
        if not isinstance(max_contacts, int | np.integer) or max_contacts < 0:
            raise ParameterError(
                f"The 'max_contacts' parameter of {where} must be an int >= 0. Got {max_contacts!r} instead."
            )
        if max_contacts < k:
            k, limited_by = int(max_contacts), "max_contacts"
    if budget is not None:
        money = _check_money("budget", budget, where)
        if cost > 0 and math.floor(money / cost + 1e-9) < k:
            k, limited_by = math.floor(money / cost + 1e-9), "budget"
    if profitable_only and worth < k:
        k, limited_by = worth, "profitability"
    return k, limited_by


def _plan_curve(
    cum: np.ndarray,
    profit_curve: np.ndarray,
    rate: float,
    random_gain: float,
    cost: float,
    marks: tuple[int, int],
    points: int,
) -> pd.DataFrame:
    """Buyers and profit against contacts, ours and random (``random_gain`` expected value per
    random contact), on a grid that includes ``marks``."""
    n = len(cum) - 1
    grid = (
        np.unique(np.linspace(0, n, min(points, n + 1)).round().astype("int64"))
        if n
        else np.zeros(1, "int64")
    )
    grid = np.unique(np.concatenate([grid, list(marks)]))
    return pd.DataFrame(
        {
            "contacts": grid,
            "buyers": cum[grid],
            "profit": profit_curve[grid],
            "random_buyers": grid * rate,
            "random_profit": grid * (random_gain - cost),
        }
    )
