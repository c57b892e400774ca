"""The dashboard's Live page on a store filled by the live scorer: counts, latest scores, lag, lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from propensity.dashboard import (
    CACHE_ENV,
    CLV_ENV,
    EVENTS_ENV,
    MODEL_ENV,
    STORE_ENV,
    app_path,
    resolve_sources,
)
from propensity.errors import ParameterError
from propensity.stream.replay import log_messages
from propensity.workflows.live import LiveScorer
from propensity.workflows.store import EventStore
from tests.stream.conftest import stream_log, stream_model  # noqa: F401  (fixtures)

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest


@pytest.fixture(scope="module")
def live_store(tmp_path_factory, stream_model, stream_log) -> Path:  # noqa: F811
    """The stream log pushed through the live scorer directly (no broker): the store a stream leaves."""
    path = tmp_path_factory.mktemp("dash_live") / "live.db"
    with EventStore(path) as store:
        scorer = LiveScorer(stream_model, store)
        for messages in log_messages(stream_log, chunk=1000):
            scorer.process(messages)
        scorer.close()
    return path


def _live_app(monkeypatch, tmp_path: Path, store: Path | None) -> AppTest:
    for name in (MODEL_ENV, EVENTS_ENV, CLV_ENV):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(STORE_ENV, str(store) if store else "")
    at = AppTest.from_file(str(app_path()), default_timeout=120).run()
    at.switch_page("views/live.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_live_page_shows_the_store(monkeypatch, tmp_path, live_store):
    with EventStore(live_store, readonly=True) as store:
        scores = store.scores()
        events = store.event_count()
    at = _live_app(monkeypatch, tmp_path, live_store)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Events stored"] == f"{events:,}"
    assert shown["Customers scored"] == f"{len(scores):,}"
    assert shown["To contact"] == f"{int(scores['decision'].sum()):,}"
    latest = next(df.value for df in at.dataframe if "scored_at" in df.value.columns)
    assert set(latest["customer_id"]) <= set(scores["customer_id"]) and len(latest) == min(50, len(scores))
    # the lookup shows the store's record of a customer
    row = scores.iloc[len(scores) // 2]
    at.text_input(key="live_customer").input(str(row["customer_id"])).run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Probability"] == f"{row['probability']:.1%}" and shown["Band"] == row["band"]
    features = next(df.value for df in at.dataframe if "feature" in df.value.columns)
    assert set(features["feature"]) == set(row["features"])
    at.text_input(key="live_customer").input("nobody").run()
    assert any("nobody" in w.value for w in at.warning)
    at.button(key="live_refresh").click().run()
    assert not at.exception


def test_live_page_without_a_store_says_how_to_start_one(monkeypatch, tmp_path):
    at = _live_app(monkeypatch, tmp_path, None)
    assert any("--store" in i.value for i in at.info)


def test_dashboard_store_option_is_checked(tmp_path, live_store):
    from propensity.cli import app

    with pytest.raises(ParameterError, match="does not exist"):
        resolve_sources(None, None, store=str(tmp_path / "none.db"))
    sources = resolve_sources(None, None, store=str(live_store))  # a store alone is enough
    assert sources.store == str(live_store) and sources.environ()[STORE_ENV] == str(live_store)
    result = CliRunner().invoke(app, ["dashboard", "--store", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "does not exist" in result.output
