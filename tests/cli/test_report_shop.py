"""``propensity report-shop`` in-process (typer's CliRunner): the summary, the files, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from propensity.cli import app

runner = CliRunner()


def test_report_shop_writes_the_page_and_prints_the_findings(small_shop, tmp_path):
    out = tmp_path / "insights.html"
    result = runner.invoke(
        app, ["report-shop", str(small_shop / "events.parquet"), "--out", str(out), "--min-support", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "Written:" in result.output and str(out) in result.output
    assert "Revenue at risk" in result.output
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["products"]["min_support"] == 5
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_report_shop_markdown_by_flag(small_shop, tmp_path):
    out = tmp_path / "insights.txt"
    result = runner.invoke(
        app, ["report-shop", str(small_shop / "events.parquet"), "--out", str(out), "--format", "md"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Shop insights")


def test_report_shop_errors_are_one_line(small_shop, tmp_path):
    bad = runner.invoke(
        app,
        [
            "report-shop",
            str(small_shop / "events.parquet"),
            "--out",
            str(tmp_path / "x.html"),
            "--format",
            "pdf",
        ],
    )
    assert bad.exit_code == 2 and "'format'" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(
        app,
        [
            "report-shop",
            str(small_shop / "events.parquet"),
            "--out",
            str(tmp_path / "y.html"),
            "--clv",
            str(tmp_path / "no.parquet"),
        ],
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output
    same = runner.invoke(
        app, ["report-shop", str(small_shop / "events.parquet"), "--out", str(small_shop / "events.parquet")]
    )
    assert same.exit_code == 2


@pytest.mark.slow
def test_report_shop_scores_a_lifetime_value_bundle_on_the_log(small_shop, tmp_path):
    pytest.importorskip("pymc_marketing", reason="the clv extra (pymc-marketing) is not installed")
    from propensity.workflows.clv import clv_snapshot, fit_clv_from_events

    events = small_shop / "events.parquet"
    fit_clv_from_events(events, out=tmp_path / "clv", horizon_days=90, report=False, tracking=False)
    out = tmp_path / "insights.html"
    result = runner.invoke(
        app, ["report-shop", str(events), "--out", str(out), "--clv", str(tmp_path / "clv")]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.with_suffix(".json").read_text())
    expected, _, _ = clv_snapshot(tmp_path / "clv", events)
    shown = sum(row.get("clv") or 0.0 for row in data["segments"])
    assert shown == pytest.approx(expected["clv"].sum(), rel=1e-6)
