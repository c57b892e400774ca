"""The stream scorer against real brokers: batch parity, dead letters, kill -9 (redis-server and Kafka),
broker restart, backpressure (redis-server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from propensity.stream.dispatch import open_sender
from propensity.stream.redis import backlog, connect
from propensity.stream.replay import replay
from propensity.workflows.store import EventStore
from tests._processes import alive, stop_process
from tests.stream._helpers import assert_batch_parity, batch_validation, drain, wait_until_done

SRC = Path(__file__).resolve().parents[2] / "src"


def _valid_customers(log: Path) -> set[str]:
    from propensity.events.validate import load_events

    with load_events(log) as ev:
        return set(ev.engine.execute(ev.events.select("customer_id").distinct())["customer_id"].astype(str))


def test_live_scores_equal_batch_scores_of_the_same_log(broker_server, stream_model, stream_log, tmp_path):
    sent = replay(stream_log, broker_server.url, "events")
    assert sent.events == len(pd.read_parquet(stream_log))
    stats = drain(broker_server, stream_model, tmp_path / "live.db", batch=800, out_stream="scores")
    assert stats.batches >= 4 and stats.events == sent.events
    rows_ok, refused = batch_validation(stream_log)
    with EventStore(tmp_path / "live.db", readonly=True) as live:
        assert (
            live.event_count() == rows_ok == stats.new
        )  # exact duplicates are stored once, as batch keeps one
        assert set(live.scores()["customer_id"]) == _valid_customers(stream_log)
    assert stats.dead == refused > 0  # the same rules refuse the same rows
    assert len(broker_server.records(broker_server.dead_stream("events"))) == refused
    assert len(broker_server.records("scores")) == stats.scored
    assert assert_batch_parity(tmp_path / "live.db", stream_model, stream_log, tmp_path) == stats_customers(
        tmp_path / "live.db"
    )


def stats_customers(store: Path) -> int:
    with EventStore(store, readonly=True) as live:
        return live.score_count()


def test_poison_events_go_to_the_dead_letter_stream_with_their_reason(broker_server, stream_model, tmp_path):
    good = {"customer_id": "C1", "ts": "2024-03-01 10:00:00", "event_type": "view", "device": "mobile"}
    poison = [
        ({**good, "customer_id": ""}, "missing customer id", "customer_id"),
        ({**good, "ts": "31/31/2024"}, "unparseable timestamp", "ts"),
        ({**good, "event_type": "teleport"}, "unknown event type", "event_type"),
        ({**good, "event_type": "purchase", "amount": "-5"}, "negative amount on a non-return", "amount"),
        ({**good, "event_type": "purchase", "amount": "lots"}, "unparseable amount or quantity", "amount"),
        ({**good, "ts": "2999-01-01 00:00:00"}, "timestamp after the end of the data", "ts"),
    ]
    sender = open_sender(broker_server.url, "events")
    later = {**good, "ts": "2024-03-01 10:05:00", "event_type": "add_to_cart"}
    ids = sender.send([good, *(event for event, _, _ in poison), later, good])[1:-2]  # good again: harmless
    sender.close()
    stats = drain(broker_server, stream_model, tmp_path / "live.db")
    assert (stats.events, stats.new, stats.duplicates, stats.dead) == (9, 2, 1, len(poison))
    # by the refused event's id: a Kafka topic keeps order per partition only
    dead = {d["_id"]: d for d in broker_server.records(broker_server.dead_stream("events"))}
    assert {i: (d["_reason"], d["_column"]) for i, d in dead.items()} == {
        i: (reason, column) for i, (_, reason, column) in zip(ids, poison, strict=True)
    }
    assert dead[ids[1]]["_value"] == "31/31/2024" and dead[ids[1]]["ts"] == "31/31/2024"  # the event, as sent
    assert broker_server.backlog("events", "scorer") == 0  # dead letters are acknowledged too
    with EventStore(tmp_path / "live.db", readonly=True) as live:
        row = live.scores(["C1"]).iloc[0]
    assert row["as_of"] == "2024-03-01T10:05:01" and row["features"]["n_add_to_cart_7d"] == 1


@pytest.mark.kafka
def test_a_kafka_record_that_is_no_event_is_dead_lettered_as_it_is(tansu_server, stream_model, tmp_path):
    from confluent_kafka import Producer

    good = {"customer_id": "C1", "ts": "2024-03-01 10:00:00", "event_type": "view", "device": "mobile"}
    open_sender(tansu_server.url, "events").send([good])  # the topic, with one partition
    producer = Producer({"bootstrap.servers": tansu_server.url.removeprefix("kafka://")})
    for raw in (b"not json", b'["a", "list"]'):
        producer.produce("events", value=raw)
    producer.flush(10)
    stats = drain(tansu_server, stream_model, tmp_path / "live.db")
    assert (stats.events, stats.new, stats.dead) == (1, 1, 0)  # the loop never saw them
    dead = tansu_server.records("events-dead")
    assert sorted((d["_id"], d["_value"]) for d in dead) == [("0:1", "not json"), ("0:2", '["a", "list"]')]
    assert all(d["_reason"].startswith("not a JSON object of event fields") for d in dead)
    assert tansu_server.backlog("events", "scorer") == 0  # and their offsets are committed


def _scorer(
    model: Path, url: str, store: Path, consumer: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "propensity.cli",
        "stream",
        str(model),
        "--source",
        url,
        "--store",
        str(store),
    ]
    cmd += ["--consumer", consumer, "--batch", "300", "--block-ms", "100", *extra]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, timeout=30)


@pytest.mark.slow
def test_kill_9_mid_batch_then_another_consumer_loses_nothing(
    broker_server, stream_model, stream_log, tmp_path
):
    url = broker_server.url
    kafka = url.startswith("kafka://")
    replay(stream_log, url, "events")
    store, log = tmp_path / "live.db", tmp_path / "scorer.log"
    # Redis: the second consumer claims events idle 200 ms; Kafka: the group hands the partition of
    # a member silent for its session timeout (the first's) to the next member
    first = _scorer(stream_model, url, store, "first", log, "--claim-idle-ms", "3000")
    try:
        deadline = time.monotonic() + 120
        while not store.exists() or stats_customers(store) == 0:  # the first batch is durable
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        _stop(first)
    assert not alive(first.pid)
    assert (broker_server.backlog("events", "scorer") or 0) > 0  # a batch read, never acknowledged
    if not kafka:
        client = connect(url)
        assert client.xpending("events", "scorer")["consumers"][0]["name"] == "first"
        client.close()
    # another consumer takes the dead one's events over and finishes the stream
    claim = "3000" if kafka else "200"
    second = _scorer(stream_model, url, store, "second", log, "--claim-idle-ms", claim)
    try:
        wait_until_done(broker_server, "events", "scorer", timeout=120)
    finally:
        _stop(second)
    assert second.returncode == 0, log.read_text()[-3000:]
    assert kafka or "Claimed" in log.read_text()  # XAUTOCLAIM
    rows_ok, refused = batch_validation(stream_log)
    with EventStore(store, readonly=True) as live:
        assert live.event_count() == rows_ok  # none lost, none doubled
        assert set(live.scores()["customer_id"]) == _valid_customers(stream_log)
    assert broker_server.backlog("events", "scorer") == 0
    # a dead letter may repeat inside the un-acked window
    assert len(broker_server.records(broker_server.dead_stream("events"))) >= refused
    assert_batch_parity(store, stream_model, stream_log, tmp_path)


@pytest.mark.slow
def test_a_broker_restart_is_waited_out(redis_server, stream_model, stream_log, tmp_path):
    replay(stream_log, redis_server.url, "events")
    result: dict[str, object] = {}

    def consume() -> None:
        result["stats"] = drain(redis_server, stream_model, tmp_path / "live.db", batch=300, timeout=180)

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(1.0)
    redis_server.stop()  # mid-stream
    time.sleep(1.0)
    redis_server.start()  # same port, same append-only file
    worker.join(timeout=200)
    assert not worker.is_alive()
    stats = result["stats"]
    rows_ok, _ = batch_validation(stream_log)
    with EventStore(tmp_path / "live.db", readonly=True) as live:
        assert live.event_count() == rows_ok
    assert stats.reconnects > 0  # type: ignore[attr-defined]


def test_a_slow_scorer_holds_the_producer_back(redis_server, stream_model, stream_log, tmp_path):
    limit, batch = 600, 300
    seen: list[int] = []
    client = connect(redis_server.url)
    client.xgroup_create("events", "scorer", id="0", mkstream=True)
    producer = threading.Thread(
        target=lambda: seen.append(
            int(
                replay(
                    stream_log, redis_server.url, "events", group="scorer", max_backlog=limit
                ).waited_for_consumers
                > 0
            )
        )
    )
    producer.start()
    peaks: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peaks.append(backlog(client, "events", "scorer") or 0)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        time.sleep(0.5)
        stats = drain(redis_server, stream_model, tmp_path / "live.db", batch=batch, timeout=120)
    finally:
        producer.join(timeout=60)
        stop.set()
        watcher.join()
    assert seen == [1]  # the producer had to wait for the scorer
    assert stats.events == len(pd.read_parquet(stream_log))
    assert max(peaks) <= limit + 500  # the stream holds at most the limit and one pipeline of events
    assert stats.batches >= stats.events / batch  # and the scorer never held more than a batch
    client.close()
