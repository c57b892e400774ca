"""``fit_clv_from_events`` and ``propensity clv`` end to end: bundle, scores, report, MLflow, scoring again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from propensity.bundle import load_clv_model, load_model, verify_clv_bundle
from propensity.cli import app
from propensity.errors import BundleError, DataError, ParameterError
from propensity.loading import resolve_clv_model
from propensity.synthetic import generate_shop
from propensity.workflows.clv import fit_clv_from_events, score_clv

pytestmark = pytest.mark.slow  # every test here fits pymc-marketing models (seconds each once compiled)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    generate_shop(400, days=240, seed=5, out=folder, dirty=True)
    return folder / "events.parquet"


@pytest.fixture(scope="module")
def fitted(shop, tmp_path_factory):
    """One fit of both transaction models with a 60-day holdout, tracked in a private MLflow store."""
    folder = tmp_path_factory.mktemp("clv")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = fit_clv_from_events(
        shop,
        out=folder / "clv",
        holdout_days=60,
        model="both",
        horizon_days=90,
        tracking=True,
        tracking_uri=uri,
        name="shop-clv",
    )
    return result, folder / "clv", uri


def test_the_bundle_scores_report_and_summary_are_written(fitted):
    result, out, _ = fitted
    for name in ("manifest.json", "scores.parquet", "clv.json", "report.html", "events_quarantine.csv"):
        assert (out / name).exists(), name
    summary = json.loads((out / "clv.json").read_text())
    v = summary["validation"]
    assert v["rows_in"] == v["rows_ok"] + v["rows_quarantined"] and v["rows_quarantined"] > 0
    assert summary["holdout_days"] == 60 and summary["scored_as_of"] > summary["as_of"]
    assert set(summary["models"]) == {"bgnbd", "pareto_nbd", "gamma_gamma"}
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == summary["customers_scored"] >= summary["customers_fitted"]
    assert scores["customer_id"].is_unique
    assert scores["p_alive"].between(0, 1).all() and scores["pareto_nbd_p_alive"].between(0, 1).all()
    assert (scores["expected_purchases"] >= 0).all() and (scores["expected_spend"] > 0).all()
    # no discounting: value = purchases over the horizon x spend per purchase
    np.testing.assert_allclose(
        scores["clv"], scores["expected_purchases"] * scores["expected_spend"], rtol=1e-12
    )
    assert (scores["model_version"] == result.model.version).all()
    html = (out / "report.html").read_text()
    assert "Holdout check" in html and "Plotly.newPlot" in html and "BG/NBD" in html and "Pareto/NBD" in html
    assert "<script src" not in html  # plotly.js embedded: works offline
    assert (
        html.count('id="holdout-chart"') == 1 and '"holdout-chart"' in html
    )  # the chart has its own element
    check = result.model.manifest.holdout
    assert check["models"]["bgnbd"]["actual_purchases"] > 0
    # revenue: the regression, the probabilistic models and the naive baseline on the same customers
    revenue = check["revenue"]
    assert set(revenue["models"]) == {"lightgbm", "bgnbd_gamma_gamma", "last_period"}
    assert (
        revenue["customers"] == summary["customers_fitted"]
        and 50 <= revenue["trained_on"] < revenue["customers"]
    )
    actual = result.calibration["spend_holdout"].sum()
    for name, figures in revenue["models"].items():
        assert figures["actual_total"] == pytest.approx(actual, abs=0.01), name
        assert figures["rmse"] >= figures["mae"] > 0 and 0 < figures["top_decile_capture"] <= 1, name
    assert "Revenue in the holdout" in html and "LightGBM regression" in html
    assert sum(r["customers"] for r in check["by_frequency"]) == summary["customers_fitted"]


def test_the_bundle_is_verified_and_refused_when_edited(fitted, tmp_path):
    result, out, _ = fitted
    model = load_clv_model(out)
    assert model.version == result.model.version and len(model.version) == 12
    assert [m.model for m in model.manifest.models] == ["bgnbd", "pareto_nbd", "gamma_gamma"]
    with pytest.raises(BundleError, match="lifetime-value bundle"):
        load_model(out)
    copy = tmp_path / "edited"
    copy.mkdir()
    data = json.loads((out / "manifest.json").read_text())
    data["models"][0]["params"]["r"] *= 2
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="edited after the bundle was written"):
        verify_clv_bundle(copy)


def test_scoring_a_log_again_gives_the_same_scores_without_pymc(fitted, shop, tmp_path):
    _, out, _ = fitted
    code = (
        "import sys, pandas as pd\n"
        "from propensity.workflows.clv import score_clv\n"
        f"s = score_clv({str(out)!r}, {str(shop)!r}, {str(tmp_path / 'again.parquet')!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pymc', 'pymc_marketing', 'pytensor'))\n"
        "assert not bad, bad\n"
        "print(s['totals']['customers'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first = pd.read_parquet(out / "scores.parquet")
    again = pd.read_parquet(tmp_path / "again.parquet")
    pd.testing.assert_frame_equal(first, again)
    assert (tmp_path / "again.summary.json").exists()


def test_scoring_at_an_earlier_cutoff_uses_only_purchases_before_it(fitted, shop, tmp_path):
    _, out, _ = fitted
    summary = score_clv(out, shop, tmp_path / "early.csv", as_of="2024-03-01")
    early = pd.read_csv(tmp_path / "early.csv")
    assert summary["as_of"] == "2024-03-01 00:00:00" and len(early) == summary["totals"]["customers"]
    late = pd.read_parquet(out / "scores.parquet")
    assert len(early) < len(late)


def test_propensity_score_scores_a_log_with_a_clv_bundle(fitted, shop, tmp_path):
    _, out, _ = fitted
    target = tmp_path / "cli_scores.csv"
    result = CliRunner().invoke(app, ["score", str(out), str(shop), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert "likely alive" in result.output
    pd.testing.assert_frame_equal(
        pd.read_csv(target, dtype={"customer_id": str})[["customer_id", "clv"]],
        pd.read_parquet(out / "scores.parquet")[["customer_id", "clv"]],
        check_dtype=False,
    )


def test_the_run_is_recorded_and_loads_by_registry_uri(fitted, tmp_path, monkeypatch):
    from propensity.config import get_settings

    monkeypatch.setenv("PROPENSITY_HOME", str(tmp_path / "home"))  # the download cache, not the repo's
    get_settings.cache_clear()
    result, out, uri = fitted
    tracked = result.tracking
    assert tracked.model_uri == "models:/shop-clv/1", tracked
    assert json.loads((out / "tracking.json").read_text())["status"] == "logged"
    try:
        model = resolve_clv_model("models:/shop-clv/1", tracking_uri=uri)
    finally:
        get_settings.cache_clear()
    assert model.version == result.model.version
    assert (tmp_path / "home" / "registry").is_dir()


def test_bad_requests_are_one_line_errors(shop, tmp_path):
    with pytest.raises(ParameterError, match="'model' parameter must be one of bgnbd, pareto, both"):
        fit_clv_from_events(shop, model="gamma")
    with pytest.raises(DataError, match="No purchase before the cutoff 2023-06-01"):
        fit_clv_from_events(shop, as_of="2023-06-01")
    with pytest.raises(
        DataError, match="holdout from 2024-08-01 runs .* day\\(s\\) past the end of the data"
    ):
        fit_clv_from_events(shop, as_of="2024-08-01", holdout_days=60, export_time="2024-08-28")


def test_cli_writes_the_bundle_and_says_what_it_did(shop, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "clv",
            str(shop),
            "--out",
            str(out),
            "--holdout-days",
            "45",
            "--no-tracking",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "bgnbd (map)" in result.output and "Holdout bgnbd" in result.output and "Scores at" in result.output
    )
    assert (out / "manifest.json").exists() and (out / "scores.parquet").exists()


def test_cli_bad_input_is_one_error_line_and_exit_2(shop, tmp_path):
    """The installed entry point, in a real process: no traceback, one line."""
    exe = Path(sys.executable).parent / "propensity"
    done = subprocess.run(
        [str(exe), "clv", str(shop), "--out", str(tmp_path / "x"), "--as-of", "2000-01-01", "--no-tracking"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: No purchase before the cutoff 2000-01-01"), done.stderr
    assert "Traceback" not in done.stderr
