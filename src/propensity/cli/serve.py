"""``propensity serve`` (the scoring service) and ``propensity api-key`` (keys for it)."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from propensity.cli._common import app, err, out, user_errors

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _log_config(level: str, access_log: bool) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG}
    config["formatters"] = {**LOGGING_CONFIG["formatters"], "line": {"format": "%(message)s"}}
    config["handlers"] = {
        **LOGGING_CONFIG["handlers"],
        "access_json": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stdout"},
    }
    config["loggers"] = {
        **LOGGING_CONFIG["loggers"],
        "propensity": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        "propensity.serving.access": {
            "handlers": ["access_json"],
            "level": "INFO" if access_log else "WARNING",
            "propagate": False,
        },
    }
    return config


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="Bundle folder, or models:/name@alias, models:/name/version.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the model).")] = 1,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Allow a non-loopback address without API keys (not recommended)."),
    ] = False,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="File of sha256:<hex> key lines (`propensity api-key --file`); or set PROPENSITY_API_KEYS."
        ),
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="Most records per /predict/batch (default 10,000).")
    ] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="Largest request body (default 8 MiB).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds a request may take (default 10).")] = None,
    unknown_categories: Annotated[
        str | None, typer.Option(help="'other' (score as the rare levels, the default) or 'reject' (422).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Allow this origin via CORS (repeatable; CORS is off by default)."),
    ] = None,
    public_docs: Annotated[bool, typer.Option(help="Serve /docs and /openapi.json without a key.")] = False,
    access_log: Annotated[
        bool, typer.Option(help="JSON access log on stdout (off by default for speed).")
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(help="Live store of `propensity stream`: GET /customers/{id} answers from it."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Without --store: an event log scored at --as-of for GET /customers/{id}."),
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="With --events: score at this instant.")] = None,
    clv: Annotated[
        str | None,
        typer.Option(
            "--clv",
            help="With --events: a lifetime-value bundle (propensity clv); /customers records carry its P(alive) and CLV.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    graceful_timeout: Annotated[
        float, typer.Option(help="Seconds to let requests in flight finish on SIGTERM/Ctrl+C.")
    ] = 30.0,
) -> None:
    """Serve a model over HTTP: /predict, /predict/batch, /model/metadata, /health, /ready, /metrics, /docs.

    SIGHUP (or POST /admin/reload) reloads the model without dropping requests.
    """
    import uvicorn

    from propensity.errors import ParameterError
    from propensity.serving import ServeSettings, create_app
    from propensity.serving.app import MODEL_ENV
    from propensity.serving.auth import KeyRing

    overrides: dict[str, Any] = {
        "api_keys_file": api_keys_file,
        "max_batch_records": max_batch,
        "max_body_bytes": max_body_bytes,
        "request_timeout": timeout,
        "unknown_categories": unknown_categories,
        "cors_origins": cors_origin or None,
        "public_docs": public_docs or None,
        "access_log": access_log or None,
        "store": store,
        "events": events,
        "as_of": as_of,
        "clv": clv,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    with user_errors():
        try:
            settings = ServeSettings(**overrides)
        except ValueError as exc:  # pydantic's ValidationError: name the option
            first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ("?",), "msg": str(exc)}
            raise ParameterError(
                f"Invalid serve setting '{'.'.join(map(str, first['loc']))}': {first['msg']}."
            ) from None
        keys = KeyRing.from_settings(settings)
        if not keys.enabled and not is_loopback(host):
            if not insecure:
                raise ParameterError(
                    f"Refusing to serve on {host} without API keys: anyone who can reach this machine could "
                    "query the model. Set PROPENSITY_API_KEYS or --api-keys-file (`propensity api-key --file "
                    "keys.txt` creates one), listen on 127.0.0.1, or pass --insecure."
                )
            err.print(
                f"WARNING: serving on {host} WITHOUT API KEYS (--insecure). Anyone who can reach port {port} "
                "can query the model and reload it.",
                style="bold red",
                markup=False,
            )
        common: dict[str, Any] = {
            "host": host,
            "port": port,
            "log_config": _log_config(log_level, settings.access_log),
            "access_log": False,  # ours is structured and optional (settings.access_log)
            "timeout_graceful_shutdown": graceful_timeout,
            "server_header": False,
        }
        if workers == 1:
            service = create_app(model, settings)
            _announce(service.state.holder.scorer, host, port, workers, keys.enabled)
            uvicorn.run(service, **common)
            return
        # Several workers: each process builds its own app from the environment.
        from propensity.loading import resolve_model

        loaded = resolve_model(model)  # fail here, once, rather than in every worker
        env = {MODEL_ENV: model, "PROPENSITY_SERVE_SUPERVISOR_PID": str(os.getpid())}
        for name, value in overrides.items():
            key = (
                "PROPENSITY_API_KEYS_FILE" if name == "api_keys_file" else f"PROPENSITY_SERVE_{name.upper()}"
            )
            env[key] = _env_value(value)
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="propensity-metrics-"))
        os.environ.update(env)
        from propensity.serving.scorer import Scorer

        _announce(Scorer(loaded, settings, source=model), host, port, workers, keys.enabled)
        # A worker answers the supervisor's health pings only once its imports and model load let it
        # (seconds on a busy machine); uvicorn's 5 s default restarted workers in a loop under load.
        uvicorn.run(
            "propensity.serving.app:app_from_environment",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **common,
        )


#: Seconds a worker may take to answer the supervisor's ping before uvicorn replaces it.
WORKER_HEALTHCHECK_SECONDS = 60


def _env_value(value: Any) -> str:
    import json

    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _announce(scorer: Any, host: str, port: int, workers: int, secured: bool) -> None:
    m = scorer.manifest
    shown = f"[{host}]" if ":" in host else host
    out.print(
        f"Serving {m.winner} predicting {m.task.target} = {m.task.positive!r}, version {scorer.version} "
        f"(threshold {m.policy.threshold:.4f}) at http://{shown}:{port} — docs at /docs; "
        f"{workers} worker(s); API keys {'required' if secured else 'off'}.",
        highlight=False,
    )


@app.command("api-key")
def api_key(
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Append the key's sha256 line to this keys file.")
    ] = None,
) -> None:
    """Create an API key for `propensity serve`: print it once, store only its hash."""
    from propensity.serving.auth import hash_key, new_key

    key = new_key()
    line = hash_key(key)
    if file is not None:
        with user_errors():
            file.parent.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            with file.open("a") as fh:
                fh.write(f"# added {stamp}\n{line}\n")
            os.chmod(file, 0o600)
        err.print(f"Appended the key's hash to {file}; the key itself is shown only now:", markup=False)
    else:
        err.print(f"Key (shown only now); store this line in a keys file: {line}", markup=False)
    out.print(key, highlight=False)
