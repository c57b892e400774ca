"""Scoring on a real Spark standalone cluster (one master, one worker) equals scoring on DuckDB.

The master and the worker are started from PySpark's own launcher (``bin/spark-class``) on
127.0.0.1 and free ports, each in its own process group, and stopped afterwards, also when the
test fails. ``propensity score --engine spark`` runs as a real subprocess whose driver connects
to ``PROPENSITY_SPARK_MASTER=spark://127.0.0.1:PORT``; its executors run on the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import propensity
from tests.engines.test_scoring_parity import AS_OF, _needs_spark

SRC = Path(propensity.__file__).resolve().parents[1]


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(_spark_class()), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    """End the process and its group (a worker's executors), by the id we started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _alive_workers(webui: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=2) as r:
        state = json.load(r)
    return int(state.get("aliveworkers", 0)) if state.get("status") == "ALIVE" else 0


@pytest.fixture
def standalone_cluster(tmp_path, free_port, wait_for_http) -> Iterator[str]:
    """``spark://127.0.0.1:PORT`` of a master with one registered worker (2 cores, 2 GiB)."""
    _needs_spark()
    port, webui, worker_port, worker_webui = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
        "SPARK_LOG_DIR": str(tmp_path / "logs"),
        # executors import the propensity under test, with the driver's interpreter
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        "PYSPARK_PYTHON": sys.executable,
    }
    started: list[subprocess.Popen] = []
    try:
        master_log = tmp_path / "master.log"
        started.append(
            _start(
                [
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--webui-port",
                    str(webui),
                ],
                master_log,
                env,
            )
        )
        wait_for_http(f"http://127.0.0.1:{webui}/json/", started[0], timeout=60, log=master_log)
        url = f"spark://127.0.0.1:{port}"
        worker_log = tmp_path / "worker.log"
        started.append(
            _start(
                [
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(worker_port),
                    "--webui-port",
                    str(worker_webui),
                    "--cores",
                    "2",
                    "--memory",
                    "2g",
                ],
                worker_log,
                env,
            )
        )
        deadline = time.monotonic() + 60
        while _alive_workers(webui) < 1:
            if started[1].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not register with {url}:\n{worker_log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        for proc in reversed(started):
            _stop(proc)


def _score(model: Path, events: Path, out: Path, engine: str, env: dict[str, str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "propensity.cli",
        "score",
        str(model),
        str(events),
        "--out",
        str(out),
        "--as-of",
        AS_OF,
        "--engine",
        engine,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"stdout": done.stdout, "stderr": done.stderr}


@pytest.mark.slow
def test_score_on_a_standalone_cluster_equals_duckdb(
    standalone_cluster: str, event_model, small_shop, tmp_path, free_port: Callable[[], int]
):
    _, bundle = event_model
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PROPENSITY_SPARK_MASTER": standalone_cluster,
    }
    events = small_shop / "events.parquet"
    _score(bundle, events, tmp_path / "duck.parquet", "duckdb", env)
    _score(bundle, events, tmp_path / "cluster", "spark", env)
    apps = tmp_path / "work"
    assert any(apps.glob("app-*/*/stderr")), "no executor ran on the worker"  # the cluster did the work
    a = pd.read_parquet(tmp_path / "duck.parquet").sort_values("customer_id").reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "cluster").sort_values("customer_id").reset_index(drop=True)
    assert len(a) > 500
    assert b["customer_id"].astype(str).tolist() == a["customer_id"].astype(str).tolist()
    np.testing.assert_allclose(b["probability"], a["probability"], rtol=0, atol=1e-12)
    assert b["band"].astype(str).tolist() == a["band"].astype(str).tolist()
    assert b["decision"].astype(bool).tolist() == a["decision"].astype(bool).tolist()
