"""DuckDB in-process: the default engine (no server; spills to disk beyond its memory limit)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from propensity.engines.base import Engine, builtin_function, existing_input, import_ibis
from propensity.errors import DataError
from propensity.sources import renamed_header, table_format, transcoded_utf8

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["DuckDBEngine"]


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
        ibis = import_ibis()
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
        import duckdb

        path = existing_input(path)
        try:
            if path.is_dir():  # part files at any depth; key=value folders become columns, as on Spark
                return self._con.read_parquet(
                    str(path / "**" / "*.parquet"),
                    table_name=self._name("parquet"),
                    hive_partitioning=True,
                    union_by_name=True,
                )
            if table_format(path) == "parquet":
                return self._con.read_parquet(str(path), table_name=self._name("parquet"))
            text = transcoded_utf8(path, self.workdir())  # DuckDB reads UTF-8 (and UTF-16/latin-1) only
            renamed = renamed_header(path)  # empty header names as the other readers name them
            return self._con.read_csv(
                str(text),
                table_name=self._name("csv"),
                all_varchar=True,
                header=True,
                auto_detect=True,
                **({"names": renamed} if renamed else {}),
            )
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"Cannot read '{path}' with DuckDB: {first}. Expected a CSV table with one header line and "
                "the same delimiter on every row (or Parquet); check the file, or export it again."
            ) from exc

    def from_frame(self, frame: pd.DataFrame) -> ir.Table:
        ibis = import_ibis()
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

    def materialize(self, expr: ir.Table, name: str, *, memory: bool = False) -> ir.Table:
        if memory:
            return self._con.create_table(self._name(name), expr, temp=True)
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


def _duck_strptime(zoned: bool) -> Any:
    """DuckDB's try_strptime(text, pattern); a pattern with %z gives an instant."""
    import ibis.expr.datatypes as dt

    return builtin_function(
        "try_strptime", (dt.string, dt.string), dt.Timestamp(timezone="UTC") if zoned else dt.Timestamp()
    )


def _duck_timezone() -> Any:
    """DuckDB's timezone(zone, naive local time) -> the instant."""
    import ibis.expr.datatypes as dt

    return builtin_function("timezone", (dt.string, dt.Timestamp()), dt.Timestamp(timezone="UTC"))
