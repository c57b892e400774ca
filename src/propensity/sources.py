"""Reading and writing tables: CSV (any delimiter, compressed or not) and Parquet.

The readers are deliberately strict about what they cannot read and forgiving about what
users actually have: ``;``-separated exports, gzip'd CSV, CRLF line ends, ``TRUE``/``FALSE``
booleans. An empty file or a header without rows is a :class:`~propensity.errors.DataError`
with one clear sentence, never a parser traceback.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import contextvars
import csv
import gzip
import hashlib
import json
import lzma
import os
import queue
import tempfile
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from propensity.errors import DataError, ParameterError

__all__ = [
    "NULL_VALUES",
    "TableWriter",
    "atomic_path",
    "check_encoding",
    "check_output",
    "detect_encoding",
    "encoding_label",
    "file_encoding",
    "file_sha256",
    "frame_sha256",
    "iter_table",
    "parquet_parts",
    "read_table",
    "read_yaml_mapping",
    "reading_encoding",
    "renamed_header",
    "sniff_delimiter",
    "stem_path",
    "table_columns",
    "table_format",
    "transcoded_utf8",
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


# ------------------------------------------------------------------------------ text encodings

#: Bytes of a text file examined to tell text from binary and guess the encoding.
_SNIFF_BYTES = 1 << 20
#: Beyond the sniffed head, a file guessed to be UTF-8 is checked up to this many bytes, so that
#: one accented name deep in an Excel export does not fail the read halfway through.
_VERIFY_BYTES = 256 << 20
_PARQUET_MAGIC = b"PAR1"
#: What the libraries under the readers raise for a file they cannot read (never our DataError).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    pa.ArrowException,
    OSError,
    EOFError,
    UnicodeError,
    lzma.LZMAError,
    zlib.error,
)

_CONTROL = [chr(i) for i in range(32) if chr(i) not in "\t\n\r\f"] + ["\x7f"]
_encoding_override: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "propensity_encoding", default=None
)
_encodings_seen: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "propensity_encodings_seen", default=None
)
_detected: dict[tuple[str, int, int], str] = {}


def check_encoding(encoding: str) -> str:
    """Return ``encoding`` if Python has a codec of that name.

    Raises
    ------
    ParameterError
        If it has none.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ParameterError(
            f"Unknown text encoding {encoding!r}. Use a Python codec name such as utf-8, utf-8-sig, "
            "utf-16, cp1252 or latin-1."
        ) from None
    return encoding


@contextlib.contextmanager
def reading_encoding(encoding: str | None = None) -> Iterator[dict[str, str]]:
    """Read every text table inside the block with ``encoding`` (``None``: detect each file's).

    Yields a dict that fills with ``{path: "cp1252 (detected)"}`` for each text file read in the
    block, so a command can say in its summary how its inputs were decoded.

    Raises
    ------
    ParameterError
        If ``encoding`` is not a codec Python knows.

    Example
    -------
    >>> with reading_encoding("cp1252") as used:  # doctest: +SKIP
    ...     frame = read_table("excel_export.csv")
    """
    if encoding is not None:
        check_encoding(encoding)
    seen: dict[str, str] = {}
    tokens = (_encoding_override.set(encoding), _encodings_seen.set(seen))
    try:
        yield seen
    finally:
        _encodings_seen.reset(tokens[1])
        _encoding_override.reset(tokens[0])


def _read_head(path: Path, n_bytes: int) -> bytes:
    try:
        with _open_text(path) as fh:
            return fh.read(n_bytes)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise DataError(
            f"Cannot read '{path}': {exc}. Expected a {path.suffix.lstrip('.') or 'plain'}-compressed text "
            "table; check that the file is complete and compressed with the format its name says."
        ) from exc


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` when every other byte of mostly-ASCII text is zero."""
    sample = head[: len(head) - len(head) % 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    for encoding, zeros, other in (
        ("utf-16-le", zeros_odd, zeros_even),
        ("utf-16-be", zeros_even, zeros_odd),
    ):
        if zeros > 0.6 and other < 0.05:
            try:
                text = sample.decode(encoding)
            except UnicodeDecodeError:
                return None
            return encoding if not _looks_binary(text) else None
    return None


def _looks_binary(text: str) -> bool:
    """Control characters other than tab, newlines and form feed are rare in any text table."""
    if not text:
        return False
    control = sum(text.count(ch) for ch in _CONTROL)
    return control > max(2, len(text) // 200)


def _utf8_prefix_ok(data: bytes) -> bool:
    """True if ``data`` is UTF-8, allowing a character cut off at the end."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.start >= len(data) - 3
    return True


def _not_text(path: Path) -> DataError:
    return DataError(
        f"Cannot read '{path}': it is not a text table (it holds binary data). Expected CSV text "
        "(UTF-8, UTF-16, cp1252 or latin-1) or a Parquet file named .parquet; export the data as CSV "
        "or Parquet and try again."
    )


def detect_encoding(path: str | Path) -> str:
    """Guess the encoding of a CSV-like file: ``utf-8``, ``utf-8-sig``, ``utf-16``, ``utf-16-le``,
    ``utf-16-be``, ``cp1252`` or ``latin-1``.

    A byte-order mark decides when present; UTF-16 without one is recognised by its zero bytes.
    Otherwise a file that decodes as UTF-8 (checked up to 256 MiB) is UTF-8, else cp1252 (Excel's
    encoding in western Europe), else latin-1, which decodes any byte.

    Raises
    ------
    DataError
        If the file is missing, unreadable, or binary (not text at all).
    """
    path = Path(path)
    _check_exists(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _detected:
        _detected[key] = _detect(path)
        if len(_detected) > 256:  # a long-lived process (the dashboard) reads many files
            _detected.pop(next(iter(_detected)))
    return _detected[key]


def _detect(path: Path) -> str:
    head = _read_head(path, _SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        encoding = _utf16_without_bom(head) or ""
        if not encoding:
            raise _not_text(path)
    elif _utf8_prefix_ok(head):
        encoding = "utf-8"
        if len(head) == _SNIFF_BYTES and not _rest_is_utf8(path):
            return "cp1252" if _decodes(head, "cp1252") else "latin-1"
    else:
        encoding = "cp1252" if _decodes(head, "cp1252") else "latin-1"
    if _looks_binary(head.decode(encoding, errors="replace")[:100_000]):
        raise _not_text(path)
    return encoding


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _rest_is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    read = 0
    try:
        with _open_text(path) as fh:
            while read < _VERIFY_BYTES and (block := fh.read(1 << 20)):
                decoder.decode(block)
                read += len(block)
    except UnicodeDecodeError:
        return False
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return True  # a truncated archive is reported by the reader itself
    return True


def file_encoding(path: str | Path) -> str:
    """The encoding to read a text table with: the one set by :func:`reading_encoding`, else detected.

    Inside :func:`reading_encoding` the choice is also recorded for the command's summary.
    """
    path = Path(path)
    encoding = _encoding_override.get() or detect_encoding(path)
    seen = _encodings_seen.get()
    if seen is not None:
        seen[str(path)] = encoding_label(path)
    return encoding


def encoding_label(path: str | Path) -> str:
    """How a text table is decoded, for summaries: ``"cp1252 (detected)"`` or ``"latin-1 (given)"``."""
    override = _encoding_override.get()
    return f"{override} (given)" if override else f"{detect_encoding(path)} (detected)"


def _arrow_encoding(encoding: str) -> str:
    # Arrow reads UTF-8 natively (and skips a UTF-8 byte-order mark); others go through Python's codecs.
    return "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding


def transcoded_utf8(path: str | Path, folder: str | Path) -> Path:
    """``path`` itself when it is UTF-8 text, else a UTF-8 copy of it written in ``folder``.

    For engines that read only UTF-8 (DuckDB without extensions, Spark by default).
    """
    path = Path(path)
    encoding = file_encoding(path)
    if _arrow_encoding(encoding) == "utf8":
        return path
    target = Path(folder) / f"utf8_{abs(hash((str(path), encoding)))}.csv"
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with _open_text(path) as src, target.open("w", encoding="utf-8", newline="") as dst:
            while block := src.read(1 << 20):
                dst.write(decoder.decode(block))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"Cannot read '{path}' as {encoding} text: {exc.reason} at byte {exc.start}. "
            "Pass the file's encoding with --encoding (e.g. utf-8, cp1252, latin-1, utf-16)."
        ) from exc
    return target


def _head_text(path: Path, n_bytes: int = 64 * 1024) -> str:
    encoding = file_encoding(path)
    head = _read_head(path, n_bytes)
    return head.decode(encoding, errors="replace").lstrip("\ufeff")


def sniff_delimiter(path: str | Path) -> str:
    """Guess the delimiter of a CSV-like file from its first 64 KiB.

    Only ``,``, ``;``, tab and ``|`` are considered; the header line decides ties.

    Raises
    ------
    DataError
        If the file is empty or not text.
    """
    path = Path(path)
    _check_exists(path)
    if path.stat().st_size == 0:
        raise DataError(f"'{path}' is empty: there is no header and no rows.")
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


def _header_names(path: Path, delimiter: str) -> list[str]:
    """The header line as the csv module reads it (for renaming empty names)."""
    head = _head_text(path)
    try:
        return next(csv.reader(head.splitlines()[:1] or [""], delimiter=delimiter), [])
    except csv.Error:
        return []


def check_column_names(path: str | Path, names: Sequence[str]) -> None:
    """Refuse duplicate column names with one line that names them.

    Raises
    ------
    DataError
        If two columns share a name.
    """
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(i)
    dupes = {n: p for n, p in positions.items() if len(p) > 1}
    if dupes:
        listed = "; ".join(f"{n!r} (columns {', '.join(map(str, p))})" for n, p in list(dupes.items())[:10])
        raise DataError(
            f"'{path}' has duplicate column names: {listed}. Each column needs its own name; rename them "
            "in the header and try again."
        )


def _renamed_empty(names: Sequence[str]) -> list[str] | None:
    """Names with control characters (a NUL, which DuckDB cuts the name at) removed, and empty or
    whitespace-only ones replaced by ``column_<position>``; ``None`` if no name needs it."""
    if all(n.strip() and n.isprintable() for n in names):
        return None
    taken = {n for n in names if n.strip() and n.isprintable()}  # kept as they are
    renamed = []
    for i, n in enumerate(names, start=1):
        if n.strip() and n.isprintable():
            renamed.append(n)
            continue
        clean = "".join(ch for ch in n if ch.isprintable())
        new = clean if clean.strip() else f"column_{i}"
        while new in taken:
            new += "_"
        taken.add(new)
        renamed.append(new)
    return renamed


def renamed_header(path: str | Path) -> list[str] | None:
    """A text table's header with empty and blank names replaced by ``column_<position>`` (1-based),
    as every reader names them; ``None`` when every column has a name (or for Parquet)."""
    path = Path(path)
    if table_format(path) == "parquet":
        return None
    return _renamed_empty(_header_names(path, sniff_delimiter(path)))


def _check_parquet(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            start = fh.read(4)
            fh.seek(max(0, path.stat().st_size - 4))
            end = fh.read(4)
    except OSError as exc:
        raise DataError(f"Cannot read '{path}': {exc}.") from exc
    if start != _PARQUET_MAGIC or end != _PARQUET_MAGIC:
        what = "is empty" if path.stat().st_size == 0 else "is not a Parquet file (no PAR1 marker)"
        if start == _PARQUET_MAGIC:
            what = "is a truncated or damaged Parquet file (no PAR1 marker at its end)"
        raise DataError(
            f"Cannot read '{path}': it {what}. Expected Parquet, as its name says; if it is a CSV "
            "file, rename it to .csv, else write it again."
        )


def _parquet_error(path: Path, exc: BaseException) -> DataError:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(
        f"Cannot read '{path}' as Parquet: {msg}. Expected a complete Parquet file; write it again "
        "(or export CSV)."
    )


def _csv_options(
    path: Path, column_types: dict[str, pa.DataType] | None = None, block_size: int | None = None
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    delimiter = sniff_delimiter(path)
    read = pacsv.ReadOptions(
        block_size=block_size or (16 << 20), encoding=_arrow_encoding(file_encoding(path))
    )
    renamed = _renamed_empty(_header_names(path, delimiter))
    if renamed is not None:  # empty or blank header names become column_<position>
        read.column_names, read.skip_rows = renamed, 1
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        null_values=list(NULL_VALUES),
        strings_can_be_null=True,
        true_values=["TRUE", "True", "true"],
        false_values=["FALSE", "False", "false"],
        column_types=column_types or {},
    )
    return read, parse, convert


def _raise_parse_error(path: Path, exc: BaseException) -> None:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Empty CSV file" in msg:
        raise DataError(f"'{path}' is empty: there is no header and no rows.") from exc
    if isinstance(exc, UnicodeError) or "UTF8" in msg or "decode" in msg:
        raise DataError(
            f"Cannot read '{path}' as {file_encoding(path)} text: {msg}. Expected CSV text in one encoding; "
            "pass the file's encoding with --encoding (e.g. utf-8, cp1252, latin-1, utf-16)."
        ) from exc
    if not isinstance(exc, pa.ArrowInvalid):
        raise DataError(
            f"Cannot read '{path}': {msg}. Expected a complete CSV file (compressed with the format its "
            "name says); check that it is not truncated and try again."
        ) from exc
    raise DataError(
        f"Cannot parse '{path}' as CSV: {msg}. Check the delimiter and quoting "
        "(every row must have as many fields as the header)."
    ) from exc


def _check_decoded(path: Path, schema: pa.Schema) -> None:
    """Arrow reads text that is not valid in the file's encoding as raw bytes; refuse that here."""
    raw = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if raw:
        raise DataError(
            f"Cannot read '{path}' as {file_encoding(path)} text: column {raw[0]!r} holds bytes that are not "
            "valid in that encoding. Pass the file's encoding with --encoding (e.g. utf-8, cp1252, latin-1, "
            "utf-16)."
        )


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
        _check_parquet(path)
        try:
            check_column_names(path, pq.read_schema(path).names)
            table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        except _READ_ERRORS as exc:
            raise _parquet_error(path, exc) from exc
    else:
        read, parse, convert = _csv_options(path)
        if columns is not None:
            convert.include_columns = list(columns)
        try:
            table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        except _READ_ERRORS as exc:
            _raise_parse_error(path, exc)
        check_column_names(path, table.column_names)
        _check_decoded(path, table.schema)
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
        _check_parquet(path)
        try:
            names = list(pq.read_schema(path).names)
        except _READ_ERRORS as exc:
            raise _parquet_error(path, exc) from exc
    else:
        read, parse, convert = _csv_options(path, block_size=1 << 20)
        try:
            reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
            names = list(reader.schema.names)
        except _READ_ERRORS as exc:
            _raise_parse_error(path, exc)
    check_column_names(path, names)
    return names


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
        names = table_columns(path)
        try:
            pf = pq.ParquetFile(
                path,
                read_dictionary=list(dictionary_columns) or None,
                buffer_size=PARQUET_READ_BUFFER,
                pre_buffer=False,
            )
            if pf.metadata.num_rows == 0:
                _ensure_rows(path, 0, pf.metadata.num_columns)
            wanted = [c for c in (columns or names) if c in names]
            for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
                yield _to_pandas(pa.Table.from_batches([batch]))
        except _READ_ERRORS as exc:
            raise _parquet_error(path, exc) from exc
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
            _check_decoded(path, batch.schema)
            if batch.num_rows:
                yield _to_pandas(pa.Table.from_batches([batch]))
    except _READ_ERRORS as exc:
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

    # The reader runs in this context: it sees the encoding chosen by reading_encoding() and records in it.
    context = contextvars.copy_context()
    reader = threading.Thread(target=context.run, args=(produce,), name="propensity-prefetch", daemon=True)
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
    """Return the hex SHA-256 of a file's bytes; of a Parquet dataset folder, of its part files' names and bytes."""
    path = Path(path)
    digest = hashlib.sha256()
    for file in parquet_parts(path) if path.is_dir() else [path]:
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def parquet_parts(folder: Path) -> list[Path]:
    """The Parquet part files under ``folder`` (any depth), without hidden or ``_``-prefixed ones."""
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    )


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


def check_output(
    path: str | Path, *, inputs: Sequence[str | Path | None] = (), what: str = "output", folder: bool = False
) -> Path:
    """Refuse an output that cannot be written, before any input is read.

    Refused: an output that is one of the ``inputs`` (it would be overwritten while read), a file
    where a folder is needed (or the reverse), and a folder that cannot be created or written
    (read-only). A missing folder is fine: it is created when the output is written.

    Raises
    ------
    DataError
        With the path, what is wrong and what to do.
    """
    path = Path(path)
    for source in inputs:
        if source is None or not Path(source).exists() or not path.exists():
            continue
        if os.path.samefile(path, source):
            raise DataError(
                f"The {what} '{path}' is the input file '{source}': writing it would destroy the data being "
                "read. Choose another output path."
            )
    if folder and path.exists() and not path.is_dir():
        raise DataError(f"The {what} '{path}' is a file, not a folder. Choose a folder path.")
    if not folder and path.is_dir():
        raise DataError(
            f"The {what} '{path}' is a folder, not a file. Give a file path, e.g. '{path}/scores.csv'."
        )
    parent = path if folder else path.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(
            f"Cannot write the {what} '{path}': '{existing}' is a file, so no folder can be made there. "
            "Choose another output path."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(
            f"Cannot write the {what} '{path}': the folder '{existing}' is read-only. Choose a writable "
            "output folder (or fix its permissions)."
        )
    return path


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
