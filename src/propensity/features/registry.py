"""The one registry of point-in-time features: groups run in order and joined per customer.

Each feature is declared exactly once, in its group module, with its Ibis expression and its
documentation (:class:`~propensity.features.base.FeatureDef`). :func:`feature_registry` runs the
same code on an unbound table to list the definitions without data, so the manifest, the report,
the dashboard and the features themselves cannot disagree. Batch scoring, training and (through
the same functions) the stream scorer all build features here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from propensity.errors import DataError
from propensity.events.mapping import CANONICAL_COLUMNS
from propensity.features import active_days, categories, counts, orders, sessions, timing
from propensity.features.base import LEVEL_COLUMNS, Context, FeatureConfig, FeatureDef, slug, to_timestamp

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "GROUPS",
    "FeatureGroup",
    "build_features",
    "check_as_of",
    "define",
    "feature_registry",
    "registry_frame",
    "resolve_levels",
]


@dataclass(frozen=True)
class FeatureGroup:
    """A module's features: ``build(context) -> (definitions, per-customer table)``."""

    name: str
    build: Callable[[Context], tuple[list[FeatureDef], ir.Table]]
    #: Counted features: a customer with no matching event has 0 rather than a missing value.
    zero_if_missing: bool = False


#: The groups, in the order their columns appear (the first one has a row for every customer).
GROUPS: tuple[FeatureGroup, ...] = (
    FeatureGroup("counts", counts.build),
    FeatureGroup("timing", timing.build),
    FeatureGroup("active_days", active_days.build, zero_if_missing=True),
    FeatureGroup("sessions", sessions.build),
    FeatureGroup("orders", orders.build),
    FeatureGroup("categories", categories.build),
)
_ZERO_UNITS = ("sessions", "orders", "categories")


def define(
    events: ir.Table, as_of: pd.Timestamp, config: FeatureConfig, groups: Sequence[FeatureGroup] = GROUPS
) -> tuple[list[FeatureDef], ir.Table]:
    """The feature definitions and their Ibis expression over ``events`` at ``as_of``.

    Each group selects only the columns it needs from the events before the cutoff, so the
    engine scans what it needs once per group instead of materialising a shared copy. The first
    group (counts over every event) has a row for every customer seen before the cutoff; the
    others are left-joined to it, and counted features of customers absent from a group are 0.
    """
    ctx = Context(events, as_of, config)
    defs: list[FeatureDef] = []
    zero: set[str] = set()
    out: Any = None
    for group in groups:
        group_defs, table = group.build(ctx)
        defs += group_defs
        zero |= {d.name for d in group_defs if group.zero_if_missing or d.unit in _ZERO_UNITS}
        out = table if out is None else out.left_join(table, "customer_id")
    out = out.select(
        "customer_id",
        *[(out[d.name].fill_null(0) if d.name in zero else out[d.name]).name(d.name) for d in defs],
    )
    return defs, out


def _canonical_placeholder() -> ir.Table:
    import ibis

    schema = {
        "customer_id": "string",
        "ts": "timestamp",
        "event_type": "string",
        "session_id": "string",
        "order_id": "string",
        "amount": "float64",
        "quantity": "float64",
        "product_id": "string",
        "category": "string",
        "device": "string",
        "channel": "string",
    }
    assert tuple(schema) == CANONICAL_COLUMNS
    return ibis.table(schema, name="events")


def feature_registry(config: FeatureConfig | None = None) -> list[FeatureDef]:
    """The documented feature list for ``config`` (computed from the same code as the features).

    Example
    -------
    >>> [f.name for f in feature_registry()][:3]
    ['n_events_7d', 'n_view_7d', 'n_add_to_cart_7d']
    """
    defs, _ = define(_canonical_placeholder(), pd.Timestamp("2000-01-01"), config or FeatureConfig())
    return defs


def build_features(events: ir.Table, as_of: Any, config: FeatureConfig | None = None) -> ir.Table:
    """Per-customer features at ``as_of`` from canonical events, as a lazy Ibis table.

    Parameters
    ----------
    events
        Canonical events (``EventLog.events``).
    as_of
        The cutoff; only events with ``ts < as_of`` are used.
    config
        Lookbacks, trend span and device/channel levels.

    Returns
    -------
    ibis Table
        ``customer_id`` plus one column per :func:`feature_registry` entry, for every customer
        with at least one event before ``as_of``.
    """
    _, expr = define(events, to_timestamp(as_of), config or FeatureConfig())
    return expr


def resolve_levels(
    events: ir.Table, as_of: Any, config: FeatureConfig, execute: Callable[[Any], pd.DataFrame]
) -> FeatureConfig:
    """Fix the device and channel levels (most frequent first, at most ``max_levels``) from
    events before ``as_of``, unless ``config`` already has them."""
    import ibis
    import ibis.expr.datatypes as dt

    if all(col in config.levels for col in LEVEL_COLUMNS):
        return config
    cutoff = ibis.literal(to_timestamp(as_of).to_pydatetime(), type=dt.Timestamp())
    before = events.filter(events.ts < cutoff)
    levels = dict(config.levels)
    for col in LEVEL_COLUMNS:
        if col in levels:
            continue
        sub = before.filter(before[col].notnull())
        top = execute(
            sub.group_by(level=sub[col])
            .aggregate(n=sub.count())
            .order_by([ibis.desc("n"), "level"])
            .limit(config.max_levels)
        )
        values = [str(v) for v in top["level"]]
        slugs = [slug(v) for v in values]
        if len(set(slugs)) != len(slugs):  # two levels that only differ in punctuation: keep the first
            values = [v for i, v in enumerate(values) if slug(v) not in slugs[:i]]
        levels[col] = tuple(values)
    return replace(config, levels=levels)


def check_as_of(
    as_of: pd.Timestamp,
    first_event: pd.Timestamp | None,
    data_end: pd.Timestamp | None,
    *,
    horizon_days: int | None = None,
    allow_partial_horizon: bool = False,
) -> None:
    """Refuse cutoffs outside the data, and horizons that run past its end.

    Raises
    ------
    DataError
        ``as_of`` on or before the first event, after the end of the data, or ``as_of +
        horizon`` past the end (the message says how many days are missing).
    """
    if first_event is None or data_end is None:
        raise DataError("The event log has no valid events.")
    if as_of <= first_event:
        raise DataError(
            f"as_of {as_of} is on or before the first event ({first_event}): no customer has any history yet. "
            f"Choose an as_of after {first_event.date()}."
        )
    if as_of > data_end:
        days = math.ceil((as_of - data_end) / pd.Timedelta(days=1))
        raise DataError(
            f"as_of {as_of} is {days} day(s) after the end of the data ({data_end}; the last event is before it): "
            "every customer would look lapsed. Choose an as_of up to the end of the data, or pass a newer log."
        )
    if horizon_days is not None:
        end = as_of + pd.Timedelta(days=horizon_days)
        if end > data_end and not allow_partial_horizon:
            missing = math.ceil((end - data_end) / pd.Timedelta(days=1))
            latest = data_end - pd.Timedelta(days=horizon_days)
            raise DataError(
                f"The {horizon_days}-day horizon from {as_of.date()} reaches {missing} day(s) past the end of the data "
                f"({data_end}): {missing} of its {horizon_days} days are missing, so later purchases would be counted as "
                f"'no purchase'. Choose an as_of on or before {latest.date()}, a shorter horizon, or allow a partial "
                "horizon explicitly (--allow-partial-horizon)."
            )


def registry_frame(defs: Sequence[FeatureDef]) -> pd.DataFrame:
    """The registry as a table (name, group, window, unit, description, definition)."""
    return pd.DataFrame([d.to_dict() for d in defs])
