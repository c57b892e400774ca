"""The shop report job: from a small synthetic log (and a model) to an offline page, Markdown and JSON."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from propensity.analytics.products import product_analytics
from propensity.analytics.segments import SEGMENT_GROUPS
from propensity.engines import get_engine
from propensity.errors import ParameterError
from propensity.workflows.events import train_from_events
from propensity.workflows.shop import report_shop

from ..conftest import shared_file


@pytest.fixture(scope="module")
def plain(tmp_path_factory, small_shop):
    out = tmp_path_factory.mktemp("shop_report") / "insights.html"
    result = report_shop(small_shop / "events.parquet", out, min_support=5, min_pair_orders=2)
    return result, out, json.loads(out.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def shop_model(tmp_path_factory, small_shop):
    out = tmp_path_factory.mktemp("shop_model") / "model"
    result = train_from_events(
        small_shop / "events.parquet",
        horizon_days=14,
        cutoffs=3,
        step_days=14,
        lookbacks=(7, 30),
        out=out,
        candidates=["lightgbm"],
        seed=3,
    )
    return result.model


def test_page_is_offline_and_holds_every_section(plain):
    result, out, _ = plain
    page = out.read_text()
    assert result.format == "html" and result.report == str(out)
    # no external resource: no script or stylesheet fetched, plotly.js inline (the browser test watches requests)
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=", page)
    assert not re.search(r"https?://", page.split("<script>", 1)[0])
    assert "Plotly.newPlot" in page
    for section in (
        "findings",
        "recommendations",
        "segments",
        "products",
        "categories",
        "quality",
        "methodology",
        "limitations",
    ):
        assert f'<section id="{section}">' in page, section
    assert 'id="model"' not in page  # no model given


def test_json_holds_the_numbers_the_page_shows(plain, small_shop):
    _, out, data = plain
    page = out.read_text()
    validated = out.with_name("insights_validated") / "events.parquet"
    with get_engine("duckdb", threads=1) as eng:
        pa = product_analytics(eng.read(validated), engine=eng, min_support=5, min_pair_orders=2)
    assert pa is not None
    top = pa.top("revenue")
    ranked = data["products"]["rankings"]["revenue"]
    assert [r["product_id"] for r in ranked] == list(top["product_id"])
    assert [r["revenue"] for r in ranked] == pytest.approx(list(top["revenue"]))
    assert f"{ranked[0]['revenue']:,.0f}" in page
    assert all(r["viewers"] >= 5 for r in data["products"]["rankings"]["conversion"])
    v = data["validation"]
    assert v["rows_in"] == v["rows_ok"] + v["rows_quarantined"] and v["rows_quarantined"] > 0
    assert f"{v['rows_quarantined']:,}" in page
    assert sum(s["customers"] for s in data["segments"]) == data["kpis"]["customers"]
    assert {s["segment"] for s in data["segments"]} <= set(SEGMENT_GROUPS)
    for finding in data["findings"]:
        assert finding["text"] in page.replace("&#39;", "'")
        assert isinstance(finding["numbers"], dict)
    assert data["findings"][0]["numbers"]["revenue"] == pytest.approx(data["kpis"]["revenue"])
    assert data["model"] is None and data["model_words"] == []
    assert data["rules"]["actions"]["best"]["high"]


def test_markdown_by_suffix_or_format(plain, small_shop, tmp_path):
    md = report_shop(small_shop / "events.parquet", tmp_path / "insights.md", cache=tmp_path / "cache")
    text = (tmp_path / "insights.md").read_text()
    assert md.format == "md" and text.startswith("# Shop insights")
    assert "| product | category |" in text and "## Data quality" in text and "<script" not in text
    other = report_shop(
        small_shop / "events.parquet", tmp_path / "report.txt", format="md", cache=tmp_path / "cache"
    )
    assert other.json == str(tmp_path / "report.json")
    with pytest.raises(ParameterError, match="'format'"):
        report_shop(
            small_shop / "events.parquet", tmp_path / "x.html", format="pdf", cache=tmp_path / "cache"
        )


def test_with_a_model_segments_are_split_by_band_and_the_model_is_described(tmp_path, small_shop, shop_model):
    clv = pd.DataFrame({"customer_id": ["C000001", "C000002"], "clv": [10.0, 20.0]})
    result = report_shop(small_shop / "events.parquet", tmp_path / "insights.html", model=shop_model, clv=clv)
    data = json.loads((tmp_path / "insights.json").read_text())
    page = (tmp_path / "insights.html").read_text()
    assert data["model"]["winner"] and data["model"]["horizon_days"] == 14
    assert data["model_words"] and 'id="model"' in page
    bands = {s["band"] for s in data["segments"]}
    assert bands & {"high", "medium", "low"}
    scored = [s for s in data["segments"] if s["band"] != "unscored"]
    for s in scored:  # revenue at risk = the past revenue of the low band
        assert s["revenue_at_risk"] == (s["revenue"] if s["band"] == "low" else 0.0)
        assert 0 <= s["mean_probability"] <= 1
    assert data["segments_basis"]["clv"] is True
    assert "lifetime value" in page
    assert result.findings[-1].startswith("Revenue at risk")


@pytest.mark.shared
@pytest.mark.slow
def test_online_retail_order_log(tmp_path):
    log = shared_file("online_retail", "online_retail.parquet")
    from pathlib import Path

    mapping = Path(__file__).resolve().parents[2] / "examples" / "mappings" / "online_retail.yaml"
    report_shop(log, tmp_path / "retail.html", mapping=mapping)
    data = json.loads((tmp_path / "retail.json").read_text())
    p = data["products"]
    # an order log: revenue rankings and pairs, no views, carts or categories
    assert p["rankings_available"] == ["revenue"] and p["categories"] == {}
    assert len(p["notes"]) == 2 and p["pairs"]
    assert p["products_sold"] > 3000
    assert data["validation"]["rows_quarantined"] > 100_000  # guest orders without a customer id
    assert data["kpis"]["customers"] > 4000
