"""MLflow's UI on the tracking store in effect."""

from __future__ import annotations

import socket
import sys

from propensity.errors import ParameterError
from propensity.tracking.uris import artifact_folder, display_uri, is_http, resolve_tracking_uri, sqlite_path

__all__ = ["ui_command"]


def ui_command(*, tracking_uri: str | None = None, port: int = 5000) -> tuple[list[str], str]:
    """The command line that starts MLflow's UI on a local store, bound to 127.0.0.1, and its URL.

    Raises
    ------
    ParameterError
        If the tracking URI is a server (it has its own UI) or the port is taken.
    """
    uri = resolve_tracking_uri(tracking_uri)
    if is_http(uri):
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
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    artifacts = artifact_folder(uri)
    if artifacts is not None:
        command += ["--default-artifact-root", artifacts]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return command, f"http://127.0.0.1:{port}"
