"""Activity, spend, recency and trend: every figure that a per-type, per-window event total gives.

One pass groups the events by customer, event type and *window index* (how many window
boundaries — lookbacks and trend spans — an event lies beyond); the many per-window features
are then pivoted from that small grouped table. The engine's cost is (rows × aggregates) on
large hash tables, so this is much faster than one filtered count per feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from propensity.features.base import DAY, Collector, Context, FeatureDef, window_text

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["COUNTED_EVENTS", "build"]

#: Event types that get their own counts and recency.
COUNTED_EVENTS = ("view", "add_to_cart", "checkout", "purchase", "return")
_EVENT_WORDS = {
    "view": ("product views", "viewed a product", "view"),
    "add_to_cart": ("add-to-cart events", "added to cart", "add to cart"),
    "checkout": ("checkouts started", "started a checkout", "checkout"),
    "purchase": ("purchase events", "purchased", "purchase"),
    "return": ("returns", "returned an order", "return"),
}


def build(ctx: Context) -> tuple[list[FeatureDef], ir.Table]:
    """Counts per event type and window, spend, returned value, recency, tenure and the trend."""
    import ibis
    import ibis.expr.datatypes as dt

    config = ctx.config
    span = config.trend_days
    bounds = sorted({*config.lookbacks, span, 2 * span})
    wi_of = {b: i for i, b in enumerate(bounds)}
    ev = ctx.before.select("customer_id", "event_type", "amount", _age=ctx.age)
    wi = ibis.cases(*[(ev._age <= b * DAY, i) for i, b in enumerate(bounds)], else_=len(bounds))
    g = ev.group_by(["customer_id", "event_type", wi.name("_wi")]).aggregate(
        n=ev.count().cast(dt.float64), money=ev.amount.sum(), min_age=ev._age.min(), max_age=ev._age.max()
    )

    def n_sum(where: Any) -> Any:
        # Counts are summed as doubles (exact below 2**53): an integer sum would be a 128-bit
        # integer in DuckDB, slower to add up and to hand over.
        return g.n.sum(where=where).fill_null(0.0)

    def upto(days: int | None) -> Any:
        return ibis.literal(True) if days is None else g._wi <= wi_of[days]

    is_type = {e: g.event_type == e for e in COUNTED_EVENTS}
    out = Collector()
    for suffix, days in config.windows:
        window, phrase = window_text(days)
        w = upto(days)
        out.add(
            f"n_events_{suffix}",
            n_sum(w).cast(dt.int64),
            definition=f"number of events of any type {phrase}",
            window=window,
            description=f"events {phrase}",
            unit="events",
            template=f"{{value:g}} events {phrase}",
            group="activity",
        )
        for e in COUNTED_EVENTS:
            plural = _EVENT_WORDS[e][0]
            out.add(
                f"n_{e}_{suffix}",
                n_sum(w & is_type[e]).cast(dt.int64),
                definition=f"number of '{e}' events {phrase}",
                window=window,
                description=f"{plural} {phrase}",
                unit="events",
                template=f"{{value:g}} {plural} {phrase}",
                group="activity",
            )
        out.add(
            f"spend_{suffix}",
            g.money.sum(where=w & is_type["purchase"]).fill_null(0.0),
            definition=f"sum of purchase amounts {phrase}",
            window=window,
            description=f"spend {phrase}",
            unit="money",
            template=f"spent {{value:,.2f}} {phrase}",
            group="monetary",
        )
    out.add(
        "returned_value_all",
        (-g.money.sum(where=is_type["return"])).fill_null(0.0),
        definition="minus the sum of 'return' amounts before the cutoff (returned money, positive)",
        window="lifetime",
        description="value of returned orders",
        unit="money",
        template="returned {value:,.2f} worth of goods",
        group="monetary",
    )
    _recency(out, g, is_type)
    recent = n_sum(g._wi <= wi_of[span])
    earlier = n_sum((g._wi > wi_of[span]) & (g._wi <= wi_of[2 * span]))
    out.add(
        f"events_trend_{span}d",
        ((recent + 1.0) / (earlier + 1.0)).ln(),
        definition=f"ln((events in the last {span} days + 1) / (events in the {span} days before + 1))",
        window=f"{span}d vs previous {span}d",
        description=f"activity trend, last {span} days vs the {span} before",
        unit="log ratio",
        template=f"activity trend {{value:+.2f}} (last {span} days vs the {span} before)",
        group="trend",
    )
    return out.defs, g.group_by("customer_id").aggregate(**out.exprs)


def _recency(out: Collector, g: Any, is_type: dict[str, Any]) -> None:
    """Days since the last event (of each type) and since the first one."""
    out.add(
        "days_since_last_event",
        g.min_age.min() / DAY,
        definition="days from the latest event before the cutoff to the cutoff",
        window="lifetime",
        description="days since the last visit",
        unit="days",
        template="last seen {value:.0f} days ago",
        group="recency",
    )
    for e in COUNTED_EVENTS:
        _plural, verb, noun = _EVENT_WORDS[e]
        out.add(
            f"days_since_last_{e}",
            g.min_age.min(where=is_type[e]) / DAY,
            definition=f"days from the latest '{e}' event before the cutoff to the cutoff (missing if none)",
            window="lifetime",
            description=f"days since the last {noun}",
            unit="days",
            template=f"{verb} {{value:.0f}} days ago",
            group="recency",
        )
    out.add(
        "tenure_days",
        g.max_age.max() / DAY,
        definition="days from the first event (first seen) to the cutoff",
        window="lifetime",
        description="days since first seen",
        unit="days",
        template="customer for {value:.0f} days",
        group="recency",
    )
