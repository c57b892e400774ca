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
"""

from __future__ import annotations

import contextlib
import difflib
import getpass
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import getproxies, proxy_bypass

from propensity.bundle import MANIFEST_FILE, MODEL_FILE, load_model, read_manifest
from propensity.config import get_settings
from propensity.errors import BundleError, ModelNotFoundError, ParameterError, PropensityError, TrackingError
from propensity.manifest import Manifest
from propensity.pipeline import TrainedModel

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

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

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "champion"
TRACKING_FILE = "tracking.json"
"""Written beside the bundle after training: where the run went, or why it did not."""

MODEL_ARTIFACT = "model"
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")  # MLflow executes it; propensity never imports it
BUNDLE_ARTIFACT = "bundle"  # the pyfunc artifact that holds the bundle folder (see mlflow_model.py)
BUNDLE_FILES = (MANIFEST_FILE, MODEL_FILE, "metrics.json", "report.html", "evaluation.json")
"""Files of a bundle folder shipped inside the registered model (scoring files plus the report)."""
RUN_FILES = ("metrics.json", "report.html", "evaluation.json", "quarantine.csv", "quarantine_test.csv")
"""Files of a bundle folder attached to the parent run, when they exist."""
MAX_RUN_FILE_BYTES = 50 * 2**20

TAG = "propensity."
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
HEADLINE_METRICS = ("test_roc_auc", "test_pr_auc", "oof_pr_auc")

# Applied only while propensity talks to MLflow, and only when the user has not set them:
# no progress bars in our output, and a dead server fails in seconds rather than after
# MLflow's default of 7 retries with exponential back-off (minutes).
_ENV_DEFAULTS = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


# --------------------------------------------------------------------------- results


@dataclass
class TrackingResult:
    """Where a training run was recorded and under which name and version the model was registered."""

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    run_id: str
    model_name: str
    version: int
    logged_model_uri: str
    bundle_version: str
    run_url: str | None = None
    alias: str | None = None
    seconds: float = 0.0
    already_registered: bool = False

    @property
    def model_uri(self) -> str:
        """The registry address of this version, e.g. ``models:/shoppers/3``."""
        return f"models:/{self.model_name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"status": "logged", **asdict(self), "model_uri": self.model_uri}


@dataclass
class TrackingFailure:
    """Tracking failed after the bundle was saved: the model is safe on disk, and how to register it."""

    tracking_uri: str
    error: str
    bundle: str
    register_command: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": "failed", **asdict(self)}


@dataclass
class ModelVersionInfo:
    """One registered version, with the headline facts propensity tags it with."""

    name: str
    version: int
    aliases: list[str]
    created: str
    run_id: str | None
    status: str
    bundle_version: str | None
    winner: str | None
    target: str | None
    metrics: dict[str, float]
    description: str = ""
    source: str = ""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uri": self.uri}


@dataclass
class RegisteredModelInfo:
    """A registered model: its versions (newest first) and aliases."""

    name: str
    created: str
    updated: str
    description: str
    aliases: dict[str, int]
    versions: list[ModelVersionInfo] = field(default_factory=list)

    @property
    def is_propensity(self) -> bool:
        """True when at least one version carries a propensity bundle."""
        return any(v.bundle_version for v in self.versions)

    @property
    def latest(self) -> ModelVersionInfo | None:
        return self.versions[0] if self.versions else None

    def headline(self) -> ModelVersionInfo | None:
        """The version a reader cares about first: the champion if there is one, else the newest."""
        if DEFAULT_ALIAS in self.aliases:
            for v in self.versions:
                if v.version == self.aliases[DEFAULT_ALIAS]:
                    return v
        return self.latest

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "updated": self.updated,
            "description": self.description,
            "aliases": self.aliases,
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass
class PromoteResult:
    """What ``promote`` changed: ``alias`` now points at ``version`` (it pointed at ``previous``)."""

    name: str
    version: int
    alias: str
    previous: int | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


# --------------------------------------------------------------------------- names and URIs


def embedded_tracking_uri(home: str | Path | None = None) -> str:
    """The embedded store: ``sqlite:///<abs home>/mlflow.db`` (home defaults to ``PROPENSITY_HOME``)."""
    folder = Path(home) if home is not None else get_settings().home
    return "sqlite:///" + str((folder / "mlflow.db").absolute())


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI to use: the argument, ``PROPENSITY_TRACKING_URI``, ``MLFLOW_TRACKING_URI``, embedded."""
    for candidate in (tracking_uri, get_settings().tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")):
        if candidate and candidate.strip():
            return candidate.strip()
    return embedded_tracking_uri()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    raw = unquote(uri[len("sqlite:///") :]).split("?", 1)[0]
    return Path(raw).absolute() if raw and raw != ":memory:" else None


def _is_http(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def _artifact_location(uri: str) -> str | None:
    """Artifact folder for experiments propensity creates in a SQLite store: beside the database.

    Without this MLflow would put them in ``./mlruns`` of whatever directory the first run
    happened to start in. Servers and other stores decide for themselves (``None``).
    """
    db = _sqlite_path(uri)
    return (db.parent / "mlartifacts").as_uri() if db is not None else None


def display_uri(uri: str) -> str:
    """A URI without credentials, for messages."""
    parsed = urlparse(uri)
    if parsed.password:
        netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return parsed._replace(netloc=netloc).geturl()
    return uri


def validate_model_name(name: str) -> str:
    """Check a registered-model name: letters, digits, ``_ . -``; it must start with a letter or digit.

    Raises
    ------
    ParameterError
        With the name and the allowed characters.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ParameterError(
            f"The model name must be 1-100 characters of letters, digits, '_', '.' or '-', starting with a "
            f"letter or digit (it appears in models:/NAME/VERSION). Got {name!r} instead."
        )
    return name


def default_model_name(out: str | Path) -> str:
    """A registered-model name derived from a bundle folder: ``models/shoppers`` gives ``shoppers``."""
    stem = Path(out).absolute().name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-_.")[:100]
    return cleaned or "model"


def parse_model_ref(ref: str) -> tuple[str, int | str]:
    """Split ``models:/name/3``, ``models:/name@alias`` or ``models:/name/latest`` (``models:/`` optional).

    Returns
    -------
    (name, selector)
        ``selector`` is a version number, ``"latest"`` or ``"@alias"``.

    Raises
    ------
    ParameterError
        If the reference has neither a version nor an alias.
    """
    text = ref.strip()
    body = text[len("models:/") :] if text.startswith("models:/") else text
    body = body.strip("/")
    if "@" in body:
        name, alias = body.split("@", 1)
        if name and alias and "/" not in name:
            return name, "latest" if alias == "latest" else "@" + alias
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        if name and "/" not in name and (version.isdigit() or version == "latest"):
            return name, int(version) if version.isdigit() else "latest"
    raise ParameterError(
        f"Cannot read the model reference {ref!r}: use models:/NAME/VERSION (e.g. models:/shoppers/3), "
        "models:/NAME@ALIAS (e.g. models:/shoppers@champion) or models:/NAME/latest."
    )


def _parse_name_selector(ref: str) -> tuple[str, int | str | None]:
    """Like :func:`parse_model_ref` but a bare name is allowed (selector ``None``)."""
    body = ref.strip()
    body = body[len("models:/") :] if body.startswith("models:/") else body
    if "@" not in body and "/" not in body.strip("/"):
        return body.strip("/"), None
    return parse_model_ref(ref)


# --------------------------------------------------------------------------- git and environment


def git_state(path: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git repository containing ``path`` (default: the working directory).

    ``(None, None)`` outside a repository or without git. "Dirty" means tracked files have
    uncommitted changes, so the commit alone does not reproduce the code.
    """
    cwd = str(path) if path is not None else None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or None, dirty


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _pip_requirements(manifest: Manifest) -> list[str]:
    """Explicit pins for the logged model (MLflow's own inference would cost ~6 s per model).

    Libraries the pickle depends on are pinned to the versions the model was trained with;
    the rest to what is installed now.
    """
    trained = manifest.provenance.versions
    dists = ["propensity", "mlflow", "numpy", "pandas", "scikit-learn", "scipy", "joblib", "lightgbm"]
    dists += ["pyarrow", "pydantic", "pydantic-settings"]
    families = {c.family for c in manifest.candidates if c.name == manifest.winner}
    if "xgboost" in families:
        dists.append("xgboost-cpu" if _installed("xgboost-cpu") else "xgboost")
    pins = []
    for dist in dists:
        version = trained.get(dist) or _installed(dist)
        pins.append(f"{dist}=={version}" if version else dist)
    return pins


# --------------------------------------------------------------------------- the MLflow session


def _import_mlflow() -> ModuleType:
    # Telemetry is off unless the user opted in; it must be decided before mlflow is imported.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - the tracking extra is part of [all]
        raise TrackingError(
            "MLflow is not installed, so runs cannot be tracked: pip install 'propensity[tracking]' "
            "(or train with --no-tracking)."
        ) from exc
    return mlflow


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 400 else line[:400] + "…"


def _check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (seconds, not minutes of retries) when an HTTP tracking server does not answer."""
    parsed = urlparse(uri)
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if parsed.scheme in getproxies() and not proxy_bypass(host):
        return  # reached through a proxy: a direct connection says nothing; MLflow's own (bounded) retries decide
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except socket.gaierror as exc:
        reason = f"the host name '{host}' does not resolve ({exc.strerror})"
    except TimeoutError:
        reason = f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as exc:
        reason = f"{exc.strerror or exc} at {host}:{port}"
    raise TrackingError(
        f"Cannot reach the MLflow tracking server at {display_uri(uri)}: {reason}. Start it, fix "
        "--tracking-uri / PROPENSITY_TRACKING_URI / MLFLOW_TRACKING_URI, or pass --no-tracking."
    )


@dataclass
class _Session:
    mlflow: Any
    client: MlflowClient
    uri: str


@contextlib.contextmanager
def _session(uri: str, *, create: bool = True) -> Iterator[_Session]:
    """Talk to one MLflow store; restore MLflow's global state and the environment afterwards.

    MLflow's model logging reads the *global* tracking URI, so it is set for the duration and
    put back (a notebook's own ``mlflow.set_tracking_uri`` survives a ``propensity.train``).
    Any failure becomes a :class:`TrackingError` naming the store.
    """
    shown = display_uri(uri)
    db = _sqlite_path(uri)
    if db is not None and not create and not db.exists():
        raise ModelNotFoundError(
            f"No models are registered yet: the tracking store {db} does not exist (runs are recorded by "
            "`propensity train` in the working directory's .propensity/; set PROPENSITY_TRACKING_URI to "
            "use another store)."
        )
    if _is_http(uri):
        _check_reachable(uri)
    mlflow = _import_mlflow()
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {k: os.environ.get(k) for k in (*_ENV_DEFAULTS, "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved_uris = (
        getattr(tracking_utils, "_tracking_uri", None),
        getattr(registry_utils, "_registry_uri", None),
    )
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    saved_levels = [lg.level for lg in loggers]
    try:
        for key, value in _ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        for lg in loggers:
            if lg.getEffectiveLevel() < logging.WARNING:
                lg.setLevel(logging.WARNING)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield _Session(mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), uri)
    except PropensityError:
        raise
    except Exception as exc:
        reason = _first_line(exc)
        password = urlparse(uri).password
        if password:
            reason = reason.replace(password, "***")
        raise TrackingError(f"MLflow tracking at {shown} failed: {reason}") from exc
    finally:
        # Assign the saved globals directly: set_tracking_uri(None) would also delete the
        # user's MLFLOW_TRACKING_URI from the environment.
        if hasattr(tracking_utils, "_tracking_uri"):
            setattr(tracking_utils, "_tracking_uri", saved_uris[0])  # noqa: B010 (private, typed str)
        if hasattr(registry_utils, "_registry_uri"):
            setattr(registry_utils, "_registry_uri", saved_uris[1])  # noqa: B010
        for env_key, saved in saved_env.items():
            if saved is None:
                os.environ.pop(env_key, None)
            else:
                os.environ[env_key] = saved
        for lg, level in zip(loggers, saved_levels, strict=True):
            lg.setLevel(level)


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


def _experiment(session: _Session, name: str) -> str:
    client = session.client
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return str(client.create_experiment(name, artifact_location=_artifact_location(session.uri)))
        except Exception as exc:  # created by a concurrent run in the meantime
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise exc from None
    if exp.lifecycle_stage == "deleted":
        log.warning("Experiment '%s' was deleted; restoring it to record this run.", name)
        client.restore_experiment(exp.experiment_id)
    return str(exp.experiment_id)


def _run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    if _is_http(uri):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return None


# --------------------------------------------------------------------------- what a run records


def _flat_numbers(prefix: str, data: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flat_numbers(name, value))
        elif isinstance(value, (int, float)) and math.isfinite(float(value)):  # bool is an int
            out[name] = float(value)
    return out


def _param_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple, set)):
        text = ",".join(map(str, value))
    elif isinstance(value, Mapping):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= 6000 else text[:5990] + "…"


def _run_params(manifest: Manifest, train_params: Mapping[str, Any] | None) -> dict[str, str]:
    prov, policy = manifest.provenance, manifest.policy
    features = manifest.input_schema.features
    params: dict[str, Any] = {
        "target": manifest.task.target,
        "positive": manifest.task.positive,
        "id_column": manifest.input_schema.id_column,
        "folds": prov.folds,
        "seed": prov.seed,
        "metric": prov.metric,
        "time_budget": prov.time_budget,
        "trials": prov.trials,
        "policy": policy.kind,
        **{f"policy_{k}": v for k, v in policy.params.items()},
        "winner": manifest.winner,
        "calibration": manifest.calibration.method,
        "candidates": [c.name for c in manifest.candidates],
        "n_features": len(features),
        "features": [f.name for f in features],
        "excluded": [f"{e.name} ({e.role})" for e in manifest.input_schema.excluded],
    }
    for key, value in (train_params or {}).items():
        if key == "policy" and isinstance(value, Mapping):
            params.update({f"policy_{k}": v for k, v in value.items() if v is not None and k != "kind"})
        elif key == "roles":
            params["role_overrides"] = dict(value) if value else "none"
        elif key not in params or params[key] in (None, ""):
            params[key] = value
    return {k: _param_text(v) for k, v in params.items()}


def _run_metrics(manifest: Manifest, run: Any) -> dict[str, float]:
    prov = manifest.provenance
    metrics: dict[str, float] = {}
    metrics.update(_flat_numbers("oof", manifest.metrics.get("oof")))
    metrics.update(_flat_numbers("test", manifest.metrics.get("test")))
    metrics["threshold"] = float(manifest.policy.threshold)
    metrics.update(_flat_numbers("policy", manifest.policy.expected))
    metrics.update(_flat_numbers("calibration_before", manifest.calibration.before))
    metrics.update(_flat_numbers("calibration_after", manifest.calibration.after))
    metrics.update(
        {
            "rows_in": prov.rows_in,
            "rows_quarantined": prov.rows_quarantined,
            "rows_used": prov.rows_used,
            "rows_train": prov.rows_train,
            "rows_test": prov.rows_test,
            "positive_rate": manifest.task.positive_rate,
            "n_candidates": len(manifest.candidates),
        }
    )
    if run is not None:
        metrics.update(_flat_numbers("seconds", getattr(run, "timings", None)))
        tuning = getattr(run, "tuning", None) or {}
        metrics.update(_flat_numbers("tuning", {k: v for k, v in tuning.items() if k != "best_params"}))
    return metrics


def _run_tags(
    manifest: Manifest, name: str, source: str, git: tuple[str | None, bool | None]
) -> dict[str, str]:
    prov = manifest.provenance
    commit, dirty = git
    tags = {
        "mlflow.runName": f"{name}-{manifest.model_version}",
        "mlflow.source.name": source,
        "mlflow.source.type": "LOCAL",
        "mlflow.note.content": _run_note(manifest, name),
        f"{TAG}model_name": name,
        f"{TAG}model_version": manifest.model_version,
        f"{TAG}data_hash": prov.data_hash,
        f"{TAG}data_source": prov.data_source[:5000],
        f"{TAG}seed": str(prov.seed),
        f"{TAG}target": manifest.task.target,
        f"{TAG}positive": manifest.task.positive,
        f"{TAG}winner": manifest.winner,
        f"{TAG}created_at": prov.created_at,
        f"{TAG}python": prov.python,
        f"{TAG}platform": prov.platform,
        **{f"{TAG}version.{pkg}": v for pkg, v in prov.versions.items()},
    }
    with contextlib.suppress(Exception):
        tags["mlflow.user"] = getpass.getuser()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags[f"{TAG}git_commit"] = commit
        if dirty is not None:
            tags[f"{TAG}git_dirty"] = str(dirty).lower()
    return tags


def _headline(manifest: Manifest) -> dict[str, float]:
    numbers = {
        **_flat_numbers("oof", manifest.metrics.get("oof")),
        **_flat_numbers("test", manifest.metrics.get("test")),
    }
    return {k: numbers[k] for k in HEADLINE_METRICS if k in numbers}


def _run_note(manifest: Manifest, name: str) -> str:
    test = manifest.metrics.get("test") or {}
    prov = manifest.provenance

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, (int, float)) else "–"

    return (
        f"**{name}**: {manifest.winner} predicting `{manifest.task.target}` = {manifest.task.positive!r} "
        f"(bundle {manifest.model_version}).\n\n"
        f"Test ROC-AUC {fmt(test.get('roc_auc'))}, PR-AUC {fmt(test.get('pr_auc'))}; threshold "
        f"{manifest.policy.threshold:.4f} ({manifest.policy.rationale}).\n\n"
        f"Data: {prov.data_source} (sha256 {prov.data_hash[:12]}…), {prov.rows_in} rows, "
        f"{prov.rows_quarantined} quarantined, {prov.rows_train} train, {prov.rows_test} test; seed {prov.seed}."
    )


def _data_summary(manifest: Manifest) -> dict[str, Any]:
    prov = manifest.provenance
    by_role: dict[str, int] = {}
    for f in manifest.input_schema.features:
        by_role[f.role] = by_role.get(f.role, 0) + 1
    return {
        "source": prov.data_source,
        "sha256": prov.data_hash,
        "rows": {
            "in": prov.rows_in,
            "quarantined": prov.rows_quarantined,
            "used": prov.rows_used,
            "train": prov.rows_train,
            "test": prov.rows_test,
        },
        "test_source": prov.test_source,
        "target": manifest.task.model_dump(),
        "id_column": manifest.input_schema.id_column,
        "features_by_role": by_role,
        "features": [
            {
                "name": f.name,
                "role": f.role,
                "dtype": f.dtype,
                "required": f.required,
                "missing": f.missing_share,
            }
            for f in manifest.input_schema.features
        ],
        "excluded": [e.model_dump() for e in manifest.input_schema.excluded],
        "quarantine_reasons": prov.quarantine_reasons,
    }


_MLFLOW_TYPES = {"int": "long", "float": "double", "bool": "boolean", "datetime64": "datetime"}


def _mlflow_type(dtype: str, role: str) -> str:
    if role == "categorical":
        return "string"
    for prefix, kind in _MLFLOW_TYPES.items():
        if dtype.startswith(prefix):
            return kind
    return "string" if dtype == "object" else "double"


def _dataset_input(session: _Session, manifest: Manifest) -> Any:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    prov = manifest.provenance
    source = prov.data_source.split(" (test:")[0]
    is_file = source != "DataFrame"
    columns = [
        {"name": f.name, "type": _mlflow_type(f.dtype, f.role), "required": f.required}
        for f in manifest.input_schema.features
    ]
    dataset = Dataset(
        name=Path(source).name if is_file else "training DataFrame",
        digest=prov.data_hash[:16],
        source_type="local" if is_file else "code",
        source=json.dumps({"uri": str(Path(source).absolute())} if is_file else {"tags": {}}),
        schema=json.dumps({"mlflow_colspec": columns}),
        profile=json.dumps(
            {
                "num_rows": prov.rows_in,
                "rows_used": prov.rows_used,
                "rows_quarantined": prov.rows_quarantined,
                "positive_rate": manifest.task.positive_rate,
            }
        ),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


def _signature_and_example(manifest: Manifest) -> tuple[Any, Any]:
    """Input signature and a synthetic example, both from the manifest.

    Column types are ``Any``: the model validates and coerces its input itself (numbers as
    text, ``yes``/``no`` flags, date strings) and quarantines what it cannot read, while
    MLflow's strict types would refuse an ``int64`` column for a ``double`` feature. The
    precise types are in the model metadata. The example is built from the training profile
    (medians, frequent levels), so no customer's row is copied into the registry.
    """
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    specs = manifest.input_schema.features
    columns: list[Any] = [ColSpec(AnyType(), f.name, required=f.required) for f in specs]
    id_column = manifest.input_schema.id_column
    if id_column:
        columns.append(ColSpec(AnyType(), id_column, required=False))
    example: dict[str, list[Any]] = {}
    for f in specs:
        prof = manifest.profile.get(f.name, {})
        if f.role in ("numeric", "boolean"):
            qs = prof.get("quantiles", {})
            values = [qs.get(q, f.min if f.min is not None else 0.0) for q in ("0.25", "0.5", "0.75")]
            if f.role == "boolean" or f.integer:
                example[f.name] = [round(float(v)) for v in values]
            else:
                example[f.name] = [float(v) for v in values]
        elif f.role == "categorical":
            levels = list(prof.get("top", {})) or list(f.categories or []) or ["other"]
            example[f.name] = [levels[i % len(levels)] for i in range(3)]
        else:  # datetime
            low, high = prof.get("min"), prof.get("max")
            stamps = [s for s in (low, high) if s] or ["2024-01-01"]
            example[f.name] = [str(stamps[i % len(stamps)])[:19] for i in range(3)]
    if id_column:
        example[id_column] = ["example-1", "example-2", "example-3"]
    return ModelSignature(inputs=Schema(columns)), pd.DataFrame(example)


def _model_metadata(manifest: Manifest) -> dict[str, Any]:
    return {
        "propensity": {
            "bundle_version": manifest.model_version,
            "target": manifest.task.target,
            "positive": manifest.task.positive,
            "winner": manifest.winner,
            "threshold": manifest.policy.threshold,
            "id_column": manifest.input_schema.id_column,
            "features": [
                {"name": f.name, "role": f.role, "dtype": f.dtype, "required": f.required}
                for f in manifest.input_schema.features
            ],
            "output": ["probability", "decision", "band"],
        }
    }


def _version_tags(manifest: Manifest, bundle: Path) -> dict[str, str]:
    tags = {
        f"{TAG}model_version": manifest.model_version,
        f"{TAG}winner": manifest.winner,
        f"{TAG}target": manifest.task.target,
        f"{TAG}positive": manifest.task.positive,
        f"{TAG}data_hash": manifest.provenance.data_hash,
        f"{TAG}threshold": f"{manifest.policy.threshold:.6f}",
        f"{TAG}bundle_path": str(bundle.absolute()),
    }
    tags.update({f"{TAG}{k}": f"{v:.6f}" for k, v in _headline(manifest).items()})
    return tags


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


# --------------------------------------------------------------------------- logging a training run


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
) -> TrackingResult:
    """Record a saved model in MLflow and register its bundle as a new version of ``name``.

    Parameters
    ----------
    model
        The trained (or loaded) model; ``model.run`` (timings, tuning, per-candidate CV
        results) is recorded when present.
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
        _check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    git = git_state()
    run = getattr(model, "run", None)
    with _session(uri) as session:
        client = session.client
        experiment_name = experiment or name
        experiment_id = _experiment(session, experiment_name)
        parent = client.create_run(experiment_id, tags=_run_tags(manifest, name, source, git))
        run_id = parent.info.run_id
        try:
            _log_batch(session, run_id, _run_params(manifest, train_params), _run_metrics(manifest, run), {})
            client.log_inputs(run_id, datasets=[_dataset_input(session, manifest)])
            _log_candidates(session, experiment_id, run_id, manifest, run)
            with tempfile.TemporaryDirectory(prefix="propensity-run-") as tmp:
                files = Path(tmp) / "run"
                _stage(bundle, RUN_FILES, files, limit=MAX_RUN_FILE_BYTES)
                (files / "manifest.json").write_text(manifest.model_dump_json(indent=2))
                (files / "roles.json").write_text(json.dumps(manifest.roles, indent=2, default=str))
                (files / "data_summary.json").write_text(
                    json.dumps(_data_summary(manifest), indent=2, default=str)
                )
                client.log_artifacts(run_id, str(files))
                staged = Path(tmp) / BUNDLE_ARTIFACT
                _stage(bundle, BUNDLE_FILES, staged)
                logged = _log_model(session, run_id, staged, manifest)
            version = _register(session, name, logged, run_id, manifest, bundle, experiment_id)
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
        run_url=_run_url(uri, experiment_id, run_id),
        alias=alias,
        seconds=round(time.perf_counter() - start, 3),
    )


def _log_batch(
    session: _Session,
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
    session: _Session, experiment_id: str, parent_id: str, manifest: Manifest, run: Any
) -> None:
    cv = {c.name: c for c in getattr(run, "candidates", None) or []}
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
        params = {k: _param_text(v) for k, v in cand.params.items()}
        params.update({"family": cand.family, "calibration": cand.calibration, "tuned": str(cand.tuned)})
        if cand.test_source:
            params["test_source"] = cand.test_source
        metrics = {
            **_flat_numbers("oof", cand.oof),
            **_flat_numbers("test", cand.test),
            "fit_seconds": cand.fit_seconds,
        }
        result = cv.get(cand.name)
        iterations = [i for i in getattr(result, "best_iterations", []) if i is not None]
        if iterations:
            metrics["best_iteration_mean"] = sum(iterations) / len(iterations)
        _log_batch(session, child.info.run_id, params, metrics, {})
        session.client.set_terminated(child.info.run_id, "FAILED" if cand.error else "FINISHED")


def _log_model(session: _Session, run_id: str, staged_bundle: Path, manifest: Manifest) -> Any:
    mlflow = session.mlflow
    signature, example = _signature_and_example(manifest)
    # Fluent logging needs the run active; nested=True keeps a caller's own active run intact.
    with mlflow.start_run(run_id=run_id, nested=True), _no_package_scan():
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(MODEL_CODE),
            artifacts={BUNDLE_ARTIFACT: str(staged_bundle)},
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(manifest),
            metadata=_model_metadata(manifest),
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


def _register(
    session: _Session,
    name: str,
    logged: Any,
    run_id: str,
    manifest: Manifest,
    bundle: Path,
    experiment_id: str,
) -> ModelVersion:
    client = session.client
    try:
        client.create_registered_model(
            name,
            tags={f"{TAG}target": manifest.task.target},
            description=f"propensity model predicting {manifest.task.target} = {manifest.task.positive!r}.",
        )
    except Exception as exc:
        if "ALREADY_EXISTS" not in _error_code(exc):
            raise
    note = _run_note(manifest, name).replace("**", "")
    return client.create_model_version(
        name,
        source=logged.model_uri,
        run_id=run_id,
        tags=_version_tags(manifest, bundle),
        run_link=_run_url(session.uri, experiment_id, run_id),
        description=note,
        model_id=getattr(logged, "model_id", None),
    )


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
        _check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    start = time.perf_counter()
    with _session(uri) as session:
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
                run_url=_run_url(uri, experiment_id, run_id) if run_id else None,
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


def _find_bundle_version(session: _Session, name: str, bundle_version: str) -> ModelVersion | None:
    for mv in _all_versions(session, name):
        if (mv.tags or {}).get(f"{TAG}model_version") == bundle_version:
            return mv
    return None


# --------------------------------------------------------------------------- the registry


def _all_versions(session: _Session, name: str | None = None) -> list[ModelVersion]:
    filter_string = f"name = '{name}'" if name is not None else None
    out: list[ModelVersion] = []
    token = None
    while True:
        page = session.client.search_model_versions(filter_string, max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _all_models(session: _Session) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = session.client.search_registered_models(max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().isoformat(timespec="seconds")


def _version_info(mv: ModelVersion) -> ModelVersionInfo:
    tags = mv.tags or {}
    metrics = {}
    for key in HEADLINE_METRICS:
        with contextlib.suppress(KeyError, ValueError):
            metrics[key] = float(tags[f"{TAG}{key}"])
    return ModelVersionInfo(
        name=mv.name,
        version=int(mv.version),
        aliases=sorted(getattr(mv, "aliases", None) or []),
        created=_when(mv.creation_timestamp),
        run_id=mv.run_id or None,
        status=str(mv.status),
        bundle_version=tags.get(f"{TAG}model_version"),
        winner=tags.get(f"{TAG}winner"),
        target=tags.get(f"{TAG}target"),
        metrics=metrics,
        description=mv.description or "",
        source=mv.source or "",
    )


def _model_info(rm: Any, versions: Sequence[ModelVersion]) -> RegisteredModelInfo:
    infos = sorted((_version_info(v) for v in versions), key=lambda v: v.version, reverse=True)
    raw = getattr(rm, "aliases", None) or {}
    aliases = {str(a): int(v) for a, v in raw.items()} if isinstance(raw, Mapping) else {}
    if not aliases:
        aliases = {a: v.version for v in infos for a in v.aliases}
    for v in infos:  # search results do not always carry aliases; fill them from the model
        v.aliases = sorted({*v.aliases, *(a for a, n in aliases.items() if n == v.version)})
    return RegisteredModelInfo(
        name=rm.name if rm is not None else versions[0].name,
        created=_when(getattr(rm, "creation_timestamp", None)),
        updated=_when(getattr(rm, "last_updated_timestamp", None)),
        description=getattr(rm, "description", "") or "",
        aliases=dict(sorted(aliases.items())),
        versions=infos,
    )


def list_models(*, tracking_uri: str | None = None, include_all: bool = False) -> list[RegisteredModelInfo]:
    """Registered models with their versions and aliases, by name.

    Only models holding propensity bundles are listed unless ``include_all`` (a shared
    server may hold other teams' models too).
    """
    uri = resolve_tracking_uri(tracking_uri)
    with _session(uri, create=False) as session:
        models = _all_models(session)
        versions = _all_versions(session)
    by_name: dict[str, list[ModelVersion]] = {}
    for mv in versions:
        by_name.setdefault(mv.name, []).append(mv)
    infos = [_model_info(rm, by_name.get(rm.name, [])) for rm in models]
    infos = [m for m in infos if include_all or m.is_propensity]
    return sorted(infos, key=lambda m: m.name.lower())


def _not_found_names(session: _Session, name: str) -> ModelNotFoundError:
    names = sorted(rm.name for rm in _all_models(session))
    shown = display_uri(session.uri)
    if not names:
        return ModelNotFoundError(
            f"No registered model '{name}' at {shown}: no models are registered there yet."
        )
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(names[:30]) + (f" … ({len(names)} in all)" if len(names) > 30 else "")
    return ModelNotFoundError(f"No registered model '{name}' at {shown}.{hint} Registered models: {listed}.")


def _get_model(session: _Session, name: str) -> Any:
    try:
        return session.client.get_registered_model(name)
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in _error_code(exc) or "NOT_FOUND" in _error_code(exc):
            raise _not_found_names(session, name) from None
        raise


def _version_list(info: RegisteredModelInfo) -> str:
    versions = ", ".join(str(v.version) for v in reversed(info.versions)) or "none"
    aliases = ", ".join(f"{a} → {v}" for a, v in info.aliases.items()) or "none"
    return f"versions: {versions}; aliases: {aliases}"


def _resolve_version(session: _Session, name: str, selector: int | str) -> ModelVersion:
    rm = _get_model(session, name)
    versions = _all_versions(session, name)
    info = _model_info(rm, versions)
    if selector == "latest":
        if not versions:
            raise ModelNotFoundError(f"Model '{name}' has no versions yet.")
        return max(versions, key=lambda v: int(v.version))
    if isinstance(selector, str) and selector.startswith("@"):
        alias = selector[1:]
        if alias not in info.aliases:
            raise ModelNotFoundError(
                f"Model '{name}' has no alias '{alias}' ({_version_list(info)}). "
                f"Set one with: propensity models promote {name} VERSION --alias {alias}"
            )
        selector = info.aliases[alias]
    for mv in versions:
        if int(mv.version) == selector:
            return mv
    raise ModelNotFoundError(f"Model '{name}' has no version {selector} ({_version_list(info)}).")


def show_model(ref: str, *, tracking_uri: str | None = None) -> RegisteredModelInfo:
    """A registered model and its versions; ``NAME@alias`` or ``NAME/3`` narrows to one version.

    Raises
    ------
    ModelNotFoundError
        Unknown name, version or alias (the message lists what exists).
    """
    name, selector = _parse_name_selector(ref)
    uri = resolve_tracking_uri(tracking_uri)
    with _session(uri, create=False) as session:
        info = _model_info(_get_model(session, name), _all_versions(session, name))
        if selector is not None:
            chosen = int(_resolve_version(session, name, selector).version)
            info.versions = [v for v in info.versions if v.version == chosen]
    return info


def _check_alias(alias: str) -> None:
    if not ALIAS_RE.match(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ParameterError(
            f"The alias must start with a letter and contain only letters, digits, '_' or '-', and cannot be "
            f"'latest' or look like a version ('v3'). Got {alias!r} instead."
        )


def promote(
    name: str, version: int, *, alias: str = DEFAULT_ALIAS, tracking_uri: str | None = None
) -> PromoteResult:
    """Point ``alias`` at ``version`` of ``name`` (``models:/name@alias`` then loads it).

    Promoting an older version is how a team rolls back.

    Raises
    ------
    ModelNotFoundError
        Unknown name or version (the message lists the versions that exist).
    ParameterError
        An alias MLflow does not allow.
    """
    _check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    with _session(uri, create=False) as session:
        mv = _resolve_version(session, name, int(version))
        info = _model_info(_get_model(session, name), [])
        previous = info.aliases.get(alias)
        session.client.set_registered_model_alias(name, alias, str(mv.version))
    return PromoteResult(name=name, version=int(mv.version), alias=alias, previous=previous)


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
    with _session(uri, create=False) as session:
        mv = _resolve_version(session, name, selector)
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


def _download_bundle(session: _Session, name: str, version: int, target: Path) -> None:
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        repo = ModelsArtifactRepository(f"models:/{name}/{version}")
        try:
            local = Path(repo.download_artifacts(f"artifacts/{BUNDLE_ARTIFACT}", dst_path=tmp))
        except Exception as exc:
            raise BundleError(
                f"models:/{name}/{version} is not a propensity model: it has no '{BUNDLE_ARTIFACT}' artifact "
                f"({_first_line(exc)})."
            ) from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(local, target)


# --------------------------------------------------------------------------- the UI


def ui_command(*, tracking_uri: str | None = None, port: int = 5000) -> tuple[list[str], str]:
    """The command line that starts MLflow's UI on a local store, bound to 127.0.0.1, and its URL.

    Raises
    ------
    ParameterError
        If the tracking URI is a server (it has its own UI) or the port is taken.
    """
    uri = resolve_tracking_uri(tracking_uri)
    if _is_http(uri):
        raise ParameterError(
            f"The tracking URI {display_uri(uri)} is a tracking server, which serves its own UI: open it in a "
            "browser. `propensity tracking ui` is for local stores such as the embedded .propensity/mlflow.db."
        )
    if not 1 <= port <= 65535:
        raise ParameterError(f"The 'port' parameter must be an int in [1, 65535]. Got {port} instead.")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise ParameterError(
                f"Port {port} on 127.0.0.1 is already in use; pass another with --port."
            ) from None
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    artifacts = _artifact_location(uri)
    if artifacts is not None:
        command += ["--default-artifact-root", artifacts]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return command, f"http://127.0.0.1:{port}"
