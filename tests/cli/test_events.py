"""The event commands in-process (typer's CliRunner) and one real run of the installed entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from propensity.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_generate_validate_features_train_score(tmp_path):
    shop = tmp_path / "shop"
    r = invoke("generate", "--customers", 700, "--days", 100, "--seed", 4, "--out", shop)
    assert r.exit_code == 0, r.output
    assert "Generated" in r.output and "Dirty rows planted" in r.output
    truth = json.loads((shop / "shop.json").read_text())

    r = invoke("validate", shop / "events.parquet", "--out", tmp_path / "v")
    assert r.exit_code == 0, r.output
    assert f"Read {truth['events']:,} rows" in r.output and "exact duplicate event" in r.output
    assert (tmp_path / "v" / "quarantine.csv").exists() and (tmp_path / "v" / "events.parquet").exists()

    r = invoke(
        "features",
        shop / "events.parquet",
        "--as-of",
        "2024-03-01",
        "--horizon-days",
        14,
        "--out",
        tmp_path / "f.csv",
        "--list",
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "f.csv")
    assert "purchase_next_14d" in table.columns and "days_since_last_add_to_cart" in r.output
    assert (tmp_path / "f.quarantine.csv").exists() and (tmp_path / "f.summary.json").exists()

    model = tmp_path / "m"
    r = invoke(
        "train",
        shop / "events.parquet",
        "--from-events",
        "--horizon-days",
        14,
        "--cutoffs",
        3,
        "--step-days",
        14,
        "--lookbacks",
        "7,30",
        "--candidates",
        "logistic_regression",
        "--out",
        model,
    )
    assert r.exit_code == 0, r.output
    assert "Rolling cutoffs" in r.output and "test" in r.output and "Winner:" in r.output
    assert "propensity score" in r.output  # the next step is spelled out
    r = invoke("info", model)
    text = " ".join(r.output.split())  # rich wraps long lines
    assert r.exit_code == 0 and "Trained from events" in text and "3 cutoffs 14 days apart" in text

    r = invoke("score", model, shop / "events.parquet", "--as-of", "2024-04-01", "--out", tmp_path / "s.csv")
    assert r.exit_code == 0, r.output
    assert "customers seen before 2024-04-01" in r.output
    scores = pd.read_csv(tmp_path / "s.csv")
    assert {"eligible", "as_of", "probability"} <= set(scores.columns)
    r = invoke("score", model, shop / "events.parquet", "--eligible-only", "--out", tmp_path / "e.csv")
    assert r.exit_code == 0, r.output
    assert "no --as-of given" in r.output
    assert pd.read_csv(tmp_path / "e.csv")["eligible"].all()


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, trained):
    log = tmp_path / "log.csv"
    pd.DataFrame(
        {"user_id": [1, 2], "timestamp": ["31/01/2024 10:00", "01/02/2024 10:00"], "event": ["view", "view"]}
    ).to_csv(log, index=False)
    r = invoke("validate", log, "--out", tmp_path / "v")
    assert r.exit_code == 2 and "every one of the 2 rows was quarantined" in r.output
    r = invoke("validate", log, "--map", "customer_id=user", "--out", tmp_path / "v")
    assert r.exit_code == 2 and "Did you mean 'user_id'" in r.output and "Traceback" not in r.output
    r = invoke("validate", log, "--ts-format", "%d/%m/%Y %H:%M", "--out", tmp_path / "v")
    assert r.exit_code == 0 and "2 valid" in r.output
    r = invoke(
        "features",
        log,
        "--as-of",
        "2023-01-01",
        "--ts-format",
        "%d/%m/%Y %H:%M",
        "--out",
        tmp_path / "f.parquet",
    )
    assert r.exit_code == 2 and "before the first event" in r.output
    r = invoke("train", log, "--from-events", "--target", "x")
    assert r.exit_code == 2 and "--from-events builds the target" in r.output
    r = invoke("train", log)
    assert r.exit_code == 2 and "--target" in r.output
    _, bundle = trained
    r = invoke("score", bundle, log, "--as-of", "2024-02-01")
    assert r.exit_code == 2 and "apply to models trained with --from-events" in r.output


@pytest.mark.slow
def test_installed_demo_runs_end_to_end(tmp_path):
    exe = shutil.which("propensity", path=str(Path(sys.executable).parent))
    assert exe, "the propensity entry point is not installed"
    env = {**os.environ, "COLUMNS": "160"}
    proc = subprocess.run(
        [
            exe,
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--customers",
            "1500",
            "--days",
            "180",
            "--cutoffs",
            "3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for needle in (
        "Data:",
        "Validated:",
        "Rolling cutoffs",
        "Winner:",
        "Threshold",
        "The story",
        "Contact",
        "scores",
    ):
        assert needle in out, needle
    model = tmp_path / "demo" / "model"
    assert (model / "manifest.json").exists() and (model / "metrics.json").exists()
    assert (tmp_path / "demo" / "scores.parquet").exists()
    # the demo writes the shop report from what it already validated and scored, and says where it is
    assert "Shop insights" in out and "insights.html" in out
    insights = json.loads((tmp_path / "demo" / "insights.json").read_text())
    assert insights["model"] is not None and (tmp_path / "demo" / "insights.html").stat().st_size > 1_000_000
