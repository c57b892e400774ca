"""The dashboard, run like a user runs it: every page in Streamlit's AppTest with and without a
model or a log, bad uploads explained, the CLI, and a real `streamlit run` driven by Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from propensity.analytics import EventStore, summary_kpis
from propensity.dashboard import (
    CACHE_ENV,
    CLV_ENV,
    EVENTS_ENV,
    MODEL_ENV,
    app_path,
    resolve_sources,
    streamlit_command,
)
from propensity.dashboard.uploads import read_upload, score_upload
from propensity.errors import DataError, ParameterError, SchemaError
from propensity.targeting import threshold_view
from propensity.workflows.events import customer_snapshot, train_from_events
from propensity.workflows.monitoring import monitor
from tests._processes import descendants, port_is_free, stop_process, survivors
from tests.report.test_report import BROWSER_ARGS, _chromium_or_skip

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

PAGES = ["overview", "behaviour", "model", "explain", "target", "score", "monitor"]


@pytest.fixture(scope="module")
def shop_model(tmp_path_factory, small_shop):
    out = tmp_path_factory.mktemp("dash_model") / "model"
    train_from_events(
        small_shop / "events.parquet",
        horizon_days=14,
        cutoffs=3,
        step_days=14,
        lookbacks=(7, 30),
        out=out,
        candidates=["lightgbm"],
        seed=3,
    )
    return out


def _app(
    monkeypatch, cache: Path, model: Path | None, events: Path | None, clv: Path | None = None
) -> AppTest:
    monkeypatch.setenv(CLV_ENV, str(clv) if clv else "")
    monkeypatch.setenv(MODEL_ENV, str(model) if model else "")
    monkeypatch.setenv(EVENTS_ENV, str(events) if events else "")
    monkeypatch.setenv(CACHE_ENV, str(cache))
    at = AppTest.from_file(str(app_path()), default_timeout=240)
    return at.run()


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with ``column`` (AppTest's tables carry no key)."""
    for df in at.dataframe:
        value = df.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a column {column!r}")


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.slow
def test_every_page_with_a_model_and_a_log(monkeypatch, tmp_path, shop_model, small_shop):
    events = small_shop / "events.parquet"
    at = _app(monkeypatch, tmp_path / "cache", shop_model, events)
    seconds = {}
    for page in PAGES:
        start = time.perf_counter()
        _page(at, page)
        seconds[page] = time.perf_counter() - start
        problems = [
            e.value for e in at.error if not e.value.startswith("**RED**")
        ]  # the monitor's alert banner
        assert not problems, (page, problems)
    # Overview: the numbers are propensity.analytics' on the validated log
    _page(at, "overview")
    canonical = tmp_path / "cache" / "validated" / "events.parquet"
    k = summary_kpis(EventStore(canonical))
    shown = _metrics(at)
    assert shown["Customers"] == f"{k['customers']:,}" and shown["Orders"] == f"{k['orders']:,}"
    assert shown["Session conversion"] == f"{k['conversion_rate']:.1%}"
    at.radio(key="overview_freq").set_value("day").run()
    assert not at.exception
    # Behaviour: the segment table carries the model's propensity
    _page(at, "behaviour")
    segments = _frame(at, "meaning")
    assert "mean propensity" in segments.columns and segments["customers"].sum() == k["customers"]
    # Model: the threshold slider moves the confusion matrix and the counts
    _page(at, "model")
    ev = json.loads((shop_model / "evaluation.json").read_text())
    ds = ev["datasets"][ev["main"]]
    for t in (0.1, 0.3):
        at.slider(key="model_threshold").set_value(t).run()
        tv = threshold_view(ds["sweep"], n=ds["n"], positives=ds["positives"], threshold=t, value=10, cost=1)
        shown = _metrics(at)
        assert shown["Contacted"] == f"{tv.contacted:,}", t
        cm = _frame(at, "not contacted")
        assert cm.loc["bought", "contacted"] == tv.tp and cm.loc["did not buy", "not contacted"] == tv.tn
    # Explain: searching picks a customer; the score shown is the snapshot's
    _page(at, "explain")
    snap = pd.read_parquet(next((tmp_path / "cache").glob("snapshot-*.parquet")))
    target = snap["customer_id"].iloc[len(snap) // 2]
    at.text_input(key="explain_search").input(target).run()
    assert at.selectbox(key="explain_customer").value == target
    p = float(snap.loc[snap["customer_id"] == target, "probability"].iloc[0])
    assert _metrics(at)["Probability"] == f"{p:.1%}"
    assert any("(+" in m.value or "(−" in m.value for m in at.markdown)  # reason codes
    # Target: 50 contacts → the 50 highest eligible probabilities
    _page(at, "target")
    at.number_input(key="target_contacts").set_value(50).run()
    eligible = snap[snap["eligible"]].sort_values("probability", ascending=False)
    assert _metrics(at)["Contacts"] == "50"
    assert _metrics(at)["Expected buyers"] == f"{eligible['probability'].head(50).sum():,.1f}"
    at.radio(key="target_mode").set_value("money").run()
    at.number_input(key="target_budget").set_value(30.0).run()
    assert _metrics(at)["Contacts"] == "15"  # 30 / 2 per contact
    # Score: the form is generated from the manifest and scores one record
    _page(at, "score")
    model_manifest = json.loads((shop_model / "manifest.json").read_text())
    n_inputs = len(model_manifest["input_schema"]["features"])
    assert len(at.number_input) + len(at.selectbox) + len(at.text_input) >= n_inputs
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert "Probability" in _metrics(at)
    # Monitor: the log at the default as-of (the last one with an outcome) is propensity monitor's answer
    _page(at, "monitor")
    as_of = at.date_input(key="monitor_as_of").value
    expected = monitor(shop_model, canonical, as_of=str(as_of), report=False)
    banner = (
        at.error if expected.status == "red" else at.warning if expected.status == "amber" else at.success
    )[0]
    assert banner.value.startswith(f"**{expected.status.upper()}**")
    shown = _metrics(at)
    assert shown["Rows tested"] == f"{expected.data['rows']:,}"
    assert shown["Score PSI"] == f"{expected.score['psi']:.3f}"
    assert shown["Realised ROC-AUC"] == f"{expected.performance['roc_auc']:.3f}"
    table = _frame(at, "PSI")
    assert list(table["feature"]) == [f["name"] for f in expected.features]
    at.date_input(key="monitor_as_of").set_value(at.date_input(key="monitor_as_of").max).run()
    assert not at.exception and _metrics(at)["Realised ROC-AUC"] == "–"  # no outcome after the log's end
    print({k: round(v, 2) for k, v in seconds.items()})


@pytest.mark.slow
def test_lifetime_values_by_segment_and_targeting_by_expected_value(
    monkeypatch, tmp_path, shop_model, small_shop
):
    pytest.importorskip("pymc_marketing", reason="the clv extra (pymc-marketing) is not installed")
    from propensity.workflows.clv import clv_snapshot, fit_clv_from_events

    events = small_shop / "events.parquet"
    clv_dir = tmp_path / "clv"
    fit_clv_from_events(events, out=clv_dir, model="bgnbd", horizon_days=90, report=False, tracking=False)
    at = _app(monkeypatch, tmp_path / "cache", shop_model, events, clv_dir)
    _page(at, "behaviour")
    segments = _frame(at, "meaning")
    assert {"mean propensity", "mean P(alive)", "P(alive) ≥ 50 %", "lifetime value"} <= set(segments.columns)
    snap = pd.read_parquet(next((tmp_path / "cache").glob("snapshot-*.parquet")))
    as_of = EventStore(tmp_path / "cache" / "validated" / "events.parquet").data_end
    clv, _, _ = clv_snapshot(clv_dir, events, as_of=str(as_of))
    assert segments["lifetime value"].sum() == pytest.approx(clv["clv"].sum(), rel=1e-9)
    # Target: ranking by probability × CLV picks the top expected values among the eligible
    _page(at, "target")
    at.radio(key="target_value_mode").set_value(at.radio(key="target_value_mode").options[1]).run()
    assert not at.exception
    at.number_input(key="target_contacts").set_value(20).run()
    eligible = snap[snap["eligible"]].merge(clv[["customer_id", "clv"]], on="customer_id", how="left")
    eligible["ev"] = eligible["probability"] * eligible["clv"].fillna(0.0)
    top = eligible.sort_values(["ev", "probability"], ascending=False).head(20)
    shown = _metrics(at)
    assert shown["Contacts"] == "20"
    assert shown["Expected buyers"] == f"{top['probability'].sum():,.1f}"
    listing = _frame(at, "expected_value")
    assert listing["customer_id"].head(20).tolist() == top["customer_id"].tolist()
    assert listing["expected_value"].head(20).to_numpy() == pytest.approx(top["ev"].to_numpy() - 2.0)


@pytest.mark.slow
def test_behaviour_product_tables_and_target_by_segment(monkeypatch, tmp_path, shop_model, small_shop):
    from propensity.analytics.products import product_analytics
    from propensity.engines import get_engine

    at = _app(monkeypatch, tmp_path / "cache", shop_model, small_shop / "events.parquet")
    _page(at, "behaviour")
    canonical = tmp_path / "cache" / "validated" / "events.parquet"
    with get_engine("duckdb", threads=1) as eng:
        expected = product_analytics(eng.read(canonical), engine=eng, min_support=5)
    assert expected is not None
    shown = _frame(at, "share of revenue")  # products by revenue, 20 rows, by default
    assert list(shown["product_id"]) == list(expected.top("revenue", n=20)["product_id"])
    at.number_input(key="behaviour_support").set_value(5).run()
    at.radio(key="behaviour_level").set_value("categories").run()
    at.selectbox(key="behaviour_ranking").set_value("conversion").run()
    shown = _frame(at, "view → purchase")
    assert list(shown["category"]) == list(expected.top("conversion", level="categories", n=20)["category"])
    assert (shown["viewers"] >= 5).all()
    assert expected.pairs.empty  # too few orders in the small shop for pairs of 10 orders or more
    assert any(c.value.startswith("Bought together: no two") for c in at.caption)
    _page(at, "target")
    at.multiselect(key="target_segments").set_value(["champions", "loyal"]).run()
    listing = _frame(at, "expected_value")
    assert not at.exception and set(listing["segment"]) <= {"champions", "loyal"} and len(listing)
    at.multiselect(key="target_bands").set_value(["high"]).run()
    assert set(_frame(at, "expected_value")["band"]) == {"high"}


@pytest.mark.slow
def test_pages_without_a_model_explain_what_is_missing(monkeypatch, tmp_path, small_shop):
    at = _app(monkeypatch, tmp_path / "cache", None, small_shop / "events.parquet")
    for page in PAGES:
        _page(at, page)
        infos = " ".join(i.value for i in at.info)
        if page in ("overview", "behaviour"):
            assert "No model" not in infos and len(at.get("plotly_chart")) >= 2, page
        else:
            assert "No model is loaded" in infos, page
    _page(at, "behaviour")
    assert "mean propensity" not in _frame(at, "meaning").columns


@pytest.mark.slow
def test_pages_with_a_table_model_and_no_log(monkeypatch, tmp_path, trained):
    _, bundle = trained
    at = _app(monkeypatch, tmp_path / "cache", bundle, None)
    for page in PAGES:
        _page(at, page)
        infos = " ".join(i.value for i in at.info)
        if page in ("overview", "behaviour"):
            assert "No event log is loaded" in infos, page
    _page(at, "model")
    assert _metrics(at)["ROC-AUC"] != "–"
    _page(at, "explain")
    assert at.selectbox(key="explain_example").value.startswith("high")  # the evaluation's examples
    _page(at, "target")
    assert "score a file on the Score page" in " ".join(i.value for i in at.info)
    _page(at, "monitor")  # a table model: monitoring waits for an uploaded table
    assert not at.error and "Upload a table of recent records" in " ".join(c.value for c in at.caption)


def test_a_bad_model_or_log_is_a_message_not_a_traceback(monkeypatch, tmp_path):
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    (bogus / "manifest.json").write_text("{}")
    log = tmp_path / "log.csv"
    log.write_text("a,b\n1,2\n")
    at = _app(monkeypatch, tmp_path / "cache", bogus, log)
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "could not be loaded" in errors and "could not be read" in errors


# --------------------------------------------------------------------------- uploads


def test_uploads_good_and_bad(trained, customer_table):
    model, _ = trained
    good = customer_table.drop(columns=["purchased"]).head(40)
    scored = score_upload(model, read_upload("x.csv", good.to_csv(index=False).encode()))
    assert len(scored.results) == 40 and {"probability", "reason_1", "reason_3"} <= set(
        scored.results.columns
    )
    assert scored.results["probability"].tolist() == pytest.approx(model.predict_proba(good).tolist())
    # unreadable values: quarantined with row, column, value and reason; the rest is scored
    dirty = good.copy().astype(object)
    numeric = next(f.name for f in model.manifest.input_schema.features if f.role == "numeric" and f.required)
    dirty.loc[dirty.index[2], numeric] = "lots"
    scored = score_upload(model, read_upload("dirty.csv", dirty.to_csv(index=False).encode()))
    assert len(scored.results) == 39
    bad = scored.quarantine.iloc[0]
    assert (bad["row"], bad["column"], bad["value"]) == (3, numeric, "lots")
    # wrong columns, empty file, unsupported type, garbage parquet: one clear DataError/SchemaError each
    with pytest.raises(SchemaError, match=f"lacks the required column.*{numeric}"):
        score_upload(
            model, read_upload("cols.csv", good.drop(columns=[numeric]).to_csv(index=False).encode())
        )
    with pytest.raises(DataError, match="'empty.csv' is empty"):
        read_upload("empty.csv", b"")
    with pytest.raises(DataError, match="file type '.xlsx' is not supported"):
        read_upload("book.xlsx", b"PK\x03\x04")
    with pytest.raises(DataError, match="Cannot read 'scores.parquet': it is not a Parquet file"):
        read_upload("scores.parquet", b"this is not parquet")
    with pytest.raises(DataError, match="no data rows"):
        read_upload("header.csv", b"a,b,c\n")


# --------------------------------------------------------------------------- CLI


def test_dashboard_command_needs_something_to_show(tmp_path, monkeypatch):
    from propensity.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["dashboard"])
    assert result.exit_code == 2 and "make demo" in result.output
    result = CliRunner().invoke(app, ["dashboard", "--events", "nowhere.parquet"])
    assert result.exit_code == 2 and "does not exist" in result.output
    with pytest.raises(ParameterError, match="does not exist"):
        resolve_sources("no/model", None)
    (tmp_path / "demo" / "shop").mkdir(parents=True)
    (tmp_path / "demo" / "shop" / "events.parquet").write_bytes(b"")
    sources = resolve_sources(None, None)
    assert sources.model is None and sources.events == str(Path("demo/shop/events.parquet"))
    with pytest.raises(ParameterError, match="needs an event log"):
        resolve_sources("models:/shop/1", None, clv="clv")
    with pytest.raises(ParameterError, match="not a lifetime-value bundle"):
        resolve_sources(None, "demo/shop/events.parquet", clv="demo/shop")
    result = CliRunner().invoke(
        app, ["dashboard", "--events", "demo/shop/events.parquet", "--clv", "nowhere"]
    )
    assert result.exit_code == 2 and "does not exist" in result.output


def test_analyze_command_writes_tables_and_charts(tmp_path, small_shop):
    from propensity.cli import app

    out = tmp_path / "analytics"
    result = CliRunner().invoke(app, ["analyze", str(small_shop / "events.parquet"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Segments at" in result.output and "quarantined" in result.output
    kpis = json.loads((out / "kpis.json").read_text())
    expected = summary_kpis(EventStore(out / "validated" / "events.parquet"))
    floats = {k for k, v in expected.items() if isinstance(v, float)}
    assert {k: v for k, v in kpis.items() if k not in floats} == {
        k: v for k, v in expected.items() if k not in floats
    }
    for k in floats:  # sums run in parallel: equal up to the last bits
        assert kpis[k] == pytest.approx(expected[k], rel=1e-12), k
    assert (out / "charts.html").stat().st_size > 1_000_000  # plotly.js embedded once
    assert pd.read_csv(out / "rfm_segments.csv")["customers"].sum() == kpis["customers"]


@pytest.mark.slow
def test_analyze_with_a_model_adds_segment_propensity(tmp_path, small_shop, shop_model):
    from propensity.bundle import load_model
    from propensity.cli import app

    out = tmp_path / "analytics"
    result = CliRunner().invoke(
        app, ["analyze", str(small_shop / "events.parquet"), "--out", str(out), "--model", str(shop_model)]
    )
    assert result.exit_code == 0, result.output
    segments = pd.read_csv(out / "rfm_segments.csv")
    store = EventStore(out / "validated" / "events.parquet")
    snap = customer_snapshot(
        load_model(shop_model), out / "validated" / "events.parquet", as_of=store.data_end
    )
    assert segments["expected_buyers"].sum() == pytest.approx(snap["probability"].sum(), rel=1e-9)


# --------------------------------------------------------------------------- a real browser


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
def test_dashboard_in_chromium(tmp_path, shop_model, small_shop, free_port, wait_for_http, artifacts):
    sync_playwright = _chromium_or_skip()
    port = free_port()
    log = tmp_path / "streamlit.log"
    env = {
        **os.environ,
        MODEL_ENV: str(shop_model),
        EVENTS_ENV: str(small_shop / "events.parquet"),
        CACHE_ENV: str(tmp_path / "cache"),
    }
    command = streamlit_command(port)
    base = f"http://127.0.0.1:{port}"
    errors: list[str] = []
    profile = tempfile.mkdtemp(prefix="propensity-chromium-")
    with log.open("w") as fh:
        proc = subprocess.Popen(command, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"{base}/_stcore/health", proc, timeout=120, log=log)
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                profile,
                executable_path="/usr/bin/chromium",
                headless=True,
                args=BROWSER_ARGS,
                viewport={
                    "width": 1440,
                    "height": 2400,
                },  # Streamlit scrolls inside: a tall page shows it all
            )
            try:
                page = browser.new_page()
                page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
                for name in PAGES:
                    page.goto(f"{base}/{name if name != 'overview' else ''}")  # the default page is /
                    page.wait_for_selector("h1", timeout=180_000)
                    page.wait_for_function(
                        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000
                    )
                    if name != "score":
                        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
                    page.wait_for_timeout(1500)  # let plotly finish laying out
                    assert page.locator('[data-testid="stException"]').count() == 0, name
                    assert name.capitalize() in page.locator("h1").first.inner_text()
                    page.screenshot(path=str(artifacts / f"dashboard_{name}.png"), full_page=True)
                    if name == "model":
                        contacted = page.locator('[data-testid="stMetric"]', has_text="Contacted")
                        before = contacted.inner_text()
                        slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
                        slider.focus()
                        for _ in range(8):
                            slider.press("ArrowRight")
                        page.wait_for_function(
                            "(b) => !Array.from(document.querySelectorAll('[data-testid=stMetric]'))"
                            ".some(e => e.innerText === b)",
                            arg=before,
                            timeout=30_000,
                        )
                        assert contacted.inner_text() != before
                        assert page.locator('[data-testid="stException"]').count() == 0
                        page.screenshot(path=str(artifacts / "dashboard_model_moved.png"), full_page=True)
                    if name == "score":
                        bad = tmp_path / "bad.csv"
                        bad.write_text("foo,bar\n1,2\n")
                        page.locator('[data-testid="stTab"]', has_text="A file").click()
                        page.locator('input[type="file"]').set_input_files(str(bad))
                        page.wait_for_selector(
                            '[data-testid="stAlert"]:has-text("cannot be scored")', timeout=60_000
                        )
                        assert page.locator('[data-testid="stException"]').count() == 0
                        page.screenshot(path=str(artifacts / "dashboard_score_bad_file.png"), full_page=True)
            finally:
                browser.close()
    finally:
        stop_process(proc, timeout=20)
        shutil.rmtree(profile, ignore_errors=True)
    assert not errors, errors


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_dashboard_command_stops_streamlit_and_frees_the_port(
    sig, tmp_path, trained, free_port, wait_for_http
):
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find the child process")
    _, bundle = trained
    port = free_port()
    exe = Path(sys.executable).with_name("propensity")
    log = tmp_path / "dashboard.log"
    command = [
        str(exe),
        "dashboard",
        "--model",
        str(bundle),
        "--port",
        str(port),
        "--cache",
        str(tmp_path / "c"),
    ]
    with log.open("w") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", proc, timeout=120, log=log)
        children = descendants(proc.pid)
        assert children, "the dashboard command runs Streamlit as a child"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
        assert not survivors(children, wait=0), "Streamlit outlived the command"
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()
