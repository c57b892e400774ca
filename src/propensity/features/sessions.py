"""Sessions and the funnel: visits, their length and depth, cart conversion and abandonment.

A session is a ``(customer_id, session_id)`` pair (events without a session id belong to none).
One pass builds a row per session with its start, end, event count and which funnel steps it
holds (view, add to cart, purchase — OR-ed flags); the features aggregate those rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from propensity.features.base import Collector, Context, FeatureDef, bit_or, window_text

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["build"]

# Session flags, OR-ed together per session with ``bit_or``.
_VIEW, _CART, _PURCHASE = 1, 2, 4


def build(ctx: Context) -> tuple[list[FeatureDef], ir.Table]:
    """Session counts per window, visit length and depth, and the funnel rates."""
    import ibis
    import ibis.expr.datatypes as dt

    before = ctx.before
    src = before.filter(before.session_id.notnull()).select(
        "customer_id", "session_id", "event_type", _age=ctx.age
    )
    s = src.group_by(["customer_id", "session_id"]).aggregate(
        start=src._age.max(),
        end=src._age.min(),
        n=src.count(),
        _flags=bit_or(
            ibis.cases(
                (src.event_type == "view", _VIEW),
                (src.event_type == "add_to_cart", _CART),
                (src.event_type == "purchase", _PURCHASE),
                else_=0,
            )
        ),
    )
    has_view, has_cart, has_purchase = ((s._flags & bit) != 0 for bit in (_VIEW, _CART, _PURCHASE))
    abandoned = has_cart & ~has_purchase
    out = Collector()
    for suffix, days in ctx.config.windows:
        window, phrase = window_text(days)
        w = ctx.in_window(s.start, days)
        out.add(
            f"n_sessions_{suffix}",
            s.count(where=w),
            definition=f"number of sessions that started {phrase}",
            window=window,
            description=f"visits {phrase}",
            unit="sessions",
            template=f"{{value:g}} visits {phrase}",
            group="sessions",
        )
        out.add(
            f"n_abandoned_carts_{suffix}",
            s.count(where=w & abandoned),
            definition=f"number of sessions started {phrase} with an add to cart and no purchase (before the cutoff)",
            window=window,
            description=f"abandoned carts {phrase}",
            unit="sessions",
            template=f"abandoned {{value:g}} carts {phrase}",
            group="funnel",
        )
    out.add(
        "avg_session_minutes",
        ((s.start - s.end).cast(dt.float64) / 60.0).mean(),
        definition="mean over sessions of (last event - first event) in minutes, events before the cutoff",
        window="lifetime",
        description="average visit length",
        unit="minutes",
        template="visits last {value:.0f} minutes on average",
        group="sessions",
    )
    out.add(
        "avg_events_per_session",
        s.n.cast(dt.float64).mean(),
        definition="mean number of events per session before the cutoff",
        window="lifetime",
        description="events per visit",
        unit="events",
        template="{value:.1f} events per visit",
        group="sessions",
    )
    _funnel_rates(out, s, has_view, has_cart, has_purchase, abandoned)
    return out.defs, s.group_by("customer_id").aggregate(**out.exprs)


def _funnel_rates(
    out: Collector, s: Any, has_view: Any, has_cart: Any, has_purchase: Any, abandoned: Any
) -> None:
    """Step-to-step conversion over sessions (missing when the earlier step never happened)."""
    import ibis.expr.datatypes as dt

    carts = s.count(where=has_cart).cast(dt.float64).nullif(0.0)
    views = s.count(where=has_view).cast(dt.float64).nullif(0.0)
    out.add(
        "cart_to_purchase_rate",
        s.count(where=has_cart & has_purchase).cast(dt.float64) / carts,
        definition="sessions with an add to cart and a purchase / sessions with an add to cart (missing if none)",
        window="lifetime",
        description="share of carts that became purchases",
        unit="rate",
        template="{value:.0%} of carts bought",
        group="funnel",
    )
    out.add(
        "view_to_cart_rate",
        s.count(where=has_view & has_cart).cast(dt.float64) / views,
        definition="sessions with a view and an add to cart / sessions with a view (missing if none)",
        window="lifetime",
        description="share of browsing visits with an add to cart",
        unit="rate",
        template="{value:.0%} of browsing visits added to cart",
        group="funnel",
    )
    out.add(
        "cart_abandonment_rate",
        s.count(where=abandoned).cast(dt.float64) / carts,
        definition="sessions with an add to cart and no purchase / sessions with an add to cart (missing if none)",
        window="lifetime",
        description="cart abandonment rate",
        unit="rate",
        template="abandons {value:.0%} of carts",
        group="funnel",
    )
