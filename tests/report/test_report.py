"""The HTML report: self-contained, every section present, numbers equal to evaluation.json — and it renders."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sklearn import metrics as skm

SECTIONS = [
    "summary",
    "candidates",
    "discrimination",
    "calibration",
    "decision",
    "business",
    "slices",
    "explanations",
]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Metrics(HTMLParser):
    """Collects the text of every element carrying ``data-metric``."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        self._open.append(dict(attrs).get("data-metric"))

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open and self._open[-1] and data.strip():
            self.values[self._open[-1]] = self.values.get(self._open[-1], "") + data.strip()


@pytest.fixture(scope="module")
def report(trained):
    model, out = trained
    html = (out / "report.html").read_text(encoding="utf-8")
    ev = json.loads((out / "evaluation.json").read_text())
    return model, out, html, ev


def test_report_is_self_contained_and_small(report):
    _, out, html, _ = report
    assert not re.search(r"<script[^>]+src=", html), "no external scripts"
    assert not re.search(r"<link[^>]+href=", html), "no external stylesheets"
    assert "cdn.plot.ly" not in html.split("<script>", 1)[0]
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js is embedded
    assert (out / "report.html").stat().st_size < 10 * 2**20
    for section in SECTIONS:
        assert f'id="{section}"' in html


def test_report_numbers_equal_evaluation_json_and_sklearn(report, training_run):
    _, _, html, ev = report
    parser = _Metrics()
    parser.feed(html)
    shown = parser.values
    run = training_run
    direct = {
        "roc_auc": skm.roc_auc_score(run.y_test, run.test_proba),
        "brier": skm.brier_score_loss(run.y_test, run.test_proba),
    }
    k = -(-len(run.y_test) // 10)  # the top 10 %, rounded up
    order = sorted(range(len(run.y_test)), key=lambda i: -run.test_proba[i])  # stable: ties by row order
    direct["lift_top10"] = run.y_test[order[:k]].mean() / run.y_test.mean()
    for name in ("roc_auc", "brier", "lift_top10", "pr_auc", "precision", "recall", "f1"):
        value = ev["datasets"]["test"]["metrics"][name]
        assert shown[f"test.{name}"] == f"{value:.4f}", name
        if name in direct:
            assert shown[f"test.{name}"] == f"{direct[name]:.4f}", name
    assert shown["kpi.roc_auc"] == f"{ev['datasets']['test']['metrics']['roc_auc']:.3f}"
    assert shown["kpi.lift_top10"] == f"{direct['lift_top10']:.2f}"
    assert shown["oof.roc_auc"] == f"{ev['datasets']['oof']['metrics']['roc_auc']:.4f}"
    cm = ev["datasets"]["test"]["metrics"]["confusion"]
    assert shown["confusion.tp"] == f"{cm['tp']:,}" and shown["confusion.tn"] == f"{cm['tn']:,}"
    assert shown["deciles.1.lift"] == f"{ev['datasets']['test']['deciles'][0]['lift']:.2f}"
    # the figures' data are evaluation.json's
    figures = json.loads(re.search(r'id="figures-data">(.*?)</script>', html, re.S).group(1))
    roc = next(t for t in figures["fig-roc"]["data"] if t["name"].startswith("test"))
    assert roc["x"] == ev["datasets"]["test"]["roc"]["fpr"]
    assert f"AUC {ev['datasets']['test']['roc']['auc']:.3f}" in roc["name"]
    assert set(figures) >= {
        "fig-roc",
        "fig-pr",
        "fig-reliability",
        "fig-histogram",
        "fig-sweep",
        "fig-gain",
        "fig-lift",
        "fig-profit",
        "fig-importance",
        "fig-beeswarm",
        "fig-dependence-0",
        "fig-example-high",
        "fig-example-borderline",
        "fig-example-low",
    }


def _chromium_or_skip():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (run ./scripts/system-deps.sh as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "Playwright for Python is not installed (pip install playwright; never `playwright install`)"
        )
    return sync_playwright


@contextmanager
def chromium_page(sync_playwright: Any, *, height: int) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page of Debian's Chromium (a throwaway profile), with the page's errors and every URL it
    requested collected in the yielded lists; closed and cleaned up afterwards."""
    errors: list[str] = []
    requests: list[str] = []
    profile = tempfile.mkdtemp(prefix="propensity-chromium-")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=BROWSER_ARGS,
                viewport={"width": 1366, "height": height},
            )
            try:
                page = browser.new_page()
                page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
                page.on(
                    "console",
                    lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
                )
                page.on("request", lambda req: requests.append(req.url))
                yield page, errors, requests
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def assert_offline(requests: list[str]) -> None:
    """The page asked for nothing outside its file (it must work offline)."""
    external = [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert not external, external


@pytest.mark.browser
@pytest.mark.slow
def test_report_renders_in_chromium(report, artifacts):
    sync_playwright = _chromium_or_skip()
    _, out, _, ev = report
    with chromium_page(sync_playwright, height=820) as (page, errors, requests):
        start = time.perf_counter()
        page.goto((out / "report.html").resolve().as_uri())
        page.wait_for_selector("body[data-rendered=true]", timeout=60_000)
        seconds = time.perf_counter() - start
        for section in SECTIONS:
            assert page.locator(f"section#{section}").is_visible(), section
            assert page.locator(f"section#{section} h2").inner_text().strip()
        plots = page.locator(".js-plotly-plot").count()
        assert plots >= 14, plots
        assert page.locator("#fig-roc .main-svg").count() > 0  # plotly drew SVG, the page is not blank
        shown = page.locator('[data-metric="test.roc_auc"]').first.inner_text()
        assert shown == f"{ev['datasets']['test']['metrics']['roc_auc']:.4f}"
        # the profit calculator recomputes in the browser
        page.fill("#profit-value", "50")
        page.fill("#profit-cost", "2")
        summary = page.locator("#profit-summary").inner_text()
        assert summary.startswith("Best: contact the top")
        pf = ev["datasets"]["test"]["profit"]
        best = max(b * 50 - c * 2 for b, c in zip(pf["buyers"], pf["contacted"], strict=True))
        assert f"{best:,.0f}" in summary
        page.fill("#profit-value", "10")
        page.fill("#profit-cost", "1")
        page.screenshot(path=str(artifacts / "report_synthetic.png"), full_page=True)
        (artifacts / "report_render.json").write_text(
            json.dumps({"render_seconds": round(seconds, 2), "plots": plots})
        )
    assert_offline(requests)
    assert not errors, errors
    assert seconds < 30
    print(f"report rendered in {seconds:.2f} s with {plots} plots")
