"""The shop report in a real browser: Debian's Chromium driven by Playwright renders every chart and
requests nothing outside the file (the page must work offline)."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from propensity.workflows.shop import report_shop

from .test_report import BROWSER_ARGS, CHROMIUM, _chromium_or_skip

SECTIONS = [
    "findings",
    "recommendations",
    "segments",
    "products",
    "categories",
    "pairs",
    "quality",
    "methodology",
    "limitations",
]


@pytest.mark.browser
@pytest.mark.slow
def test_shop_report_renders_offline_in_chromium(small_shop, tmp_path, artifacts):
    sync_playwright = _chromium_or_skip()
    out = tmp_path / "insights.html"
    report_shop(small_shop / "events.parquet", out, min_support=5, min_pair_orders=2)
    requests: list[str] = []
    errors: list[str] = []
    profile = tempfile.mkdtemp(prefix="propensity-chromium-")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=BROWSER_ARGS,
                viewport={"width": 1366, "height": 900},
            )
            try:
                page = browser.new_page()
                page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
                page.on(
                    "console",
                    lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
                )
                page.on("request", lambda req: requests.append(req.url))
                page.goto(out.resolve().as_uri())
                page.wait_for_selector("body[data-rendered=true]", timeout=60_000)
                for section in SECTIONS:
                    assert page.locator(f"section#{section}").is_visible(), section
                assert page.locator(".js-plotly-plot").count() == 3
                assert page.locator("#fig-categories .main-svg").count() > 0
                assert (
                    page.locator("section#products table").count() == 4
                )  # revenue, views, conversion, abandonment
                page.screenshot(path=str(artifacts / "shop_report.png"), full_page=True)
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    external = [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert not external, external
    assert requests and requests[0].startswith("file:")
    assert not errors, errors
