"""The recency / frequency / T / monetary summary of every buyer at a cutoff, run by any engine.

The lifetime-value models (:mod:`~propensity.clv.beta_geo`, :mod:`~propensity.clv.pareto_nbd`,
:mod:`~propensity.clv.gamma_gamma`) read a customer's purchase history through four numbers, defined
like pymc-marketing's ``clv.utils.rfm_summary`` (and the ``lifetimes`` library before it):

``frequency``
    Repeat purchase periods: the number of distinct days with a purchase, minus one. Several
    purchases on one day are one period (their amounts are added).
``recency``
    Time from the first to the last purchase day.
``T``
    Time from the first purchase day to the last day observed before the cutoff.
``monetary_value``
    Mean spend per repeat purchase period, the first day excluded; 0 when ``frequency`` is 0.

Time is counted in whole UTC days (epoch seconds // 86,400, which agree across engines) and divided
by ``time_scaler`` (1 = days, the default; 7 = weeks, as in the published CDNOW figures). Only
``purchase`` events with ``ts < as_of`` are used; the last observed day is the day of
``as_of - 1 second`` (for a midnight cutoff, the day before it).

Defined behaviour for awkward histories:

- **one purchase** (one purchase day): ``frequency = recency = 0``, ``monetary_value = 0``, ``T`` as
  usual — the models still score such a customer (BG/NBD says they are alive with probability 1);
- **zero or missing amounts** count as purchase days with 0 spend, so a customer whose repeat
  purchases were all free has ``monetary_value = 0``; negative purchase amounts (only possible when
  the table did not come through validation, which quarantines them) are added as they are and can
  make ``monetary_value`` negative. The Gamma-Gamma spend model is fitted on customers with
  ``frequency > 0`` and ``monetary_value > 0`` only, and its prediction reads a negative mean as 0
  (see :func:`propensity.clv.gamma_gamma.expected_spend`);
- **returns** (``return`` events) are not purchases: they change neither frequency, recency, T nor
  monetary value (spend is gross, as in the ``revenue`` label), and are reported in ``returns``
  (count) and ``returned_amount`` (sum of absolute amounts) before the cutoff;
- **a cutoff before the first purchase** leaves nobody to summarise: :func:`check_cutoff` raises
  :class:`~propensity.errors.DataError` naming the first purchase. Customers without a purchase
  before the cutoff (only views, only returns, or first purchase after it) have no row.

With ``holdout_days = D`` the same customers get ``frequency_holdout`` (distinct purchase days in
``[as_of, as_of + D days)``), ``monetary_value_holdout`` (mean spend per such day, 0 without one),
``spend_holdout`` and ``duration_holdout`` (``D / time_scaler``): what pymc-marketing's
``rfm_train_test_split`` calls the test period, used by the calibration-versus-holdout check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from propensity.errors import DataError, ParameterError
from propensity.features.base import DAY, epoch_seconds, to_timestamp

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "HOLDOUT_COLUMNS",
    "SUMMARY_COLUMNS",
    "check_cutoff",
    "check_time_scaler",
    "rfm_summary",
]

#: Columns of :func:`rfm_summary`, in order (the holdout columns follow when asked for).
SUMMARY_COLUMNS = (
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "purchases",
    "spend",
    "returns",
    "returned_amount",
    "first_purchase",
)
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "spend_holdout", "duration_holdout")


def check_time_scaler(time_scaler: float) -> float:
    """``time_scaler`` as a float in [1, 365] (days per model time unit), or a clear error."""
    try:
        value = float(time_scaler)
    except (TypeError, ValueError):
        value = float("nan")
    if not 1 <= value <= 365:
        raise ParameterError(
            f"The 'time_scaler' parameter must be a number of days per time unit in [1, 365] (1 = days, "
            f"7 = weeks). Got {time_scaler!r} instead."
        )
    return value


def _day(ts: Any) -> Any:
    """Whole UTC days since the epoch of a timestamp expression."""
    import ibis.expr.datatypes as dt

    return (ts.epoch_seconds().floor().cast(dt.int64) // DAY).cast(dt.int64)


def rfm_summary(
    events: ir.Table,
    as_of: Any,
    *,
    holdout_days: int | None = None,
    time_scaler: float = 1.0,
) -> ir.Table:
    """Every buyer's frequency, recency, T and monetary value at ``as_of``, as a lazy Ibis table.

    Parameters
    ----------
    events
        Canonical events (``EventLog.events`` from :func:`propensity.events.validate.load_events`).
    as_of
        The cutoff (a date means midnight UTC); only purchases with ``ts < as_of`` are summarised.
    holdout_days
        Also count each customer's purchases in ``[as_of, as_of + holdout_days)``.
    time_scaler
        Days per time unit of ``recency``, ``T`` and ``duration_holdout`` (1 = days, 7 = weeks).

    Returns
    -------
    ibis Table
        One row per customer with a purchase before ``as_of``: :data:`SUMMARY_COLUMNS`, then
        :data:`HOLDOUT_COLUMNS` with a holdout. See the module docstring for the definitions.

    Examples
    --------
    >>> from propensity.engines import get_engine
    >>> with get_engine() as eng:  # doctest: +SKIP
    ...     eng.execute(rfm_summary(eng.from_frame(events), "2024-03-01"))
    """
    import ibis
    import ibis.expr.datatypes as dt

    cutoff = to_timestamp(as_of)
    scaler = check_time_scaler(time_scaler)
    if holdout_days is not None and (not isinstance(holdout_days, int) or not 1 <= holdout_days <= 3650):
        raise ParameterError(
            f"The 'holdout_days' parameter must be a whole number of days in [1, 3650]. Got {holdout_days!r} instead."
        )
    at = ibis.literal(cutoff.to_pydatetime(), type=dt.Timestamp())
    last_day = (epoch_seconds(cutoff) - 1) // DAY
    before = events.filter(events.ts < at)
    bought = before.filter(before.event_type == "purchase")
    days = bought.group_by(customer_id=bought.customer_id, day=_day(bought.ts)).aggregate(
        spend=bought.amount.fill_null(0.0).sum().cast(dt.float64),
        purchases=bought.count().cast(dt.int64),
        first_ts=bought.ts.min(),
    )
    first_day = days.day.min().over(ibis.window(group_by=days.customer_id))
    days = days.mutate(first_spend=ibis.ifelse(days.day == first_day, days.spend, 0.0))
    per = days.group_by("customer_id").aggregate(
        n_days=days.count().cast(dt.int64),
        d_first=days.day.min(),
        d_last=days.day.max(),
        spend=days.spend.sum(),
        first_spend=days.first_spend.sum(),
        purchases=days.purchases.sum().cast(dt.int64),
        first_purchase=days.first_ts.min(),
    )
    returned = before.filter(before.event_type == "return")
    returns = returned.group_by("customer_id").aggregate(
        _returns=returned.count().cast(dt.int64),
        _returned=returned.amount.abs().fill_null(0.0).sum().cast(dt.float64),
    )
    joined = per.left_join(returns, "customer_id")
    frequency = joined.n_days - 1
    out = joined.select(
        customer_id=joined.customer_id,
        frequency=frequency.cast(dt.int64),
        recency=(joined.d_last - joined.d_first).cast(dt.float64) / scaler,
        T=(ibis.literal(last_day, type=dt.int64) - joined.d_first).cast(dt.float64) / scaler,
        monetary_value=ibis.ifelse(
            frequency > 0, (joined.spend - joined.first_spend) / frequency.cast(dt.float64), 0.0
        ),
        purchases=joined.purchases,
        spend=joined.spend,
        returns=joined._returns.fill_null(0),
        returned_amount=joined._returned.fill_null(0.0),
        first_purchase=joined.first_purchase,
    )
    if holdout_days is None:
        return out
    end = ibis.literal((cutoff + pd.Timedelta(days=holdout_days)).to_pydatetime(), type=dt.Timestamp())
    later = events.filter((events.ts >= at) & (events.ts < end) & (events.event_type == "purchase"))
    held_days = later.group_by(customer_id=later.customer_id, day=_day(later.ts)).aggregate(
        spend=later.amount.fill_null(0.0).sum().cast(dt.float64)
    )
    held = held_days.group_by("customer_id").aggregate(
        _n=held_days.count().cast(dt.int64), _spend=held_days.spend.sum()
    )
    both = out.left_join(held, "customer_id")
    n = both._n.fill_null(0)
    return both.select(
        *[both[c] for c in SUMMARY_COLUMNS],
        frequency_holdout=n,
        monetary_value_holdout=ibis.ifelse(n > 0, both._spend / n.cast(dt.float64), 0.0),
        spend_holdout=both._spend.fill_null(0.0),
        duration_holdout=ibis.literal(holdout_days / scaler, type=dt.float64),
    )


def check_cutoff(events: ir.Table, as_of: Any, execute: Any) -> pd.Timestamp:
    """The first purchase before ``as_of``, or :class:`DataError` when there is none.

    ``execute`` runs an Ibis expression (an engine's ``execute``).

    Raises
    ------
    DataError
        No purchase before ``as_of`` (the message names the first purchase in the log, if any).
    """
    import ibis.expr.datatypes as dt

    cutoff = to_timestamp(as_of)
    bought = events.filter(events.event_type == "purchase")
    at = bought.ts < cutoff.to_pydatetime()
    row = execute(
        bought.aggregate(
            first=bought.ts.min(),
            before=at.cast(dt.int64).sum(),
        )
    ).iloc[0]
    if pd.isna(row["first"]):
        raise DataError(
            "The event log has no purchase events, so there is no lifetime value to model. Map your purchase "
            "event (--event purchase=NAME) or declare an order log (--order-log)."
        )
    if not row["before"]:
        first = pd.Timestamp(row["first"])
        raise DataError(
            f"No purchase before the cutoff {cutoff}: the first purchase in the log is at {first}. "
            f"Choose a cutoff after {first.date()}."
        )
    return pd.Timestamp(row["first"])
