"""``/explain``: the /predict answer plus the reasons `propensity score --reasons` gives, in the same words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from propensity.explain import SPACE, reason_codes
from propensity.sources import read_table
from propensity.workflows.scoring import score_file
from tests.serving.conftest import records_of


def test_explain_matches_score_reasons_and_predict(client, lgbm_model, customer_table, tmp_path):
    rows = customer_table.head(12).copy()
    rows.loc[rows.index[:3], "avg_order_value"] = np.nan
    records = records_of(rows, lgbm_model)
    expected = reason_codes(lgbm_model, rows, k=3)
    src = tmp_path / "rows.csv"
    rows.to_csv(src, index=False)
    score_file(lgbm_model, src, tmp_path / "scored.csv", reasons=3)
    scored = read_table(tmp_path / "scored.csv").fillna("")
    for i, record in enumerate(records):
        r = client.post("/explain", json=record)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["probability"] == client.post("/predict", json=record).json()["probability"]
        assert body["space"] == SPACE and body["id"] == record["customer_id"]
        got = body["reasons"]
        assert [g["feature"] for g in got] == [e.feature for e in expected[i]]
        assert [g["text"] for g in got] == [e.text for e in expected[i]]
        np.testing.assert_allclose([g["contribution"] for g in got], [e.contribution for e in expected[i]])
        assert [g["text"] for g in got] == [
            t for t in scored.loc[i, ["reason_1", "reason_2", "reason_3"]] if t
        ]


def test_explain_batch_keeps_order_and_k(client, lgbm_model, customer_table):
    records = records_of(customer_table.head(5), lgbm_model)
    r = client.post("/explain/batch", params={"k": 2}, json={"records": records})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["results"]] == [rec["customer_id"] for rec in records]
    assert all(len(x["reasons"]) <= 2 for x in body["results"]) and body["server_ms"] > 0
    expected = lgbm_model.predict_proba(pd.DataFrame(records))
    assert [x["probability"] for x in body["results"]] == pytest.approx(expected.tolist(), abs=1e-12)


@pytest.mark.parametrize("k", [0, 21, "many"])
def test_explain_rejects_a_bad_k(client, example, k):
    r = client.post("/explain", params={"k": k}, json=example)
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] in ("k", "query.k")


def test_explain_batch_limit_and_bad_records(client, example, app):
    limit = app.state.settings.max_explain_records
    r = client.post("/explain/batch", json={"records": [example] * (limit + 1)})
    assert r.status_code == 413
    assert "MAX_EXPLAIN_RECORDS" in r.json()["detail"][0]["message"]
    assert client.post("/explain/batch", json={"records": []}).status_code == 422
    bad = dict(example, visits_30d="lots")
    r = client.post("/explain", json=bad)
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "visits_30d"


def test_explain_needs_a_key(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as anon:
        assert anon.post("/explain", json={}).status_code == 401
        assert anon.post("/explain/batch", json={"records": []}).status_code == 401


def test_explain_and_predict_work_on_an_ensemble_bundle(tmp_path_factory, customer_table):
    """The default model (a greedy ensemble) serves /predict and /explain like a single model."""
    from fastapi.testclient import TestClient

    import propensity
    from propensity.serving import ServeSettings, create_app
    from tests.serving.conftest import HEADERS, KEY

    out = tmp_path_factory.mktemp("serving") / "ensemble"
    model = propensity.train(
        customer_table,
        target="purchased",
        out=out,
        candidates=["logistic_regression", "lightgbm"],
        seed=4,
        folds=3,
        n_jobs=1,
        tracking=False,
    ).model
    assert model.manifest.winner == "ensemble" and model.manifest.ensemble is not None
    rows = customer_table.head(4)
    expected = reason_codes(model, rows, k=3)
    app = create_app(out, ServeSettings(api_keys=KEY))
    with TestClient(app, headers=HEADERS, raise_server_exceptions=False) as client:
        for i, record in enumerate(records_of(rows, model)):
            r = client.post("/explain", json=record)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["probability"] == pytest.approx(model.predict_proba(rows.iloc[[i]])[0], abs=1e-12)
            assert [g["text"] for g in body["reasons"]] == [e.text for e in expected[i]]
            assert client.post("/predict", json=record).status_code == 200
