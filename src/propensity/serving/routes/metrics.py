"""``GET /metrics``: Prometheus exposition."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from propensity.serving.deps import MetricsDep
from propensity.serving.problems import ErrorResponse

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format.",
        },
        401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
    },
)
async def metrics(request: Request, service_metrics: MetricsDep) -> Response:
    """Requests and latency by route and status, predicted probabilities, decisions by band,
    validation failures by field, unseen categories, batch sizes, reloads, the model served, and
    the drift of the last scored records (per feature and for the score) against the training profile."""
    live = request.app.state.holder.scorer.live
    if live is not None:
        service_metrics.set_drift(await anyio.to_thread.run_sync(live.snapshot))
    body, content_type = service_metrics.render()
    return Response(body, media_type=content_type)
