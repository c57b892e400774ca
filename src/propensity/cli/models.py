"""Registry and tracking commands: ``propensity models list|show|promote|register`` and ``propensity tracking ui|info``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from propensity.cli._common import _fmt, app, err, out, print_tracking, user_errors

models_app = typer.Typer(
    help="The model registry (MLflow): list, show, promote and register models.", no_args_is_help=True
)
tracking_app = typer.Typer(
    help="Experiment tracking (MLflow): the UI and where runs go.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(tracking_app, name="tracking")

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store (default: PROPENSITY_TRACKING_URI, else MLFLOW_TRACKING_URI, else .propensity/mlflow.db).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _short(text: str | None, n: int = 8) -> str:
    return (text or "")[:n] or "–"


def _day(stamp: str) -> str:
    """``2026-11-22T03:28:47+00:00`` as ``2026-11-22 03:28``."""
    return stamp[:16].replace("T", " ") if stamp else "–"


@models_app.command("list")
def list_cmd(
    tracking_uri: TrackingUri = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Also list registered models that are not propensity bundles.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Registered models: versions, aliases, headline metrics (champion, else latest) and dates."""
    from propensity.tracking import list_models, resolve_tracking_uri

    with user_errors():
        models = list_models(tracking_uri=tracking_uri, include_all=include_all)
        uri = resolve_tracking_uri(tracking_uri)
    if as_json:
        out.print_json(json.dumps([m.to_dict() for m in models]))
        return
    if not models:
        out.print(f"No propensity models are registered at {uri} yet.", highlight=False)
        return
    table = Table(title=f"Registered models ({uri})", title_justify="left")
    for col in (
        "name",
        "versions",
        "aliases",
        "metrics of",
        "test ROC-AUC",
        "test PR-AUC",
        "winner",
        "created",
        "updated",
    ):
        table.add_column(col, justify="right" if col.startswith("test") else "left", no_wrap=col != "name")
    for m in models:
        head = m.headline()
        aliases = ", ".join(f"{a} → v{v}" for a, v in m.aliases.items()) or "–"
        label = "–"
        if head is not None:
            label = f"v{head.version}" + (" (champion)" if "champion" in head.aliases else " (latest)")
        latest = m.latest.version if m.latest else 0
        table.add_row(
            m.name,
            f"{len(m.versions)} (latest v{latest})" if m.versions else "0",
            aliases,
            label,
            _fmt(head.metrics.get("test_roc_auc")) if head else "–",
            _fmt(head.metrics.get("test_pr_auc")) if head else "–",
            (head.winner or "–") if head else "–",
            _day(m.created),
            _day(m.updated),
        )
    out.print(table)


@models_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS, NAME/VERSION (models:/ prefix optional).")],
    tracking_uri: TrackingUri = None,
    as_json: AsJson = False,
) -> None:
    """One registered model: its versions with metrics, aliases, runs and bundles."""
    from propensity.tracking import show_model

    with user_errors():
        info = show_model(ref, tracking_uri=tracking_uri)
    if as_json:
        out.print_json(json.dumps(info.to_dict()))
        return
    aliases = ", ".join(f"{a} → v{v}" for a, v in info.aliases.items()) or "none"
    out.print(f"[bold]{info.name}[/] — {info.description or 'no description'}", highlight=False)
    out.print(
        f"Created {_day(info.created)}, updated {_day(info.updated)}; aliases: {aliases}.", highlight=False
    )
    table = Table(title_justify="left")
    for col in (
        "version",
        "aliases",
        "created",
        "winner",
        "target",
        "test ROC-AUC",
        "test PR-AUC",
        "OOF PR-AUC",
        "bundle",
        "run",
        "status",
    ):
        table.add_column(
            col, justify="right" if col.startswith(("test", "OOF", "version")) else "left", no_wrap=True
        )
    for v in info.versions:
        table.add_row(
            str(v.version),
            ", ".join(v.aliases) or "–",
            _day(v.created),
            v.winner or "–",
            v.target or "–",
            _fmt(v.metrics.get("test_roc_auc")),
            _fmt(v.metrics.get("test_pr_auc")),
            _fmt(v.metrics.get("oof_pr_auc")),
            v.bundle_version or "(not propensity)",
            _short(v.run_id),
            v.status,
        )
    out.print(table)
    for v in info.versions:
        if v.ensemble:
            out.print(f"v{v.version} is an ensemble: {v.ensemble}.", highlight=False)
    if len(info.versions) == 1:
        v = info.versions[0]
        if v.description:
            out.print(v.description, highlight=False, markup=False, soft_wrap=True)
        out.print(
            f"Use it: propensity score {v.uri} INPUT --out scores.csv",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@models_app.command("promote")
def promote_cmd(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="The version the alias should point at.")],
    alias: Annotated[str, typer.Option(help="Alias to move (e.g. champion, challenger).")] = "champion",
    tracking_uri: TrackingUri = None,
) -> None:
    """Point an alias at a version (models:/NAME@ALIAS then loads it); promote an older one to roll back."""
    from propensity.tracking import promote

    with user_errors():
        result = promote(name, version, alias=alias, tracking_uri=tracking_uri)
    was = (
        f" (was version {result.previous})"
        if result.previous not in (None, result.version)
        else " (unchanged)"
        if result.previous == result.version
        else ""
    )
    out.print(f"{result.uri} → version {result.version}{was}.", highlight=False, markup=False, soft_wrap=True)


@models_app.command("register")
def register_cmd(
    path: Annotated[Path, typer.Argument(help="A bundle folder written by `propensity train`.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Registered model name (default: the folder's name).")
    ] = None,
    alias: Annotated[str | None, typer.Option(help="Also point this alias (e.g. champion) at it.")] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment for the run (default: the model name).")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Record and register a bundle saved without tracking (--no-tracking, or the server was down)."""
    from propensity.tracking import register_bundle

    with user_errors():
        result = register_bundle(
            path, name=name, tracking_uri=tracking_uri, experiment=experiment, alias=alias
        )
    if result.already_registered:
        out.print(
            f"{path} (bundle {result.bundle_version}) is already registered as {result.model_uri}; nothing to do"
            + (f"; {result.alias} → version {result.version}." if result.alias else "."),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    print_tracking(result)


@tracking_app.command("ui")
def ui_cmd(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    tracking_uri: TrackingUri = None,
) -> None:
    """Start MLflow's UI on the local store (default .propensity/mlflow.db), bound to 127.0.0.1; Ctrl-C stops it."""
    from propensity.tracking import resolve_tracking_uri, ui_command

    with user_errors():
        command, url = ui_command(tracking_uri=tracking_uri, port=port)
    # No telemetry, and none of the GenAI job workers (seven extra processes) a browsing UI never uses.
    env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **os.environ,
    }
    out.print(
        f"MLflow UI for {resolve_tracking_uri(tracking_uri)} on {url} (starting takes ~15 s; Ctrl-C stops it).",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    # The server runs in its own process group so that stopping this command stops all of it
    # (MLflow's CLI, uvicorn and any workers), whether by Ctrl-C, SIGTERM or a closed terminal.
    proc = subprocess.Popen(command, env=env, start_new_session=True)

    stopping = []

    def stop(*_: object) -> None:
        stopping.append(True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        stop()
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = 0
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group, if any
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if not stopping and code != 0:
        err.print(f"error: the MLflow UI exited with code {code}.", style="bold red", markup=False)
        raise typer.Exit(code=1)


@tracking_app.command("info")
def info_cmd(tracking_uri: TrackingUri = None) -> None:
    """Print the tracking URI that train/score/models use here, and where it comes from."""
    from propensity.config import get_settings
    from propensity.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    if tracking_uri:
        origin = "--tracking-uri"
    elif get_settings().tracking_uri:
        origin = "PROPENSITY_TRACKING_URI"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        origin = "MLFLOW_TRACKING_URI"
    else:
        origin = "the embedded store in this working directory"
    out.print(f"{uri} (from {origin})", highlight=False, markup=False, soft_wrap=True)
