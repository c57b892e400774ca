"""The shop report in a real browser: Debian's Chromium driven by Playwright renders every chart and
requests nothing outside the file (the page must work offline)."""

from __future__ import annotations

import pytest

from propensity.workflows.shop import report_shop

from .test_report import _chromium_or_skip, assert_offline, chromium_page

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
    with chromium_page(sync_playwright, height=900) as (page, errors, requests):
        page.goto(out.resolve().as_uri())
        page.wait_for_selector("body[data-rendered=true]", timeout=60_000)
        for section in SECTIONS:
            assert page.locator(f"section#{section}").is_visible(), section
        assert page.locator(".js-plotly-plot").count() == 3
        assert page.locator("#fig-categories .main-svg").count() > 0
        assert page.locator("section#products table").count() == 4  # revenue, views, conversion, abandonment
        page.screenshot(path=str(artifacts / "shop_report.png"), full_page=True)
    assert_offline(requests)
    assert requests and requests[0].startswith("file:")
    assert not errors, errors
