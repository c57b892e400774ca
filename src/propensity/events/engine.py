"""Engines that execute the event definitions: DuckDB in-process (default) and Spark.

Every event stage (validation, sessions, features, labels) is one Ibis expression; an
engine only supplies the connection and the few operations Ibis does not express the same
way on both backends (reading files, parsing timestamps with a format, converting a local
time zone to UTC, writing results). Dispatch is by name, like skrub's ``_dispatch``::

    engine = get_engine("duckdb")   # or "spark" (local mode unless spark.master is configured)

Both run with their session time zone set to UTC, which is what makes timestamp casts agree.
Day arithmetic is done in epoch seconds (``floor(epoch)``) because the engines' ``delta(unit="day")``
differ (DuckDB counts midnights crossed, Spark whole 24-hour periods).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from propensity.errors import DataError, ParameterError
from propensity.sources import parquet_writer, table_format

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["ENGINES", "DuckDBEngine", "Engine", "SparkEngine", "get_engine"]

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "spark")


def _ibis() -> Any:
    try:
        import ibis
    except ImportError as exc:  # pragma: no cover - the events extra is part of `all`
        raise ParameterError("Event logs need Ibis: pip install 'propensity[events]'.") from exc
    return ibis


class Engine:
    """Base class: an Ibis connection plus engine-specific helpers. Use as a context manager."""

    name = "engine"

    def __init__(self) -> None:
        self._tmp: Path | None = None

    # -- connection -------------------------------------------------------------------
    @property
    def con(self) -> Any:
        raise NotImplementedError

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def workdir(self) -> Path:
        """A private temporary folder, removed by :meth:`close`."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix=f"propensity-{self.name}-"))
        return self._tmp

    # -- input ------------------------------------------------------------------------
    def read(self, path: str | Path) -> ir.Table:
        """A CSV (text columns, compressed ok) or Parquet file (its own types) as a table."""
        raise NotImplementedError

    def from_frame(self, frame: pd.DataFrame) -> ir.Table:
        """A pandas DataFrame as a table of this engine (tests, small inputs)."""
        raise NotImplementedError

    # -- output -----------------------------------------------------------------------
    def execute(self, expr: ir.Table) -> pd.DataFrame:
        return self.con.execute(expr)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)

    def batches(self, expr: ir.Table, rows: int = 500_000) -> Iterator[pa.RecordBatch]:
        yield from self.to_arrow(expr).to_batches(max_chunksize=rows)

    def materialize(self, expr: ir.Table, name: str) -> ir.Table:
        """Write ``expr`` to Parquet in the work folder and return it read back (computed once)."""
        raise NotImplementedError

    def write(self, expr: ir.Table, path: str | Path) -> int:
        """Write ``expr`` to one CSV or Parquet file (by suffix), streaming; return the rows written."""
        path = Path(path)
        fmt = table_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        rows = 0
        writer: Any = None
        try:
            for batch in self.batches(expr):
                if writer is None:
                    writer = _table_writer(tmp, batch.schema, fmt)
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:  # no rows: still write the header / schema
                writer = _table_writer(tmp, self.to_arrow(expr.limit(0)).schema, fmt)
        finally:
            if writer is not None:
                writer.close()
        os.replace(tmp, path)
        return rows

    # -- expressions that differ between engines ----------------------------------------
    def parse_timestamp(self, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        """Text → naive-UTC timestamp, or NULL when it cannot be parsed.

        ISO 8601 text with an offset (``Z``, ``+02:00``) is converted to UTC; text without one
        is taken as UTC (see :meth:`local_to_utc` for other zones). With ``fmt`` (a strftime
        pattern) the text is parsed by that pattern instead.
        """
        raise NotImplementedError

    def local_to_utc(self, ts: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """Naive local time in ``zone`` (``+01:00`` or an IANA name) → naive UTC."""
        ibis = _ibis()
        if zone == "UTC":
            return ts
        if zone[0] in "+-":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            return ts - ibis.interval(seconds=sign * (hours * 3600 + minutes * 60))
        return self._zone_to_utc(ts, zone)

    def _zone_to_utc(self, ts: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        raise NotImplementedError


def _table_writer(path: Path, schema: pa.Schema, fmt: str) -> Any:
    if fmt == "parquet":
        return parquet_writer(path, schema)
    import pyarrow.csv as pacsv

    return pacsv.CSVWriter(str(path), schema)


# ------------------------------------------------------------------------------- DuckDB


class DuckDBEngine(Engine):
    """DuckDB in-process (no server). Memory is bounded by ``memory_limit``; DuckDB spills to disk.

    Parameters
    ----------
    threads
        Worker threads (default: DuckDB's choice, all cores).
    memory_limit
        E.g. ``"2GB"`` (default: DuckDB's, 80 % of RAM).
    """

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        super().__init__()
        ibis = _ibis()
        self._con = ibis.duckdb.connect()
        self._con.raw_sql("SET TimeZone = 'UTC'")
        self._con.raw_sql("SET enable_progress_bar = false")
        self._con.raw_sql(f"SET temp_directory = '{self.workdir() / 'spill'}'")
        if threads:
            self._con.raw_sql(f"SET threads = {int(threads)}")
        if memory_limit:
            self._con.raw_sql(f"SET memory_limit = '{memory_limit}'")
        self._n = 0

    @property
    def con(self) -> Any:
        return self._con

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed
            self._con.disconnect()
        super().close()

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def read(self, path: str | Path) -> ir.Table:
        path = _existing(path)
        if table_format(path) == "parquet":
            return self._con.read_parquet(str(path), table_name=self._name("parquet"))
        return self._con.read_csv(
            str(path), table_name=self._name("csv"), all_varchar=True, header=True, auto_detect=True
        )

    def from_frame(self, frame: pd.DataFrame) -> ir.Table:
        ibis = _ibis()
        return ibis.memtable(frame)

    def batches(self, expr: ir.Table, rows: int = 500_000) -> Iterator[pa.RecordBatch]:
        # Ibis 12's to_pyarrow_batches calls a cursor method DuckDB 2 removed; stream directly.
        self._con._run_pre_execute_hooks(expr)
        sql = self._con.compile(expr.as_table())
        reader = self._con.con.sql(sql).to_arrow_reader(batch_size=rows)
        schema = expr.as_table().schema().to_pyarrow()
        for batch in reader:
            yield (
                batch
                if batch.schema == schema
                else pa.Table.from_batches([batch]).cast(schema).to_batches()[0]
            )

    def materialize(self, expr: ir.Table, name: str) -> ir.Table:
        path = self.workdir() / f"{self._name(name)}.parquet"
        self._con.to_parquet(expr, str(path))
        return self._con.read_parquet(str(path), table_name=self._name(name))

    def parse_timestamp(self, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        import ibis.expr.datatypes as dt

        if fmt:
            zoned = "%z" in fmt or "%Z" in fmt
            return _duck_strptime(zoned)(text, fmt).cast(dt.Timestamp())
        return text.try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())

    def _zone_to_utc(self, ts: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        import ibis.expr.datatypes as dt

        return _duck_timezone()(zone, ts).cast(dt.Timestamp())


_UDFS: dict[str, Any] = {}


def _builtin(name: str, args: tuple[Any, ...], ret: Any) -> Any:
    """An engine's built-in SQL function as an Ibis UDF (cached by name and signature)."""
    key = f"{name}{args}{ret}"
    if key not in _UDFS:
        ibis = _ibis()

        if len(args) != 2:  # pragma: no cover - every built-in used here takes two arguments
            raise ValueError(f"{name}: only two-argument built-ins are wrapped")

        def fn(a: Any, b: Any) -> Any:  # pragma: no cover - never called, only compiled to SQL
            raise NotImplementedError

        fn.__name__ = name
        _UDFS[key] = ibis.udf.scalar.builtin(fn, name=name, signature=(args, ret))
    return _UDFS[key]


def _duck_strptime(zoned: bool) -> Any:
    """DuckDB's try_strptime(text, pattern); a pattern with %z gives an instant."""
    import ibis.expr.datatypes as dt

    return _builtin(
        "try_strptime", (dt.string, dt.string), dt.Timestamp(timezone="UTC") if zoned else dt.Timestamp()
    )


def _duck_timezone() -> Any:
    """DuckDB's timezone(zone, naive local time) -> the instant."""
    import ibis.expr.datatypes as dt

    return _builtin("timezone", (dt.string, dt.Timestamp()), dt.Timestamp(timezone="UTC"))


# ------------------------------------------------------------------------------- Spark

_SPARK_LOCK = threading.Lock()
_SPARK: Any = None


def spark_session(master: str | None = None) -> Any:
    """The process-wide Spark session (created once; local mode unless ``master`` is given).

    Sets ``SPARK_LOCAL_IP=127.0.0.1`` when unset (no network needed) and the session time
    zone to UTC. ``master`` defaults to ``PROPENSITY_SPARK_MASTER`` or ``local[2]``.
    """
    global _SPARK
    with _SPARK_LOCK:
        if _SPARK is not None:
            return _SPARK
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ParameterError("The spark engine needs PySpark: pip install 'propensity[spark]'.") from exc
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        master = master or os.environ.get("PROPENSITY_SPARK_MASTER") or "local[2]"
        builder = (
            SparkSession.builder.master(master)
            .appName("propensity")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", os.environ.get("PROPENSITY_SPARK_PARTITIONS", "8"))
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.driver.memory", os.environ.get("PROPENSITY_SPARK_DRIVER_MEMORY", "2g"))
        )
        _SPARK = builder.getOrCreate()
        _SPARK.sparkContext.setLogLevel("ERROR")
        atexit.register(_stop_spark)
        return _SPARK


def _stop_spark() -> None:
    global _SPARK
    if _SPARK is not None:
        try:
            _SPARK.stop()
        finally:
            _SPARK = None


class SparkEngine(Engine):
    """Apache Spark through Ibis (``spark.master`` from ``PROPENSITY_SPARK_MASTER``, else ``local[2]``)."""

    name = "spark"

    def __init__(self, master: str | None = None) -> None:
        super().__init__()
        ibis = _ibis()
        self._spark = spark_session(master)
        self._con = ibis.pyspark.connect(self._spark)
        self._n = 0

    @property
    def con(self) -> Any:
        return self._con

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"propensity_{stem}_{id(self)}_{self._n}"

    def read(self, path: str | Path) -> ir.Table:
        path = _existing(path)
        if table_format(path) == "parquet":
            return self._con.read_parquet(str(path), table_name=self._name("parquet"))
        return self._con.read_csv(
            str(path), table_name=self._name("csv"), header=True, inferSchema=False, sep=_delimiter(path)
        )

    def from_frame(self, frame: pd.DataFrame) -> ir.Table:
        # Through Parquet: Spark infers no type for all-missing object columns, Arrow does (as text).
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        path = self.workdir() / f"{self._name('frame')}.parquet"
        pq.write_table(table.cast(pa.schema(fields)), path)
        return self._con.read_parquet(str(path), table_name=self._name("frame"))

    def materialize(self, expr: ir.Table, name: str) -> ir.Table:
        path = self.workdir() / f"{self._name(name)}.parquet"
        self._con.to_parquet(expr, str(path))
        return self._con.read_parquet(str(path), table_name=self._name(name))

    def parse_timestamp(self, text: ir.StringValue, fmt: str | None) -> ir.TimestampValue:
        import ibis.expr.datatypes as dt

        if fmt:
            return _spark_to_timestamp()(text, java_pattern(fmt)).cast(dt.Timestamp())
        return text.try_cast(dt.Timestamp()).cast(dt.Timestamp())

    def _zone_to_utc(self, ts: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        return _spark_to_utc()(ts, zone)


def _spark_to_timestamp() -> Any:
    """Spark's try_to_timestamp(text, pattern)."""
    import ibis.expr.datatypes as dt

    return _builtin("try_to_timestamp", (dt.string, dt.string), dt.Timestamp())


def _spark_to_utc() -> Any:
    """Spark's to_utc_timestamp(local time, zone)."""
    import ibis.expr.datatypes as dt

    return _builtin("to_utc_timestamp", (dt.Timestamp(), dt.string), dt.Timestamp())


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


def _delimiter(path: Path) -> str:
    from propensity.sources import sniff_delimiter

    return sniff_delimiter(path)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"File not found: '{path}'. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a file.")
    return path


def get_engine(name: str = "duckdb", **options: Any) -> Engine:
    """An engine by name: ``duckdb`` (default) or ``spark``.

    Raises
    ------
    ParameterError
        For an unknown name (the message lists the choices).
    """
    key = (name or "duckdb").strip().lower()
    if key == "duckdb":
        return DuckDBEngine(**options)
    if key == "spark":
        return SparkEngine(**options)
    raise ParameterError(f"The 'engine' parameter must be one of {', '.join(ENGINES)}. Got {name!r} instead.")


def column_names(table: ir.Table) -> Sequence[str]:
    return list(table.columns)
