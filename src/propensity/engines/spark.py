"""Apache Spark through Ibis: local mode unless ``PROPENSITY_SPARK_MASTER`` names a cluster.

PySpark is imported when the first session starts, never at import time.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from propensity.engines.base import Engine, builtin_function, existing_input, import_ibis
from propensity.errors import DataError, ParameterError
from propensity.sources import sniff_delimiter, table_columns, table_format, transcoded_utf8

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["SparkEngine", "java_pattern", "parquet_input", "spark_scratch", "spark_session"]

_SPARK_LOCK = threading.Lock()
_SPARK: Any = None


def spark_session(master: str | None = None) -> Any:
    """The process-wide Spark session (created once; local mode unless ``master`` is given).

    Sets ``SPARK_LOCAL_IP=127.0.0.1`` when unset (no network needed), the session time zone to
    UTC, and the executors' Python to this interpreter (``PYSPARK_PYTHON``, unless set) so that
    scoring on executors imports the same propensity. ``master``, the shuffle partitions and
    the driver memory come from the settings (``PROPENSITY_SPARK_MASTER``, default ``local[2]``;
    ``PROPENSITY_SPARK_PARTITIONS``; ``PROPENSITY_SPARK_DRIVER_MEMORY``).
    """
    global _SPARK
    with _SPARK_LOCK:
        if _SPARK is not None:
            return _SPARK
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ParameterError("The spark engine needs PySpark: pip install 'propensity[spark]'.") from exc
        from propensity.config import get_settings

        settings = get_settings()
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Executors start "python3" from PATH unless told: that may lack pandas, or be another propensity.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        master = master or settings.spark_master
        builder = (
            SparkSession.builder.master(master)
            .appName("propensity")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(settings.spark_partitions))
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.driver.memory", settings.spark_driver_memory)
        )
        _SPARK = builder.getOrCreate()
        _SPARK.sparkContext.setLogLevel("ERROR")
        atexit.register(_stop_spark)
        return _SPARK


def spark_scratch() -> Path | None:
    """The folder for the spark engine's intermediate files (``PROPENSITY_SPARK_WORKDIR``), created if
    missing, or ``None`` for the system's temporary folder.

    Executors write these files and the driver reads them back (materialised tables, the part
    files behind every written output, scores read back for analytics), so on a cluster of
    several machines it must be a folder that every node and the driver share.
    """
    from propensity.config import get_settings

    folder = get_settings().spark_workdir
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stop_spark() -> None:
    global _SPARK
    if _SPARK is not None:
        try:
            _SPARK.stop()
        finally:
            _SPARK = None


class SparkEngine(Engine):
    """Apache Spark through Ibis (``spark.master`` from ``PROPENSITY_SPARK_MASTER``, else ``local[2]``).

    Besides Ibis expressions, it hands out PySpark DataFrames (:meth:`dataframe`,
    :meth:`read_parquet_dataframe`) for distributed work such as scoring with ``mapInPandas``
    (:mod:`propensity.workflows.spark`).
    """

    name = "spark"

    def __init__(self, master: str | None = None) -> None:
        super().__init__()
        ibis = import_ibis()
        self._spark = spark_session(master)
        self._con = ibis.pyspark.connect(self._spark)
        self._n = 0

    @property
    def con(self) -> Any:
        return self._con

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"propensity_{stem}_{id(self)}_{self._n}"

    def _scratch(self) -> Path | None:
        return spark_scratch()

    def read(self, path: str | Path) -> ir.Table:
        path = existing_input(path)
        if path.is_dir() or table_format(path) == "parquet":  # Spark reads folders and partitions itself
            return self._con.read_parquet(str(path), table_name=self._name("parquet"))
        text = transcoded_utf8(path, self.workdir())  # Spark reads UTF-8 unless told otherwise
        return self._con.read_csv(
            str(text), table_name=self._name("csv"), header=True, inferSchema=False, sep=sniff_delimiter(path)
        )

    def from_frame(self, frame: pd.DataFrame) -> ir.Table:
        # Through Parquet: Spark infers no type for all-missing object columns, Arrow does (as text);
        # Spark reads timestamps in micro-, not nanoseconds (pandas' unit).
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        path = self.workdir() / f"{self._name('frame')}.parquet"
        pq.write_table(table.cast(pa.schema(fields)), path, coerce_timestamps="us")
        return self._con.read_parquet(str(path), table_name=self._name("frame"))

    def materialize(self, expr: ir.Table, name: str, *, memory: bool = False) -> ir.Table:
        path = self.workdir() / f"{self._name(name)}.parquet"
        self._con.to_parquet(expr, str(path))
        return self._con.read_parquet(str(path), table_name=self._name(name))

    def batches(self, expr: ir.Table, rows: int = 500_000) -> Iterator[pa.RecordBatch]:
        """``expr``'s rows in Arrow batches, written by the executors and read back part by part.

        Collecting through the driver (``toArrow``) holds every task's result in the block
        manager at once and fails for large tables (a million customers' features); the
        executors write Parquet part files to the work folder instead, read here one row group
        at a time in part order (so an ordered ``expr`` stays ordered) and removed afterwards.
        Batches have ``expr``'s schema (Spark's timestamps are cast back to microseconds).
        """
        import shutil

        schema = expr.schema().to_pyarrow()
        parts = self.workdir() / self._name("batches")
        self.dataframe(expr).write.parquet(str(parts))
        try:
            for part in sorted(parts.glob("part-*.parquet")):
                for batch in pq.ParquetFile(part).iter_batches(batch_size=rows):
                    if batch.num_rows:
                        yield _conform(batch, schema)
        finally:
            shutil.rmtree(parts, ignore_errors=True)

    @property
    def session(self) -> Any:
        """The PySpark ``SparkSession`` (for work Ibis does not express, e.g. ``mapInPandas``)."""
        return self._spark

    def dataframe(self, expr: ir.Table) -> Any:
        """``expr`` as a lazy PySpark DataFrame (nothing is computed or collected)."""
        self._con._run_pre_execute_hooks(expr)
        return self._spark.sql(self._con.compile(expr))

    def read_parquet_dataframe(self, path: str | Path) -> Any:
        """A Parquet file, folder of part files or partitioned dataset as a lazy PySpark DataFrame.

        Adds ``_row_index`` (the 0-based row within its file) and ``_file`` (the file's name), so
        that work done on executors can still name the input row.

        Raises
        ------
        DataError
            The path does not exist, or is not Parquet (with what to do).
        """
        from pyspark.errors import PySparkException

        path = parquet_input(path)
        try:
            frame = self._spark.read.parquet(str(path))
        except PySparkException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"Cannot read '{path}' as Parquet with Spark: {first}. Expected a Parquet file or a folder of "
                "Parquet part files."
            ) from exc
        from pyspark.sql import functions as F

        return frame.select(
            "*",
            F.col("_metadata.row_index").alias("_row_index"),
            F.col("_metadata.file_name").alias("_file"),
        )

    def parse_timestamp(self, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        import ibis.expr.datatypes as dt

        if fmt:
            return _spark_to_timestamp()(text, java_pattern(fmt)).cast(dt.Timestamp())
        return text.try_cast(dt.Timestamp()).cast(dt.Timestamp())

    def _zone_to_utc(self, ts: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        return _spark_to_utc()(ts, zone)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``schema``'s field types (Spark writes INT96/nanosecond timestamps)."""
    if batch.schema.equals(schema):
        return batch
    return pa.RecordBatch.from_arrays(
        [col.cast(field.type) for col, field in zip(batch.columns, schema, strict=True)], schema=schema
    )


def parquet_input(path: str | Path) -> Path:
    """``path`` if it is a Parquet file or a folder (checked before a Spark session is started).

    Raises
    ------
    DataError
        Missing, or a file that is not Parquet (with what to do).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"File not found: '{path}'. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_file():
        table_columns(path)  # refuses binary files, non-Parquet .parquet, duplicate names
        if table_format(path) != "parquet":
            raise DataError(
                f"'{path}' is not Parquet: the spark engine reads Parquet files and folders. Convert it "
                "(e.g. pandas.read_csv(...).to_parquet(...)), or score it with --engine duckdb."
            )
    return path


def _spark_to_timestamp() -> Any:
    """Spark's try_to_timestamp(text, pattern)."""
    import ibis.expr.datatypes as dt

    return builtin_function("try_to_timestamp", (dt.string, dt.string), dt.Timestamp())


def _spark_to_utc() -> Any:
    """Spark's to_utc_timestamp(local time, zone)."""
    import ibis.expr.datatypes as dt

    return builtin_function("to_utc_timestamp", (dt.Timestamp(), dt.string), dt.Timestamp())


_JAVA = {
    "%Y": "yyyy",
    "%y": "yy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%p": "a",
    "%b": "MMM",
    "%B": "MMMM",
    "%z": "XXX",
    "%%": "%",
}


def java_pattern(fmt: str) -> str:
    """Translate a strftime pattern to Spark's datetime pattern (the common directives)."""
    out, i = [], 0
    while i < len(fmt):
        two = fmt[i : i + 2]
        if two in _JAVA:
            out.append(_JAVA[two])
            i += 2
        elif fmt[i] == "%":
            raise ParameterError(f"timestamp_format directive {two!r} is not supported on the spark engine.")
        elif fmt[i].isalpha():
            out.append(f"'{fmt[i]}'")
            i += 1
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)
