"""``propensity monitor``: has the data, the score or the model's performance moved since training?

:func:`monitor` compares new rows — a table of feature records, or an event log whose features
are rebuilt at an as-of with the scoring code — with the profile the bundle stored at training:

1. **input drift** per feature (:mod:`propensity.monitoring.drift`), aggregated in DuckDB over
   every row;
2. **score drift** and the **CBPE estimate** of ROC-AUC, precision and recall, on a seeded
   Bernoulli sample of about ``sample_rows`` rows scored by the model (labels are not needed);
3. **realised performance** (ROC-AUC with its interval, PR-AUC, calibration error) when labels
   exist: a table's ``labels`` column, or for an event model the outcome in the log when the
   horizon after the as-of is inside the data.

Each test gets a green / amber / red status from :class:`~propensity.monitoring.Thresholds`; any
red is an alert (``propensity monitor`` then exits with code 3). Writes ``monitor.json`` and an
offline ``monitor.html``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from propensity.errors import DataError, ParameterError
from propensity.evaluation import target_labels
from propensity.loading import ModelRef, resolve_model
from propensity.monitoring import STATUS_ORDER, Thresholds, feature_drift, realised_performance, score_drift
from propensity.pipeline import TrainedModel
from propensity.sources import read_table, sniff_delimiter, table_format, write_json

__all__ = ["MonitorResult", "monitor"]


@dataclass
class MonitorResult:
    """What :func:`monitor` found; ``to_dict()`` is ``monitor.json``."""

    model: dict[str, Any]
    data: dict[str, Any]
    status: str
    alerts: list[str]
    warnings: list[str]
    features: list[dict[str, Any]]
    score: dict[str, Any]
    performance: dict[str, Any] | None
    thresholds: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def alert(self) -> bool:
        return self.status == "red"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _relation(con: duckdb.DuckDBPyConnection, data: str | Path | pd.DataFrame) -> str:
    """Register ``data`` as the view ``current`` (a file is scanned, not loaded)."""
    if isinstance(data, pd.DataFrame):
        con.register("current", data)
        return "current"
    path = Path(data)
    if not path.exists():
        raise DataError(f"Cannot read '{path}': no such file. Check the path.")
    fmt = table_format(path)
    literal = "'" + str(path).replace("'", "''") + "'"
    try:
        if fmt == "parquet":
            con.execute(f"CREATE VIEW current AS SELECT * FROM read_parquet({literal})")
        elif path.suffix.lower() in (".bz2", ".xz"):  # DuckDB reads gzip, not these: through pandas
            con.register("current", read_table(path))
        else:
            delim = sniff_delimiter(path).replace("'", "''")
            con.execute(
                f"CREATE VIEW current AS SELECT * FROM read_csv({literal}, delim='{delim}', header=true, "
                "all_varchar=true)"
            )
        con.execute("SELECT count(*) FROM current LIMIT 1").fetchone()
    except duckdb.Error as exc:
        raise DataError(
            f"Cannot read '{path}' as a {fmt.upper()} table: {str(exc).splitlines()[0]}"
        ) from None
    return "current"


def _event_rows(
    con: duckdb.DuckDBPyConnection, model: TrainedModel, source: Any, as_of: Any, engine: str
) -> dict[str, Any]:
    """Rebuild an event model's features at ``as_of`` (with the outcome when the log covers it)."""
    from propensity.features.labels import build_labels
    from propensity.workflows.events import event_features_at, model_event_spec

    spec = model_event_spec(model)
    label = spec.block.label
    with event_features_at(source, spec, as_of, engine=engine, eligible_only=True) as (ev, rows):
        feats = rows.features
        horizon_end = rows.as_of + pd.Timedelta(days=label.horizon_days)
        labelled = (
            ev.data_end is not None and horizon_end <= ev.data_end and label.kind in ("purchase", "churn")
        )
        if labelled:
            joined = feats.left_join(build_labels(ev.events, rows.as_of, label.horizon_days), "customer_id")
            bought = joined._purchases.fill_null(0) > 0
            outcome = bought if label.kind == "purchase" else ~bought
            feats = joined.select(
                *[joined[c] for c in feats.columns], **{label.column: outcome.cast("int64")}
            )
        table = pa.Table.from_batches(list(ev.engine.batches(feats)))
        info = {
            "source": str(source),
            "kind": "event log",
            "as_of": str(rows.as_of),
            "validation": ev.report.to_dict(),
            "labels": label.column if labelled else None,
            "labels_note": (
                f"outcome in the {label.horizon_days} days after the as-of, read from the log"
                if labelled
                else f"no outcome: the log ends before {horizon_end.date()} (as-of + {label.horizon_days} days)"
            ),
        }
    con.register("current", table)
    return info


def _sample(
    con: duckdb.DuckDBPyConnection, rows: int, sample_rows: int, seed: int, columns: list[str]
) -> pd.DataFrame:
    """The columns scoring needs, of every row or of a seeded Bernoulli sample of about ``sample_rows``."""
    from propensity.monitoring.drift import quote

    select = f"SELECT {', '.join(quote(c) for c in columns)} FROM current"
    if rows <= sample_rows:
        return con.execute(select).df()
    # Bernoulli sampling streams through the rows (a reservoir of the same size takes twice as long).
    share = min(100.0, 100.0 * sample_rows / rows * 1.02)
    frame = con.execute(f"{select} USING SAMPLE {share:.6f}% (bernoulli, {seed})").df()
    return frame.sample(n=sample_rows, random_state=seed) if len(frame) > sample_rows else frame


def _scored(
    model: TrainedModel, frame: pd.DataFrame, labels: str | None
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Probabilities of the sample's valid rows, their labels (if any) and the quarantine count."""
    scores, prepared = model.score_frame(frame, allow_missing=True)
    p = scores["probability"].to_numpy()
    info = {"sampled": len(frame), "scored": len(p), "quarantined": int((~prepared.good).sum())}
    if labels is None:
        return p, None, info
    task = model.manifest.task
    y, unusable = target_labels(
        frame[labels][prepared.good].reset_index(drop=True), task.positive, task.negative
    )
    info["labels_unusable"] = int(unusable.sum())
    keep = ~unusable
    return p, np.column_stack([y[keep], p[keep]]), info


def monitor(
    model: ModelRef,
    data: str | Path | pd.DataFrame,
    *,
    out: str | Path | None = None,
    labels: str | None = None,
    as_of: Any = None,
    thresholds: Thresholds | None = None,
    sample_rows: int = 200_000,
    engine: str = "duckdb",
    seed: int = 0,
    report: bool = True,
    tracking_uri: str | None = None,
) -> MonitorResult:
    """Compare new data with a model's training profile; see the module docstring.

    Parameters
    ----------
    model
        Bundle folder, ``models:/`` URI or a loaded model.
    data
        For a table model: a CSV/Parquet file (or a DataFrame) of feature records. For a model
        trained from events: the event log; features are rebuilt at ``as_of`` (default: the end
        of the data).
    labels
        Column of a table holding the outcome (the model's positive/negative values); enables
        realised performance.
    sample_rows
        Rows scored for score drift and performance (a seeded Bernoulli sample when there are
        more); drift tests always use every row.
    out
        Folder for ``monitor.json`` and ``monitor.html``.

    Raises
    ------
    DataError
        The data cannot be read, lacks the labels column, or has no rows.
    """
    started = time.perf_counter()
    th = thresholds or Thresholds()
    if sample_rows < 1:
        raise ParameterError(f"The 'sample_rows' parameter must be >= 1. Got {sample_rows} instead.")
    m = resolve_model(model, tracking_uri=tracking_uri)
    th = Thresholds(
        **{**th.to_dict(), "reference_rows": m.manifest.provenance.rows_train or th.reference_rows}
    )
    seconds: dict[str, float] = {}
    with duckdb.connect() as con:
        con.execute("SET threads TO 2")
        if m.manifest.events is not None and not isinstance(data, pd.DataFrame):
            if labels is not None:
                raise ParameterError(
                    "--labels is for tables: an event model's outcome is read from the log when the horizon "
                    "after --as-of is inside the data."
                )
            info = _event_rows(con, m, data, as_of, engine)
            labels = info["labels"]
        else:
            if as_of is not None:
                raise ParameterError("--as-of applies to event logs; this model was trained on a table.")
            info = {"source": "DataFrame" if isinstance(data, pd.DataFrame) else str(data), "kind": "table"}
            _relation(con, data)
        columns = [str(r[0]) for r in con.execute("DESCRIBE SELECT * FROM current").fetchall()]
        if labels is not None and labels not in columns:
            raise DataError(
                f"The labels column {labels!r} is not in the data (it has: {', '.join(columns[:20])})."
            )
        tick = time.perf_counter()
        n_rows, drifts = feature_drift(con, "current", m.manifest, th)
        seconds["features"] = round(time.perf_counter() - tick, 3)
        if n_rows == 0:
            raise DataError(f"'{info['source']}' has no rows to monitor.")
        tick = time.perf_counter()
        wanted = {*m.features, m.id_column, labels}
        sample = _sample(con, n_rows, sample_rows, seed, [c for c in columns if c in wanted])
    p, labelled, scored_info = _scored(m, sample, labels)
    score = score_drift(p, m.manifest, th)
    score.update(scored_info)
    performance = (
        realised_performance(labelled[:, 0], labelled[:, 1], m.manifest, th) if labelled is not None else None
    )
    seconds["score"] = round(time.perf_counter() - tick, 3)
    info.update(rows=n_rows, columns=len(columns))
    result = _result(m, info, [d.to_dict() for d in drifts], score, performance, th)
    seconds["total"] = round(time.perf_counter() - started, 3)
    result.seconds = seconds
    if out is not None:
        _write(result, Path(out), report)
    return result


def _result(
    m: TrainedModel,
    info: dict[str, Any],
    features: list[dict[str, Any]],
    score: dict[str, Any],
    performance: dict[str, Any] | None,
    th: Thresholds,
) -> MonitorResult:
    blocks = [(f"feature '{f['name']}'", f) for f in features] + [("score", score)]
    if performance is not None:
        blocks.append(("performance", performance))
    status = max((b["status"] for _, b in blocks), key=STATUS_ORDER.__getitem__, default="green")
    alerts = [f"{what}: {'; '.join(b['reasons'])}" for what, b in blocks if b["status"] == "red"]
    warnings = [f"{what}: {'; '.join(b['reasons'])}" for what, b in blocks if b["status"] == "amber"]
    features.sort(key=lambda f: (-STATUS_ORDER[f["status"]], -(f["psi"] or 0.0)))
    return MonitorResult(
        model={
            "name": m.manifest.name,
            "version": m.version,
            "path": str(m.path) if m.path else None,
            "target": m.manifest.task.target,
            "trained_at": m.manifest.provenance.created_at,
            "rows_train": m.manifest.provenance.rows_train,
            "test": {k: (m.manifest.metrics.get("test") or {}).get(k) for k in ("roc_auc", "pr_auc")},
        },
        data={**info, "monitored_at": datetime.now(UTC).isoformat(timespec="seconds")},
        status="green" if status == "n/a" else status,
        alerts=alerts,
        warnings=warnings,
        features=features,
        score=score,
        performance=performance,
        thresholds=th.to_dict(),
    )


def _write(result: MonitorResult, out: Path, report: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if report:
        from propensity.report.monitor import write_monitor_report

        result.paths["report"] = str(write_monitor_report(result.to_dict(), out / "monitor.html"))
    result.paths["summary"] = str(out / "monitor.json")
    write_json(out / "monitor.json", result.to_dict(), default=str)
