"""Live scores: events in micro-batches → the store → the affected customers re-scored.

:class:`LiveScorer` is what the stream scorer calls for each batch a broker delivers. It
validates the events by the batch rules (:func:`propensity.events.validate.flag_rows`), stores
the good ones in the :class:`~propensity.workflows.store.EventStore` (idempotently), and
re-scores every customer the batch touched **with the batch path itself**: their stored
history goes through :func:`~propensity.workflows.events.event_features_at` and
:func:`~propensity.workflows.scoring.score_rows`, as ``propensity score MODEL EVENTS --as-of T``
would. The validation and feature queries are compiled once per set of event fields and run per
batch with the batch's as-of (see :class:`_CompiledQuery`). The as-of of a batch is the second after the store's latest event (event time: a replayed
log scores as it would have live; cutoffs are whole seconds and the batch rule is "events before
the cutoff", so the latest event counts).

Only when :meth:`LiveScorer.process` has returned are the scores durable; the broker acknowledges
the batch after that, so a crash re-delivers it, and re-delivery is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from propensity.errors import BundleError, ParameterError
from propensity.events.validate import ROW, EventSource, canonical_events, flag_rows, row_verdicts
from propensity.features.base import epoch_seconds
from propensity.loading import ModelRef, resolve_model
from propensity.workflows.events import (
    EventModelSpec,
    EventRows,
    event_features_at,
    model_event_spec,
    scored_features,
    source_name,
)
from propensity.workflows.scoring import RowSource, check_reasons, score_rows
from propensity.workflows.store import EventStore, event_record

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import pyarrow as pa

    from propensity.engines import Engine
    from propensity.pipeline import TrainedModel
    from propensity.sources import TableWriter

__all__ = ["BatchResult", "CustomerLookup", "DeadEvent", "LiveScorer", "score_log"]

log = logging.getLogger(__name__)

#: Cutoffs are whole seconds (:func:`propensity.features.to_timestamp`).
TICK = pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class DeadEvent:
    """An event refused by validation: its position in the batch and the rule it broke."""

    index: int
    reason: str
    column: str | None
    value: str | None


@dataclass
class BatchResult:
    """What one :meth:`LiveScorer.process` call did."""

    events: int = 0
    new: int = 0
    duplicates: int = 0
    dead: list[DeadEvent] = field(default_factory=list)
    as_of: pd.Timestamp | None = None
    #: One row per re-scored customer: ``customer_id``, ``probability``, ``decision``, ``band``,
    #: ``eligible``, ``as_of``, ``model_version``, ``scored_at``, ``reason_1`` …
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0


class _Frames:
    """A :class:`~propensity.sources.TableWriter` stand-in that keeps the scores in memory."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        self.frames.append(frame)
        self.rows += len(frame)


@dataclass
class _KeepFeatures(RowSource):
    """The batch row source, keeping each chunk of features (the store returns them per customer)."""

    inner: EventRows
    kept: list[pd.DataFrame] = field(default_factory=list)

    def chunks(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for chunk in self.inner.chunks(batch_rows):
            self.kept.append(chunk)
            yield chunk

    def annotate(self, chunk: pd.DataFrame, scores: pd.DataFrame, good: np.ndarray) -> pd.DataFrame:
        return self.inner.annotate(chunk, scores, good)


class _PrecomputedRows(EventRows):
    """Features already computed (by :class:`_FeatureQuery`), as the batch row source."""

    def __init__(self, frame: pd.DataFrame, as_of: pd.Timestamp, engine: Engine) -> None:
        super().__init__(engine, cast("Any", None), as_of)
        self.frame = frame

    def chunks(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.frame), batch_rows):
            yield self.frame.iloc[start : start + batch_rows].reset_index(drop=True)


class _CompiledQuery:
    """A query of the batch path over one shape of input, compiled to SQL once, run per micro-batch.

    Building and compiling the Ibis expressions (validation rules, sessions, every feature group)
    costs ~0.6 s per batch, more than running them on a micro-batch. ``build(table, instant)`` is
    the batch code's own expression over a table named ``TABLE`` with the columns ``columns``; the
    instant (the as-of, and the export time) enters the SQL only as literals, so the query is
    compiled at a placeholder instant and the literals are replaced per batch. The substitution is
    proved at construction: compiled at two placeholders, the text of one with the other's
    literals substituted must equal the other exactly; otherwise ``usable`` is false and the
    caller goes through the batch functions (compiling per batch).
    """

    TABLE = "live_input"
    _A = pd.Timestamp("2091-03-17 05:43:21")
    _B = pd.Timestamp("2093-11-02 19:28:47")

    def __init__(
        self,
        engine: Engine,
        columns: Mapping[str, str],
        build: Callable[[ir.Table, pd.Timestamp], ir.Table],
    ) -> None:
        import ibis

        self.engine = engine
        self.columns = dict(columns)
        self.input_schema = _arrow_schema(self.columns)
        table = ibis.table(self.columns, name=self.TABLE)
        expr_a = build(table, self._A)
        engine.con._run_pre_execute_hooks(expr_a)  # registers the expression's in-memory tables, once
        self.schema = expr_a.schema().to_pyarrow()
        self.sql = self._compile(expr_a)
        self.usable = self._substitute(self.sql, self._A, self._B) == self._compile(build(table, self._B))

    def _compile(self, expr: ir.Table) -> str:
        return str(self.engine.con.compile(expr))

    @staticmethod
    def _literals(t: pd.Timestamp) -> list[str]:
        # the forms the SQL compiler writes an instant in: ISO text, MAKE_TIMESTAMP's arguments, epoch seconds
        return [
            t.strftime("%Y-%m-%dT%H:%M:%S"),
            t.strftime("%Y-%m-%d %H:%M:%S"),
            f"({t.year}, {t.month}, {t.day}, {t.hour}, {t.minute}, {float(t.second)})",
            str(epoch_seconds(t)),
        ]

    @classmethod
    def _substitute(cls, sql: str, old: pd.Timestamp, new: pd.Timestamp) -> str:
        for a, b in zip(cls._literals(old), cls._literals(new), strict=True):
            sql = sql.replace(a, b)
        return sql

    def run(self, frame: pd.DataFrame, instant: pd.Timestamp) -> pd.DataFrame:
        """The query's answer over ``frame`` (its columns as :attr:`columns`) at ``instant`` (whole seconds)."""
        import pyarrow as pa

        types = self.input_schema
        table = pa.table(
            {f.name: pa.Array.from_pandas(frame[f.name], type=f.type) for f in types}, schema=types
        )
        return self.run_arrow(table, instant).to_pandas()

    def run_arrow(self, table: pa.Table, instant: pd.Timestamp) -> pa.Table:
        """:meth:`run` over an Arrow table already of :attr:`input_schema` (no pandas on the way in or out)."""
        con = self.engine.con.con
        con.register(self.TABLE, table)
        try:
            out = con.sql(self._substitute(self.sql, self._A, instant)).to_arrow_table()
        finally:
            con.unregister(self.TABLE)
        return out if out.schema == self.schema else out.cast(self.schema)


def _arrow_schema(columns: Mapping[str, str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(name, ibis_type_to_arrow(t)) for name, t in columns.items()])


def ibis_type_to_arrow(name: str) -> Any:
    import ibis.expr.datatypes as dt

    return dt.dtype(name).to_pyarrow()


def _feature_query(engine: Engine, spec: EventModelSpec, fields: Sequence[str]) -> _CompiledQuery:
    """Raw events (text fields) → the model's features at the as-of, which is also the export time
    (as :func:`score_log` scores a history): what :func:`~propensity.workflows.events.event_features_at`
    builds (:func:`canonical_events` then :func:`scored_features`)."""

    def build(raw: ir.Table, as_of: pd.Timestamp) -> ir.Table:
        events = canonical_events(raw, spec.mapping, engine=engine, export_time=as_of)
        return scored_features(events, spec, as_of).order_by("customer_id")

    return _CompiledQuery(engine, dict.fromkeys(fields, "string"), build)


def _verdict_query(engine: Engine, spec: EventModelSpec, fields: Sequence[str]) -> _CompiledQuery:
    """Raw events (text fields and their row number) → :func:`flag_rows`'s verdicts at an export time."""

    def build(raw: ir.Table, export: pd.Timestamp) -> ir.Table:
        return row_verdicts(raw, spec.mapping, engine=engine, export_time=export)

    return _CompiledQuery(engine, {**dict.fromkeys(fields, "string"), ROW: "int64"}, build)


class LiveScorer:
    """Keeps the store's scores current from batches of raw events.

    Parameters
    ----------
    model
        An event-trained model (bundle folder, registry reference or loaded model).
    store
        The :class:`EventStore` written to.
    reasons
        Reasons kept per customer (0–10).
    engine
        Engine of the feature computation (``"duckdb"``: one engine kept for the compiled queries;
        another engine compiles per batch, a fresh one each time).

    Raises
    ------
    BundleError
        The model was not trained on an event log, or uses lifetime-value features (fitted on the
        whole population at each as-of, so a customer's score is not a function of their own
        events alone).
    """

    def __init__(
        self,
        model: ModelRef,
        store: EventStore,
        *,
        reasons: int = 3,
        engine: str = "duckdb",
        tracking_uri: str | None = None,
    ) -> None:
        check_reasons(reasons, "LiveScorer")
        self.model: TrainedModel = resolve_model(model, tracking_uri=tracking_uri)
        self.spec: EventModelSpec = model_event_spec(self.model)
        if self.spec.block.clv_features:
            raise BundleError(
                "This model uses lifetime-value features, fitted on every customer at each as-of: it cannot "
                "be scored one customer at a time from a stream. Train it without --clv-features to stream it."
            )
        self.store = store
        self.reasons = reasons
        self.engine = engine
        self._validator: Engine | None = None
        self._queries: dict[tuple[str, tuple[str, ...]], _CompiledQuery] = {}
        if store.fields():  # a store written before: its events' fields are likely the next ones
            self.prepare(store.fields())

    def close(self) -> None:
        if self._validator is not None:
            self._validator.close()
            self._validator = None

    def _validation_engine(self) -> Engine:
        from propensity.engines import get_engine

        if self._validator is None:
            self._validator = get_engine(self.engine)
        return self._validator

    def process(self, events: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Validate, store and score one batch; the scores are durable when this returns.

        Parameters
        ----------
        events
            Raw events, each a mapping of field name to text (as a broker carries them).

        Returns
        -------
        BatchResult
            The refused events (with their rule), the counts and the new scores.
        """
        started = time.perf_counter()
        result = BatchResult(events=len(events))
        if not events:
            return result
        # an empty field is a missing value (as an empty CSV cell); the field still exists
        raw = [{k: str(v) for k, v in e.items() if v is not None and v != ""} for e in events]
        names = sorted({k for e in events for k in e})
        result.dead, good, ids, stamps = self._verdict_rows(raw, names)
        rows = []
        for i, cid, ts in zip(good, ids, stamps, strict=True):
            key, payload = event_record(raw[i])
            rows.append((key, cid, ts, payload))
        result.new = self.store.add_events(rows, names, fields_complete=True)
        result.duplicates = len(rows) - result.new
        customers = sorted(set(ids))
        if customers:
            watermark = self.store.watermark()
            assert watermark is not None
            result.as_of = watermark.floor("s") + TICK
            result.scores = self.rescore(customers, result.as_of)
        result.seconds = time.perf_counter() - started
        return result

    def prepare(self, fields: Sequence[str]) -> None:
        """Compile the validation and feature queries for events carrying ``fields`` now, rather
        than on the first batch that carries them (~1 s; the service calls it before it reads)."""
        names = tuple(sorted(set(fields)))
        self._query("verdicts", names)
        self._query("features", tuple(sorted(set(self.store.fields()) | set(names))))

    def _verdict_rows(
        self, raw: Sequence[Mapping[str, str]], names: list[str]
    ) -> tuple[list[DeadEvent], list[int], list[str], list[str]]:
        """:func:`flag_rows`'s verdicts on ``raw``: the refused events, and the positions, customer
        ids and canonical times (text that sorts as time) of the valid ones."""
        query = self._query("verdicts", tuple(names))
        if query is None:
            frame = pd.DataFrame.from_records(list(raw), columns=names).astype("string")
            return self._verdicts_by_batch_functions(frame)
        import pyarrow as pa

        columns = [pa.array([r.get(n) for r in raw], type=pa.string()) for n in names]
        table = pa.Table.from_arrays(
            [*columns, pa.array(np.arange(len(raw), dtype="int64"))], schema=query.input_schema
        )
        # the export time is now, rounded up to the second (the compiled query takes whole seconds)
        now = pd.Timestamp.now(tz="UTC").tz_localize(None).ceil("s")
        verdicts = query.run_arrow(table, now)
        reasons = verdicts.column("reason").to_pylist()
        good = [i for i, r in enumerate(reasons) if r is None]
        dead = []
        if len(good) < len(reasons):
            cols, values = verdicts.column("column").to_pylist(), verdicts.column("value").to_pylist()
            dead = [
                DeadEvent(i, str(r), _text_or_none(cols[i]), _text_or_none(values[i]))
                for i, r in enumerate(reasons)
                if r is not None
            ]
        kept = verdicts.take(pa.array(good, type=pa.int64()))
        ids = [str(c) for c in kept.column("customer_id").to_pylist()]
        return dead, good, ids, _stamps(kept.column("ts"))

    def _verdicts_by_batch_functions(
        self, frame: pd.DataFrame
    ) -> tuple[list[DeadEvent], list[int], list[str], list[str]]:
        verdicts = flag_rows(frame, self.spec.mapping, engine=self._validation_engine())
        bad = verdicts["reason"].notna().to_numpy()
        dead = [
            DeadEvent(int(i), str(v["reason"]), _text_or_none(v["column"]), _text_or_none(v["value"]))
            for i, v in ((i, verdicts.iloc[i]) for i in np.flatnonzero(bad))
        ]
        good = np.flatnonzero(~bad).tolist()
        ids = verdicts["customer_id"].astype(str).tolist()
        stamps = verdicts["ts"].tolist()  # refused rows may hold instants pandas cannot (year 2999)
        return dead, good, [ids[i] for i in good], [_stamp(stamps[i]) for i in good]

    def _query(self, kind: str, fields: tuple[str, ...]) -> _CompiledQuery | None:
        """The compiled ``kind`` query (features, verdicts) of inputs with ``fields`` (DuckDB only;
        ``None``: go through the batch functions, compiling per batch)."""
        if self.engine != "duckdb":
            return None
        if (kind, fields) not in self._queries:
            make = _feature_query if kind == "features" else _verdict_query
            self._queries[kind, fields] = make(self._validation_engine(), self.spec, fields)
        query = self._queries[kind, fields]
        return query if query.usable else None

    def rescore(self, customers: Sequence[str], as_of: pd.Timestamp) -> pd.DataFrame:
        """Score ``customers`` at ``as_of`` from their stored history, by the batch path, and store it."""
        fields = self.store.fields()
        query = self._query("features", tuple(fields))
        if query is None:
            history = self.store.history(customers)
            if history.empty:
                return pd.DataFrame()
            scores, feats = score_log(
                self.model, history, as_of, reasons=self.reasons, engine=self.engine, in_memory=True
            )
        else:
            table = self.store.history_table(customers, fields)
            if table.num_rows == 0:
                return pd.DataFrame()
            rows = _PrecomputedRows(query.run_arrow(table, as_of).to_pandas(), as_of, query.engine)
            scores, feats = _scored(self.model, rows, self.reasons)
        if scores.empty:
            return scores
        reason_cols = [c for c in scores.columns if c.startswith("reason_")]
        self.store.put_scores(scores, feats, reason_cols)
        return scores


def score_log(
    model: TrainedModel,
    log: EventSource,
    as_of: Any = None,
    *,
    reasons: int = 3,
    engine: str = "duckdb",
    export_time: Any = None,
    in_memory: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every customer of ``log`` scored at ``as_of`` as :func:`~propensity.workflows.events.score_events`
    scores them, in memory, with their features.

    ``export_time`` defaults to ``as_of`` (a part of a log — one customer's history — ends at the
    as-of, not at midnight after its last event). ``in_memory``: keep the validated events in the
    engine's memory rather than in Parquet files (small logs: one micro-batch's customers).

    Returns
    -------
    (scores, features)
        ``scores``: ``customer_id`` (text), ``probability``, ``decision``, ``band``, ``eligible``,
        ``as_of``, ``model_version``, ``scored_at``, ``reason_1`` …; ``features``: the model's
        features, row for row.
    """
    spec = model_event_spec(model)
    export = export_time if export_time is not None else as_of
    with event_features_at(log, spec, as_of, engine=engine, export_time=export, in_memory=in_memory) as (
        _,
        rows,
    ):
        return _scored(model, rows, reasons)


def _scored(model: TrainedModel, rows: EventRows, reasons: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` scored by :func:`score_rows`, in memory, with their features (see :func:`score_log`)."""
    source = _KeepFeatures(rows)
    sink = _Frames()
    score_rows(model, source, cast("TableWriter", sink), reasons=reasons)
    if not sink.frames:
        return pd.DataFrame(), pd.DataFrame()
    scores = pd.concat(sink.frames, ignore_index=True)
    for col in ("band", "model_version", "scored_at"):
        scores[col] = scores[col].astype(str)
    scores["customer_id"] = scores["customer_id"].astype(str)
    feats = pd.concat(source.kept, ignore_index=True)
    feats["customer_id"] = feats["customer_id"].astype(str)
    feats = feats.set_index("customer_id").loc[scores["customer_id"], model.features].reset_index(drop=True)
    return scores, feats


class CustomerLookup:
    """Customers' current score, features and reasons: from the live store, or from a log at an as-of.

    Parameters
    ----------
    store
        The live store kept current by ``propensity stream`` (opened read-only).
    model, events, as_of
        Without a store: score every customer of the log ``events`` at ``as_of`` (default: the
        end of its data) once, with ``model``, and answer from that.
    clv
        With a log: a lifetime-value bundle (``propensity clv``; folder or ``models:/`` URI)
        whose P(alive), expected purchases, expected spend and CLV at the same as-of join each
        record as ``lifetime_value`` (``None`` for a customer without a purchase).

    Raises
    ------
    ParameterError
        Neither a store nor a model and a log, or ``clv`` without a log.
    """

    def __init__(
        self,
        *,
        store: str | Path | None = None,
        model: TrainedModel | None = None,
        events: EventSource | None = None,
        as_of: Any = None,
        reasons: int = 3,
        clv: str | Path | None = None,
    ) -> None:
        self._store: EventStore | None = None
        self._frame: pd.DataFrame | None = None
        self._clv: pd.DataFrame | None = None
        if clv is not None and (store is not None or events is None):
            raise ParameterError(
                "Lifetime values need an event log scored at an as-of (--events), not a live store: "
                "the store keeps propensity scores current, not CLV."
            )
        if store is not None:
            self._store = EventStore(store, readonly=True)
            self.source = f"live store {store}"
        elif model is not None and events is not None:
            scores, feats = score_log(model, events, as_of, reasons=reasons, export_time=None)
            reason_cols = [c for c in scores.columns if c.startswith("reason_")]
            frame = scores[["customer_id", *SCORE_FIELDS]].copy()
            frame["as_of"] = frame["as_of"].map(lambda t: pd.Timestamp(t).isoformat())
            frame["reasons"] = [
                [r for r in rs if isinstance(r, str)] for rs in scores[reason_cols].values.tolist()
            ]
            frame["features"] = pd.Series(
                feats.astype(object).where(feats.notna(), None).to_dict("records"), index=frame.index
            )
            self._frame = frame.set_index("customer_id", drop=False)
            shown = str(frame["as_of"].iat[0]) if len(frame) else str(as_of)
            self.source = f"event log {source_name(events)} at {shown}"
            if clv is not None:
                from propensity.workflows.clv import lifetime_values

                self._clv = lifetime_values(clv, events, as_of=shown if len(frame) else as_of).set_index(
                    "customer_id"
                )
        else:
            raise ParameterError("A customer lookup needs a live store, or a model and an event log.")

    def get(self, customer_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The records of the known ``customer_ids`` (in their order; unknown ones are left out)."""
        if self._store is not None:
            frame = self._store.scores(customer_ids).set_index("customer_id", drop=False)
        else:
            assert self._frame is not None
            frame = self._frame
        known = [c for c in dict.fromkeys(customer_ids) if c in frame.index]
        picked = frame.loc[known]
        records = [
            {
                "customer_id": str(r["customer_id"]),
                "probability": float(r["probability"]),
                "decision": bool(r["decision"]),
                "band": str(r["band"]),
                "eligible": bool(r["eligible"]),
                "as_of": str(r["as_of"]),
                "model_version": str(r["model_version"]),
                "scored_at": str(r["scored_at"]),
                "reasons": list(r["reasons"]),
                "features": {k: _plain(v) for k, v in dict(r["features"]).items()},
            }
            for r in picked.to_dict("records")
        ]
        if self._clv is not None:
            values = self._clv
            for record in records:
                cid = str(record["customer_id"])
                record["lifetime_value"] = (
                    {k: _plain(v) for k, v in values.loc[cid].items()} if cid in values.index else None
                )
        return records

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


#: The score fields of a lookup record (besides the id, reasons and features).
SCORE_FIELDS = ("probability", "decision", "band", "eligible", "as_of", "model_version", "scored_at")


def _plain(value: Any) -> Any:
    """A feature value as JSON has it (``None`` for missing)."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def _stamps(ts: pa.ChunkedArray) -> list[str]:
    """:func:`_stamp` of every instant of ``ts`` (valid events' times), vectorised."""
    import pyarrow as pa

    if ts.type.tz is None:  # Arrow writes a naive instant as "2024-01-31 09:05:00.000000"
        return cast("list[str]", ts.cast(pa.timestamp("us")).cast(pa.string()).to_pylist())
    micros = ts.cast(pa.timestamp("us", tz=ts.type.tz)).to_numpy().astype("datetime64[us]")
    return [t.replace("T", " ") for t in np.datetime_as_string(micros, unit="us").tolist()]


def _stamp(value: Any) -> str:
    """A valid event's canonical time as text that sorts as time."""
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _text_or_none(value: Any) -> str | None:
    return (
        None
        if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value)
        else str(value)
    )
