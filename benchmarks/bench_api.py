"""Scoring service speed: /predict req/s and latency against an empty FastAPI endpoint, /predict/batch of 1,000.

Both servers are real uvicorn processes (one worker, uvloop/httptools) on 127.0.0.1, loaded by
``wrk -t2 -c16`` in alternating rounds so that machine noise hits both alike; the figure is the
median round. Our ``/predict`` runs with validation and API-key auth on, on a LightGBM model of
~100 trees trained on the synthetic customer table. Needs Debian's ``wrk``
(``scripts/system-deps.sh`` installs it).

    python -m benchmarks.bench_api
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, WORK, Figure, emit

QUICK = True
KEY = "bench-key"
CONNECTIONS = 16
COMMAND = "python -m benchmarks.bench_api"

try:  # the baseline: an empty FastAPI endpoint, served the same way
    from fastapi import FastAPI

    empty_app = FastAPI()

    @empty_app.post("/predict")
    async def _empty() -> dict[str, Any]:
        return {}

except ImportError:  # pragma: no cover - the serve extra is missing
    empty_app = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train(out: Path) -> Any:
    import propensity
    from propensity.datasets import make_customer_table

    if not (out / "manifest.json").exists():
        propensity.train(
            make_customer_table(20_000, seed=7),
            target="purchased",
            out=out,
            candidates=["lightgbm"],
            seed=1,
            folds=3,
            n_jobs=1,
        )
    return propensity.load_model(out)


def _start(args: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNIT[unit]


def _wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"wrk saw failed requests on {url}:\n{out}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def _lua(path: Path, body: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-API-Key"] = "{KEY}"\nwrk.body = {json.dumps(body)}\n'
    )
    return path


def _batch_latency(url: str, body: bytes, reps: int) -> tuple[list[float], list[float]]:
    import httpx

    client_ms, server_ms = [], []
    with httpx.Client(headers={"X-API-Key": KEY, "Content-Type": "application/json"}, timeout=60) as c:
        for i in range(reps + 3):
            start = time.perf_counter()
            r = c.post(url, content=body)
            elapsed = (time.perf_counter() - start) * 1000
            r.raise_for_status()
            if i >= 3:  # warm-up requests are not counted
                client_ms.append(elapsed)
                server_ms.append(r.json()["server_ms"])
    return client_ms, server_ms


def run(quick: bool = False) -> list[Figure]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run scripts/system-deps.sh (Debian package 'wrk').")
    import numpy as np
    import pandas as pd

    from propensity.datasets import make_customer_table

    WORK.mkdir(parents=True, exist_ok=True)
    model = _train(WORK / "bench_api_model")
    trees = int(model.pipeline.estimator.booster_.num_trees())
    table = make_customer_table(1000, seed=99)
    columns = [model.id_column, *model.features]
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in table[columns].to_dict(orient="records")
    ]
    seconds, rounds = (5, 2) if quick else (10, 3)
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    ours_port, empty_port = _free_port(), _free_port()
    python = sys.executable
    ours = _start(
        [
            str(Path(python).with_name("propensity")),
            "serve",
            str(WORK / "bench_api_model"),
            "--port",
            str(ours_port),
            "--log-level",
            "warning",
        ],
        ours_port,
        {"PROPENSITY_API_KEYS": KEY},
        tmp / "ours.log",
    )
    empty = None
    try:
        empty = _start(
            [
                python,
                "-m",
                "uvicorn",
                "benchmarks.bench_api:empty_app",
                "--port",
                str(empty_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            empty_port,
            {},
            tmp / "empty.log",
        )
        script = _lua(tmp / "predict.lua", json.dumps(records[0]))
        # Warm both, then alternate rounds so that load from elsewhere on the machine hits both alike.
        _wrk(f"http://127.0.0.1:{ours_port}/predict", script, 2)
        _wrk(f"http://127.0.0.1:{empty_port}/predict", script, 2)
        ours_runs, empty_runs = [], []
        for _ in range(rounds):
            empty_runs.append(_wrk(f"http://127.0.0.1:{empty_port}/predict", script, seconds))
            ours_runs.append(_wrk(f"http://127.0.0.1:{ours_port}/predict", script, seconds))
        body = json.dumps({"records": records}).encode()
        client_ms, server_ms = _batch_latency(
            f"http://127.0.0.1:{ours_port}/predict/batch", body, 10 if quick else 30
        )
    finally:
        _stop(ours)
        if empty is not None:
            _stop(empty)
    # In-process baseline for the batch: TrainedModel.predict_proba on the same 1,000 rows (the pandas path).
    frame = pd.DataFrame(records)
    model.pipeline.n_jobs = 1
    inproc = []
    for _ in range(10):
        start = time.perf_counter()
        model.predict_proba(frame)
        inproc.append((time.perf_counter() - start) * 1000)

    def med(runs: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    o_rps, e_rps = med(ours_runs, "rps"), med(empty_runs, "rps")
    o50, e50 = med(ours_runs, "p50_ms"), med(empty_runs, "p50_ms")
    o99, e99 = med(ours_runs, "p99_ms"), med(empty_runs, "p99_ms")
    params = {
        "connections": CONNECTIONS,
        "wrk_threads": 2,
        "seconds": seconds,
        "rounds": rounds,
        "workers": 1,
        "trees": trees,
        "auth": True,
        "validation": True,
        "rounds_ours": ours_runs,
        "rounds_empty": empty_runs,
    }
    batch_p50 = round(statistics.median(client_ms), 3)
    figures = [
        Figure(
            "predict_requests_per_second",
            o_rps,
            "req/s",
            "higher",
            baseline=e_rps,
            baseline_name="empty FastAPI endpoint",
            ratio=round(o_rps / e_rps, 3),
            target=3000,
            note="ratio goal >= 0.5",
            params=params,
            command=COMMAND,
        ),
        Figure(
            "predict_p50_ms",
            o50,
            "ms",
            "lower",
            baseline=e50,
            baseline_name="empty FastAPI endpoint",
            ratio=round(e50 / o50, 3),
            params={"connections": CONNECTIONS},
            command=COMMAND,
        ),
        Figure(
            "predict_p99_ms",
            o99,
            "ms",
            "lower",
            baseline=e99,
            baseline_name="empty FastAPI endpoint",
            ratio=round(e99 / o99, 3),
            target=10,
            params={"connections": CONNECTIONS},
            command=COMMAND,
        ),
        Figure(
            "batch_1000_ms",
            batch_p50,
            "ms",
            "lower",
            baseline=round(statistics.median(inproc), 3),
            baseline_name="in-process TrainedModel.predict_proba on the same 1,000 rows",
            ratio=round(statistics.median(inproc) / batch_p50, 3),
            target=30,
            note=f"client round trip, median of {len(client_ms)}; p95 {np.percentile(client_ms, 95):.1f} ms; "
            f"server_ms median {statistics.median(server_ms):.1f}",
            params={"records": 1000, "body_bytes": len(body)},
            command=COMMAND,
        ),
    ]
    return figures


if __name__ == "__main__":
    emit("api", run(quick="--quick" in sys.argv))
