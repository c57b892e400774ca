"""Shop analytics on the canonical event log, computed by DuckDB: KPIs, activity, funnel, cohorts, RFM.

Every function takes canonical events (see :mod:`propensity.events.mapping`) — an
:class:`EventStore`, a Parquet/CSV path of *validated* canonical events (``propensity validate
LOG --out DIR`` writes ``DIR/events.parquet``), or a DataFrame with at least ``customer_id``,
``ts`` and ``event_type`` — and returns a small pandas table whose columns are documented in
the function. Absent optional columns (``session_id``, ``order_id``, ``amount``, ``device``,
``channel`` …) are treated as missing, so order logs work too.

Definitions used throughout
---------------------------
- A **session** is a ``(customer_id, session_id)`` pair; events without a session id (e.g. a
  return booked by the back office) belong to none.
- An **order** is a distinct ``(customer_id, order_id)`` among purchase events; a purchase event
  without an order id is an order of its own. **Revenue** is the sum of ``amount`` over purchase
  events (gross: returns are reported separately).
- A session **converts** when it holds a purchase event.
- Periods are DuckDB's ``date_trunc``: days, weeks starting on Monday, months.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from propensity.errors import DataError, ParameterError, SchemaError
from propensity.events.mapping import CANONICAL_COLUMNS, FUNNEL_EVENTS, STRING_COLUMNS

__all__ = [
    "FUNNEL_STEPS",
    "SEGMENTS",
    "EventStore",
    "EventsLike",
    "activity_over_time",
    "cohort_retention",
    "funnel",
    "rfm_table",
    "segment_summary",
    "summary_kpis",
]

#: Funnel steps, in order (a session reaches a step when its furthest event is that step or later).
FUNNEL_STEPS: tuple[str, ...] = FUNNEL_EVENTS

#: RFM segments from the recency (R) and frequency (F) scores, in display order, with their meaning.
SEGMENTS: dict[str, str] = {
    "champions": "bought recently and often (R 5, F 4–5)",
    "loyal": "buy often, not the very latest (R 3–4, F 4–5)",
    "potential loyalists": "recent, a few orders (R 4–5, F 2–3)",
    "new customers": "first order very recently (R 5, F 1)",
    "promising": "one order, fairly recent (R 4, F 1)",
    "need attention": "average recency and frequency (R 3, F 3)",
    "about to sleep": "few orders, fading (R 3, F 1–2)",
    "at risk": "used to buy several times, not lately (R 1–2, F 3–4)",
    "can't lose": "bought the most, long ago (R 1–2, F 5)",
    "hibernating": "few orders, long ago (R 1–2, F 1–2)",
    "prospects": "seen, never bought",
}

_PERIODS = {"day": "day", "week": "week", "month": "month"}
_BY = ("device", "channel")


class EventStore:
    """Canonical events loaded once into an in-process DuckDB database (table ``events``).

    Queries run on a fresh cursor each, so one store can serve several threads (a dashboard's
    sessions) at once.

    Parameters
    ----------
    source
        A Parquet or CSV path of canonical events, or a DataFrame with canonical columns
        (``customer_id``, ``ts`` and ``event_type`` are required; the others may be absent).
    threads
        DuckDB worker threads (default: DuckDB's choice).

    Raises
    ------
    SchemaError
        A required canonical column is absent (the message lists the columns found).
    DataError
        The file cannot be read, or ``ts`` is not a timestamp.

    Example
    -------
    >>> store = EventStore("data/shop/validated/events.parquet")  # doctest: +SKIP
    >>> funnel(store, by="device").head()                         # doctest: +SKIP
    """

    def __init__(self, source: str | Path | pd.DataFrame, *, threads: int | None = None) -> None:
        import duckdb

        self._con = duckdb.connect()
        self._lock = threading.Lock()
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        if isinstance(source, pd.DataFrame):
            self._con.register("_source", source)
            relation = "_source"
            self.source = "DataFrame"
        else:
            path = Path(source)
            if not path.exists():
                raise DataError(f"The event log '{path}' does not exist.")
            reader = "read_parquet" if path.suffix.lower() in (".parquet", ".pq") else "read_csv_auto"
            relation = f"{reader}('{_sql_text(str(path))}')"
            self.source = str(path)
        try:
            present = [str(r[0]) for r in self._con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        except duckdb.Error as exc:
            raise DataError(f"Cannot read the event log '{self.source}': {exc}") from exc
        missing = [c for c in ("customer_id", "ts", "event_type") if c not in present]
        if missing:
            raise SchemaError(
                f"The event log '{self.source}' lacks the canonical column(s) {', '.join(missing)} "
                f"(it has: {', '.join(present[:20])}). Validate a raw log first: propensity validate LOG --out DIR "
                "writes DIR/events.parquet in canonical form."
            )
        cols = []
        for col in CANONICAL_COLUMNS:
            kind = "TIMESTAMP" if col == "ts" else "VARCHAR" if col in STRING_COLUMNS else "DOUBLE"
            cols.append(
                f'CAST("{col}" AS {kind}) AS {col}' if col in present else f"CAST(NULL AS {kind}) AS {col}"
            )
        try:
            self._con.execute(f"CREATE TABLE events AS SELECT {', '.join(cols)} FROM {relation}")
        except duckdb.Error as exc:
            raise DataError(f"Cannot load the event log '{self.source}': {exc}") from exc
        if isinstance(source, pd.DataFrame):
            self._con.unregister("_source")
        stats = self.query("SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM events").iloc[0]
        self.rows = int(stats["n"])
        if self.rows == 0:
            raise DataError(f"The event log '{self.source}' has no events.")
        self.first_event = pd.Timestamp(stats["first"])
        self.last_event = pd.Timestamp(stats["last"])
        #: Where the data is taken to end: midnight after the last event (as in validation).
        self.data_end = self.last_event.normalize() + pd.Timedelta(days=1)

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run ``sql`` (which reads the table ``events``) and return a DataFrame."""
        with self._lock:
            cursor = self._con.cursor()
        try:
            return cursor.execute(sql, params or []).df()
        finally:
            cursor.close()

    def __repr__(self) -> str:
        return f"EventStore({self.rows:,} events, {self.first_event} .. {self.last_event}, source={self.source!r})"


EventsLike = EventStore | str | Path | pd.DataFrame


def _store(events: EventsLike) -> EventStore:
    return events if isinstance(events, EventStore) else EventStore(events)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _period(freq: str) -> str:
    unit = _PERIODS.get(str(freq).lower())
    if unit is None:
        raise ParameterError(
            f"The 'freq' parameter must be one of {', '.join(_PERIODS)}. Got {freq!r} instead."
        )
    return unit


def _as_of(store: EventStore, as_of: Any) -> pd.Timestamp:
    if as_of is None:
        return store.data_end
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if ts <= store.first_event:
        raise DataError(
            f"as_of {ts} is not after the first event ({store.first_event}): there is nothing to analyse."
        )
    return ts


# The key of an order: its id, or the purchase event itself when it has none.
_ORDER_KEY = "coalesce(order_id, '#' || CAST(ts AS VARCHAR) || '#' || coalesce(CAST(amount AS VARCHAR), ''))"


def summary_kpis(events: EventsLike) -> dict[str, Any]:
    """Headline numbers of the whole log.

    Returns
    -------
    dict
        ``events``, ``customers``, ``sessions``, ``converting_sessions``, ``conversion_rate``
        (converting sessions / sessions; ``None`` without sessions), ``orders``, ``buyers``,
        ``revenue``, ``avg_order_value`` (revenue / orders), ``returns`` (return events),
        ``first_event``, ``last_event`` (ISO text), ``event_types`` {type: events}.
    """
    store = _store(events)
    row = store.query(
        f"""
        WITH s AS (
            SELECT customer_id, session_id, bool_or(event_type = 'purchase') AS converted
            FROM events WHERE session_id IS NOT NULL GROUP BY ALL
        )
        SELECT
            (SELECT count(*) FROM events)::BIGINT AS events,
            (SELECT count(DISTINCT customer_id) FROM events)::BIGINT AS customers,
            (SELECT count(*) FROM s)::BIGINT AS sessions,
            (SELECT count(*) FILTER (WHERE converted) FROM s)::BIGINT AS converting_sessions,
            (SELECT count(DISTINCT (customer_id, {_ORDER_KEY})) FROM events WHERE event_type = 'purchase')::BIGINT
                AS orders,
            (SELECT count(DISTINCT customer_id) FROM events WHERE event_type = 'purchase')::BIGINT AS buyers,
            (SELECT coalesce(sum(amount), 0) FROM events WHERE event_type = 'purchase')::DOUBLE AS revenue,
            (SELECT count(*) FROM events WHERE event_type = 'return')::BIGINT AS returns
        """
    ).iloc[0]
    types = store.query("SELECT event_type, count(*)::BIGINT AS n FROM events GROUP BY 1 ORDER BY 2 DESC")
    sessions, orders = int(row["sessions"]), int(row["orders"])
    return {
        "events": int(row["events"]),
        "customers": int(row["customers"]),
        "sessions": sessions,
        "converting_sessions": int(row["converting_sessions"]),
        "conversion_rate": int(row["converting_sessions"]) / sessions if sessions else None,
        "orders": orders,
        "buyers": int(row["buyers"]),
        "revenue": float(row["revenue"]),
        "avg_order_value": float(row["revenue"]) / orders if orders else None,
        "returns": int(row["returns"]),
        "first_event": store.first_event.isoformat(),
        "last_event": store.last_event.isoformat(),
        "event_types": {str(t): int(n) for t, n in zip(types["event_type"], types["n"], strict=True)},
    }


def activity_over_time(events: EventsLike, *, freq: Literal["day", "week", "month"] = "day") -> pd.DataFrame:
    """Activity, conversion and revenue per day, week (Monday first) or month; empty periods are rows of zeros.

    Returns
    -------
    pandas.DataFrame
        One row per period from the first to the last event:

        - ``period`` (timestamp at the start of the period);
        - ``active_customers`` (with any event in the period), split into ``new_customers`` (first
          event ever in this period) and ``returning_customers`` (seen in an earlier period);
        - ``sessions`` (started in the period), ``converting_sessions``, ``conversion_rate``
          (NaN without sessions);
        - ``orders`` and ``revenue`` (purchase events in the period), ``buyers``, split into
          ``new_buyers`` (first purchase ever in this period) and ``returning_buyers``;
          ``revenue_new`` and ``revenue_returning`` (revenue of those two groups).
    """
    store = _store(events)
    unit = _period(freq)
    frame = store.query(
        f"""
        WITH first_seen AS (
            SELECT customer_id, date_trunc('{unit}', min(ts)) AS first_period FROM events GROUP BY 1
        ),
        first_buy AS (
            SELECT customer_id, date_trunc('{unit}', min(ts)) AS first_buy
            FROM events WHERE event_type = 'purchase' GROUP BY 1
        ),
        periods AS (
            SELECT unnest(generate_series(
                (SELECT date_trunc('{unit}', min(ts)) FROM events),
                (SELECT date_trunc('{unit}', max(ts)) FROM events),
                INTERVAL 1 {unit})) AS period
        ),
        active AS (
            SELECT a.period,
                   count(*)::BIGINT AS active_customers,
                   count(*) FILTER (WHERE f.first_period = a.period)::BIGINT AS new_customers
            FROM (SELECT DISTINCT date_trunc('{unit}', ts) AS period, customer_id FROM events) a
            JOIN first_seen f USING (customer_id)
            GROUP BY 1
        ),
        sess AS (
            SELECT date_trunc('{unit}', min(ts)) AS period, bool_or(event_type = 'purchase') AS converted
            FROM events WHERE session_id IS NOT NULL GROUP BY customer_id, session_id
        ),
        sess_p AS (
            SELECT period, count(*)::BIGINT AS sessions,
                   count(*) FILTER (WHERE converted)::BIGINT AS converting_sessions
            FROM sess GROUP BY 1
        ),
        buys AS (
            SELECT date_trunc('{unit}', e.ts) AS period, e.customer_id, {_ORDER_KEY} AS order_key,
                   e.amount, b.first_buy
            FROM events e JOIN first_buy b USING (customer_id)
            WHERE e.event_type = 'purchase'
        ),
        buys_p AS (
            SELECT period,
                   count(DISTINCT (customer_id, order_key))::BIGINT AS orders,
                   coalesce(sum(amount), 0)::DOUBLE AS revenue,
                   count(DISTINCT customer_id)::BIGINT AS buyers,
                   count(DISTINCT customer_id) FILTER (WHERE first_buy = period)::BIGINT AS new_buyers,
                   coalesce(sum(amount) FILTER (WHERE first_buy = period), 0)::DOUBLE AS revenue_new
            FROM buys GROUP BY 1
        )
        SELECT p.period,
               coalesce(a.active_customers, 0)::BIGINT AS active_customers,
               coalesce(a.new_customers, 0)::BIGINT AS new_customers,
               (coalesce(a.active_customers, 0) - coalesce(a.new_customers, 0))::BIGINT AS returning_customers,
               coalesce(s.sessions, 0)::BIGINT AS sessions,
               coalesce(s.converting_sessions, 0)::BIGINT AS converting_sessions,
               coalesce(b.orders, 0)::BIGINT AS orders,
               coalesce(b.revenue, 0)::DOUBLE AS revenue,
               coalesce(b.buyers, 0)::BIGINT AS buyers,
               coalesce(b.new_buyers, 0)::BIGINT AS new_buyers,
               (coalesce(b.buyers, 0) - coalesce(b.new_buyers, 0))::BIGINT AS returning_buyers,
               coalesce(b.revenue_new, 0)::DOUBLE AS revenue_new,
               (coalesce(b.revenue, 0) - coalesce(b.revenue_new, 0))::DOUBLE AS revenue_returning
        FROM periods p
        LEFT JOIN active a USING (period)
        LEFT JOIN sess_p s USING (period)
        LEFT JOIN buys_p b USING (period)
        ORDER BY p.period
        """
    )
    frame["period"] = pd.to_datetime(frame["period"])
    with np.errstate(invalid="ignore", divide="ignore"):
        frame.insert(
            6,
            "conversion_rate",
            np.where(
                frame["sessions"] > 0, frame["converting_sessions"] / frame["sessions"].clip(lower=1), np.nan
            ),
        )
    return frame


def _present_steps(store: EventStore) -> list[str]:
    types = set(store.query("SELECT DISTINCT event_type FROM events")["event_type"].astype(str))
    return [s for s in FUNNEL_STEPS if s in types]


def funnel(events: EventsLike, *, by: Literal["device", "channel"] | None = None) -> pd.DataFrame:
    """Sessions through the funnel view → add to cart → checkout → purchase, overall or by device/channel.

    A session reaches a step when its furthest funnel event is that step or a later one (a
    session that purchased also counts as having checked out). Steps that never occur in the
    log are left out (an order log has only ``purchase``). With ``by``, a session belongs to
    the device/channel of its first event that names one (``(unknown)`` when none does).

    Returns
    -------
    pandas.DataFrame
        ``[by,] step, step_index (1-based), sessions, share_of_start`` (sessions / sessions at
        the first step of the group), ``conversion_from_previous`` (sessions / sessions at the
        previous step; NaN at the first step) and ``drop_off`` (1 − conversion_from_previous).
        Groups are ordered by their number of sessions, largest first.
    """
    store = _store(events)
    if by is not None and by not in _BY:
        raise ParameterError(
            f"The 'by' parameter of funnel must be one of {', '.join(_BY)} or None. Got {by!r} instead."
        )
    steps = _present_steps(store)
    if not steps:
        columns = ([by] if by else []) + [
            "step",
            "step_index",
            "sessions",
            "share_of_start",
            "conversion_from_previous",
            "drop_off",
        ]
        return pd.DataFrame(columns=columns)
    depth = " ".join(f"WHEN '{s}' THEN {i + 1}" for i, s in enumerate(steps))
    group = (
        f", coalesce(arg_min({by}, ts) FILTER (WHERE {by} IS NOT NULL), '(unknown)') AS grp"
        if by
        else ", 'all' AS grp"
    )
    counts = ", ".join(
        f"count(*) FILTER (WHERE depth >= {i + 1})::BIGINT AS s{i + 1}" for i in range(len(steps))
    )
    wide = store.query(
        f"""
        WITH s AS (
            SELECT max(CASE event_type {depth} END) AS depth {group}
            FROM events WHERE session_id IS NOT NULL GROUP BY customer_id, session_id
        )
        SELECT grp, {counts} FROM s WHERE depth IS NOT NULL GROUP BY grp ORDER BY s1 DESC, grp
        """
    )
    rows = []
    for rec in wide.itertuples(index=False):
        values = [int(getattr(rec, f"s{i + 1}")) for i in range(len(steps))]
        for i, step in enumerate(steps):
            prev = values[i - 1] if i else None
            conv = (values[i] / prev if prev else math.nan) if i else math.nan
            row = {
                "step": step,
                "step_index": i + 1,
                "sessions": values[i],
                "share_of_start": values[i] / values[0] if values[0] else math.nan,
                "conversion_from_previous": conv,
                "drop_off": 1 - conv if not math.isnan(conv) else math.nan,
            }
            rows.append({by: rec.grp, **row} if by else row)
    return pd.DataFrame(rows)


def cohort_retention(events: EventsLike) -> pd.DataFrame:
    """Purchase retention by first-purchase month (cohort) and months since it.

    Returns
    -------
    pandas.DataFrame
        One row per cohort and month from 0 (the cohort's own month, retention 1) to the last
        month of the log: ``cohort`` (timestamp, first day of the month), ``months_since``,
        ``cohort_size`` (customers whose first purchase fell in that month), ``active``
        (of those, customers who purchased in that month) and ``retention`` (active / size).
    """
    store = _store(events)
    frame = store.query(
        """
        WITH buys AS (
            SELECT customer_id, date_trunc('month', ts) AS month FROM events WHERE event_type = 'purchase'
        ),
        cohorts AS (SELECT customer_id, min(month) AS cohort FROM buys GROUP BY 1),
        sizes AS (SELECT cohort, count(*)::BIGINT AS cohort_size FROM cohorts GROUP BY 1),
        last_month AS (SELECT max(date_trunc('month', ts)) AS m FROM events),
        grid AS (
            SELECT s.cohort, unnest(range(0, datediff('month', s.cohort, (SELECT m FROM last_month)) + 1))
                AS months_since
            FROM sizes s
        ),
        act AS (
            SELECT c.cohort, datediff('month', c.cohort, b.month) AS months_since,
                   count(DISTINCT b.customer_id)::BIGINT AS active
            FROM buys b JOIN cohorts c USING (customer_id) GROUP BY 1, 2
        )
        SELECT g.cohort, g.months_since::BIGINT AS months_since, s.cohort_size,
               coalesce(a.active, 0)::BIGINT AS active
        FROM grid g JOIN sizes s USING (cohort) LEFT JOIN act a USING (cohort, months_since)
        ORDER BY g.cohort, g.months_since
        """
    )
    frame["cohort"] = pd.to_datetime(frame["cohort"])
    frame["retention"] = frame["active"] / frame["cohort_size"]
    return frame


def rfm_table(events: EventsLike, *, as_of: Any = None) -> pd.DataFrame:
    """Recency, frequency and monetary value of every customer seen before ``as_of``, scored and segmented.

    Scores 1–5 rank buyers against each other: ``score = 1 + floor(5 · (rank − 1) / buyers)``
    where ``rank`` is the 1-based position (ties share the lowest) in the order from worst to
    best — most days since the last purchase first for R, fewest orders first for F, least
    revenue first for M. The segment comes from R and F (see :data:`SEGMENTS`); customers
    without a purchase before ``as_of`` are ``prospects`` with missing scores.

    Parameters
    ----------
    events
        Canonical events.
    as_of
        Only events before it count; recency is measured to it (default: midnight after the
        last event).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``recency_days`` (days from the last purchase to ``as_of``; NaN for
        prospects), ``frequency`` (orders), ``monetary`` (revenue), ``r_score``, ``f_score``,
        ``m_score`` (nullable ints), ``segment``; sorted by ``customer_id``.
    """
    store = _store(events)
    cutoff = _as_of(store, as_of)
    frame = store.query(
        f"""
        WITH e AS (SELECT * FROM events WHERE ts < ?),
        seen AS (SELECT DISTINCT customer_id FROM e),
        buyers AS (
            SELECT customer_id,
                   (epoch(?::TIMESTAMP) - epoch(max(ts))) / 86400.0 AS recency_days,
                   count(DISTINCT {_ORDER_KEY})::BIGINT AS frequency,
                   coalesce(sum(amount), 0)::DOUBLE AS monetary
            FROM e WHERE event_type = 'purchase' GROUP BY 1
        ),
        scored AS (
            SELECT *,
                   1 + floor(5 * (rank() OVER (ORDER BY recency_days DESC) - 1) / count(*) OVER ())::INTEGER AS r_score,
                   1 + floor(5 * (rank() OVER (ORDER BY frequency) - 1) / count(*) OVER ())::INTEGER AS f_score,
                   1 + floor(5 * (rank() OVER (ORDER BY monetary) - 1) / count(*) OVER ())::INTEGER AS m_score
            FROM buyers
        )
        SELECT s.customer_id, b.recency_days, coalesce(b.frequency, 0)::BIGINT AS frequency,
               coalesce(b.monetary, 0)::DOUBLE AS monetary, b.r_score, b.f_score, b.m_score
        FROM seen s LEFT JOIN scored b USING (customer_id)
        ORDER BY s.customer_id
        """,
        [cutoff.to_pydatetime(), cutoff.to_pydatetime()],
    )
    for col in ("r_score", "f_score", "m_score"):
        frame[col] = frame[col].astype("Int64")
    frame["segment"] = [
        _segment(r, f) for r, f in zip(frame["r_score"].tolist(), frame["f_score"].tolist(), strict=True)
    ]
    return frame


def _segment(r: Any, f: Any) -> str:
    if r is None or f is None or r is pd.NA or f is pd.NA:
        return "prospects"
    r, f = int(r), int(f)
    if r <= 2:
        return "hibernating" if f <= 2 else "at risk" if f <= 4 else "can't lose"
    if r == 3:
        return "about to sleep" if f <= 2 else "need attention" if f == 3 else "loyal"
    if f >= 4:
        return "champions" if r == 5 else "loyal"
    if f >= 2:
        return "potential loyalists"
    return "new customers" if r == 5 else "promising"


def segment_summary(rfm: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Size, value and (with ``scores``) predicted propensity of each RFM segment.

    Parameters
    ----------
    rfm
        The output of :func:`rfm_table`.
    scores
        Optional ``customer_id`` with a ``probability`` column (e.g. ``propensity score``
        output) and/or the lifetime-value columns ``p_alive`` and ``clv`` (``propensity clv``
        scores); customers without a score are left out of those columns.

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``meaning``, ``customers``, ``share`` (of all customers), ``revenue``,
        ``revenue_share``, ``avg_orders``, ``avg_recency_days``, ``avg_revenue``; with
        probabilities also ``scored``, ``mean_probability`` and ``expected_buyers`` (sum of
        probabilities); with ``p_alive`` also ``mean_p_alive`` and ``likely_alive`` (the share
        with P(alive) ≥ 0.5); with ``clv`` also ``clv`` (summed over the segment).
        Segments in the order of :data:`SEGMENTS`; empty segments are left out.
    """
    frame = rfm[["customer_id", "segment", "recency_days", "frequency", "monetary"]]
    scored = [c for c in ("probability", "p_alive", "clv") if scores is not None and c in scores.columns]
    if scores is not None:
        if "customer_id" not in scores.columns or not scored:
            raise SchemaError(
                "The 'scores' of segment_summary need a customer_id column and probability, p_alive or clv."
            )
        frame = frame.merge(
            scores[["customer_id", *scored]].astype({"customer_id": str}).drop_duplicates("customer_id"),
            on="customer_id",
            how="left",
        )
    grouped = frame.groupby("segment", sort=False)
    out = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped["monetary"].sum(),
            "avg_orders": grouped["frequency"].mean(),
            "avg_recency_days": grouped["recency_days"].mean(),
        }
    )
    out["avg_revenue"] = out["revenue"] / out["customers"]
    if "probability" in scored:
        out["scored"] = grouped["probability"].count()
        out["mean_probability"] = grouped["probability"].mean()
        out["expected_buyers"] = grouped["probability"].sum()
    if "p_alive" in scored:
        out["mean_p_alive"] = grouped["p_alive"].mean()
        out["likely_alive"] = (
            frame["p_alive"].ge(0.5).where(frame["p_alive"].notna()).groupby(frame["segment"]).mean()
        )
    if "clv" in scored:
        out["clv"] = grouped["clv"].sum(min_count=1)
    total, revenue = out["customers"].sum(), out["revenue"].sum()
    out["share"] = out["customers"] / total if total else np.nan
    out["revenue_share"] = out["revenue"] / revenue if revenue else np.nan
    order = [s for s in SEGMENTS if s in out.index]
    out = out.loc[order].reset_index(names="segment")
    out.insert(1, "meaning", out["segment"].map(SEGMENTS))
    first = ["segment", "meaning", "customers", "share", "revenue", "revenue_share", "avg_orders"]
    return out[first + [c for c in out.columns if c not in first]]
