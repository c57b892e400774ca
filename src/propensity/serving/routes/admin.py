"""``POST /admin/reload``: load the model again from its source and swap it in atomically."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from propensity.serving.deps import HolderDep
from propensity.serving.problems import ErrorResponse, json_response
from propensity.serving.schemas import ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/reload",
    summary="Reload the model",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
        409: {
            "model": ErrorResponse,
            "description": "Nothing to reload from, or the new model failed to load.",
        },
    },
)
async def reload(holder: HolderDep) -> Response:
    """Reads the bundle folder again (or re-resolves ``models:/name@alias``), verifies and warms the model,
    then swaps it in; requests in flight finish on the model they started with. The same as SIGHUP."""
    return json_response(await holder.reload())
