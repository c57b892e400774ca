"""One small interface for event brokers, and the loop that feeds the live scorer from one.

The loop's contract, whatever the broker: a batch is acknowledged only after
:meth:`~propensity.workflows.live.LiveScorer.process` returned (its scores are durable), so a
crash re-delivers the un-acked batch, which the store makes harmless. Refused events go to the
broker's dead-letter channel with their reason, then are acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from propensity.workflows.live import BatchResult, LiveScorer

__all__ = ["Broker", "BrokerDown", "Message", "Sender", "StreamStats", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One event as delivered: the broker's id and the fields (text)."""

    id: str
    fields: Mapping[str, str]
    #: When the broker received it (epoch milliseconds), if it says.
    sent_ms: float | None = None


class BrokerDown(ConnectionError):
    """The broker cannot be reached (the loop waits and retries)."""


class Broker(Protocol):
    """What the stream scorer needs from a broker."""

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to ``count`` events for this consumer: first its own and dead consumers' un-acked
        ones, then new ones (waiting up to ``block_ms``)."""

    def ack(self, ids: Sequence[str]) -> None:
        """Mark events done (only after their scores are durable)."""

    def dead_letter(self, message: Message, reason: str, column: str | None, value: str | None) -> None:
        """Send a refused event, with why, to the dead-letter channel."""

    def publish(self, scores: pd.DataFrame) -> None:
        """Send new scores to the output channel (if any)."""

    def close(self) -> None: ...


class Sender(Protocol):
    """What a producer (``propensity replay``, the benchmark) needs from a broker."""

    def send(self, messages: Sequence[Mapping[str, str]]) -> list[str]:
        """Append events to the stream; they are on the broker when this returns. Returns their ids."""

    def backlog(self, group: str) -> int | None:
        """Events ``group`` has not finished (undelivered + delivered, un-acked); ``None``: unknown yet."""

    def close(self) -> None: ...


@dataclass
class StreamStats:
    """Running totals of :func:`run`."""

    batches: int = 0
    events: int = 0
    new: int = 0
    duplicates: int = 0
    dead: int = 0
    scored: int = 0
    reconnects: int = 0
    #: Seconds from each event reaching the broker to its batch being acknowledged (the caller
    #: may clear it).
    latencies: list[float] = field(default_factory=list)


def run(
    broker: Broker,
    scorer: LiveScorer,
    *,
    batch: int = 20_000,
    block_ms: int = 500,
    stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[BatchResult, StreamStats], None] | None = None,
    retry_seconds: float = 0.5,
) -> StreamStats:
    """Consume ``broker`` into ``scorer`` until ``stop()`` is true.

    Memory is bounded by ``batch``: the loop pulls at most that many events at a time, however
    fast the producer is; it takes what is waiting up to that, so batches grow with a backlog
    (each batch has a fixed cost of ~0.2 s: validation and feature queries, model, two commits). While the broker is down the loop waits ``retry_seconds`` and retries.
    """
    stats = StreamStats()
    while not stop():
        try:
            messages = broker.read(batch, block_ms)
        except BrokerDown as exc:
            stats.reconnects += 1
            log.warning("The broker is unreachable (%s); retrying in %.1f s.", exc, retry_seconds)
            time.sleep(retry_seconds)
            continue
        if not messages:
            continue
        result = scorer.process([m.fields for m in messages])
        while True:  # the scores are durable: now tell the broker, even if it takes a while
            try:
                for dead in result.dead:
                    broker.dead_letter(messages[dead.index], dead.reason, dead.column, dead.value)
                broker.publish(result.scores)
                broker.ack([m.id for m in messages])
                break
            except BrokerDown as exc:
                stats.reconnects += 1
                log.warning("The broker is unreachable (%s); retrying in %.1f s.", exc, retry_seconds)
                time.sleep(retry_seconds)
                if stop():
                    return stats
        now_ms = time.time() * 1000
        stats.latencies += [(now_ms - m.sent_ms) / 1000 for m in messages if m.sent_ms is not None]
        stats.batches += 1
        stats.events += result.events
        stats.new += result.new
        stats.duplicates += result.duplicates
        stats.dead += len(result.dead)
        stats.scored += len(result.scores)
        if on_batch is not None:
            on_batch(result, stats)
    return stats
