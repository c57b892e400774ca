"""Choosing a broker from its URL: the one place a scheme (``redis://``, ``kafka://``) picks a module.

Like engines dispatched by name, each broker lives in its own module (``redis.py``, ``kafka.py``)
behind :class:`~propensity.stream.broker.Broker` (consuming) and
:class:`~propensity.stream.broker.Sender` (producing); its client library is imported only when
a URL names it.
"""

from __future__ import annotations

from propensity.errors import ParameterError
from propensity.stream.broker import Broker, Sender

__all__ = ["SCHEMES", "open_broker", "open_sender"]


#: URL schemes and the module (``propensity.stream.<name>``) that speaks to that broker.
SCHEMES = {"redis": "redis", "rediss": "redis", "unix": "redis", "kafka": "kafka"}


def _backend(url: str) -> str:
    """The broker module for ``url``: the one place a broker is chosen from the URL's scheme.

    Raises
    ------
    ParameterError
        ``url`` has none of the known schemes.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ParameterError(
            "The broker URL must look like redis://127.0.0.1:6379/0 (Redis Streams) or "
            f"kafka://127.0.0.1:9092 (Kafka). Got {url!r} instead."
        )
    return SCHEMES[scheme]


def open_broker(
    url: str,
    stream: str,
    group: str,
    consumer: str,
    *,
    out_stream: str | None = None,
    dead_stream: str | None = None,
    claim_idle_ms: int = 30_000,
) -> Broker:
    """The consumer ``consumer`` of ``group`` on ``stream``, for the broker ``url`` names.

    ``claim_idle_ms``: how long another consumer's un-acked events wait before this one takes
    them (Redis: XAUTOCLAIM's idle time; Kafka: the session timeout after which the group hands
    a silent member's partitions over).

    Raises
    ------
    ParameterError
        An unknown URL scheme, a malformed URL, or (Kafka) a broker that does not answer.
    """
    if _backend(url) == "kafka":
        from propensity.stream.kafka import KafkaTopic

        return KafkaTopic(
            url,
            stream,
            group,
            consumer,
            out_stream=out_stream,
            dead_stream=dead_stream,
            session_timeout_ms=claim_idle_ms,
        )
    from propensity.stream.redis import RedisStreams

    return RedisStreams(
        url,
        stream,
        group,
        consumer,
        out_stream=out_stream,
        dead_stream=dead_stream,
        claim_idle_ms=claim_idle_ms,
    )


def open_sender(url: str, stream: str) -> Sender:
    """A producer of events into ``stream`` on the broker ``url`` names.

    Raises
    ------
    ParameterError
        An unknown URL scheme, a malformed URL, or a broker that does not answer.
    """
    if _backend(url) == "kafka":
        from propensity.stream.kafka import KafkaSender

        return KafkaSender(url, stream)
    from propensity.stream.redis import RedisSender

    return RedisSender(url, stream)
