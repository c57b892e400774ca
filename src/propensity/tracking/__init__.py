"""Experiment tracking and the model registry, on MLflow.

Every training run with a bundle folder is recorded: a parent run with the data summary,
column roles, training parameters, metrics and the bundle's report files as artifacts; one
nested run per candidate with its out-of-fold metrics and fit time; tags for the data hash,
seed, git commit and library versions. The bundle itself is logged as an MLflow pyfunc model
(see :mod:`propensity.mlflow_model`) and registered under a name, so it can be addressed as
``models:/shoppers/3`` or ``models:/shoppers@champion`` wherever a model is accepted.

Where runs go (first match wins):

1. the ``tracking_uri`` argument (``--tracking-uri``);
2. ``PROPENSITY_TRACKING_URI``;
3. ``MLFLOW_TRACKING_URI``;
4. the embedded store: SQLite at ``.propensity/mlflow.db`` with artifacts in
   ``.propensity/mlartifacts`` under the working directory (``PROPENSITY_HOME`` moves it).

MLflow is imported only when a function here needs it (``import mlflow`` takes seconds), and
its telemetry is switched off unless ``MLFLOW_DISABLE_TELEMETRY`` says otherwise. Every MLflow
failure (server down, disk full, a locked database) surfaces as one
:class:`~propensity.errors.TrackingError` naming the store; a missing name, version or alias
as :class:`~propensity.errors.ModelNotFoundError` listing what exists.

**A registered model is code**, like a bundle: loading one unpickles ``model.joblib``. Load
only from a registry you trust. The bundle's content hash is verified on every load.

Modules:

- :mod:`~propensity.tracking.uris` — which store (the order above), model names and ``models:/`` references;
- :mod:`~propensity.tracking.session` — one MLflow session, failures as :class:`TrackingError`;
- :mod:`~propensity.tracking.records` — what a run records (parameters, metrics, tags, signature);
- :mod:`~propensity.tracking.runs` — :func:`log_training`;
- :mod:`~propensity.tracking.registry` — :func:`register_bundle`, :func:`list_models`, :func:`show_model`, :func:`promote`;
- :mod:`~propensity.tracking.cache` — :func:`load_registered_model` through the local cache;
- :mod:`~propensity.tracking.ui` — :func:`ui_command`;
- :mod:`~propensity.tracking.results` — the result records.
"""

from __future__ import annotations

from propensity.tracking.cache import load_registered_model
from propensity.tracking.records import git_state
from propensity.tracking.registry import list_models, promote, show_model
from propensity.tracking.results import (
    DEFAULT_ALIAS,
    TRACKING_FILE,
    ModelVersionInfo,
    PromoteResult,
    RegisteredModelInfo,
    TrackingFailure,
    TrackingResult,
)
from propensity.tracking.runs import log_training, register_bundle
from propensity.tracking.ui import ui_command
from propensity.tracking.uris import (
    default_model_name,
    display_uri,
    embedded_tracking_uri,
    parse_model_ref,
    resolve_tracking_uri,
    validate_model_name,
)

__all__ = [
    "DEFAULT_ALIAS",
    "TRACKING_FILE",
    "ModelVersionInfo",
    "PromoteResult",
    "RegisteredModelInfo",
    "TrackingFailure",
    "TrackingResult",
    "default_model_name",
    "display_uri",
    "embedded_tracking_uri",
    "git_state",
    "list_models",
    "load_registered_model",
    "log_training",
    "parse_model_ref",
    "promote",
    "register_bundle",
    "resolve_tracking_uri",
    "show_model",
    "ui_command",
    "validate_model_name",
]
