"""Scoring an uploaded table for the Score page — plain functions, so bad files are tested directly.

Every problem a user can cause (unsupported type, empty or unparseable file, missing columns,
unreadable values) ends as a :class:`~propensity.errors.DataError` with a message naming the
file, column or value, or as rows in the quarantine table; never as a traceback.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from propensity.errors import DataError, PropensityError, SchemaError
from propensity.explain import reason_columns
from propensity.pipeline import TrainedModel
from propensity.sources import read_table, table_format

__all__ = ["MAX_ROWS", "ScoredUpload", "read_upload", "score_upload"]

log = logging.getLogger(__name__)

#: Rows the dashboard scores in one upload (``propensity score`` streams bigger files).
MAX_ROWS = 200_000


def read_upload(name: str, payload: bytes) -> pd.DataFrame:
    """Read an uploaded CSV (any common delimiter, compressed or not) or Parquet file.

    Raises
    ------
    DataError
        Unsupported file type, empty file, unparseable content, or more than :data:`MAX_ROWS` rows.
    """
    shown = Path(name).name or "upload"
    table_format(shown)  # the file type, judged by its name, before anything is written
    if not payload:
        raise DataError(f"'{shown}' is empty: there is no header and no rows.")
    try:
        with tempfile.TemporaryDirectory(prefix="propensity-upload-") as tmp:
            path = Path(tmp) / shown
            path.write_bytes(payload)
            frame = read_table(path)
    except PropensityError as exc:
        raise DataError(str(exc).replace(str(Path(tmp) / shown), shown)) from exc
    except Exception as exc:  # a reader's own error on a malformed file is still the file's problem
        log.warning("reading the upload %s failed: %s", shown, exc)
        raise DataError(f"'{shown}' cannot be read: {type(exc).__name__}: {exc}") from exc
    if len(frame) > MAX_ROWS:
        raise DataError(
            f"'{shown}' has {len(frame):,} rows; the dashboard scores up to {MAX_ROWS:,}. "
            f"Use: propensity score MODEL {shown} --out scores.csv --reasons 3"
        )
    return frame


@dataclass
class ScoredUpload:
    """The scores (with reasons) of the valid rows and what was wrong with the others."""

    results: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int
    missing_optional: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)


def score_upload(model: TrainedModel, frame: pd.DataFrame, *, reasons: int = 3) -> ScoredUpload:
    """Score a table's valid rows with ``reasons`` reason codes; invalid rows go to ``quarantine``.

    Raises
    ------
    SchemaError
        A required input column is absent (the message names it and lists the file's columns).
    """
    missing_req, missing_opt, unexpected = model.check_columns(list(map(str, frame.columns)))
    if missing_req:
        raise SchemaError(
            f"The file lacks the required column(s) {', '.join(missing_req)} that the model was trained on "
            f"(it has: {', '.join(map(str, list(frame.columns)[:30]))})."
        )
    scores, prepared = model.score_frame(frame)
    good = prepared.features[prepared.good]
    results = pd.concat([scores, reason_columns(model, good, reasons)], axis=1) if reasons else scores
    return ScoredUpload(
        results=results,
        quarantine=prepared.quarantine.to_frame(),
        rows_in=len(frame),
        missing_optional=missing_opt,
        unexpected=[str(c) for c in unexpected],
        unknown_categories={c: n for c, n in prepared.unknown_categories.items() if n},
    )
