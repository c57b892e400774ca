"""Data behind the dashboard, loaded once per process and cached (Streamlit's resource/data caches).

The expensive steps happen once: validating the raw log into canonical events (cached on disk
by :func:`propensity.analytics.prepare_events`), loading it into the engine, and — for a model
trained on events — rebuilding every customer's features at the end of the log and scoring
them (:func:`customer_snapshot`, cached on disk per model version). Aggregates are then cached
in memory, so a page renders from cached tables after the first load.

Every step runs on the engine of the settings (``PROPENSITY_ENGINE``: ``duckdb``, the default,
or ``spark``): validation, the event store behind every aggregate (KPIs, activity, funnel,
cohorts, RFM, products), the customers' features, lifetime values and the log's monitoring.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from propensity.analytics import (
    EventStore,
    activity_over_time,
    cohort_retention,
    funnel,
    prepare_events,
    rfm_table,
    segment_summary,
    summary_kpis,
)
from propensity.analytics.products import ProductAnalytics, product_analytics
from propensity.dashboard import DashboardSources, sources_from_env
from propensity.errors import PropensityError
from propensity.pipeline import TrainedModel

log = logging.getLogger(__name__)

__all__ = [
    "Context",
    "LiveView",
    "clv_scores",
    "context",
    "live_view",
    "monitor_log",
    "monitor_table",
    "products",
    "snapshot",
    "with_clv",
]


@dataclass
class Context:
    """What every page can use: the model, its evaluation, the event store and load problems."""

    sources: DashboardSources
    model: TrainedModel | None = None
    evaluation: dict[str, Any] | None = None
    store: EventStore | None = None
    validation: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def events_key(self) -> str:
        """Cache key of the event store (its canonical file and modification time)."""
        if self.store is None:
            return ""
        path = Path(self.store.source)
        return f"{path}:{path.stat().st_mtime_ns if path.exists() else 0}"

    @property
    def event_model(self) -> bool:
        return self.model is not None and bool(self.model.manifest.events)


# ------------------------------------------------------------------------------ cached loaders


@st.cache_resource(show_spinner="Loading the model…")
def _load_model(ref: str) -> TrainedModel:
    from propensity.loading import resolve_model

    return resolve_model(ref)


@st.cache_resource(show_spinner="Reading the model's evaluation…")
def _load_evaluation(path: str) -> dict[str, Any] | None:
    file = Path(path) / "evaluation.json"
    return json.loads(file.read_text()) if file.exists() else None


def engine_name() -> str:
    """The engine of the settings (``PROPENSITY_ENGINE``), checked (an unknown name is a ParameterError)."""
    from propensity.config import get_settings
    from propensity.engines import ENGINES
    from propensity.errors import ParameterError

    name = (get_settings().engine or "duckdb").strip().lower()
    if name not in ENGINES:
        raise ParameterError(
            f"The 'engine' setting (PROPENSITY_ENGINE) must be one of {', '.join(ENGINES)}. Got {name!r} instead."
        )
    return name


@st.cache_resource(show_spinner="Validating the event log (once; cached on disk)…")
def _load_store(events: str, cache: str, engine: str) -> tuple[EventStore, dict[str, Any]]:
    canonical, report = prepare_events(events, Path(cache) / "validated", engine=engine)
    return EventStore(canonical, engine=engine, threads=2), report.to_dict()


def context() -> Context:
    """Load (or fetch from the cache) the sources the app was started with; problems become messages."""
    sources = sources_from_env()
    ctx = Context(sources)
    if sources.model:
        try:
            ctx.model = _load_model(sources.model)
            if ctx.model.path is not None:
                ctx.evaluation = _load_evaluation(str(ctx.model.path))
        except PropensityError as exc:
            ctx.problems.append(f"The model '{sources.model}' could not be loaded: {exc}")
    if sources.events:
        try:
            ctx.store, ctx.validation = _load_store(sources.events, str(sources.cache), engine_name())
        except PropensityError as exc:
            ctx.problems.append(f"The event log '{sources.events}' could not be read: {exc}")
    return ctx


@st.cache_data(show_spinner=False)
def kpis(_store: EventStore, key: str) -> dict[str, Any]:
    return summary_kpis(_store)


@st.cache_data(show_spinner=False)
def activity(_store: EventStore, key: str, freq: str) -> pd.DataFrame:
    return activity_over_time(_store, freq=freq)  # type: ignore[arg-type]


@st.cache_data(show_spinner=False)
def funnel_table(_store: EventStore, key: str, by: str | None) -> pd.DataFrame:
    return funnel(_store, by=by)  # type: ignore[arg-type]


@st.cache_data(show_spinner=False)
def cohorts(_store: EventStore, key: str) -> pd.DataFrame:
    return cohort_retention(_store)


@st.cache_data(show_spinner=False)
def rfm(_store: EventStore, key: str) -> pd.DataFrame:
    return rfm_table(_store)


@st.cache_data(show_spinner=False)
def segments(_store: EventStore, key: str, _scores: pd.DataFrame | None, scores_key: str) -> pd.DataFrame:
    return segment_summary(rfm(_store, key), _scores)


@st.cache_data(show_spinner="Counting products and categories…", max_entries=8)
def products(_store: EventStore, key: str, min_support: int) -> ProductAnalytics | None:
    """Product and category tables of the log (``None`` when it names no product or category),
    computed by the store's engine on its events."""
    with _store.exclusive() as engine:
        return product_analytics(_store.events, engine=engine, min_support=min_support)


@st.cache_resource(show_spinner="Scoring every customer of the log (once; cached on disk)…")
def _snapshot(model_ref: str, version: str, canonical: str, cache: str, as_of: str) -> pd.DataFrame:
    path = Path(cache) / f"snapshot-{version}.parquet"
    stamp = path.with_suffix(".json")
    mtime = Path(canonical).stat().st_mtime_ns
    if path.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == {"canonical": canonical, "mtime_ns": mtime, "as_of": as_of}:
                frame = pd.read_parquet(path)
                frame.attrs["as_of"] = as_of
                return frame
        except json.JSONDecodeError:
            pass
    from propensity.workflows.events import customer_snapshot

    frame = customer_snapshot(_load_model(model_ref), canonical, as_of=as_of, engine=engine_name())
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    stamp.write_text(json.dumps({"canonical": canonical, "mtime_ns": mtime, "as_of": as_of}))
    return frame


def snapshot(ctx: Context) -> pd.DataFrame | None:
    """The scored customers of the log (event models with a log only; else ``None``)."""
    if not ctx.event_model or ctx.store is None or ctx.model is None or ctx.sources.model is None:
        return None
    try:
        return _snapshot(
            ctx.sources.model,
            ctx.model.version,
            ctx.store.source,
            str(ctx.sources.cache),
            str(ctx.store.data_end),
        )
    except PropensityError as exc:
        ctx.problems.append(f"The customers of the log could not be scored: {exc}")
        return None


@st.cache_resource(show_spinner="Scoring lifetime values (once per run)…")
def _clv_scores(clv_ref: str, events: str, mtime_ns: int, as_of: str) -> pd.DataFrame:
    from propensity.workflows.clv import lifetime_values

    return lifetime_values(clv_ref, events, as_of=as_of, engine=engine_name()).drop(
        columns="expected_spend", errors="ignore"
    )


def clv_scores(ctx: Context) -> pd.DataFrame | None:
    """P(alive), expected purchases and CLV of the log's buyers at the snapshot's as-of (with --clv only).

    The lifetime-value bundle reads the raw log with its own mapping; customers without a purchase
    before the as-of have no row.
    """
    if not ctx.sources.clv or ctx.store is None or ctx.sources.events is None:
        return None
    try:
        return _clv_scores(
            ctx.sources.clv,
            ctx.sources.events,
            Path(ctx.sources.events).stat().st_mtime_ns,
            str(ctx.store.data_end),
        )
    except PropensityError as exc:
        problem = f"The lifetime values could not be computed with '{ctx.sources.clv}': {exc}"
        ctx.problems.append(problem)
        st.warning(problem)
        return None


def with_clv(frame: pd.DataFrame, clv: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` (one row per ``customer_id``) with the CLV columns joined on; missing where none."""
    if clv is None or "customer_id" not in frame.columns:
        return frame
    keys = frame["customer_id"].astype(str)
    joined = clv.assign(customer_id=clv["customer_id"].astype(str)).set_index("customer_id")
    out = frame.copy()
    for col in joined.columns:
        out[col] = keys.map(joined[col]).to_numpy()
    return out


# ------------------------------------------------------------------------------ monitoring


@st.cache_data(show_spinner="Testing the log against the training profile…", max_entries=16)
def _monitor_log(model_ref: str, version: str, canonical: str, mtime_ns: int, as_of: str) -> dict[str, Any]:
    from propensity.workflows.monitoring import monitor

    return monitor(
        _load_model(model_ref), canonical, as_of=as_of, report=False, engine=engine_name()
    ).to_dict()


def monitor_log(ctx: Context, as_of: str) -> dict[str, Any] | None:
    """``propensity monitor`` of the event log at ``as_of`` (event models with a log; cached per as-of)."""
    if not ctx.event_model or ctx.store is None or ctx.model is None or ctx.sources.model is None:
        return None
    canonical = ctx.store.source
    try:
        return _monitor_log(
            ctx.sources.model, ctx.model.version, canonical, Path(canonical).stat().st_mtime_ns, as_of
        )
    except PropensityError as exc:
        ctx.problems.append(f"The log could not be monitored at {as_of}: {exc}")
        return None


@st.cache_data(show_spinner="Testing the table against the training profile…", max_entries=8)
def _monitor_table(model_ref: str, version: str, frame: pd.DataFrame, labels: str | None) -> dict[str, Any]:
    from propensity.workflows.monitoring import monitor

    return monitor(_load_model(model_ref), frame, labels=labels, report=False).to_dict()


def monitor_table(ctx: Context, frame: pd.DataFrame, labels: str | None) -> dict[str, Any]:
    """``propensity monitor`` of an uploaded table of records (cached per content)."""
    assert ctx.model is not None and ctx.sources.model is not None
    return _monitor_table(ctx.sources.model, ctx.model.version, frame, labels)


# ------------------------------------------------------------------------------ live store


@dataclass
class LiveView:
    """What the live store holds at one read: every customer's current score and the counts.

    ``as_of_lag`` is, per customer, how far their score's as-of is behind the newest one (a
    customer is re-scored when one of their events arrives; until then their score stands at the
    as-of of their last batch).
    """

    scores: pd.DataFrame
    events: int
    watermark: pd.Timestamp | None
    newest_as_of: pd.Timestamp | None
    last_scored_at: pd.Timestamp | None
    read_at: pd.Timestamp

    @property
    def as_of_lag(self) -> pd.Series:
        if self.scores.empty or self.newest_as_of is None:
            return pd.Series(dtype="timedelta64[ns]")
        return self.newest_as_of - pd.to_datetime(self.scores["as_of"])


def live_view(path: str) -> LiveView:
    """Read the live store of ``propensity stream`` (read-only; not cached: the page refreshes it)."""
    from propensity.workflows.store import EventStore as LiveStore

    with LiveStore(path, readonly=True) as store:
        scores = store.scores()
        events = store.event_count() if not scores.empty else 0
        watermark = store.watermark() if not scores.empty else None
    newest = pd.to_datetime(scores["as_of"]).max() if not scores.empty else None
    scored = pd.to_datetime(scores["scored_at"], utc=True).max() if not scores.empty else None
    return LiveView(
        scores=scores,
        events=events,
        watermark=watermark,
        newest_as_of=newest,
        last_scored_at=scored,
        read_at=pd.Timestamp.now(tz="UTC"),
    )
