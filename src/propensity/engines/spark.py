"""Apache Spark through Ibis: local mode unless ``PROPENSITY_SPARK_MASTER`` names a cluster.

PySpark is imported when the first session starts, never at import time.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from propensity.engines.base import Engine, builtin_function, existing_file, import_ibis
from propensity.errors import ParameterError
from propensity.sources import sniff_delimiter, table_columns, table_format, transcoded_utf8

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["SparkEngine", "java_pattern", "spark_session"]

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

    def read(self, path: str | Path) -> ir.Table:
        path = existing_file(path)
        table_columns(path)  # refuses binary files, non-Parquet .parquet, duplicate names
        if table_format(path) == "parquet":
            return self._con.read_parquet(str(path), table_name=self._name("parquet"))
        text = transcoded_utf8(path, self.workdir())  # Spark reads UTF-8 unless told otherwise
        return self._con.read_csv(
            str(text), table_name=self._name("csv"), header=True, inferSchema=False, sep=sniff_delimiter(path)
        )

    def from_frame(self, frame: pd.DataFrame) -> ir.Table:
        # Through Parquet: Spark infers no type for all-missing object columns, Arrow does (as text).
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        path = self.workdir() / f"{self._name('frame')}.parquet"
        pq.write_table(table.cast(pa.schema(fields)), path)
        return self._con.read_parquet(str(path), table_name=self._name("frame"))

    def materialize(self, expr: ir.Table, name: str, *, memory: bool = False) -> ir.Table:
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
