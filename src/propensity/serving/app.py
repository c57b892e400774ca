"""``create_app``: the scoring service of one model bundle.

The routes, request schema and docs are generated from the model's manifest. Hot reload
(SIGHUP or ``POST /admin/reload``) swaps in a complete, warmed model atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route

from propensity import __version__
from propensity.pipeline import TrainedModel
from propensity.serving.auth import SECURITY_SCHEMES, KeyRing
from propensity.serving.metrics import ServiceMetrics
from propensity.serving.middleware import ServiceMiddleware
from propensity.serving.problems import install_handlers
from propensity.serving.routes import admin, customers, docs, explain, health, model, predict
from propensity.serving.routes import metrics as metrics_routes
from propensity.serving.scorer import ModelHolder
from propensity.serving.settings import ServeSettings

__all__ = ["app_from_environment", "create_app"]

log = logging.getLogger("propensity.serving")

MODEL_ENV = "PROPENSITY_SERVE_MODEL"

_DESCRIPTION = """\
Scores customers with a propensity model: the probability of **{positive}** for `{target}`, the decision
(contact or not, threshold {threshold:.4f}: {rationale}) and a score band.

Request fields are generated from the model's manifest: unknown fields are rejected, categories
not seen in training are {unknown}, and every error answer lists the field, the value sent and
what was expected. {auth}
"""


#: Paths that never need an API key: liveness, for load balancers.
OPEN_PATHS = frozenset({"/health"})


def create_app(model_or_ref: str | Path | TrainedModel, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving one model.

    Parameters
    ----------
    model_or_ref
        A bundle folder, a registry reference (``models:/name@champion``, ``models:/name/3``)
        or a loaded :class:`~propensity.pipeline.TrainedModel`. Loaded through
        :func:`propensity.resolve_model` (which verifies bundles); nothing a request sends is
        ever loaded.
    settings
        Service settings; read from the environment (``PROPENSITY_SERVE_*``,
        ``PROPENSITY_API_KEYS``) when ``None``.

    Returns
    -------
    FastAPI
        Routes: ``POST /predict``, ``POST /predict/batch``, ``GET /health``, ``GET /ready``,
        ``POST /explain``, ``POST /explain/batch``, ``GET /model/metadata``, ``GET /metrics``,
        ``POST /admin/reload``, ``GET /docs``,
        ``GET /openapi.json``.

    Raises
    ------
    BundleError, ModelNotFoundError, ParameterError
        When the model cannot be loaded or the settings are unusable (e.g. a missing keys file).

    Example
    -------
    >>> app = create_app("models/shop")  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    settings = settings or ServeSettings()
    keys = KeyRing.from_settings(settings)
    metrics = ServiceMetrics()
    holder = ModelHolder(model_or_ref, settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.warm_up()
        hup = _install_sighup(holder) if settings.supervisor_pid is None else None
        log.info("serving model %s from %s", holder.scorer.version, holder.scorer.source)
        try:
            yield
        finally:
            if hup is not None:
                hup.remove_signal_handler(signal.SIGHUP)
            if metrics.multiprocess_dir:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())

    manifest = holder.scorer.manifest
    app = FastAPI(
        title=f"propensity: {manifest.task.target} = {manifest.task.positive}",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.settings = settings
    app.state.keys = keys
    app.state.metrics = metrics
    app.state.customers = _customer_lookup(holder, settings)
    install_handlers(app)
    routers = [
        predict.router,
        customers.router,
        explain.router,
        model.router,
        health.router,
        health.protected,
        admin.router,
        metrics_routes.router,
        docs.make_router(),
    ]
    for router in routers:
        app.include_router(router)
    # The hot path: POST /predict is answered by a plain Starlette route placed in front of its
    # documented FastAPI twin (same endpoint function; the twin still produces the OpenAPI
    # operation). FastAPI's per-route machinery (dependency solving, endpoint wrapping) cost
    # ~55 µs of ~200 µs per request, measured in-process; the endpoint takes only the request.
    app.router.routes.insert(0, Route("/predict", predict.predict, methods=["POST"]))

    def openapi() -> dict[str, Any]:
        scorer = holder.scorer
        cached = app.openapi_schema
        if cached is not None and cached.get("x-model-version") == scorer.version:
            return cached
        schema = _openapi(app, holder, keys.enabled)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
        )
    paths = {route.path for router in routers for route in router.routes if hasattr(route, "path")}
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        keys=keys,
        open_paths=OPEN_PATHS | (docs.DOC_PATHS if settings.public_docs else frozenset()),
        routes=paths,
        max_body_bytes=settings.max_body_bytes,
        timeout=settings.request_timeout,
        log_access=settings.access_log,
    )
    return app


def _customer_lookup(holder: ModelHolder, settings: ServeSettings) -> Any:
    """The source of ``/customers`` (a live store, or a log scored at an as-of), ``None`` without one."""
    from propensity.workflows.live import CustomerLookup

    if settings.store is not None:
        return CustomerLookup(store=settings.store)
    if settings.events is not None:
        return CustomerLookup(
            model=holder.scorer.model, events=settings.events, as_of=settings.as_of, clv=settings.clv
        )
    if settings.clv is not None:
        from propensity.errors import ParameterError

        raise ParameterError(
            "--clv needs --events: the log whose customers' lifetime values /customers returns."
        )
    return None


def _install_sighup(holder: ModelHolder) -> asyncio.AbstractEventLoop | None:
    """Reload on SIGHUP (only possible in the main thread of a Unix process)."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()  # keep references until done (asyncio holds weak ones)

    def on_hup() -> None:
        async def run() -> None:
            try:
                result = await holder.reload()
                log.info("SIGHUP reload: %s", result)
            except Exception as exc:  # logged; the service keeps the current model
                log.error("SIGHUP reload failed: %s", exc)

        task = loop.create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        return None  # not the main thread (e.g. a test client) or no SIGHUP on this platform
    return loop


def _openapi(app: FastAPI, holder: ModelHolder, secured: bool) -> dict[str, Any]:
    scorer = holder.scorer
    m = scorer.manifest
    auth = (
        "Every route except `/health` needs an API key in `X-API-Key` (or `Authorization: Bearer`)."
        if secured
        else "This service runs without API keys."
    )
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=_DESCRIPTION.format(
            positive=m.task.positive,
            target=m.task.target,
            threshold=m.policy.threshold,
            rationale=m.policy.rationale,
            unknown="rejected"
            if scorer.schema.reject_unknown
            else "scored like rare training levels ('other')",
            auth=auth,
        ),
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for request_model in (scorer.schema.Record, scorer.schema.Batch):
        js = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(js.pop("$defs", {}))
        components[request_model.__name__] = js
    if secured:
        schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    for route, path in schema.get("paths", {}).items():
        for op in path.values():
            if not secured:
                op.get("responses", {}).pop("401", None)
            elif route != "/health":
                op["security"] = [{name: []} for name in SECURITY_SCHEMES]
    schema["x-model-version"] = scorer.version
    return schema


def app_from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory`` with several workers: the model comes from ``PROPENSITY_SERVE_MODEL``."""
    ref = os.environ.get(MODEL_ENV)
    if not ref:
        raise RuntimeError(f"{MODEL_ENV} is not set; start the service with `propensity serve MODEL`.")
    return create_app(ref)
