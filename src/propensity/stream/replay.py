"""Stream an event log into a broker at a steady rate (the demo and the benchmark's producer)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from propensity.errors import ParameterError
from propensity.sources import table_format
from propensity.stream.broker import Sender
from propensity.stream.dispatch import open_sender

__all__ = ["ReplaySummary", "log_messages", "replay"]

log = logging.getLogger(__name__)


@dataclass
class ReplaySummary:
    """What :func:`replay` sent."""

    source: str
    stream: str
    events: int = 0
    seconds: float = 0.0
    events_per_second: float = 0.0
    waited_for_consumers: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str:
    """A cell as the text a broker carries: missing → "" (as an empty CSV cell), floats exactly."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def log_messages(source: str | Path | pd.DataFrame, *, chunk: int = 10_000) -> Iterator[list[dict[str, str]]]:
    """The rows of a log, in file order, as lists of text fields (CSV cells exactly as written)."""
    if isinstance(source, pd.DataFrame):
        frame = source
    elif table_format(source) == "csv":
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    else:
        frame = pd.read_parquet(source)
    cols = list(frame.columns)
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        yield [{c: _text(v) for c, v in zip(cols, row, strict=True)} for row in part.itertuples(index=False)]


def replay(
    source: str | Path | pd.DataFrame,
    url: str,
    stream: str,
    *,
    rate: float = 0.0,
    group: str | None = None,
    max_backlog: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Send every row of ``source`` to ``stream`` on the broker ``url`` (``redis://…`` or
    ``kafka://…``), ``rate`` events per second (0: as fast as possible).

    With ``group`` and ``max_backlog``, sending pauses while that consumer group has more than
    ``max_backlog`` events not yet done (backpressure: the stream stays bounded).

    Raises
    ------
    ParameterError
        A negative rate or backlog, an unknown or malformed broker URL, a broker that does not answer.
    """
    if rate < 0 or max_backlog < 0:
        raise ParameterError(f"rate and max_backlog must be >= 0. Got {rate} and {max_backlog} instead.")
    sender = open_sender(url, stream)
    summary = ReplaySummary(
        source="DataFrame" if isinstance(source, pd.DataFrame) else str(source), stream=stream
    )
    started = time.perf_counter()
    step = 500 if not rate else max(1, min(500, int(rate / 20)))
    try:
        for messages in log_messages(source):
            for start in range(0, len(messages), step):
                part = messages[start : start + step]
                if group and max_backlog:
                    summary.waited_for_consumers += _wait_for_backlog(sender, group, max_backlog)
                sender.send(part)
                summary.events += len(part)
                if rate:
                    ahead = summary.events / rate - (time.perf_counter() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                if progress is not None:
                    progress(summary.events)
    finally:
        sender.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.events_per_second = round(summary.events / summary.seconds, 1) if summary.seconds else 0.0
    return summary


def _wait_for_backlog(sender: Sender, group: str, limit: int) -> float:
    """Sleep while ``group`` has more than ``limit`` events to do; return the seconds waited."""
    waited = 0.0
    while True:
        lag = sender.backlog(group)
        if lag is None or lag <= limit:
            return waited
        time.sleep(0.02)
        waited += 0.02
