"""FastAPI dependencies: the current scorer, the metrics, the settings and the API-key check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from propensity.serving.auth import KeyRing
from propensity.serving.metrics import ServiceMetrics
from propensity.serving.problems import ApiError, Problem
from propensity.serving.scorer import ModelHolder, Scorer
from propensity.serving.settings import ServeSettings

__all__ = [
    "SECURITY_SCHEMES",
    "HolderDep",
    "MetricsDep",
    "ScorerDep",
    "SettingsDep",
    "require_api_key",
]

API_KEY_HEADER = "X-API-Key"
_KEY = API_KEY_HEADER.lower().encode()
_AUTHORIZATION = b"authorization"
#: OpenAPI security schemes of the key check (added to the schema by the app).
SECURITY_SCHEMES = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "An API key of this service.",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same key as a bearer token (e.g. for Prometheus).",
    },
}


def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


async def get_scorer(request: Request) -> Scorer:
    """The scorer of this request: taken once, so a reload mid-request cannot mix two models."""
    scorer: Scorer = request.app.state.holder.scorer
    return scorer


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


async def get_settings(request: Request) -> ServeSettings:
    settings: ServeSettings = request.app.state.settings
    return settings


def _presented_key(request: Request) -> str | None:
    # The raw header list, not request.headers: this runs on every request and must stay cheap.
    bearer = None
    for name, value in request.scope["headers"]:
        if name == _KEY:
            return value.decode("latin-1")
        if name == _AUTHORIZATION and value[:7].lower() == b"bearer ":
            bearer = value[7:].strip().decode("latin-1")
    return bearer


async def require_api_key(request: Request) -> None:
    """401 unless a configured key arrives in ``X-API-Key`` or ``Authorization: Bearer`` (no keys: open).

    Keys are compared as SHA-256 digests in constant time (:meth:`KeyRing.check`).
    """
    keys: KeyRing = request.app.state.keys
    if not keys.enabled:
        return
    presented = _presented_key(request)
    if keys.check(presented):
        return
    missing = presented is None
    raise ApiError(
        401,
        [
            Problem(
                API_KEY_HEADER,
                None,  # never echo a secret
                f"a valid API key in the {API_KEY_HEADER} header (or Authorization: Bearer <key>)",
                "No API key was sent." if missing else "The API key is not valid.",
                "missing_api_key" if missing else "invalid_api_key",
            )
        ],
        headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}", Bearer'},
    )


HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
