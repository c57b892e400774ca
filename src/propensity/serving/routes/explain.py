"""``POST /explain`` and ``POST /explain/batch``: scores with their strongest reasons.

The reasons come from :func:`propensity.explain.reason_codes_for`, the function behind
``propensity score --reasons``, so the API and batch scoring explain in the same words.
Explaining costs more than scoring, so it runs in a worker thread and batches are capped by
``PROPENSITY_SERVE_MAX_EXPLAIN_RECORDS`` (default 100).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from propensity.explain import SPACE
from propensity.serving.metrics import ServiceMetrics
from propensity.serving.problems import ApiError, json_response
from propensity.serving.routes.predict import ERRORS, _body_schema, _count_failures, _json_body
from propensity.serving.schemas import ExplainBatchResponse, ExplainResponse
from propensity.serving.scorer import Scorer
from propensity.serving.settings import ServeSettings

router = APIRouter(prefix="/explain", tags=["explain"])

K = Annotated[int, Query(ge=1, le=20, description="How many reasons per record (strongest first).")]


def _observe(metrics: ServiceMetrics, items: list[dict[str, Any]]) -> None:
    for item in items:
        metrics.observe_prediction(item["probability"], item["decision"], item["band"])


@router.post(
    "",
    summary="Score one customer and say why",
    response_model=ExplainResponse,
    responses=ERRORS,
    openapi_extra=_body_schema("PredictRequest"),
)
async def explain_one(request: Request, k: K = 3) -> Response:
    """The /predict answer plus the ``k`` strongest reasons (contributions in log-odds before calibration)."""
    scorer: Scorer = request.app.state.holder.scorer
    metrics: ServiceMetrics = request.app.state.metrics
    try:
        record = scorer.parse_one(await _json_body(request))
    except ApiError as exc:
        _count_failures(metrics, "/explain", exc, scorer)
        raise

    def work() -> dict[str, Any]:
        result = scorer.score_one(record)
        result["space"] = SPACE
        result["reasons"] = scorer.reasons([record], k)[0]
        return result

    result = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    _observe(metrics, [result])
    return json_response(result)


@router.post(
    "/batch",
    summary="Score a few customers and say why",
    response_model=ExplainBatchResponse,
    responses=ERRORS,
    openapi_extra=_body_schema("PredictBatchRequest"),
)
async def explain_batch(request: Request, k: K = 3) -> Response:
    """Up to ``max_explain_records`` records in request order, each with its ``k`` strongest reasons."""
    scorer: Scorer = request.app.state.holder.scorer
    metrics: ServiceMetrics = request.app.state.metrics
    settings: ServeSettings = request.app.state.settings
    body = await _json_body(request)
    start = time.perf_counter()

    def work() -> dict[str, Any]:
        records = scorer.parse_batch(body, settings.max_explain_records, "MAX_EXPLAIN_RECORDS")
        scored = scorer.score_many(records)
        for item, reasons in zip(scored["results"], scorer.reasons(records, k), strict=True):
            item["reasons"] = reasons
        return {
            "model_version": scored["model_version"],
            "threshold": scored["threshold"],
            "space": SPACE,
            "results": scored["results"],
        }

    try:
        result = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except ApiError as exc:
        _count_failures(metrics, "/explain/batch", exc, scorer)
        raise
    result["server_ms"] = round((time.perf_counter() - start) * 1000, 3)
    _observe(metrics, result["results"])
    return json_response(result)
