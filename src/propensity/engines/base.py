"""The engine base class: an Ibis connection plus the operations engines do differently.

Subclasses (:mod:`~propensity.engines.duckdb`, :mod:`~propensity.engines.spark`) supply the
connection, file reading, materialising, and timestamp parsing and time-zone conversion.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from propensity.errors import DataError, ParameterError
from propensity.sources import atomic_path, parquet_parts, parquet_writer, table_columns, table_format

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["Engine", "builtin_function", "existing_file", "existing_input", "import_ibis"]


def import_ibis() -> Any:
    """Ibis, or a message that says which extra installs it."""
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
            self._tmp = Path(tempfile.mkdtemp(prefix=f"propensity-{self.name}-", dir=self._scratch()))
        return self._tmp

    def _scratch(self) -> Path | None:
        """Where :meth:`workdir` is created (``None``: the system's temporary folder)."""
        return None

    # -- input ------------------------------------------------------------------------
    def read(self, path: str | Path) -> ir.Table:
        """A CSV (text columns, compressed ok) or Parquet file (its own types) as a table; or a folder
        of Parquet part files, partitioned datasets included (``key=value/`` folders become columns)."""
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

    def materialize(self, expr: ir.Table, name: str, *, memory: bool = False) -> ir.Table:
        """Write ``expr`` to Parquet in the work folder and return it read back (computed once).

        ``memory``: a small table that lives as long as the engine (the stream scorer's
        micro-batches) may be kept in the engine's memory instead, where the engine can
        (DuckDB: a temporary table); the Parquet round trip costs more than the work.
        """
        raise NotImplementedError

    def write(self, expr: ir.Table, path: str | Path) -> int:
        """Write ``expr`` to one CSV or Parquet file (by suffix), streaming; return the rows written."""
        path = Path(path)
        fmt = table_format(path)
        rows = 0
        writer: Any = None
        with atomic_path(path) as tmp:
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
        ibis = import_ibis()
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


_UDFS: dict[str, Any] = {}


def builtin_function(name: str, args: tuple[Any, ...], ret: Any) -> Any:
    """An engine's built-in SQL function as an Ibis UDF (cached by name and signature)."""
    key = f"{name}{args}{ret}"
    if key not in _UDFS:
        ibis = import_ibis()

        if len(args) != 2:  # pragma: no cover - every built-in used here takes two arguments
            raise ValueError(f"{name}: only two-argument built-ins are wrapped")

        def fn(a: Any, b: Any) -> Any:  # pragma: no cover - never called, only compiled to SQL
            raise NotImplementedError

        fn.__name__ = name
        _UDFS[key] = ibis.udf.scalar.builtin(fn, name=name, signature=(args, ret))
    return _UDFS[key]


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"File not found: '{path}'. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a file.")
    return path


def existing_input(path: str | Path) -> Path:
    """``path`` if it is a readable table file, or a folder holding Parquet part files.

    Raises
    ------
    DataError
        Missing, a folder without Parquet files, or a file that is not a table (with what to do).
    """
    path = Path(path)
    if path.is_dir():
        parts = parquet_parts(path)
        if not parts:
            raise DataError(
                f"'{path}' is a folder without Parquet files. Expected a CSV or Parquet file, or a folder of "
                "Parquet part files (e.g. Spark's output, or a dataset partitioned into key=value folders)."
            )
        table_columns(parts[0])  # refuses binary files, non-Parquet .parquet, duplicate names
        return path
    path = existing_file(path)
    table_columns(path)  # refuses binary files, non-Parquet .parquet, duplicate names
    return path
