"""Integration: a real ``mlflow server`` (SQLite backend, local artifact root, proxied artifacts) on 127.0.0.1.

Training, registering, promoting and scoring go over HTTP exactly as they would against a
team's server. The server is started once for the module and stopped afterwards, also when a
test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from propensity.cli import app
from propensity.config import get_settings
from propensity.sources import read_table

pytestmark = [pytest.mark.slow, pytest.mark.server]
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_port, wait_for_http):
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = folder / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        waited = wait_for_http(f"{url}/health", proc, timeout=180, log=log)
        print(f"mlflow server answered after {waited:.1f} s")
        yield url, folder
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, customer_table):
    folder = tmp_path_factory.mktemp("client")
    customer_table.head(600).to_csv(folder / "t.csv", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for var in ("PROPENSITY_TRACKING_URI", "MLFLOW_TRACKING_URI"):
            mp.delenv(var, raising=False)
        get_settings.cache_clear()
        yield folder
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def trained_on_server(server, workdir):
    url, _ = server
    result = invoke(
        "train", "t.csv", "-t", "purchased", "--out", "models/web", "--candidates", "logistic_regression",
        "--folds", "3",
        "--tracking-uri", url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def test_training_against_the_server_records_the_run_and_uploads_artifacts(
    server, workdir, trained_on_server
):
    url, folder = server
    out = trained_on_server.stdout
    assert "registered as models:/web/1" in out and f"{url}/#/experiments/" in out
    record = json.loads((workdir / "models" / "web" / "tracking.json").read_text())
    assert record["status"] == "logged" and record["run_url"].startswith(url)
    # artifacts went through the server's proxy into its artifact root, not into this folder
    stored = {p.name for p in (folder / "artifacts").rglob("*") if p.is_file()}
    assert {"model.joblib", "manifest.json", "MLmodel", "data_summary.json"} <= stored
    assert not (workdir / ".propensity").exists() and not (workdir / "mlruns").exists()
    from mlflow import MlflowClient

    run = MlflowClient(url).get_run(record["run_id"])
    assert run.data.tags["propensity.model_version"] == record["bundle_version"]
    assert run.data.metrics["test_roc_auc"] > 0.5


def test_every_model_form_scores_the_same_against_the_server(server, workdir, trained_on_server, monkeypatch):
    url, _ = server
    promoted = invoke("models", "promote", "web", "1", "--tracking-uri", url)
    assert promoted.exit_code == 0 and "models:/web@champion → version 1" in promoted.stdout
    frames = {}
    for i, (ref, var) in enumerate(
        [
            ("models:/web/1", "PROPENSITY_TRACKING_URI"),
            ("models:/web@champion", "MLFLOW_TRACKING_URI"),
            ("models/web", None),
        ]
    ):
        if var:
            monkeypatch.setenv(var, url)
        get_settings.cache_clear()
        result = invoke("score", ref, "t.csv", "--out", f"s{i}.csv")
        monkeypatch.delenv("PROPENSITY_TRACKING_URI", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        frames[ref] = read_table(Path(f"s{i}.csv"))
    base = frames["models/web"]
    for ref, frame in frames.items():
        np.testing.assert_allclose(frame["probability"], base["probability"], err_msg=ref)
        assert (frame["model_version"] == base["model_version"]).all()


def test_registry_commands_and_errors_over_http(server, trained_on_server):
    url, _ = server
    listed = invoke("models", "list", "--tracking-uri", url, "--json")
    assert listed.exit_code == 0, listed.output
    assert [m["name"] for m in json.loads(listed.stdout)] == ["web"]
    missing = invoke("models", "show", "web@nope", "--tracking-uri", url)
    assert missing.exit_code == 2 and "no alias 'nope'" in missing.stderr
    unknown = invoke("score", "models:/webb/1", "t.csv", "--tracking-uri", url)
    assert unknown.exit_code == 2 and "No registered model 'webb'" in unknown.stderr
    assert "Did you mean 'web'" in unknown.stderr
    scored = invoke("score", "models:/web/1", "t.csv", "--out", "s-uri.csv", "--tracking-uri", url)
    assert scored.exit_code == 0, scored.output
    shown = invoke("info", "models:/web/latest", "--tracking-uri", url)
    assert shown.exit_code == 0 and "logistic_regression" in shown.stdout
    ghost = invoke("models", "promote", "web", "5", "--tracking-uri", url)
    assert ghost.exit_code == 2 and "no version 5 (versions: 1" in ghost.stderr
