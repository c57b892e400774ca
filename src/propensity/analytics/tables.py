"""Shop analytics on the canonical event log: KPIs, activity, funnel, cohorts, RFM — on any engine.

Every aggregate is an Ibis expression on the canonical events, so the engine of the
:class:`EventStore` runs it (:mod:`propensity.engines`: DuckDB in-process by default, Spark);
only the small results (one row per period, funnel step, cohort month or customer) reach
pandas, where gaps are filled and rates divided.

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
- Periods start at midnight UTC: days, weeks starting on Monday, months.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from propensity.errors import DataError, ParameterError, PropensityError, SchemaError
from propensity.events.mapping import CANONICAL_COLUMNS, FUNNEL_EVENTS, STRING_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

    from propensity.engines import Engine

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

#: Ibis truncation unit and pandas frequency of each period.
_PERIODS = {"day": ("D", "D"), "week": ("W", "W-MON"), "month": ("M", "MS")}
_BY = ("device", "channel")
_ACTIVITY_COLUMNS = [
    "period",
    "active_customers",
    "new_customers",
    "returning_customers",
    "sessions",
    "converting_sessions",
    "conversion_rate",
    "orders",
    "revenue",
    "buyers",
    "new_buyers",
    "returning_buyers",
    "revenue_new",
    "revenue_returning",
]


class EventStore:
    """Canonical events loaded once into an engine (DuckDB by default, or Spark) as the table :attr:`events`.

    Queries are serialised by a lock, so one store can serve several threads (a dashboard's
    sessions) at once. An engine the store starts is released by :meth:`close` (or leaving a
    ``with`` block), else when the store is garbage collected.

    Parameters
    ----------
    source
        A Parquet or CSV path of canonical events, or a DataFrame with canonical columns
        (``customer_id``, ``ts`` and ``event_type`` are required; the others may be absent).
    engine
        ``"duckdb"`` (default), ``"spark"``, or an open :class:`~propensity.engines.Engine`
        (which the store then uses and does not close).
    threads
        DuckDB worker threads (default: DuckDB's choice); ignored by Spark.

    Raises
    ------
    ParameterError
        An unknown engine name.
    SchemaError
        A required canonical column is absent (the message lists the columns found).
    DataError
        The file cannot be read, or ``ts`` is not a timestamp.

    Example
    -------
    >>> store = EventStore("data/shop/validated/events.parquet", engine="spark")  # doctest: +SKIP
    >>> funnel(store, by="device").head()                                         # doctest: +SKIP
    """

    def __init__(
        self,
        source: str | Path | pd.DataFrame,
        *,
        engine: str | Engine = "duckdb",
        threads: int | None = None,
    ) -> None:
        from propensity.engines import get_engine

        if not isinstance(source, pd.DataFrame) and not Path(source).exists():
            raise DataError(f"The event log '{source}' does not exist.")
        self._lock = threading.Lock()
        self._release: Any = None
        if isinstance(engine, str):
            duck = engine.strip().lower() == "duckdb"
            self.engine = get_engine(engine, **({"threads": threads} if duck and threads else {}))
            # An engine the store started is closed with it, or when it is garbage collected.
            self._release = weakref.finalize(self, self.engine.close)
        else:
            self.engine = engine
        self.source = "DataFrame" if isinstance(source, pd.DataFrame) else str(source)
        try:
            self.events = self._load(source)
            stats = self.execute(
                self.events.aggregate(
                    n=self.events.count(), first=self.events.ts.min(), last=self.events.ts.max()
                )
            ).iloc[0]
        except BaseException:
            self.close()
            raise
        self.rows = int(stats["n"])
        if self.rows == 0:
            self.close()
            raise DataError(f"The event log '{self.source}' has no events.")
        self.first_event = pd.Timestamp(stats["first"])
        self.last_event = pd.Timestamp(stats["last"])
        #: Where the data is taken to end: midnight after the last event (as in validation).
        self.data_end = self.last_event.normalize() + pd.Timedelta(days=1)

    def _load(self, source: str | Path | pd.DataFrame) -> ir.Table:
        """The canonical columns with their types (absent ones as NULL), computed once by the engine."""
        import ibis
        import ibis.expr.datatypes as dt

        raw = self.engine.from_frame(source) if isinstance(source, pd.DataFrame) else self.engine.read(source)
        present = list(raw.columns)
        missing = [c for c in ("customer_id", "ts", "event_type") if c not in present]
        if missing:
            raise SchemaError(
                f"The event log '{self.source}' lacks the canonical column(s) {', '.join(missing)} "
                f"(it has: {', '.join(present[:20])}). Validate a raw log first: propensity validate LOG --out DIR "
                "writes DIR/events.parquet in canonical form."
            )
        columns = {}
        for col in CANONICAL_COLUMNS:
            kind = dt.Timestamp() if col == "ts" else dt.string if col in STRING_COLUMNS else dt.float64
            columns[col] = raw[col].cast(kind) if col in present else ibis.null().cast(kind)
        try:
            return self.engine.materialize(raw.select(**columns), "events", memory=True)
        except PropensityError:
            raise
        except Exception as exc:  # the engines' own errors (DuckDB, Spark) on a file they cannot cast
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"Cannot load the event log '{self.source}': {first}") from exc

    def execute(self, expr: ir.Table) -> pd.DataFrame:
        """Run an Ibis expression on :attr:`events` with the store's engine and return a DataFrame."""
        with self._lock:
            return self.engine.execute(expr)

    @contextmanager
    def exclusive(self) -> Iterator[Engine]:
        """The store's engine, held by the caller alone (the lock :meth:`execute` takes), for work
        that runs its own queries on :attr:`events` — e.g.
        :func:`~propensity.analytics.products.product_analytics` (do not call :meth:`execute` inside)."""
        with self._lock:
            yield self.engine

    def close(self) -> None:
        """Release the engine if the store started it (also done when the store is garbage collected)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"EventStore({self.rows:,} events, {self.first_event} .. {self.last_event}, "
            f"source={self.source!r}, engine={self.engine.name!r})"
        )


EventsLike = EventStore | str | Path | pd.DataFrame


def _store(events: EventsLike) -> EventStore:
    return events if isinstance(events, EventStore) else EventStore(events)


def _period(freq: str) -> tuple[str, str]:
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


def _order_key(e: ir.Table) -> ir.StringValue:
    """The key of an order, unique across customers: the customer and its order id, or the purchase event itself."""
    import ibis
    import ibis.expr.datatypes as dt

    event = "#" + e.ts.cast(dt.string) + "#" + ibis.coalesce(e.amount.cast(dt.string), ibis.literal(""))
    return e.customer_id + "|" + ibis.coalesce(e.order_id, event)


def _sessions(e: ir.Table, **more: Any) -> ir.Table:
    """One row per session: ``converted`` (it holds a purchase) and the aggregates in ``more``."""
    part = e.filter(e.session_id.notnull())
    return part.group_by(["customer_id", "session_id"]).aggregate(
        converted=(part.event_type == "purchase").any(), **{k: f(part) for k, f in more.items()}
    )


def _ints(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Counts as int64 (zero where a left merge found nothing)."""
    return frame.astype({c: "int64" for c in columns if c in frame.columns})


def _timestamps(values: Any) -> pd.Series:
    return pd.Series(pd.to_datetime(values)).astype("datetime64[ns]")


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
    e = store.events
    purchase = e.event_type == "purchase"
    row = store.execute(
        e.aggregate(
            events=e.count(),
            customers=e.customer_id.nunique(),
            orders=_order_key(e).nunique(where=purchase),
            buyers=e.customer_id.nunique(where=purchase),
            revenue=e.amount.sum(where=purchase),
            returns=e.count(where=e.event_type == "return"),
        )
    ).iloc[0]
    s = _sessions(e)
    sess = store.execute(
        s.aggregate(sessions=s.count(), converting_sessions=s.count(where=s.converted))
    ).iloc[0]
    types = store.execute(e.group_by("event_type").aggregate(n=e.count()))
    types = types.sort_values(["n", "event_type"], ascending=[False, True], kind="stable")
    sessions, orders = int(sess["sessions"]), int(row["orders"])
    revenue = 0.0 if pd.isna(row["revenue"]) else float(row["revenue"])
    return {
        "events": int(row["events"]),
        "customers": int(row["customers"]),
        "sessions": sessions,
        "converting_sessions": int(sess["converting_sessions"]),
        "conversion_rate": int(sess["converting_sessions"]) / sessions if sessions else None,
        "orders": orders,
        "buyers": int(row["buyers"]),
        "revenue": revenue,
        "avg_order_value": revenue / orders if orders else None,
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
    unit, pandas_freq = _period(freq)
    e = store.events
    purchase = e.event_type == "purchase"
    first_seen = e.group_by("customer_id").aggregate(first_period=e.ts.min().truncate(unit))
    seen = e.select("customer_id", period=e.ts.truncate(unit)).distinct().join(first_seen, "customer_id")
    active = seen.group_by("period").aggregate(
        active_customers=seen.count(), new_customers=seen.count(where=seen.first_period == seen.period)
    )
    s = _sessions(e, period=lambda t: t.ts.min().truncate(unit))
    sessions = s.group_by("period").aggregate(
        sessions=s.count(), converting_sessions=s.count(where=s.converted)
    )
    first_buy = e.filter(purchase).group_by("customer_id").aggregate(first_buy=e.ts.min().truncate(unit))
    buys = (
        e.filter(purchase)
        .select("customer_id", "amount", period=e.ts.truncate(unit), order=_order_key(e))
        .join(first_buy, "customer_id")
    )
    new = buys.first_buy == buys.period
    bought = buys.group_by("period").aggregate(
        orders=buys.order.nunique(),
        revenue=buys.amount.sum(),
        buyers=buys.customer_id.nunique(),
        new_buyers=buys.customer_id.nunique(where=new),
        revenue_new=buys.amount.sum(where=new),
    )
    parts = [store.execute(t) for t in (active, sessions, bought)]
    for part in parts:
        part["period"] = _timestamps(part["period"])
    frame = pd.DataFrame(
        {"period": pd.date_range(parts[0]["period"].min(), parts[0]["period"].max(), freq=pandas_freq)}
    )
    frame["period"] = _timestamps(frame["period"])
    for part in parts:
        frame = frame.merge(part, on="period", how="left")
    counts = [
        "active_customers",
        "new_customers",
        "sessions",
        "converting_sessions",
        "orders",
        "buyers",
        "new_buyers",
    ]
    frame = _ints(frame.fillna({c: 0 for c in [*counts, "revenue", "revenue_new"]}), counts)
    frame = frame.astype({"revenue": "float64", "revenue_new": "float64"})
    frame["returning_customers"] = frame["active_customers"] - frame["new_customers"]
    frame["conversion_rate"] = np.where(
        frame["sessions"] > 0, frame["converting_sessions"] / frame["sessions"].clip(lower=1), np.nan
    )
    frame["returning_buyers"] = frame["buyers"] - frame["new_buyers"]
    frame["revenue_returning"] = frame["revenue"] - frame["revenue_new"]
    return frame[_ACTIVITY_COLUMNS]


def _present_steps(store: EventStore) -> list[str]:
    e = store.events
    types = set(store.execute(e.select("event_type").distinct())["event_type"].astype(str))
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
    import ibis

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

    def depth(t: ir.Table) -> Any:
        return ibis.cases(*((t.event_type == s, i + 1) for i, s in enumerate(steps))).max()

    def group(t: ir.Table) -> Any:
        if by is None:
            return ibis.literal("all")
        return ibis.coalesce(t[by].argmin(t.ts, where=t[by].notnull()), ibis.literal("(unknown)"))

    s = _sessions(store.events, depth=depth, grp=group)
    s = s.filter(s.depth.notnull())
    wide = store.execute(
        s.group_by("grp").aggregate(
            **{f"s{i + 1}": s.count(where=s.depth >= i + 1) for i in range(len(steps))}
        )
    )
    wide = wide.sort_values(["s1", "grp"], ascending=[False, True], kind="stable")
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
    e = store.events
    buys = e.filter(e.event_type == "purchase").select("customer_id", month=e.ts.truncate("M"))
    cohorts = buys.group_by("customer_id").aggregate(cohort=buys.month.min())
    sizes = store.execute(cohorts.group_by("cohort").aggregate(cohort_size=cohorts.count()))
    joined = buys.join(cohorts, "customer_id")
    joined = joined.mutate(
        months_since=(joined.month.year() * 12 + joined.month.month())
        - (joined.cohort.year() * 12 + joined.cohort.month())
    )
    act = store.execute(
        joined.group_by(["cohort", "months_since"]).aggregate(active=joined.customer_id.nunique())
    )
    columns = ["cohort", "months_since", "cohort_size", "active", "retention"]
    if sizes.empty:
        return pd.DataFrame(columns=columns)
    sizes["cohort"] = _timestamps(sizes["cohort"])
    act["cohort"] = _timestamps(act["cohort"])
    last = store.last_event
    last_month = last.year * 12 + last.month
    grid = pd.DataFrame(
        [
            (cohort, months, size)
            for cohort, size in zip(sizes["cohort"], sizes["cohort_size"], strict=True)
            for months in range(last_month - (cohort.year * 12 + cohort.month) + 1)
        ],
        columns=["cohort", "months_since", "cohort_size"],
    )
    frame = grid.merge(act, on=["cohort", "months_since"], how="left").fillna({"active": 0})
    frame = _ints(frame, ["months_since", "cohort_size", "active"])
    frame = frame.sort_values(["cohort", "months_since"], kind="stable").reset_index(drop=True)
    frame["retention"] = frame["active"] / frame["cohort_size"]
    return frame[columns]


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
    import ibis

    store = _store(events)
    cutoff = _as_of(store, as_of)
    e = store.events
    e = e.filter(e.ts < ibis.literal(cutoff.to_pydatetime()))
    # Epoch seconds on both engines (their day differences disagree, see propensity.engines).
    cutoff_seconds = (cutoff - pd.Timestamp(0)).total_seconds()
    p = e.filter(e.event_type == "purchase")
    buyers = p.group_by("customer_id").aggregate(
        recency_days=(cutoff_seconds - p.ts.max().epoch_seconds()) / 86400.0,
        frequency=_order_key(p).nunique(),
        monetary=p.amount.sum(),
    )
    everyone = ibis.window()

    def score(order: Any) -> Any:
        return 1 + (5 * ibis.rank().over(order_by=order) / buyers.count().over(everyone)).floor()

    scored = buyers.mutate(
        r_score=score(ibis.desc(buyers.recency_days)),
        f_score=score(buyers.frequency),
        m_score=score(buyers.monetary),
    )
    seen = e.select("customer_id").distinct()
    joined = seen.left_join(scored, seen.customer_id == scored.customer_id)
    frame = store.execute(
        joined.select(
            seen.customer_id,
            scored.recency_days,
            scored.frequency,
            scored.monetary,
            scored.r_score,
            scored.f_score,
            scored.m_score,
        )
    )
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    frame["recency_days"] = frame["recency_days"].astype("float64")
    frame["frequency"] = frame["frequency"].fillna(0).astype("int64")
    frame["monetary"] = frame["monetary"].fillna(0).astype("float64")
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
