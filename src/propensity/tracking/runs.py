"""Logging a training run: the parent run, one nested run per candidate, the bundle as an MLflow model."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from propensity.bundle import MANIFEST_FILE, MODEL_FILE, load_model, read_manifest
from propensity.errors import BundleError
from propensity.manifest import Manifest
from propensity.pipeline import TrainedModel
from propensity.tracking.records import (
    TAG,
    dataset_input,
    flat_numbers,
    git_state,
    model_metadata,
    param_text,
    requirement_pins,
    run_metrics,
    run_params,
    run_tags,
    signature_and_example,
    summarize_data,
)
from propensity.tracking.registry import all_versions, check_alias, register_version
from propensity.tracking.results import TrackingResult
from propensity.tracking.session import Session, ensure_experiment, open_session, run_link
from propensity.tracking.uris import (
    default_model_name,
    display_uri,
    resolve_tracking_uri,
    validate_model_name,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities.model_registry import ModelVersion

    from propensity.training.trainer import TrainingRun

__all__ = [
    "BUNDLE_ARTIFACT",
    "BUNDLE_FILES",
    "MAX_RUN_FILE_BYTES",
    "MODEL_ARTIFACT",
    "MODEL_CODE",
    "RUN_FILES",
    "log_training",
    "register_bundle",
]

log = logging.getLogger(__name__)


MODEL_ARTIFACT = "model"

MODEL_CODE = Path(__file__).parents[1] / "mlflow_model.py"  # MLflow executes it; propensity never imports it

BUNDLE_ARTIFACT = "bundle"  # the pyfunc artifact that holds the bundle folder (see mlflow_model.py)

BUNDLE_FILES = (MANIFEST_FILE, MODEL_FILE, "metrics.json", "report.html", "evaluation.json")
"""Files of a bundle folder shipped inside the registered model (scoring files plus the report)."""

RUN_FILES = ("metrics.json", "report.html", "evaluation.json", "quarantine.csv", "quarantine_test.csv")
"""Files of a bundle folder attached to the parent run, when they exist."""

MAX_RUN_FILE_BYTES = 50 * 2**20


def _stage(folder: Path, names: Sequence[str], into: Path, limit: int | None = None) -> list[str]:
    into.mkdir(parents=True, exist_ok=True)
    staged = []
    for name in names:
        src = folder / name
        if not src.is_file():
            continue
        if limit is not None and src.stat().st_size > limit:
            log.warning(
                "Not attaching %s to the run: %d bytes is over the %d-byte limit.",
                src,
                src.stat().st_size,
                limit,
            )
            continue
        shutil.copy2(src, into / name)
        staged.append(name)
    return staged


def log_training(
    model: TrainedModel,
    bundle: str | Path,
    *,
    name: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    train_params: Mapping[str, Any] | None = None,
    alias: str | None = None,
    source: str = "propensity train",
    run: TrainingRun | None = None,
) -> TrackingResult:
    """Record a saved model in MLflow and register its bundle as a new version of ``name``.

    Parameters
    ----------
    model
        The trained (or loaded) model.
    bundle
        Its saved bundle folder; the registered model ships its scoring files and report.
    name
        Registered-model name (default: ``manifest.name``, else the bundle folder's name).
    tracking_uri
        See :func:`resolve_tracking_uri`.
    experiment
        Experiment for the run (default: the model name, so all runs of one model compare).
    train_params
        The training settings as given (recorded as run parameters).
    alias
        Point this alias (e.g. ``champion``) at the new version.
    source
        What recorded it (a tag of the run).
    run
        The in-memory record of the training (timings, tuning, per-candidate fit times), when
        the model was just trained; a bundle registered later has none.

    Returns
    -------
    TrackingResult

    Raises
    ------
    BundleError
        If ``bundle`` is not where ``model`` was saved.
    TrackingError
        If anything fails on the MLflow side; the bundle on disk is never touched.
    """
    start = time.perf_counter()
    bundle = Path(bundle)
    manifest = model.manifest
    on_disk = read_manifest(bundle)
    if not manifest.model_version or on_disk.model_version != manifest.model_version:
        raise BundleError(
            f"'{bundle}' holds bundle {on_disk.model_version or '(none)'}, not this model "
            f"({manifest.model_version or 'unsaved'}): save it first with propensity.save_model(model, path)."
        )
    name = validate_model_name(name or manifest.name or default_model_name(bundle))
    if alias is not None:
        check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    git = git_state()
    with open_session(uri) as session:
        client = session.client
        experiment_name = experiment or name
        experiment_id = ensure_experiment(session, experiment_name)
        parent = client.create_run(experiment_id, tags=run_tags(manifest, name, source, git))
        run_id = parent.info.run_id
        try:
            _log_batch(session, run_id, run_params(manifest, train_params), run_metrics(manifest, run), {})
            client.log_inputs(run_id, datasets=[dataset_input(session, manifest)])
            _log_candidates(session, experiment_id, run_id, manifest, run)
            with tempfile.TemporaryDirectory(prefix="propensity-run-") as tmp:
                files = Path(tmp) / "run"
                _stage(bundle, RUN_FILES, files, limit=MAX_RUN_FILE_BYTES)
                (files / "manifest.json").write_text(manifest.model_dump_json(indent=2))
                (files / "roles.json").write_text(json.dumps(manifest.roles, indent=2, default=str))
                (files / "data_summary.json").write_text(
                    json.dumps(summarize_data(manifest), indent=2, default=str)
                )
                client.log_artifacts(run_id, str(files))
                staged = Path(tmp) / BUNDLE_ARTIFACT
                _stage(bundle, BUNDLE_FILES, staged)
                logged = _log_model(session, run_id, staged, manifest)
            version = register_version(session, name, logged, run_id, manifest, bundle, experiment_id)
            if alias is not None:
                client.set_registered_model_alias(name, alias, str(version.version))
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
        logged_model_uri=logged.model_uri,
        bundle_version=manifest.model_version,
        run_url=run_link(uri, experiment_id, run_id),
        alias=alias,
        seconds=round(time.perf_counter() - start, 3),
    )


def _log_batch(
    session: Session,
    run_id: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    p = [Param(k, v) for k, v in params.items()]
    m = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    t = [RunTag(k, v) for k, v in tags.items()]
    # MLflow's per-request limits: 100 params, 100 tags, 1000 metrics.
    while p or m or t:
        session.client.log_batch(run_id, metrics=m[:900], params=p[:100], tags=t[:100])
        p, m, t = p[100:], m[900:], t[100:]


def _log_candidates(
    session: Session, experiment_id: str, parent_id: str, manifest: Manifest, run: TrainingRun | None
) -> None:
    cv = {c.name: c for c in run.candidates} if run is not None else {}
    for cand in manifest.candidates:
        tags = {
            "mlflow.parentRunId": parent_id,
            "mlflow.runName": cand.name,
            f"{TAG}candidate": cand.name,
            f"{TAG}family": cand.family,
            f"{TAG}is_winner": str(cand.name == manifest.winner).lower(),
            f"{TAG}calibration": cand.calibration,
            f"{TAG}tuned": str(cand.tuned).lower(),
        }
        if cand.error:
            tags[f"{TAG}error"] = cand.error[:5000]
        child = session.client.create_run(experiment_id, tags=tags)
        params = {k: param_text(v) for k, v in cand.params.items()}
        params.update({"family": cand.family, "calibration": cand.calibration, "tuned": str(cand.tuned)})
        if cand.test_source:
            params["test_source"] = cand.test_source
        metrics = {
            **flat_numbers("oof", cand.oof),
            **flat_numbers("test", cand.test),
            "fit_seconds": cand.fit_seconds,
        }
        result = cv.get(cand.name)
        iterations = [i for i in getattr(result, "best_iterations", []) if i is not None]
        if iterations:
            metrics["best_iteration_mean"] = sum(iterations) / len(iterations)
        _log_batch(session, child.info.run_id, params, metrics, {})
        session.client.set_terminated(child.info.run_id, "FAILED" if cand.error else "FINISHED")


def _log_model(session: Session, run_id: str, staged_bundle: Path, manifest: Manifest) -> Any:
    mlflow = session.mlflow
    signature, example = signature_and_example(manifest)
    # Fluent logging needs the run active; nested=True keeps a caller's own active run intact.
    with mlflow.start_run(run_id=run_id, nested=True), _no_package_scan():
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(MODEL_CODE),
            artifacts={BUNDLE_ARTIFACT: str(staged_bundle)},
            signature=signature,
            input_example=example,
            pip_requirements=requirement_pins(manifest),
            metadata=model_metadata(manifest),
        )


@contextlib.contextmanager
def _no_package_scan() -> Iterator[None]:
    """Skip MLflow's module-to-package scan of every installed distribution while logging a model.

    With explicit pins, MLflow still checks them against the environment and, to do so, first
    maps every module of every installed distribution to its package (about 1-3 s in a full
    environment, measured). Our pins are all distribution names, which it resolves with
    ``importlib.metadata.version`` without that map, so an empty map is given for the duration
    (and only when the process has not built the real one; it is put back afterwards).
    """
    from mlflow.utils import requirements_utils

    unset = getattr(requirements_utils, "_MODULES_TO_PACKAGES", "missing") is None
    if unset:
        setattr(requirements_utils, "_MODULES_TO_PACKAGES", {})  # noqa: B010 (private, typed None)
    try:
        yield
    finally:
        if unset:
            setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)  # noqa: B010
            setattr(requirements_utils, "_PACKAGES_TO_MODULES", None)  # noqa: B010


def register_bundle(
    path: str | Path,
    *,
    name: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    alias: str | None = None,
) -> TrackingResult:
    """Register a bundle that was saved without tracking (``--no-tracking``, or the server was down).

    The bundle is verified first. Registering the same bundle (same content hash) under the
    same name again returns the existing version instead of creating a duplicate.

    Raises
    ------
    BundleError
        If ``path`` is not a valid, unmodified bundle.
    TrackingError
        If MLflow fails.
    """
    path = Path(path)
    model = load_model(path)
    name = validate_model_name(name or model.manifest.name or default_model_name(path))
    if alias is not None:
        check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    start = time.perf_counter()
    with open_session(uri) as session:
        existing = _find_bundle_version(session, name, model.version)
        if existing is not None:
            if alias is not None:
                session.client.set_registered_model_alias(name, alias, str(existing.version))
            run_id = existing.run_id or ""
            experiment_id = session.client.get_run(run_id).info.experiment_id if run_id else ""
            experiment_name = session.client.get_experiment(experiment_id).name if experiment_id else ""
            return TrackingResult(
                tracking_uri=display_uri(uri),
                experiment_id=experiment_id,
                experiment_name=experiment_name,
                run_id=run_id,
                model_name=name,
                version=int(existing.version),
                logged_model_uri=existing.source or "",
                bundle_version=model.version,
                run_url=run_link(uri, experiment_id, run_id) if run_id else None,
                alias=alias,
                seconds=round(time.perf_counter() - start, 3),
                already_registered=True,
            )
    return log_training(
        model,
        path,
        name=name,
        tracking_uri=uri,
        experiment=experiment,
        alias=alias,
        source="propensity models register",
    )


def _find_bundle_version(session: Session, name: str, bundle_version: str) -> ModelVersion | None:
    for mv in all_versions(session, name):
        if (mv.tags or {}).get(f"{TAG}model_version") == bundle_version:
            return mv
    return None
