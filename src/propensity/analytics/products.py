"""Products and categories: revenue, views, view→purchase conversion, cart abandonment, bought together.

The aggregates are Ibis expressions on the canonical events, so any engine runs them
(:mod:`propensity.engines`: DuckDB in-process by default, Spark); only the per-product result
(one row per product or category) reaches pandas, where it is ranked.

Definitions
-----------
- A **bought item** is a purchase event that names a ``product_id`` (order logs: one line per
  item), or — when a session's purchase events name no product, as in web shops that log one
  purchase per order — every item added to the cart in a session that holds a purchase. Its
  ``amount`` is the line's amount (for a carted item, the amount logged with the cart event), its
  ``quantity`` the logged quantity (1 when missing); it belongs to the order of its purchase
  (``order_id``, else the session, else the event itself).
- **views** and **carts** count ``view`` and ``add_to_cart`` events naming the item.
- Per customer and item, over the whole log: a **viewer** viewed it, a **carter** added it to the
  cart, a **buyer** bought it. **Conversion** (view → purchase) is viewers who bought it / viewers;
  **cart abandonment** is carters who never bought it / carters. Order in time is not required
  (a customer who bought first and looked again later still counts as a converted viewer).
- ``conversion_low`` is the lower end of the 95 % Wilson interval of the conversion: it shows how
  little a high rate on a few viewers proves.
- **Minimum support**: the conversion table ranks only items with at least ``min_support``
  viewers, the abandonment table only items with at least ``min_support`` carters, so an item seen
  twice never tops a rate table.
- **Bought together** (affinity) among the ``top_items`` items with the most orders: for items A
  and B, ``orders_together`` is the number of orders holding both; ``support`` = orders_together /
  all orders with a bought item; ``confidence_a_b`` = orders_together / orders with A (the share of
  A's orders that also hold B), ``confidence_b_a`` the other way; ``lift`` = support / (share of
  orders with A × share with B) — 1 means independent, above 1 bought together more than chance.
  Pairs with fewer than ``min_pair_orders`` orders together are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from propensity.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

    from propensity.engines import Engine

__all__ = [
    "ITEM_COLUMNS",
    "RANKINGS",
    "ProductAnalytics",
    "affinity",
    "bought_items",
    "item_table",
    "product_analytics",
    "top_items",
]

#: Columns of :func:`item_table` after the key (``product_id`` also has ``category``).
ITEM_COLUMNS = (
    "views",
    "viewers",
    "carts",
    "carters",
    "orders",
    "buyers",
    "units",
    "revenue",
    "revenue_share",
    "view_buyers",
    "conversion_rate",
    "conversion_low",
    "abandoned",
    "abandonment_rate",
)

#: How :func:`top_items` ranks: (sort columns, descending?, support column or None).
RANKINGS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "revenue": (("revenue", "orders"), None),
    "views": (("views", "viewers"), None),
    "conversion": (("conversion_rate", "viewers"), "viewers"),
    "abandonment": (("abandonment_rate", "carters"), "carters"),
}

Level = Literal["product_id", "category"]


def _has(events: ir.Table, *columns: str) -> bool:
    return all(c in events.columns for c in columns)


def bought_items(events: ir.Table) -> ir.Table:
    """One row per bought item (see the module docstring), as a lazy Ibis table.

    Returns
    -------
    ibis Table
        ``customer_id``, ``order_key`` (text, unique per customer and order), ``product_id``,
        ``category``, ``amount``, ``quantity`` (1 when missing).
    """
    import ibis
    import ibis.expr.datatypes as dt

    e = events
    purchase = e.event_type == "purchase"

    def key(t: Any) -> Any:
        return (
            t.customer_id.cast(dt.string)
            + "|"
            + ibis.coalesce(
                "order " + t.order_id.cast(dt.string),
                "session " + t.session_id.cast(dt.string),
                "event " + t.ts.cast(dt.string),
            )
        )

    named = e.filter(purchase & e.product_id.notnull()).select(
        customer_id=e.customer_id,
        order_key=key(e),
        product_id=e.product_id,
        category=e.category,
        amount=e.amount.cast(dt.float64),
        quantity=ibis.coalesce(e.quantity.cast(dt.float64), ibis.literal(1.0)),
    )
    sessions = (
        e.filter(e.session_id.notnull())
        .group_by(["customer_id", "session_id"])
        .aggregate(
            bought=purchase.any(),
            named=(purchase & e.product_id.notnull()).any(),
            order_id=e.order_id.min(where=purchase),
        )
    )
    sessions = sessions.filter(sessions.bought & ~sessions.named).select(
        "customer_id", "session_id", "order_id"
    )
    carts = e.filter((e.event_type == "add_to_cart") & e.product_id.notnull() & e.session_id.notnull())
    carts = carts.select("customer_id", "session_id", "product_id", "category", "amount", "quantity", "ts")
    joined = carts.join(sessions, ["customer_id", "session_id"])
    carted = joined.select(
        customer_id=joined.customer_id,
        order_key=key(joined),
        product_id=joined.product_id,
        category=joined.category,
        amount=joined.amount.cast(dt.float64),
        quantity=ibis.coalesce(joined.quantity.cast(dt.float64), ibis.literal(1.0)),
    )
    return named.union(carted)


def item_table(events: ir.Table, *, level: Level = "product_id") -> ir.Table:
    """Views, carts, orders, revenue, conversion and abandonment per product or category (lazy Ibis).

    Parameters
    ----------
    events
        Canonical events with ``product_id`` (and ``category``) columns.
    level
        ``"product_id"`` (each product, with its category — the first in alphabetical order when a
        product is logged under several) or ``"category"``.

    Returns
    -------
    ibis Table
        The key column(s), then the counts of :data:`ITEM_COLUMNS` except the rates and
        ``revenue_share`` (:func:`product_analytics` adds those): ``views``, ``viewers``,
        ``carts``, ``carters``, ``orders``, ``buyers``, ``units``, ``revenue``, ``view_buyers``,
        ``abandoned``. Items with no event naming them have no row.
    """
    import ibis
    import ibis.expr.datatypes as dt

    if level not in ("product_id", "category"):
        raise ParameterError(
            f"The 'level' parameter must be 'product_id' or 'category'. Got {level!r} instead."
        )
    e = events
    lines = bought_items(e)
    null_f = ibis.null().cast(dt.float64)
    null_s = ibis.null().cast(dt.string)
    browse = e.filter(e.event_type.isin(["view", "add_to_cart"]) & e[level].notnull())
    tagged = browse.select(
        customer_id=browse.customer_id,
        item=browse[level],
        v=(browse.event_type == "view").cast(dt.int64),
        c=(browse.event_type == "add_to_cart").cast(dt.int64),
        b=ibis.literal(0, dt.int64),
        order_key=null_s,
        amount=null_f,
        quantity=null_f,
    )
    bought = lines.filter(lines[level].notnull())
    tagged = tagged.union(
        bought.select(
            customer_id=bought.customer_id,
            item=bought[level],
            v=ibis.literal(0, dt.int64),
            c=ibis.literal(0, dt.int64),
            b=ibis.literal(1, dt.int64),
            order_key=bought.order_key,
            amount=bought.amount,
            quantity=bought.quantity,
        )
    )
    per_item = tagged.group_by("item").aggregate(
        views=tagged.v.sum().cast(dt.int64),
        carts=tagged.c.sum().cast(dt.int64),
        orders=tagged.order_key.nunique().cast(dt.int64),
        units=tagged.quantity.sum().fill_null(0.0),
        revenue=tagged.amount.sum().fill_null(0.0),
    )
    pairs = tagged.group_by(["item", "customer_id"]).aggregate(
        viewed=tagged.v.max(), carted=tagged.c.max(), bought=tagged.b.max()
    )
    per_customer = pairs.group_by("item").aggregate(
        viewers=(pairs.viewed == 1).sum().cast(dt.int64),
        carters=(pairs.carted == 1).sum().cast(dt.int64),
        buyers=(pairs.bought == 1).sum().cast(dt.int64),
        view_buyers=((pairs.viewed == 1) & (pairs.bought == 1)).sum().cast(dt.int64),
        abandoned=((pairs.carted == 1) & (pairs.bought == 0)).sum().cast(dt.int64),
    )
    table = per_item.join(per_customer, "item")
    columns = [
        "views",
        "viewers",
        "carts",
        "carters",
        "orders",
        "buyers",
        "units",
        "revenue",
        "view_buyers",
        "abandoned",
    ]
    table = table.select(table.item.name(level), *columns)
    if level == "product_id" and "category" in e.columns:
        named = e.filter(e.product_id.notnull() & e.category.notnull())
        cats = named.group_by("product_id").aggregate(category=named.category.min())
        table = table.left_join(cats, "product_id").select(level, "category", *columns)
    return table


def affinity(
    lines: ir.Table, items: pd.DataFrame, *, engine: Engine, top_items: int = 50, min_pair_orders: int = 10
) -> pd.DataFrame:
    """Products bought together among the ``top_items`` products with the most orders.

    Parameters
    ----------
    lines
        :func:`bought_items` of the log.
    items
        The product table of :func:`product_analytics` (``product_id``, ``orders``).
    engine
        Runs the pair count.

    Returns
    -------
    pandas.DataFrame
        ``product_a``, ``product_b`` (``product_a < product_b``), ``orders_together``, ``support``,
        ``confidence_a_b``, ``confidence_b_a``, ``lift``; by lift, then orders together, largest
        first. See the module docstring for the definitions.
    """
    import ibis

    columns = [
        "product_a",
        "product_b",
        "orders_together",
        "support",
        "confidence_a_b",
        "confidence_b_a",
        "lift",
    ]
    top = items.sort_values(["orders", "product_id"], ascending=[False, True], kind="stable").head(top_items)
    top = top[top["orders"] > 0]
    counted_orders = engine.execute(lines.select("order_key").distinct().count().as_table())
    total_orders = int(counted_orders.to_numpy()[0, 0])
    if len(top) < 2 or total_orders == 0:
        return pd.DataFrame(columns=columns)
    wanted = lines.filter(lines.product_id.isin([str(p) for p in top["product_id"]]))
    baskets = wanted.select("order_key", "product_id").distinct()
    other = baskets.view()
    joined = baskets.join(
        other,
        [baskets.order_key == other.order_key, baskets.product_id < other.product_id],
    )
    pairs = joined.select(product_a=baskets.product_id, product_b=other.product_id)
    counted = pairs.group_by(["product_a", "product_b"]).aggregate(orders_together=ibis._.count())
    counted = counted.filter(counted.orders_together >= min_pair_orders)
    frame = engine.execute(counted)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    orders = dict(zip(top["product_id"].astype(str), top["orders"].astype("int64"), strict=True))
    together = frame["orders_together"].astype("int64")
    a = frame["product_a"].map(orders).astype("float64")
    b = frame["product_b"].map(orders).astype("float64")
    frame["orders_together"] = together
    frame["support"] = together / total_orders
    frame["confidence_a_b"] = together / a
    frame["confidence_b_a"] = together / b
    frame["lift"] = frame["support"] / ((a / total_orders) * (b / total_orders))
    frame = frame.sort_values(
        ["lift", "orders_together", "product_a", "product_b"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    return frame[columns].reset_index(drop=True)


def _wilson_low(successes: np.ndarray, trials: np.ndarray, z: float = 1.959964) -> np.ndarray:
    n = trials.astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = p + z * z / (2 * n)
        margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low = (centre - margin) / (1 + z * z / n)
    return np.where(n > 0, np.clip(low, 0.0, 1.0), np.nan)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Rates and shares of an executed :func:`item_table`."""
    frame = frame.copy()
    for col in ("views", "viewers", "carts", "carters", "orders", "buyers", "view_buyers", "abandoned"):
        frame[col] = frame[col].fillna(0).astype("int64")
    for col in ("units", "revenue"):
        frame[col] = frame[col].astype("float64")
    total = float(frame["revenue"].sum())
    frame["revenue_share"] = frame["revenue"] / total if total else np.nan
    viewers, carters = frame["viewers"].to_numpy(), frame["carters"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["conversion_rate"] = np.where(
            viewers > 0, frame["view_buyers"] / np.maximum(viewers, 1), np.nan
        )
        frame["abandonment_rate"] = np.where(carters > 0, frame["abandoned"] / np.maximum(carters, 1), np.nan)
    frame["conversion_low"] = _wilson_low(frame["view_buyers"].to_numpy(), viewers)
    key = [c for c in ("product_id", "category") if c in frame.columns]
    return frame[[*key, *ITEM_COLUMNS]].sort_values(key[0], kind="stable").reset_index(drop=True)


def top_items(table: pd.DataFrame, by: str, *, n: int = 10, min_support: int = 30) -> pd.DataFrame:
    """The ``n`` best rows of a product or category table by ``revenue``, ``views``, ``conversion``
    or ``abandonment`` (see :data:`RANKINGS`); the two rates only among rows with at least
    ``min_support`` viewers (conversion) or carters (abandonment). Ties go to the larger support,
    then the key in alphabetical order."""
    if by not in RANKINGS:
        raise ParameterError(f"The 'by' parameter must be one of {', '.join(RANKINGS)}. Got {by!r} instead.")
    columns, support = RANKINGS[by]
    frame = table
    if support is not None:
        frame = frame[frame[support] >= min_support]
    if support is None:  # an item never sold (or never viewed) is not a top seller (or a top viewed item)
        frame = frame[frame[columns[0]] > 0]
    frame = frame[frame[columns[0]].notna()]
    key = frame.columns[0]
    return (
        frame.sort_values([*columns, key], ascending=[False, False, True], kind="stable")
        .head(n)
        .reset_index(drop=True)
    )


@dataclass
class ProductAnalytics:
    """What :func:`product_analytics` found (one row per product or category, and the pairs)."""

    products: pd.DataFrame
    categories: pd.DataFrame
    pairs: pd.DataFrame
    min_support: int
    has_views: bool
    has_carts: bool
    notes: list[str] = field(default_factory=list)

    def top(self, by: str, *, level: str = "products", n: int = 10) -> pd.DataFrame:
        """:func:`top_items` of the product (``level="products"``) or category table."""
        table = self.products if level == "products" else self.categories
        return top_items(table, by, n=n, min_support=self.min_support)

    def rankings(self) -> list[str]:
        """The rankings this log supports (no views: no view or conversion ranking)."""
        out = ["revenue"]
        if self.has_views:
            out += ["views", "conversion"]
        if self.has_carts:
            out.append("abandonment")
        return out


def product_analytics(
    events: ir.Table,
    *,
    engine: Engine,
    min_support: int = 30,
    top_items: int = 50,
    min_pair_orders: int = 10,
) -> ProductAnalytics | None:
    """Every product and category table of the log, computed by ``engine``.

    Parameters
    ----------
    events
        Canonical events (an Ibis table of ``engine``, e.g. ``engine.read("validated/events.parquet")``).
    engine
        The engine that runs the aggregates (:func:`propensity.engines.get_engine`).
    min_support
        Viewers (conversion) or carters (abandonment) an item needs to be ranked by a rate.
    top_items, min_pair_orders
        Affinity among the ``top_items`` products with the most orders, pairs with at least
        ``min_pair_orders`` orders together.

    Returns
    -------
    ProductAnalytics, or ``None`` when the log names no product and no category.

    Example
    -------
    >>> from propensity.engines import get_engine
    >>> with get_engine() as eng:  # doctest: +SKIP
    ...     pa = product_analytics(eng.read("validated/events.parquet"), engine=eng)
    ...     pa.top("conversion")
    """
    for name, value in (
        ("min_support", min_support),
        ("top_items", top_items),
        ("min_pair_orders", min_pair_orders),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"The '{name}' parameter must be an int >= 1. Got {value!r} instead.")
    if not _has(events, "customer_id", "event_type", "product_id"):
        return None
    if "category" not in events.columns:
        import ibis
        import ibis.expr.datatypes as dt

        events = events.mutate(category=ibis.null().cast(dt.string))
    counts = engine.execute(
        events.aggregate(
            products=events.product_id.notnull().sum(),
            categories=events.category.notnull().sum(),
            views=((events.event_type == "view") & events.product_id.notnull()).sum(),
            carts=((events.event_type == "add_to_cart") & events.product_id.notnull()).sum(),
        )
    ).iloc[0]
    if int(counts["products"] or 0) == 0 and int(counts["categories"] or 0) == 0:
        return None
    products = _finish(engine.execute(item_table(events, level="product_id")))
    categories = (
        _finish(engine.execute(item_table(events, level="category")))
        if int(counts["categories"] or 0)
        else pd.DataFrame(columns=["category", *ITEM_COLUMNS])
    )
    pairs = affinity(
        bought_items(events), products, engine=engine, top_items=top_items, min_pair_orders=min_pair_orders
    )
    has_views, has_carts = int(counts["views"] or 0) > 0, int(counts["carts"] or 0) > 0
    notes = []
    if not has_views:
        notes.append(
            "The log has no product views: no view or conversion ranking (an order log records purchases only)."
        )
    if not has_carts:
        notes.append("The log has no add-to-cart events: no cart-abandonment ranking.")
    return ProductAnalytics(
        products=products,
        categories=categories,
        pairs=pairs,
        min_support=min_support,
        has_views=has_views,
        has_carts=has_carts,
        notes=notes,
    )
