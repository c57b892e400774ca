"""Engines that execute the event definitions: DuckDB in-process (default) and Spark.

Every event stage (validation, sessions, features, labels) is one Ibis expression; an
engine only supplies the connection and the few operations Ibis does not express the same
way on both backends (reading files, parsing timestamps with a format, converting a local
time zone to UTC, writing results). Dispatch is by name, like skrub's ``_dispatch``::

    engine = get_engine("duckdb")   # or "spark" (local mode unless spark.master is configured)

- :mod:`~propensity.engines.base` — the :class:`Engine` base class and what both share;
- :mod:`~propensity.engines.duckdb` — DuckDB in-process;
- :mod:`~propensity.engines.spark` — Apache Spark (PySpark imported only when a session starts).

Both run with their session time zone set to UTC, which is what makes timestamp casts agree.
Day arithmetic is done in epoch seconds (``floor(epoch)``) because the engines' ``delta(unit="day")``
differ (DuckDB counts midnights crossed, Spark whole 24-hour periods).
"""

from __future__ import annotations

from typing import Any

from propensity.engines.base import Engine
from propensity.engines.duckdb import DuckDBEngine
from propensity.engines.spark import SparkEngine, java_pattern, spark_session
from propensity.errors import ParameterError

__all__ = ["ENGINES", "DuckDBEngine", "Engine", "SparkEngine", "get_engine", "java_pattern", "spark_session"]

ENGINES = ("duckdb", "spark")


def get_engine(name: str = "duckdb", **options: Any) -> Engine:
    """An engine by name: ``duckdb`` (default) or ``spark``.

    Raises
    ------
    ParameterError
        For an unknown name (the message lists the choices).
    """
    key = (name or "duckdb").strip().lower()
    if key == "duckdb":
        return DuckDBEngine(**options)
    if key == "spark":
        return SparkEngine(**options)
    raise ParameterError(f"The 'engine' parameter must be one of {', '.join(ENGINES)}. Got {name!r} instead.")
