"""Request models generated from a model's manifest, and the service's response models.

:class:`RequestSchema` turns ``manifest.input_schema`` into a strict pydantic model: one field
per feature with its type, the non-negativity the training data justifies, optional (nullable)
fields for features the model can impute, the categories it knows (and the unknown-category
policy), the id echoed back, and no other fields. Its validation errors become
:class:`~propensity.serving.problems.Problem` lists naming field, value and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from propensity.manifest import FeatureSpec, Manifest
from propensity.schema import BOOLEAN_TEXTS, boolean_value, category_value, datetime_value
from propensity.serving.problems import Problem, safe_value

__all__ = [
    "BatchItem",
    "BatchResponse",
    "HealthResponse",
    "PredictResponse",
    "ReadyResponse",
    "ReloadResponse",
    "RequestSchema",
]

_INT64 = 2**63 - 1
_BOOL_TEXTS = sorted(BOOLEAN_TEXTS)


# --------------------------------------------------------------------------- responses


class PredictionWarning(BaseModel):
    field: str
    value: Any
    message: str


class PredictResponse(BaseModel):
    """One scored record."""

    id: str | int | None = Field(description="The record's id as sent (null when none was sent).")
    probability: float = Field(ge=0, le=1, description="Calibrated probability of the positive outcome.")
    decision: bool = Field(
        description="Contact this customer: probability >= threshold (the model's policy)."
    )
    band: Literal["high", "medium", "low"] = Field(description="Score band from the model's policy.")
    threshold: float = Field(description="The decision threshold the model was trained with.")
    model_version: str = Field(description="Version (content hash) of the model that scored the record.")
    warnings: list[PredictionWarning] = Field(
        description="What was scored under a policy rather than as sent (e.g. an unseen category)."
    )


class BatchItem(BaseModel):
    id: str | int | None
    probability: float = Field(ge=0, le=1)
    decision: bool
    band: Literal["high", "medium", "low"]
    warnings: list[PredictionWarning]


class BatchCounts(BaseModel):
    records: int = Field(description="Records scored.")
    contact: int = Field(description="Records whose decision is to contact.")
    bands: dict[str, int] = Field(description="Records per score band.")
    unknown_categories: dict[str, int] = Field(
        description="Per categorical field, records with an unseen level."
    )


class BatchResponse(BaseModel):
    """Scored records in request order, with counts and the time the server spent."""

    model_version: str
    threshold: float
    counts: BatchCounts
    server_ms: float = Field(
        description="Milliseconds from the body read to the scores (validation included)."
    )
    results: list[BatchItem]


class ReasonItem(BaseModel):
    feature: str = Field(description="The input feature.")
    value: float | str | None = Field(description="The record's value of it (dates as ISO 8601).")
    contribution: float = Field(
        description="Contribution to the log-odds before calibration (+ raises the score)."
    )
    text: str = Field(description="The reason in words, e.g. 'last add to cart 2 days ago (+0.41)'.")


class ExplainResponse(PredictResponse):
    """One scored record with the strongest reasons for its score."""

    space: str = Field(description="What the contributions are measured in.")
    reasons: list[ReasonItem] = Field(description="Strongest first; contributions below 0.005 are left out.")


class ExplainBatchItem(BatchItem):
    reasons: list[ReasonItem]


class ExplainBatchResponse(BaseModel):
    model_version: str
    threshold: float
    space: str
    server_ms: float
    results: list[ExplainBatchItem]


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    model_version: str
    winner: str
    source: str
    loaded_at: str


class ReloadResponse(BaseModel):
    changed: bool = Field(description="Whether a different model version is now served.")
    previous_version: str
    model_version: str
    source: str
    seconds: float
    workers: str | None = Field(
        default=None, description="With several workers: that each worker is being replaced to load it."
    )


# --------------------------------------------------------------------------- requests


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _custom(
            "finite_number", "NaN and Infinity are not values; send null (or leave the field out) for missing"
        )


def _boolean_validator(required: bool) -> Callable[[Any], float | None]:
    def validate(value: Any) -> float | None:
        if value is None:
            if required:
                raise _custom("missing", "A value is required (this input was never missing in training)")
            return None
        _reject_non_finite(value)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int) and value in (0, 1):
            return float(value)
        if isinstance(value, str) and value.strip().lower() in BOOLEAN_TEXTS:
            return boolean_value(value)
        raise _custom("boolean", "Input should be true/false (or yes/no, 1/0)")

    return validate


def _category_validator(
    required: bool, levels: frozenset[str], reject_unknown: bool
) -> Callable[[Any], str | None]:
    def validate(value: Any) -> str | None:
        if isinstance(value, (dict, list)):
            raise _custom("category_type", "Input should be a text (or whole-number) category")
        _reject_non_finite(value)
        text = category_value(value)
        if text is None:
            if required:
                raise _custom("missing", "A value is required (this input was never missing in training)")
            return None
        if len(text) > 512:
            raise _custom("too_long", "A category is at most 512 characters")
        if reject_unknown and text not in levels:
            raise _custom("unknown_category", "Not a category the model was trained on")
        return text

    return validate


def _datetime_validator(required: bool) -> Callable[[Any], datetime | None]:
    def validate(value: Any) -> datetime | None:
        if value is None:
            if required:
                raise _custom("missing", "A value is required (this input was never missing in training)")
            return None
        if not isinstance(value, str):
            raise _custom("datetime_type", "Input should be a date or date-time text, e.g. '2024-05-01'")
        if len(value) > 64:
            raise _custom(
                "datetime_parsing", "Input should be a date or date-time text of at most 64 characters"
            )
        try:
            parsed = datetime_value(value)
        except ValueError:
            raise _custom("datetime_parsing", "Input is not a date/time that can be read") from None
        if parsed is None:
            if required:
                raise _custom("missing", "A value is required (this input was never missing in training)")
            return None
        return parsed

    return validate


def _fmt(x: float) -> str:
    return f"{x:g}"


class RequestSchema:
    """The generated request models of one model and the text that explains each field.

    Parameters
    ----------
    manifest
        The model's manifest.
    unknown_categories
        ``"other"``: an unseen category is accepted and scored as the "other" level (the
        manifest's policy), with a warning in the response. ``"reject"``: 422.
    max_batch_records
        Largest batch (documented in the schema; enforced by the service with 413).

    Attributes
    ----------
    Record
        Pydantic model of one record (fields aliased by feature name; unknown fields forbidden).
    Batch
        Pydantic model of ``{"records": [Record, ...]}`` (used for the OpenAPI schema).
    id_field
        Name of the id field in a request (the manifest's id column, else ``id``).
    example
        A realistic record built from the training profile.
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        unknown_categories: Literal["other", "reject"] = "other",
        max_batch_records: int = 10_000,
    ) -> None:
        self.manifest = manifest
        schema = manifest.input_schema
        self.features = list(schema.features)
        names = {f.name for f in self.features}
        self.id_field = schema.id_column or ("id" if "id" not in names else "record_id")
        self.reject_unknown = unknown_categories == "reject"
        self.expected: dict[str, str] = {}
        self.not_inputs: dict[str, str] = {
            c.name: f"not a model input (excluded in training: {c.role}{'; ' + c.note if c.note else ''})"
            for c in schema.excluded
        }
        self.not_inputs[manifest.task.target] = "the target the model predicts, not an input"
        self.example = self._example()
        fields: dict[str, Any] = {}
        # Python-safe attribute names; the JSON names are the aliases (feature names can be anything).
        self.attr_of: dict[str, str] = {}
        for i, spec in enumerate(self.features):
            attr = f"f{i}"
            self.attr_of[spec.name] = attr
            fields[attr] = self._field(spec)
        self.attr_of[self.id_field] = "record_id"
        self.expected[self.id_field] = "a text (at most 256 characters) or an integer id, echoed back"
        fields["record_id"] = (
            Annotated[
                Annotated[str, Field(strict=True, max_length=256)]
                | Annotated[int, Field(strict=True, ge=-_INT64, le=_INT64)]
                | None,
                Field(
                    alias=self.id_field,
                    description=f"The record's id ({self.id_field}), echoed back in the response; optional.",
                    examples=[self.example[self.id_field]],
                ),
            ],
            None,
        )
        config = ConfigDict(
            extra="forbid",
            validate_by_alias=True,
            validate_by_name=False,
            serialize_by_alias=True,
            json_schema_extra={"examples": [self.example]},
            title="PredictRequest",
        )
        self.Record: type[BaseModel] = create_model("PredictRequest", __config__=config, **fields)
        self.Batch: type[BaseModel] = create_model(
            "PredictBatchRequest",
            __config__=ConfigDict(
                extra="forbid",
                json_schema_extra={"examples": [{"records": [self.example, self.example]}]},
            ),
            records=(list[self.Record], Field(min_length=1, max_length=max_batch_records)),  # type: ignore[name-defined]
        )
        self._pairs = [(spec.name, self.attr_of[spec.name]) for spec in self.features]

    # ----------------------------------------------------------------- fields

    def _field(self, spec: FeatureSpec) -> tuple[Any, Any]:
        required = spec.required
        base = spec.description.strip()
        missing = (
            "Required: never missing in training."
            if required
            else f"Optional: null or absent is imputed by the model ({spec.missing_share:.1%} missing in training)."
        )
        example = self.example.get(spec.name)
        if spec.role == "numeric":
            nonneg = spec.min is not None and spec.min >= 0
            extent = (
                f" Training range {_fmt(spec.min)} … {_fmt(spec.max)}{', whole numbers' if spec.integer else ''}."
                if spec.min is not None and spec.max is not None
                else ""
            )
            self.expected[spec.name] = (
                f"a finite number{' >= 0' if nonneg else ''}{'' if required else ' or null'}"
                + (
                    f" (training range {_fmt(spec.min)} … {_fmt(spec.max)})"
                    if spec.min is not None and spec.max is not None
                    else ""
                )
            )
            desc = " ".join(
                p
                for p in (
                    base,
                    f"Number{' (never negative in training)' if nonneg else ''}.",
                    extent.strip(),
                    missing,
                )
                if p
            )
            number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0 if nonneg else None)]
            kind: Any = number if required else number | None
            return (
                Annotated[kind, Field(alias=spec.name, description=desc, examples=[example])],
                ... if required else None,
            )
        if spec.role == "boolean":
            self.expected[spec.name] = "true or false (also yes/no, 1/0)" + ("" if required else ", or null")
            options: list[dict[str, Any]] = [
                {"type": "boolean"},
                {"type": "integer", "enum": [0, 1]},
                {"type": "string", "enum": _BOOL_TEXTS},
            ]
            if not required:
                options.append({"type": "null"})
            json_schema: dict[str, Any] = {
                "anyOf": options,
                "description": " ".join(p for p in (base, "Yes/no.", missing) if p),
            }
            json_schema["examples"] = [example]
            return (
                Annotated[
                    Any,
                    PlainValidator(_boolean_validator(required)),
                    WithJsonSchema(json_schema),
                    Field(alias=spec.name),
                ],
                ... if required else None,
            )
        if spec.role == "categorical":
            levels = list(spec.categories or [])
            shown = ", ".join(repr(level) for level in levels[:20]) + (" …" if len(levels) > 20 else "")
            policy = (
                "Other values are rejected."
                if self.reject_unknown
                else "Any other value is scored like the rare levels of training (one 'other' level), "
                "with a warning in the response."
            )
            self.expected[spec.name] = (
                f"one of {shown}"
                + ("" if self.reject_unknown else " (other values are scored as 'other')")
                + ("" if required else ", or null")
            )
            known: list[dict[str, Any]] = [{"type": "string", "enum": levels}] if levels else []
            integral = [int(level) for level in levels if level.lstrip("-").isdigit() and len(level) < 18]
            if integral:
                known.append({"type": "integer", "enum": integral})
            options = list(known)
            if not self.reject_unknown:
                options.append(
                    {"type": "string", "maxLength": 512, "description": "Any other level: scored as 'other'."}
                )
            if not required:
                options.append({"type": "null"})
            json_schema = {
                "anyOf": options,
                "description": " ".join(
                    p
                    for p in (
                        base,
                        f"Category. Known levels (most frequent first): {shown}.",
                        policy,
                        missing,
                    )
                    if p
                ),
                "examples": [example],
            }
            validator = _category_validator(required, frozenset(levels), self.reject_unknown)
            return (
                Annotated[
                    Any, PlainValidator(validator), WithJsonSchema(json_schema), Field(alias=spec.name)
                ],
                ... if required else None,
            )
        # datetime
        with_time = "hour" in (spec.datetime_parts or [])
        self.expected[spec.name] = (
            "an ISO 8601 date or date-time text, e.g. '2024-05-01' or '2024-05-01T10:30:00Z'"
            + ("" if required else ", or null")
        )
        options = [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
        if not required:
            options.append({"type": "null"})
        json_schema = {
            "anyOf": options,
            "description": " ".join(
                p
                for p in (
                    base,
                    "Date" + (" and time" if with_time else "") + "; time zones are converted to UTC "
                    "(the model uses year, month, day, weekday" + (", hour" if with_time else "") + ").",
                    missing,
                )
                if p
            ),
            "examples": [example],
        }
        return (
            Annotated[
                Any,
                PlainValidator(_datetime_validator(required)),
                WithJsonSchema(json_schema),
                Field(alias=spec.name),
            ],
            ... if required else None,
        )

    def _example(self) -> dict[str, Any]:
        """A plausible record: medians, most frequent levels, a recent date — from the training profile."""
        out: dict[str, Any] = {self.id_field: "customer-0001"}
        for spec in self.features:
            prof = self.manifest.profile_of(spec.name)
            if spec.role == "numeric":
                median = prof.quantile("0.5")
                value = median if median is not None else (spec.min if spec.min is not None else 0.0)
                out[spec.name] = round(value) if spec.integer else round(float(value), 4)
            elif spec.role == "boolean":
                out[spec.name] = bool((prof.mean or 0.0) >= 0.5)
            elif spec.role == "categorical":
                out[spec.name] = (spec.categories or ["other"])[0]
            else:
                latest = str(prof.max or "2024-01-01 00:00:00")
                with_time = "hour" in (spec.datetime_parts or [])
                out[spec.name] = latest.replace(" ", "T") + "Z" if with_time else latest[:10]
        return out

    def _example_text(self) -> str:
        shown = dict(list(self.example.items())[:3])
        return orjson.dumps(shown).decode()[:-1] + ", …}"

    # ----------------------------------------------------------------- validation

    def typed(self, record: BaseModel) -> dict[str, Any]:
        """``{feature: typed value}`` of a validated record (the input of RecordEncoder)."""
        values = record.__dict__
        return {name: values[attr] for name, attr in self._pairs}

    def record_id(self, record: BaseModel) -> Any:
        return record.__dict__["record_id"]

    def problems(self, exc: ValidationError, prefix: str = "") -> list[Problem]:
        """Field-level problems from a validation error; ``prefix`` (e.g. ``records[3].``) locates a batch item."""
        out = []
        for err in exc.errors(include_url=False):
            loc = [str(part) for part in err["loc"]]
            kind = err["type"]
            value = err.get("input")
            field = loc[0] if loc else ""
            where = prefix + field if field else (prefix.rstrip(".") or "body")
            if kind == "json_invalid":
                out.append(
                    Problem(
                        "body",
                        safe_value(value),
                        "a JSON object",
                        f"The body is not valid JSON: {err['ctx']['error']}.",
                        kind,
                    )
                )
                continue
            if not loc or kind == "model_type":
                out.append(
                    Problem(
                        where,
                        safe_value(value),
                        "a JSON object of the model's inputs, like " + self._example_text(),
                        f"Expected a JSON object, got {_json_kind(value)}.",
                        "object_type",
                    )
                )
                continue
            if kind == "extra_forbidden":
                reason = self.not_inputs.get(field)
                inputs = ", ".join(f.name for f in self.features)
                message = (
                    f"'{field}' is {reason}; remove it."
                    if reason
                    else f"'{field}' is not an input of this model; remove it (or check its spelling)."
                )
                out.append(
                    Problem(
                        where,
                        safe_value(value),
                        f"only the model's inputs: {self.id_field}, {inputs}",
                        message,
                        "unknown_field",
                    )
                )
                continue
            expected = self.expected.get(field, "")
            if kind == "missing" or (value is None and kind.endswith("_type")):
                out.append(
                    Problem(
                        where,
                        None,
                        expected,
                        "A value is required: this input was never missing in training.",
                        "missing",
                    )
                )
                continue
            msg = str(err["msg"])
            if kind == "unknown_category":
                msg = f"{value!r} is not a category the model was trained on (unknown categories are rejected on this service)."
            out.append(Problem(where, safe_value(value), expected, msg.rstrip(".") + ".", kind))
        return _one_per_field(out)


def _one_per_field(problems: list[Problem]) -> list[Problem]:
    """A union (e.g. the id: text or integer) reports one error per branch; keep the most telling one."""
    seen: dict[str, int] = {}
    out: list[Problem] = []
    for p in problems:
        if p.field not in seen or p.type == "unknown_field":
            seen[p.field] = len(out)
            out.append(p)
        elif out[seen[p.field]].type.endswith("_type") and not p.type.endswith("_type"):
            out[seen[p.field]] = p
    return out


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def feature_warnings(unknown: list[str], typed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Response warnings for the unseen categories of one record."""
    return [
        {
            "field": name,
            "value": typed[name],
            "message": "Not a category seen in training; scored like the rare training levels ('other').",
        }
        for name in unknown
    ]
