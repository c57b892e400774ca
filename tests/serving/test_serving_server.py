"""The service as users run it: `propensity serve` (real uvicorn on 127.0.0.1), fuzzed, reloaded, stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._processes import descendants, port_is_free, survivors
from tests.serving.conftest import HEADERS, KEY, LiveServer, records_of

pytestmark = [pytest.mark.server, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def served(tmp_path_factory, lgbm_bundle) -> Iterator[tuple[LiveServer, Path]]:
    path = tmp_path_factory.mktemp("live") / "model"
    shutil.copytree(lgbm_bundle, path)
    server = LiveServer(path, "--max-batch", "100", "--timeout", "4", env={"PROPENSITY_API_KEYS": KEY})
    try:
        server.wait_ready()
        yield server, path
    finally:
        server.stop()


def swap_bundle(path: Path, source: Path) -> None:
    """Replace the bundle folder the way a deploy would: write beside it, then rename over it."""
    staging = path.with_name(path.name + ".new")
    shutil.copytree(source, staging)
    old = path.with_name(path.name + ".old")
    os.rename(path, old)
    os.rename(staging, path)
    shutil.rmtree(old)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(served):
    """>= 1,000 generated requests (valid and invalid) against /openapi.json: not one 5xx, responses match the schema."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    server, _ = served
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=HEADERS)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    budget = {"POST /predict": 350, "POST /predict/batch": 150}
    statuses: Counter[int] = Counter()
    start = time.monotonic()
    import requests

    with requests.Session() as session:  # keep-alive, like a real client
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                n = budget.get(operation.label, 20)

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck)
                )
                def run(case) -> None:
                    response = case.call(base_url=server.url, headers=HEADERS, session=session)
                    statuses[response.status_code] += 1
                    case.validate_response(response, checks=checks)

                try:
                    run()
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing invalid to send to a parameterless GET
    seconds = time.monotonic() - start
    total = sum(statuses.values())
    print(f"schemathesis: {total} cases in {seconds:.1f}s, statuses {dict(sorted(statuses.items()))}")
    assert total >= 1000
    assert not [s for s in statuses if s >= 500]
    assert statuses[200] > 100 and statuses[422] > 100  # it really sent both kinds
    assert "Traceback" not in server.output()


def test_hot_reload_swaps_without_failing_requests_in_flight(
    served, other_bundle, lgbm_bundle, lgbm_model, customer_table
):
    import propensity

    server, path = served
    other = propensity.load_model(other_bundle)
    records = records_of(customer_table.head(20), lgbm_model)
    seen: Counter[tuple[int, str]] = Counter()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as c:
            i = 0
            while not stop.is_set():
                if i % 5 == 0:
                    r = c.post("/predict/batch", json={"records": records})
                    version = r.json()["model_version"] if r.status_code == 200 else ""
                else:
                    r = c.post("/predict", json=records[i % 20])
                    version = r.json().get("model_version", "") if r.status_code == 200 else ""
                seen[(r.status_code, version)] += 1
                i += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        swap_bundle(path, other_bundle)
        r = server.client.post("/admin/reload")
        assert r.status_code == 200, r.text
        assert r.json()["changed"] is True and r.json()["model_version"] == other.version
        time.sleep(0.5)
        # SIGHUP does the same: put the first model back and signal the process.
        swap_bundle(path, lgbm_bundle)
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while server.client.get("/ready").json()["model_version"] != lgbm_model.version:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    statuses = {status for status, _ in seen}
    versions = {version for _, version in seen}
    assert statuses == {200}, seen
    assert versions == {lgbm_model.version, other.version}, seen
    assert sum(seen.values()) > 50


def test_slow_body_times_out_with_408(served):
    server, _ = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\n"
            "Content-Length: 500\r\n\r\n{".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data
    assert b'"type":"timeout"' in body and b"Traceback" not in body


def test_graceful_shutdown_finishes_requests_in_flight(lgbm_bundle, lgbm_model, customer_table):
    server = LiveServer(lgbm_bundle, "--max-batch", "10000")
    try:
        server.wait_ready()
        records = records_of(customer_table, lgbm_model) * 3  # 9,000 records: long enough to be in flight
        result: dict[str, httpx.Response] = {}

        def send() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                result["r"] = c.post("/predict/batch", json={"records": records})

        t = threading.Thread(target=send)
        t.start()
        time.sleep(0.4)  # the body is being read or scored
        server.proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert result["r"].status_code == 200
        assert result["r"].json()["counts"]["records"] == 9000
    finally:
        code = server.stop()
    # uvicorn re-raises the signal it caught once shutdown is complete, so a clean stop exits "by SIGTERM".
    assert code in (0, -signal.SIGTERM), server.final_output
    assert "Waiting for application shutdown" in server.final_output
    assert "Finished server process" in server.final_output and "Traceback" not in server.final_output


@pytest.mark.server
@pytest.mark.slow
def test_sigterm_to_serve_with_workers_stops_every_worker_and_frees_the_port(lgbm_bundle):
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find the worker processes")
    server = LiveServer(lgbm_bundle, "--workers", "2")
    try:
        server.wait_ready(timeout=120)
        workers = descendants(server.proc.pid)
        assert len(workers) >= 2, "uvicorn runs the workers as child processes"
    finally:
        code = server.stop(signal.SIGTERM, timeout=30)
    assert code in (0, -signal.SIGTERM), server.final_output
    assert not survivors(workers), "a worker outlived the command"
    assert port_is_free(server.port)
