"""Redis Streams as the broker: consumer groups, XACK after durable scores, XAUTOCLAIM of the dead.

The stream scorer is one consumer of a group. It reads, in this order: its own un-acked events
(left by a previous run under the same consumer name that was killed), events other consumers
left un-acked for longer than ``claim_idle_ms`` (XAUTOCLAIM: a dead consumer's batch), then new
events. Refused events go to ``<stream>:dead`` with ``_reason``, ``_column``, ``_value`` and the
original ``_id``; scores to ``out_stream`` when given (trimmed to about ``out_maxlen``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from propensity.errors import ParameterError
from propensity.stream.broker import BrokerDown, Message

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["RedisSender", "RedisStreams", "backlog", "connect"]

log = logging.getLogger(__name__)

#: Score fields published to the output stream.
PUBLISHED = ("customer_id", "probability", "decision", "band", "eligible", "as_of", "model_version")


def connect(url: str) -> Any:
    """A ``redis.Redis`` client for ``url`` (``redis://host:port/db``), text responses.

    Raises
    ------
    ParameterError
        ``url`` is not a redis URL.
    """
    import redis

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ParameterError(f"The broker URL must look like redis://127.0.0.1:6379/0. Got {url!r} instead.")
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)


def backlog(client: Any, stream: str, group: str) -> int | None:
    """Events of ``stream`` that ``group`` has not finished: undelivered (lag) + delivered, un-acked.

    ``None`` when the stream or the group does not exist yet.
    """
    import redis

    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet
        return None
    for g in groups:
        if g["name"] == group:
            lag = g.get("lag")
            if lag is None:  # unknown to the server (e.g. after a restart): count what is after the group
                after = client.xrange(stream, min=f"({g['last-delivered-id']}", max="+", count=100_000)
                lag = len(after)
            return int(lag) + int(g.get("pending") or 0)
    return None


@contextmanager
def _down() -> Iterator[None]:
    """Connection failures as :class:`BrokerDown` (the loop waits and retries)."""
    import redis

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerDown(str(exc) or type(exc).__name__) from exc
    except redis.ResponseError as exc:
        if str(exc).startswith("LOADING"):  # a restarted server reading its data back
            raise BrokerDown(str(exc)) from exc
        raise


def _messages(entries: Sequence[Any]) -> list[Message]:
    out = []
    for mid, fields in entries:
        if fields is None:  # deleted from the stream while pending
            continue
        out.append(Message(mid, fields, float(mid.split("-", 1)[0])))
    return out


class RedisStreams:
    """One consumer of a Redis Streams consumer group (see the module docstring)."""

    def __init__(
        self,
        url: str,
        stream: str,
        group: str,
        consumer: str,
        *,
        out_stream: str | None = None,
        dead_stream: str | None = None,
        claim_idle_ms: int = 30_000,
        out_maxlen: int = 1_000_000,
    ) -> None:
        self.url, self.stream, self.group, self.consumer = url, stream, group, consumer
        self.out_stream = out_stream
        self.dead_stream = dead_stream or f"{stream}:dead"
        self.claim_idle_ms = claim_idle_ms
        self.out_maxlen = out_maxlen
        self.client = connect(url)
        self._own_pending = True
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._grouped = False

    def _ensure_group(self) -> None:
        import redis

        if self._grouped:
            return
        with _down():
            try:
                self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._grouped = True

    def read(self, count: int, block_ms: int) -> list[Message]:
        import redis

        self._ensure_group()
        try:
            with _down():
                if self._own_pending:  # what this consumer read but never acknowledged
                    got = self.client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count)
                    entries = got[0][1] if got else []
                    if entries:
                        return _messages(entries)
                    self._own_pending = False
                if time.monotonic() >= self._next_claim:  # what dead consumers left
                    cursor, claimed, *_ = self.client.xautoclaim(
                        self.stream,
                        self.group,
                        self.consumer,
                        min_idle_time=self.claim_idle_ms,
                        start_id=self._claim_cursor,
                        count=count,
                    )
                    self._claim_cursor = cursor
                    if cursor == "0-0":  # a full pass: look again in a while
                        self._next_claim = time.monotonic() + max(self.claim_idle_ms / 2000, 0.05)
                    if claimed:
                        log.info("Claimed %d pending events of other consumers.", len(claimed))
                        return _messages(claimed)
                got = self.client.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
                )
                return _messages(got[0][1]) if got else []
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # the server lost the group (restarted without persistence)
                log.warning("The consumer group %r is gone on the broker; creating it again.", self.group)
                self._grouped = False
                return []
            raise
        except BrokerDown:
            self._own_pending = True  # a restarted server: start again from what we hold
            raise

    def ack(self, ids: Sequence[str]) -> None:
        with _down():
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(ids), 5000):
                pipe.xack(self.stream, self.group, *ids[start : start + 5000])
            pipe.execute()

    def dead_letter(self, message: Message, reason: str, column: str | None, value: str | None) -> None:
        fields = {**message.fields, "_reason": reason, "_id": message.id}
        fields |= {"_column": column or "", "_value": value or ""}
        with _down():
            self.client.xadd(self.dead_stream, fields)

    def publish(self, scores: pd.DataFrame) -> None:
        if self.out_stream is None or scores.empty:
            return
        cols = [c for c in PUBLISHED if c in scores.columns]
        records = scores[cols].astype(str).to_dict("records")
        with _down():
            pipe = self.client.pipeline(transaction=False)
            for rec in records:
                pipe.xadd(self.out_stream, rec, maxlen=self.out_maxlen, approximate=True)
            pipe.execute()

    def close(self) -> None:
        self.client.close()


class RedisSender:
    """A producer of events into one Redis stream (XADD, pipelined)."""

    def __init__(self, url: str, stream: str) -> None:
        import redis

        self.url, self.stream = url, stream
        self.client = connect(url)
        try:
            self.client.ping()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.client.close()
            raise ParameterError(f"Cannot reach the Redis server at {url} ({exc}). Is it running?") from exc

    def send(self, messages: Sequence[Mapping[str, str]]) -> list[str]:
        with _down():
            pipe = self.client.pipeline(transaction=False)
            for m in messages:
                pipe.xadd(self.stream, dict(m))
            return [str(i) for i in pipe.execute()]

    def backlog(self, group: str) -> int | None:
        with _down():
            return backlog(self.client, self.stream, group)

    def close(self) -> None:
        self.client.close()
