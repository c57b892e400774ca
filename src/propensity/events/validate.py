"""Read an event or order log through a mapping, validate every row, quarantine the bad ones.

One Ibis expression turns the raw file into canonical events (see
:mod:`propensity.events.mapping`) and gives each row at most one reason to be quarantined —
the first rule it breaks, in this order:

1. ``missing customer id``
2. ``missing timestamp``
3. ``unparseable timestamp``
4. ``missing event type``
5. ``unknown event type`` (not canonical, not mapped, not kept; see the report's list)
6. ``unparseable amount or quantity``
7. ``negative amount on a non-return``
8. ``timestamp after the end of the data`` (clock skew: later than the export time, default now)
9. ``exact duplicate event`` (every column of the input row equal to another valid row;
   one copy is kept, the extra copies are counted here)

so ``rows_in == rows_ok + rows_quarantined`` holds by construction, and the reasons add up to
``rows_quarantined``. The quarantine file has one line per distinct bad row: the reason, the
column and value that broke the rule, ``rows`` (how many input rows the line stands for —
copies of a bad row, or the extra copies of a duplicated one; the column adds up to
``rows_quarantined``) and every input column as text.

Duplicates are found with one hash aggregation over all input columns (no window), which
is what keeps validation fast on tens of millions of rows.

Sessions: when the log has no session ids, a session is a run of a customer's events with
gaps of at most ``session_gap_minutes`` (30 by default). A session id depends only on the
customer's earlier events, so events appended later never change an earlier session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from propensity.engines import Engine, get_engine
from propensity.errors import DataError, InsufficientDataError, PropensityError
from propensity.events.mapping import (
    CANONICAL_COLUMNS,
    CANONICAL_EVENTS,
    EventMapping,
    MappingLike,
    as_mapping,
)
from propensity.sources import check_output, encoding_label, table_format, write_json

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "REASONS",
    "EventLog",
    "ValidationReport",
    "canonical_events",
    "flag_rows",
    "load_events",
    "row_verdicts",
    "validate_events",
]

log = logging.getLogger(__name__)

MISSING_CUSTOMER = "missing customer id"
MISSING_TS = "missing timestamp"
BAD_TS = "unparseable timestamp"
MISSING_EVENT = "missing event type"
UNKNOWN_EVENT = "unknown event type"
BAD_NUMBER = "unparseable amount or quantity"
NEGATIVE = "negative amount on a non-return"
FUTURE = "timestamp after the end of the data"
DUPLICATE = "exact duplicate event"
#: Quarantine reasons, in the order the rules are applied (a row gets the first it breaks).
REASONS = (
    MISSING_CUSTOMER,
    MISSING_TS,
    BAD_TS,
    MISSING_EVENT,
    UNKNOWN_EVENT,
    BAD_NUMBER,
    NEGATIVE,
    FUTURE,
    DUPLICATE,
)
_OFFSET_RE = r"(Z|z|[+-]\d{2}:?\d{2})$"
_RAW = "raw__"
_COPIES = "_copies"

EventSource = str | Path | pd.DataFrame


@dataclass
class ValidationReport:
    """What validation found; ``rows_in == rows_ok + rows_quarantined`` always."""

    source: str
    engine: str
    rows_in: int
    rows_ok: int
    rows_quarantined: int
    reasons: dict[str, int]
    customers: int
    first_event: str | None
    last_event: str | None
    data_end: str | None
    event_types: dict[str, int]
    unknown_event_names: dict[str, int]
    timestamps_with_offset: int
    timestamps_read_in_zone: int
    timezone: str
    sessions: str
    columns: dict[str, str]
    order_log: bool
    export_time: str
    quarantine_path: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: How a text log was decoded, e.g. ``"cp1252 (detected)"``; ``None`` for Parquet and frames.
    encoding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_purchases(self) -> bool:
        return self.event_types.get("purchase", 0) > 0


class EventLog:
    """Validated canonical events on an engine, ready for features and labels.

    Obtain one from :func:`load_events`; use it as a context manager (it owns temporary
    files and, unless an engine was passed in, the engine).

    Attributes
    ----------
    events
        The canonical events (Ibis table; see :mod:`propensity.events.mapping`).
    report
        The :class:`ValidationReport`.
    first_event, last_event
        Earliest and latest valid timestamps (naive UTC).
    data_end
        Where the data is taken to end: the export time when given, else midnight after the
        last event (the log is assumed complete through the day of its last event).
    """

    def __init__(
        self,
        engine: Engine,
        events: ir.Table,
        report: ValidationReport,
        mapping: EventMapping,
        *,
        owns_engine: bool,
    ) -> None:
        self.engine = engine
        self.events = events
        self.report = report
        self.mapping = mapping
        self._owns_engine = owns_engine
        self.first_event = pd.Timestamp(report.first_event) if report.first_event else None
        self.last_event = pd.Timestamp(report.last_event) if report.last_event else None
        self.data_end = pd.Timestamp(report.data_end) if report.data_end else None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_engine:
            self.engine.close()

    def __repr__(self) -> str:
        r = self.report
        return (
            f"EventLog({r.rows_ok:,} events of {r.customers:,} customers, {r.first_event} .. {r.last_event}, "
            f"engine={self.engine.name})"
        )


# ------------------------------------------------------------------------------ parsing


def _text(col: ir.Value) -> ir.StringValue:
    """Any column as trimmed text (integral floats lose their ``.0``); empty text is NULL."""
    import ibis.expr.datatypes as dt

    dtype = col.type()
    if dtype.is_floating():
        as_int = col.try_cast(dt.int64)
        text = ibis_ifelse(col == col.floor(), as_int.cast(dt.string), col.cast(dt.string))
    elif dtype.is_string():
        text = col.strip()
    else:
        text = col.cast(dt.string)
    return text.nullif("")


def ibis_ifelse(cond: Any, a: Any, b: Any) -> Any:
    import ibis

    return ibis.ifelse(cond, a, b)


def _number(col: ir.Value) -> tuple[ir.FloatingValue, ir.BooleanValue]:
    """Any column as float64 and a flag of cells that hold something that is not a number."""
    import ibis.expr.datatypes as dt

    dtype = col.type()
    if dtype.is_numeric() or dtype.is_boolean():
        value = col.cast(dt.float64)
        return value, value.isnull() & col.notnull()  # never true: numbers are numbers
    text = _text(col)
    value = text.try_cast(dt.float64)
    return value, text.notnull() & value.isnull()


def _timestamp(
    col: ir.Value, mapping: EventMapping, engine: Engine
) -> tuple[ir.TimestampValue, ir.BooleanValue, ir.BooleanValue]:
    """(naive UTC timestamp or NULL, raw value present, raw text carried an explicit offset)."""
    import ibis
    import ibis.expr.datatypes as dt

    dtype = col.type()
    present = col.notnull()
    if dtype.is_timestamp():
        if dtype.timezone is not None:  # an instant: only drop the zone (the session is UTC)
            return col.cast(dt.Timestamp()), present, ibis.literal(True)
        # nanosecond timestamps (pandas-written Parquet) become microseconds first
        return engine.local_to_utc(col.cast(dt.Timestamp()), mapping.timezone), present, ibis.literal(False)
    if dtype.is_date():
        return engine.local_to_utc(col.cast(dt.Timestamp()), mapping.timezone), present, ibis.literal(False)
    if dtype.is_integer():
        seconds = ibis.ifelse(col.abs() > 100_000_000_000, col // 1000, col)
        return seconds.as_timestamp("s"), present, ibis.literal(True)
    text = _text(col)
    has_offset = text.re_search(_OFFSET_RE).fill_null(False)
    parsed = engine.parse_timestamp(text, mapping.timestamp_format)
    if mapping.timezone != "UTC":
        parsed = ibis.ifelse(has_offset, parsed, engine.local_to_utc(parsed, mapping.timezone))
    return parsed, text.notnull(), has_offset


def _event_type(raw: ir.Table, src: Mapping[str, Any], mapping: EventMapping) -> tuple[Any, Any]:
    """(the event name as written, the canonical event type or NULL when unknown)."""
    import ibis
    import ibis.expr.datatypes as dt

    is_return = ibis.literal(False)
    if mapping.returns is not None:
        is_return = _text(raw[mapping.returns.column]).startswith(mapping.returns.prefix).fill_null(False)
    if mapping.order_log:
        return ibis.literal("purchase"), ibis.ifelse(is_return, "return", "purchase")
    raw_event = _text(src["event_type"])
    fallback = raw_event if mapping.keep_unmapped_events else ibis.null(dt.string)
    event = raw_event.lower().substitute(mapping.event_lookup(), else_=fallback)
    return raw_event, ibis.ifelse(is_return & event.notnull(), "return", event)


def _numbers(src: Mapping[str, Any], resolved: Mapping[str, str]) -> tuple[Any, Any, Any, list[str]]:
    """(amount, quantity, any number unreadable, the number columns — the amount's or price's first).

    Without an amount column, amount = price × quantity (quantity 1 when missing).
    """
    import ibis
    import ibis.expr.datatypes as dt

    bad_number = ibis.literal(False)
    number_cols: list[str] = []
    amount: Any = ibis.null(dt.float64)
    quantity: Any = ibis.null(dt.float64)
    if "quantity" in src:
        quantity, bad_q = _number(src["quantity"])
        bad_number = bad_number | bad_q
        number_cols.append(resolved["quantity"])
    if "amount" in src:
        amount, bad_a = _number(src["amount"])
        bad_number = bad_number | bad_a
        number_cols.insert(0, resolved["amount"])
    elif "price" in src:
        price, bad_p = _number(src["price"])
        bad_number = bad_number | bad_p
        amount = price * quantity.fill_null(1.0) if "quantity" in src else price
        number_cols.insert(0, resolved["price"])
    return amount, quantity, bad_number, number_cols


def _first_broken(rules: Sequence[tuple[Any, str, str, Any]]) -> tuple[Any, Any, Any]:
    """(reason, column, value) of the first rule a row breaks, NULLs for a valid row."""
    import ibis
    import ibis.expr.datatypes as dt

    reason: Any = ibis.null(dt.string)
    column: Any = ibis.null(dt.string)
    value: Any = ibis.null(dt.string)
    for cond, why, col, val in reversed(rules):
        reason = ibis.ifelse(cond, why, reason)
        column = ibis.ifelse(cond, col, column)
        value = ibis.ifelse(cond, val, value)
    return reason, column, value


def _flag(
    raw: ir.Table,
    mapping: EventMapping,
    resolved: Mapping[str, str],
    engine: Engine,
    export_time: datetime,
    keep: Sequence[str] = (),
) -> ir.Table:
    """Canonical columns, ``_reason``/``_column``/``_value`` and the raw row as text for bad rows
    (and the input columns ``keep`` as they are)."""
    import ibis
    import ibis.expr.datatypes as dt

    src = {k: raw[v] for k, v in resolved.items()}
    null_s = ibis.null(dt.string)
    out: dict[str, Any] = {}
    out["customer_id"] = _text(src["customer_id"])
    ts, ts_present, has_offset = _timestamp(src["ts"], mapping, engine)
    out["ts"] = ts
    raw_event, event = _event_type(raw, src, mapping)
    out["event_type"] = event
    amount, quantity, bad_number, number_cols = _numbers(src, resolved)
    out["amount"] = amount
    out["quantity"] = quantity
    for name in ("session_id", "order_id", "product_id", "category", "device", "channel"):
        out[name] = _text(src[name]) if name in src else null_s
    # reasons, first broken rule wins
    cid_raw = src["customer_id"]
    rules: list[tuple[Any, str, str, Any]] = [
        (out["customer_id"].isnull(), MISSING_CUSTOMER, resolved["customer_id"], cid_raw.cast(dt.string)),
        (~ts_present, MISSING_TS, resolved["ts"], null_s),
        (ts.isnull(), BAD_TS, resolved["ts"], src["ts"].cast(dt.string)),
    ]
    if not mapping.order_log:
        rules.append((raw_event.isnull(), MISSING_EVENT, resolved["event_type"], null_s))
        rules.append((event.isnull(), UNKNOWN_EVENT, resolved["event_type"], raw_event))
    if number_cols:
        rules.append((bad_number, BAD_NUMBER, number_cols[0], _number_text(src, resolved)))
    rules.append(
        (
            (amount < 0).fill_null(False) & (event != "return").fill_null(True),
            NEGATIVE,
            number_cols[0] if number_cols else "amount",
            amount.cast(dt.string),
        )
    )
    export = ibis.literal(pd.Timestamp(export_time).tz_localize(None), type=dt.Timestamp())
    rules.append(((ts > export).fill_null(False), FUTURE, resolved["ts"], src["ts"].cast(dt.string)))
    reason, column, value = _first_broken(rules)
    table = raw.mutate(
        **{f"_c_{name}": expr for name, expr in out.items()},
        _reason=reason,
        _column=column,
        _value=value,
        _has_offset=has_offset.cast(dt.boolean),
    )
    raw_cols = [c for c in raw.columns if c != _COPIES]
    bad = table._reason.notnull()
    return table.select(
        **{name: table[f"_c_{name}"] for name in CANONICAL_COLUMNS},
        _reason=table._reason,
        _column=table._column,
        _value=table._value,
        _has_offset=table._has_offset,
        _copies=table[_COPIES],
        **{c: table[c] for c in keep},
        **{
            f"{_RAW}{c}": ibis.ifelse(bad | (table[_COPIES] > 1), table[c].cast(dt.string), null_s)
            for c in raw_cols
        },
    )


def _distinct_rows(raw: ir.Table) -> ir.Table:
    """One row per distinct input row, with ``_copies`` = how many times it occurs (exact duplicates).

    Grouping ten million rows by every column builds a hash table of the whole log, so rows are
    first grouped by a 64-bit hash of all their columns; only rows whose hash occurs more than once
    (duplicates, and the rare collision) are grouped exactly. The result is exact either way.
    """
    import ibis
    import ibis.expr.datatypes as dt

    cols = list(raw.columns)
    h = raw[cols[0]].hash()
    for c in cols[1:]:
        h = h ^ raw[c].hash()
    keyed = raw.mutate(_h=h)
    counts = keyed.group_by("_h").aggregate(_n=keyed.count())
    repeated = counts.filter(counts._n > 1).select("_h")
    singles = (
        keyed.anti_join(repeated, "_h").select(*cols).mutate(**{_COPIES: ibis.literal(1, type=dt.int64)})
    )
    suspects = keyed.semi_join(repeated, "_h").select(*cols)
    grouped = suspects.group_by(cols).aggregate(**{_COPIES: suspects.count().cast(dt.int64)})
    return singles.union(grouped)


def _number_text(src: Mapping[str, Any], resolved: Mapping[str, str]) -> Any:
    import ibis
    import ibis.expr.datatypes as dt

    parts = [src[k].cast(dt.string) for k in ("amount", "price", "quantity") if k in src]
    if len(parts) == 1:
        return parts[0]
    joined = parts[0].fill_null("")
    for p in parts[1:]:
        joined = joined.concat(ibis.literal(" | "), p.fill_null(""))
    return joined


def _quarantine_rows(flagged: ir.Table) -> ir.Table:
    """One line per distinct bad input row (``rows`` = its copies) and per duplicated valid row
    (``rows`` = the extra copies), so the ``rows`` column adds up to ``rows_quarantined``."""
    import ibis
    import ibis.expr.datatypes as dt

    bad = flagged._reason.notnull()
    picked = flagged.filter(bad | (flagged._copies > 1))
    bad = picked._reason.notnull()
    extra = picked._copies - 1
    raw_cols = [c for c in picked.columns if c.startswith(_RAW)]
    return picked.select(
        reason=ibis.ifelse(bad, picked._reason, DUPLICATE),
        column=ibis.ifelse(bad, picked._column, ibis.null(dt.string)),
        value=ibis.ifelse(bad, picked._value, extra.cast(dt.string).concat(" extra copies")),
        rows=ibis.ifelse(bad, picked._copies, extra).cast(dt.int64),
        **{c.removeprefix(_RAW): picked[c] for c in raw_cols},
    )


def _sessions(events: ir.Table, gap_minutes: float) -> ir.Table:
    """Session ids from a gap of inactivity, computed on distinct (customer, ts) so ties agree."""
    import ibis
    import ibis.expr.datatypes as dt

    moments = events.select("customer_id", "ts").distinct()
    epoch = moments.ts.epoch_seconds().floor().cast(dt.int64)
    moments = moments.mutate(_epoch=epoch)
    window = ibis.window(group_by=moments.customer_id, order_by=moments.ts)
    prev = moments._epoch.lag().over(window)
    starts = (prev.isnull() | ((moments._epoch - prev) > int(gap_minutes * 60))).cast(dt.int64)
    moments = moments.mutate(_start=starts)
    number = moments._start.cumsum(group_by=moments.customer_id, order_by=moments.ts)
    moments = moments.mutate(_session=moments.customer_id.concat("#", number.cast(dt.string))).select(
        "customer_id", "ts", "_session"
    )
    joined = events.join(moments, ["customer_id", "ts"], how="inner")
    return joined.mutate(session_id=joined._session).select(*CANONICAL_COLUMNS)


# ------------------------------------------------------------------------------ entry points


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _open(source: EventSource, engine: Engine) -> tuple[ir.Table, str]:
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise DataError("The event DataFrame has no rows.")
        return engine.from_frame(source), "DataFrame"
    path = Path(source)
    table = engine.read(path)
    return table, str(path)


def load_events(
    source: EventSource,
    mapping: MappingLike = None,
    *,
    engine: str | Engine = "duckdb",
    export_time: datetime | str | None = None,
    quarantine: str | Path | None = None,
    clean_out: str | Path | None = None,
    require_rows: bool = True,
    in_memory: bool = False,
) -> EventLog:
    """Validate an event or order log and return its canonical events.

    Parameters
    ----------
    source
        CSV (compressed ok) or Parquet path, or a DataFrame.
    mapping
        An :class:`~propensity.events.mapping.EventMapping`, a YAML path, a dict, or ``None``
        (canonical names and synonyms).
    engine
        ``"duckdb"`` (default), ``"spark"``, or an :class:`~propensity.engines.Engine`.
    export_time
        When the log was exported: later timestamps are clock skew (default: now, UTC).
        When given, it is also where the data is taken to end.
    quarantine
        CSV path for the quarantined rows (not written when ``None``).
    clean_out
        Parquet (or CSV) path for the valid canonical events (not written when ``None``).
    require_rows
        Raise when no valid row remains (default); ``False`` returns the report anyway.
    in_memory
        Keep the flagged and the canonical events in the engine's memory instead of Parquet
        files in its work folder (small logs scored many times a second: the stream scorer).

    Returns
    -------
    EventLog

    Raises
    ------
    SchemaError
        The mapping names a missing column, or no customer/timestamp/event column is found.
    InsufficientDataError
        Every row was quarantined (the message gives the reasons and where they are written).
    """
    started = time.perf_counter()
    eng = get_engine(engine) if isinstance(engine, str) else engine
    owns = isinstance(engine, str)
    try:
        mp = as_mapping(mapping)
        raw, name = _open(source, eng)
        resolved = mp.resolve(list(raw.columns))
        export = _export_instant(export_time)
        flagged = eng.materialize(
            _flag(_distinct_rows(raw), mp, resolved, eng, export), "flagged", memory=in_memory
        )
        tally = _tally(eng, flagged)
        qpath = None
        if quarantine is not None and tally.rows_in - tally.rows_ok > 0:
            eng.write(_quarantine_rows(flagged), quarantine)
            qpath = str(quarantine)
        clean = flagged.filter(flagged._reason.isnull()).select(*CANONICAL_COLUMNS)
        derived = "session_id" not in resolved
        if derived and tally.rows_ok:
            clean = _sessions(clean, mp.session_gap_minutes)
        events = eng.materialize(clean, "events", memory=in_memory)
        report = _report(eng, events, tally, name, mp, resolved, export, explicit_end=export_time is not None)
        report.quarantine_path = qpath
        report.encoding = _encoding_of(source)
        _notes(report)
        if clean_out is not None and tally.rows_ok:
            eng.write(events, clean_out)
        report.seconds = round(time.perf_counter() - started, 3)
        if tally.rows_ok == 0 and require_rows:
            listed = ", ".join(f"{k}: {v:,}" for k, v in tally.reasons.items())
            where = f" They are written to '{qpath}'." if qpath else ""
            raise InsufficientDataError(
                f"Every one of the {tally.rows_in:,} rows of '{name}' was quarantined ({listed}).{where} "
                "Check the mapping: column names, event names and the timestamp format."
            )
        return EventLog(eng, events, report, mp, owns_engine=owns)
    except BaseException as exc:
        if owns:
            eng.close()
        if not isinstance(source, pd.DataFrame) and _is_reader_error(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"Cannot read the event log '{source}': {first}. Expected a CSV (one header line, one "
                "delimiter) or Parquet log; check the file and the mapping, or export it again."
            ) from exc
        raise


def canonical_events(
    raw: ir.Table,
    mapping: MappingLike = None,
    *,
    engine: Engine,
    export_time: datetime | str | None = None,
) -> ir.Table:
    """The valid canonical events of ``raw`` as one lazy expression, by the rules of :func:`load_events`.

    What :func:`load_events` computes in steps (flag every row, keep the valid ones, derive
    sessions when the log has none), without its counts, report or intermediate tables: for a
    caller that runs the same query many times over small inputs of one shape (the stream
    scorer compiles it once and runs it per micro-batch).

    Raises
    ------
    SchemaError
        The mapping names a missing column, or no customer/timestamp/event column is found.
    """
    mp = as_mapping(mapping)
    resolved = mp.resolve(list(raw.columns))
    flagged = _flag(_distinct_rows(raw), mp, resolved, engine, _export_instant(export_time))
    clean = flagged.filter(flagged._reason.isnull()).select(*CANONICAL_COLUMNS)
    if "session_id" not in resolved:
        clean = _sessions(clean, mp.session_gap_minutes)
    return clean


def flag_rows(
    frame: pd.DataFrame,
    mapping: MappingLike = None,
    *,
    engine: Engine,
    export_time: datetime | str | None = None,
) -> pd.DataFrame:
    """Each row of ``frame`` checked by the rules of :func:`load_events`, one verdict per row.

    For sources that see events one batch at a time (the stream scorer): rules 1–8 are applied
    exactly as for a log; rule 9 (exact duplicates) is left to the caller, which keys events by
    their content.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``frame``: ``customer_id`` and ``ts`` (canonical, naive UTC), and
        ``reason``, ``column``, ``value`` — the first rule broken, all null for a valid row.

    Raises
    ------
    SchemaError
        The mapping names a missing column, or no customer/timestamp/event column is found.
    """
    raw = engine.from_frame(frame.reset_index(drop=True).assign(**{ROW: range(len(frame))}))
    out = engine.execute(row_verdicts(raw, mapping, engine=engine, export_time=export_time))
    out.index = frame.index
    return out.drop(columns=ROW)


#: The row-number column :func:`row_verdicts` expects in its input.
ROW = "_row__"


def row_verdicts(
    raw: ir.Table,
    mapping: MappingLike = None,
    *,
    engine: Engine,
    export_time: datetime | str | None = None,
) -> ir.Table:
    """The lazy query of :func:`flag_rows`: ``raw`` carries its row numbers in :data:`ROW`; the
    verdicts (``ROW``, ``customer_id``, ``ts``, ``reason``, ``column``, ``value``) come in that order."""
    import ibis
    import ibis.expr.datatypes as dt

    mp = as_mapping(mapping)
    resolved = mp.resolve([c for c in raw.columns if c != ROW])
    raw = raw.mutate(**{_COPIES: ibis.literal(1, type=dt.int64)})
    flagged = _flag(raw, mp, resolved, engine, _export_instant(export_time), keep=(ROW,))
    return flagged.select(
        ROW, "customer_id", "ts", reason="_reason", column="_column", value="_value"
    ).order_by(ROW)


def _is_reader_error(exc: BaseException) -> bool:
    """An error of the engine's own reader or executor (never one of ours, never a programming error)."""
    import duckdb
    import pyarrow as pa

    return isinstance(exc, (duckdb.Error, pa.ArrowException)) and not isinstance(exc, PropensityError)


def _encoding_of(source: EventSource) -> str | None:
    if isinstance(source, pd.DataFrame) or Path(source).is_dir() or table_format(source) == "parquet":
        return None  # not text (a folder is a Parquet dataset)
    return encoding_label(source)


def _export_instant(export_time: datetime | str | None) -> datetime:
    """When the log was exported, as naive UTC (default: now)."""
    export = pd.Timestamp(export_time).to_pydatetime() if export_time is not None else _now()
    if getattr(export, "tzinfo", None) is not None:
        export = pd.Timestamp(export).tz_convert("UTC").tz_localize(None).to_pydatetime()
    return export


@dataclass
class _Tally:
    """Row counts of a flagged log: in, valid, per reason, and valid rows that carried an offset."""

    rows_in: int
    rows_ok: int
    reasons: dict[str, int]
    with_offset: int
    unknown_event_names: dict[str, int]


def _tally(eng: Engine, flagged: ir.Table) -> _Tally:
    import ibis
    import ibis.expr.datatypes as dt

    summary = eng.execute(
        flagged.group_by(reason=flagged._reason).aggregate(
            rows=flagged._copies.sum(),
            distinct=flagged.count(),
            offset=flagged._has_offset.cast(dt.int64).sum(),
        )
    )
    summary["rows"] = summary["rows"].astype("int64")
    valid = summary["reason"].isna()
    reasons = {
        str(r): int(n) for r, n in zip(summary["reason"][~valid], summary["rows"][~valid], strict=True)
    }
    rows_ok = int(summary["distinct"][valid].sum())
    duplicates = int(summary["rows"][valid].sum()) - rows_ok
    if duplicates:
        reasons[DUPLICATE] = duplicates
    unknown: dict[str, int] = {}
    if reasons.get(UNKNOWN_EVENT):  # the names to map, most frequent first
        unk = flagged.filter(flagged._reason == UNKNOWN_EVENT)
        top = eng.execute(
            unk.group_by(name=unk._value)
            .aggregate(n=unk._copies.sum())
            .order_by([ibis.desc("n"), "name"])
            .limit(20)
        )
        unknown = {str(k): int(v) for k, v in zip(top["name"], top["n"], strict=True)}
    return _Tally(
        rows_in=int(summary["rows"].sum()),
        rows_ok=rows_ok,
        reasons={r: reasons[r] for r in REASONS if r in reasons},
        with_offset=int(summary["offset"][valid].fillna(0).sum()),
        unknown_event_names=unknown,
    )


def _report(
    eng: Engine,
    events: ir.Table,
    tally: _Tally,
    name: str,
    mp: EventMapping,
    resolved: Mapping[str, str],
    export: datetime,
    *,
    explicit_end: bool,
) -> ValidationReport:
    """The validation report: counts, customers, first/last event, where the data ends, event types."""
    rows_ok = tally.rows_ok
    stats = eng.execute(
        events.aggregate(customers=events.customer_id.nunique(), first=events.ts.min(), last=events.ts.max())
    ).iloc[0]
    types = eng.execute(events.group_by("event_type").aggregate(n=events.count()).order_by("event_type"))
    first = pd.Timestamp(stats["first"]) if rows_ok else None
    last = pd.Timestamp(stats["last"]) if rows_ok else None
    # An explicit export time is where the data ends; else midnight after the last event.
    data_end = (
        pd.Timestamp(export) if explicit_end else (last.normalize() + pd.Timedelta(days=1) if last else None)
    )
    derived = "session_id" not in resolved
    return ValidationReport(
        source=name,
        engine=eng.name,
        rows_in=tally.rows_in,
        rows_ok=rows_ok,
        rows_quarantined=tally.rows_in - rows_ok,
        reasons=tally.reasons,
        customers=int(stats["customers"]) if rows_ok else 0,
        first_event=str(first) if first is not None else None,
        last_event=str(last) if last is not None else None,
        data_end=str(data_end) if data_end is not None else None,
        event_types={str(t): int(n) for t, n in zip(types["event_type"], types["n"], strict=True)},
        unknown_event_names=tally.unknown_event_names,
        timestamps_with_offset=tally.with_offset,
        timestamps_read_in_zone=rows_ok - tally.with_offset,
        timezone=mp.timezone,
        sessions=f"derived ({mp.session_gap_minutes:g}-minute inactivity gap)" if derived else "given",
        columns=dict(resolved),
        order_log=mp.order_log,
        export_time=str(pd.Timestamp(export)),
    )


def _notes(report: ValidationReport) -> None:
    notes = report.notes
    if report.rows_ok and not report.has_purchases:
        notes.append(
            "No purchase events: there is nothing to predict. Map your purchase event "
            "(events: {purchase: [YOUR_NAME]}) or declare an order log (order_log: true)."
        )
    if report.unknown_event_names:
        names = ", ".join(f"{k} ({v:,})" for k, v in list(report.unknown_event_names.items())[:8])
        notes.append(
            f"Unknown event types were quarantined: {names}. Map them onto {', '.join(CANONICAL_EVENTS)} "
            "in the mapping's events: section, or keep them with other_events."
        )
    if report.timestamps_with_offset and report.timestamps_read_in_zone:
        notes.append(
            f"Mixed time zones: {report.timestamps_with_offset:,} timestamps carried an explicit offset and were "
            f"converted to UTC; {report.timestamps_read_in_zone:,} had none and were read as {report.timezone} "
            "(set timezone: in the mapping if that is wrong)."
        )
    if report.reasons.get(FUTURE):
        notes.append(
            f"{report.reasons[FUTURE]:,} timestamps are later than the export time {report.export_time} "
            "(clock skew); pass --export-time if the log was exported earlier or later than now."
        )


def validate_events(
    source: EventSource,
    mapping: MappingLike = None,
    *,
    out: str | Path | None = None,
    engine: str | Engine = "duckdb",
    export_time: datetime | str | None = None,
) -> ValidationReport:
    """Validate a log; with ``out`` (a folder) write ``events.parquet`` (the valid canonical
    events), ``quarantine.csv`` and ``validation.json`` there.

    Unlike :func:`load_events` this does not raise when every row is quarantined: the
    report says so (and the CLI exits with code 2 after printing it).
    """

    folder = Path(out) if out is not None else None
    if folder is not None:
        inputs = [source] if not isinstance(source, pd.DataFrame) else []
        check_output(folder, inputs=inputs, what="output folder", folder=True)
        folder.mkdir(parents=True, exist_ok=True)
    with load_events(
        source,
        mapping,
        engine=engine,
        export_time=export_time,
        quarantine=folder / "quarantine.csv" if folder else None,
        clean_out=folder / "events.parquet" if folder else None,
        require_rows=False,
    ) as log_:
        report = log_.report
    if folder is not None:
        write_json(folder / "validation.json", report.to_dict())
    return report
