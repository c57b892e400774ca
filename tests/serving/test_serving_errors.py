"""Every bad request gets a 4xx with field-level detail (field, value, expected) and never a stack trace."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def problems(r: Any, status: int) -> list[dict[str, Any]]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    for word in ("Traceback", 'File "', "site-packages"):
        assert word not in r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    for p in detail:
        assert set(p) == {"field", "value", "expected", "message", "type"}
        assert p["message"]
    return detail


def only(r: Any, status: int) -> dict[str, Any]:
    detail = problems(r, status)
    assert len(detail) == 1, detail
    return detail[0]


def test_non_json_body(client):
    p = only(
        client.post("/predict", content=b"customer_id=7&age=3", headers={"Content-Type": "application/json"}),
        400,
    )
    assert p["field"] == "body" and p["type"] == "json_invalid"
    assert p["value"] == "customer_id=7&age=3" and p["expected"] == "a JSON object"
    assert p["message"].startswith("The body is not valid JSON")


def test_truncated_json(client):
    assert (
        only(
            client.post("/predict", content=b'{"age": 3', headers={"Content-Type": "application/json"}), 400
        )["type"]
        == "json_invalid"
    )


def test_form_body_is_unsupported_media_type(client, example):
    p = only(client.post("/predict", data={"age": "3"}), 415)
    assert p["field"] == "Content-Type" and p["expected"] == "application/json"


def test_json_array_where_an_object_is_expected(client, example):
    p = only(client.post("/predict", json=[example]), 422)
    assert p["field"] == "body" and p["type"] == "object_type"
    assert p["value"] == "an array of 1 item(s)"
    assert p["expected"].startswith("a JSON object of the model's inputs, like {")
    p = only(client.post("/predict/batch", json=[example]), 422)
    assert p["field"] == "body" and p["expected"] == '{"records": [ {...}, ... ]}'


def test_missing_required_field(client, example):
    del example["cart_adds_30d"]
    p = only(client.post("/predict", json=example), 422)
    assert p == {
        "field": "cart_adds_30d",
        "value": None,
        "expected": p["expected"],
        "message": "A value is required: this input was never missing in training.",
        "type": "missing",
    }
    assert p["expected"].startswith("a finite number >= 0 (training range 0 …")


def test_null_in_a_required_field_is_missing(client, example):
    example["device"] = None
    p = only(client.post("/predict", json=example), 422)
    assert p["field"] == "device" and p["type"] == "missing" and "'mobile'" in p["expected"]


def test_wrong_type(client, example):
    example["visits_30d"] = "lots"
    p = only(client.post("/predict", json=example), 422)
    assert (p["field"], p["value"], p["type"]) == ("visits_30d", "lots", "float_type")
    assert p["expected"].startswith("a finite number >= 0")
    example["visits_30d"] = 3
    example["newsletter"] = "maybe"
    p = only(client.post("/predict", json=example), 422)
    assert (p["field"], p["value"], p["type"]) == ("newsletter", "maybe", "boolean")
    assert p["expected"] == "true or false (also yes/no, 1/0)"
    example["newsletter"] = True
    example["signup_date"] = "last tuesday"
    p = only(client.post("/predict", json=example), 422)
    assert (p["field"], p["type"]) == ("signup_date", "datetime_parsing") and "ISO 8601" in p["expected"]
    example["signup_date"] = {"year": 2024}
    p = only(client.post("/predict", json=example), 422)
    assert p["type"] == "datetime_type" and p["value"] == "an object with 1 key(s): year"


@pytest.mark.parametrize(
    ("token", "shown"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")]
)
def test_nan_and_infinity(client, example, token, shown):
    example["pages_per_visit"] = "@"
    body = json.dumps(example).replace('"@"', token)
    p = only(client.post("/predict", content=body, headers={"Content-Type": "application/json"}), 422)
    assert (p["field"], p["value"], p["type"]) == ("pages_per_visit", shown, "finite_number")
    # In a categorical field NaN is not a category (nor silently "missing").
    example["pages_per_visit"], example["device"] = 4.5, "@"
    body = json.dumps(example).replace('"@"', token)
    p = only(client.post("/predict", content=body, headers={"Content-Type": "application/json"}), 422)
    assert (p["field"], p["type"]) == ("device", "finite_number")


def test_negative_count(client, example):
    example["visits_30d"] = -3
    p = only(client.post("/predict", json=example), 422)
    assert p["field"] == "visits_30d" and p["value"] == -3 and p["type"] == "greater_than_equal"
    assert p["message"] == "Input should be greater than or equal to 0."
    assert p["expected"].startswith("a finite number >= 0")


def test_ten_megabyte_body(client, example):
    big = json.dumps({"records": [example] * 40_000}).encode()
    assert len(big) > 10 * 1024 * 1024
    p = only(client.post("/predict/batch", content=big, headers={"Content-Type": "application/json"}), 413)
    assert p["field"] == "body" and p["type"] == "body_too_large"
    assert "1,048,576 bytes" in p["message"]  # the limit is in the message


def test_large_chunked_body_without_content_length(client, example):
    chunk = json.dumps(example).encode() * 1000

    def stream():
        for _ in range(40):  # ~10 MB, sent chunked: the limit is enforced while reading
            yield chunk

    p = only(
        client.post("/predict/batch", content=stream(), headers={"Content-Type": "application/json"}), 413
    )
    assert p["type"] == "body_too_large"


def test_batch_over_the_limit(client, example):
    p = only(client.post("/predict/batch", json={"records": [example] * 51}), 413)
    assert p == {
        "field": "records",
        "value": 51,
        "expected": "at most 50 records per request",
        "message": "The batch has 51 records; this service accepts at most 50 per request "
        "(PROPENSITY_SERVE_MAX_BATCH_RECORDS). Split it.",
        "type": "too_many_records",
    }


def test_empty_batch(client):
    p = only(client.post("/predict/batch", json={"records": []}), 422)
    assert (p["field"], p["value"], p["type"]) == ("records", [], "too_short")
    assert p["expected"] == "1 to 50 records"


def test_batch_problems_name_the_record(client, example):
    bad = dict(example, visits_30d=-1)
    worse = dict(example, device=None, colour="red")
    detail = problems(client.post("/predict/batch", json={"records": [example, bad, example, worse]}), 422)
    assert [(p["field"], p["type"]) for p in detail] == [
        ("records[1].visits_30d", "greater_than_equal"),
        ("records[3].device", "missing"),
        ("records[3].colour", "unknown_field"),
    ]


def test_batch_without_records_field(client, example):
    detail = problems(client.post("/predict/batch", json={"rows": [example]}), 422)
    assert {(p["field"], p["type"]) for p in detail} == {("records", "missing"), ("rows", "extra_forbidden")}


def test_unknown_fields_are_named(client, example):
    example["last_review"] = "great"
    example["purchased"] = 1
    example["favourite_colour"] = "red"
    detail = problems(client.post("/predict", json=example), 422)
    by_field = {p["field"]: p for p in detail}
    assert set(by_field) == {"last_review", "purchased", "favourite_colour"}
    assert "not a model input (excluded in training: text" in by_field["last_review"]["message"]
    assert "the target the model predicts" in by_field["purchased"]["message"]
    assert by_field["favourite_colour"]["message"] == (
        "'favourite_colour' is not an input of this model; remove it (or check its spelling)."
    )
    assert all(p["type"] == "unknown_field" for p in detail)


def test_unknown_category_when_the_service_rejects_them(lgbm_bundle, example):
    from fastapi.testclient import TestClient

    from propensity.serving import ServeSettings, create_app

    with TestClient(create_app(lgbm_bundle, ServeSettings(unknown_categories="reject"))) as c:
        example["device"] = "smart-fridge"
        p = only(c.post("/predict", json=example), 422)
        assert (p["field"], p["value"], p["type"]) == ("device", "smart-fridge", "unknown_category")
        assert p["expected"] == "one of 'mobile', 'desktop', 'tablet'"
        example["device"] = "desktop"
        assert c.post("/predict", json=example).status_code == 200


def test_missing_api_key(app, example):
    from fastapi.testclient import TestClient

    with TestClient(app) as anon:
        r = anon.post("/predict", json=example)
        p = only(r, 401)
        assert p["field"] == "X-API-Key" and p["value"] is None and p["type"] == "missing_api_key"
        assert r.headers["www-authenticate"].startswith("ApiKey")


def test_invalid_api_key(app, example):
    from fastapi.testclient import TestClient

    with TestClient(app) as anon:
        for headers in ({"X-API-Key": "guess"}, {"Authorization": "Bearer guess"}, {"X-API-Key": ""}):
            p = only(anon.post("/predict", json=example, headers=headers), 401)
            assert p["type"] == "invalid_api_key" and p["value"] is None  # the key sent is never echoed
            assert p["message"] == "The API key is not valid."


def test_unknown_route_and_wrong_method(client):
    p = only(client.get("/predict/everything"), 404)
    assert (p["field"], p["value"], p["type"]) == ("path", "/predict/everything", "not_found")
    p = only(client.get("/predict"), 405)
    assert (p["field"], p["value"], p["type"]) == ("method", "GET", "method_not_allowed")


def test_internal_error_has_no_stack_trace(client, app, example, monkeypatch, caplog):
    scorer = app.state.holder.scorer

    def explode(record):
        raise RuntimeError("secret internals /srv/model")

    monkeypatch.setattr(scorer, "score_one", explode)
    with caplog.at_level("ERROR", logger="propensity.serving"):
        r = client.post("/predict", json=example)
    assert r.status_code == 500
    p = r.json()["detail"][0]
    assert p["type"] == "internal_error" and "secret" not in r.text and "Traceback" not in r.text
    error_id = p["message"].split()[2].rstrip(";")
    assert any(error_id in rec.getMessage() for rec in caplog.records)  # the trace is in the log, by id


def test_huge_integers_in_bad_input_are_reported_safely(client, example):
    example["customer_id"] = 10**30  # beyond 64 bits: still a 422 naming it, never a 500
    p = only(client.post("/predict", json=example), 422)
    assert p["field"] == "customer_id" and p["value"] == str(10**30)
