"""Batch scoring: one chunked loop, whatever the rows come from.

:func:`score_rows` is the loop: chunks of rows in, scores (and reason codes) out through a
:class:`~propensity.sources.TableWriter`, every bad row counted in one quarantine, memory
bounded by the chunk. What varies is the :class:`RowSource`:

- :class:`TableRows` — a CSV/Parquet file of feature records (:func:`score_file`);
- :class:`~propensity.workflows.events.EventRows` — every customer's features rebuilt from an
  event log at an as-of, on any engine (:func:`~propensity.workflows.events.score_events`).

A Spark or stream scorer adds a source, not a loop: on Spark each partition runs this loop on
its executor (:mod:`propensity.workflows.spark`).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from propensity.errors import ParameterError, PropensityWarning
from propensity.loading import ModelRef, resolve_model
from propensity.pipeline import (
    BAND_NAMES,
    FAST_PREDICT_ROWS,
    PreparedInput,
    TrainedModel,
    band_codes,
    preload_batch_kernel,
)
from propensity.schema import Quarantine
from propensity.sources import (
    TableWriter,
    check_output,
    encoding_label,
    iter_table,
    prefetched,
    stem_path,
    table_format,
    write_json,
)

__all__ = [
    "ChunkWriter",
    "RowSource",
    "ScoreSummary",
    "ScoringTally",
    "TableRows",
    "check_reasons",
    "score_file",
    "score_rows",
    "warn_if_explaining_is_slow",
    "write_summary",
]

ProgressFn = Callable[[int, int], None]


# ------------------------------------------------------------------------------ sources


class RowSource:
    """Where the rows to score come from; the loop in :func:`score_rows` is the same for all.

    Subclasses yield chunks of input records (``chunks``) and may add their own columns to the
    scores (``annotate``) and keep their own counts (``observe``).
    """

    #: Rows to expect, when known before reading (sizes the kernel warm-up and the reason method).
    total: int | None = None

    def chunks(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def annotate(self, chunk: pd.DataFrame, scores: pd.DataFrame, good: np.ndarray) -> pd.DataFrame:
        """Columns the source adds to the scores of ``chunk``'s valid rows (``good``)."""
        return scores

    def observe(self, scores: pd.DataFrame) -> None:
        """Count what this source reports about a written chunk of scores."""

    def counts(self) -> dict[str, Any]:
        """What :meth:`observe` counted, as JSON-able numbers (summed over Spark partitions)."""
        return {}


@dataclass
class TableRows(RowSource):
    """A CSV or Parquet file of feature records, read in chunks with the next one prefetched."""

    path: Path
    model: TrainedModel

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.total = parquet_rows(self.path)

    def chunks(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        model = self.model
        categorical = [f.name for f in model.manifest.input_schema.features if f.role == "categorical"]
        wanted = [*model.features, *([model.id_column] if model.id_column else [])]
        return prefetched(
            iter_table(
                self.path,
                batch_rows=batch_rows,
                columns=wanted,
                string_columns=[c for c in model.features if c not in categorical],
                dictionary_columns=categorical,
            )
        )


def parquet_rows(path: Path) -> int | None:
    """Rows in a Parquet file (cheap, from metadata); ``None`` for text files or an unreadable file."""
    try:
        if table_format(path) != "parquet":
            return None
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # an unreadable input is reported by the reader, with its own message
        return None


# ------------------------------------------------------------------------------ the loop


class ChunkWriter(Protocol):
    """Where :func:`score_rows` puts each chunk of scores (a :class:`~propensity.sources.TableWriter`,
    or a list kept in memory on a Spark executor)."""

    def write(self, frame: pd.DataFrame) -> None: ...


@dataclass
class ScoringTally:
    """What :func:`score_rows` counted over every chunk."""

    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    contacted: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    unknown_categories: dict[str, int] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)
    quarantine: Quarantine = field(default_factory=lambda: Quarantine(0))

    def add(self, rows: int, scores: pd.DataFrame, prepared: PreparedInput) -> None:
        self.rows_in += rows
        self.rows_scored += len(scores)
        self.rows_quarantined += prepared.quarantine.n_bad_rows
        self.contacted += int(scores["decision"].sum())
        self.quarantine.extend(prepared.quarantine)
        for name, count in scores["band"].value_counts().items():
            if count:
                self.bands[str(name)] = self.bands.get(str(name), 0) + int(count)
        for col, n in prepared.unknown_categories.items():
            self.unknown_categories[col] = self.unknown_categories.get(col, 0) + n
        self.missing_optional = prepared.missing_optional


def score_rows(
    model: TrainedModel,
    source: RowSource,
    writer: ChunkWriter,
    *,
    batch_rows: int = 200_000,
    reasons: int = 0,
    allow_missing: bool = False,
    scored_at: str | None = None,
    progress: ProgressFn | None = None,
) -> ScoringTally:
    """Score every chunk of ``source`` with ``model`` and write the scores; return the counts.

    Bad rows are quarantined (``tally.quarantine``), never dropped silently; ``reasons=K`` adds
    the K strongest reasons per row, explained by one method for the whole job (chosen by its
    size, see :func:`propensity.explain.forest_path_attribution`).
    """
    scored_at = scored_at or datetime.now(UTC).isoformat(timespec="seconds")
    tally = ScoringTally()
    if not source.total or source.total >= FAST_PREDICT_ROWS:  # build the tree walker while reading
        threading.Thread(target=model.pipeline.warm_up, name="propensity-warm-up", daemon=True).start()
    explain = _ReasonWriter(model, reasons, source.total) if reasons else None
    for chunk in source.chunks(batch_rows):
        scores, prepared = model.score_frame(
            chunk, row_offset=tally.rows_in, allow_missing=allow_missing, scored_at=scored_at
        )
        scores = source.annotate(chunk, scores, prepared.good)
        if explain is not None:
            scores = pd.concat([scores, explain(prepared, len(chunk))], axis=1)
        compact = _few_valued_as_categorical(scores, model)
        writer.write(compact)
        tally.add(len(chunk), compact, prepared)
        source.observe(compact)
        if progress is not None:
            progress(tally.rows_in, source.total or 0)
    return tally


class _ReasonWriter:
    """Reason columns for each chunk; the method (exact or path attribution) is decided once."""

    def __init__(self, model: TrainedModel, reasons: int, total: int | None) -> None:
        self.model, self.reasons, self.total = model, reasons, total
        self.forest_paths: bool | None = None

    def __call__(self, prepared: PreparedInput, rows: int) -> pd.DataFrame:
        from propensity.explain import FAST_TREESHAP_ROWS, forest_path_attribution, reason_columns

        good = prepared.features if prepared.good.all() else prepared.features[prepared.good]
        if self.forest_paths is None:  # the first chunk: one method for the whole job
            size = self.total or rows
            warn_if_explaining_is_slow(self.model, good, size)
            self.forest_paths = size >= FAST_TREESHAP_ROWS
        with forest_path_attribution(self.forest_paths):
            return reason_columns(self.model, good, self.reasons)


def _few_valued_as_categorical(scores: pd.DataFrame, model: TrainedModel) -> pd.DataFrame:
    """Band, model version and time as ``Categorical``: Arrow converts three values, not a string per row."""
    n = len(scores)
    out = scores.copy(deep=False)
    codes = band_codes(scores["probability"].to_numpy(), model.manifest.policy)
    out["band"] = pd.Categorical.from_codes(codes, categories=pd.Index(BAND_NAMES))
    for col in ("model_version", "scored_at"):
        if n:
            out[col] = pd.Categorical.from_codes(
                np.zeros(n, dtype=np.int8), categories=pd.Index([str(scores[col].iloc[0])])
            )
    return out


def warn_if_explaining_is_slow(model: TrainedModel, typed: pd.DataFrame, rows: int) -> None:
    """Time the explanation of a few rows; warn up front when the whole job would take minutes.

    Exact SHAP is fast for boosted trees and linear models (>10,000 rows/s) but can be very slow
    for deep random-forest trees; a user should learn that before the run, not hours into it.
    """
    from propensity.explain import FAST_TREESHAP_ROWS, explain_features

    sample = typed.head(10)
    if len(sample) == 0:
        return
    if "random_forest" in model.pipeline.families and rows >= FAST_TREESHAP_ROWS:
        warnings.warn(
            f"Reasons of this random forest for batches of {FAST_TREESHAP_ROWS:,}+ rows come from path "
            "attribution (Saabas), a fast approximation of SHAP (exact SHAP on deep forest trees runs at tens "
            "of rows/s); it usually names the same strongest reason.",
            PropensityWarning,
            stacklevel=4,
        )
        return
    start = time.perf_counter()
    explain_features(model, sample)
    rate = len(sample) / max(time.perf_counter() - start, 1e-9)
    seconds = rows / rate
    if seconds > 120:
        warnings.warn(
            f"Explaining this {model.manifest.winner} model runs at about {rate:,.0f} rows/s, so reasons for "
            f"{rows:,} rows will take about {seconds / 60:,.0f} min. Boosted-tree and linear models explain "
            "over 10,000 rows/s: retrain with --candidates lightgbm,logistic_regression, or score without --reasons.",
            PropensityWarning,
            stacklevel=4,
        )


def check_reasons(reasons: Any, where: str) -> int:
    """``reasons`` as validated at every scoring entry point: an int in [0, 20]."""
    if isinstance(reasons, bool) or not isinstance(reasons, int) or not 0 <= reasons <= 20:
        raise ParameterError(
            f"The 'reasons' parameter of {where} must be an int in [0, 20]. Got {reasons!r} instead."
        )
    return reasons


def write_summary(summary: Any, out: Path) -> None:
    write_json(stem_path(out, ".summary.json"), summary.to_dict(), default=str)


# ------------------------------------------------------------------------------ tables


@dataclass
class ScoreSummary:
    """What a batch-scoring run did."""

    input: str
    output: str
    quarantine: str | None
    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    contacted: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    unknown_categories: dict[str, int] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)
    model_version: str = ""
    threshold: float = 0.0
    seconds: float = 0.0
    rows_per_second: float = 0.0
    #: How a text input was decoded, e.g. ``"cp1252 (detected)"``; ``None`` for Parquet.
    encoding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_file(
    model: ModelRef,
    input: str | Path,
    out: str | Path,
    *,
    batch_rows: int = 200_000,
    allow_missing: bool = False,
    quarantine_path: str | Path | None = None,
    reasons: int = 0,
    progress: ProgressFn | None = None,
) -> ScoreSummary:
    """Score a CSV/Parquet file chunk by chunk (memory stays flat) and write CSV/Parquet.

    Output columns: the id column (or ``row``), ``probability``, ``decision``, ``band``,
    ``model_version``, ``scored_at``; with ``reasons=K`` also ``reason_1`` … ``reason_K``, the
    K strongest contributions as text (see :func:`propensity.explain.reason_codes`). Invalid rows
    go to ``quarantine_path`` (default: ``<out>.quarantine.csv``) with row, column, value and
    reason; a JSON summary is written to ``<out>.summary.json``.

    :func:`propensity.workflows.spark.score_table_on_spark` runs this same loop on Spark's
    executors, for Parquet files, folders and partitioned datasets.

    Raises
    ------
    SchemaError
        If the input lacks a required column (named in the message).
    """
    check_reasons(reasons, "score_file")
    input, out = Path(input), Path(out)
    table_format(out)  # fail on an unsupported output suffix before doing any work
    check_output(out, inputs=[input])
    counted = parquet_rows(input)
    if not counted or counted >= FAST_PREDICT_ROWS:  # the tree kernel loads while the bundle does
        preload_batch_kernel()
    trained = resolve_model(model)
    quarantine_path = Path(quarantine_path) if quarantine_path else stem_path(out, ".quarantine.csv")
    start = time.perf_counter()
    with TableWriter(out) as writer:
        tally = score_rows(
            trained,
            TableRows(input, trained),
            writer,
            batch_rows=batch_rows,
            reasons=reasons,
            allow_missing=allow_missing,
            progress=progress,
        )
    summary = ScoreSummary(
        input=str(input),
        output=str(out),
        quarantine=None,
        rows_in=tally.rows_in,
        rows_scored=tally.rows_scored,
        rows_quarantined=tally.rows_quarantined,
        contacted=tally.contacted,
        bands=tally.bands,
        quarantine_reasons=tally.quarantine.counts_by_reason(),
        unknown_categories=tally.unknown_categories,
        missing_optional=tally.missing_optional,
        model_version=trained.version,
        threshold=trained.threshold,
        encoding=encoding_label(input) if table_format(input) == "csv" else None,
    )
    if tally.rows_quarantined:
        tally.quarantine.write(quarantine_path)
        summary.quarantine = str(quarantine_path)
    summary.seconds = round(time.perf_counter() - start, 3)
    summary.rows_per_second = round(summary.rows_in / summary.seconds, 1) if summary.seconds else 0.0
    write_summary(summary, out)
    return summary
