"""`propensity serve` and `propensity api-key` in process (uvicorn.run replaced: no server starts here)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from typer.testing import CliRunner

from propensity.cli import app
from propensity.cli.serve import is_loopback
from propensity.serving.auth import KeyRing, read_keys_file

runner = CliRunner()


@pytest.fixture
def fake_uvicorn(monkeypatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"target": target, **kw}))
    monkeypatch.delenv("PROPENSITY_API_KEYS", raising=False)
    return calls


def test_loopback_detection():
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("::1")
        and is_loopback("localhost")
        and is_loopback("127.8.0.1")
    )
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    assert not is_loopback("myhost.example")


def test_serve_refuses_a_public_address_without_keys(fake_uvicorn, lgbm_bundle):
    result = runner.invoke(app, ["serve", str(lgbm_bundle), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "Refusing to serve on 0.0.0.0 without API keys" in result.stderr
    assert "--insecure" in result.stderr and "Traceback" not in result.output
    assert fake_uvicorn == []


def test_serve_insecure_warns_loudly(fake_uvicorn, lgbm_bundle):
    result = runner.invoke(
        app, ["serve", str(lgbm_bundle), "--host", "0.0.0.0", "--insecure", "--port", "9123"]
    )
    assert result.exit_code == 0, result.output
    assert "WITHOUT API KEYS" in result.stderr
    (call,) = fake_uvicorn
    assert call["host"] == "0.0.0.0" and call["port"] == 9123 and call["access_log"] is False
    assert call["target"].state.keys.enabled is False


def test_serve_with_keys_file_on_a_public_address(fake_uvicorn, lgbm_bundle, tmp_path):
    keys = tmp_path / "keys.txt"
    created = runner.invoke(app, ["api-key", "--file", str(keys)])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert KeyRing(read_keys_file(keys)).check(key) and key not in keys.read_text()
    assert oct(keys.stat().st_mode)[-3:] == "600"
    result = runner.invoke(
        app, ["serve", str(lgbm_bundle), "--host", "0.0.0.0", "--api-keys-file", str(keys)]
    )
    assert result.exit_code == 0, result.output
    assert "API keys required" in result.stdout and "WITHOUT" not in result.stderr
    assert fake_uvicorn[0]["target"].state.keys.check(key)


def test_serve_reports_a_bad_model_in_one_line(fake_uvicorn, tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: No model at") and "Traceback" not in result.output


def test_serve_rejects_bad_settings(fake_uvicorn, lgbm_bundle):
    result = runner.invoke(app, ["serve", str(lgbm_bundle), "--unknown-categories", "guess"])
    assert result.exit_code == 2 and "unknown_categories" in result.stderr


def test_serve_with_workers_uses_the_factory_and_shares_settings(fake_uvicorn, lgbm_bundle, monkeypatch):
    for name in (
        "PROPENSITY_SERVE_MODEL",
        "PROPENSITY_SERVE_MAX_BATCH_RECORDS",
        "PROPENSITY_SERVE_SUPERVISOR_PID",
        "PROMETHEUS_MULTIPROC_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the command exports settings for its workers
    result = runner.invoke(app, ["serve", str(lgbm_bundle), "--workers", "3", "--max-batch", "77"])
    assert result.exit_code == 0, result.output
    (call,) = fake_uvicorn
    assert call["target"] == "propensity.serving.app:app_from_environment" and call["factory"] is True
    assert call["workers"] == 3
    assert os.environ["PROPENSITY_SERVE_MODEL"] == str(lgbm_bundle)
    assert os.environ["PROPENSITY_SERVE_MAX_BATCH_RECORDS"] == "77"
    assert os.environ["PROPENSITY_SERVE_SUPERVISOR_PID"] == str(os.getpid())
    assert os.path.isdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    from propensity.serving.app import app_from_environment

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    worker_app = app_from_environment()  # what each worker builds
    assert worker_app.state.settings.max_batch_records == 77
    assert worker_app.state.settings.supervisor_pid == os.getpid()
