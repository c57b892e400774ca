"""Evaluate a trained model on new labelled rows: find the model, read the rows, measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from propensity.errors import DataError
from propensity.evaluation import evaluate_frame
from propensity.loading import ModelRef, resolve_model
from propensity.sources import read_table

__all__ = ["evaluate"]


def evaluate(
    model: ModelRef,
    data: pd.DataFrame | str | Path,
    *,
    target: str | None = None,
    value: float | None = None,
    cost: float | None = None,
    allow_missing: bool = False,
    quarantine_path: str | Path | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Evaluate a trained model on new labelled rows; return the ``evaluation.json`` data.

    Parameters
    ----------
    model
        A model, a bundle folder or a registry URI.
    data
        A labelled table (DataFrame, CSV or Parquet) with the model's feature columns and the
        outcome. (Event logs: build the labelled table at a cutoff first, e.g. with
        ``propensity features --horizon-days``.)
    target
        The outcome column (default: the column the model was trained on).
    value, cost
        Margin of a conversion and cost of a contact for the profit curve (default: the
        model's profit policy, else an example of 10 and 1 that the report labels as such).
    allow_missing
        Impute required feature columns that are absent instead of failing.
    quarantine_path
        Where to write the rows that could not be used (row, column, value, reason), if any.
    tracking_uri
        Where registry URIs are looked up (see :func:`propensity.loading.resolve_model`).

    Raises
    ------
    SchemaError
        The target column is absent (the message names close matches and ``--target``), or the
        data lack columns the model needs (the message lists missing and unexpected columns).
    DataError
        No row with a usable outcome and readable features remains.

    Example
    -------
    >>> ev = propensity.evaluate("models/shoppers", "sessions_june.csv")  # doctest: +SKIP
    >>> ev["datasets"]["evaluation"]["metrics"]["roc_auc"]                # doctest: +SKIP
    """
    trained = resolve_model(model, tracking_uri=tracking_uri)
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DataError("The evaluation DataFrame has no rows.")
        frame, source = data, "DataFrame"
    else:
        frame, source = read_table(data), str(data)
    return evaluate_frame(
        trained,
        frame,
        source=source,
        target=target,
        value=value,
        cost=cost,
        allow_missing=allow_missing,
        quarantine_path=quarantine_path,
    )
