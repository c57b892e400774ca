"""One MLflow session: import, reachability, global state restored, failures as TrackingError."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

from propensity.errors import ModelNotFoundError, PropensityError, TrackingError
from propensity.tracking.uris import artifact_folder, display_uri, is_http, sqlite_path

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType

    from mlflow import MlflowClient

__all__ = ["Session", "ensure_experiment", "first_line", "mlflow_error_code", "open_session", "run_link"]

log = logging.getLogger(__name__)


# Applied only while propensity talks to MLflow, and only when the user has not set them:
# no progress bars in our output, and a dead server fails in seconds rather than after
# MLflow's default of 7 retries with exponential back-off (minutes).
_ENV_DEFAULTS = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


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


def first_line(exc: BaseException) -> str:
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
class Session:
    mlflow: Any
    client: MlflowClient
    uri: str


@contextlib.contextmanager
def open_session(uri: str, *, create: bool = True) -> Iterator[Session]:
    """Talk to one MLflow store; restore MLflow's global state and the environment afterwards.

    MLflow's model logging reads the *global* tracking URI, so it is set for the duration and
    put back (a notebook's own ``mlflow.set_tracking_uri`` survives a ``propensity.train``).
    Any failure becomes a :class:`TrackingError` naming the store.
    """
    shown = display_uri(uri)
    db = sqlite_path(uri)
    if db is not None and not create and not db.exists():
        raise ModelNotFoundError(
            f"No models are registered yet: the tracking store {db} does not exist (runs are recorded by "
            "`propensity train` in the working directory's .propensity/; set PROPENSITY_TRACKING_URI to "
            "use another store)."
        )
    if is_http(uri):
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
        yield Session(mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), uri)
    except PropensityError:
        raise
    except Exception as exc:
        reason = first_line(exc)
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


def mlflow_error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


def ensure_experiment(session: Session, name: str) -> str:
    client = session.client
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return str(client.create_experiment(name, artifact_location=artifact_folder(session.uri)))
        except Exception as exc:  # created by a concurrent run in the meantime
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise exc from None
    if exp.lifecycle_stage == "deleted":
        log.warning("Experiment '%s' was deleted; restoring it to record this run.", name)
        client.restore_experiment(exp.experiment_id)
    return str(exp.experiment_id)


def run_link(uri: str, experiment_id: str, run_id: str) -> str | None:
    if is_http(uri):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return None
