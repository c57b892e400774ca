"""``GET /health`` (liveness, no key: see ``OPEN_PATHS``) and ``GET /ready`` (model loaded and warmed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from propensity.serving.deps import HolderDep
from propensity.serving.problems import ErrorResponse, json_response
from propensity.serving.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])
protected = APIRouter(tags=["health"])

_OK = b'{"status":"ok"}'


@router.get("/health", summary="Liveness", response_model=HealthResponse)
async def health() -> Response:
    """200 while the process serves HTTP. Needs no API key (for load balancers)."""
    return Response(_OK, media_type="application/json")


@protected.get(
    "/ready",
    summary="Readiness",
    response_model=ReadyResponse,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
        503: {"model": ErrorResponse, "description": "The model is not loaded and warmed yet."},
    },
)
async def ready(holder: HolderDep) -> Response:
    """200 once the model is loaded and has scored its warm-up records; 503 before."""
    scorer = holder.scorer
    if not holder.ready:
        return json_response(
            {
                "detail": [
                    {
                        "field": "model",
                        "value": None,
                        "expected": "a warmed model",
                        "message": "The model is still loading.",
                        "type": "not_ready",
                    }
                ]
            },
            503,
        )
    return json_response(
        {
            "status": "ready",
            "model_version": scorer.version,
            "winner": scorer.manifest.winner,
            "source": scorer.source,
            "loaded_at": scorer.loaded_at,
        }
    )
