"""``propensity stream`` (live scores from a broker) and ``propensity replay`` (a log into a broker)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from propensity.cli._common import app, err, out, user_errors


@app.command()
def stream(
    model: Annotated[str, typer.Argument(help="An event-trained bundle folder, or models:/name@alias.")],
    source: Annotated[
        str, typer.Option("--source", help="The broker: redis://HOST:PORT/DB or kafka://HOST:PORT.")
    ] = "redis://127.0.0.1:6379/0",
    stream_name: Annotated[
        str, typer.Option("--stream", help="The stream (Kafka: topic) of events.")
    ] = "events",
    group: Annotated[str, typer.Option("--group", help="The consumer group.")] = "scorer",
    consumer: Annotated[
        str | None,
        typer.Option(
            "--consumer", help="This consumer's name (default: HOST-scorer; keep it across restarts)."
        ),
    ] = None,
    out_stream: Annotated[
        str | None, typer.Option("--out-stream", help="Publish each new score to this stream (Kafka: topic).")
    ] = None,
    dead_stream: Annotated[
        str | None,
        typer.Option(
            "--dead-stream", help="Refused events, with why (default: STREAM:dead; Kafka: STREAM-dead)."
        ),
    ] = None,
    store: Annotated[
        Path, typer.Option("--store", help="The live store (SQLite) of events and current scores.")
    ] = Path("live.db"),
    batch: Annotated[
        int,
        typer.Option(
            "--batch", min=1, help="Most events per micro-batch (it takes what is waiting, up to this)."
        ),
    ] = 20_000,
    block_ms: Annotated[
        int, typer.Option("--block-ms", min=1, help="Wait this long for new events before a smaller batch.")
    ] = 200,
    claim_idle_ms: Annotated[
        int,
        typer.Option(
            "--claim-idle-ms",
            min=1,
            help="Take over other consumers' events un-acked this long (Kafka: the group's session timeout).",
        ),
    ] = 30_000,
    reasons: Annotated[int, typer.Option("--reasons", min=0, max=10, help="Reasons kept per customer.")] = 3,
    max_batches: Annotated[
        int, typer.Option("--max-batches", min=0, help="Stop after this many batches (0: run until stopped).")
    ] = 0,
) -> None:
    """Consume events from a broker, keep the store's customer scores current (stop with Ctrl-C)."""
    from propensity.stream.broker import StreamStats, run
    from propensity.stream.dispatch import open_broker
    from propensity.workflows.live import BatchResult, LiveScorer
    from propensity.workflows.store import EventStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping: list[int] = []
    done = [0]  # batches so far (for --max-batches)

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    name = consumer or f"{socket.gethostname()}-scorer"
    with user_errors():
        live_store = EventStore(store)
        scorer = LiveScorer(model, live_store, reasons=reasons)
        broker = open_broker(
            source,
            stream_name,
            group,
            name,
            out_stream=out_stream,
            dead_stream=dead_stream,
            claim_idle_ms=claim_idle_ms,
        )
        out.print(
            f"Streaming {source} {stream_name!r} (group {group!r}, consumer {name!r}) into {store}; pid {os.getpid()}.",
            highlight=False,
        )

        def _report(result: BatchResult, stats: StreamStats) -> None:
            err.print(
                f"batch {stats.batches}: {result.events} events ({result.new} new, {result.duplicates} repeated, "
                f"{len(result.dead)} refused), {len(result.scores)} customers scored at {result.as_of} "
                f"in {result.seconds:.2f} s",
                highlight=False,
            )
            del stats.latencies[:]
            done[0] = stats.batches

        try:
            stats = run(
                broker,
                scorer,
                batch=batch,
                block_ms=block_ms,
                stop=lambda: bool(stopping) or 0 < max_batches <= done[0],
                on_batch=_report,
            )
        finally:
            broker.close()
            scorer.close()
            live_store.close()
    out.print(
        json.dumps(
            {
                k: getattr(stats, k)
                for k in ("batches", "events", "new", "duplicates", "dead", "scored", "reconnects")
            }
        ),
        highlight=False,
        soft_wrap=True,  # one line of JSON, however long, for the caller to parse
    )


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="The event log (CSV or Parquet), sent in file order.")],
    to: Annotated[
        str, typer.Option("--to", help="The broker: redis://HOST:PORT/DB or kafka://HOST:PORT.")
    ] = "redis://127.0.0.1:6379/0",
    stream_name: Annotated[
        str, typer.Option("--stream", help="The stream (Kafka: topic) to append to.")
    ] = "events",
    rate: Annotated[
        float, typer.Option("--rate", min=0, help="Events per second (0: as fast as possible).")
    ] = 0,
    group: Annotated[
        str | None, typer.Option("--group", help="With --max-backlog: the consumer group to wait for.")
    ] = None,
    max_backlog: Annotated[
        int,
        typer.Option(
            "--max-backlog", min=0, help="Pause while the group has more than this many events to do."
        ),
    ] = 0,
) -> None:
    """Stream an event log into a broker (the demo, the benchmark)."""
    from propensity.stream.replay import replay as send

    with user_errors():
        summary = send(events, to, stream_name, rate=rate, group=group, max_backlog=max_backlog)
    out.print(
        f"Sent {summary.events:,} events to {stream_name!r} in {summary.seconds:.1f} s "
        f"({summary.events_per_second:,.0f}/s).",
        highlight=False,
    )
    out.print(json.dumps(summary.to_dict()), highlight=False, soft_wrap=True)
