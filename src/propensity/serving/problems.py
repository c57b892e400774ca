"""Every 4xx answer has the same shape: ``{"detail": [{field, value, expected, message, type}, ...]}``.

:class:`ApiError` carries problems from anywhere in the service to one handler; FastAPI's and
Starlette's own errors (unknown route, wrong method) are translated to the same shape, and
anything unexpected becomes a 500 with an error id and no stack trace (the trace goes to the log).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "ApiError",
    "ErrorResponse",
    "Problem",
    "ProblemModel",
    "install_handlers",
    "json_response",
    "safe_value",
]

log = logging.getLogger("propensity.serving")

_MAX_TEXT = 200


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where, what was sent, what was expected."""

    field: str
    value: Any
    expected: str
    message: str
    type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProblemModel(BaseModel):
    field: str = Field(description="Where: a field name, 'records[3].age', 'body', a header or the path.")
    value: Any = Field(description="What was sent (shortened; secrets are never echoed).")
    expected: str = Field(description="What would have been accepted.")
    message: str = Field(description="What is wrong, in a sentence.")
    type: str = Field(description="A stable machine-readable code, e.g. 'missing', 'finite_number'.")


class ErrorResponse(BaseModel):
    detail: list[ProblemModel]


class ApiError(Exception):
    """An answer with a 4xx status and field-level problems."""

    def __init__(
        self, status: int, problems: Sequence[Problem], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(problems[0].message if problems else str(status))
        self.status = status
        self.problems = list(problems)
        self.headers = dict(headers or {})


def safe_value(value: Any) -> Any:
    """A JSON-safe, short rendering of what a client sent (NaN and Infinity as text, long text cut)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else safe_value(str(value))  # JSON encoders stop at 64 bits
    if isinstance(value, float):
        return (
            value
            if math.isfinite(value)
            else ("NaN" if math.isnan(value) else str(value).replace("inf", "Infinity"))
        )
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 3] + "..."
    if isinstance(value, Mapping):
        keys = list(value)[:10]
        return f"an object with {len(value)} key(s): {', '.join(map(str, keys))}"[:_MAX_TEXT]
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)} item(s)"
    return safe_value(str(value))


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson (NaN never appears: values are checked before)."""
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type="application/json",
    )


def problem_response(
    status: int, problems: Sequence[Problem], headers: Mapping[str, str] | None = None
) -> Response:
    return json_response({"detail": [p.to_dict() for p in problems]}, status, headers)


_STATUS_TEXT = {
    404: ("path", "one of the service's routes (see /docs)", "not_found"),
    405: ("method", "a method this route supports (see /docs)", "method_not_allowed"),
}


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the problem shape (and hide stack traces)."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return problem_response(exc.status, exc.problems, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        field, expected, kind = _STATUS_TEXT.get(
            exc.status_code, ("request", "a valid request", "http_error")
        )
        value: Any = request.url.path if field == "path" else request.method if field == "method" else None
        message = exc.detail if isinstance(exc.detail, str) else "The request cannot be served."
        headers = dict(exc.headers or {})
        return problem_response(exc.status_code, [Problem(field, value, expected, message, kind)], headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            Problem(
                ".".join(str(part) for part in err.get("loc", ()) if part not in ("query", "header", "path")),
                safe_value(err.get("input")),
                "see the parameter's description in /docs",
                str(err.get("msg", "invalid value")),
                str(err.get("type", "invalid")),
            )
            for err in exc.errors()
        ]
        return problem_response(422, problems)

    async def unexpected(request: Request, exc: Exception) -> Response:
        error_id = secrets.token_hex(6)
        log.error("error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return json_response(
            {
                "detail": [
                    {
                        "field": "server",
                        "value": None,
                        "expected": "",
                        "message": f"Internal error {error_id}; the server log has the details under this id.",
                        "type": "internal_error",
                    }
                ]
            },
            500,
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
