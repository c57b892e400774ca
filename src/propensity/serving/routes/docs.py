"""``GET /openapi.json`` and ``GET /docs``, behind the API key unless ``public_docs`` is set (see the middleware)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from propensity.serving.problems import json_response

#: Paths of this router; open without a key when the service's docs are public.
DOC_PATHS = frozenset({"/openapi.json", "/docs"})


def make_router() -> APIRouter:
    router = APIRouter(tags=["docs"], include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi(request: Request) -> Response:
        schema: dict[str, Any] = request.app.openapi()
        return json_response(schema)

    @router.get("/docs")
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=request.app.title + " — docs",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    return router
