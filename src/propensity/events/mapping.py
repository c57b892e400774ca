"""The canonical event schema and the mapping from a user's columns and event names onto it.

Canonical events (what every later stage reads)
-----------------------------------------------
============  =========  =================================================================
column        type       meaning
============  =========  =================================================================
customer_id   string     who (required). Integer-valued numbers become their digits.
ts            timestamp  when, **naive UTC** (required). Strings with an offset (``Z``,
                         ``+02:00``) are converted to UTC; naive values are read in the
                         mapping's ``timezone`` (default UTC) and converted.
event_type    string     ``view``, ``add_to_cart``, ``checkout``, ``purchase``, ``return``,
                         or a kept custom name. Order logs: every line is ``purchase``.
session_id    string     visit (optional; derived from a 30-minute inactivity gap if absent).
order_id      string     order/invoice (optional; purchases sharing it are one order).
amount        float64    money of the event (purchase value; negative for returns).
quantity      float64    items (optional).
product_id    string     optional.
category      string     optional.
device        string     optional.
channel       string     optional.
============  =========  =================================================================

A mapping is a small YAML file (or the equivalent CLI flags)::

    columns:                 # canonical name: your column
      customer_id: CustomerID
      ts: InvoiceDate
      order_id: InvoiceNo
      quantity: Quantity
      price: UnitPrice       # amount = price * quantity when no amount column is given
    order_log: true          # one line per order line: every line is a purchase
    returns: {column: InvoiceNo, prefix: C}   # cancellations are returns
    events:                  # canonical event: [your event names]
      purchase: [payment_done]
    timezone: UTC            # of timestamps written without an offset
    session_gap_minutes: 30

Without a mapping, columns are found by their canonical names (or common synonyms such as
``user_id``, ``timestamp``, ``event``), and event names must be the canonical ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from propensity.errors import DataError, SchemaError
from propensity.schema import did_you_mean

__all__ = [
    "CANONICAL_COLUMNS",
    "CANONICAL_EVENTS",
    "FUNNEL_EVENTS",
    "EventMapping",
    "ReturnRule",
    "load_mapping",
    "mapping_from_options",
]

#: Canonical columns, in output order.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "ts",
    "event_type",
    "session_id",
    "order_id",
    "amount",
    "quantity",
    "product_id",
    "category",
    "device",
    "channel",
)
STRING_COLUMNS = (
    "customer_id",
    "event_type",
    "session_id",
    "order_id",
    "product_id",
    "category",
    "device",
    "channel",
)
#: Event types with a built-in meaning.
CANONICAL_EVENTS: tuple[str, ...] = ("view", "add_to_cart", "checkout", "purchase", "return")
#: The funnel, in order.
FUNNEL_EVENTS: tuple[str, ...] = ("view", "add_to_cart", "checkout", "purchase")
#: Inputs a mapping may name besides the canonical columns.
EXTRA_INPUTS = ("price",)
_REQUIRED = ("customer_id", "ts")
#: Column names recognised without a mapping (lower-cased, in order of preference).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customer_id",
        "customerid",
        "customer id",
        "user_id",
        "userid",
        "client_id",
        "visitor_id",
    ),
    "ts": ("ts", "timestamp", "event_time", "event_timestamp", "time", "datetime", "date"),
    "event_type": ("event_type", "event", "event_name", "action"),
    "session_id": ("session_id", "sessionid", "session"),
    "order_id": ("order_id", "orderid", "invoice_id", "transaction_id"),
    "amount": ("amount", "revenue", "value", "price_total", "total"),
    "quantity": ("quantity", "qty"),
    "product_id": ("product_id", "productid", "sku", "item_id"),
    "category": ("category", "category_code", "product_category"),
    "device": ("device", "device_type", "platform"),
    "channel": ("channel", "source", "utm_source", "traffic_source"),
    "price": ("price", "unit_price", "unitprice"),
}
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReturnRule(_Model):
    """Rows whose ``column`` starts with ``prefix`` are returns (e.g. invoices ``C536379``)."""

    column: str
    prefix: str = Field(min_length=1)


class EventMapping(_Model):
    """How a user's event or order log maps onto the canonical event schema.

    Parameters
    ----------
    columns
        ``{canonical column: source column}``; ``price`` (unit price) may also be named, then
        ``amount = price * quantity`` (quantity 1 when absent).
    events
        ``{canonical event: [source event names]}``. Names are matched after trimming,
        case-insensitively. Unlisted canonical names (``purchase`` …) map to themselves.
    other_events
        Further event names to keep under their own name (counted in ``n_events``).
    keep_unmapped_events
        Keep every unlisted event name instead of quarantining it as "unknown event type".
    order_log
        The log has one line per order (or order line): every line is a purchase, except
        those matched by ``returns``.
    returns
        A rule marking return/cancellation rows; their amounts may be negative.
    timezone
        Zone of timestamps written without an offset: ``UTC`` (default), a fixed offset
        ``+01:00``, or (DuckDB and Spark) an IANA name like ``Europe/Berlin``.
    timestamp_format
        ``strftime`` pattern for timestamps that are not ISO 8601 (e.g. ``%d/%m/%Y %H:%M``).
    session_gap_minutes
        Inactivity gap that starts a new session when the log has no session ids.
    """

    columns: dict[str, str] = Field(default_factory=dict)
    events: dict[str, list[str]] = Field(default_factory=dict)
    other_events: list[str] = Field(default_factory=list)
    keep_unmapped_events: bool = False
    order_log: bool = False
    returns: ReturnRule | None = None
    timezone: str = "UTC"
    timestamp_format: str | None = None
    session_gap_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    name: str | None = None
    description: str | None = None

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = set(CANONICAL_COLUMNS) | set(EXTRA_INPUTS)
        bad = [k for k in value if k not in allowed]
        if bad:
            raise ValueError(
                f"unknown canonical column(s) {bad}; map any of: {', '.join(CANONICAL_COLUMNS + EXTRA_INPUTS)}"
            )
        return {k: str(v) for k, v in value.items()}

    @field_validator("events", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: [v] if isinstance(v, str) else list(v or []) for k, v in value.items()}
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = [k for k in value if k not in CANONICAL_EVENTS]
        if bad:
            raise ValueError(
                f"unknown canonical event(s) {bad}; map onto: {', '.join(CANONICAL_EVENTS)} "
                "(keep other names with other_events)"
            )
        return {k: [str(v) for v in names] for k, names in value.items()}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        value = value.strip()
        if value.upper() in ("UTC", "Z", "GMT", "+00:00"):
            return "UTC"
        if _OFFSET.match(value):
            return value
        try:
            import zoneinfo

            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
        raise ValueError(
            f"timezone must be UTC, an offset like +01:00 or an IANA name like Europe/Berlin; got {value!r}"
        )

    @model_validator(mode="after")
    def _consistent(self) -> EventMapping:
        seen: dict[str, str] = {}
        for canonical, names in self.events.items():
            for name in names:
                key = name.strip().lower()
                if key in seen and seen[key] != canonical:
                    raise ValueError(f"event name {name!r} is mapped to both {seen[key]!r} and {canonical!r}")
                seen[key] = canonical
        if self.order_log and self.events:
            raise ValueError("order_log: true makes every line a purchase; drop the events: section")
        return self

    # ------------------------------------------------------------------ resolution

    def event_lookup(self) -> dict[str, str]:
        """``{lower-cased source name: canonical name}`` (canonical names map to themselves)."""
        out = {e: e for e in CANONICAL_EVENTS}
        for canonical, names in self.events.items():
            for name in names:
                out[name.strip().lower()] = canonical
        for name in self.other_events:
            out.setdefault(name.strip().lower(), name.strip())
        return out

    def resolve(self, present: Sequence[str]) -> dict[str, str]:
        """``{canonical or extra input: source column}`` for this file's columns.

        Explicitly mapped columns must exist; unmapped ones are found by name or synonym.

        Raises
        ------
        SchemaError
            A mapped column is missing (with close matches), or a required column cannot be found.
        """
        present = [str(c) for c in present]
        lowered: dict[str, str] = {}
        for c in present:
            lowered.setdefault(c.strip().lower(), c)
        resolved: dict[str, str] = {}
        for canonical, source in self.columns.items():
            if source not in present:
                hint = did_you_mean(source, present)
                raise SchemaError(
                    f"The mapping names column '{source}' for '{canonical}', but the file has no such column.{hint} "
                    f"Its columns are: {', '.join(map(repr, present[:30]))}."
                )
            resolved[canonical] = source
        taken = set(resolved.values())
        for canonical in (*CANONICAL_COLUMNS, *EXTRA_INPUTS):
            if canonical in resolved:
                continue
            if canonical == "event_type" and self.order_log:
                continue
            for candidate in SYNONYMS.get(canonical, (canonical,)):
                found = lowered.get(candidate)
                if found is not None and found not in taken:
                    resolved[canonical] = found
                    taken.add(found)
                    break
        for canonical in _REQUIRED:
            if canonical not in resolved:
                raise SchemaError(
                    f"No column for '{canonical}' in the file (columns: {', '.join(map(repr, present[:30]))}). "
                    f"Map it: columns: {{{canonical}: YOUR_COLUMN}} in a mapping file, or --map {canonical}=YOUR_COLUMN."
                )
        if "event_type" not in resolved and not self.order_log:
            raise SchemaError(
                "No event-type column in the file (looked for: "
                + ", ".join(SYNONYMS["event_type"])
                + "). Map it (--map event_type=COLUMN), or declare an order log (order_log: true / --order-log) "
                "if every line is a purchase."
            )
        if self.returns is not None and self.returns.column not in present:
            hint = did_you_mean(self.returns.column, present)
            raise SchemaError(
                f"The mapping's returns rule names column '{self.returns.column}', which is not in the file.{hint}"
            )
        return resolved

    def describe(self) -> dict[str, Any]:
        """A JSON-ready copy (stored in the model manifest)."""
        return self.model_dump(mode="json", exclude_none=True)


def load_mapping(path: str | Path) -> EventMapping:
    """Read a mapping YAML file.

    Raises
    ------
    DataError
        The file is missing, not YAML, or not a valid mapping (the message names the key).
    """
    from propensity.sources import read_yaml_mapping

    data = read_yaml_mapping(path, "Mapping file", "a YAML mapping with keys such as columns: and events:")
    return _parse(data, f"Mapping file '{path}'")


def _parse(data: Mapping[str, Any], where: str) -> EventMapping:
    try:
        return EventMapping.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'mapping'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise DataError(f"{where} is not a valid event mapping: {problems}.") from None


def mapping_from_options(
    base: EventMapping | str | Path | None = None,
    *,
    columns: Sequence[str] = (),
    events: Sequence[str] = (),
    order_log: bool | None = None,
    returns_prefix: str | None = None,
    timezone: str | None = None,
    timestamp_format: str | None = None,
    session_gap_minutes: float | None = None,
    keep_unmapped_events: bool | None = None,
) -> EventMapping:
    """Build a mapping from CLI-style options, on top of a YAML file or mapping when given.

    Parameters
    ----------
    columns
        ``["customer_id=CustomerID", "ts=InvoiceDate", ...]``.
    events
        ``["purchase=payment_done", "view=catalog,main", ...]``.
    returns_prefix
        ``"InvoiceNo:C"`` — rows whose InvoiceNo starts with C are returns.
    """
    if isinstance(base, (str, Path)):
        base = load_mapping(base)
    data: dict[str, Any] = base.model_dump() if base is not None else {}
    cols = dict(data.get("columns") or {})
    for item in columns:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise DataError(f"--map expects canonical=column (e.g. customer_id=CustomerID); got {item!r}.")
        cols[key.strip()] = value.strip()
    data["columns"] = cols
    evs = {k: list(v) for k, v in (data.get("events") or {}).items()}
    for item in events:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise DataError(
                f"--event expects canonical=name[,name] (e.g. purchase=payment_done); got {item!r}."
            )
        evs.setdefault(key.strip(), []).extend(v.strip() for v in value.split(",") if v.strip())
    data["events"] = evs
    if order_log is not None:
        data["order_log"] = order_log
    if returns_prefix:
        column, sep, prefix = returns_prefix.rpartition(":")
        if not sep or not column or not prefix:
            raise DataError(f"--returns expects COLUMN:PREFIX (e.g. InvoiceNo:C); got {returns_prefix!r}.")
        data["returns"] = {"column": column, "prefix": prefix}
    options: dict[str, Any] = {
        "timezone": timezone,
        "timestamp_format": timestamp_format,
        "session_gap_minutes": session_gap_minutes,
        "keep_unmapped_events": keep_unmapped_events,
    }
    data.update({k: v for k, v in options.items() if v is not None})
    return _parse(data, "The mapping options")


MappingLike = EventMapping | str | Path | Mapping[str, Any] | None


def as_mapping(mapping: MappingLike) -> EventMapping:
    """An :class:`EventMapping` from a mapping, a YAML path, a dict, or ``None`` (defaults)."""
    if mapping is None:
        return EventMapping()
    if isinstance(mapping, EventMapping):
        return mapping
    if isinstance(mapping, (str, Path)):
        return load_mapping(mapping)
    return _parse(mapping, "The mapping")


EngineName = Literal["duckdb", "spark"]
