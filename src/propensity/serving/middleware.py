"""One pure-ASGI middleware for what every request needs: API key, body limit, time limit, metrics, access log.

A single layer (not Starlette's ``BaseHTTPMiddleware``, which costs a task and a stream per
request) keeps ``/predict`` within a few microseconds of a bare endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from propensity.serving.auth import KeyRing, presented_key, unauthorized
from propensity.serving.metrics import ServiceMetrics
from propensity.serving.problems import ApiError, Problem

__all__ = ["BodyTooLarge", "ServiceMiddleware"]

access_log = logging.getLogger("propensity.serving.access")


class BodyTooLarge(ApiError):
    def __init__(self, limit: int, seen: int | None) -> None:
        super().__init__(
            413,
            [
                Problem(
                    "body",
                    f"{seen} bytes" if seen is not None else f"more than {limit} bytes",
                    f"a body of at most {limit} bytes",
                    f"The request body is larger than this service's limit of {limit:,} bytes "
                    f"(PROPENSITY_SERVE_MAX_BODY_BYTES); split the batch.",
                    "body_too_large",
                )
            ],
        )


class ServiceMiddleware:
    """Limits, metrics and access logging around the whole app.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    metrics
        Where request counts and latencies go.
    keys, open_paths
        Every path except ``open_paths`` needs a key of ``keys`` (when it holds any); a wrong or
        missing key is a 401 before the app sees the request.
    routes
        Paths that are routes (anything else is counted as ``(unmatched)``, so clients cannot
        create unbounded label values).
    max_body_bytes, timeout
        Body limit (413) and time limit per request (408 while the body is still arriving, 503 after).
    log_access
        Write one JSON line per request to the ``propensity.serving.access`` logger.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        keys: KeyRing,
        open_paths: Collection[str],
        routes: Collection[str],
        max_body_bytes: int,
        timeout: float,
        log_access: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.keys = keys
        self.open_paths = frozenset(open_paths)
        self.routes = frozenset(routes)
        # routes with a path parameter, e.g. /customers/{customer_id}: counted under their template
        self.templates = [(t.split("{", 1)[0], t) for t in sorted(self.routes) if "{" in t]
        self.max_body = max_body_bytes
        self.timeout = timeout
        self.log_access = log_access

    def _template(self, path: str) -> str:
        for prefix, template in self.templates:
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                return template
        return "(unmatched)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        route = path if path in self.routes else self._template(path)
        state = {"status": 0, "body_done": False}
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        limit = self.max_body
        try:
            if self.keys.enabled and path not in self.open_paths:
                key = presented_key(scope["headers"])
                if not self.keys.check(key):
                    raise unauthorized(key)
            if declared is not None:
                try:
                    size = int(declared)
                except ValueError:
                    size = -1
                if size > limit:
                    raise BodyTooLarge(limit, size)
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge(limit, None)
                    if not message.get("more_body", False):
                        state["body_done"] = True
                return message

            async def tracking_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    state["status"] = message["status"]
                await send(message)

            async with asyncio.timeout(self.timeout):
                await self.app(scope, limited_receive, tracking_send)
        except ApiError as exc:  # refused before the app: 401 (key) or 413 (body)
            if not state["status"]:
                state["status"] = exc.status
                await _send_problem(send, exc.status, exc.problems[0], exc.headers)
        except TimeoutError:
            if not state["status"]:
                status = 503 if state["body_done"] or method in ("GET", "HEAD") else 408
                state["status"] = status
                problem = Problem(
                    "request",
                    None,
                    f"a request completed within {self.timeout:g} s",
                    "The request body did not arrive in time."
                    if status == 408
                    else f"Scoring took longer than this service's {self.timeout:g} s limit; send a smaller batch.",
                    "timeout",
                )
                await _send_problem(send, status, problem)
        finally:
            seconds = time.perf_counter() - start
            status = state["status"] or 500
            self.metrics.observe_request(route, method, status, seconds)
            if self.log_access:
                _log(scope, status, seconds)


async def _send_problem(
    send: Send, status: int, problem: Problem, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps({"detail": [problem.to_dict()]})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status != 401:  # a refused body may still be streaming: close; a 401 keeps the connection
        raw.append((b"connection", b"close"))
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _log(scope: Scope, status: int, seconds: float) -> None:
    client = scope.get("client")
    headers: dict[bytes, bytes] = dict(scope["headers"])
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1") or None,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client": client[0] if client else None,
        "user_agent": headers.get(b"user-agent", b"").decode("latin-1") or None,
        "request_id": headers.get(b"x-request-id", b"").decode("latin-1") or None,
    }
    access_log.info(orjson.dumps(record).decode())
