"""``GET /metrics``: Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter
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
async def metrics(service_metrics: MetricsDep) -> Response:
    """Requests and latency by route and status, predicted probabilities, decisions by band,
    validation failures by field, unseen categories, batch sizes, reloads, and the model served."""
    body, content_type = service_metrics.render()
    return Response(body, media_type=content_type)
