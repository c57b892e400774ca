"""Product categories: how many a customer browsed, and the one with the most events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from propensity.features.base import Context, FeatureDef

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["build"]

DEFS = [
    FeatureDef(
        name="n_categories_all",
        definition="number of distinct product categories in events before the cutoff",
        window="lifetime",
        description="distinct categories browsed",
        unit="categories",
        template="browsed {value:g} categories",
        group="category",
    ),
    FeatureDef(
        name="top_category",
        definition="the category with the most events before the cutoff (ties: alphabetical first; missing if none)",
        window="lifetime",
        description="favourite category",
        unit=None,
        template="mostly browses {value}",
        group="category",
        role="categorical",
    ),
]


def build(ctx: Context) -> tuple[list[FeatureDef], ir.Table]:
    """``n_categories_all`` and ``top_category`` (most events; ties alphabetical)."""
    before = ctx.before
    src = before.filter(before.category.notnull()).select("customer_id", "category")
    per_cat = src.group_by(["customer_id", "category"]).aggregate(n=src.count())
    best = per_cat.group_by("customer_id").aggregate(n_categories_all=per_cat.count(), _max=per_cat.n.max())
    tops = per_cat.join(best, [per_cat.customer_id == best.customer_id, per_cat.n == best._max])
    tops = tops.group_by(per_cat.customer_id).aggregate(top_category=tops.category.min())
    table = best.join(tops, "customer_id").select("customer_id", "n_categories_all", "top_category")
    return list(DEFS), table
