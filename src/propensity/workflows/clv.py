"""Lifetime value from an event or order log: validate, summarise, fit, check, bundle, score, report.

- :func:`fit_clv_from_events` — the job behind ``propensity clv EVENTS --out DIR``;
- :func:`score_clv` — score every buyer of a (new) log with a saved CLV bundle;
- :func:`clv_columns_at` — BG/NBD features at a cutoff, fitted on the history before it
  (what :func:`propensity.workflows.events.train_from_events` adds with ``clv_features=True``).
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from propensity import __version__
from propensity.bundle import save_clv_model
from propensity.clv import beta_geo
from propensity.clv.fit import ClvFit, fit_clv, holdout_check, models_for
from propensity.clv.model import ClvModel
from propensity.clv.revenue import compare_revenue
from propensity.clv.summary import check_cutoff, check_time_scaler, rfm_summary
from propensity.errors import DataError, ParameterError
from propensity.events.validate import EventLog, EventSource, ValidationReport, load_events
from propensity.features import FeatureDef, to_timestamp
from propensity.manifest import ClvManifest, ClvModelFit, ClvProvenance, ClvSettings, EventData
from propensity.sources import TableWriter, file_sha256, frame_sha256, stem_path, table_format, write_json

if TYPE_CHECKING:  # pragma: no cover
    from propensity.engines import Engine
    from propensity.events.mapping import MappingLike

__all__ = [
    "CLV_FEATURES",
    "SCORE_COLUMNS",
    "ClvResult",
    "ClvRunSummary",
    "clv_columns_at",
    "clv_feature_defs",
    "clv_snapshot",
    "event_data",
    "fit_clv_from_events",
    "lifetime_values",
    "resolve_clv",
    "score_clv",
]

log = logging.getLogger(__name__)

#: Summary columns copied into the scores (the model inputs, so a score can be explained).
SCORE_COLUMNS = ("frequency", "recency", "T", "monetary_value", "spend", "returns")
_VERSIONED = ("numpy", "scipy", "pandas", "duckdb", "ibis-framework", "pymc-marketing", "pymc", "pytensor")


def _versions() -> dict[str, str]:
    out = {"propensity": __version__}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _source_hash(source: EventSource) -> str:
    return frame_sha256(source) if isinstance(source, pd.DataFrame) else file_sha256(Path(source))


def _source_name(source: EventSource) -> str:
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


@dataclass
class ClvRunSummary:
    """What :func:`fit_clv_from_events` did (also written as ``clv.json``)."""

    source: str
    as_of: str
    scored_as_of: str
    holdout_days: int | None
    time_scaler: float
    horizon_days: float
    discount_rate: float
    method: str
    customers_fitted: int
    customers_scored: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    holdout: dict[str, Any] | None = None
    totals: dict[str, float] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""
    paths: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ClvResult:
    """A fitted lifetime-value job: the model, the fitting summary, the scores' summary, the files."""

    model: ClvModel
    fit: ClvFit
    calibration: pd.DataFrame
    summary: ClvRunSummary
    scores: pd.DataFrame | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    tracking: Any = None
    validation: ValidationReport | None = None


def _cutoffs(ev: EventLog, as_of: Any, holdout_days: int | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(fitting cutoff, scoring cutoff): the holdout ends the data unless ``as_of`` is given."""
    assert ev.data_end is not None and ev.first_event is not None
    end = ev.data_end
    if as_of is None:
        cutoff = (end - pd.Timedelta(days=holdout_days)).floor("D") if holdout_days else end
    else:
        cutoff = to_timestamp(as_of)
    if cutoff > end:
        raise DataError(
            f"The cutoff {cutoff} is after the end of the data ({end}). Choose a cutoff on or before {end.date()}."
        )
    if holdout_days:
        stop = cutoff + pd.Timedelta(days=holdout_days)
        if stop > end:
            missing = int(np.ceil((stop - end) / pd.Timedelta(days=1)))
            raise DataError(
                f"The {holdout_days}-day holdout from {cutoff.date()} runs {missing} day(s) past the end of the data "
                f"({end}): its purchases would be undercounted. Choose --as-of on or before "
                f"{(end - pd.Timedelta(days=holdout_days)).date()} or a shorter --holdout-days."
            )
    return cutoff, (end if holdout_days else cutoff)


def event_data(ev: EventLog) -> EventData:
    """The manifest's record of a validated log (shared by event and CLV bundles)."""
    r = ev.report
    return EventData(
        source=r.source,
        first_event=r.first_event,
        last_event=r.last_event,
        data_end=r.data_end,
        rows_in=r.rows_in,
        rows_ok=r.rows_ok,
        rows_quarantined=r.rows_quarantined,
        reasons=r.reasons,
        customers=r.customers,
        event_types=r.event_types,
        sessions=r.sessions,
    )


def _summarise(
    ev: EventLog, cutoff: pd.Timestamp, *, holdout_days: int | None, scaler: float
) -> pd.DataFrame:
    frame = ev.engine.execute(rfm_summary(ev.events, cutoff, holdout_days=holdout_days, time_scaler=scaler))
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _scores(model: ClvModel, summary: pd.DataFrame, as_of: pd.Timestamp, **predict: Any) -> pd.DataFrame:
    preds = model.predict(summary, **predict)
    inputs = summary[[c for c in SCORE_COLUMNS if c in summary.columns]].reset_index(drop=True)
    out = pd.concat([preds.iloc[:, :1], inputs, preds.iloc[:, 1:]], axis=1)
    out["as_of"] = as_of
    out["model_version"] = model.version
    return out


def _totals(scores: pd.DataFrame) -> dict[str, float]:
    totals = {
        "customers": float(len(scores)),
        "expected_purchases": round(float(scores["expected_purchases"].sum()), 3),
        "mean_p_alive": round(float(scores["p_alive"].mean()), 6) if len(scores) else 0.0,
        "likely_alive": float((scores["p_alive"] >= 0.5).sum()),
    }
    if "clv" in scores.columns:
        clv = scores["clv"].to_numpy()
        totals["clv"] = round(float(clv.sum()), 2)
        if len(clv):
            top = np.sort(clv)[::-1][: max(1, len(clv) // 10)]
            totals["top_decile_clv_share"] = round(float(top.sum() / clv.sum()), 6) if clv.sum() > 0 else 0.0
    return totals


def _check_holdout_days(holdout_days: int | None) -> None:
    if holdout_days is not None and (not isinstance(holdout_days, int) or not 1 <= holdout_days <= 3650):
        raise ParameterError(
            f"The 'holdout_days' parameter must be a whole number of days in [1, 3650]. Got {holdout_days!r} instead."
        )


def _manifest(
    fit: ClvFit,
    calibration: pd.DataFrame,
    *,
    source: EventSource,
    name: str | None,
    cutoff: pd.Timestamp,
    scaler: float,
    holdout_days: int | None,
    predict: Mapping[str, float],
    checked: dict[str, Any] | None,
    mapping: dict[str, Any],
    engine: str,
    data: EventData,
    seed: int,
) -> ClvManifest:
    """The CLV bundle's manifest: settings, fitted models, holdout check, data and provenance."""
    return ClvManifest(
        propensity_version=__version__,
        name=name,
        settings=ClvSettings(
            as_of=str(cutoff),
            time_scaler=scaler,
            holdout_days=holdout_days,
            horizon_days=float(predict["horizon_days"]),
            discount_rate=float(predict["discount_rate"]),
            interval=float(predict["interval"]),
            primary=fit.primary,  # type: ignore[arg-type]
            summary_definition=(
                "frequency = purchase days - 1; recency = last - first purchase day; T = last observed day - first "
                f"purchase day; monetary_value = mean spend per repeat purchase day; time in units of {scaler:g} day(s)"
            ),
        ),
        models=[ClvModelFit.model_validate(f.to_dict()) for f in fit.fits],
        holdout=checked,
        mapping=mapping,
        engine=engine,
        data=data,
        provenance=ClvProvenance(
            data_source=_source_name(source),
            data_hash=_source_hash(source),
            customers=len(calibration),
            versions=_versions(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            python=sys.version.split()[0],
            platform=platform.platform(),
            seed=seed,
        ),
    )


def _fit_digest(fit: ClvFit) -> dict[str, dict[str, Any]]:
    """Per fitted model: parameters, log-likelihood, fit time, customers and notes (for clv.json)."""
    return {
        f.model: {
            "params": f.params,
            "log_likelihood": round(f.log_likelihood, 3),
            "fit_seconds": f.fit_seconds,
            "customers": f.customers,
            "notes": f.notes,
        }
        for f in fit.fits
    }


@dataclass
class _Summaries:
    """What the log gives the fit: cutoffs, the two RFM summaries and the log's description."""

    cutoff: pd.Timestamp
    scored_at: pd.Timestamp
    calibration: pd.DataFrame
    current: pd.DataFrame
    earlier: (
        pd.DataFrame | None
    )  # one holdout earlier, with a holdout: the revenue regression's training rows
    data: EventData
    validation: ValidationReport
    mapping: dict[str, Any]
    engine: str
    seconds: dict[str, float]


def _read_summaries(
    source: EventSource,
    mapping: MappingLike,
    *,
    engine: str | Engine,
    export_time: Any,
    quarantine: Path | None,
    as_of: Any,
    holdout_days: int | None,
    scaler: float,
) -> _Summaries:
    """Validate the log, then summarise it at the fitting cutoff and (after a holdout) at its end."""
    with load_events(source, mapping, engine=engine, export_time=export_time, quarantine=quarantine) as ev:
        tick = time.perf_counter()
        cutoff, scored_at = _cutoffs(ev, as_of, holdout_days)
        check_cutoff(ev.events, cutoff, ev.engine.execute)
        calibration = _summarise(ev, cutoff, holdout_days=holdout_days, scaler=scaler)
        current = (
            _summarise(ev, scored_at, holdout_days=None, scaler=scaler)
            if scored_at != cutoff
            else calibration
        )
        earlier = (
            _summarise(ev, cutoff - pd.Timedelta(days=holdout_days), holdout_days=holdout_days, scaler=scaler)
            if holdout_days
            else None
        )
        seconds = {"validate": ev.report.seconds, "summary": round(time.perf_counter() - tick, 3)}
        return _Summaries(
            cutoff=cutoff,
            scored_at=scored_at,
            calibration=calibration,
            current=current,
            earlier=earlier,
            data=event_data(ev),
            validation=ev.report,
            mapping=ev.mapping.describe(),
            engine=ev.engine.name,
            seconds=seconds,
        )


def _save(manifest: ClvManifest, out_dir: Path | None) -> ClvModel:
    """Write the bundle (with the git commit) when there is a folder, else keep the model in memory."""
    if out_dir is None:
        return ClvModel(manifest)
    from propensity.tracking import git_state

    manifest.provenance.git_commit = git_state()[0]
    return save_clv_model(manifest, out_dir)


def _holdout_check(
    calibration: pd.DataFrame, fit: ClvFit, holdout_days: int | None, cutoff: pd.Timestamp
) -> dict[str, Any] | None:
    """The Fader–Hardie check against the holdout purchases (``None`` without a holdout)."""
    if not holdout_days:
        return None
    if not int(calibration["frequency_holdout"].sum()):
        fit.notes.append(
            f"nobody bought in the {holdout_days}-day holdout after {cutoff.date()}: the check compares the models "
            "with an empty period. If the log ends earlier than its stated end (--export-time), choose --as-of."
        )
    return holdout_check(calibration, fit)


def _write_scores(
    scored: pd.DataFrame, scores_path: Path | None, out_dir: Path | None, validation: ValidationReport
) -> dict[str, Path]:
    """Write the scores (when asked) and name every file of the run written so far."""
    paths: dict[str, Path] = {}
    if out_dir is not None:
        paths["bundle"] = out_dir
        paths["manifest"] = out_dir / "manifest.json"
    if scores_path is not None:
        with TableWriter(scores_path) as writer:
            writer.write(scored)
        paths["scores"] = scores_path
    if validation.quarantine_path:
        paths["events_quarantine"] = Path(validation.quarantine_path)
    return paths


def fit_clv_from_events(
    source: EventSource,
    *,
    out: str | Path | None = None,
    as_of: Any = None,
    holdout_days: int | None = None,
    model: str = "bgnbd",
    method: str = "map",
    spend: bool = True,
    horizon_days: float = 365.0,
    discount_rate: float = 0.0,
    time_scaler: float = 1.0,
    interval: float = 0.9,
    mapping: MappingLike = None,
    engine: str | Engine = "duckdb",
    export_time: Any = None,
    scores: str | Path | None = None,
    report: bool = True,
    seed: int = 0,
    name: str | None = None,
    tracking: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    **sampler: Any,
) -> ClvResult:
    """Fit BG/NBD and/or Pareto/NBD and Gamma-Gamma on a log, check them, and score every buyer.

    Parameters
    ----------
    source, mapping, engine, export_time
        The log and how to read it (see :func:`propensity.events.validate.load_events`); bad rows
        are quarantined to ``<out>/events_quarantine.csv``.
    out
        The bundle folder: ``manifest.json`` (the CLV bundle), ``scores.parquet``, ``clv.json``,
        ``report.html``. ``None`` keeps everything in memory (``result.scores``).
    as_of
        Cutoff of the fitting summary. Default: the end of the data, or with a holdout
        ``holdout_days`` before it.
    holdout_days
        Keep the days after ``as_of`` out of the fit and compare the predictions with them (the
        Fader–Hardie check). Scores then use every purchase up to the end of the data, with the
        parameters fitted before the holdout.
    model
        ``bgnbd`` (default), ``pareto`` or ``both`` (BG/NBD is then the primary model).
    method
        ``map`` (flat priors; maximum likelihood) or ``mcmc`` (a posterior and credible intervals).
    spend
        Fit Gamma-Gamma for spend per purchase and lifetime value.
    horizon_days, discount_rate, interval
        Defaults of the predictions (see :mod:`propensity.clv.predict`).
    time_scaler
        Days per model time unit (1 = days, 7 = weeks).
    scores
        Where to write the scores (CSV or Parquet; default ``<out>/scores.parquet``).
    report
        Write ``<out>/report.html``.
    name, tracking, tracking_uri, experiment
        Record the run in MLflow (as ``propensity train`` does; off when ``PROPENSITY_TRACKING=false``).

    Returns
    -------
    ClvResult

    Raises
    ------
    DataError
        No purchase before the cutoff, a cutoff after the data, or a holdout running past its end.
    ParameterError
        A parameter out of range (the message names it and the allowed values).
    """
    started = time.perf_counter()
    models_for(model)  # an unknown model name fails before the log is read
    scaler = check_time_scaler(time_scaler)
    _check_holdout_days(holdout_days)
    out_dir = Path(out) if out is not None else None
    scores_path = Path(scores) if scores is not None else (out_dir / "scores.parquet" if out_dir else None)
    if scores_path is not None:
        table_format(scores_path)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    quarantine = out_dir / "events_quarantine.csv" if out_dir else None
    read = _read_summaries(
        source,
        mapping,
        engine=engine,
        export_time=export_time,
        quarantine=quarantine,
        as_of=as_of,
        holdout_days=holdout_days,
        scaler=scaler,
    )
    seconds = read.seconds
    cutoff, scored_at, calibration, current = read.cutoff, read.scored_at, read.calibration, read.current
    tick = time.perf_counter()
    fit = fit_clv(
        calibration,
        models=models_for(model),
        spend=spend,
        method=method,
        time_scaler=scaler,
        seed=seed,
        **sampler,
    )
    seconds["fit"] = round(time.perf_counter() - tick, 3)
    checked = _holdout_check(calibration, fit, holdout_days, cutoff)
    if checked is not None and read.earlier is not None:
        tick = time.perf_counter()
        checked["revenue"] = compare_revenue(read.earlier, calibration, fit, seed=seed)
        seconds["revenue"] = round(time.perf_counter() - tick, 3)
    manifest = _manifest(
        fit,
        calibration,
        source=source,
        name=name or (out_dir.name if out_dir is not None else None),
        cutoff=cutoff,
        scaler=scaler,
        holdout_days=holdout_days,
        predict={"horizon_days": horizon_days, "discount_rate": discount_rate, "interval": interval},
        checked=checked,
        mapping=read.mapping,
        engine=read.engine,
        data=read.data,
        seed=seed,
    )
    clv_model = _save(manifest, out_dir)
    tick = time.perf_counter()
    scored = _scores(clv_model, current, scored_at)
    seconds["predict"] = round(time.perf_counter() - tick, 3)
    paths = _write_scores(scored, scores_path, out_dir, read.validation)
    summary = ClvRunSummary(
        source=_source_name(source),
        as_of=str(cutoff),
        scored_as_of=str(scored_at),
        holdout_days=holdout_days,
        time_scaler=scaler,
        horizon_days=float(horizon_days),
        discount_rate=float(discount_rate),
        method=method,
        customers_fitted=len(calibration),
        customers_scored=len(scored),
        models=_fit_digest(fit),
        holdout=checked,
        totals=_totals(scored),
        validation=read.validation.to_dict(),
        model_version=clv_model.version,
        notes=list(fit.notes),
    )
    if out_dir is not None and report:
        from propensity.report.clv import write_clv_report

        tick = time.perf_counter()
        paths["report"] = write_clv_report(
            out_dir / "report.html", manifest=clv_model.manifest, scores=scored
        )
        seconds["report"] = round(time.perf_counter() - tick, 3)
    seconds["total"] = round(time.perf_counter() - started, 3)
    summary.seconds = seconds
    summary.paths = {k: str(v) for k, v in paths.items()}
    result = ClvResult(
        model=clv_model,
        fit=fit,
        calibration=calibration,
        summary=summary,
        scores=scored if scores_path is None else None,
        paths=paths,
        validation=read.validation,
    )
    if out_dir is not None:
        paths["summary"] = write_json(out_dir / "clv.json", summary.to_dict(), default=str)
        summary.paths["summary"] = str(paths["summary"])
        result.tracking = _track(result, out_dir, name, tracking, tracking_uri, experiment)
    return result


def _track(
    result: ClvResult,
    out_dir: Path,
    name: str | None,
    tracking: bool | None,
    tracking_uri: str | None,
    experiment: str | None,
) -> Any:
    """Record the bundle in MLflow when enabled; a failure is a warning, never a lost model."""
    from propensity.config import get_settings

    enabled = tracking if tracking is not None else (tracking_uri is not None or get_settings().tracking)
    if not enabled:
        return None
    import json
    import warnings

    from propensity.errors import PropensityError, PropensityWarning
    from propensity.tracking import TRACKING_FILE, TrackingFailure, display_uri
    from propensity.tracking.clv import log_clv

    outcome: Any
    try:
        outcome = log_clv(out_dir, name=name, tracking_uri=tracking_uri, experiment=experiment)
    except Exception as exc:  # tracking must never cost the user a fitted model
        log.debug("tracking failed", exc_info=True)
        reason = str(exc) if isinstance(exc, PropensityError) else f"{type(exc).__name__}: {exc}"
        command = "propensity clv ... again with a reachable --tracking-uri"
        warnings.warn(
            f"The CLV bundle is saved in {out_dir}, but it was not recorded in MLflow: {reason}",
            PropensityWarning,
            stacklevel=3,
        )
        outcome = TrackingFailure(
            tracking_uri=display_uri(tracking_uri or ""),
            error=reason,
            bundle=str(out_dir),
            register_command=command,
        )
    (out_dir / TRACKING_FILE).write_text(json.dumps(outcome.to_dict(), indent=2, default=str))
    return outcome


def resolve_clv(ref: str | Path | ClvModel, *, tracking_uri: str | None = None) -> ClvModel:
    """A CLV model from a bundle folder or a ``models:/`` URI (verified), or the model passed in."""
    if isinstance(ref, ClvModel):
        return ref
    from propensity.loading import resolve_clv_model

    return resolve_clv_model(ref, tracking_uri=tracking_uri)


def score_clv(
    model: str | Path | ClvModel,
    source: EventSource,
    out: str | Path,
    *,
    as_of: Any = None,
    horizon_days: float | None = None,
    discount_rate: float | None = None,
    mapping: MappingLike = None,
    engine: str | Engine = "duckdb",
    export_time: Any = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Score every buyer of a log at ``as_of`` (default: the end of the data) with a saved CLV bundle.

    The summary is rebuilt with the bundle's time unit and mapping (pass ``mapping`` only when the
    new log's columns differ); predictions use the stored parameters (no fitting, no PyMC). Writes
    the scores to ``out`` (CSV or Parquet) with ``<stem>.quarantine.csv`` and ``<stem>.summary.json``
    beside it, and returns the summary.

    Raises
    ------
    BundleError
        Not a verified CLV bundle.
    DataError
        No purchase before ``as_of``.
    """
    started = time.perf_counter()
    clv_model = resolve_clv(model, tracking_uri=tracking_uri)
    out = Path(out)
    table_format(out)
    s = clv_model.manifest.settings
    scored, cutoff, validation = clv_snapshot(
        clv_model,
        source,
        as_of=as_of,
        horizon_days=horizon_days,
        discount_rate=discount_rate,
        mapping=mapping,
        engine=engine,
        export_time=export_time,
        quarantine=stem_path(out, ".quarantine.csv"),
    )
    with TableWriter(out) as writer:
        writer.write(scored)
    summary = {
        "input": _source_name(source),
        "output": str(out),
        "as_of": str(cutoff),
        "model_version": clv_model.version,
        "horizon_days": s.horizon_days if horizon_days is None else horizon_days,
        "discount_rate": s.discount_rate if discount_rate is None else discount_rate,
        "totals": _totals(scored),
        "validation": validation.to_dict(),
        "quarantine": validation.quarantine_path,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(stem_path(out, ".summary.json"), summary, default=str)
    return summary


def clv_snapshot(
    model: str | Path | ClvModel,
    source: EventSource,
    *,
    as_of: Any = None,
    horizon_days: float | None = None,
    discount_rate: float | None = None,
    mapping: MappingLike = None,
    engine: str | Engine = "duckdb",
    export_time: Any = None,
    quarantine: str | Path | None = None,
    tracking_uri: str | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp, ValidationReport]:
    """Every buyer of a log scored by a saved CLV bundle at ``as_of``, in memory (see :func:`score_clv`).

    Returns
    -------
    (scores, as_of, validation)
        One row per customer with a purchase before ``as_of`` (``customer_id``, the summary,
        ``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv``, …), the cutoff used,
        and the validation report of the log (bad rows to ``quarantine`` when given).

    Raises
    ------
    BundleError
        Not a verified CLV bundle.
    DataError
        No purchase before ``as_of``.
    """
    clv_model = resolve_clv(model, tracking_uri=tracking_uri)
    s = clv_model.manifest.settings
    with load_events(
        source,
        mapping if mapping is not None else clv_model.manifest.mapping,
        engine=engine,
        export_time=export_time,
        quarantine=quarantine,
    ) as ev:
        assert ev.data_end is not None
        cutoff = to_timestamp(as_of) if as_of is not None else ev.data_end
        check_cutoff(ev.events, cutoff, ev.engine.execute)
        current = _summarise(ev, cutoff, holdout_days=None, scaler=s.time_scaler)
        validation = ev.report
    scored = _scores(clv_model, current, cutoff, horizon_days=horizon_days, discount_rate=discount_rate)
    return scored, cutoff, validation


#: What a lookup, the dashboard or a report joins onto its customers (see :func:`lifetime_values`).
LIFETIME_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")


def lifetime_values(
    model: str | Path | ClvModel, source: EventSource, *, as_of: Any = None, engine: str | Engine = "duckdb"
) -> pd.DataFrame:
    """``customer_id`` (text) and :data:`LIFETIME_COLUMNS` of every buyer of a log at ``as_of``
    (default: the end of the data), scored with a saved CLV bundle — the columns other outputs
    join onto their customers (customers without a purchase have no row). ``engine`` validates
    the log and computes the per-customer summary the bundle scores."""
    frame, _, _ = clv_snapshot(model, source, as_of=as_of, engine=engine)
    frame = frame.assign(customer_id=frame["customer_id"].astype(str))
    return frame[["customer_id", *(c for c in LIFETIME_COLUMNS if c in frame.columns)]]


# ------------------------------------------------------------------------------ features


#: The BG/NBD feature columns :func:`clv_columns_at` adds (name → description).
CLV_FEATURES: Mapping[str, str] = {
    "bgnbd_p_alive": "BG/NBD probability that the customer is still active",
    "bgnbd_expected_purchases": "BG/NBD expected purchase days in the horizon",
}


def clv_feature_defs(horizon_days: int) -> list[FeatureDef]:
    """The registry entries of the BG/NBD features (stored in an event model's manifest)."""
    return [
        FeatureDef(
            name="bgnbd_p_alive",
            definition="BG/NBD probability that the customer is still active at the cutoff, from a BG/NBD model fitted "
            "(MAP, flat priors) on every customer's purchase days before the cutoff; missing without a purchase",
            window="lifetime",
            description=CLV_FEATURES["bgnbd_p_alive"],
            unit="share",
            template="BG/NBD P(alive) {value:.2f}",
            group="lifetime value",
        ),
        FeatureDef(
            name="bgnbd_expected_purchases",
            definition=f"BG/NBD expected purchase days in the {horizon_days} days after the cutoff, from the same model; "
            "missing without a purchase before the cutoff",
            window=f"next {horizon_days}d",
            description=CLV_FEATURES["bgnbd_expected_purchases"],
            unit="orders",
            template=f"BG/NBD expects {{value:.2f}} purchases in {horizon_days} days",
            group="lifetime value",
        ),
    ]


def clv_columns_at(ev: EventLog, as_of: Any, horizon_days: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """BG/NBD P(alive) and expected purchases in the next ``horizon_days`` for every buyer before ``as_of``.

    Point in time: the summary reads only purchases before ``as_of`` and the model is fitted on
    that summary alone, so nothing at or after the cutoff can reach a feature. Customers without a
    purchase before the cutoff get no row (the caller fills their features as missing).

    Returns
    -------
    (frame, info)
        ``customer_id`` and the :data:`CLV_FEATURES` columns; the fitted parameters and fit time.
    """
    cutoff = to_timestamp(as_of)
    summary = _summarise(ev, cutoff, holdout_days=None, scaler=1.0)
    if summary.empty:
        return pd.DataFrame(columns=["customer_id", *CLV_FEATURES]), {"as_of": str(cutoff), "customers": 0}
    fitted = beta_geo.fit(summary)
    x, t_x, T = (summary[c].to_numpy(dtype="float64") for c in ("frequency", "recency", "T"))
    frame = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "bgnbd_p_alive": beta_geo.p_alive(fitted.params, x, t_x, T),
            "bgnbd_expected_purchases": beta_geo.expected_purchases(
                fitted.params, x, t_x, T, float(horizon_days)
            ),
        }
    )
    info = {
        "as_of": str(cutoff),
        "customers": len(summary),
        "params": fitted.params,
        "fit_seconds": fitted.fit_seconds,
    }
    return frame, info
