"""Shared fixtures: tiny hand-made tables, the seeded synthetic table, and the public data when present."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROPENSITY_SHARED_DATA", ROOT.parent / "shared" / "data"))
ARTIFACTS = ROOT / "test-artifacts"

# Fast, deterministic and never tempted to use every core of a shared box.
os.environ.setdefault("PROPENSITY_N_JOBS", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Training records runs in MLflow by default; tests opt in explicitly (tests/tracking/)
# so that no test writes a .propensity/ store into the working directory.
os.environ.setdefault("PROPENSITY_TRACKING", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The CLI prints 160 columns when its output is not a terminal, unless COLUMNS says otherwise;
# pytest-xdist's workers export COLUMNS=80, which would wrap the paths the tests look for.
os.environ["COLUMNS"] = "160"


def shared_file(*parts: str) -> Path:
    """Path of a public data file in ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public data not available: {path} (../shared is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def customer_table() -> pd.DataFrame:
    from propensity.datasets import make_customer_table

    return make_customer_table(3000, seed=3)


@pytest.fixture(scope="session")
def trained_result(tmp_path_factory: pytest.TempPathFactory, customer_table: pd.DataFrame):
    """One small model trained once per session and saved as a bundle: ``(TrainingResult, folder)``."""
    import propensity

    out = tmp_path_factory.mktemp("bundle") / "model"
    result = propensity.train(
        customer_table,
        target="purchased",
        out=out,
        candidates=["logistic_regression", "lightgbm"],
        seed=1,
    )
    return result, out


@pytest.fixture(scope="session")
def trained(trained_result):
    """The session's model and its bundle folder: ``(TrainedModel, folder)``."""
    result, out = trained_result
    return result.model, out


@pytest.fixture(scope="session")
def training_run(trained_result):
    """The in-memory record of the session model's training (OOF and test predictions)."""
    return trained_result[0].run


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_http(
    url: str, proc: subprocess.Popen, timeout: float = 180.0, log: Path | None = None
) -> float:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or stays silent."""
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"the server exited with code {proc.returncode} before answering {url}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > timeout:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"{url} did not answer within {timeout:g} s:\n{tail}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function returning a currently free TCP port on 127.0.0.1."""
    return _free_port


@pytest.fixture(scope="session")
def wait_for_http() -> Callable[..., float]:
    """``wait_for_http(url, proc, timeout=180, log=None)``: seconds until ``url`` answered 200."""
    return _wait_for_http


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic shop (800 customers, 120 days from 2024-01-01, dirty rows included)."""
    from propensity.datasets import generate_shop

    out = tmp_path_factory.mktemp("shop")
    generate_shop(800, days=120, seed=11, out=out)
    return out
