"""Fixtures of the scoring-service tests: a LightGBM bundle, records as a client sends them, clients, a live server."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from propensity.serving import ServeSettings, create_app

KEY = "test-key-1"
HEADERS = {"X-API-Key": KEY}


def records_of(frame: pd.DataFrame, model: Any) -> list[dict[str, Any]]:
    """Rows as JSON records a client would send: the id and the features, missing cells as null."""
    columns = [model.id_column, *model.features]
    out = []
    for row in frame[columns].to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out


@pytest.fixture(scope="session")
def lgbm_bundle(tmp_path_factory: pytest.TempPathFactory, customer_table: pd.DataFrame) -> Path:
    """A LightGBM-only bundle (the single-row fast path is then exercised and exact)."""
    import propensity

    out = tmp_path_factory.mktemp("serving") / "lgbm"
    propensity.train(
        customer_table, target="purchased", out=out, candidates=["lightgbm"], seed=3, folds=3, n_jobs=1
    )
    return out


@pytest.fixture(scope="session")
def lgbm_model(lgbm_bundle: Path):
    import propensity

    return propensity.load_model(lgbm_bundle)


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different model on the same inputs (for reload tests)."""
    import propensity
    from propensity.datasets import make_customer_table

    out = tmp_path_factory.mktemp("serving") / "other"
    propensity.train(
        make_customer_table(1500, seed=11),
        target="purchased",
        out=out,
        candidates=["lightgbm"],
        seed=5,
        folds=3,
        n_jobs=1,
    )
    return out


@pytest.fixture(scope="module")
def app(lgbm_bundle: Path):
    return create_app(
        lgbm_bundle, ServeSettings(api_keys=KEY, max_batch_records=50, max_body_bytes=1024 * 1024)
    )


@pytest.fixture(scope="module")
def client(app) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app, headers=HEADERS, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def example(app) -> dict[str, Any]:
    return dict(app.state.holder.scorer.schema.example)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`propensity serve` in a subprocess on 127.0.0.1 (the installed entry point), stopped afterwards."""

    def __init__(self, model: Path | str, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("propensity")
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"propensity-serve-{self.port}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(exe), "serve", str(model), "--port", str(self.port), *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.client = httpx.Client(base_url=self.url, headers=HEADERS, timeout=30)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.client.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.client.close()
        self.final_output = self.output()
        self.log.close()
        return int(self.proc.returncode)
