"""``GET /customers/{id}`` and ``POST /customers/batch``: a customer's current score, by id.

Answered from the app's :class:`~propensity.workflows.live.CustomerLookup` — the live store that
``propensity stream`` keeps current, or an event log scored at an as-of when no stream runs.
Same API keys and limits as the other routes.
"""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from propensity.serving.deps import SettingsDep
from propensity.serving.problems import ApiError, ErrorResponse, Problem, json_response, safe_value

router = APIRouter(prefix="/customers", tags=["customers"])

#: Longest customer id accepted (longer: 422).
MAX_ID_LENGTH = 200


class LifetimeValue(BaseModel):
    """The customer's lifetime value at the same as-of (a service started with --clv)."""

    p_alive: float = Field(ge=0, le=1, description="BG/NBD probability that the customer is still active.")
    expected_purchases: float = Field(ge=0, description="Expected purchases over the CLV bundle's horizon.")
    expected_spend: float | None = Field(
        default=None, description="Expected spend per purchase (Gamma-Gamma)."
    )
    clv: float | None = Field(default=None, description="Lifetime value over the horizon, discounted.")


class CustomerRecord(BaseModel):
    """A customer's current score, as last computed from their events."""

    customer_id: str
    probability: float = Field(ge=0, le=1, description="Calibrated probability of the positive outcome.")
    decision: bool = Field(
        description="Contact this customer: probability >= threshold (the model's policy)."
    )
    band: str = Field(description="Score band from the model's policy.")
    eligible: bool = Field(description="Active enough to be targeted, as in training.")
    as_of: str = Field(description="The instant the features were computed at (events before it count).")
    model_version: str
    scored_at: str
    reasons: list[str] = Field(description="The strongest reasons, worded from the feature registry.")
    features: dict[str, Any] = Field(description="The model's features at as_of.")
    lifetime_value: LifetimeValue | None = Field(
        default=None,
        description="With --clv: P(alive), expected purchases and spend, and CLV at as_of; null for a customer "
        "without a purchase, absent without --clv.",
    )


class CustomersRequest(BaseModel):
    customer_ids: list[str] = Field(description="Customer ids to look up.", min_length=1)


class CustomersResponse(BaseModel):
    customers: list[CustomerRecord]
    unknown: list[str] = Field(description="Ids with no events (no score).")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
    404: {"model": ErrorResponse, "description": "Unknown customer, or the service has no customer source."},
    413: {"model": ErrorResponse, "description": "More ids than the service's batch limit."},
    422: {"model": ErrorResponse, "description": "An id is empty, too long or not text."},
}


def _lookup(request: Request) -> Any:
    lookup = getattr(request.app.state, "customers", None)
    if lookup is None:
        raise ApiError(
            404,
            [
                Problem(
                    "path",
                    request.url.path,
                    "a service started with a live store or an event log",
                    "This service has no customer source: start it with `propensity serve MODEL --store live.db` "
                    "(kept current by `propensity stream`) or `--events LOG [--as-of T]`.",
                    "no_customer_source",
                )
            ],
        )
    return lookup


def _check_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ApiError(
            422,
            [
                Problem(
                    where,
                    safe_value(value),
                    f"a non-empty text of at most {MAX_ID_LENGTH} characters",
                    "A customer id must be a non-empty text of at most 200 characters.",
                    "customer_id",
                )
            ],
        )
    return value


@router.get(
    "/{customer_id}", summary="One customer's current score", response_model=CustomerRecord, responses=ERRORS
)
async def customer(customer_id: str, request: Request) -> Response:
    """Probability, decision, band, reasons and features of one customer, as of their last event."""
    lookup = _lookup(request)
    _check_id(customer_id, "customer_id")
    found = await anyio.to_thread.run_sync(lookup.get, [customer_id])
    if not found:
        raise ApiError(
            404,
            [
                Problem(
                    "customer_id",
                    safe_value(customer_id),
                    "a customer with at least one valid event",
                    f"No score for customer '{customer_id[:100]}': no valid event of theirs has been seen.",
                    "unknown_customer",
                )
            ],
        )
    return json_response(found[0])


@router.post(
    "/batch", summary="Several customers' current scores", response_model=CustomersResponse, responses=ERRORS
)
async def customers(request: Request, settings: SettingsDep) -> Response:
    """Body ``{"customer_ids": [...]}``: the known customers' records and the unknown ids."""
    lookup = _lookup(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400,
            [Problem("body", None, "a JSON object", f"The body is not valid JSON: {exc}.", "json_invalid")],
        ) from None
    ids = body.get("customer_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids:
        raise ApiError(
            422,
            [
                Problem(
                    "customer_ids",
                    safe_value(ids),
                    'a non-empty list of ids, e.g. {"customer_ids": ["C1", "C2"]}',
                    "Send the ids to look up as a non-empty list under 'customer_ids'.",
                    "list_type",
                )
            ],
        )
    if len(ids) > settings.max_batch_records:
        raise ApiError(
            413,
            [
                Problem(
                    "customer_ids",
                    len(ids),
                    f"at most {settings.max_batch_records} ids",
                    f"{len(ids)} ids is more than this service's limit of {settings.max_batch_records} per call.",
                    "too_many",
                )
            ],
        )
    checked = [_check_id(v, f"customer_ids[{i}]") for i, v in enumerate(ids)]
    found = await anyio.to_thread.run_sync(lookup.get, checked)
    seen = {r["customer_id"] for r in found}
    return json_response(
        {"customers": found, "unknown": [c for c in dict.fromkeys(checked) if c not in seen]}
    )
