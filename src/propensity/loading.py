"""Find a trained model by reference: a bundle folder or a registry URI.

The one place the edges (CLI, service, dashboard, stream scorer) and the application layer
(:mod:`propensity.workflows`) turn what a user typed into a verified :class:`TrainedModel`.
"""

from __future__ import annotations

from pathlib import Path

from propensity.bundle import load_clv_model, load_model
from propensity.clv.model import ClvModel
from propensity.pipeline import TrainedModel

__all__ = ["ModelRef", "resolve_clv_model", "resolve_model"]

#: What every entry point accepts as "the model".
ModelRef = str | Path | TrainedModel


def resolve_model(ref: ModelRef, *, tracking_uri: str | None = None) -> TrainedModel:
    """Load a model from a bundle folder or a registry URI (``models:/name/3``, ``models:/name@alias``).

    Registry URIs are looked up in ``tracking_uri`` (default: ``PROPENSITY_TRACKING_URI``,
    ``MLFLOW_TRACKING_URI``, else the embedded store); see
    :func:`propensity.tracking.load_registered_model`. A model passed in is returned as it is.

    Raises
    ------
    BundleError
        The folder is not a valid bundle (content hash, schema version, files).
    ModelNotFoundError
        The registry has no such model, version or alias.
    """
    if isinstance(ref, TrainedModel):
        return ref
    text = str(ref)
    if text.startswith("models:/"):
        from propensity.tracking import load_registered_model  # MLflow only when a registry is named

        return load_registered_model(text, tracking_uri=tracking_uri)
    return load_model(Path(text))


def resolve_clv_model(ref: str | Path | ClvModel, *, tracking_uri: str | None = None) -> ClvModel:
    """Load a lifetime-value bundle from a folder or a registry URI, verified like :func:`resolve_model`.

    Raises
    ------
    BundleError
        Not a CLV bundle, or its content hash does not match.
    ModelNotFoundError
        The registry has no such model, version or alias.
    """
    if isinstance(ref, ClvModel):
        return ref
    text = str(ref)
    if text.startswith("models:/"):
        from propensity.tracking.clv import load_registered_clv_model

        return load_registered_clv_model(text, tracking_uri=tracking_uri)
    return load_clv_model(Path(text))
