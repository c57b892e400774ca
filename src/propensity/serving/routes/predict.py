"""``POST /predict`` and ``POST /predict/batch``."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from propensity.serving.deps import SettingsDep
from propensity.serving.metrics import ServiceMetrics
from propensity.serving.problems import ApiError, ErrorResponse, Problem, json_response
from propensity.serving.schemas import BatchResponse, PredictResponse
from propensity.serving.scorer import Scorer

router = APIRouter(prefix="/predict", tags=["predict"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
    413: {"model": ErrorResponse, "description": "Body or batch larger than the service's limit."},
    415: {"model": ErrorResponse, "description": "The body is not sent as application/json."},
    422: {
        "model": ErrorResponse,
        "description": "A field is missing, unknown, of the wrong type or out of range.",
    },
}


def _body_schema(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


async def _json_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type")
    if content_type is not None and "json" not in content_type.lower():
        raise ApiError(
            415,
            [
                Problem(
                    "Content-Type",
                    content_type[:100],
                    "application/json",
                    "Send the body as JSON with 'Content-Type: application/json'.",
                    "unsupported_media_type",
                )
            ],
        )
    return await request.body()


def _count_failures(metrics: ServiceMetrics, route: str, exc: ApiError, scorer: Scorer) -> None:
    known = scorer.schema.attr_of
    for p in exc.problems:
        field = p.field.split(".", 1)[1] if p.field.startswith("records[") and "." in p.field else p.field
        label = field if field in known or field in ("body", "records", "Content-Type") else "(other)"
        metrics.validation_failures.labels(route, label, p.type).inc()


@router.post(
    "",
    summary="Score one customer",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra=_body_schema("PredictRequest"),
)
async def predict(request: Request) -> Response:
    """Probability, decision (contact or not) and band for one record, validated against the model's inputs."""
    # The hot path: scorer and metrics come straight from app.state rather than as dependencies
    # (each FastAPI dependency costs ~10-25 µs per request, measured; this route serves thousands/s).
    scorer: Scorer = request.app.state.holder.scorer
    metrics: ServiceMetrics = request.app.state.metrics
    try:
        record = scorer.parse_one(await _json_body(request))
    except ApiError as exc:
        _count_failures(metrics, "/predict", exc, scorer)
        raise
    result = scorer.score_one(record)
    metrics.observe_prediction(result["probability"], result["decision"], result["band"])
    for warning in result["warnings"]:
        metrics.unknown_categories.labels(warning["field"]).inc()
    return json_response(result)


@router.post(
    "/batch",
    summary="Score many customers",
    response_model=BatchResponse,
    responses=ERRORS,
    openapi_extra=_body_schema("PredictBatchRequest"),
)
async def predict_batch(request: Request, settings: SettingsDep) -> Response:
    """Results in request order, with counts by decision and band. All records must be valid (else 422 lists them)."""
    scorer: Scorer = request.app.state.holder.scorer  # taken once: a reload cannot mix models in one answer
    metrics: ServiceMetrics = request.app.state.metrics
    body = await _json_body(request)
    start = time.perf_counter()

    def work() -> dict[str, Any]:
        return scorer.score_many(scorer.parse_batch(body))

    try:
        if len(body) >= settings.batch_offload_bytes:  # big batches off the event loop
            result = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        else:
            result = work()
    except ApiError as exc:
        _count_failures(metrics, "/predict/batch", exc, scorer)
        raise
    result["server_ms"] = round((time.perf_counter() - start) * 1000, 3)
    counts = result["counts"]
    metrics.batch_records.observe(counts["records"])
    for item in result["results"]:
        metrics.observe_prediction(item["probability"], item["decision"], item["band"])
    for field, n in counts["unknown_categories"].items():
        metrics.unknown_categories.labels(field).inc(n)
    return json_response(result)
