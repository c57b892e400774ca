"""The live store: validated events and every customer's current score, in one SQLite file.

SQLite in WAL mode rather than DuckDB: the stream scorer writes small transactions many times
a second while the service (another process) reads single customers; WAL gives readers a
consistent snapshot without blocking the writer, and a committed transaction survives a
``kill -9`` of the writer. DuckDB allows one writing process and no concurrent readers from
other processes. Features are still computed by the batch engine (DuckDB) from the events read
back here, so no feature is implemented twice.

Writes are idempotent: an event's key is a hash of its content (every field, as batch
validation's "exact duplicate" rule compares every column), so a re-delivered event is ignored,
and a customer's score row is replaced, never appended.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from propensity.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["SCORE_COLUMNS", "EventStore", "event_key", "event_record"]

#: The score columns kept per customer (besides the features and reasons, stored as JSON).
SCORE_COLUMNS = ("probability", "decision", "band", "eligible", "as_of", "model_version", "scored_at")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    key TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    payload TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_customer ON events (customer_id);
CREATE TABLE IF NOT EXISTS scores (
    customer_id TEXT PRIMARY KEY,
    probability REAL NOT NULL,
    decision INTEGER NOT NULL,
    band TEXT NOT NULL,
    eligible INTEGER NOT NULL,
    as_of TEXT NOT NULL,
    model_version TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    reasons TEXT NOT NULL,
    features TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def event_record(fields: Mapping[str, Any]) -> tuple[str, str]:
    """(key, payload) of an event: the payload is its fields as canonical JSON, the key a hash of
    it, so equal fields (in any order) give the same key."""
    text = _CANONICAL.encode(fields)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest(), text


def event_key(fields: Mapping[str, Any]) -> str:
    """A stable key of an event's content: equal fields (in any order) give the same key."""
    return event_record(fields)[0]


class EventStore:
    """Validated events and current scores per customer (SQLite, WAL).

    Parameters
    ----------
    path
        The database file (created when missing, with its folder).
    readonly
        Open for reading only (the service): never creates or changes the file.

    Raises
    ------
    DataError
        ``readonly`` and the file does not exist.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:
            if not self.path.exists():
                raise DataError(
                    f"The live store '{self.path}' does not exist: start `propensity stream ... --store "
                    f"{self.path}` first, or serve from an event log instead."
                )
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            # FULL: a transaction is on disk when COMMIT returns (the broker is acked after it).
            self._con.execute("PRAGMA synchronous=FULL")
            # 32 MiB of page cache (SQLite's default is 2 MiB): the events' B-tree stays in memory longer
            self._con.execute("PRAGMA cache_size=-32768")
            self._con.executescript(_SCHEMA)
        self._con.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ events

    def add_events(
        self,
        rows: Sequence[tuple[str, str, str, str]],
        fields: Iterable[str] = (),
        *,
        fields_complete: bool = False,
    ) -> int:
        """Insert ``(key, customer_id, ts, payload)`` rows in one transaction; return how many were new.

        ``ts`` is the canonical timestamp as ISO text (it orders as time); re-delivered keys are
        ignored. The store's watermark (latest event time) and the union of the fields seen
        (``fields``, which may name fields every event left empty) move in the same transaction.
        ``fields_complete``: the caller vouches that ``fields`` names every field of every payload
        (the live scorer builds the payloads from those fields), so the payloads are not parsed again.
        """
        if not rows:
            return 0
        seen = set(self.fields()) | set(fields)
        if not fields_complete:
            for _, _, _, payload in rows:
                seen.update(json.loads(payload))
        latest = max(r[2] for r in rows)
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                before = con.total_changes
                # in key order: the keys are hashes, so unsorted inserts land all over the B-tree
                con.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)", sorted(rows))
                added = con.total_changes - before
                con.execute(
                    "INSERT INTO meta VALUES ('watermark', ?) ON CONFLICT(name) DO UPDATE SET "
                    "value = max(value, excluded.value)",
                    (latest,),
                )
                con.execute(
                    "INSERT INTO meta VALUES ('fields', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (json.dumps(sorted(seen)),),
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(added)

    def _meta(self, name: str) -> str | None:
        row = self._con.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def watermark(self) -> pd.Timestamp | None:
        """The latest event time stored (naive UTC), ``None`` when empty."""
        value = self._meta("watermark")
        return None if value is None else pd.Timestamp(value)

    def fields(self) -> list[str]:
        """Every field any stored event carried."""
        value = self._meta("fields")
        return [] if value is None else list(json.loads(value))

    def event_count(self) -> int:
        return int(self._con.execute("SELECT count(*) FROM events").fetchone()[0])

    def _payloads(self, customers: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(customers))
        payloads: list[str] = []
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            payloads += [
                r[0]
                for r in self._con.execute(
                    f"SELECT payload FROM events WHERE customer_id IN ({marks}) ORDER BY ts, key", part
                )
            ]
        return payloads

    def history(self, customers: Iterable[str]) -> pd.DataFrame:
        """Every stored event of ``customers`` as it arrived (one text column per field)."""
        payloads = self._payloads(customers)
        frame = pd.DataFrame.from_records([json.loads(p) for p in payloads], columns=self.fields())
        return frame.astype("string")

    def history_table(self, customers: Iterable[str], fields: Sequence[str] | None = None) -> pa.Table:
        """:meth:`history` as an Arrow table of text columns ``fields`` (default: :meth:`fields`),
        the payloads parsed by Arrow's JSON reader (the live scorer's path: no Python object per cell)."""
        import pyarrow as pa
        import pyarrow.json as pj

        schema = pa.schema([(f, pa.string()) for f in (self.fields() if fields is None else fields)])
        payloads = self._payloads(customers)
        if not payloads:
            return schema.empty_table()
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        # newline-delimited JSON: json.dumps escapes any newline inside a value
        table = pj.read_json(io.BytesIO("\n".join(payloads).encode()), parse_options=options)
        return table.select(schema.names)

    # ------------------------------------------------------------------ scores

    def put_scores(self, scores: pd.DataFrame, features: pd.DataFrame, reasons: Sequence[str]) -> None:
        """Replace the score rows of the customers in ``scores`` (one transaction, durable on return).

        ``features`` is indexed like ``scores``; ``reasons`` names the reason columns of ``scores``.
        """
        if scores.empty:
            return
        names = list(features.columns)
        # one object array (missing as None), then a record per row: no per-column pandas calls
        cells = features.astype(object).to_numpy()
        cells[features.isna().to_numpy()] = None
        feats = [dict(zip(names, row, strict=True)) for row in cells.tolist()]
        reason_lists = (
            scores[list(reasons)].astype(object).where(scores[list(reasons)].notna(), None).values.tolist()
            if reasons
            else [[] for _ in range(len(scores))]
        )
        rows = [
            (
                str(cid),
                float(p),
                int(bool(d)),
                str(b),
                int(bool(e)),
                str(pd.Timestamp(a).isoformat()),
                str(v),
                str(s),
                _PLAIN.encode([r for r in rs if r is not None]),
                _FEATURES.encode(f),
            )
            for cid, p, d, b, e, a, v, s, rs, f in zip(
                scores["customer_id"],
                scores["probability"],
                scores["decision"],
                scores["band"],
                scores["eligible"],
                scores["as_of"],
                scores["model_version"],
                scores["scored_at"],
                reason_lists,
                feats,
                strict=True,
            )
        ]
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _ready(self) -> bool:
        """The writer has created the tables (a reader may open the file a moment before)."""
        found = self._con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scores'")
        return found.fetchone() is not None

    def scores(self, customers: Iterable[str] | None = None) -> pd.DataFrame:
        """Current score rows (all, or of ``customers``; unknown ones are absent)."""
        cols = "customer_id, probability, decision, band, eligible, as_of, model_version, scored_at, reasons, features"
        records: list[Any] = []
        if not self._ready():
            pass
        elif customers is None:
            cur = self._con.execute(f"SELECT {cols} FROM scores ORDER BY customer_id")
            records = cur.fetchall()
        else:
            ids = list(dict.fromkeys(str(c) for c in customers))
            for start in range(0, len(ids), 900):
                part = ids[start : start + 900]
                marks = ",".join("?" * len(part))
                records += self._con.execute(
                    f"SELECT {cols} FROM scores WHERE customer_id IN ({marks})", part
                ).fetchall()
        frame = pd.DataFrame.from_records(records, columns=[c.strip() for c in cols.split(",")])
        frame["decision"] = frame["decision"].astype(bool)
        frame["eligible"] = frame["eligible"].astype(bool)
        frame["reasons"] = frame["reasons"].map(json.loads)
        frame["features"] = frame["features"].map(json.loads)
        return frame

    def score_count(self) -> int:
        if not self._ready():
            return 0
        return int(self._con.execute("SELECT count(*) FROM scores").fetchone()[0])


def _json_value(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# Encoders made once (json.dumps builds one per call when given options); the output is json.dumps's.
#: An event's canonical JSON (sorted keys, no spaces): its payload, hashed into its key.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_PLAIN = json.JSONEncoder()
_FEATURES = json.JSONEncoder(default=_json_value)
