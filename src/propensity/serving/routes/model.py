"""``GET /model/metadata``: what the served model expects and how it decides."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from propensity.serving.deps import ScorerDep
from propensity.serving.problems import ErrorResponse

router = APIRouter(prefix="/model", tags=["model"])


@router.get(
    "/metadata",
    summary="The served model's manifest (inputs, policy, metrics, provenance)",
    response_model=dict[str, Any],
    responses={401: {"model": ErrorResponse, "description": "Missing or invalid API key."}},
)
async def metadata(scorer: ScorerDep) -> Response:
    """Input schema with feature descriptions, the request example, the decision policy and bands,
    cross-validated and test metrics, and provenance (data hash, versions, seed)."""
    return Response(scorer.metadata, media_type="application/json")
