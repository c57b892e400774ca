"""Orders and their rhythm: order counts per window, average order value, days between orders.

An order is a distinct order id among a customer's purchase events; purchases without an order
id that share the same second are one order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from propensity.features.base import DAY, Collector, Context, FeatureDef, window_text

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["build"]


def build(ctx: Context) -> tuple[list[FeatureDef], ir.Table]:
    """``n_orders_<window>``, ``avg_order_value`` and the inter-purchase mean and spread."""
    import ibis
    import ibis.expr.datatypes as dt

    before = ctx.before
    src = before.filter(before.event_type == "purchase")
    ts = src.ts.epoch_seconds().floor().cast(dt.int64)
    src = src.select(
        "customer_id",
        "amount",
        _order=src.order_id.fill_null(ts.cast(dt.string)),
        _age=ibis.literal(ctx.as_of_epoch, type=dt.int64) - ts,
    )
    orders = src.group_by(["customer_id", "_order"]).aggregate(
        o_age=src._age.max(), o_amount=src.amount.sum()
    )
    gap = orders.o_age.lag().over(ibis.window(group_by=orders.customer_id, order_by=ibis.desc(orders.o_age)))
    orders = orders.mutate(gap_days=(gap - orders.o_age).cast(dt.float64) / DAY)
    out = Collector()
    for suffix, days in ctx.config.windows:
        window, phrase = window_text(days)
        out.add(
            f"n_orders_{suffix}",
            orders.count(where=ctx.in_window(orders.o_age, days)),
            definition=f"number of distinct orders (order_id, else purchases at the same second) first placed {phrase}",
            window=window,
            description=f"orders {phrase}",
            unit="orders",
            template=f"{{value:g}} orders {phrase}",
            group="monetary",
        )
    out.add(
        "avg_order_value",
        orders.o_amount.mean(),
        definition="mean over orders of the summed purchase amount, before the cutoff (missing without orders)",
        window="lifetime",
        description="average order value",
        unit="money",
        template="average order {value:,.2f}",
        group="monetary",
    )
    out.add(
        "interpurchase_days_mean",
        orders.gap_days.mean(),
        definition="mean days between consecutive orders (first line of each), before the cutoff (missing with < 2 orders)",
        window="lifetime",
        description="average days between orders",
        unit="days",
        template="orders every {value:.0f} days on average",
        group="monetary",
    )
    out.add(
        "interpurchase_days_std",
        orders.gap_days.std(how="sample"),
        definition="sample standard deviation of the days between consecutive orders (missing with < 3 orders)",
        window="lifetime",
        description="variability of days between orders",
        unit="days",
        template="order rhythm varies by {value:.0f} days",
        group="monetary",
    )
    first, last = orders.o_age.max() / DAY, orders.o_age.min() / DAY
    out.add(
        "repeat_orders_per_30d",
        (orders.count() - 1) * 30.0 / ibis.greatest(first, 1.0),
        definition="orders after the first, per 30 days since the first order (missing without orders)",
        window="lifetime",
        description="repeat-order rate since the first order",
        unit="orders per 30 days",
        template="{value:.2f} repeat orders a month since the first",
        group="monetary",
    )
    out.add(
        "last_order_share_of_life",
        ibis.ifelse(first > 0, (first - last) / first, ibis.null(dt.float64)),
        definition="days from the first to the last order over days from the first order to the cutoff "
        "(0: no repeat order; 1: ordered just now; missing without orders)",
        window="lifetime",
        description="how late in the customer's life the last order came",
        unit="share",
        template="last order at {value:.0%} of the customer's life so far",
        group="recency",
    )
    return out.defs, orders.group_by("customer_id").aggregate(**out.exprs)
