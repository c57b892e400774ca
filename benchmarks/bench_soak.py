"""Soak: `propensity serve` under mixed valid and hostile traffic for minutes; RSS must stay flat.

One real server (one worker, API keys on) on the LightGBM model of ``bench_api``. Four client
threads send, round-robin: valid ``/predict``, valid ``/predict/batch`` of 100, malformed JSON,
wrong types and unknown fields (422), a missing key (401), an oversized body (413), a batch over
the limit, and ``/metrics`` (which tests the live drift window). The server's RSS is read from
/proc every 30 s. Figures: RSS growth from the first sample after warm-up to the last (MiB; the
baseline is the first sample, the ratio first/last), requests served, 5xx answers and transport
errors (both must be 0).

    python -m benchmarks.bench_soak            # 5 minutes
    python -m benchmarks.bench_soak --quick    # 1 minute
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks._common import WORK, Figure, emit
from benchmarks.bench_api import KEY, _free_port, _start, _stop, _train

QUICK = True
COMMAND = "python -m benchmarks.bench_soak"
SAMPLE_SECONDS = 30
THREADS = 4


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _requests(model: Any) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(method, path, body, headers) of every kind of request the soak cycles through."""
    from propensity.datasets import make_customer_table

    table = make_customer_table(200, seed=9)
    columns = [model.id_column, *model.features]
    records = json.loads(table[columns].to_json(orient="records"))
    good = {"X-API-Key": KEY, "Content-Type": "application/json"}
    one = json.dumps(records[0]).encode()
    wrong = json.dumps({**records[1], model.features[0]: "not a number", "surprise": 1}).encode()
    return [
        ("POST", "/predict", one, good),
        ("POST", "/predict/batch", json.dumps({"records": records[:100]}).encode(), good),
        ("POST", "/predict", b'{"broken": ', good),
        ("POST", "/predict", wrong, good),
        ("POST", "/predict", one, {"Content-Type": "application/json"}),
        ("POST", "/predict", b'{"x": "' + b"a" * 3_000_000 + b'"}', good),
        ("POST", "/predict/batch", json.dumps({"records": records * 60}).encode(), good),
        ("GET", "/metrics", b"", {"X-API-Key": KEY}),
    ]


def _client(url: str, kinds: list[Any], stop: threading.Event, counts: Counter[str], offset: int) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path, body, headers in itertools.islice(itertools.cycle(kinds), offset, None):
            if stop.is_set():
                return
            try:
                status = client.request(method, path, content=body or None, headers=headers).status_code
                counts[f"{status // 100}xx"] += 1
                counts[str(status)] += 1
            except httpx.TransportError as exc:
                counts[f"transport:{type(exc).__name__}"] += 1


def run(quick: bool = False) -> list[Figure]:
    seconds = 60 if quick else 300
    model = _train(WORK / "api_model")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    exe = str(Path(__import__("sys").executable).with_name("propensity"))
    proc = _start(
        [exe, "serve", str(WORK / "api_model"), "--port", str(port)],
        port,
        {"PROPENSITY_API_KEYS": KEY},
        WORK / "soak_server.log",
    )
    counts: Counter[str] = Counter()
    stop = threading.Event()
    kinds = _requests(model)
    threads = [
        threading.Thread(target=_client, args=(url, kinds, stop, counts, i * 2), daemon=True)
        for i in range(THREADS)
    ]
    samples: list[tuple[float, float]] = []
    try:
        for t in threads:
            t.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            samples.append((round(elapsed, 1), round(_rss_mib(proc.pid), 1)))
            time.sleep(min(SAMPLE_SECONDS, max(0.0, seconds - elapsed)))
        samples.append((round(time.monotonic() - started, 1), round(_rss_mib(proc.pid), 1)))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        _stop(proc)
    first, last = samples[1][1] if len(samples) > 2 else samples[0][1], samples[-1][1]
    served = sum(v for k, v in counts.items() if k.endswith("xx"))
    errors_5xx = counts.get("5xx", 0)
    transport = sum(v for k, v in counts.items() if k.startswith("transport:"))
    statuses = {k: v for k, v in sorted(counts.items()) if k.isdigit()}
    suffix = " --quick" if quick else ""
    note = f"{seconds} s, {THREADS} clients; statuses {statuses}; RSS samples (s, MiB) {samples}"
    return [
        Figure(
            "soak_rss_growth_mib",
            round(last - first, 1),
            "MiB",
            "lower",
            baseline=first,
            baseline_name="RSS after the first 30 s (MiB)",
            ratio=round(first / last, 3) if last else None,
            note=note,
            params={"seconds": seconds, "threads": THREADS},
            command=COMMAND + suffix,
        ),
        Figure("soak_requests", served, "requests", "higher", command=COMMAND + suffix),
        Figure("soak_5xx", errors_5xx, "responses", "lower", target=0, command=COMMAND + suffix),
        Figure("soak_transport_errors", transport, "requests", "lower", target=0, command=COMMAND + suffix),
    ]


if __name__ == "__main__":
    import sys

    emit("soak", run(quick="--quick" in sys.argv))
