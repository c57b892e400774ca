"""GET /customers/{id} and POST /customers/batch: from the live store, or from a log at an as-of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from propensity.serving import ServeSettings, create_app
from propensity.stream.replay import log_messages
from propensity.workflows.events import score_events
from propensity.workflows.live import LiveScorer
from propensity.workflows.store import EventStore

KEY = "stream-key"
HEADERS = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def live_store(tmp_path_factory, stream_model, stream_log) -> Path:
    """The stream log pushed through the live scorer directly (no broker): the store a stream leaves."""
    path = tmp_path_factory.mktemp("api_store") / "live.db"
    with EventStore(path) as store:
        scorer = LiveScorer(stream_model, store)
        for messages in log_messages(stream_log, chunk=1000):
            scorer.process(messages)
        scorer.close()
    return path


@pytest.fixture(scope="module")
def client(stream_model, live_store):
    settings = ServeSettings(api_keys=KEY, store=live_store, max_batch_records=5)
    with TestClient(create_app(stream_model, settings)) as c:
        yield c


def test_a_customer_is_answered_from_the_store(client, live_store):
    with EventStore(live_store, readonly=True) as store:
        expected = store.scores().iloc[0]
    r = client.get(f"/customers/{expected['customer_id']}", headers=HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["probability"] == expected["probability"] and body["band"] == expected["band"]
    assert body["as_of"] == expected["as_of"] and len(body["reasons"]) == 3
    assert body["features"] == expected["features"] and "n_events_30d" in body["features"]


def test_the_batch_form_lists_unknown_ids(client, live_store):
    with EventStore(live_store, readonly=True) as store:
        ids = list(store.scores()["customer_id"][:2])
    r = client.post("/customers/batch", json={"customer_ids": [*ids, "nobody"]}, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert [c["customer_id"] for c in r.json()["customers"]] == ids and r.json()["unknown"] == ["nobody"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field", "kind"),
    [
        ("get", "/customers/nobody", None, 404, "customer_id", "unknown_customer"),
        ("get", "/customers/" + "x" * 300, None, 422, "customer_id", "customer_id"),
        ("post", "/customers/batch", {"customer_ids": []}, 422, "customer_ids", "list_type"),
        ("post", "/customers/batch", {"ids": ["a"]}, 422, "customer_ids", "list_type"),
        ("post", "/customers/batch", {"customer_ids": ["a", 3]}, 422, "customer_ids[1]", "customer_id"),
        ("post", "/customers/batch", {"customer_ids": list("abcdef")}, 413, "customer_ids", "too_many"),
    ],
)
def test_bad_requests_get_4xx_with_the_field(client, method, path, body, status, field, kind):
    r = client.request(method, path, json=body, headers=HEADERS)
    assert r.status_code == status, r.text
    problem = r.json()["detail"][0]
    assert (problem["field"], problem["type"]) == (field, kind)


def test_not_json_is_a_400(client):
    r = client.post(
        "/customers/batch", content=b"{nope", headers={**HEADERS, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "body"


def test_the_same_keys_guard_the_customer_routes(client):
    assert client.get("/customers/C0000001").status_code == 401
    assert client.post("/customers/batch", json={"customer_ids": ["a"]}).status_code == 401


def test_without_a_source_the_routes_say_how_to_get_one(stream_model):
    with TestClient(create_app(stream_model, ServeSettings())) as c:
        r = c.get("/customers/C0000001")
    assert r.status_code == 404 and r.json()["detail"][0]["type"] == "no_customer_source"


def test_from_a_log_at_an_as_of_the_answer_is_the_batch_score(stream_model, stream_log, tmp_path):
    as_of = "2024-03-01"
    settings = ServeSettings(events=stream_log, as_of=as_of)
    score_events(stream_model, stream_log, tmp_path / "batch.parquet", as_of=as_of)
    batch = pd.read_parquet(tmp_path / "batch.parquet").set_index("customer_id")
    ids = list(batch.index[:5])
    with TestClient(create_app(stream_model, settings)) as c:
        r = c.post("/customers/batch", json={"customer_ids": ids})
    assert r.status_code == 200, r.text
    got = r.json()["customers"]
    assert [g["as_of"] for g in got] == ["2024-03-01T00:00:00"] * 5
    np.testing.assert_array_equal([g["probability"] for g in got], batch.loc[ids, "probability"].to_numpy())


@pytest.mark.slow
def test_with_a_lifetime_value_bundle_each_record_carries_its_clv(stream_model, stream_log, tmp_path):
    pytest.importorskip("pymc_marketing", reason="the clv extra (pymc-marketing) is not installed")
    from propensity.errors import ParameterError
    from propensity.workflows.clv import clv_snapshot, fit_clv_from_events

    as_of = "2024-03-01"
    clv_dir = tmp_path / "clv"
    fit_clv_from_events(stream_log, out=clv_dir, as_of=as_of, horizon_days=90, report=False, tracking=False)
    expected, _, _ = clv_snapshot(clv_dir, stream_log, as_of=as_of)
    expected = expected.set_index(expected["customer_id"].astype(str))
    batch = pd.read_parquet(
        score_events(stream_model, stream_log, tmp_path / "b.parquet", as_of=as_of).output
    )
    buyer = str(expected.index[0])
    never = next(c for c in batch["customer_id"].astype(str) if c not in expected.index)
    settings = ServeSettings(events=stream_log, as_of=as_of, clv=str(clv_dir))
    with TestClient(create_app(stream_model, settings)) as c:
        r = c.post("/customers/batch", json={"customer_ids": [buyer, never]})
        assert r.status_code == 200, r.text
        got = {g["customer_id"]: g for g in r.json()["customers"]}
        lv = got[buyer]["lifetime_value"]
        for field in ("p_alive", "expected_purchases", "clv"):
            assert lv[field] == pytest.approx(float(expected.loc[buyer, field]), rel=1e-12)
        assert got[never]["lifetime_value"] is None  # no purchase before the as-of
        assert (
            "lifetime_value"
            in c.get("/openapi.json").json()["components"]["schemas"]["CustomerRecord"]["properties"]
        )
    with pytest.raises(ParameterError, match="--clv needs --events"):
        create_app(stream_model, ServeSettings(clv=str(clv_dir)))
