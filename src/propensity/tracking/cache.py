"""Load a registered version: downloaded once into the local cache, verified like a bundle folder."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from propensity.bundle import load_model, read_manifest
from propensity.config import get_settings
from propensity.errors import BundleError
from propensity.pipeline import TrainedModel
from propensity.tracking.records import TAG
from propensity.tracking.registry import resolve_version
from propensity.tracking.runs import BUNDLE_ARTIFACT
from propensity.tracking.session import Session, first_line, open_session
from propensity.tracking.uris import display_uri, parse_model_ref, resolve_tracking_uri

__all__ = ["load_registered_model"]

log = logging.getLogger(__name__)


def _cache_dir(uri: str, name: str, version: int) -> Path:
    key = hashlib.sha256(uri.encode()).hexdigest()[:12]
    return Path(get_settings().home).absolute() / "registry" / key / name / str(version)


def load_registered_model(ref: str, *, tracking_uri: str | None = None) -> TrainedModel:
    """Load ``models:/name/3``, ``models:/name@champion`` or ``models:/name/latest`` as a verified model.

    The version's bundle is downloaded once into ``<home>/registry/`` and loaded with
    :func:`propensity.bundle.load_model`, so its content hash is checked on every load, and it
    must be the bundle the registry recorded for that version.

    Raises
    ------
    ModelNotFoundError
        Unknown name, version or alias (the message lists what exists).
    BundleError
        The version holds no propensity bundle, or its bundle fails verification.
    TrackingError
        The store cannot be reached.
    """
    name, selector = parse_model_ref(ref)
    uri = resolve_tracking_uri(tracking_uri)
    with open_session(uri, create=False) as session:
        mv = resolve_version(session, name, selector)
        version = int(mv.version)
        expected = (mv.tags or {}).get(f"{TAG}model_version")
        target = _cache_dir(uri, name, version)
        model = None
        if target.is_dir() and expected and _cached_version(target) == expected:
            try:
                model = load_model(target)
            except BundleError:  # a damaged cache copy: fetch it again from the registry
                log.warning(
                    "The cached copy of models:/%s/%s in %s fails verification; downloading it again.",
                    name,
                    version,
                    target,
                )
        if model is None:
            _download_bundle(session, name, version, target)
    if model is None:
        try:
            model = load_model(target)
        except BundleError as exc:
            raise BundleError(f"models:/{name}/{version} fails verification: {exc}") from exc
    if expected and model.version != expected:
        raise BundleError(
            f"models:/{name}/{version} was registered with bundle {expected}, but its artifacts hold bundle "
            f"{model.version}. Refusing to load it; re-register the model."
        )
    log.info("Loaded models:/%s/%s (bundle %s) from %s", name, version, model.version, display_uri(uri))
    return model


def _cached_version(folder: Path) -> str | None:
    try:
        return read_manifest(folder).model_version
    except BundleError:
        return None


def _download_bundle(session: Session, name: str, version: int, target: Path) -> None:
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        repo = ModelsArtifactRepository(f"models:/{name}/{version}")
        try:
            local = Path(repo.download_artifacts(f"artifacts/{BUNDLE_ARTIFACT}", dst_path=tmp))
        except Exception as exc:
            raise BundleError(
                f"models:/{name}/{version} is not a propensity model: it has no '{BUNDLE_ARTIFACT}' artifact "
                f"({first_line(exc)})."
            ) from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(local, target)
