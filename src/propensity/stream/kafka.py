"""Kafka as the broker (confluent-kafka): a consumer group, offsets committed after durable scores.

The URL is ``kafka://HOST:PORT[,HOST:PORT…][?property=value&…]``: the bootstrap servers, and
any librdkafka configuration property (security, timeouts) as query parameters.

An event is one record of the topic: a JSON object of text fields (what ``propensity replay``
sends), keyed by customer id so that a customer's events stay in order on one partition. The
stream scorer is one member of the consumer group, subscribed to the topic; offsets are never
committed automatically, only by :meth:`KafkaTopic.ack` (after the scores are durable), per
partition. A member that dies without committing stops heartbeating; after the session
timeout the group hands its partitions, from the last committed offsets, to the next member,
which reads the un-committed events again (the store makes that harmless). Refused events go
to ``<topic>-dead`` (Kafka topic names allow no ``:``) as JSON with ``_reason``, ``_column``,
``_value`` and the original ``_id`` (``partition:offset``); scores to ``out_stream`` as JSON
keyed by customer id. Dead letters and scores are flushed (acknowledged by the broker) before
the offsets are committed.

The live as-of is the latest event time the scorer has seen, so a log replayed in time order
scores as the batch path only when it is read in that order: ``propensity replay`` creates a
missing topic with one partition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from propensity.errors import ParameterError
from propensity.stream.broker import BrokerDown, Message
from propensity.stream.redis import PUBLISHED

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["KafkaSender", "KafkaTopic", "config"]

log = logging.getLogger(__name__)

#: Seconds to wait for the broker's first answer before saying it is unreachable.
CONNECT_TIMEOUT = 10.0


def _kafka() -> ModuleType:
    try:
        import confluent_kafka
    except ImportError as exc:
        raise ParameterError(
            "A kafka:// broker needs confluent-kafka: pip install 'propensity[kafka]'."
        ) from exc
    return confluent_kafka


def config(url: str) -> dict[str, str]:
    """The librdkafka configuration of ``url`` (``bootstrap.servers`` and the query's properties).

    Raises
    ------
    ParameterError
        ``url`` is not ``kafka://HOST:PORT[,HOST:PORT…]``.
    """
    parts = urlsplit(url)
    servers = [s for s in parts.netloc.split(",") if s]
    ok = parts.scheme == "kafka" and bool(servers) and parts.path in ("", "/")
    for server in servers:
        host, _, port = server.rpartition(":")
        ok = ok and bool(host) and port.isdigit() and 0 < int(port) < 65536
    if not ok:
        raise ParameterError(
            f"The broker URL must look like kafka://127.0.0.1:9092 (HOST:PORT, comma-separated for "
            f"several). Got {url!r} instead."
        )
    return {"bootstrap.servers": ",".join(servers), **dict(parse_qsl(parts.query))}


def _reachable(client: Any, url: str) -> None:
    """Ask ``client`` for the cluster's metadata; a silent broker is a :class:`ParameterError`."""
    kafka = _kafka()
    try:
        client.list_topics(timeout=CONNECT_TIMEOUT)
    except kafka.KafkaException as exc:
        raise ParameterError(
            f"Cannot reach the Kafka broker at {url} ({exc.args[0].str()}) within {CONNECT_TIMEOUT:.0f} s. "
            "Is it running?"
        ) from exc


class _DebugLog:
    """librdkafka's own log lines, at debug level: what matters reaches us as errors (``error_cb``,
    failed calls) and is said once; its lines repeat every reconnection attempt."""

    def log(self, level: int, msg: str, *args: Any) -> None:
        log.debug(msg, *args)


def _client(kind: str, settings: dict[str, Any], url: str) -> Any:
    """A confluent-kafka ``Consumer``/``Producer``/``AdminClient``; a bad property is a ParameterError."""
    kafka = _kafka()
    import confluent_kafka.admin

    make: Any = confluent_kafka.admin.AdminClient if kind == "admin" else getattr(kafka, kind)
    try:
        return make({"logger": _DebugLog(), **settings})
    except (kafka.KafkaException, ValueError, TypeError) as exc:
        raise ParameterError(f"The Kafka settings of {url} were refused: {exc}.") from exc


class _Delivery:
    """Collects a producer's delivery reports: the ids of what arrived (in the order produced, which
    reports across partitions do not keep), the errors of what did not."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.errors: list[str] = []

    def report(self) -> Callable[[Any, Any], None]:
        """The delivery callback of the next record produced."""
        index = len(self.ids)
        self.ids.append("")

        def delivered(error: Any, record: Any) -> None:
            if error is not None:
                self.errors.append(error.str())
            else:
                self.ids[index] = f"{record.partition()}:{record.offset()}"

        return delivered

    def flush(self, producer: Any, timeout: float = 30.0) -> list[str]:
        """Wait for every report; :class:`BrokerDown` when something did not arrive."""
        left = producer.flush(timeout)
        errors, ids = self.errors, self.ids
        self.ids, self.errors = [], []
        if left or errors:
            raise BrokerDown(f"{left} records undelivered after {timeout:.0f} s; {'; '.join(errors[:3])}")
        return ids


def _produce(producer: Any, topic: str, key: str | None, value: bytes, delivery: _Delivery) -> None:
    report = delivery.report()
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=report)
            producer.poll(0)
            return
        except BufferError:  # the local queue is full: let it drain
            producer.poll(0.1)


class KafkaTopic:
    """One member of a Kafka consumer group (see the module docstring).

    Parameters
    ----------
    url
        ``kafka://HOST:PORT[?property=value…]``.
    topic, group, consumer
        The events' topic, the consumer group, this member's client id (shown in the broker's logs).
    out_stream, dead_stream
        Topics for the scores (none by default) and the refused events (default ``<topic>-dead``).
    session_timeout_ms
        How long a silent member keeps its partitions before the group hands them over.

    Raises
    ------
    ParameterError
        A malformed URL, a refused setting, or a broker that does not answer.
    """

    def __init__(
        self,
        url: str,
        topic: str,
        group: str,
        consumer: str,
        *,
        out_stream: str | None = None,
        dead_stream: str | None = None,
        session_timeout_ms: int = 30_000,
    ) -> None:
        self.url, self.topic, self.group, self.consumer = url, topic, group, consumer
        self.out_stream = out_stream
        self.dead_stream = dead_stream or f"{topic}-dead"
        settings = config(url)
        self._kafka = _kafka()
        self._down: str | None = None
        self.consumer_client = _client(
            "Consumer",
            {
                **settings,
                "group.id": group,
                "client.id": consumer,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": max(100, min(3000, session_timeout_ms // 3)),
                "error_cb": self._on_error,
            },
            url,
        )
        try:
            _reachable(self.consumer_client, url)
        except ParameterError:
            self.consumer_client.close()
            raise
        self.producer = _client("Producer", {**settings, "linger.ms": 5, "error_cb": self._on_error}, url)
        self._delivery = _Delivery()
        self._skipped: list[
            tuple[int, int]
        ] = []  # undecodable records, dead-lettered, to commit with the next ack
        self.consumer_client.subscribe([topic])

    def _on_error(self, error: Any) -> None:
        """librdkafka's client-wide errors (it reconnects by itself): remember the broker is down."""
        kafka = self._kafka
        if error.code() in (kafka.KafkaError._ALL_BROKERS_DOWN, kafka.KafkaError._TRANSPORT):
            self._down = error.str()
        else:
            log.warning("Kafka: %s", error.str())

    def read(self, count: int, block_ms: int) -> list[Message]:
        kafka = self._kafka
        if self._down is not None:  # before consuming: what consume() returns must not be dropped
            down, self._down = self._down, None
            raise BrokerDown(down)
        out = []
        for record in self.consumer_client.consume(num_messages=count, timeout=block_ms / 1000):
            error = record.error()
            if error is not None:
                if error.code() != kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:  # no topic yet: wait for it
                    log.warning("Kafka: %s", error.str())
                continue
            mid = f"{record.partition()}:{record.offset()}"
            kind, stamp = record.timestamp()
            try:
                value = json.loads(record.value() or b"")
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                self._dead_record(record, mid, exc)
                continue
            fields = {str(k): "" if v is None else str(v) for k, v in value.items()}
            out.append(Message(mid, fields, float(stamp) if kind != kafka.TIMESTAMP_NOT_AVAILABLE else None))
        if not out and self._skipped:  # nothing for the loop to acknowledge: commit past them now
            self.ack([])
        return out

    def _dead_record(self, record: Any, mid: str, exc: Exception) -> None:
        """A record that is not an event at all: to the dead letters, committed with the next ack."""
        raw = (record.value() or b"").decode("utf-8", "replace")
        fields = {"_reason": f"not a JSON object of event fields ({exc})", "_id": mid}
        fields |= {"_column": "", "_value": raw[:1000]}
        _produce(self.producer, self.dead_stream, None, json.dumps(fields).encode(), self._delivery)
        self._skipped.append((record.partition(), record.offset()))

    def ack(self, ids: Sequence[str]) -> None:
        kafka = self._kafka
        self._delivery.flush(self.producer)  # dead letters and scores first
        ends: dict[int, int] = {}
        for partition, offset in [*(tuple(map(int, i.split(":"))) for i in ids), *self._skipped]:
            ends[partition] = max(ends.get(partition, -1), offset + 1)
        if not ends:
            return
        offsets = [kafka.TopicPartition(self.topic, p, o) for p, o in sorted(ends.items())]
        try:
            self.consumer_client.commit(offsets=offsets, asynchronous=False)
        except kafka.KafkaException as exc:
            error = exc.args[0]
            if error.code() in (
                kafka.KafkaError.REBALANCE_IN_PROGRESS,
                kafka.KafkaError.ILLEGAL_GENERATION,
                kafka.KafkaError.UNKNOWN_MEMBER_ID,
                kafka.KafkaError._ASSIGNMENT_LOST,
            ):
                # the partitions moved to another member, which reads these events again: harmless
                log.warning("Kafka: offsets not committed (%s); the group re-delivers them.", error.str())
            elif error.retriable() or error.code() in (
                kafka.KafkaError._TRANSPORT,
                kafka.KafkaError._TIMED_OUT,
            ):
                raise BrokerDown(error.str()) from exc
            else:
                raise
        self._skipped = []

    def dead_letter(self, message: Message, reason: str, column: str | None, value: str | None) -> None:
        fields = {**message.fields, "_reason": reason, "_id": message.id}
        fields |= {"_column": column or "", "_value": value or ""}
        key = message.fields.get("customer_id") or None
        _produce(self.producer, self.dead_stream, key, json.dumps(fields).encode(), self._delivery)

    def publish(self, scores: pd.DataFrame) -> None:
        if self.out_stream is None or scores.empty:
            return
        cols = [c for c in PUBLISHED if c in scores.columns]
        for rec in scores[cols].astype(str).to_dict("records"):
            _produce(
                self.producer, self.out_stream, rec["customer_id"], json.dumps(rec).encode(), self._delivery
            )

    def close(self) -> None:
        try:
            self._delivery.flush(self.producer, timeout=5)
        except BrokerDown as exc:
            log.warning("Kafka: %s", exc)
        self.consumer_client.close()  # leaves the group: the others take its partitions at once


class KafkaSender:
    """A producer of events into one Kafka topic (created with one partition when missing).

    Raises
    ------
    ParameterError
        A malformed URL, a refused setting, or a broker that does not answer.
    """

    def __init__(self, url: str, topic: str) -> None:
        self.url, self.topic = url, topic
        self.settings = config(url)
        self.producer = _client("Producer", {**self.settings, "linger.ms": 5}, url)
        _reachable(self.producer, url)
        self._delivery = _Delivery()
        self._lag: dict[str, Any] = {}  # group -> a consumer that only reads the group's offsets
        self._ends: dict[int, int] = {}  # partition -> the offset after the last record sent here
        self._create_topic()

    def _create_topic(self) -> None:
        kafka = _kafka()
        import confluent_kafka.admin

        admin = _client("admin", self.settings, self.url)
        if self.topic in admin.list_topics(timeout=CONNECT_TIMEOUT).topics:
            return
        future = admin.create_topics([confluent_kafka.admin.NewTopic(self.topic, num_partitions=1)])[
            self.topic
        ]
        try:
            future.result(timeout=CONNECT_TIMEOUT)
        except kafka.KafkaException as exc:
            if exc.args[0].code() != kafka.KafkaError.TOPIC_ALREADY_EXISTS:  # a race with another producer
                raise ParameterError(f"Cannot create the topic {self.topic!r} on {self.url}: {exc}") from exc

    def send(self, messages: Sequence[Mapping[str, str]]) -> list[str]:
        for m in messages:
            key = m.get("customer_id") or None
            _produce(self.producer, self.topic, key, json.dumps(dict(m)).encode(), self._delivery)
        ids = self._delivery.flush(self.producer)
        for i in ids:
            partition, offset = map(int, i.split(":"))
            self._ends[partition] = max(self._ends.get(partition, 0), offset + 1)
        return ids

    def backlog(self, group: str) -> int | None:
        """Records after ``group``'s committed offsets (all of them while it has committed none).

        The end of a partition is the broker's high watermark or the end of what this sender
        wrote, whichever is later (some Kafka-protocol brokers, tansu 0.6, under-report the high
        watermark of a log written in batches).
        """
        kafka = _kafka()
        if group not in self._lag:
            self._lag[group] = _client("Consumer", {**self.settings, "group.id": group}, self.url)
        reader = self._lag[group]
        try:
            topic = reader.list_topics(self.topic, timeout=CONNECT_TIMEOUT).topics.get(self.topic)
            if topic is None or topic.error is not None:
                return None
            parts = [kafka.TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
            total = 0
            for tp in reader.committed(parts, timeout=CONNECT_TIMEOUT):
                low, high = reader.get_watermark_offsets(tp, timeout=CONNECT_TIMEOUT, cached=False)
                high = max(high, self._ends.get(tp.partition, 0))
                total += max(high - (tp.offset if tp.offset >= 0 else low), 0)
        except kafka.KafkaException as exc:
            raise BrokerDown(exc.args[0].str()) from exc
        return total

    def close(self) -> None:
        for reader in self._lag.values():
            reader.close()
        self._delivery.flush(self.producer, timeout=5)
