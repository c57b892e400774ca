"""Lifetime-value bundles in MLflow: a run per fit, a registered version per bundle, ``models:/`` loading.

A CLV bundle is data, not code (its manifest holds the parameters), so it is registered from the
run's artifacts directly (``<run>/clv_bundle``) instead of as a pyfunc model. The run records the
settings as parameters; the fitted parameters, log-likelihoods, fit seconds and holdout errors as
metrics; and the manifest, ``clv.json`` and ``report.html`` as artifacts. Loading a registered
version downloads it once into ``<home>/registry/`` and verifies its content hash, as for a
classifier (:mod:`propensity.tracking.cache`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from propensity.bundle import MANIFEST_FILE, load_clv_model, verify_clv_bundle
from propensity.clv.model import ClvModel
from propensity.errors import BundleError
from propensity.tracking.cache import _cache_dir
from propensity.tracking.records import TAG, flat_numbers, git_state, param_text
from propensity.tracking.registry import resolve_version
from propensity.tracking.results import TrackingResult
from propensity.tracking.session import (
    ensure_experiment,
    first_line,
    mlflow_error_code,
    open_session,
    run_link,
)
from propensity.tracking.uris import (
    default_model_name,
    display_uri,
    parse_model_ref,
    resolve_tracking_uri,
    validate_model_name,
)

__all__ = ["CLV_ARTIFACT", "load_registered_clv_model", "log_clv"]

log = logging.getLogger(__name__)

CLV_ARTIFACT = "clv_bundle"
_FILES = (MANIFEST_FILE, "clv.json", "report.html")


def log_clv(
    bundle: str | Path,
    *,
    name: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> TrackingResult:
    """Record a saved CLV bundle as an MLflow run and register it as a new version of ``name``.

    Raises
    ------
    BundleError
        ``bundle`` is not a verified CLV bundle.
    TrackingError
        Anything failed on the MLflow side (the bundle on disk is never touched).
    """
    started = time.perf_counter()
    bundle = Path(bundle)
    manifest = verify_clv_bundle(bundle)
    name = validate_model_name(name or manifest.name or default_model_name(bundle))
    uri = resolve_tracking_uri(tracking_uri)
    s = manifest.settings
    params = {
        "kind": "clv",
        "models": ",".join(m.model for m in manifest.models),
        "method": manifest.models[0].method,
        "as_of": s.as_of,
        "holdout_days": s.holdout_days,
        "time_scaler": s.time_scaler,
        "horizon_days": s.horizon_days,
        "discount_rate": s.discount_rate,
        "data_source": manifest.provenance.data_source,
    }
    metrics: dict[str, float] = {"customers": float(manifest.provenance.customers)}
    for m in manifest.models:
        metrics.update(
            flat_numbers(
                m.model, {**m.params, "log_likelihood": m.log_likelihood, "fit_seconds": m.fit_seconds}
            )
        )
    if manifest.holdout:
        metrics.update(flat_numbers("holdout", manifest.holdout["models"]))
    commit, dirty = git_state()
    tags = {
        f"{TAG}kind": "clv",
        f"{TAG}model_version": manifest.model_version,
        f"{TAG}data_hash": manifest.provenance.data_hash,
        "mlflow.source.name": "propensity clv",
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags[f"{TAG}git_dirty"] = str(bool(dirty)).lower()
    with open_session(uri) as session:
        client = session.client
        experiment_name = experiment or name
        experiment_id = ensure_experiment(session, experiment_name)
        run = client.create_run(experiment_id, tags=tags, run_name=f"clv-{manifest.model_version}")
        run_id = run.info.run_id
        try:
            from mlflow.entities import Metric, Param

            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, param_text(v)) for k, v in params.items()],
            )
            with tempfile.TemporaryDirectory(prefix="propensity-clv-") as tmp:
                staged = Path(tmp) / CLV_ARTIFACT
                staged.mkdir()
                for file in _FILES:
                    if (bundle / file).exists():
                        shutil.copy2(bundle / file, staged / file)
                client.log_artifacts(run_id, str(staged), artifact_path=CLV_ARTIFACT)
            try:
                client.create_registered_model(
                    name, tags={f"{TAG}kind": "clv"}, description="propensity lifetime-value bundle."
                )
            except Exception as exc:
                if "ALREADY_EXISTS" not in mlflow_error_code(exc):
                    raise
            version = client.create_model_version(
                name,
                source=f"{run.info.artifact_uri}/{CLV_ARTIFACT}",
                run_id=run_id,
                tags={f"{TAG}model_version": manifest.model_version, f"{TAG}kind": "clv"},
                run_link=run_link(uri, experiment_id, run_id),
                description=f"lifetime value ({params['models']}) fitted on purchases before {s.as_of}",
            )
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
            raise
    return TrackingResult(
        tracking_uri=display_uri(uri),
        experiment_id=experiment_id,
        experiment_name=experiment_name,
        run_id=run_id,
        model_name=name,
        version=int(version.version),
        logged_model_uri=f"runs:/{run_id}/{CLV_ARTIFACT}",
        bundle_version=manifest.model_version,
        run_url=run_link(uri, experiment_id, run_id),
        seconds=round(time.perf_counter() - started, 3),
    )


def load_registered_clv_model(ref: str, *, tracking_uri: str | None = None) -> ClvModel:
    """Load ``models:/name/3`` (or ``@alias``, ``/latest``) of a CLV bundle, verified.

    Raises
    ------
    ModelNotFoundError
        Unknown name, version or alias.
    BundleError
        The version is not a CLV bundle, or it fails verification or differs from the registered one.
    """
    name, selector = parse_model_ref(ref)
    uri = resolve_tracking_uri(tracking_uri)
    with open_session(uri, create=False) as session:
        mv = resolve_version(session, name, selector)
        version = int(mv.version)
        expected = (mv.tags or {}).get(f"{TAG}model_version")
        target = _cache_dir(uri, name, version)
        cached: ClvModel | None = None
        if target.is_dir():
            with contextlib.suppress(BundleError):
                cached = load_clv_model(target)
        if cached is None or (expected and cached.version != expected):
            cached = None
            _download(name, version, target)
    model = cached or load_clv_model(target)
    if expected and model.version != expected:
        raise BundleError(
            f"models:/{name}/{version} was registered with CLV bundle {expected}, but its artifacts hold "
            f"{model.version}. Refusing to load it."
        )
    return model


def _download(name: str, version: int, target: Path) -> Any:
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        try:
            local = Path(
                ModelsArtifactRepository(f"models:/{name}/{version}").download_artifacts("", dst_path=tmp)
            )
        except Exception as exc:
            raise BundleError(
                f"models:/{name}/{version} could not be downloaded ({first_line(exc)})."
            ) from None
        if not (local / MANIFEST_FILE).exists():
            raise BundleError(
                f"models:/{name}/{version} is not a lifetime-value bundle (no {MANIFEST_FILE})."
            )
        if target.exists():
            shutil.rmtree(target)
        os.replace(local, target)
