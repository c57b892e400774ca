"""When and how customers visit: hour-of-day and weekend profile, device and channel shares.

One pass at customer level with a few ``count_if`` aggregates. Device and channel levels are
fixed per model (:func:`~propensity.features.resolve_levels`), so every cutoff and every scored
log gets the same columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from propensity.features.base import LEVEL_COLUMNS, Collector, Context, FeatureDef, count_if, slug

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["DAYPARTS", "build"]

#: Parts of the day (UTC hours, start inclusive, end exclusive).
DAYPARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))


def build(ctx: Context) -> tuple[list[FeatureDef], ir.Table]:
    """Shares of events by part of the day, at weekends, and per device and channel level."""
    import ibis.expr.datatypes as dt

    before, levels = ctx.before, ctx.config.levels
    level_cols = [col for col in LEVEL_COLUMNS if levels.get(col)]
    pv = before.select(
        "customer_id",
        *level_cols,
        _hour=before.ts.hour().cast(dt.int64),
        _dow=before.ts.day_of_week.index().cast(dt.int64),
    )
    out = Collector()
    total = pv.count().cast(dt.float64)
    for part, lo, hi in DAYPARTS:
        out.add(
            f"share_hour_{part}",
            count_if((pv._hour >= lo) & (pv._hour < hi)).cast(dt.float64) / total,
            definition=f"share of events before the cutoff between {lo:02d}:00 and {hi:02d}:00 UTC",
            window="lifetime",
            description=f"share of activity at {part} (UTC)",
            unit="share",
            template=f"{{value:.0%}} of visits at {part}",
            group="timing",
        )
    out.add(
        "share_weekend",
        count_if(pv._dow >= 5).cast(dt.float64) / total,
        definition="share of events before the cutoff on Saturday or Sunday (UTC)",
        window="lifetime",
        description="share of activity at weekends",
        unit="share",
        template="{value:.0%} of visits at weekends",
        group="timing",
    )
    for col in level_cols:
        known = pv[col].count().cast(dt.float64).nullif(0.0)
        for level in levels[col]:
            out.add(
                f"share_{col}_{slug(level)}",
                count_if(pv[col] == level).cast(dt.float64) / known,
                definition=f"share of events before the cutoff with {col} = {level!r} (among events with a {col}; missing if none)",
                window="lifetime",
                description=f"share of activity on {col} {level}",
                unit="share",
                template=f"{{value:.0%}} of visits via {level}",
                group=col,
            )
    return out.defs, pv.group_by("customer_id").aggregate(**out.exprs)
