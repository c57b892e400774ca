"""What the stream tests share: draining a stream in-process, and the batch answer to compare with."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from propensity.events.validate import DUPLICATE, load_events
from propensity.stream.broker import StreamStats, run
from propensity.stream.dispatch import open_broker
from propensity.workflows.events import score_events
from propensity.workflows.live import LiveScorer
from propensity.workflows.store import EventStore


def wait_until_done(server: Any, stream: str, group: str, timeout: float = 90.0) -> None:
    """Wait until ``group`` has delivered and acknowledged every event of ``stream`` on ``server``
    (a broker fixture of conftest.py)."""
    deadline = time.monotonic() + timeout
    while server.backlog(stream, group) != 0:
        assert time.monotonic() < deadline, f"{group} still has {server.backlog(stream, group)} events to do"
        time.sleep(0.1)


def drain(
    server: Any,
    model: Path,
    store: Path,
    *,
    batch: int = 800,
    stream: str = "events",
    group: str = "scorer",
    consumer: str = "test",
    timeout: float = 90.0,
    **broker_options: Any,
) -> StreamStats:
    """Run the scorer in this process until the group has nothing left to do on ``server``."""
    deadline = time.monotonic() + timeout
    # Kafka: a group's first join waits on tansu for half the session timeout (claim_idle_ms)
    broker_options.setdefault("claim_idle_ms", 2000)

    def done() -> bool:
        assert time.monotonic() < deadline, "the stream was not drained in time"
        return server.backlog(stream, group) == 0  # None while the broker restarts

    with EventStore(store) as live:
        scorer = LiveScorer(model, live)
        broker = open_broker(server.url, stream, group, consumer, **broker_options)
        try:
            return run(broker, scorer, batch=batch, block_ms=100, stop=done)
        finally:
            broker.close()
            scorer.close()


def batch_validation(log: Path) -> tuple[int, int]:
    """(valid distinct events, rows refused for a reason other than duplication) by batch validation."""
    with load_events(log) as ev:
        report = ev.report
    refused = sum(n for reason, n in report.reasons.items() if reason != DUPLICATE)
    return report.rows_ok, refused


def assert_batch_parity(store: Path, model: Path, log: Path, tmp: Path) -> int:
    """Every stored customer's live score equals ``score_events(model, log, as_of=T)`` at its own as-of T.

    Returns how many customers were compared.
    """
    with EventStore(store, readonly=True) as live:
        scores = live.scores()
    assert not scores.empty
    compared = 0
    for as_of, group in scores.groupby("as_of"):
        out = tmp / f"batch_{pd.Timestamp(as_of):%Y%m%d%H%M%S}.parquet"
        score_events(model, log, out, as_of=as_of)
        batch = pd.read_parquet(out).assign(customer_id=lambda f: f["customer_id"].astype(str))
        batch = batch.set_index("customer_id").reindex(group["customer_id"])
        assert batch["probability"].notna().all(), f"customers scored live but not in batch at {as_of}"
        np.testing.assert_array_equal(group["probability"].to_numpy(), batch["probability"].to_numpy())
        np.testing.assert_array_equal(group["decision"].to_numpy(), batch["decision"].to_numpy())
        np.testing.assert_array_equal(group["band"].to_numpy(), batch["band"].astype(str).to_numpy())
        np.testing.assert_array_equal(group["eligible"].to_numpy(), batch["eligible"].to_numpy())
        compared += len(group)
    return compared
