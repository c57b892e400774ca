"""Experiment tracking and the model registry against a real embedded MLflow store (SQLite + local artifacts).

The module works in a temporary "project" folder (a git repository), the way a user runs
``propensity train`` in theirs: the embedded store lands in its ``.propensity/`` folder and
nothing is written into this repository or the home directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import propensity
from propensity.bundle import load_model
from propensity.cli import app
from propensity.config import get_settings
from propensity.errors import (
    BundleError,
    ModelNotFoundError,
    ParameterError,
    PropensityWarning,
    TrackingError,
)
from propensity.loading import resolve_model
from propensity.sources import read_table
from propensity.tracking import (
    TrackingFailure,
    TrackingResult,
    default_model_name,
    embedded_tracking_uri,
    list_models,
    load_registered_model,
    log_training,
    parse_model_ref,
    promote,
    register_bundle,
    resolve_tracking_uri,
    show_model,
    validate_model_name,
)
from propensity.workflows.scoring import score_file

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
TRAIN_KW = {"candidates": ["logistic_regression", "lightgbm"], "seed": 11, "folds": 3}


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repository as the working directory, with the settings cache cleared around it."""
    folder = tmp_path_factory.mktemp("project")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "start"], cwd=folder, check=True, env=env)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for var in ("PROPENSITY_TRACKING_URI", "MLFLOW_TRACKING_URI", "PROPENSITY_HOME"):
            mp.delenv(var, raising=False)
        get_settings.cache_clear()
        yield folder, commit
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def small_table(customer_table) -> pd.DataFrame:
    return customer_table.head(800).reset_index(drop=True)


def _root_stores() -> dict[str, float | None]:
    """Modification times of the stores runs could leave in the repository root (``None``: absent).

    A user's own ``make demo`` leaves ``.propensity/`` there; tests must neither need it nor touch it.
    """
    paths = (ROOT / ".propensity", ROOT / ".propensity" / "mlflow.db", ROOT / "mlruns")
    return {str(p): p.stat().st_mtime if p.exists() else None for p in paths}


@pytest.fixture(scope="module")
def root_stores_before() -> dict[str, float | None]:
    return _root_stores()


@pytest.fixture(scope="module")
def tracked(project, small_table, root_stores_before):
    """One model trained through the public API with tracking on, into the embedded store."""
    folder, _ = project
    result = propensity.train(small_table, "purchased", out="models/shoppers", tracking=True, **TRAIN_KW)
    return result, folder / "models" / "shoppers", embedded_tracking_uri()


# --------------------------------------------------------------------------- names and URIs (no MLflow needed)


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for var in ("PROPENSITY_TRACKING_URI", "MLFLOW_TRACKING_URI", "PROPENSITY_HOME"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        assert resolve_tracking_uri() == f"sqlite:///{tmp_path / '.propensity' / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow-env:5000")
        assert resolve_tracking_uri() == "http://mlflow-env:5000"
        monkeypatch.setenv("PROPENSITY_TRACKING_URI", "http://propensity-env:5000")
        get_settings.cache_clear()
        assert resolve_tracking_uri() == "http://propensity-env:5000"
        assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
        monkeypatch.delenv("PROPENSITY_TRACKING_URI")
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        monkeypatch.setenv("PROPENSITY_HOME", str(tmp_path / "elsewhere"))
        get_settings.cache_clear()
        assert resolve_tracking_uri() == f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    finally:
        get_settings.cache_clear()


def test_model_names_and_references():
    assert default_model_name("models/shoppers") == "shoppers"
    assert default_model_name("models/Q3 churn (v2)") == "Q3-churn-v2"
    assert validate_model_name("churn_v2.1") == "churn_v2.1"
    for bad in ("", "a/b", "x@y", "-lead", "a b"):
        with pytest.raises(ParameterError, match="model name"):
            validate_model_name(bad)
    assert parse_model_ref("models:/shoppers/3") == ("shoppers", 3)
    assert parse_model_ref("models:/shoppers@champion") == ("shoppers", "@champion")
    assert parse_model_ref("models:/shoppers/latest") == ("shoppers", "latest")
    assert parse_model_ref("shoppers@latest") == ("shoppers", "latest")
    for bad in ("models:/shoppers", "models:/", "models:/a/b/3", "models:/shoppers/three"):
        with pytest.raises(ParameterError, match=r"models:/NAME/VERSION"):
            parse_model_ref(bad)


def test_logging_needs_the_bundle_the_model_was_saved_as(trained, tracked):
    model, _ = trained
    with pytest.raises(BundleError, match="save it first"):
        log_training(model, tracked[1])


def test_a_bad_name_fails_before_training(small_table, tmp_path):
    started = time.perf_counter()
    with pytest.raises(ParameterError, match="model name"):
        propensity.train(small_table, "purchased", out=tmp_path / "m", name="no/slashes", tracking=True)
    assert time.perf_counter() - started < 5 and not (tmp_path / "m").exists()


# --------------------------------------------------------------------------- what a training run records


def test_training_writes_the_bundle_and_registers_it(tracked, project, root_stores_before):
    result, bundle, _ = tracked
    model = result.model
    folder, _ = project
    result = result.tracking
    assert isinstance(result, TrackingResult)
    assert (result.model_name, result.version, result.model_uri) == ("shoppers", 1, "models:/shoppers/1")
    assert result.experiment_name == "shoppers" and result.bundle_version == model.version
    # the embedded store lives in the working directory, artifacts beside the database
    assert (folder / ".propensity" / "mlflow.db").is_file()
    assert list((folder / ".propensity" / "mlartifacts").iterdir())
    assert _root_stores() == root_stores_before  # nothing written to (or needed from) the repository root
    assert (bundle / "manifest.json").is_file() and load_model(bundle).version == model.version
    assert model.manifest.name == "shoppers"
    written = json.loads((bundle / "tracking.json").read_text())
    assert written["status"] == "logged" and written["model_uri"] == "models:/shoppers/1"
    assert written["run_id"] == result.run_id


def test_parent_run_has_params_metrics_tags_inputs_and_artifacts(tracked, project):
    result, _, uri = tracked
    model = result.model
    _, commit = project
    c = client(uri)
    run = c.get_run(result.tracking.run_id)
    m = model.manifest
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["target"] == "purchased" and params["seed"] == "11" and params["folds"] == "3"
    assert params["metric"] == "roc_auc" and params["policy"] == "f1" and params["winner"] == m.winner
    listed = set(params["candidates"].split(","))
    assert listed - {"ensemble"} == {"logistic_regression", "lightgbm"}
    assert ("ensemble" in listed) == (m.ensemble is not None)
    assert params["class_weight"] == "auto"
    assert params["test_size"] == "0.2" and int(params["n_features"]) == len(m.input_schema.features)
    assert metrics["test_roc_auc"] == pytest.approx(m.metrics["test"]["roc_auc"])
    assert metrics["oof_pr_auc"] == pytest.approx(m.metrics["oof"]["pr_auc"])
    assert metrics["threshold"] == pytest.approx(m.policy.threshold)
    assert metrics["rows_train"] == m.provenance.rows_train and metrics["seconds_total"] > 0
    assert tags["propensity.data_hash"] == m.provenance.data_hash
    assert tags["propensity.seed"] == "11" and tags["propensity.model_version"] == model.version
    assert tags["mlflow.source.git.commit"] == commit == m.provenance.git_commit
    assert tags["propensity.git_dirty"] == "false"
    assert tags["propensity.version.scikit-learn"] == m.provenance.versions["scikit-learn"]
    assert tags["propensity.version.lightgbm"] == m.provenance.versions["lightgbm"]
    assert "purchased" in tags["mlflow.note.content"]
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.digest == m.provenance.data_hash[:16]
    assert json.loads(dataset.profile)["num_rows"] == m.provenance.rows_in
    names = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "roles.json", "data_summary.json", "metrics.json", "quarantine.csv"} <= names
    summary = json.loads(Path(c.download_artifacts(run.info.run_id, "data_summary.json")).read_text())
    assert summary["rows"]["train"] == m.provenance.rows_train
    assert {"customer_id", "last_review"} <= {e["name"] for e in summary["excluded"]} | {summary["id_column"]}


def test_one_nested_run_per_candidate_with_oof_metrics_and_fit_time(tracked):
    result, _, uri = tracked
    model = result.model
    c = client(uri)
    parent = result.tracking.run_id
    children = c.search_runs(
        [result.tracking.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    by_name = {r.data.tags["propensity.candidate"]: r for r in children}
    assert set(by_name) == {c.name for c in model.manifest.candidates}
    for cand in model.manifest.candidates:
        run = by_name[cand.name]
        assert run.data.metrics["oof_roc_auc"] == pytest.approx(cand.oof["roc_auc"])
        assert run.data.metrics["fit_seconds"] == pytest.approx(cand.fit_seconds)
        assert run.data.tags["propensity.is_winner"] == str(cand.name == model.manifest.winner).lower()
        assert run.data.params["family"] == cand.family
    assert "best_iteration_mean" in by_name["lightgbm"].data.metrics
    assert by_name["lightgbm"].data.params["learning_rate"] == "0.03"  # a small table's default


def test_logged_model_is_a_pyfunc_with_signature_example_and_explicit_requirements(
    tracked, monkeypatch, small_table
):
    import mlflow.pyfunc

    result, _, uri = tracked

    model = result.model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    loaded = mlflow.pyfunc.load_model("models:/shoppers/1")
    inputs = loaded.metadata.get_input_schema().input_names()
    assert set(model.features) | {"customer_id"} == set(inputs)
    rows = small_table.head(40)
    out = loaded.predict(rows)
    assert list(out.columns) == ["customer_id", "probability", "decision", "band"]
    np.testing.assert_allclose(out["probability"], model.predict_proba(rows))
    # ints where training saw floats, text flags: the model's own validation decides, not MLflow's
    retyped = rows.astype({"visits_30d": "float64", "age": "object", "cart_adds_30d": "int32"})
    np.testing.assert_allclose(loaded.predict(retyped)["probability"], out["probability"])
    from mlflow.artifacts import download_artifacts

    folder = Path(download_artifacts("models:/shoppers/1"))
    requirements = (folder / "requirements.txt").read_text()
    assert "propensity==" in requirements and "lightgbm==" in requirements and "mlflow==" in requirements
    example = json.loads((folder / "input_example.json").read_text())
    assert set(example["columns"]) == set(inputs)
    assert "C1000" not in json.dumps(example)  # synthetic example: no customer's row in the registry
    meta = loaded.metadata.metadata["propensity"]
    assert meta["bundle_version"] == model.version and meta["target"] == "purchased"
    bad = rows.astype({"visits_30d": object})
    bad.loc[3, "visits_30d"] = "lots"
    with pytest.raises(Exception, match=r"cannot be scored: row 4 column 'visits_30d' value 'lots'"):
        loaded.predict(bad)


# --------------------------------------------------------------------------- addressing models


def test_every_model_form_loads_the_same_verified_bundle(tracked, small_table):
    result, bundle, _ = tracked
    model = result.model
    promote("shoppers", 1)
    rows = small_table.head(100)
    expected = model.predict_proba(rows)
    for ref in ("models:/shoppers/1", "models:/shoppers@champion", "models:/shoppers/latest", str(bundle)):
        loaded = resolve_model(ref)
        assert loaded.version == model.version, ref
        np.testing.assert_allclose(loaded.predict_proba(rows), expected, err_msg=ref)


def test_score_accepts_version_alias_and_path(tracked, small_table, tmp_path):
    result, bundle, _ = tracked
    model = result.model
    promote("shoppers", 1)
    src = tmp_path / "in.csv"
    small_table.head(300).to_csv(src, index=False)
    outputs = {}
    for i, ref in enumerate(("models:/shoppers/1", "models:/shoppers@champion", str(bundle))):
        result = invoke("score", ref, src, "--out", tmp_path / f"s{i}.csv")
        assert result.exit_code == 0, result.output
        outputs[ref] = read_table(tmp_path / f"s{i}.csv")
    first = outputs["models:/shoppers/1"]
    assert (first["model_version"] == model.version).all() and len(first) == 300
    for frame in outputs.values():
        np.testing.assert_allclose(frame["probability"], first["probability"])
    summary = score_file("models:/shoppers@champion", src, tmp_path / "api.csv")
    assert summary.model_version == model.version


def test_a_damaged_cache_copy_is_fetched_again_and_a_damaged_registry_copy_is_refused(tracked, project):
    result, _, uri = tracked
    model = result.model
    folder, _ = project
    loaded = load_registered_model("models:/shoppers/1")
    cached = loaded.path
    assert cached is not None and str(cached).startswith(str(folder / ".propensity" / "registry"))
    (cached / "model.joblib").write_bytes(b"tampered")
    again = load_registered_model("models:/shoppers/1")
    assert again.version == model.version  # re-downloaded and verified
    # now damage the registered artifact itself: every load must refuse it
    c = client(uri)
    source = c.get_model_version("shoppers", "1").source
    location = c.get_logged_model(source.split("/")[-1]).artifact_location
    stored = Path(urlparse(location).path) / "artifacts" / "bundle"
    original = (stored / "model.joblib").read_bytes()
    try:
        (stored / "model.joblib").write_bytes(original[:-10] + b"0123456789")
        shutil.rmtree(cached)
        with pytest.raises(BundleError, match=r"models:/shoppers/1 fails verification"):
            load_registered_model("models:/shoppers/1")
    finally:
        (stored / "model.joblib").write_bytes(original)
        shutil.rmtree(cached, ignore_errors=True)


def test_unknown_name_alias_and_version_list_what_exists(tracked):
    with pytest.raises(
        ModelNotFoundError, match=r"No registered model 'shopers'.*Did you mean 'shoppers'.*shoppers"
    ):
        load_registered_model("models:/shopers/1")
    promote("shoppers", 1)
    with pytest.raises(ModelNotFoundError, match=r"no alias 'prod'.*versions: 1.*champion → 1"):
        load_registered_model("models:/shoppers@prod")
    with pytest.raises(ModelNotFoundError, match=r"no version 42 \(versions: 1"):
        load_registered_model("models:/shoppers/42")
    with pytest.raises(ModelNotFoundError, match=r"no version 9"):
        promote("shoppers", 9)
    with pytest.raises(ParameterError, match="alias"):
        promote("shoppers", 1, alias="latest")
    with pytest.raises(ModelNotFoundError, match="No registered model 'ghost'"):
        show_model("ghost")


def test_the_cli_names_what_exists(tracked):
    assert_user_error(invoke("models", "show", "shopers"), "Did you mean 'shoppers'")
    assert_user_error(invoke("models", "promote", "shoppers", "42"), "no version 42", "versions: 1")
    assert_user_error(invoke("score", "models:/shoppers@nope", "x.csv"), "no alias 'nope'")
    assert_user_error(invoke("models", "promote", "shoppers", "1", "--alias", "v2"), "alias")
    assert_user_error(invoke("score", "models:/shoppers", "x.csv"), "models:/NAME/VERSION")


def test_models_list_show_promote_register(tracked, trained, project):
    result, _, uri = tracked
    model = result.model
    folder, _ = project
    _, untracked = trained  # a bundle saved with tracking off (conftest)
    bundle = folder / "models" / "late"
    shutil.copytree(untracked, bundle)
    (bundle / "report.html").write_text("<html>report</html>")
    (bundle / "evaluation.json").write_text('{"auc": 0.8}')

    result = invoke("models", "register", bundle, "--name", "late", "--alias", "champion")
    assert result.exit_code == 0, result.output
    assert "registered as models:/late/1" in result.stdout and "champion → version 1" in result.stdout
    again = invoke("models", "register", bundle, "--name", "late")
    assert again.exit_code == 0 and "already registered as models:/late/1" in again.stdout
    registered = load_registered_model("models:/late@champion")
    assert registered.version == load_model(bundle).version
    assert (registered.path / "report.html").read_text() == "<html>report</html>"
    c = client(uri)
    run_id = c.get_model_version("late", "1").run_id
    assert {"report.html", "evaluation.json"} <= {a.path for a in c.list_artifacts(run_id)}
    assert c.get_run(run_id).data.tags["mlflow.source.name"] == "propensity models register"

    promote("shoppers", 1)
    listed = invoke("models", "list")
    assert listed.exit_code == 0, listed.output
    for text in (
        "shoppers",
        "late",
        "champion → v1",
        "v1 (champion)",
        f"{model.manifest.metrics['test']['roc_auc']:.4f}",
    ):
        assert text in listed.stdout, text
    data = json.loads(invoke("models", "list", "--json").stdout)
    assert {m["name"] for m in data} >= {"shoppers", "late"}
    shoppers = next(m for m in data if m["name"] == "shoppers")
    assert shoppers["versions"][0]["bundle_version"] == model.version and shoppers["created"]

    shown = invoke("models", "show", "late@champion")
    assert shown.exit_code == 0 and "models:/late/1" in shown.stdout
    moved = invoke("models", "promote", "late", "1", "--alias", "challenger")
    assert moved.exit_code == 0 and "models:/late@challenger → version 1" in moved.stdout
    info = show_model("late")
    assert info.aliases == {"challenger": 1, "champion": 1}
    # a registered model that is not a propensity bundle is listed only with --all
    c.create_registered_model("someone-elses")
    assert "someone-elses" not in {m.name for m in list_models()}
    assert "someone-elses" in {m.name for m in list_models(include_all=True)}


def test_rollback_by_promoting_an_older_version(tracked, trained, tmp_path):
    _, untracked = trained
    first = register_bundle(untracked, name="rollback")
    copy = tmp_path / "second"
    # a second, different bundle: retrain is not needed, re-saving gives a new content hash
    model = load_model(untracked)
    model.manifest.provenance.created_at = "2030-01-01T00:00:00+00:00"
    propensity.save_model(model, copy)
    second = register_bundle(copy, name="rollback", alias="champion")
    assert (first.version, second.version) == (1, 2)
    assert load_registered_model("models:/rollback@champion").version == model.version
    back = promote("rollback", 1)
    assert back.previous == 2
    assert load_registered_model("models:/rollback@champion").version == first.bundle_version


def test_the_service_serves_the_champion_and_a_reload_follows_a_promotion(tracked, trained, monkeypatch):
    """`propensity serve models:/NAME@champion` end to end on the real registry: promote, reload, rollback."""
    from fastapi.testclient import TestClient

    from propensity.serving.app import create_app
    from propensity.serving.settings import ServeSettings

    _, untracked = trained
    monkeypatch.delenv("PROPENSITY_API_KEYS", raising=False)
    first = register_bundle(untracked, name="svc", alias="champion")
    model = load_model(untracked)
    model.manifest.provenance.created_at = "2031-01-01T00:00:00+00:00"
    second_path = tracked[1].parent / "svc-2"
    propensity.save_model(model, second_path)
    second = register_bundle(second_path, name="svc")
    app = create_app("models:/svc@champion", ServeSettings(api_keys=None, api_keys_file=None))
    with TestClient(app) as c:
        example = app.state.holder.scorer.schema.example
        assert c.post("/predict", json=example).json()["model_version"] == first.bundle_version
        promote("svc", second.version)
        assert c.post("/admin/reload").json()["model_version"] == second.bundle_version
        assert c.post("/predict", json=example).json()["model_version"] == second.bundle_version
        promote("svc", first.version)  # roll back
        assert c.post("/admin/reload").json()["model_version"] == first.bundle_version


# --------------------------------------------------------------------------- reproducibility and state


def test_same_data_seed_and_settings_give_the_same_tracked_metrics(tracked, small_table):
    first, _, uri = tracked
    second = propensity.train(
        small_table, "purchased", out="models/shoppers-again", name="shoppers", tracking=True, **TRAIN_KW
    )
    assert second.tracking.version == first.tracking.version + 1
    c = client(uri)

    def logged(run_id: str) -> dict[str, float]:
        return {k: v for k, v in c.get_run(run_id).data.metrics.items() if not k.startswith(("seconds_",))}

    assert logged(first.tracking.run_id) == logged(second.tracking.run_id)
    a = load_registered_model(f"models:/shoppers/{first.tracking.version}")
    b = load_registered_model(f"models:/shoppers/{second.tracking.version}")
    assert a.manifest.metrics == b.manifest.metrics and a.threshold == b.threshold
    assert [x.oof for x in a.manifest.candidates] == [x.oof for x in b.manifest.candidates]
    assert c.get_run(first.tracking.run_id).data.params == c.get_run(second.tracking.run_id).data.params


def test_callers_mlflow_settings_survive_a_tracked_training(tracked, trained, monkeypatch, tmp_path):
    import mlflow

    model, bundle = trained
    callers = f"sqlite:///{tmp_path / 'callers.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", callers)
    log_training(model, bundle, name="state", tracking_uri=tracked[2])
    assert os.environ["MLFLOW_TRACKING_URI"] == callers and mlflow.get_tracking_uri() == callers
    assert os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR") is None
    assert not (tmp_path / "callers.db").exists()


# --------------------------------------------------------------------------- failures keep the model


def test_unreachable_server_keeps_the_bundle_and_says_how_to_register_it(
    tracked, small_table, tmp_path, monkeypatch, free_port
):
    monkeypatch.chdir(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.warns(
        PropensityWarning,
        match=r"not recorded in MLflow: Cannot reach .*Register it later with: propensity models register",
    ):
        result = propensity.train(
            small_table,
            "purchased",
            out="m",
            tracking=True,
            tracking_uri=dead,
            candidates=["logistic_regression"],
            folds=3,
        )
    model = result.model
    assert load_model(tmp_path / "m").version == model.version
    failure = result.tracking
    assert isinstance(failure, TrackingFailure)
    assert failure.register_command == f"propensity models register m --name m --tracking-uri {dead}"
    record = json.loads((tmp_path / "m" / "tracking.json").read_text())
    assert record["status"] == "failed" and "Connection refused" in record["error"]
    assert time.perf_counter() - started < 120  # no minutes of HTTP retries
    # later, the command from the message registers it (here into the module's store)
    store = tracked[2]
    done = invoke("models", "register", "m", "--name", "m", "--tracking-uri", store)
    assert done.exit_code == 0, done.output
    assert "registered as models:/m/1" in done.stdout
    assert load_registered_model("models:/m/1", tracking_uri=store).version == model.version


def test_cli_train_warns_but_succeeds_when_tracking_fails(small_table, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small_table.head(600).to_csv("t.csv", index=False)
    Path("not-a-folder").write_text("a file where the store's folder should be")
    broken = f"sqlite:///{tmp_path / 'not-a-folder' / 'mlflow.db'}"
    result = invoke(
        "train", "t.csv", "-t", "purchased", "--out", "m", "--candidates", "logistic_regression",
        "--folds", "3", "-q",
        "--tracking", "--tracking-uri", broken,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "→ m" in result.stdout and "models:/" not in result.stdout
    warning = [ln for ln in result.stderr.splitlines() if ln.startswith("warning:")]
    assert warning and "propensity models register m --name m --tracking-uri" in result.stderr.replace(
        "\n", " "
    )
    assert "Traceback" not in result.output
    assert load_model(tmp_path / "m").manifest.name == "m"
    record = json.loads((tmp_path / "m" / "tracking.json").read_text())
    assert record["status"] == "failed" and "not-a-folder" in record["error"]
    with pytest.raises(TrackingError, match="not-a-folder"):
        log_training(load_model(tmp_path / "m"), tmp_path / "m", tracking_uri=broken)


def test_cli_train_with_name_and_tracking_uri_prints_where_it_went(
    tracked, project, small_table, tmp_path, monkeypatch
):
    folder, _ = project
    store = tracked[2]
    monkeypatch.chdir(tmp_path)
    small_table.head(600).to_csv("t.csv", index=False)
    result = invoke(
        "train", "t.csv", "-t", "purchased", "--out", "out/x", "--candidates", "logistic_regression",
        "--folds", "3",
        "--name", "q3-buyers", "--experiment", "q3", "--tracking-uri", store,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Tracked: run" in result.stdout and "experiment 'q3'" in result.stdout
    assert "registered as models:/q3-buyers/1" in result.stdout and store in result.stdout
    assert not (tmp_path / ".propensity").exists()  # --tracking-uri, not this folder's embedded store
    experiment = client(store).get_experiment_by_name("q3")
    assert experiment.artifact_location.startswith((folder / ".propensity" / "mlartifacts").as_uri())
    assert json.loads(Path("out/x/tracking.json").read_text())["model_uri"] == "models:/q3-buyers/1"
    skipped = invoke(
        "train", "t.csv", "-t", "purchased", "--out", "out/y", "--candidates", "logistic_regression",
        "--folds", "3", "-q",
        "--no-tracking",
    )  # fmt: skip
    assert skipped.exit_code == 0 and not (tmp_path / "out" / "y" / "tracking.json").exists()
    assert not (tmp_path / ".propensity").exists()


# --------------------------------------------------------------------------- the UI


@pytest.mark.slow
@pytest.mark.server
def test_tracking_ui_starts_on_localhost_and_serves_the_embedded_store(
    tracked, project, free_port, wait_for_http, tmp_path
):
    folder, _ = project
    port = free_port()
    exe = Path(sys.executable).with_name("propensity")
    log = tmp_path / "ui.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(exe), "tracking", "ui", "--port", str(port)],
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        waited = wait_for_http(f"{base}/health", proc, timeout=120, log=log)
        print(f"MLflow UI answered after {waited:.1f} s")
        with urllib.request.urlopen(f"{base}/ajax-api/2.0/mlflow/registered-models/search", timeout=10) as r:
            names = {m["name"] for m in json.load(r).get("registered_models", [])}
        assert "shoppers" in names
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        assert "MLflow UI for sqlite:///" in log.read_text()
        proc.send_signal(signal.SIGTERM)  # the CLI stops its server when it is stopped
        proc.wait(timeout=30)
        time.sleep(0.5)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{base}/health", timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group we started
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_tracking_ui_refuses_a_server_uri_and_a_busy_port(project):
    assert_user_error(
        invoke("tracking", "ui", "--tracking-uri", "http://mlflow.example:5000"), "serves its own UI"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_user_error(invoke("tracking", "ui", "--port", port), f"Port {port}", "--port")
