"""Reading and writing tables: CSV (any delimiter, compressed or not) and Parquet.

The readers are deliberately strict about what they cannot read and forgiving about what
users actually have: ``;``-separated exports, gzip'd CSV, CRLF line ends, ``TRUE``/``FALSE``
booleans. An empty file or a header without rows is a :class:`~propensity.errors.DataError`
with one clear sentence, never a parser traceback.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import hashlib
import json
import lzma
import os
import queue
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from propensity.errors import DataError

__all__ = [
    "NULL_VALUES",
    "TableWriter",
    "atomic_path",
    "file_sha256",
    "frame_sha256",
    "iter_table",
    "read_table",
    "read_yaml_mapping",
    "sniff_delimiter",
    "stem_path",
    "table_columns",
    "table_format",
    "write_json",
]

#: Cell values read as missing in text files (pandas' defaults plus a few common in shop exports).
NULL_VALUES: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "NULL",
    "null",
    "None",
    "none",
    "#N/A",
    "?",
    "-nan",
    "<NA>",
)

_CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".dat"}
_COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
#: Bytes read at a time from one Parquet column chunk (see :func:`iter_table`).
PARQUET_READ_BUFFER = 4 << 20


def table_format(path: str | Path) -> str:
    """Return ``"parquet"`` or ``"csv"`` for a path, judged by its suffixes.

    Raises
    ------
    DataError
        If the suffix is neither a CSV-like text file (optionally compressed) nor Parquet.
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in {".parquet", ".pq"}:
        return "parquet"
    if last in _CSV_SUFFIXES or last == "":
        return "csv"
    raise DataError(
        f"Cannot read '{path}': the file type '{last}' is not supported. "
        "Use CSV (.csv, .tsv, .txt, optionally .gz/.bz2/.xz) or Parquet (.parquet)."
    )


def _open_text(path: Path) -> IO[bytes]:  # gzip/bz2/lzma files are binary IO
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if suffix == ".bz2":
        return cast(IO[bytes], bz2.open(path, "rb"))
    if suffix == ".xz":
        return cast(IO[bytes], lzma.open(path, "rb"))
    return path.open("rb")


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(f"File not found: '{path}'. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a file.")


def _head_text(path: Path, n_bytes: int = 64 * 1024) -> str:
    try:
        with _open_text(path) as fh:
            head = fh.read(n_bytes)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DataError(
            f"Cannot read '{path}': {exc}. Is the file compressed with another format or truncated?"
        ) from exc
    return head.decode("utf-8", errors="replace")


def sniff_delimiter(path: str | Path) -> str:
    """Guess the delimiter of a CSV-like file from its first 64 KiB.

    Only ``,``, ``;``, tab and ``|`` are considered; the header line decides ties.

    Raises
    ------
    DataError
        If the file is empty.
    """
    path = Path(path)
    _check_exists(path)
    head = _head_text(path)
    if not head.strip():
        raise DataError(f"'{path}' is empty: there is no header and no rows.")
    lines = [ln for ln in head.splitlines() if ln.strip()]
    sample = "\n".join(lines[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t|"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > 0 else ","


def _csv_options(
    path: Path, column_types: dict[str, pa.DataType] | None = None, block_size: int | None = None
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    delimiter = sniff_delimiter(path)
    read = pacsv.ReadOptions(block_size=block_size or (16 << 20))
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        null_values=list(NULL_VALUES),
        strings_can_be_null=True,
        true_values=["TRUE", "True", "true"],
        false_values=["FALSE", "False", "false"],
        column_types=column_types or {},
    )
    return read, parse, convert


def _raise_parse_error(path: Path, exc: Exception) -> None:
    msg = str(exc).splitlines()[0]
    if "Empty CSV file" in msg:
        raise DataError(f"'{path}' is empty: there is no header and no rows.") from exc
    raise DataError(
        f"Cannot parse '{path}' as CSV: {msg}. Check the delimiter and quoting "
        "(every row must have as many fields as the header)."
    ) from exc


def _ensure_rows(path: Path, n_rows: int, n_cols: int) -> None:
    if n_cols == 0:
        raise DataError(f"'{path}' is empty: there is no header and no rows.")
    if n_rows == 0:
        raise DataError(f"'{path}' has a header ({n_cols} columns) but no data rows.")


def read_table(path: str | Path, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a whole CSV or Parquet file into a DataFrame.

    Parameters
    ----------
    path
        ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``, ``.bz2``, ``.xz``) or ``.parquet``.
        The delimiter of text files is detected (``,``, ``;``, tab, ``|``).
    columns
        Read only these columns (all by default).

    Returns
    -------
    pandas.DataFrame
        Columns keep the types the file carries (Parquet) or the types inferred by Arrow's
        CSV reader (ints, floats, booleans written ``TRUE``/``true``, timestamps, strings).

    Raises
    ------
    DataError
        Missing or empty file, header without rows, unparseable CSV, unsupported type.

    Example
    -------
    >>> df = read_table("shoppers.csv.gz")  # doctest: +SKIP
    """
    path = Path(path)
    _check_exists(path)
    fmt = table_format(path)
    if fmt == "parquet":
        try:
            table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"Cannot read '{path}' as Parquet: {exc}") from exc
    else:
        read, parse, convert = _csv_options(path)
        if columns is not None:
            convert.include_columns = list(columns)
        try:
            table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            _raise_parse_error(path, exc)
    _ensure_rows(path, table.num_rows, table.num_columns)
    return _to_pandas(table)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    # Null-typed columns (all cells missing) become float NaN, which every later stage handles.
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    for name in frame.columns:
        if frame[name].dtype == object and frame[name].isna().all():
            frame[name] = frame[name].astype("float64")
    return frame


def table_columns(path: str | Path) -> list[str]:
    """Return the column names of a table without reading its rows."""
    path = Path(path)
    _check_exists(path)
    if table_format(path) == "parquet":
        return list(pq.read_schema(path).names)
    read, parse, convert = _csv_options(path, block_size=1 << 20)
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        _raise_parse_error(path, exc)
    return list(reader.schema.names)


def iter_table(
    path: str | Path,
    *,
    batch_rows: int = 200_000,
    columns: Sequence[str] | None = None,
    string_columns: Sequence[str] = (),
    dictionary_columns: Sequence[str] = (),
) -> Iterator[pd.DataFrame]:
    """Yield a table in chunks of about ``batch_rows`` rows, so memory stays flat.

    Parameters
    ----------
    path
        CSV or Parquet file.
    batch_rows
        Approximate rows per chunk (Parquet exactly; CSV by block size).
    columns
        Read only these columns (all columns when ``None``).
    string_columns
        CSV only: read these columns as text so that a bad cell in a late block does not
        abort the whole read; the caller coerces and quarantines per row.
    dictionary_columns
        Text columns to deliver as pandas ``Categorical`` (dictionary-encoded, as Parquet
        stores them), so per-value work runs once per distinct value instead of once per row.

    Raises
    ------
    DataError
        As :func:`read_table`, and when ``columns`` are missing from the file.
    """
    path = Path(path)
    _check_exists(path)
    if table_format(path) == "parquet":
        # Buffered column reads without pre-buffering: memory is bounded by the batch, not by the
        # row group (pandas writes up to 1M rows per row group; pre-buffering holds all of it).
        pf = pq.ParquetFile(
            path,
            read_dictionary=list(dictionary_columns) or None,
            buffer_size=PARQUET_READ_BUFFER,
            pre_buffer=False,
        )
        if pf.metadata.num_rows == 0:
            _ensure_rows(path, 0, pf.metadata.num_columns)
        wanted = [c for c in (columns or pf.schema_arrow.names) if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
            yield _to_pandas(pa.Table.from_batches([batch]))
        return
    present = table_columns(path)
    dictionary = set(dictionary_columns)
    types = {
        c: pa.dictionary(pa.int32(), pa.string()) if c in dictionary else pa.string()
        for c in [*string_columns, *dictionary_columns]
        if c in present
    }
    # ~100 bytes per row is typical of shop exports; the block size bounds memory, not the row count.
    read, parse, convert = _csv_options(path, column_types=types, block_size=max(1 << 20, batch_rows * 100))
    if columns is not None:
        convert.include_columns = [c for c in columns if c in present]
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        seen = 0
        for batch in reader:
            seen += batch.num_rows
            if batch.num_rows:
                yield _to_pandas(pa.Table.from_batches([batch]))
    except pa.ArrowInvalid as exc:
        _raise_parse_error(path, exc)
    if seen == 0:
        _ensure_rows(path, 0, len(present))


T = TypeVar("T")


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """Yield from ``items`` while a background thread already produces the next item.

    Reading a Parquet or CSV chunk releases the GIL, so the next chunk is read while the
    current one is scored. One chunk waits at most, so memory stays flat. An exception in
    the reader is raised here, in the consumer; abandoning the iterator stops the reader.
    """
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slot.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slot.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slot.put(("error", exc))

    reader = threading.Thread(target=produce, name="propensity-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to hand over its chunk
            try:
                slot.get_nowait()
            except queue.Empty:
                reader.join(timeout=0.05)


def read_yaml_mapping(path: str | Path, kind: str, shape: str) -> dict[str, Any]:
    """Read a small YAML file that must hold a mapping (roles, event mappings).

    ``kind`` names the file in messages ("Roles file"), ``shape`` says what it must hold.

    Raises
    ------
    DataError
        The file is missing, is not YAML, or does not hold a mapping.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise DataError(f"{kind} not found: '{path}'.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{kind} '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{kind} '{path}' must be {shape}.")
    return data


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Return a SHA-256 of a DataFrame's values and column names (row order matters)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def parquet_writer(path: str | Path, schema: pa.Schema, compression: str = "snappy") -> pq.ParquetWriter:
    """A Parquet writer that dictionary-encodes text columns only: trying it on numbers costs
    ~40 % of the write and falls back to plain encoding anyway."""
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return pq.ParquetWriter(path, schema, compression=compression, use_dictionary=text or False)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces ``path`` only when the block succeeds.

    An interrupted or failed write never leaves a half-written file under the final name: the
    temporary file (hidden, in the same folder so the rename is atomic) is removed instead.
    The folder is created if needed.

    Example
    -------
    >>> with atomic_path("out/scores.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class TableWriter:
    """Write DataFrame chunks to one CSV or Parquet file, with a schema fixed by the first chunk.

    Use as a context manager. Chunks go to a hidden temporary file beside ``path``, which
    becomes ``path`` when the block ends without an error (``close()``): an interrupted or failed
    job never leaves a half-written file under the final name.
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._format = table_format(self.path)
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None
        self._sink: IO[bytes] | None = None
        self._atomic: contextlib.AbstractContextManager[Path] | None = None
        self.rows = 0

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
        else:
            self._finish(exc_type, exc, tb)

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for i, column in enumerate(table.schema):  # a Categorical is written as its plain values
            if pa.types.is_dictionary(column.type):
                table = table.set_column(i, column.name, table.column(i).cast(column.type.value_type))
        if self._writer is None:
            self._atomic = atomic_path(self.path)
            tmp = self._atomic.__enter__()
            self._schema = table.schema
            if self._format == "parquet":
                self._writer = parquet_writer(tmp, self._schema)
            else:
                compression = _COMPRESSION_SUFFIXES.get(self.path.suffix.lower())
                self._sink = pa.CompressedOutputStream(str(tmp), compression) if compression else None
                self._writer = pacsv.CSVWriter(self._sink or str(tmp), self._schema)
        elif self._schema is not None and table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file and move it to ``path``."""
        self._finish(None, None, None)

    def _finish(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(exc_type, exc, tb)  # renames on success, removes the temporary file on failure


def stem_path(out: str | Path, suffix: str) -> Path:
    """A file beside ``out`` named by its stem: ``scores.csv.gz`` → ``scores<suffix>``."""
    out = Path(out)
    return out.with_name(f"{out.name.split('.')[0]}{suffix}")


def write_json(path: str | Path, data: Any, *, indent: int = 2, default: Any = None) -> Path:
    """Write ``data`` as JSON to ``path`` (atomically) and return the path."""
    path = Path(path)
    text = json.dumps(data, indent=indent, default=default)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
