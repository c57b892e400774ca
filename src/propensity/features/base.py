"""What every feature group shares: the definition record, the configuration, and the context.

A group module (:mod:`.counts`, :mod:`.timing`, :mod:`.active_days`, :mod:`.sessions`,
:mod:`.orders`, :mod:`.categories`) receives a :class:`Context` — the events before the cutoff
and the cutoff itself as Ibis values — and returns its :class:`FeatureDef` list with a
per-customer Ibis table. :mod:`.registry` runs the groups in order and joins them.

Time: every feature uses **only events with ``ts < as_of``**. A window of L days is
``[as_of - L days, as_of)``, measured in whole seconds before the cutoff (an event exactly L days
before ``as_of`` is inside). Days are 86,400 seconds of epoch time, which agrees across engines
(see :mod:`propensity.engines`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from propensity.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "DAY",
    "DEFAULT_LOOKBACKS",
    "Collector",
    "Context",
    "FeatureConfig",
    "FeatureDef",
    "bit_or",
    "count_if",
    "epoch_seconds",
    "slug",
    "to_timestamp",
    "window_text",
]

DEFAULT_LOOKBACKS: tuple[int, ...] = (7, 30, 90)
DAY = 86_400
#: Columns whose most frequent levels get a share feature each (fixed per model).
LEVEL_COLUMNS = ("device", "channel")


@dataclass(frozen=True)
class FeatureDef:
    """One feature's documentation, read by the manifest, the report and the dashboard.

    Attributes
    ----------
    name
        Column name.
    definition
        Exact definition (what is counted or measured, over which events).
    window
        ``"7d"``, ``"30d"``, ``"90d"``, ``"lifetime"`` or ``"30d vs previous 30d"``.
    description
        Short human text, e.g. "days since the last add to cart".
    unit
        ``events``, ``days``, ``money``, ``share``, ``rate``, ``minutes``, ``sessions``,
        ``orders``, ``categories``, ``log ratio`` or ``None`` (categories).
    template
        A phrase with ``{value}`` for reason codes, e.g. "added to cart {value:.0f} days ago".
    group
        Family of the feature (activity, recency, monetary, sessions, funnel, timing,
        device, channel, category, trend).
    role
        ``numeric`` or ``categorical``.
    """

    name: str
    definition: str
    window: str
    description: str
    unit: str | None
    template: str
    group: str
    role: Literal["numeric", "categorical"] = "numeric"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureConfig:
    """What to compute: lookback windows, trend span and the fixed device/channel levels.

    Parameters
    ----------
    lookbacks
        Window lengths in days (1 to 3,650, distinct); lifetime is always added.
    trend_days
        Span of the trend feature (events in the last N days vs the N before).
    levels
        ``{"device": [...], "channel": [...]}``: the levels that get a share feature. Fix them
        with :func:`~propensity.features.resolve_levels` before building features for several
        cutoffs (they are part of the feature definition and stored in the model manifest).
    max_levels
        How many levels :func:`~propensity.features.resolve_levels` keeps per column.
    """

    lookbacks: tuple[int, ...] = DEFAULT_LOOKBACKS
    trend_days: int = 30
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_levels: int = 5

    def __post_init__(self) -> None:
        lb = tuple(int(x) for x in self.lookbacks)
        if not lb or len(set(lb)) != len(lb) or any(not 1 <= x <= 3650 for x in lb):
            raise ParameterError(
                f"The 'lookbacks' parameter must be distinct whole days in [1, 3650], e.g. 7,30,90. Got {self.lookbacks!r} instead."
            )
        object.__setattr__(self, "lookbacks", tuple(sorted(lb)))
        if not 1 <= self.trend_days <= 365:
            raise ParameterError(
                f"The 'trend_days' parameter must be in [1, 365]. Got {self.trend_days!r} instead."
            )
        object.__setattr__(self, "levels", {k: tuple(v) for k, v in dict(self.levels).items()})

    @property
    def windows(self) -> list[tuple[str, int | None]]:
        """``(column suffix, days)`` of every lookback, then ``("all", None)`` for lifetime."""
        return [(f"{w}d", w) for w in self.lookbacks] + [("all", None)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "lookbacks": list(self.lookbacks),
            "trend_days": self.trend_days,
            "levels": {k: list(v) for k, v in self.levels.items()},
            "max_levels": self.max_levels,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        return cls(
            lookbacks=tuple(data.get("lookbacks", DEFAULT_LOOKBACKS)),
            trend_days=int(data.get("trend_days", 30)),
            levels={k: tuple(v) for k, v in (data.get("levels") or {}).items()},
            max_levels=int(data.get("max_levels", 5)),
        )


def slug(value: str) -> str:
    """A level as a column-name part: lower case, runs of other characters as one ``_``."""
    text = "".join(ch if ch.isalnum() else "_" for ch in value.strip().lower()).strip("_")
    while "__" in text:
        text = text.replace("__", "_")
    return text or "blank"


def to_timestamp(as_of: Any) -> pd.Timestamp:
    """A cutoff as a naive-UTC timestamp truncated to whole seconds (dates mean midnight UTC)."""
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ParameterError(
            f"The 'as_of' parameter must be a date or time like 2024-06-01. Got {as_of!r} instead."
        ) from None
    if ts is pd.NaT:
        raise ParameterError(
            f"The 'as_of' parameter must be a date or time like 2024-06-01. Got {as_of!r} instead."
        )
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.floor("s")


def epoch_seconds(ts: pd.Timestamp) -> int:
    """Whole seconds since 1970-01-01 of a naive-UTC timestamp."""
    return int((ts - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))


def window_text(days: int | None) -> tuple[str, str]:
    """(window label, phrase) for a lookback."""
    if days is None:
        return "lifetime", "ever (before the cutoff)"
    return f"{days}d", f"in the last {days} days"


def count_if(condition: Any) -> Any:
    """How many rows meet ``condition`` (``count_if``, a built-in aggregate of DuckDB and Spark;
    faster than a filtered ``count(*)`` in DuckDB)."""
    return _builtin_aggregates()[0](condition)


def bit_or(value: Any) -> Any:
    """Bitwise OR of an integer column (``bit_or``, built into DuckDB and Spark): one aggregate
    where several ``any()`` flags would each cost a pass over the rows."""
    return _builtin_aggregates()[1](value)


@functools.cache
def _builtin_aggregates() -> tuple[Any, Any]:
    import ibis
    import ibis.expr.datatypes as dt

    def count_if(arg: Any) -> Any:  # pragma: no cover - never called, only compiled to SQL
        raise NotImplementedError

    def bit_or(arg: Any) -> Any:  # pragma: no cover - never called, only compiled to SQL
        raise NotImplementedError

    return (
        ibis.udf.agg.builtin(count_if, name="count_if", signature=((dt.boolean,), dt.int64)),
        ibis.udf.agg.builtin(bit_or, name="bit_or", signature=((dt.int64,), dt.int64)),
    )


class Collector:
    """Collects (definition, expression) pairs for one group; a name defined twice is a bug."""

    def __init__(self) -> None:
        self.defs: list[FeatureDef] = []
        self.exprs: dict[str, Any] = {}

    def add(self, name: str, expr: Any, **doc: Any) -> None:
        if name in self.exprs:
            raise ValueError(f"feature {name!r} defined twice")
        self.defs.append(FeatureDef(name=name, **doc))
        self.exprs[name] = expr


class Context:
    """The cutoff and the events before it, as Ibis values every group builds on.

    Attributes
    ----------
    as_of
        The cutoff (naive UTC, whole seconds).
    config
        The feature configuration.
    before
        Canonical events with ``ts < as_of``.
    age
        Seconds from each event in ``before`` to the cutoff (an int64 expression, at least 1).
    """

    def __init__(self, events: ir.Table, as_of: pd.Timestamp, config: FeatureConfig) -> None:
        import ibis
        import ibis.expr.datatypes as dt

        self.as_of = as_of
        self.config = config
        self.as_of_epoch = epoch_seconds(as_of)
        cutoff = ibis.literal(as_of.to_pydatetime(), type=dt.Timestamp())
        self.before = events.filter(events.ts < cutoff)
        self.age = self.seconds_before(self.before.ts)

    def seconds_before(self, ts: Any) -> Any:
        """Whole seconds from a timestamp expression to the cutoff."""
        import ibis
        import ibis.expr.datatypes as dt

        return ibis.literal(self.as_of_epoch, type=dt.int64) - ts.epoch_seconds().floor().cast(dt.int64)

    @staticmethod
    def in_window(age: Any, days: int | None) -> Any:
        """Whether an age in seconds lies within the last ``days`` days (always, for lifetime)."""
        import ibis

        return ibis.literal(True) if days is None else age <= days * DAY
