"""The command line, in process (typer's CliRunner) and once as the installed script."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from propensity.cli import app

runner = CliRunner()
FAST = ["--candidates", "logistic_regression,lightgbm", "--quiet"]


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output + result.stderr
    import re

    assert re.search(pattern, " ".join(lines)), result.stderr


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory, customer_table) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    customer_table.to_csv(path, index=False)
    return path


def test_train_prints_roles_candidates_and_paths(table_csv, tmp_path):
    result = invoke(
        "train",
        table_csv,
        "--target",
        "purchased",
        "--out",
        tmp_path / "m",
        "--candidates",
        "logistic_regression,lightgbm",
    )
    assert result.exit_code == 0, result.output
    for text in (
        "Columns",
        "last_review",
        "text",
        "Candidates",
        "Winner:",
        "Threshold:",
        "Bands:",
        "Test",
        "Written:",
    ):
        assert text in result.stdout, text
    assert (tmp_path / "m" / "manifest.json").exists()


def test_score_and_info(trained, table_csv, tmp_path):
    _, bundle = trained
    result = invoke("score", bundle, table_csv, "--out", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    assert "Scored 3,000 of 3,000 rows" in result.stdout
    assert invoke("info", bundle).exit_code == 0


def test_score_on_spark_refuses_a_csv_output_or_input_before_starting_spark(trained, table_csv, tmp_path):
    _, bundle = trained
    table = tmp_path / "t.parquet"
    pd.read_csv(table_csv).to_parquet(table)
    assert_user_error(
        invoke("score", bundle, table, "--engine", "spark", "--out", tmp_path / "s.csv"), "writes Parquet"
    )
    assert_user_error(
        invoke("score", bundle, table_csv, "--engine", "spark", "--out", tmp_path / "s.parquet"),
        "is not Parquet",
    )


@pytest.mark.slow
def test_score_on_spark_writes_partitioned_parquet(trained, table_csv, tmp_path):
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'propensity[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (java on PATH), none found")
    _, bundle = trained
    table = tmp_path / "t.parquet"
    pd.read_csv(table_csv).to_parquet(table)
    out = tmp_path / "scores"
    result = invoke("score", bundle, table, "--engine", "spark", "--partition-by", "band", "--out", out)
    assert result.exit_code == 0, result.output
    assert "Scored 3,000 of 3,000 rows" in result.stdout
    assert sorted(p.name for p in out.glob("band=*")) == ["band=high", "band=low", "band=medium"]
    assert len(pd.read_parquet(out)) == 3000
    assert json.loads((tmp_path / "scores.summary.json").read_text())["rows_scored"] == 3000


def test_missing_file(tmp_path):
    assert_user_error(invoke("train", tmp_path / "nope.csv", "--target", "y"), "File not found")


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    assert_user_error(invoke("train", tmp_path / "e.csv", "--target", "y"), "is empty")


def test_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,y\n")
    assert_user_error(invoke("train", tmp_path / "h.csv", "--target", "y"), "header .* but no data rows")


def test_target_not_a_column_suggests_names(table_csv):
    assert_user_error(
        invoke("train", table_csv, "--target", "purchase"), "not in the table. Did you mean 'purchased'"
    )


def test_target_with_one_class(tmp_path, customer_table):
    customer_table.assign(purchased=1).to_csv(tmp_path / "one.csv", index=False)
    assert_user_error(invoke("train", tmp_path / "one.csv", "--target", "purchased"), "single class")


def test_target_with_three_classes(tmp_path, customer_table):
    three = customer_table.assign(purchased=customer_table.index % 3)
    three.to_csv(tmp_path / "three.csv", index=False)
    assert_user_error(
        invoke("train", tmp_path / "three.csv", "--target", "purchased"), "3 classes.*--positive"
    )


def test_all_missing_target(tmp_path, customer_table):
    customer_table.assign(purchased=None).to_csv(tmp_path / "t.csv", index=False)
    assert_user_error(invoke("train", tmp_path / "t.csv", "--target", "purchased"), "target is missing")


def test_all_missing_feature_column_is_excluded_and_said(tmp_path, customer_table):
    customer_table.assign(notes=None).to_csv(tmp_path / "t.csv", index=False)
    result = invoke(
        "train",
        tmp_path / "t.csv",
        "--target",
        "purchased",
        "--out",
        tmp_path / "m",
        "--candidates",
        "logistic_regression",
    )
    assert result.exit_code == 0, result.output
    assert "every value is missing" in result.stdout
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert {"name": "notes", "role": "empty", "note": "every value is missing"} in manifest["input_schema"][
        "excluded"
    ]


def test_numeric_junk_and_duplicate_ids_are_quarantined(tmp_path, customer_table):
    dirty = customer_table.astype({"visits_30d": object}).copy()
    dirty.loc[[5, 17], "visits_30d"] = "??x"
    dirty.loc[30, "customer_id"] = dirty.loc[29, "customer_id"]
    dirty.to_csv(tmp_path / "d.csv", index=False)
    result = invoke("train", tmp_path / "d.csv", "--target", "purchased", "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 0, result.output
    q = pd.read_csv(tmp_path / "m" / "quarantine.csv")
    assert q[["row", "column"]].values.tolist() == [
        [6, "visits_30d"],
        [18, "visits_30d"],
        [31, "customer_id"],
    ]
    assert q["reason"].tolist()[2].startswith("duplicate id")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["provenance"]["rows_quarantined"] == 3
    assert manifest["provenance"]["quarantine_reasons"] == {
        "not a number": 2,
        "duplicate id (the first row with this id is kept)": 1,
    }


def test_semicolon_and_gzip_csv_just_work(tmp_path, customer_table):
    customer_table.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    with gzip.open(tmp_path / "t.csv.gz", "wt") as fh:
        customer_table.to_csv(fh, index=False)
    for name in ("semi.csv", "t.csv.gz"):
        result = invoke(
            "train", tmp_path / name, "--target", "purchased", "--out", tmp_path / name.split(".")[0], *FAST
        )
        assert result.exit_code == 0, result.output


def test_edited_bundle_is_refused(trained, table_csv, tmp_path):
    _, bundle = trained
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["policy"]["threshold"] = 0.0
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert_user_error(
        invoke("score", copy, table_csv, "--out", tmp_path / "s.csv"), "edited after the bundle was written"
    )


def test_scoring_input_missing_a_required_column(trained, tmp_path, customer_table):
    _, bundle = trained
    customer_table.drop(columns=["visits_30d"]).to_csv(tmp_path / "in.csv", index=False)
    assert_user_error(
        invoke("score", bundle, tmp_path / "in.csv", "--out", tmp_path / "s.csv"), "'visits_30d'"
    )


def test_bad_option_value_is_a_user_error(table_csv):
    assert_user_error(
        invoke("train", table_csv, "--target", "purchased", "--folds", "1"), "'folds' parameter"
    )
    assert_user_error(invoke("train", table_csv, "--target", "purchased", "--policy", "profit"), "--value")


def test_roles_command(table_csv):
    result = invoke("roles", table_csv, "--target", "purchased", "--json")
    assert result.exit_code == 0
    roles = {c["name"]: c["role"] for c in json.loads(result.stdout)["columns"]}
    assert (
        roles["customer_id"] == "id" and roles["last_review"] == "text" and roles["signup_date"] == "datetime"
    )


@pytest.mark.slow
def test_installed_script_runs(table_csv, tmp_path):
    exe = Path(sys.executable).with_name("propensity")
    assert exe.exists(), "the console script is not installed in this environment"
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("propensity ")
    done = subprocess.run(
        [str(exe), "train", str(table_csv), "--target", "purchased", "--out", str(tmp_path / "m"), *FAST],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [str(exe), "train", str(tmp_path / "none.csv"), "--target", "y"], capture_output=True, text=True
    )
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: File not found")
        and "Traceback" not in bad.stderr
    )
