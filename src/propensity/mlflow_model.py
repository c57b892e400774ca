"""The MLflow pyfunc face of a propensity bundle ("model from code").

:func:`propensity.tracking.log_training` logs every bundle as an MLflow model whose code is
this file and whose only artifact is the bundle folder. MLflow executes the file when it
loads the model (``mlflow.pyfunc.load_model("models:/shoppers@champion")``, ``mlflow
models serve``), so the module ends with ``set_model``; propensity itself never imports it.

Loading goes through :func:`propensity.bundle.load_model`, so the bundle's content hash is
verified on every load, whichever tool loads it. ``predict`` takes raw rows (the columns of
the training table, as read from CSV or Parquet) and returns one row per input row: the id
column when present, ``probability``, ``decision`` and ``band``. A row the model cannot read
raises :class:`propensity.errors.DataError` naming the row, column and value; batch scoring
with quarantine is ``propensity score``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from propensity.bundle import load_model
from propensity.pipeline import TrainedModel

BUNDLE_ARTIFACT = "bundle"


class PropensityPyfunc(PythonModel):
    """Scores raw rows with the verified bundle shipped as the model's ``bundle`` artifact."""

    model: TrainedModel

    def load_context(self, context: Any) -> None:
        self.model = load_model(context.artifacts[BUNDLE_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.decide(frame).reset_index(drop=True)


mlflow.models.set_model(PropensityPyfunc())
