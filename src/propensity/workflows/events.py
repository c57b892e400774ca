"""From an event or order log to features, a trained model, and the customers to score.

- :func:`compute_features` — validate a log and write point-in-time features at ``as_of``
  (with labels when a horizon is given);
- :func:`train_from_events` — rolling-cutoff training set → the table training job; the
  manifest's ``events`` block records everything needed to rebuild the features;
- :func:`event_features_at` — the customers of a log at an as-of, as the model was trained:
  the row source of :func:`propensity.workflows.scoring.score_events`;
- :func:`customer_scores` — every customer's score at an as-of, in memory, scored by
  :func:`score_events` on the chosen engine (analytics and reports by segment);
- :func:`customer_snapshot` — the same in memory, with the features (the dashboard's view).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from propensity.errors import BundleError, DataError, ParameterError
from propensity.events.mapping import EventMapping, MappingLike, as_mapping
from propensity.events.validate import EventLog, EventSource, load_events
from propensity.features import (
    DEFAULT_LOOKBACKS,
    FeatureConfig,
    FeatureDef,
    build_features,
    check_as_of,
    feature_registry,
    resolve_levels,
    to_timestamp,
)
from propensity.features.labels import (
    Eligibility,
    LabelSpec,
    TrainingSet,
    build_labels,
    build_training_set,
    plan_cutoffs,
)
from propensity.loading import ModelRef, resolve_model
from propensity.manifest import EventEligibility, EventFeatures, EventLabel, EventsSpec
from propensity.pipeline import preload_batch_kernel
from propensity.sources import (
    TableWriter,
    check_output,
    file_sha256,
    frame_sha256,
    stem_path,
    table_format,
    write_json,
)
from propensity.workflows.clv import CLV_FEATURES, clv_columns_at, clv_feature_defs, event_data
from propensity.workflows.scoring import RowSource, check_reasons, score_rows, write_summary
from propensity.workflows.tables import TrainingResult, save_and_track
from propensity.workflows.tables import train as train_table

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

    from propensity.engines import Engine
    from propensity.pipeline import TrainedModel

__all__ = [
    "EVENTS_FORMAT",
    "EventModelSpec",
    "EventRows",
    "EventScoreSummary",
    "FeaturesSummary",
    "compute_features",
    "customer_scores",
    "customer_snapshot",
    "event_features_at",
    "model_event_spec",
    "score_events",
    "scored_features",
    "source_name",
    "train_from_events",
]

log = logging.getLogger(__name__)

#: Version of the manifest's ``events`` block.
EVENTS_FORMAT = 1
ProgressFn = Callable[[str, int, int], None]


def _eligibility(eligible_days: int | None) -> Eligibility:
    """``None`` or 0 → everyone seen before the cutoff (whom scoring ranks); N → active within N days."""
    return Eligibility(active_days=eligible_days or None)


def source_name(source: EventSource) -> str:
    """How a log is named in summaries and manifests."""
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


# ------------------------------------------------------------------------------ features


@dataclass
class FeaturesSummary:
    """What :func:`compute_features` did."""

    source: str
    as_of: str
    output: str | None
    customers: int
    eligible: int
    features: int
    horizon_days: int | None
    labels: dict[str, float] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    eligibility: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    quarantine: str | None = None
    seconds: float = 0.0
    events_per_second: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_features(
    source: EventSource,
    as_of: Any,
    *,
    mapping: MappingLike = None,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    horizon_days: int | None = None,
    eligible_days: int | None = None,
    out: str | Path | None = None,
    engine: str | Engine = "duckdb",
    export_time: Any = None,
    allow_partial_horizon: bool = False,
    config: FeatureConfig | None = None,
) -> tuple[pd.DataFrame | None, FeaturesSummary]:
    """Validate a log and compute every customer's features at ``as_of``.

    Parameters
    ----------
    source
        Event or order log (CSV/Parquet path or DataFrame).
    as_of
        The cutoff (a date means midnight UTC); only events before it are used.
    mapping
        Column and event-name mapping (see :mod:`propensity.events.mapping`).
    lookbacks
        Window lengths in days.
    horizon_days
        Also add labels over ``[as_of, as_of + horizon)``: ``purchase_next_Nd``,
        ``churn_next_Nd`` (missing for customers who never ordered) and ``revenue_next_Nd``.
        Refused when the horizon runs past the end of the data, unless ``allow_partial_horizon``.
    eligible_days
        Eligibility: active within this many days (default or 0: everyone seen before the cutoff).
    out
        CSV/Parquet path; then ``<stem>.quarantine.csv`` and ``<stem>.summary.json`` are written
        beside it and the frame is not returned (``None``), so memory stays flat.

    Returns
    -------
    (frame or None, FeaturesSummary)

    Raises
    ------
    DataError
        ``as_of`` outside the data, or the horizon past its end (with the number of missing days).
    """
    started = time.perf_counter()
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        table_format(out_path)
        check_output(out_path, inputs=[source] if not isinstance(source, pd.DataFrame) else [])
    quarantine = stem_path(out_path, ".quarantine.csv") if out_path is not None else None
    cfg = config or FeatureConfig(lookbacks=tuple(lookbacks))
    elig = _eligibility(eligible_days)
    cutoff = to_timestamp(as_of)
    with load_events(source, mapping, engine=engine, export_time=export_time, quarantine=quarantine) as ev:
        check_as_of(
            cutoff,
            ev.first_event,
            ev.data_end,
            horizon_days=horizon_days,
            allow_partial_horizon=allow_partial_horizon,
        )
        cfg = resolve_levels(ev.events, cutoff, cfg, ev.engine.execute)
        feats = build_features(ev.events, cutoff, cfg)
        feats = feats.mutate(eligible=elig.expr(feats))
        feats, label_cols = _with_labels(ev, feats, cutoff, horizon_days)
        frame: pd.DataFrame | None = None
        if out_path is not None:
            ev.engine.write(feats, out_path)
        else:
            frame = ev.engine.execute(feats)
        counts = _feature_counts(ev, feats, label_cols)
        report = ev.report
    seconds = time.perf_counter() - started
    summary = FeaturesSummary(
        source=source_name(source),
        as_of=str(cutoff),
        output=str(out_path) if out_path else None,
        customers=int(counts["customers"]),
        eligible=int(counts["eligible"] or 0),
        features=len(feature_registry(cfg)),
        horizon_days=horizon_days,
        labels={
            c: round(float(counts[f"_mean_{c}"]), 6) for c in label_cols if pd.notna(counts[f"_mean_{c}"])
        },
        validation=report.to_dict(),
        eligibility=elig.to_dict(),
        config=cfg.to_dict(),
        quarantine=report.quarantine_path,
        seconds=round(seconds, 3),
        events_per_second=round(report.rows_in / seconds, 1) if seconds else 0.0,
    )
    if out_path is not None:
        registry = [d.to_dict() for d in feature_registry(cfg)]
        write_json(stem_path(out_path, ".summary.json"), {**summary.to_dict(), "registry": registry})
    return frame, summary


def _with_labels(
    ev: EventLog, feats: ir.Table, cutoff: pd.Timestamp, horizon_days: int | None
) -> tuple[ir.Table, list[str]]:
    """Features with the horizon's labels joined (when a horizon is given) and the ``as_of`` column."""
    import ibis
    import ibis.expr.datatypes as dt

    label_cols: list[str] = []
    if horizon_days is not None:
        lab = build_labels(ev.events, cutoff, horizon_days)
        joined = feats.left_join(lab, "customer_id")
        purchases = joined._purchases.fill_null(0)
        p, c, r = (LabelSpec(k, horizon_days).column for k in ("purchase", "churn", "revenue"))
        feats = joined.select(
            *[joined[col] for col in feats.columns],
            **{
                p: (purchases > 0).cast(dt.int64),
                c: ibis.ifelse(joined.n_orders_all > 0, (purchases == 0).cast(dt.int64), ibis.null(dt.int64)),
                r: joined._revenue.fill_null(0.0),
            },
        )
        label_cols = [p, c, r]
    stamped = feats.mutate(as_of=ibis.literal(cutoff.to_pydatetime(), type=dt.Timestamp()))
    return stamped.order_by("customer_id"), label_cols


def _feature_counts(ev: EventLog, feats: ir.Table, label_cols: Sequence[str]) -> pd.Series:
    import ibis.expr.datatypes as dt

    counts_expr = feats.aggregate(
        customers=feats.count(),
        eligible=feats.eligible.cast(dt.int64).sum(),
        **{f"_mean_{c}": feats[c].cast(dt.float64).mean() for c in label_cols},
    )
    return ev.engine.execute(counts_expr).iloc[0]


# ------------------------------------------------------------------------------ training


def _events_block(
    ev: EventLog,
    ts: TrainingSet,
    result: TrainingResult,
    *,
    step_days: int,
    extra_defs: Sequence[FeatureDef] = (),
) -> EventsSpec:
    """The manifest's ``events`` block: everything scoring needs to rebuild the features."""
    prov = result.model.manifest.provenance
    return EventsSpec(
        format=EVENTS_FORMAT,
        mapping=ev.mapping.describe(),
        engine=ev.engine.name,
        clv_features=bool(extra_defs),
        features=EventFeatures(
            config=ts.config.to_dict(),
            definitions=[d.to_dict() for d in [*feature_registry(ts.config), *extra_defs]],
        ),
        label=EventLabel(
            kind=ts.label.kind,
            horizon_days=ts.label.horizon_days,
            column=ts.label.column,
            definition=ts.label.definition(),
        ),
        cutoffs=[str(c) for c in ts.cutoffs],
        step_days=step_days,
        test_cutoff=str(ts.cutoffs[-1]),
        validation=prov.validation,
        validation_cutoffs=[str(c) for c in result.run.validation_times],
        test=prov.test_source,
        per_cutoff=ts.per_cutoff,
        eligibility=EventEligibility(**ts.eligibility.to_dict()),
        data=event_data(ev),
    )


_SET_BY_EVENTS = ("time_column", "time_gap", "id_column", "roles", "test", "descriptions", "units")
_TRACKING_OPTIONS = ("name", "tracking", "tracking_uri", "experiment")


def _label_spec(label: str, horizon_days: int, train_options: dict[str, Any]) -> LabelSpec:
    spec = LabelSpec(label, horizon_days)  # type: ignore[arg-type]
    if spec.kind == "revenue":
        raise ParameterError(
            "The 'label' parameter of train must be purchase or churn (revenue is a number; it is available as a "
            "column from `propensity features --horizon-days`)."
        )
    for key in _SET_BY_EVENTS:
        if key in train_options:
            raise ParameterError(f"The '{key}' option is set by train_from_events and cannot be passed.")
    return spec


#: Snapshots ``train_from_events`` stacks by default (fewer when the log is too short for them).
DEFAULT_CUTOFFS = 4


def train_from_events(
    source: EventSource,
    *,
    horizon_days: int = 30,
    label: str = "purchase",
    cutoffs: int | None = None,
    step_days: int | None = None,
    last_cutoff: Any = None,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    eligible_days: int | None = None,
    mapping: MappingLike = None,
    engine: str = "duckdb",
    export_time: Any = None,
    allow_partial_horizon: bool = False,
    time_folds: int = 1,
    out: str | Path | None = None,
    progress: ProgressFn | None = None,
    clv_features: bool = False,
    clean_out: str | Path | None = None,
    **train_options: Any,
) -> TrainingResult:
    """Train "who will <label> in the next ``horizon_days`` days" from an event or order log.

    Builds ``cutoffs`` snapshots ``step_days`` apart (default: the horizon), the latest ending
    its horizon at the end of the data; keeps eligible customers; trains with time-ordered
    validation (test on the latest cutoff, validate on the one before, never training on a
    label window that reaches the evaluated cutoff). With one cutoff, customers are split at
    random (each appears once).

    Parameters
    ----------
    source, mapping, engine, export_time
        The log and how to read it (see :func:`~propensity.events.validate.load_events`).
    horizon_days, label
        What to predict: ``purchase`` or ``churn`` within the horizon.
    cutoffs, step_days, last_cutoff
        The snapshots (see :func:`~propensity.features.labels.plan_cutoffs`). ``cutoffs=None``
        (default): :data:`DEFAULT_CUTOFFS`, or as many as the log holds (at least one; a
        :class:`~propensity.errors.PropensityWarning` says so); a number given must fit.
    lookbacks, eligible_days
        Feature windows; eligibility (default or 0: everyone seen before the cutoff, whom
        scoring ranks; N: active within N days before it).
    time_folds
        Validation cutoffs (1 = the latest training cutoff).
    out
        Bundle folder: the bundle, ``metrics.json``, ``validation.json``, ``events_quarantine.csv``
        and ``training_set.parquet``.
    clv_features
        Add BG/NBD ``bgnbd_p_alive`` and ``bgnbd_expected_purchases`` (over the horizon) at every
        cutoff, from a BG/NBD model fitted on the purchases before that cutoff only (see
        :func:`propensity.workflows.clv.clv_columns_at`); scoring refits it at its own cutoff.
        Each fit takes seconds. Off by default: measured on the online-retail log it did not
        help (90-day ROC-AUC 0.7356 with, 0.7384 without); on the CDNOW sample it does
        (0.8020 with, 0.7938 without; ``python -m benchmarks.bench_clv cdnow_defaults``).
    clean_out
        Also write the valid canonical events there (Parquet), e.g. for a shop report that
        should not validate the log again.
    **train_options
        Passed to :func:`propensity.train` (``candidates``, ``policy``, ``metric``, ``seed`` …);
        ``name``, ``tracking``, ``tracking_uri`` and ``experiment`` record the saved bundle in MLflow.

    Returns
    -------
    TrainingResult
        ``result.model.manifest.events`` holds the mapping, feature definitions, lookbacks, label,
        cutoffs and eligibility; ``result.training_set`` and ``result.validation`` the snapshots
        and the log's validation report.
    """
    spec = _label_spec(label, horizon_days, train_options)
    # MLflow options apply once the bundle is written (as for propensity.train with out=).
    tracking_options = {k: train_options.pop(k) for k in _TRACKING_OPTIONS if k in train_options}
    step = step_days or horizon_days
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        inputs = [source] if not isinstance(source, pd.DataFrame) else []
        check_output(out_dir, inputs=inputs, what="output folder", folder=True)
        out_dir.mkdir(parents=True, exist_ok=True)

    def tell(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    tell("validate", 0, 1)
    quarantine = out_dir / "events_quarantine.csv" if out_dir else None
    with load_events(
        source, mapping, engine=engine, export_time=export_time, quarantine=quarantine, clean_out=clean_out
    ) as ev:
        tell("validate", 1, 1)
        assert ev.first_event is not None and ev.data_end is not None
        plan = plan_cutoffs(
            ev.first_event,
            ev.data_end,
            horizon_days=horizon_days,
            cutoffs=DEFAULT_CUTOFFS if cutoffs is None else cutoffs,
            step_days=step,
            last=last_cutoff,
            allow_partial_horizon=allow_partial_horizon,
            at_most=cutoffs is None,
        )
        config = resolve_levels(
            ev.events, plan[-1], FeatureConfig(lookbacks=tuple(lookbacks)), ev.engine.execute
        )
        eligibility = _eligibility(eligible_days)
        progress_features = lambda d, n: tell("features", d, n)  # noqa: E731
        extra_defs = clv_feature_defs(horizon_days) if clv_features else []
        extra = (lambda cutoff: clv_columns_at(ev, cutoff, horizon_days)[0]) if clv_features else None
        ts = build_training_set(
            ev,
            spec,
            cutoffs=plan,
            config=config,
            eligibility=eligibility,
            progress=progress_features,
            extra=extra,
        )
        tell("train", 0, 1)
        result = _train_on_snapshots(
            ts, spec, time_folds=time_folds, train_options=train_options, extra_defs=extra_defs
        )
        tell("train", 1, 1)
        result.model.manifest.events = _events_block(ev, ts, result, step_days=step, extra_defs=extra_defs)
        report = ev.report
    prov = result.model.manifest.provenance
    prov.data_source = source_name(source)
    prov.data_hash = frame_sha256(source) if isinstance(source, pd.DataFrame) else file_sha256(Path(source))
    result.training_set, result.validation = ts, report
    if out_dir is not None:
        save_and_track(result, out_dir, **tracking_options, train_params=train_options)
        result.paths["validation"] = write_json(out_dir / "validation.json", report.to_dict())
        ts.frame.to_parquet(out_dir / "training_set.parquet", index=False)
        result.paths["training_set"] = out_dir / "training_set.parquet"
        if report.quarantine_path:
            result.paths["events_quarantine"] = Path(report.quarantine_path)
    return result


def _train_on_snapshots(
    ts: TrainingSet,
    spec: LabelSpec,
    *,
    time_folds: int,
    train_options: dict[str, Any],
    extra_defs: Sequence[FeatureDef] = (),
) -> TrainingResult:
    """Train the table job on the stacked snapshots, with the registry's roles and wording."""
    defs = [*feature_registry(ts.config), *extra_defs]
    # Registry roles win over inference (a count of 0/1 is still a count), except for columns
    # without information here (all missing or one value): inference excludes those, with a note.
    informative = {d.name for d in defs if ts.frame[d.name].nunique(dropna=True) > 1}
    roles = {d.name: d.role for d in defs if d.name in informative} | {"cutoff": "ignore"}
    stacked = len(ts.cutoffs) > 1
    return train_table(
        ts.frame,
        spec.column,
        id_column="customer_id",
        roles=roles,
        descriptions={d.name: d.description for d in defs},
        units={d.name: d.unit for d in defs if d.unit},
        time_column="cutoff" if stacked else None,
        time_gap=pd.Timedelta(days=spec.horizon_days) if stacked else None,
        time_folds=time_folds,
        label_definition=spec.definition(),
        positive="1",
        **train_options,
    )


# ------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class EventModelSpec:
    """How an event model's features are rebuilt, from its manifest's ``events`` block."""

    mapping: EventMapping
    config: FeatureConfig
    eligibility: Eligibility
    block: EventsSpec


def model_event_spec(model: TrainedModel) -> EventModelSpec:
    """The mapping, feature config and eligibility recorded in an event model's manifest.

    Raises
    ------
    BundleError
        The model was trained on a table, not an event log, or by a newer propensity.
    """
    block = model.manifest.events
    if block is None:
        raise BundleError(
            "This model was trained on a table, not an event log: score it with a table of its features "
            "(propensity score MODEL TABLE), without --as-of."
        )
    if block.format > EVENTS_FORMAT:
        raise BundleError(
            f"The model's events block has format {block.format}; this propensity reads up to {EVENTS_FORMAT}. "
            "Upgrade propensity."
        )
    return EventModelSpec(
        mapping=as_mapping(block.mapping),
        config=FeatureConfig.from_dict(block.features.config),
        eligibility=Eligibility(
            active_days=block.eligibility.active_days, min_orders=block.eligibility.min_orders
        ),
        block=block,
    )


@dataclass
class EventRows(RowSource):
    """Customers' features computed by an engine from an event log at ``as_of`` (one per row)."""

    engine: Engine
    features: ir.Table
    as_of: pd.Timestamp
    eligible: int = 0
    contacted_eligible: int = 0
    expected: dict[str, float] = field(
        default_factory=lambda: {"all": 0.0, "contacted": 0.0, "contacted_eligible": 0.0, "eligible": 0.0}
    )

    def chunks(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for batch in self.engine.batches(self.features, rows=batch_rows):
            yield batch.to_pandas()

    def annotate(self, chunk: pd.DataFrame, scores: pd.DataFrame, good: np.ndarray) -> pd.DataFrame:
        scores.insert(4, "eligible", chunk["eligible"].to_numpy()[good].astype(bool))
        scores.insert(5, "as_of", self.as_of)
        return scores

    def counts(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "contacted_eligible": self.contacted_eligible,
            **{f"expected_{k}": v for k, v in self.expected.items()},
        }

    def observe(self, scores: pd.DataFrame) -> None:
        p, d, e = scores["probability"], scores["decision"], scores["eligible"]
        self.eligible += int(e.sum())
        self.contacted_eligible += int((d & e).sum())
        self.expected["all"] += float(p.sum())
        self.expected["contacted"] += float(p[d].sum())
        self.expected["contacted_eligible"] += float(p[d & e].sum())
        self.expected["eligible"] += float(p[e].sum())


@contextmanager
def event_features_at(
    source: EventSource,
    spec: EventModelSpec,
    as_of: Any = None,
    *,
    mapping: MappingLike = None,
    engine: str | Engine = "duckdb",
    export_time: Any = None,
    quarantine: Path | None = None,
    eligible_only: bool = False,
    in_memory: bool = False,
) -> Iterator[tuple[EventLog, EventRows]]:
    """Validate a log and give every customer's features at ``as_of`` (default: the end of the
    data), built the way the model was trained, as a row source for scoring.

    ``in_memory``: the validated events stay in the engine's memory (see :func:`load_events`).

    Raises
    ------
    DataError
        ``as_of`` outside the log's data.
    """
    with load_events(
        source,
        mapping if mapping is not None else spec.mapping,
        engine=engine,
        export_time=export_time,
        quarantine=quarantine,
        in_memory=in_memory,
    ) as ev:
        cutoff = to_timestamp(as_of) if as_of is not None else ev.data_end
        assert cutoff is not None
        check_as_of(cutoff, ev.first_event, ev.data_end)
        feats = scored_features(ev.events, spec, cutoff)
        if spec.block.clv_features:
            feats = _with_clv_features(ev, feats, cutoff, spec.block.label.horizon_days)
        if eligible_only:
            feats = feats.filter(feats.eligible)
        yield ev, EventRows(ev.engine, feats.order_by("customer_id"), cutoff)


def scored_features(events: ir.Table, spec: EventModelSpec, cutoff: pd.Timestamp) -> ir.Table:
    """The model's features of every customer of ``events`` at ``cutoff``, with ``eligible`` (lazy;
    without lifetime-value features)."""
    feats = build_features(events, cutoff, spec.config)
    return feats.mutate(eligible=spec.eligibility.expr(feats))


def _with_clv_features(ev: EventLog, feats: ir.Table, cutoff: pd.Timestamp, horizon_days: int) -> ir.Table:
    """``feats`` with the BG/NBD columns at ``cutoff`` (fitted on the history before it), as in training."""
    import ibis
    import ibis.expr.datatypes as dt

    frame, _ = clv_columns_at(ev, cutoff, horizon_days)
    if frame.empty:  # nobody bought before the cutoff: the columns are missing for everyone
        return feats.mutate(**{c: ibis.null(dt.float64) for c in CLV_FEATURES})
    joined = feats.left_join(ev.engine.from_frame(frame), "customer_id")
    return joined.select(*[joined[c] for c in feats.columns], *[joined[c] for c in CLV_FEATURES])


@dataclass
class EventScoreSummary:
    """What :func:`score_events` did."""

    input: str
    output: str
    as_of: str
    customers: int = 0
    eligible: int = 0
    scored: int = 0
    contacted: int = 0
    contacted_eligible: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    expected_conversions: float = 0.0
    expected_conversions_contacted: float = 0.0
    expected_conversions_eligible: float = 0.0
    expected_conversions_all_eligible: float = 0.0
    eligible_only: bool = False
    model_version: str = ""
    threshold: float = 0.0
    validation: dict[str, Any] = field(default_factory=dict)
    quarantine: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_events(
    model: ModelRef,
    source: EventSource,
    out: str | Path,
    *,
    as_of: Any = None,
    eligible_only: bool = False,
    mapping: MappingLike = None,
    engine: str | Engine = "duckdb",
    export_time: Any = None,
    batch_rows: int = 200_000,
    reasons: int = 0,
    tracking_uri: str | None = None,
    partition_by: Sequence[str] = (),
) -> EventScoreSummary:
    """Rebuild an event model's features from a log at ``as_of`` and score every customer seen before it.

    The mapping, feature definitions and eligibility come from the model's manifest (pass
    ``mapping`` only if the new log's columns differ). ``as_of`` defaults to the end of the
    data (midnight after the last event). Output columns: ``customer_id``, ``probability``,
    ``decision``, ``band``, ``eligible``, ``as_of``, ``model_version``, ``scored_at``;
    ``eligible_only`` keeps only eligible customers. The quarantine of the log and a JSON
    summary are written beside the output (``<stem>.quarantine.csv``, ``<stem>.summary.json``).
    ``reasons=K`` adds ``reason_1`` … ``reason_K`` (as :func:`score_file`), worded from
    the feature registry, e.g. "added to cart 2 days ago (+0.41)".

    With ``engine="spark"`` the features are built by Spark and scored on its executors by the
    same loop (:mod:`propensity.workflows.spark`); ``out`` is then a folder of Parquet part files,
    split into sub-folders by the ``partition_by`` columns (e.g. ``["band"]``), rows in no
    particular order.

    Raises
    ------
    BundleError
        The model was not trained on events.
    DataError
        ``as_of`` outside the log's data, or no customer to score.
    """
    started = time.perf_counter()
    check_reasons(reasons, "score_events")
    out = Path(out)
    on_spark = _is_spark(engine)
    inputs = [source] if not isinstance(source, pd.DataFrame) else []
    if on_spark:
        from propensity.workflows.spark import check_spark_output

        check_spark_output(out, inputs, partition_by)
    else:
        table_format(out)
        check_output(out, inputs=inputs)
    preload_batch_kernel()
    trained = resolve_model(model, tracking_uri=tracking_uri)
    spec = model_event_spec(trained)
    summary = EventScoreSummary(
        input=source_name(source),
        output=str(out),
        as_of="",
        eligible_only=eligible_only,
        model_version=trained.version,
        threshold=trained.threshold,
    )
    with event_features_at(
        source,
        spec,
        as_of,
        mapping=mapping,
        engine=engine,
        export_time=export_time,
        quarantine=stem_path(out, ".quarantine.csv"),
        eligible_only=eligible_only,
    ) as (ev, rows):
        summary.as_of = str(rows.as_of)
        summary.validation = ev.report.to_dict()
        summary.quarantine = ev.report.quarantine_path
        if on_spark:  # the same loop, run by every partition on the executors
            from propensity.workflows.spark import score_events_on_spark

            score_events_on_spark(
                trained,
                summary,
                rows,
                ev.engine,  # type: ignore[arg-type]
                out,
                reasons=reasons,
                partition_by=partition_by,
            )
            summary.seconds = round(time.perf_counter() - started, 3)
            write_summary(summary, out)
            return summary
        with TableWriter(out) as writer:
            tally = score_rows(trained, rows, writer, batch_rows=batch_rows, reasons=reasons)
            if writer.rows == 0:
                raise DataError(f"No customer to score at {rows.as_of} (eligible only: {eligible_only}).")
    summary.customers, summary.scored, summary.contacted = tally.rows_in, tally.rows_scored, tally.contacted
    summary.eligible, summary.contacted_eligible = rows.eligible, rows.contacted_eligible
    summary.bands = tally.bands
    summary.expected_conversions = round(rows.expected["all"], 2)
    summary.expected_conversions_contacted = round(rows.expected["contacted"], 2)
    summary.expected_conversions_eligible = round(rows.expected["contacted_eligible"], 2)
    summary.expected_conversions_all_eligible = round(rows.expected["eligible"], 2)
    summary.seconds = round(time.perf_counter() - started, 3)
    write_summary(summary, out)
    return summary


def _is_spark(engine: str | Engine) -> bool:
    name = engine if isinstance(engine, str) else engine.name
    return (name or "").strip().lower() == "spark"


#: The columns of :func:`customer_scores`.
CUSTOMER_SCORE_COLUMNS = ("customer_id", "probability", "decision", "band", "eligible")


def customer_scores(
    model: ModelRef,
    events: EventSource,
    *,
    as_of: Any = None,
    engine: str | Engine = "duckdb",
    mapping: MappingLike = None,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Every customer of a log scored at ``as_of`` by :func:`score_events` on ``engine``, read back.

    The batch scoring path itself runs (on Spark: features built by Spark, scored on the
    executors by ``mapInPandas``); only the small result (one row per customer) reaches pandas.
    ``events`` are read with ``mapping`` — by default the canonical names, as in a validated log
    (``propensity validate --out``), not the model's mapping of its raw training log.

    Parameters
    ----------
    out
        Where the scores are written before they are read back (default: a temporary folder,
        removed afterwards; on Spark under ``PROPENSITY_SPARK_WORKDIR`` when set, which on a
        cluster of several machines must be a folder every node and the driver share).

    Returns
    -------
    pandas.DataFrame
        :data:`CUSTOMER_SCORE_COLUMNS` (``customer_id`` as text), by probability (highest first),
        then ``customer_id``: the same rows and values on every engine.
    """
    import tempfile

    spark = _is_spark(engine)
    scratch = None
    if spark:
        from propensity.engines.spark import spark_scratch

        scratch = spark_scratch()
    with tempfile.TemporaryDirectory(prefix="propensity-scores-", dir=scratch) as tmp:
        target = Path(out) if out is not None else Path(tmp) / ("scores" if spark else "scores.parquet")
        score_events(
            model,
            events,
            target,
            as_of=as_of,
            mapping=mapping if mapping is not None else EventMapping(),
            engine=engine,
        )
        frame = pd.read_parquet(target, columns=list(CUSTOMER_SCORE_COLUMNS))
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["band"] = frame["band"].astype(str)
    frame = frame.sort_values(["probability", "customer_id"], ascending=[False, True], kind="stable")
    return frame.reset_index(drop=True)


def customer_snapshot(
    model: TrainedModel,
    events: EventSource,
    *,
    as_of: Any,
    mapping: MappingLike = None,
    engine: str | Engine = "duckdb",
) -> pd.DataFrame:
    """Every customer seen before ``as_of``, with the model's features at ``as_of`` and their score.

    Rebuilds the features the way the model was trained (the manifest's feature configuration
    and eligibility) with :func:`compute_features` on ``engine`` and scores them with the model —
    what :func:`~propensity.workflows.scoring.score_events` writes, kept in memory with the
    features (the dashboard explains customers from them, so they come to this process anyway;
    :func:`customer_scores` is the scores alone, scored where the engine runs).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``probability``, ``decision``, ``band``, ``eligible`` and every model
        feature, sorted by probability (highest first), then ``customer_id``. Rows the model
        cannot score are left out.

    Raises
    ------
    BundleError
        The model was not trained on an event log.
    """
    spec = model_event_spec(model)
    frame, summary = compute_features(
        events,
        as_of,
        mapping=mapping,
        config=spec.config,
        eligible_days=spec.eligibility.active_days or 0,
        engine=engine,
    )
    assert frame is not None
    if spec.block.clv_features:
        with load_events(events, mapping if mapping is not None else spec.mapping, engine=engine) as ev:
            more, _ = clv_columns_at(ev, to_timestamp(summary.as_of), spec.block.label.horizon_days)
        frame = frame.merge(
            more.astype({"customer_id": frame["customer_id"].dtype}), on="customer_id", how="left"
        )
    scores, prepared = model.score_frame(frame)
    good = prepared.good
    out = pd.concat(
        [
            scores[["customer_id", "probability", "decision", "band"]].reset_index(drop=True),
            frame.loc[good, ["eligible"]].reset_index(drop=True),
            frame.loc[good, model.features].reset_index(drop=True),
        ],
        axis=1,
    )
    out["customer_id"] = out["customer_id"].astype(str)
    out.attrs["as_of"] = summary.as_of
    # Ties by customer: the engines return the features in no particular order.
    out = out.sort_values(["probability", "customer_id"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)
