"""Drift of what a service scores, over a sliding window of its last records.

:class:`LiveDrift` keeps the last ``size`` records a service scored (their typed feature values)
and the probabilities it served. The hot path only appends to two bounded deques; the tests run
when someone asks (``/metrics``), with **the same code as** ``propensity monitor``: the window is
registered as a DuckDB relation for :func:`~propensity.monitoring.drift.feature_drift` and the
probabilities go through :func:`~propensity.monitoring.performance.score_drift`. A snapshot is
reused while nothing was scored, and for ``max_age`` seconds after, so frequent scrapes cost nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from propensity.manifest import Manifest
from propensity.monitoring.drift import FeatureDrift, feature_drift
from propensity.monitoring.performance import score_drift
from propensity.monitoring.thresholds import STATUS_ORDER, Thresholds

__all__ = ["LiveDrift", "LiveSnapshot"]


@dataclass
class LiveSnapshot:
    """The drift tests of one window: every feature, the scores, and the worst status."""

    rows: int
    status: str
    features: list[FeatureDrift] = field(default_factory=list)
    score: dict[str, Any] = field(default_factory=dict)


class LiveDrift:
    """A bounded window of scored records and their drift against the bundle's training profile.

    Parameters
    ----------
    manifest
        The served model's manifest (its ``profile`` and ``score_profile`` are the reference).
    size
        Records kept: the newest ``size`` are tested, older ones fall out.
    thresholds
        Alert levels (the monitor's defaults when ``None``); tests need ``thresholds.min_rows`` values.
    max_age
        Seconds a snapshot is reused before the window is tested again.
    """

    def __init__(
        self,
        manifest: Manifest,
        size: int = 10_000,
        thresholds: Thresholds | None = None,
        max_age: float = 5.0,
    ) -> None:
        self.manifest = manifest
        self.size = size
        self.thresholds = thresholds or Thresholds()
        self.max_age = max_age
        self._records: deque[Mapping[str, Any]] = deque(maxlen=size)
        self._probabilities: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._version = 0
        self._cached: tuple[int, float, LiveSnapshot] | None = None
        self._datetimes = [f.name for f in manifest.input_schema.features if f.role == "datetime"]

    def add(self, record: Mapping[str, Any], probability: float) -> None:
        """Keep one scored record (``{feature: typed value}``) and its probability."""
        with self._lock:
            self._records.append(record)
            self._probabilities.append(probability)
            self._version += 1

    def add_many(self, records: Iterable[Mapping[str, Any]], probabilities: Iterable[float]) -> None:
        """Keep a batch of scored records and their probabilities."""
        with self._lock:
            self._records.extend(records)
            self._probabilities.extend(float(p) for p in probabilities)
            self._version += 1

    def clear(self) -> None:
        """Forget every record (e.g. after the service scored its warm-up example)."""
        with self._lock:
            self._records.clear()
            self._probabilities.clear()
            self._version += 1

    def __len__(self) -> int:
        return len(self._records)

    def snapshot(self) -> LiveSnapshot:
        """The drift tests of the current window (the last one while nothing was scored or it is recent)."""
        now = time.monotonic()
        with self._lock:
            version, cached = self._version, self._cached
            if cached is not None and (cached[0] == version or now - cached[1] < self.max_age):
                return cached[2]
            records = list(self._records)
            probabilities = np.fromiter(self._probabilities, dtype=float, count=len(self._probabilities))
        result = self._test(records, probabilities)
        with self._lock:
            self._cached = (version, now, result)
        return result

    def _test(self, records: list[Mapping[str, Any]], probabilities: np.ndarray) -> LiveSnapshot:
        if not records:
            return LiveSnapshot(rows=0, status="n/a")
        frame = pd.DataFrame.from_records(records).drop(columns=self._datetimes, errors="ignore")
        con = duckdb.connect()
        try:
            con.register("live_window", frame)
            rows, features = feature_drift(con, "live_window", self.manifest, self.thresholds)
        finally:
            con.close()
        score = score_drift(probabilities, self.manifest, self.thresholds)
        statuses = [f.status for f in features] + [score["status"]]
        status = max(statuses, key=STATUS_ORDER.__getitem__) if rows >= self.thresholds.min_rows else "n/a"
        return LiveSnapshot(rows=rows, status=status, features=features, score=score)
