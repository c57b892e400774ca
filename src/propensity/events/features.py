"""Point-in-time customer features at a cutoff (``as_of``), defined once, run by any engine.

Every feature uses **only events with ``ts < as_of``**; the feature table has one row per
customer seen before ``as_of``. A window of L days is ``[as_of - L days, as_of)``, measured
in whole seconds before the cutoff (an event exactly L days before ``as_of`` is inside). Days are 86,400 seconds of
epoch time, which agrees across engines (see :mod:`propensity.events.engine`).

The registry
------------
Each feature is declared exactly once, in :func:`_define`, together with its Ibis
expression and its documentation — :class:`FeatureDef` (name, definition, window,
description, unit, a phrase template for reason codes). :func:`feature_registry` runs the
same code on an unbound table to list the definitions without data, so the manifest, the
report, the dashboard and the features themselves cannot disagree.

Groups: activity counts per event type and window; spend and orders; recency and tenure;
active days; sessions (count, length, events per session); funnel rates and cart
abandonment; inter-purchase interval; trend (last 30 days vs the 30 before); hour-of-day and
weekday profile; device and channel shares (levels fixed in :class:`FeatureConfig`); category
diversity and top category.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from propensity.errors import DataError, ParameterError
from propensity.events.mapping import CANONICAL_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "DEFAULT_LOOKBACKS",
    "FeatureConfig",
    "FeatureDef",
    "build_features",
    "feature_registry",
    "resolve_levels",
]

DEFAULT_LOOKBACKS: tuple[int, ...] = (7, 30, 90)
DAY = 86_400
#: Event types that get their own counts and recency.
COUNTED_EVENTS = ("view", "add_to_cart", "checkout", "purchase", "return")
_EVENT_WORDS = {
    "view": ("product views", "viewed a product", "view"),
    "add_to_cart": ("add-to-cart events", "added to cart", "add to cart"),
    "checkout": ("checkouts started", "started a checkout", "checkout"),
    "purchase": ("purchase events", "purchased", "purchase"),
    "return": ("returns", "returned an order", "return"),
}
_DAYPARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))
LEVEL_COLUMNS = ("device", "channel")


@dataclass(frozen=True)
class FeatureDef:
    """One feature's documentation, read by the manifest, the report and the dashboard.

    Attributes
    ----------
    name
        Column name.
    definition
        Exact definition (what is counted or measured, over which events).
    window
        ``"7d"``, ``"30d"``, ``"90d"``, ``"lifetime"`` or ``"30d vs previous 30d"``.
    description
        Short human text, e.g. "days since the last add to cart".
    unit
        ``events``, ``days``, ``money``, ``share``, ``rate``, ``minutes``, ``sessions``,
        ``orders``, ``categories``, ``log ratio`` or ``None`` (categories).
    template
        A phrase with ``{value}`` for reason codes, e.g. "added to cart {value:.0f} days ago".
    group
        Family of the feature (activity, recency, monetary, sessions, funnel, timing,
        device, channel, category, trend).
    role
        ``numeric`` or ``categorical``.
    """

    name: str
    definition: str
    window: str
    description: str
    unit: str | None
    template: str
    group: str
    role: Literal["numeric", "categorical"] = "numeric"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureConfig:
    """What to compute: lookback windows, trend span and the fixed device/channel levels.

    Parameters
    ----------
    lookbacks
        Window lengths in days (1 to 3,650, distinct); lifetime is always added.
    trend_days
        Span of the trend feature (events in the last N days vs the N before).
    levels
        ``{"device": [...], "channel": [...]}``: the levels that get a share feature. Fix them
        with :func:`resolve_levels` before building features for several cutoffs (they are
        part of the feature definition and stored in the model manifest).
    max_levels
        How many levels :func:`resolve_levels` keeps per column.
    """

    lookbacks: tuple[int, ...] = DEFAULT_LOOKBACKS
    trend_days: int = 30
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_levels: int = 5

    def __post_init__(self) -> None:
        lb = tuple(int(x) for x in self.lookbacks)
        if not lb or len(set(lb)) != len(lb) or any(not 1 <= x <= 3650 for x in lb):
            raise ParameterError(
                f"The 'lookbacks' parameter must be distinct whole days in [1, 3650], e.g. 7,30,90. Got {self.lookbacks!r} instead."
            )
        object.__setattr__(self, "lookbacks", tuple(sorted(lb)))
        if not 1 <= self.trend_days <= 365:
            raise ParameterError(
                f"The 'trend_days' parameter must be in [1, 365]. Got {self.trend_days!r} instead."
            )
        object.__setattr__(self, "levels", {k: tuple(v) for k, v in dict(self.levels).items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            "lookbacks": list(self.lookbacks),
            "trend_days": self.trend_days,
            "levels": {k: list(v) for k, v in self.levels.items()},
            "max_levels": self.max_levels,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        return cls(
            lookbacks=tuple(data.get("lookbacks", DEFAULT_LOOKBACKS)),
            trend_days=int(data.get("trend_days", 30)),
            levels={k: tuple(v) for k, v in (data.get("levels") or {}).items()},
            max_levels=int(data.get("max_levels", 5)),
        )


def _slug(value: str) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in value.strip().lower()).strip("_")
    while "__" in text:
        text = text.replace("__", "_")
    return text or "blank"


def to_timestamp(as_of: Any) -> pd.Timestamp:
    """A cutoff as a naive-UTC timestamp truncated to whole seconds (dates mean midnight UTC)."""
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ParameterError(
            f"The 'as_of' parameter must be a date or time like 2024-06-01. Got {as_of!r} instead."
        ) from None
    if ts is pd.NaT:
        raise ParameterError(
            f"The 'as_of' parameter must be a date or time like 2024-06-01. Got {as_of!r} instead."
        )
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.floor("s")


def _epoch(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))


# ------------------------------------------------------------------------------ the one definition

# Session flags, OR-ed together per session with ``bit_or``.
_VIEW, _CART, _PURCHASE = 1, 2, 4


def _count_if(condition: Any) -> Any:
    """How many rows meet ``condition`` (``count_if``, a built-in aggregate of DuckDB and Spark;
    faster than a filtered ``count(*)`` in DuckDB)."""
    return _builtin_aggregates()[0](condition)


def _bit_or(value: Any) -> Any:
    """Bitwise OR of an integer column (``bit_or``, built into DuckDB and Spark): one aggregate
    where several ``any()`` flags would each cost a pass over the rows."""
    return _builtin_aggregates()[1](value)


@functools.cache
def _builtin_aggregates() -> tuple[Any, Any]:
    import ibis
    import ibis.expr.datatypes as dt

    def count_if(arg: Any) -> Any:  # pragma: no cover - never called, only compiled to SQL
        raise NotImplementedError

    def bit_or(arg: Any) -> Any:  # pragma: no cover - never called, only compiled to SQL
        raise NotImplementedError

    return (
        ibis.udf.agg.builtin(count_if, name="count_if", signature=((dt.boolean,), dt.int64)),
        ibis.udf.agg.builtin(bit_or, name="bit_or", signature=((dt.int64,), dt.int64)),
    )


class _Collector:
    """Collects (definition, expression) pairs for one stage of the build."""

    def __init__(self) -> None:
        self.defs: list[FeatureDef] = []
        self.exprs: dict[str, Any] = {}

    def add(self, name: str, expr: Any, **doc: Any) -> None:
        if name in self.exprs:
            raise ValueError(f"feature {name!r} defined twice")
        self.defs.append(FeatureDef(name=name, **doc))
        self.exprs[name] = expr


def _windows(config: FeatureConfig) -> list[tuple[str, int | None]]:
    return [(f"{w}d", w) for w in config.lookbacks] + [("all", None)]


def _window_text(days: int | None) -> tuple[str, str]:
    """(window label, phrase) for a lookback."""
    if days is None:
        return "lifetime", "ever (before the cutoff)"
    return f"{days}d", f"in the last {days} days"


def _define(
    events: ir.Table, as_of: pd.Timestamp, config: FeatureConfig
) -> tuple[list[FeatureDef], ir.Table]:
    """The feature definitions and their Ibis expression over ``events`` at ``as_of``.

    Each stage selects only the columns it needs from the events before the cutoff, so the
    engine scans the columns it needs once per stage instead of materialising a shared copy.
    """
    import ibis
    import ibis.expr.datatypes as dt

    as_of_e = _epoch(as_of)
    cutoff = ibis.literal(as_of.to_pydatetime(), type=dt.Timestamp())
    before = events.filter(events.ts < cutoff)
    ts_e = before.ts.epoch_seconds().floor().cast(dt.int64)
    age = ibis.literal(as_of_e, type=dt.int64) - ts_e  # seconds before the cutoff, >= 1

    def in_window(x: Any, days: int | None) -> Any:
        return ibis.literal(True) if days is None else x <= days * DAY

    defs: list[FeatureDef] = []

    # The engine's cost is (rows x aggregates) on large hash tables, so each pass over the events
    # groups by few keys with few aggregates, and the many per-window features are pivoted from
    # the small grouped tables. Windows are whole seconds before the cutoff; the window index
    # ``_wi`` of an event is how many window boundaries (lookbacks and trend spans) it lies beyond.
    span = config.trend_days
    bounds = sorted({*config.lookbacks, span, 2 * span})
    wi_of = {b: i for i, b in enumerate(bounds)}
    ev = before.select("customer_id", "event_type", "amount", _age=age)
    wi = ibis.cases(*[(ev._age <= b * DAY, i) for i, b in enumerate(bounds)], else_=len(bounds))
    by_type = ev.group_by(["customer_id", "event_type", wi.name("_wi")]).aggregate(
        n=ev.count().cast(dt.float64), money=ev.amount.sum(), min_age=ev._age.min(), max_age=ev._age.max()
    )
    g = by_type

    def n_sum(where: Any) -> Any:
        # Counts are summed as doubles (exact below 2**53): an integer sum would be a 128-bit
        # integer in DuckDB, slower to add up and to hand over.
        return g.n.sum(where=where).fill_null(0.0)

    g_type = {e: g.event_type == e for e in COUNTED_EVENTS}

    def upto(days: int | None) -> Any:
        return ibis.literal(True) if days is None else g._wi <= wi_of[days]

    # ---- stage A: activity, money, recency (pivoted from the per-type, per-window counts)
    a = _Collector()
    for suffix, days in _windows(config):
        window, phrase = _window_text(days)
        w = upto(days)
        a.add(
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
            plural, _verb, _noun = _EVENT_WORDS[e]
            a.add(
                f"n_{e}_{suffix}",
                n_sum(w & g_type[e]).cast(dt.int64),
                definition=f"number of '{e}' events {phrase}",
                window=window,
                description=f"{plural} {phrase}",
                unit="events",
                template=f"{{value:g}} {plural} {phrase}",
                group="activity",
            )
        a.add(
            f"spend_{suffix}",
            g.money.sum(where=w & g_type["purchase"]).fill_null(0.0),
            definition=f"sum of purchase amounts {phrase}",
            window=window,
            description=f"spend {phrase}",
            unit="money",
            template=f"spent {{value:,.2f}} {phrase}",
            group="monetary",
        )
    a.add(
        "returned_value_all",
        (-g.money.sum(where=g_type["return"])).fill_null(0.0),
        definition="minus the sum of 'return' amounts before the cutoff (returned money, positive)",
        window="lifetime",
        description="value of returned orders",
        unit="money",
        template="returned {value:,.2f} worth of goods",
        group="monetary",
    )
    a.add(
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
        a.add(
            f"days_since_last_{e}",
            g.min_age.min(where=g_type[e]) / DAY,
            definition=f"days from the latest '{e}' event before the cutoff to the cutoff (missing if none)",
            window="lifetime",
            description=f"days since the last {noun}",
            unit="days",
            template=f"{verb} {{value:.0f}} days ago",
            group="recency",
        )
    a.add(
        "tenure_days",
        g.max_age.max() / DAY,
        definition="days from the first event (first seen) to the cutoff",
        window="lifetime",
        description="days since first seen",
        unit="days",
        template="customer for {value:.0f} days",
        group="recency",
    )
    recent = n_sum(g._wi <= wi_of[span])
    earlier = n_sum((g._wi > wi_of[span]) & (g._wi <= wi_of[2 * span]))
    a.add(
        f"events_trend_{span}d",
        ((recent + 1.0) / (earlier + 1.0)).ln(),
        definition=f"ln((events in the last {span} days + 1) / (events in the {span} days before + 1))",
        window=f"{span}d vs previous {span}d",
        description=f"activity trend, last {span} days vs the {span} before",
        unit="log ratio",
        template=f"activity trend {{value:+.2f}} (last {span} days vs the {span} before)",
        group="trend",
    )
    stage_a = g.group_by("customer_id").aggregate(**a.exprs)
    defs += a.defs

    # ---- stage P: when and how they visit (one pass, customer level, few aggregates)
    level_cols = [col for col in LEVEL_COLUMNS if config.levels.get(col)]
    pv = before.select(
        "customer_id",
        *level_cols,
        _hour=before.ts.hour().cast(dt.int64),
        _dow=before.ts.day_of_week.index().cast(dt.int64),
    )
    p = _Collector()
    total = pv.count().cast(dt.float64)
    for part, lo, hi in _DAYPARTS:
        p.add(
            f"share_hour_{part}",
            _count_if((pv._hour >= lo) & (pv._hour < hi)).cast(dt.float64) / total,
            definition=f"share of events before the cutoff between {lo:02d}:00 and {hi:02d}:00 UTC",
            window="lifetime",
            description=f"share of activity at {part} (UTC)",
            unit="share",
            template=f"{{value:.0%}} of visits at {part}",
            group="timing",
        )
    p.add(
        "share_weekend",
        _count_if(pv._dow >= 5).cast(dt.float64) / total,
        definition="share of events before the cutoff on Saturday or Sunday (UTC)",
        window="lifetime",
        description="share of activity at weekends",
        unit="share",
        template="{value:.0%} of visits at weekends",
        group="timing",
    )
    for col in level_cols:
        known = pv[col].count().cast(dt.float64).nullif(0.0)
        for level in config.levels[col]:
            p.add(
                f"share_{col}_{_slug(level)}",
                _count_if(pv[col] == level).cast(dt.float64) / known,
                definition=f"share of events before the cutoff with {col} = {level!r} (among events with a {col}; missing if none)",
                window="lifetime",
                description=f"share of activity on {col} {level}",
                unit="share",
                template=f"{{value:.0%}} of visits via {level}",
                group=col,
            )
    stage_p = pv.group_by("customer_id").aggregate(**p.exprs)
    defs += p.defs

    # ---- stage B: active days (24-hour periods back from the cutoff with any event)
    d_src = before.select("customer_id", _bucket=(age - 1) // DAY)
    days_t = d_src.group_by(["customer_id", "_bucket"]).aggregate()
    b = _Collector()
    for suffix, days in _windows(config):
        window, phrase = _window_text(days)
        b.add(
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
    stage_b = days_t.group_by("customer_id").aggregate(**b.exprs)
    defs += b.defs

    # ---- stage C: sessions (a second pass: merging it with the days costs more than it saves)
    s_src = before.filter(before.session_id.notnull()).select(
        "customer_id", "session_id", "event_type", _age=age
    )
    s = s_src.group_by(["customer_id", "session_id"]).aggregate(
        start=s_src._age.max(),
        end=s_src._age.min(),
        n=s_src.count(),
        _flags=_bit_or(
            ibis.cases(
                (s_src.event_type == "view", _VIEW),
                (s_src.event_type == "add_to_cart", _CART),
                (s_src.event_type == "purchase", _PURCHASE),
                else_=0,
            )
        ),
    )
    has_view, has_cart, has_purchase = ((s._flags & bit) != 0 for bit in (_VIEW, _CART, _PURCHASE))
    c = _Collector()
    abandoned = has_cart & ~has_purchase
    for suffix, days in _windows(config):
        window, phrase = _window_text(days)
        w = in_window(s.start, days)
        c.add(
            f"n_sessions_{suffix}",
            s.count(where=w),
            definition=f"number of sessions that started {phrase}",
            window=window,
            description=f"visits {phrase}",
            unit="sessions",
            template=f"{{value:g}} visits {phrase}",
            group="sessions",
        )
        c.add(
            f"n_abandoned_carts_{suffix}",
            s.count(where=w & abandoned),
            definition=f"number of sessions started {phrase} with an add to cart and no purchase (before the cutoff)",
            window=window,
            description=f"abandoned carts {phrase}",
            unit="sessions",
            template=f"abandoned {{value:g}} carts {phrase}",
            group="funnel",
        )
    c.add(
        "avg_session_minutes",
        ((s.start - s.end).cast(dt.float64) / 60.0).mean(),
        definition="mean over sessions of (last event - first event) in minutes, events before the cutoff",
        window="lifetime",
        description="average visit length",
        unit="minutes",
        template="visits last {value:.0f} minutes on average",
        group="sessions",
    )
    c.add(
        "avg_events_per_session",
        s.n.cast(dt.float64).mean(),
        definition="mean number of events per session before the cutoff",
        window="lifetime",
        description="events per visit",
        unit="events",
        template="{value:.1f} events per visit",
        group="sessions",
    )
    carts = s.count(where=has_cart).cast(dt.float64).nullif(0.0)
    views = s.count(where=has_view).cast(dt.float64).nullif(0.0)
    c.add(
        "cart_to_purchase_rate",
        s.count(where=has_cart & has_purchase).cast(dt.float64) / carts,
        definition="sessions with an add to cart and a purchase / sessions with an add to cart (missing if none)",
        window="lifetime",
        description="share of carts that became purchases",
        unit="rate",
        template="{value:.0%} of carts bought",
        group="funnel",
    )
    c.add(
        "view_to_cart_rate",
        s.count(where=has_view & has_cart).cast(dt.float64) / views,
        definition="sessions with a view and an add to cart / sessions with a view (missing if none)",
        window="lifetime",
        description="share of browsing visits with an add to cart",
        unit="rate",
        template="{value:.0%} of browsing visits added to cart",
        group="funnel",
    )
    c.add(
        "cart_abandonment_rate",
        s.count(where=abandoned).cast(dt.float64) / carts,
        definition="sessions with an add to cart and no purchase / sessions with an add to cart (missing if none)",
        window="lifetime",
        description="cart abandonment rate",
        unit="rate",
        template="abandons {value:.0%} of carts",
        group="funnel",
    )
    stage_c = s.group_by("customer_id").aggregate(**c.exprs)
    defs += c.defs

    # ---- stage D: orders (an order id, else the purchases at one instant) and their rhythm
    o_src = before.filter(before.event_type == "purchase")
    o_ts = o_src.ts.epoch_seconds().floor().cast(dt.int64)
    o_src = o_src.select(
        "customer_id",
        "amount",
        _order=o_src.order_id.fill_null(o_ts.cast(dt.string)),
        _age=ibis.literal(as_of_e, type=dt.int64) - o_ts,
    )
    orders = o_src.group_by(["customer_id", "_order"]).aggregate(
        o_age=o_src._age.max(), o_amount=o_src.amount.sum()
    )
    gap = orders.o_age.lag().over(ibis.window(group_by=orders.customer_id, order_by=ibis.desc(orders.o_age)))
    orders = orders.mutate(gap_days=(gap - orders.o_age).cast(dt.float64) / DAY)
    o = _Collector()
    for suffix, days in _windows(config):
        window, phrase = _window_text(days)
        o.add(
            f"n_orders_{suffix}",
            orders.count(where=in_window(orders.o_age, days)),
            definition=f"number of distinct orders (order_id, else purchases at the same second) first placed {phrase}",
            window=window,
            description=f"orders {phrase}",
            unit="orders",
            template=f"{{value:g}} orders {phrase}",
            group="monetary",
        )
    o.add(
        "avg_order_value",
        orders.o_amount.mean(),
        definition="mean over orders of the summed purchase amount, before the cutoff (missing without orders)",
        window="lifetime",
        description="average order value",
        unit="money",
        template="average order {value:,.2f}",
        group="monetary",
    )
    o.add(
        "interpurchase_days_mean",
        orders.gap_days.mean(),
        definition="mean days between consecutive orders (first line of each), before the cutoff (missing with < 2 orders)",
        window="lifetime",
        description="average days between orders",
        unit="days",
        template="orders every {value:.0f} days on average",
        group="monetary",
    )
    o.add(
        "interpurchase_days_std",
        orders.gap_days.std(how="sample"),
        definition="sample standard deviation of the days between consecutive orders (missing with < 3 orders)",
        window="lifetime",
        description="variability of days between orders",
        unit="days",
        template="order rhythm varies by {value:.0f} days",
        group="monetary",
    )
    stage_d = orders.group_by("customer_id").aggregate(**o.exprs)
    defs += o.defs

    # ---- stage E: categories: diversity and the top one (most events; ties alphabetical)
    e_src = before.filter(before.category.notnull()).select("customer_id", "category")
    per_cat = e_src.group_by(["customer_id", "category"]).aggregate(n=e_src.count())
    best = per_cat.group_by("customer_id").aggregate(n_categories_all=per_cat.count(), _max=per_cat.n.max())
    tops = per_cat.join(best, [per_cat.customer_id == best.customer_id, per_cat.n == best._max])
    tops = tops.group_by(per_cat.customer_id).aggregate(top_category=tops.category.min())
    stage_e = best.join(tops, "customer_id").select("customer_id", "n_categories_all", "top_category")
    defs.append(
        FeatureDef(
            name="n_categories_all",
            definition="number of distinct product categories in events before the cutoff",
            window="lifetime",
            description="distinct categories browsed",
            unit="categories",
            template="browsed {value:g} categories",
            group="category",
        )
    )
    defs.append(
        FeatureDef(
            name="top_category",
            definition="the category with the most events before the cutoff (ties: alphabetical first; missing if none)",
            window="lifetime",
            description="favourite category",
            unit=None,
            template="mostly browses {value}",
            group="category",
            role="categorical",
        )
    )

    # ---- one row per customer seen before the cutoff
    out = stage_a
    for part in (stage_p, stage_b, stage_c, stage_d, stage_e):
        out = out.left_join(part, "customer_id")
    zero_if_missing = [
        d.name
        for d in defs
        if d.unit in ("sessions", "orders", "categories") or d.name.startswith("n_active_days")
    ]
    names = [d.name for d in defs]
    out = out.select(
        "customer_id",
        *[(out[n].fill_null(0) if n in zero_if_missing else out[n]).name(n) for n in names],
    )
    return defs, out


# ------------------------------------------------------------------------------ public API


def _canonical_placeholder() -> ir.Table:
    import ibis

    schema = {
        "customer_id": "string",
        "ts": "timestamp",
        "event_type": "string",
        "session_id": "string",
        "order_id": "string",
        "amount": "float64",
        "quantity": "float64",
        "product_id": "string",
        "category": "string",
        "device": "string",
        "channel": "string",
    }
    assert tuple(schema) == CANONICAL_COLUMNS
    return ibis.table(schema, name="events")


def feature_registry(config: FeatureConfig | None = None) -> list[FeatureDef]:
    """The documented feature list for ``config`` (computed from the same code as the features).

    Example
    -------
    >>> [f.name for f in feature_registry()][:3]
    ['n_events_7d', 'n_view_7d', 'n_add_to_cart_7d']
    """
    defs, _ = _define(_canonical_placeholder(), pd.Timestamp("2000-01-01"), config or FeatureConfig())
    return defs


def build_features(events: ir.Table, as_of: Any, config: FeatureConfig | None = None) -> ir.Table:
    """Per-customer features at ``as_of`` from canonical events, as a lazy Ibis table.

    Parameters
    ----------
    events
        Canonical events (``EventLog.events``).
    as_of
        The cutoff; only events with ``ts < as_of`` are used.
    config
        Lookbacks, trend span and device/channel levels.

    Returns
    -------
    ibis Table
        ``customer_id`` plus one column per :func:`feature_registry` entry, for every customer
        with at least one event before ``as_of``.
    """
    _, expr = _define(events, to_timestamp(as_of), config or FeatureConfig())
    return expr


def resolve_levels(
    events: ir.Table, as_of: Any, config: FeatureConfig, execute: Callable[[Any], pd.DataFrame]
) -> FeatureConfig:
    """Fix the device and channel levels (most frequent first, at most ``max_levels``) from
    events before ``as_of``, unless ``config`` already has them."""
    import ibis
    import ibis.expr.datatypes as dt

    if all(col in config.levels for col in LEVEL_COLUMNS):
        return config
    cutoff = ibis.literal(to_timestamp(as_of).to_pydatetime(), type=dt.Timestamp())
    before = events.filter(events.ts < cutoff)
    levels = dict(config.levels)
    for col in LEVEL_COLUMNS:
        if col in levels:
            continue
        sub = before.filter(before[col].notnull())
        top = execute(
            sub.group_by(level=sub[col])
            .aggregate(n=sub.count())
            .order_by([ibis.desc("n"), "level"])
            .limit(config.max_levels)
        )
        values = [str(v) for v in top["level"]]
        slugs = [_slug(v) for v in values]
        if len(set(slugs)) != len(slugs):  # two levels that only differ in punctuation: keep the first
            values = [v for i, v in enumerate(values) if _slug(v) not in slugs[:i]]
        levels[col] = tuple(values)
    return replace(config, levels=levels)


def check_as_of(
    as_of: pd.Timestamp,
    first_event: pd.Timestamp | None,
    data_end: pd.Timestamp | None,
    *,
    horizon_days: int | None = None,
    allow_partial_horizon: bool = False,
) -> None:
    """Refuse cutoffs outside the data, and horizons that run past its end.

    Raises
    ------
    DataError
        ``as_of`` on or before the first event, after the end of the data, or ``as_of +
        horizon`` past the end (the message says how many days are missing).
    """
    if first_event is None or data_end is None:
        raise DataError("The event log has no valid events.")
    if as_of <= first_event:
        raise DataError(
            f"as_of {as_of} is on or before the first event ({first_event}): no customer has any history yet. "
            f"Choose an as_of after {first_event.date()}."
        )
    if as_of > data_end:
        days = math.ceil((as_of - data_end) / pd.Timedelta(days=1))
        raise DataError(
            f"as_of {as_of} is {days} day(s) after the end of the data ({data_end}; the last event is before it): "
            "every customer would look lapsed. Choose an as_of up to the end of the data, or pass a newer log."
        )
    if horizon_days is not None:
        end = as_of + pd.Timedelta(days=horizon_days)
        if end > data_end and not allow_partial_horizon:
            missing = math.ceil((end - data_end) / pd.Timedelta(days=1))
            latest = data_end - pd.Timedelta(days=horizon_days)
            raise DataError(
                f"The {horizon_days}-day horizon from {as_of.date()} reaches {missing} day(s) past the end of the data "
                f"({data_end}): {missing} of its {horizon_days} days are missing, so later purchases would be counted as "
                f"'no purchase'. Choose an as_of on or before {latest.date()}, a shorter horizon, or allow a partial "
                "horizon explicitly (--allow-partial-horizon)."
            )


def registry_frame(defs: Sequence[FeatureDef]) -> pd.DataFrame:
    """The registry as a table (name, group, window, unit, description, definition)."""
    return pd.DataFrame([d.to_dict() for d in defs])
