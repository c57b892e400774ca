"""A real redis-server per test (127.0.0.1, a free port, stopped afterwards) and a tiny event model."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests._processes import port_is_free
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

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes the append-only file and exits
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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
