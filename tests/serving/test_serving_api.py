"""The scoring service in process: predictions equal batch scoring, responses, metadata, metrics, docs, reload."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from propensity.serving import ServeSettings, create_app
from propensity.sources import read_table
from propensity.workflows.scoring import score_file
from tests.serving.conftest import KEY, records_of


def test_predict_equals_predict_proba_and_propensity_score(client, lgbm_model, customer_table, tmp_path):
    rows = customer_table.head(200).copy()
    rows.loc[rows.index[:20], "avg_order_value"] = np.nan  # optional inputs missing -> imputed
    records = records_of(rows, lgbm_model)
    for record in records[::2]:
        record.pop("age", None)  # optional field absent altogether
        rows.loc[rows["customer_id"] == record["customer_id"], "age"] = np.nan
    expected = lgbm_model.predict_proba(rows)
    singles = []
    for record in records:
        r = client.post("/predict", json=record)
        assert r.status_code == 200, r.text
        singles.append(r.json())
    # Bit-identical: same encoded row, same LightGBM predictor (single-row C API vs batch).
    assert [s["probability"] for s in singles] == expected.tolist()
    assert [s["id"] for s in singles] == rows["customer_id"].tolist()
    batch = client.post("/predict/batch", json={"records": records[:50]})
    assert batch.status_code == 200, batch.text
    assert [r["probability"] for r in batch.json()["results"]] == expected[:50].tolist()
    # ... and `propensity score` (score_file) on the same rows writes the same numbers and decisions.
    src = tmp_path / "rows.csv"
    rows.to_csv(src, index=False)
    score_file(lgbm_model, src, tmp_path / "scores.parquet")
    scores = read_table(tmp_path / "scores.parquet")
    np.testing.assert_allclose([s["probability"] for s in singles], scores["probability"], rtol=0, atol=1e-15)
    assert [s["decision"] for s in singles] == scores["decision"].tolist()
    assert [s["band"] for s in singles] == scores["band"].tolist()


def test_predict_equals_batch_scoring_for_the_session_model(trained, customer_table):
    """The same on the shared fixture model (whatever family won), through a fresh app."""
    from fastapi.testclient import TestClient

    model, path = trained
    rows = customer_table.iloc[100:160]
    with TestClient(create_app(path, ServeSettings())) as c:
        got = [c.post("/predict", json=rec).json()["probability"] for rec in records_of(rows, model)]
        batch = c.post("/predict/batch", json={"records": records_of(rows, model)}).json()
    np.testing.assert_allclose(got, model.predict_proba(rows), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        [r["probability"] for r in batch["results"]], model.predict_proba(rows), rtol=0, atol=1e-12
    )


def test_predict_response_shape(client, example, lgbm_model):
    r = client.post("/predict", json=example)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "probability", "decision", "band", "threshold", "model_version", "warnings"}
    assert body["id"] == example["customer_id"]
    assert body["threshold"] == lgbm_model.threshold
    assert body["model_version"] == lgbm_model.version
    assert body["decision"] == (body["probability"] >= body["threshold"])
    assert body["band"] in {"high", "medium", "low"} and body["warnings"] == []
    del example["customer_id"]
    assert client.post("/predict", json=example).json()["id"] is None  # the id is optional


def test_batch_keeps_order_and_counts(client, lgbm_model, customer_table):
    records = records_of(customer_table.head(40), lgbm_model)
    records[5]["device"] = "smart-fridge"
    r = client.post("/predict/batch", json={"records": records})
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    assert [x["id"] for x in results] == [rec["customer_id"] for rec in records]
    counts = body["counts"]
    assert counts["records"] == 40
    assert counts["contact"] == sum(x["decision"] for x in results)
    assert sum(counts["bands"].values()) == 40
    assert counts["unknown_categories"] == {"device": 1}
    assert results[5]["warnings"][0]["field"] == "device"
    assert body["server_ms"] > 0 and body["model_version"] == lgbm_model.version


def test_unknown_category_follows_the_manifest_policy(client, example, lgbm_model):
    """Default policy (the manifest's): scored like the rare training levels, i.e. exactly as batch scoring does."""
    example["device"] = "smart-fridge"
    r = client.post("/predict", json=example)
    assert r.status_code == 200
    body = r.json()
    assert body["warnings"] == [
        {
            "field": "device",
            "value": "smart-fridge",
            "message": "Not a category seen in training; scored like the rare training levels ('other').",
        }
    ]
    import pandas as pd

    frame = pd.DataFrame([example])
    assert body["probability"] == lgbm_model.predict_proba(frame)[0]


def test_categories_numbers_and_booleans_are_read_like_batch_scoring(client, example, lgbm_model):
    import pandas as pd

    example["newsletter"] = "yes"
    yes = client.post("/predict", json=example).json()["probability"]
    example["newsletter"] = True
    assert client.post("/predict", json=example).json()["probability"] == yes
    example["newsletter"] = 1
    assert client.post("/predict", json=example).json()["probability"] == yes
    example["newsletter"] = "yes"
    assert lgbm_model.predict_proba(pd.DataFrame([example]))[0] == yes
    example["signup_date"] = "2024-06-18T23:30:00-02:00"  # next day in UTC
    tz = client.post("/predict", json=example).json()["probability"]
    example["signup_date"] = "2024-06-19"
    assert client.post("/predict", json=example).json()["probability"] == tz


def test_metadata_describes_inputs_policy_metrics_provenance(client, lgbm_model):
    r = client.get("/model/metadata")
    assert r.status_code == 200
    meta = r.json()
    assert meta["model_version"] == lgbm_model.version
    names = [f["name"] for f in meta["input_schema"]["features"]]
    assert names == lgbm_model.features
    assert meta["policy"]["threshold"] == lgbm_model.threshold and meta["policy"]["bands"]
    assert meta["metrics"]["test"]["roc_auc"] > 0.6
    assert meta["provenance"]["data_hash"] and meta["request"]["id_field"] == "customer_id"
    assert set(meta["request"]["example"]) == {"customer_id", *names}


def test_health_needs_no_key_but_everything_else_does(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as anon:
        assert anon.get("/health").json() == {"status": "ok"}
        for method, path in [
            ("get", "/ready"),
            ("get", "/model/metadata"),
            ("get", "/metrics"),
            ("get", "/openapi.json"),
            ("get", "/docs"),
            ("post", "/predict"),
            ("post", "/predict/batch"),
            ("post", "/admin/reload"),
            ("get", "/no/such/route"),  # unknown paths too: a client without a key learns nothing
        ]:
            r = getattr(anon, method)(path)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["detail"][0]["type"] == "missing_api_key"
            assert "WWW-Authenticate" in r.headers


def test_bearer_token_works_for_scrapers(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as anon:
        r = anon.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_keys_file_with_hashes(lgbm_bundle, tmp_path):
    from fastapi.testclient import TestClient

    from propensity.serving.auth import hash_key

    keys = tmp_path / "keys.txt"
    keys.write_text(f"# ops team\n{hash_key('file-key')}\n\n")
    app = create_app(lgbm_bundle, ServeSettings(api_keys_file=keys))
    with TestClient(app) as c:
        assert c.get("/ready", headers={"X-API-Key": "file-key"}).status_code == 200
        assert (
            c.get("/ready", headers={"X-API-Key": hash_key("file-key")}).status_code == 401
        )  # the hash is not a key


def test_ready_reports_the_warmed_model(client, lgbm_model, lgbm_bundle):
    body = client.get("/ready").json()
    assert body["status"] == "ready" and body["model_version"] == lgbm_model.version
    assert body["source"] == str(lgbm_bundle)


def test_metrics_count_routes_scores_decisions_and_failures(client, example):
    client.post("/predict", json=example)
    client.post("/predict", json={**example, "visits_30d": "lots"})
    client.post("/nope")
    text = client.get("/metrics").text
    assert 'propensity_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'propensity_http_requests_total{method="POST",route="/predict",status="422"}' in text
    assert 'route="(unmatched)"' in text and 'route="/nope"' not in text  # clients cannot mint labels
    assert 'propensity_http_request_duration_seconds_bucket{le="0.01",method="POST",route="/predict"}' in text
    assert "propensity_prediction_probability_count" in text
    assert "propensity_decisions_total{band=" in text
    assert (
        'propensity_validation_failures_total{field="visits_30d",route="/predict",type="float_type"}' in text
    )
    assert "propensity_model_info{model_version=" in text


def test_openapi_is_generated_from_the_manifest(client, lgbm_model):
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["PredictRequest"]
    assert record["additionalProperties"] is False
    assert set(record["required"]) == {
        f for f in lgbm_model.features if lgbm_model.manifest.feature(f).required
    }
    device = record["properties"]["device"]
    assert device["anyOf"][0]["enum"] == lgbm_model.manifest.feature("device").categories
    assert "other" in device["description"]
    assert record["properties"]["visits_30d"]["minimum"] == 0
    assert record["examples"][0]["customer_id"] == "customer-0001"
    batch = spec["components"]["schemas"]["PredictBatchRequest"]["properties"]["records"]
    assert batch["maxItems"] == 50 and batch["minItems"] == 1
    predict = spec["paths"]["/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictRequest")
    assert {"200", "400", "401", "413", "422"} <= set(predict["responses"])
    assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert predict["security"] and "security" not in spec["paths"]["/health"]["get"]
    assert "swagger-ui" in client.get("/docs").text


def test_public_docs_and_reject_policy(lgbm_bundle, lgbm_model):
    from fastapi.testclient import TestClient

    app = create_app(lgbm_bundle, ServeSettings(api_keys=KEY, public_docs=True, unknown_categories="reject"))
    with TestClient(app) as anon:
        spec = anon.get("/openapi.json").json()
        device = spec["components"]["schemas"]["PredictRequest"]["properties"]["device"]
        assert all(option.get("enum") for option in device["anyOf"])  # no free-text option when rejecting
        assert anon.post("/predict", json={}).status_code == 401


def test_reload_re_resolves_a_registry_reference(monkeypatch, lgbm_model, other_bundle):
    """models:/name@champion goes through propensity.loading.resolve_model at start and on every reload."""
    from fastapi.testclient import TestClient

    import propensity
    import propensity.loading

    other = propensity.load_model(other_bundle)
    champions = iter([lgbm_model, other])
    calls: list[str] = []

    def fake_resolve(ref):
        calls.append(str(ref))
        return next(champions)

    monkeypatch.setattr(propensity.loading, "resolve_model", fake_resolve)
    app = create_app("models:/shop@champion", ServeSettings())
    with TestClient(app) as c:
        assert c.get("/ready").json()["model_version"] == lgbm_model.version
        r = c.post("/admin/reload")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "changed": True,
            "previous_version": lgbm_model.version,
            "model_version": other.version,
            "source": "models:/shop@champion",
            "seconds": r.json()["seconds"],
            "workers": None,
        }
        assert (
            c.post("/predict", json=app.state.holder.scorer.schema.example).json()["model_version"]
            == other.version
        )
    assert calls == ["models:/shop@champion", "models:/shop@champion"]


def test_reload_failure_keeps_serving(lgbm_bundle, tmp_path, lgbm_model):
    import shutil

    from fastapi.testclient import TestClient

    path = tmp_path / "model"
    shutil.copytree(lgbm_bundle, path)
    with TestClient(create_app(path, ServeSettings())) as c:
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["policy"]["threshold"] = 0.01  # an edit after saving: verification must refuse it
        (path / "manifest.json").write_text(json.dumps(manifest))
        r = c.post("/admin/reload")
        assert r.status_code == 409
        problem = r.json()["detail"][0]
        assert problem["type"] == "reload_failed" and lgbm_model.version in problem["message"]
        assert "edited after the bundle was written" in problem["message"]
        assert c.get("/ready").json()["model_version"] == lgbm_model.version
        assert 'propensity_model_reloads_total{outcome="failed"} 1.0' in c.get("/metrics").text


def test_in_memory_model_cannot_be_reloaded(lgbm_model):
    from fastapi.testclient import TestClient

    from propensity.pipeline import TrainedModel

    memory = TrainedModel(lgbm_model.manifest, lgbm_model.pipeline, path=None)
    with TestClient(create_app(memory, ServeSettings())) as c:
        r = c.post("/admin/reload")
        assert r.status_code == 409 and r.json()["detail"][0]["type"] == "not_reloadable"


def test_serving_never_imports_training(lgbm_bundle):
    code = (
        "import sys; from fastapi.testclient import TestClient; from propensity.serving import create_app; "
        f"app = create_app({str(lgbm_bundle)!r}); c = TestClient(app); c.__enter__(); "
        "assert c.post('/predict/batch', json={'records': [app.state.holder.scorer.schema.example]}).status_code == 200; "
        "bad = sorted(m for m in sys.modules if m.startswith('propensity.training')); print(bad); assert not bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
