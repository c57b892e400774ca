"""Active days: 24-hour periods back from the cutoff with at least one event, per window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from propensity.features.base import DAY, Collector, Context, FeatureDef, window_text

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["build"]


def build(ctx: Context) -> tuple[list[FeatureDef], ir.Table]:
    """``n_active_days_<window>`` for every lookback and lifetime (0 for no event)."""
    import ibis

    src = ctx.before.select("customer_id", _bucket=(ctx.age - 1) // DAY)
    days_t = src.group_by(["customer_id", "_bucket"]).aggregate()
    out = Collector()
    for suffix, days in ctx.config.windows:
        window, phrase = window_text(days)
        out.add(
            f"n_active_days_{suffix}",
            days_t.count(where=ibis.literal(True) if days is None else days_t._bucket < days),
            definition=f"number of 24-hour periods back from the cutoff with at least one event {phrase} "
            "(calendar days when the cutoff is at midnight UTC)",
            window=window,
            description=f"active days {phrase}",
            unit="days",
            template=f"active on {{value:g}} days {phrase}",
            group="activity",
        )
    return out.defs, days_t.group_by("customer_id").aggregate(**out.exprs)
