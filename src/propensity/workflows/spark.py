"""Batch scoring on Spark: the chunked loop of :func:`~propensity.workflows.scoring.score_rows`, run on executors.

The model bundle is shipped once: its manifest and scoring files are broadcast as bytes, and
each executor process writes them to a private folder and loads them with the same verified
loader as everywhere else (:func:`propensity.loading.resolve_model`, content hash checked), once
per process. ``mapInPandas`` then hands every partition's Arrow batches to
:func:`~propensity.workflows.scoring.score_rows` — the same loop, the same model code, the same
quarantine rules as on DuckDB; only the row source (the partition's batches) differs.

Each partition returns its scores plus one record of what it counted (rows, bands, quarantine
rows, expected conversions); the driver writes the scores as (partitioned) Parquet and merges the
counts into the same summaries DuckDB scoring writes:

- :func:`score_table_on_spark` — a Parquet file, folder or partitioned dataset of feature records
  (what :func:`~propensity.workflows.scoring.score_file` does on one machine);
- :func:`score_events_on_spark` — an event model's features rebuilt on Spark, scored on the
  executors (what :func:`~propensity.workflows.events.score_events` does).

``score_events(engine="spark")`` and ``propensity score --engine spark`` call them.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from propensity.bundle import MANIFEST_FILE, SCORING_FILES, save_model
from propensity.errors import DataError, ParameterError
from propensity.loading import ModelRef, resolve_model
from propensity.sources import check_output, stem_path
from propensity.workflows.scoring import RowSource, ScoreSummary, check_reasons, score_rows, write_summary

if TYPE_CHECKING:  # pragma: no cover
    from propensity.engines.spark import SparkEngine
    from propensity.pipeline import TrainedModel
    from propensity.workflows.events import EventRows, EventScoreSummary

__all__ = ["PartitionScorer", "ShippedBundle", "score_events_on_spark", "score_table_on_spark"]

#: Columns the Spark reader adds to a table so executors can name the input row and file.
ROW_INDEX, FILE = "_row_index", "_file"
#: The two extra columns of every partition's output: a score row, or a partition's counts.
KIND, PAYLOAD = "_kind", "_payload"


# ------------------------------------------------------------------------------ the bundle


@dataclass(frozen=True)
class ShippedBundle:
    """A bundle's manifest and scoring files as bytes (what is broadcast), and its version."""

    version: str
    files: dict[str, bytes]

    @property
    def digest(self) -> str:
        """sha256 of every shipped byte: the executor cache's key (never trust a version string alone)."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name])
        return h.hexdigest()

    @classmethod
    def of(cls, model: TrainedModel, workdir: Path) -> ShippedBundle:
        """The files of ``model``'s bundle folder (an unsaved model is saved to ``workdir`` first)."""
        folder = model.path
        if folder is None:
            folder = save_model(model, workdir / "bundle")
        return cls(
            model.version, {name: (folder / name).read_bytes() for name in (MANIFEST_FILE, *SCORING_FILES)}
        )


_LOADED: dict[str, TrainedModel] = {}
_LOAD_LOCK = threading.Lock()


def executor_model(bundle: ShippedBundle) -> TrainedModel:
    """The shipped bundle, loaded once per Python process with the verified loader.

    The files are written to a private folder and read by :func:`~propensity.loading.resolve_model`,
    so a bundle altered on the way is refused exactly as a local one would be. One thread per
    executor task: the estimator runs single-threaded (the task is the unit of parallelism).
    """
    key = bundle.digest
    with _LOAD_LOCK:
        model = _LOADED.get(key)
        if model is None:
            folder = Path(tempfile.mkdtemp(prefix=f"propensity-bundle-{bundle.version}-"))
            atexit.register(shutil.rmtree, folder, True)  # the model is in memory once loaded
            for name, data in bundle.files.items():
                (folder / name).write_bytes(data)
            model = resolve_model(folder)
            model.pipeline.n_jobs = 1
            _LOADED[key] = model
        return model


# ------------------------------------------------------------------------------ one partition


class _Collected:
    """The loop's writer on an executor: the chunk's scores, kept to be returned to Spark."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def write(self, frame: pd.DataFrame) -> None:
        self.frames.append(frame)


class PartitionRows(RowSource):
    """The batch of a partition being scored; rows are named by their place in the input file.

    ``inner`` is the driver's row source (e.g. :class:`~propensity.workflows.events.EventRows`,
    shipped without its engine): its ``annotate`` and ``observe`` run here, so the scores get the
    same columns and counts as on one machine.
    """

    def __init__(self, inner: RowSource | None) -> None:
        self.chunk = pd.DataFrame()
        self.inner = inner

    def chunks(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        yield self.chunk

    def annotate(self, chunk: pd.DataFrame, scores: pd.DataFrame, good: np.ndarray) -> pd.DataFrame:
        if "row" in scores.columns and ROW_INDEX in chunk.columns:  # no id column: the file's row number
            scores["row"] = chunk[ROW_INDEX].to_numpy()[good] + 1
        return self.inner.annotate(chunk, scores, good) if self.inner is not None else scores

    def observe(self, scores: pd.DataFrame) -> None:
        if self.inner is not None:
            self.inner.observe(scores)

    def counts(self) -> dict[str, Any]:
        return self.inner.counts() if self.inner is not None else {}


@dataclass
class PartitionScorer:
    """The function ``mapInPandas`` runs on every partition (pickled once, with the broadcast handle).

    For each Arrow batch it runs :func:`~propensity.workflows.scoring.score_rows` and yields the
    scores (``_kind = "score"``); at the end one row ``_kind = "counts"`` whose ``_payload`` is
    the partition's counts and quarantine records as JSON.
    """

    bundle: Any  # a Broadcast of ShippedBundle on Spark; the bundle itself when run in-process
    scored_at: str
    reasons: int = 0
    allow_missing: bool = False
    inner: RowSource | None = None
    columns: Sequence[str] = field(default_factory=list)

    def _bundle(self) -> ShippedBundle:
        return self.bundle if isinstance(self.bundle, ShippedBundle) else self.bundle.value

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = executor_model(self._bundle())
        source = PartitionRows(self.inner)
        counts = _Counts()
        for chunk in batches:
            if chunk.empty:
                continue
            chunk = chunk.reset_index(drop=True)
            source.chunk, source.total = chunk, len(chunk)
            writer = _Collected()
            tally = score_rows(
                model,
                source,
                writer,
                batch_rows=len(chunk),
                reasons=self.reasons,
                allow_missing=self.allow_missing,
                scored_at=self.scored_at,
            )
            counts.add(tally, chunk)
            for frame in writer.frames:
                yield self._output(frame)
        counts.source = source.counts()
        yield pd.DataFrame(
            {**{c: [None] for c in self.columns}, KIND: ["counts"], PAYLOAD: [counts.to_json()]}
        )

    def _output(self, scores: pd.DataFrame) -> pd.DataFrame:
        out = {c: _plain(scores[c]) for c in self.columns}
        return pd.DataFrame({**out, KIND: "score", PAYLOAD: None}, index=scores.index)


def _plain(column: pd.Series) -> pd.Series:
    """A Categorical as its values (Spark's Arrow conversion takes plain columns)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(column.cat.categories.dtype)
    return column


@dataclass
class _Counts:
    """What one partition counted, merged on the driver (sums, and quarantine rows)."""

    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    contacted: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    unknown_categories: dict[str, int] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    #: What the row source counted (:meth:`RowSource.counts`), summed over partitions.
    source: dict[str, Any] = field(default_factory=dict)

    def _add_sums(self, other: Any) -> None:
        """The counters summed (``other``: a chunk's ScoringTally, or another partition's counts)."""
        self.rows_in += other.rows_in
        self.rows_scored += other.rows_scored
        self.rows_quarantined += other.rows_quarantined
        self.contacted += other.contacted
        for key, n in other.bands.items():
            self.bands[key] = self.bands.get(key, 0) + n
        for key, n in other.unknown_categories.items():
            self.unknown_categories[key] = self.unknown_categories.get(key, 0) + n

    def add(self, tally: Any, chunk: pd.DataFrame) -> None:
        self._add_sums(tally)
        self.missing_optional = list(tally.missing_optional)
        bad = tally.quarantine.to_frame()
        if not bad.empty:
            at = bad["row"].to_numpy() - 1  # chunk positions (the loop numbered this chunk from 1)
            if ROW_INDEX in chunk.columns:
                bad["row"] = chunk[ROW_INDEX].to_numpy()[at] + 1
            if FILE in chunk.columns:
                bad.insert(0, "file", chunk[FILE].to_numpy()[at])
            self.quarantine.extend(bad.to_dict("records"))

    def merge(self, other: _Counts) -> None:
        self._add_sums(other)
        self.missing_optional = sorted(set(self.missing_optional) | set(other.missing_optional))
        self.quarantine.extend(other.quarantine)
        for key, value in other.source.items():
            self.source[key] = self.source.get(key, 0) + value

    def to_json(self) -> str:
        return json.dumps(self.__dict__, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> _Counts:
        return cls(**json.loads(text))

    def quarantine_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.quarantine)
        if frame.empty:
            return frame
        keys = ["file", "row", "column"] if "file" in frame.columns else ["row", "column"]
        return frame.sort_values(keys, kind="stable").reset_index(drop=True)

    def quarantine_reasons(self) -> dict[str, int]:
        """Rows per reason (a row with two problems counts under both), as :meth:`Quarantine.counts_by_reason`."""
        frame = self.quarantine_frame()
        if frame.empty:
            return {}
        keys = ["file", "row", "reason"] if "file" in frame.columns else ["row", "reason"]
        counts = frame.drop_duplicates(keys)["reason"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# ------------------------------------------------------------------------------ the driver


def _output_schema(
    model: TrainedModel, input_schema: Any, id_column: str | None, reasons: int, events: bool
) -> Any:
    """The Spark schema of the scores (what :func:`score_rows` writes), plus ``_kind`` and ``_payload``."""
    from pyspark.sql import types as T

    fields = []
    if id_column is not None:
        fields.append(T.StructField(id_column, input_schema[id_column].dataType))
    else:
        fields.append(T.StructField("row", T.LongType()))
    fields += [
        T.StructField("probability", T.DoubleType()),
        T.StructField("decision", T.BooleanType()),
        T.StructField("band", T.StringType()),
    ]
    if events:
        fields += [T.StructField("eligible", T.BooleanType()), T.StructField("as_of", T.TimestampType())]
    fields += [T.StructField("model_version", T.StringType()), T.StructField("scored_at", T.StringType())]
    fields += [T.StructField(f"reason_{i + 1}", T.StringType()) for i in range(reasons)]
    fields += [T.StructField(KIND, T.StringType()), T.StructField(PAYLOAD, T.StringType())]
    return T.StructType(fields)


def check_spark_output(out: Path, inputs: Sequence[Any], partition_by: Sequence[str]) -> None:
    """Spark writes a folder of Parquet part files: refuse other outputs before any work.

    Raises
    ------
    ParameterError
        A CSV output, or a partition column that scoring does not write.
    DataError
        ``out`` is a file, or a folder holding something other than an earlier Spark output.
    """
    if out.suffix.lower() not in ("", ".parquet"):
        raise ParameterError(
            f"The spark engine writes Parquet (a folder of part files); got --out '{out}'. Use a path ending in "
            ".parquet or without a suffix, or score with --engine duckdb for a CSV."
        )
    allowed = ("band", "decision", "eligible", "model_version")
    for col in partition_by:
        if col not in allowed:
            raise ParameterError(
                f"The 'partition_by' parameter must name columns among {', '.join(allowed)}. Got {col!r} instead."
            )
    check_output(out, inputs=list(inputs), folder=True)
    if out.is_dir() and any(out.iterdir()) and not (out / "_SUCCESS").exists():
        raise DataError(
            f"The output folder '{out}' exists and is not an earlier Spark output (it has no _SUCCESS file); "
            "Spark would replace everything in it. Choose a new or empty folder."
        )


def _run(
    engine: SparkEngine,
    frame: Any,
    model: TrainedModel,
    out: Path,
    *,
    id_column: str | None,
    reasons: int,
    allow_missing: bool,
    inner: RowSource | None,
    partition_by: Sequence[str],
) -> _Counts:
    """Score a PySpark DataFrame on the executors, write the scores to ``out``; return the merged counts."""
    from pyspark import StorageLevel

    shipped = ShippedBundle.of(model, engine.workdir())
    broadcast = engine.session.sparkContext.broadcast(shipped)
    schema = _output_schema(model, frame.schema, id_column, reasons, inner is not None)
    scorer = PartitionScorer(
        bundle=broadcast,
        scored_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reasons=reasons,
        allow_missing=allow_missing,
        inner=inner,
        columns=[f.name for f in schema.fields if f.name not in (KIND, PAYLOAD)],
    )
    result = frame.mapInPandas(scorer, schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        scores = result.filter(result[KIND] == "score").drop(KIND, PAYLOAD)
        writer = scores.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if out.exists():
            shutil.rmtree(out)
        writer.parquet(str(out))
        counts = _Counts()
        for row in result.filter(result[KIND] == "counts").select(PAYLOAD).collect():
            counts.merge(_Counts.from_json(row[0]))
    finally:
        result.unpersist()
        broadcast.destroy()
    return counts


def score_table_on_spark(
    model: ModelRef,
    input: str | Path,
    out: str | Path,
    *,
    allow_missing: bool = False,
    quarantine_path: str | Path | None = None,
    reasons: int = 0,
    partition_by: Sequence[str] = (),
    engine: SparkEngine | None = None,
) -> ScoreSummary:
    """Score a Parquet file, folder or partitioned dataset of feature records on Spark.

    The same columns, quarantine and summary as :func:`~propensity.workflows.scoring.score_file`,
    except that the output is a folder of Parquet part files (``partition_by`` columns, e.g.
    ``["band"]``, become ``band=high/`` sub-folders) in no particular row order, and a folder
    input's quarantine has a ``file`` column (rows are numbered within their file). Without an id
    column, ``row`` is the row's number in its file.

    Raises
    ------
    SchemaError
        If the input lacks a required column (named in the message).
    """
    from propensity.engines.spark import SparkEngine, parquet_input

    check_reasons(reasons, "score_table_on_spark")
    input, out = parquet_input(input), Path(out)
    check_spark_output(out, [input], partition_by)
    trained = resolve_model(model)
    quarantine_path = Path(quarantine_path) if quarantine_path else stem_path(out, ".quarantine.csv")
    start = time.perf_counter()
    own = engine is None
    spark = engine or SparkEngine()
    try:
        frame = spark.read_parquet_dataframe(input)
        missing, _, _ = trained.check_columns(frame.columns)
        if missing and not allow_missing:  # the same refusal as on DuckDB, before any task starts
            trained.prepare(pd.DataFrame(columns=frame.columns))
        id_column = trained.id_column if trained.id_column in frame.columns else None
        wanted = [c for c in trained.features if c in frame.columns]
        keep = [*([id_column] if id_column else []), *wanted, ROW_INDEX, *([FILE] if input.is_dir() else [])]
        counts = _run(
            spark,
            frame.select(*keep),
            trained,
            out,
            id_column=id_column,
            reasons=reasons,
            allow_missing=allow_missing,
            inner=None,
            partition_by=partition_by,
        )
    finally:
        if own:
            spark.close()
    summary = ScoreSummary(
        input=str(input),
        output=str(out),
        quarantine=None,
        rows_in=counts.rows_in,
        rows_scored=counts.rows_scored,
        rows_quarantined=counts.rows_quarantined,
        contacted=counts.contacted,
        bands=counts.bands,
        quarantine_reasons=counts.quarantine_reasons(),
        unknown_categories=counts.unknown_categories,
        missing_optional=counts.missing_optional,
        model_version=trained.version,
        threshold=trained.threshold,
    )
    if counts.rows_quarantined:
        quarantine_path.parent.mkdir(parents=True, exist_ok=True)
        counts.quarantine_frame().to_csv(quarantine_path, index=False)
        summary.quarantine = str(quarantine_path)
    summary.seconds = round(time.perf_counter() - start, 3)
    summary.rows_per_second = round(summary.rows_in / summary.seconds, 1) if summary.seconds else 0.0
    write_summary(summary, out)
    return summary


def score_events_on_spark(
    trained: TrainedModel,
    summary: EventScoreSummary,
    rows: EventRows,
    engine: SparkEngine,
    out: Path,
    *,
    reasons: int = 0,
    partition_by: Sequence[str] = (),
) -> None:
    """Score an event model's features (``rows``, defined on ``engine``) on the executors.

    Fills ``summary`` with the counts :func:`~propensity.workflows.events.score_events` reports;
    called by it for ``engine="spark"``, after the log was validated and the features defined.

    Raises
    ------
    DataError
        No customer to score.
    """
    frame = engine.dataframe(rows.features)
    as_of = rows.as_of
    # Executors need the source's annotate/observe, not its engine or expression.
    shipped = dataclasses.replace(rows, engine=None, features=None)  # type: ignore[arg-type]
    counts = _run(
        engine,
        frame,
        trained,
        out,
        id_column="customer_id",
        reasons=reasons,
        allow_missing=False,
        inner=shipped,
        partition_by=partition_by,
    )
    if counts.rows_scored == 0:
        shutil.rmtree(out, ignore_errors=True)
        raise DataError(f"No customer to score at {as_of} (eligible only: {summary.eligible_only}).")
    seen = counts.source
    summary.customers, summary.scored = counts.rows_in, counts.rows_scored
    summary.contacted, summary.bands = counts.contacted, counts.bands
    summary.eligible = int(seen.get("eligible", 0))
    summary.contacted_eligible = int(seen.get("contacted_eligible", 0))
    summary.expected_conversions = round(seen.get("expected_all", 0.0), 2)
    summary.expected_conversions_contacted = round(seen.get("expected_contacted", 0.0), 2)
    summary.expected_conversions_eligible = round(seen.get("expected_contacted_eligible", 0.0), 2)
    summary.expected_conversions_all_eligible = round(seen.get("expected_eligible", 0.0), 2)
