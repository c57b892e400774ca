"""Hostile input on the command line: every case ends in a correct result or one ``error:`` line.

The cases of issue 16 (duplicate headers, Excel's cp1252, UTF-16, a .parquet that is not Parquet,
binary named .csv, numbers beyond the float range, broken archives) and output safety (an output
that is the input, a folder that cannot be written), each through the CLI in process.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from propensity.cli import app

runner = CliRunner()
FAST = ["--candidates", "logistic_regression", "--folds", "2", "--no-tracking"]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, *patterns: str) -> str:
    """Exit 2, no traceback, and one ``error:`` line that matches every pattern."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + result.stderr
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for pattern in patterns:
        assert pattern in errors[0], errors[0]
    return errors[0]


def shop_table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = rng.normal(100, 30, n).round(2)
    return pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(n)],
            "age": rng.integers(18, 70, n),
            "spend": spend,
            "city": rng.choice(["Köln", "Zürich", "Málaga", "Besançon"], n),
            "purchased": (spend + rng.normal(0, 20, n) > 100).astype(int),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    shop_table().to_csv(folder / "base.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def model(data) -> Path:
    out = data / "model"
    result = invoke("train", data / "base.csv", "--target", "purchased", "--out", out, *FAST, "-q")
    assert result.exit_code == 0, result.output
    return out


def levels(model_dir: Path, column: str) -> list[str]:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    (feature,) = [f for f in manifest["input_schema"]["features"] if f["name"] == column]
    return list(feature.get("categories") or feature.get("levels") or [])


# ------------------------------------------------------------------------------ headers


def test_duplicate_column_names_are_refused_naming_them(data, tmp_path):
    path = tmp_path / "dup.csv"
    text = shop_table().to_csv(index=False).replace("customer,age,spend", "customer,age,age", 1)
    path.write_text(text)
    error = assert_clean_error(
        invoke("train", path, "--target", "purchased", "--out", tmp_path / "m", *FAST), "'age'", "duplicate"
    )
    assert "columns 2, 3" in error
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_duplicate_column_names_in_an_event_log_are_refused(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("customer_id,ts,ts,event_type\nc1,2024-01-01,2024-01-01,view\n")
    assert_clean_error(invoke("validate", path, "--out", tmp_path / "v"), "'ts'", "duplicate")


def test_empty_and_blank_header_names_are_renamed_by_position(tmp_path):
    path = tmp_path / "blank.csv"
    frame = shop_table()
    text = frame.to_csv(index=True).replace(",customer,age", " ,customer,age", 1)  # a blank index header
    text = text.replace(",city,", ",,", 1)  # and an empty one
    path.write_text(text)
    result = invoke("roles", path, "--target", "purchased", "--json")
    assert result.exit_code == 0, result.output
    names = [c["name"] for c in json.loads(result.stdout)["columns"]]
    assert names[0] == "column_1" and "column_5" in names and "city" not in names


# ------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    ("encoding", "sep", "expected"),
    [
        ("cp1252", ";", "cp1252 (detected)"),
        ("utf-8-sig", ",", "utf-8-sig (detected)"),
        ("utf-16", "\t", "utf-16 (detected)"),
        ("utf-16-le", ",", "utf-16-le (detected)"),
    ],
)
def test_encodings_are_detected_and_reported(tmp_path, encoding, sep, expected):
    path = tmp_path / "shop.csv"
    shop_table().to_csv(path, index=False, encoding=encoding, sep=sep)
    out = tmp_path / "m"
    result = invoke("train", path, "--target", "purchased", "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    assert f"Encoding: {path} {expected}." in result.stdout.replace("\n", "")
    assert {"Köln", "Zürich", "Málaga", "Besançon"} <= set(levels(out, "city"))


def test_cp1252_beyond_the_sniffed_head_is_still_detected(tmp_path):
    path = tmp_path / "late.csv"
    frame = shop_table(20_000)
    frame["city"] = "Berlin"
    frame.loc[len(frame) - 1, "city"] = "Zürich"  # the only non-ASCII byte, ~700 KB into the file
    frame.to_csv(path, index=False, encoding="cp1252")
    out = tmp_path / "m"
    result = invoke("train", path, "--target", "purchased", "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    assert "cp1252 (detected)" in result.stdout


def test_encoding_option_overrides_detection_everywhere(data, model, tmp_path):
    path = tmp_path / "latin.csv"
    shop_table().to_csv(path, index=False, encoding="latin-1")
    train = invoke(
        "train", path, "--target", "purchased", "--out", tmp_path / "m", *FAST, "--encoding", "latin-1"
    )
    assert train.exit_code == 0, train.output
    assert "latin-1 (given)" in train.stdout
    score = invoke("score", model, path, "--out", tmp_path / "s.csv", "--encoding", "latin-1")
    assert score.exit_code == 0, score.output
    assert "latin-1 (given)" in score.stdout
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert summary["encoding"] == "latin-1 (given)"
    assert summary["unknown_categories"] == {}  # Zürich read as Zürich, a level the model knows
    evaluate = invoke("evaluate", model, path, "--report", tmp_path / "r.html", "--encoding", "latin-1")
    assert evaluate.exit_code == 0, evaluate.output
    assert "latin-1 (given)" in evaluate.stdout


def test_unknown_encoding_name_is_one_error_line(data, tmp_path):
    result = invoke(
        "train", data / "base.csv", "--target", "purchased", "--out", tmp_path / "m", "--encoding", "klingon"
    )
    assert_clean_error(result, "klingon", "encoding")


def test_wrong_encoding_given_is_one_error_line(tmp_path):
    path = tmp_path / "latin.csv"
    shop_table().to_csv(path, index=False, encoding="cp1252")
    result = invoke(
        "train", path, "--target", "purchased", "--out", tmp_path / "m", *FAST, "--encoding", "utf-8"
    )
    assert_clean_error(result, str(path), "--encoding")


def test_event_log_in_cp1252_validates_with_the_encoding_in_its_report(tmp_path):
    path = tmp_path / "events.csv"
    frame = pd.DataFrame(
        {
            "customer_id": ["Müller", "Öztürk", "Müller"],
            "ts": ["2024-01-01 10:00", "2024-01-02 11:00", "2024-01-03 12:00"],
            "event_type": ["view", "purchase", "purchase"],
        }
    )
    frame.to_csv(path, index=False, encoding="cp1252")
    out = tmp_path / "v"
    result = invoke("validate", path, "--out", out, "--export-time", "2024-02-01")
    assert result.exit_code == 0, result.output
    assert "cp1252 (detected)" in result.stdout
    report = json.loads((out / "validation.json").read_text())
    assert report["rows_ok"] == 3 and report["encoding"] == "cp1252 (detected)"
    clean = pd.read_parquet(out / "events.parquet")
    assert set(clean["customer_id"]) == {"Müller", "Öztürk"}


# ------------------------------------------------------------------------------ not what the name says


def test_binary_file_named_csv_on_validate(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    assert_clean_error(invoke("validate", path, "--out", tmp_path / "v"), str(path), "not a text table")


def test_binary_file_named_csv_on_train_and_score(model, tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(b"\x00\x01\x02\x03PK\x03\x04" * 500)
    assert_clean_error(invoke("train", path, "--target", "y", "--out", tmp_path / "m"), "not a text table")
    assert_clean_error(invoke("score", model, path, "--out", tmp_path / "s.csv"), "not a text table")


def test_parquet_name_on_a_text_file_on_score(model, data, tmp_path):
    path = tmp_path / "input.parquet"
    path.write_bytes((data / "base.csv").read_bytes())
    assert_clean_error(
        invoke("score", model, path, "--out", tmp_path / "s.csv"), str(path), "not a Parquet file"
    )
    assert not (tmp_path / "s.csv").exists()


def test_truncated_parquet_on_score_and_validate(model, tmp_path):
    full = tmp_path / "full.parquet"
    shop_table().to_parquet(full)
    path = tmp_path / "cut.parquet"
    path.write_bytes(full.read_bytes()[:-100])
    assert_clean_error(invoke("score", model, path, "--out", tmp_path / "s.csv"), str(path), "Parquet")
    assert_clean_error(invoke("validate", path, "--out", tmp_path / "v"), str(path), "Parquet")


@pytest.mark.parametrize(("suffix", "opener"), [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_truncated_archives_are_one_error_line(data, tmp_path, suffix, opener):
    whole = tmp_path / f"whole.csv{suffix}"
    with opener(whole, "wb") as fh:
        fh.write((data / "base.csv").read_bytes() * 20)
    path = tmp_path / f"cut.csv{suffix}"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = invoke("train", path, "--target", "purchased", "--out", tmp_path / "m", *FAST)
    assert_clean_error(result, str(path))
    assert_clean_error(invoke("validate", path, "--out", tmp_path / "v"), str(path))


def test_archive_in_another_format_than_its_name(data, tmp_path):
    path = tmp_path / "table.csv.gz"
    path.write_bytes(bz2.compress((data / "base.csv").read_bytes()))
    assert_clean_error(invoke("train", path, "--target", "purchased", "--out", tmp_path / "m"), str(path))


# ------------------------------------------------------------------------------ numbers


def test_numbers_beyond_the_float_range_are_quarantined_without_numpy_warnings(tmp_path):
    frame = shop_table()
    text = frame.to_csv(index=False).splitlines()
    for i in range(1, len(text), 7):  # 1e309 is read as infinity; 5e307 is finite but overflows sums
        cells = text[i].split(",")
        cells[2] = "1e309" if i % 2 else "5e307"
        text[i] = ",".join(cells)
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(text) + "\n")
    out = tmp_path / "m"
    result = invoke(
        "train",
        path,
        "--target",
        "purchased",
        "--out",
        out,
        "--no-tracking",
        "--folds",
        "2",
        "--candidates",
        "logistic_regression,random_forest",
    )
    assert result.exit_code == 0, result.output
    assert "RuntimeWarning" not in result.output + result.stderr
    assert "overflow" not in result.output + result.stderr
    quarantined = pd.read_csv(out / "quarantine.csv")
    assert len(quarantined) == len(range(1, len(text), 7))
    score = invoke("score", out, path, "--out", tmp_path / "s.csv")
    assert score.exit_code == 0, score.output
    assert "RuntimeWarning" not in score.output + score.stderr


# ------------------------------------------------------------------------------ output safety


def test_score_refuses_to_overwrite_its_input(model, data, tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes((data / "base.csv").read_bytes())
    before = path.read_bytes()
    assert_clean_error(invoke("score", model, path, "--out", path), "is the input file")
    assert path.read_bytes() == before


def test_features_and_evaluate_refuse_to_overwrite_their_input(model, data, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("customer_id,ts,event_type\nc1,2024-01-01,view\nc1,2024-01-02,purchase\n")
    before = path.read_bytes()
    assert_clean_error(invoke("features", path, "--as-of", "2024-01-02", "--out", path), "is the input file")
    assert path.read_bytes() == before
    table = tmp_path / "table.csv"
    table.write_bytes((data / "base.csv").read_bytes())
    result = invoke("evaluate", model, table, "--report", tmp_path / "r.html", "--json", table)
    assert_clean_error(result, "is the input file")
    assert table.read_bytes() == (data / "base.csv").read_bytes()


def test_train_and_validate_refuse_a_file_as_output_folder(data, tmp_path):
    assert_clean_error(
        invoke("train", data / "base.csv", "--target", "purchased", "--out", data / "base.csv", *FAST),
        "is the input file",
    )
    events = tmp_path / "events.csv"
    events.write_text("customer_id,ts,event_type\nc1,2024-01-01,view\n")
    assert_clean_error(invoke("validate", events, "--out", events), "is the input file")
    other = tmp_path / "other.txt"
    other.write_text("x")
    assert_clean_error(invoke("validate", events, "--out", other), "is a file, not a folder")


def test_output_below_a_file_is_refused_before_reading(model, data, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    assert_clean_error(invoke("score", model, data / "base.csv", "--out", blocker / "s.csv"), "is a file")


def test_read_only_output_folder_is_refused_before_reading(model, data, tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    real_access = os.access

    def access(path, mode, *args, **kwargs):  # root ignores permission bits; a read-only mount does not
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    assert_clean_error(invoke("score", model, data / "base.csv", "--out", folder / "s.csv"), "read-only")
    assert_clean_error(
        invoke("train", data / "base.csv", "--target", "purchased", "--out", folder / "m", *FAST), "read-only"
    )
    assert list(folder.iterdir()) == []


def test_missing_output_folder_is_created(model, data, tmp_path):
    out = tmp_path / "new" / "deeper" / "scores.csv"
    result = invoke("score", model, data / "base.csv", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.exists()
