"""Core commands: train, score, roles, info, demo, datasets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from propensity.cli._common import (
    Target,
    _fmt,
    _progress,
    app,
    datasets_app,
    err,
    live_warnings,
    out,
    print_roles,
    print_tracking,
    print_training_summary,
    show_warnings,
    user_errors,
)
from propensity.errors import PropensityWarning


@app.command()
def train(
    data: Annotated[
        Path,
        typer.Argument(help="CSV (any delimiter, .gz ok) or Parquet table; one row per customer/session."),
    ],
    target: Target,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the model bundle and outputs.")
    ] = Path("models/model"),
    id_column: Annotated[str | None, typer.Option("--id", help="Column to keep as the output id.")] = None,
    roles: Annotated[
        Path | None, typer.Option(help="YAML file of column roles that override inference.")
    ] = None,
    positive: Annotated[str | None, typer.Option(help="Target value that counts as positive.")] = None,
    test: Annotated[
        Path | None, typer.Option(help="Separate test table (else a stratified hold-out).")
    ] = None,
    test_size: Annotated[float, typer.Option(help="Hold-out share when no --test is given.")] = 0.2,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    metric: Annotated[
        str, typer.Option(help="Selection metric: pr_auc, roc_auc, log_loss, brier, lift_top10.")
    ] = "pr_auc",
    policy: Annotated[str, typer.Option(help="Decision policy: f1, profit, top, precision, recall.")] = "f1",
    value: Annotated[float | None, typer.Option(help="Profit policy: margin of one conversion.")] = None,
    cost: Annotated[float | None, typer.Option(help="Profit policy: cost of one contact.")] = None,
    fraction: Annotated[float | None, typer.Option(help="Top policy: share of customers to contact.")] = None,
    min_score: Annotated[
        float | None, typer.Option("--min", help="Precision/recall policy: the minimum to reach.")
    ] = None,
    time_budget: Annotated[
        float, typer.Option(help="Seconds of Optuna tuning for the leading family.")
    ] = 0.0,
    trials: Annotated[int, typer.Option(help="Optuna trials for the leading family (reproducible).")] = 0,
    candidates: Annotated[
        str | None, typer.Option(help="Comma-separated families (default: all installed).")
    ] = None,
    class_weight: Annotated[str, typer.Option(help="auto, balanced or none.")] = "auto",
    resample: Annotated[str, typer.Option(help="none, under or over (inside training folds only).")] = "none",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    n_jobs: Annotated[int | None, typer.Option(help="Threads per model (default: all cores, max 8).")] = None,
    screen_above: Annotated[
        int,
        typer.Option(help="Screen candidates on a 50k-row sample above this many training rows (0 = never)."),
    ] = 100_000,
    name: Annotated[
        str | None, typer.Option("--name", help="Registered model name (default: the --out folder's name).")
    ] = None,
    tracking: Annotated[
        bool | None,
        typer.Option(
            "--tracking/--no-tracking",
            help="Record the run in MLflow and register the model (default: on; PROPENSITY_TRACKING=false).",
            show_default=False,
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow store (default: PROPENSITY_TRACKING_URI, else MLFLOW_TRACKING_URI, else .propensity/mlflow.db).",
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment for the run (default: the model name).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary line.")] = False,
) -> None:
    """Train, calibrate and choose a decision threshold on a labelled table; record it in MLflow."""
    from propensity.api import train as train_model
    from propensity.training.trainer import ProgressEvent

    with user_errors(), _progress() as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PropensityWarning)
        tasks: dict[str, Any] = {}

        def on_progress(ev: ProgressEvent) -> None:
            key = "fold" if ev.stage == "fold" else ev.stage
            label = {
                "fold": f"  {ev.message} folds",
                "cross-validate": "candidates",
                "trial": "  tuning trials",
            }.get(key, key)
            if key not in tasks:
                tasks[key] = bar.add_task(label, total=ev.total or None)
            if key == "fold" and ev.done == 1:
                bar.reset(tasks[key], total=ev.total, description=f"  {ev.message} folds")
            bar.update(tasks[key], completed=ev.done, total=ev.total or None)

        model = train_model(
            data,
            target,
            out=out_dir,
            test=test,
            id_column=id_column,
            roles=roles,
            positive=positive,
            test_size=test_size,
            folds=folds,
            metric=metric,
            policy=policy,
            value=value,
            cost=cost,
            fraction=fraction,
            min_score=min_score,
            time_budget=time_budget,
            trials=trials,
            candidates=[c.strip() for c in candidates.split(",")] if candidates else None,
            class_weight=class_weight,
            resample=resample,
            seed=seed,
            n_jobs=n_jobs,
            screen_above=screen_above,
            name=name,
            tracking=tracking,
            tracking_uri=tracking_uri,
            experiment=experiment,
            progress=on_progress,
        )
    from propensity.tracking import TrackingResult

    tracked = getattr(model, "tracking", None)
    if not quiet:
        print_roles(model)
        print_training_summary(model, out_dir)
    else:
        t = model.manifest.metrics.get("test") or {}
        registered = f" ({tracked.model_uri})" if isinstance(tracked, TrackingResult) else ""
        out.print(
            f"{model.manifest.winner}: test ROC-AUC {_fmt(t.get('roc_auc'))}, PR-AUC {_fmt(t.get('pr_auc'))} "
            f"→ {out_dir}{registered}"
        )
    show_warnings(caught)
    if isinstance(tracked, TrackingResult) and not quiet:
        print_tracking(tracked)


@app.command()
def score(
    model: Annotated[str, typer.Argument(help="Bundle folder, or models:/name/version, models:/name@alias.")],
    input: Annotated[Path, typer.Argument(help="CSV or Parquet file to score.")],
    output: Annotated[Path, typer.Option("--out", "-o", help="Output CSV or Parquet file.")] = Path(
        "scores.csv"
    ),
    batch_rows: Annotated[int, typer.Option(help="Rows per chunk (memory stays flat).")] = 200_000,
    allow_missing: Annotated[
        bool, typer.Option(help="Impute required columns that are absent instead of failing.")
    ] = False,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow registry for models:/ references.")
    ] = None,
    reasons: Annotated[
        int, typer.Option(help="Add the K strongest reasons per row as text columns reason_1..reason_K.")
    ] = 0,
) -> None:
    """Score a file in chunks: id, probability, decision, band, model_version, scored_at (and reasons)."""
    from propensity.api import resolve_model, score_file

    with user_errors(), live_warnings():
        loaded = resolve_model(model, tracking_uri=tracking_uri)
        with _progress() as bar:
            task = bar.add_task("scoring rows", total=None)
            summary = score_file(
                loaded,
                input,
                output,
                batch_rows=batch_rows,
                allow_missing=allow_missing,
                reasons=reasons,
                progress=lambda done, total: bar.update(task, completed=done, total=total or None),
            )
    line = (
        f"Scored {summary.rows_scored:,} of {summary.rows_in:,} rows in {summary.seconds:.2f}s "
        f"({summary.rows_per_second:,.0f} rows/s) → {summary.output}; {summary.contacted:,} to contact "
        f"(threshold {summary.threshold:.4f}); bands {summary.bands}."
    )
    out.print(line, highlight=False)
    if summary.rows_quarantined:
        why = ", ".join(f"{k}: {v}" for k, v in summary.quarantine_reasons.items())
        err.print(
            f"{summary.rows_quarantined} row(s) quarantined ({why}) → {summary.quarantine}",
            style="yellow",
            markup=False,
        )
    if summary.unknown_categories:
        err.print(
            f"Unseen categories (scored as 'other'): {summary.unknown_categories}",
            style="yellow",
            markup=False,
        )
    if summary.missing_optional:
        err.print(
            f"Columns absent and imputed: {', '.join(summary.missing_optional)}", style="yellow", markup=False
        )


@app.command("roles")
def roles_cmd(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet table.")],
    target: Target,
    id_column: Annotated[str | None, typer.Option("--id", help="Column to keep as the output id.")] = None,
    roles: Annotated[Path | None, typer.Option(help="YAML file of role overrides.")] = None,
    positive: Annotated[str | None, typer.Option(help="Target value that counts as positive.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the inferred role of every column (without training)."""
    from propensity.schema import infer_roles, load_roles_file, missing_column_error, parse_target
    from propensity.sources import read_table

    with user_errors():
        frame = read_table(data)
        if target not in frame.columns:
            raise missing_column_error("target", target, list(map(str, frame.columns)), "--target")
        overrides, roles_id = load_roles_file(roles) if roles else ({}, None)
        y, spec = parse_target(frame[target], positive=positive)
        table = infer_roles(frame, target, id_column=id_column or roles_id, overrides=overrides, y=y)
    if as_json:
        out.print_json(json.dumps({**table.to_dict(), "target_spec": spec.to_dict()}))
        return

    class _Shim:
        run = type("R", (), {"roles": table})

    print_roles(_Shim())
    out.print(f"Target '{target}': positive = {spec.positive!r} ({spec.positive_rate:.2%}). {spec.note}")


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Bundle folder or models:/ URI.")],
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow registry for models:/ references.")
    ] = None,
) -> None:
    """Print what a model bundle holds: task, inputs, policy, metrics, provenance."""
    from propensity.api import resolve_model

    with user_errors():
        loaded = resolve_model(model, tracking_uri=tracking_uri)
    m = loaded.manifest
    out.print(
        f"[bold]{m.winner}[/] predicting {m.task.target} = {m.task.positive!r}, version {m.model_version}"
    )
    table = Table(title="Inputs", title_justify="left")
    for col in ("feature", "role", "required", "missing", "range / levels"):
        table.add_column(col)
    for f in m.input_schema.features:
        extent = (
            f"{f.min:g} … {f.max:g}"
            if f.min is not None and f.max is not None
            else ", ".join(f.categories[:6]) + (" …" if f.categories and len(f.categories) > 6 else "")
            if f.categories
            else ""
        )
        table.add_row(f.name, f.role, "yes" if f.required else "no", f"{f.missing_share:.1%}", extent)
    out.print(table)
    print_training_summary(loaded, None)


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the demo's data and model.")
    ] = Path("demo"),
    customers: Annotated[int, typer.Option(help="Synthetic customers.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """The main job end to end on synthetic data: generate, train, score, summarise."""
    from propensity.api import score_file
    from propensity.api import train as train_model
    from propensity.datasets import make_customer_table

    with user_errors():
        out_dir.mkdir(parents=True, exist_ok=True)
        table = make_customer_table(customers, seed=seed)
        data = out_dir / "customers.csv"
        table.to_csv(data, index=False)
        out.print(f"[bold]Data:[/] {len(table):,} synthetic customers → {data}")
        with _progress() as bar, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PropensityWarning)
            task = bar.add_task("training", total=None)
            model = train_model(
                data,
                "purchased",
                out=out_dir / "model",
                seed=seed,
                name="demo",
                progress=lambda ev: bar.update(task, description=f"training: {ev.stage} {ev.message}"),
            )
        print_training_summary(model, out_dir / "model")
        show_warnings(caught)
        tracked = getattr(model, "tracking", None)
        if tracked is not None and hasattr(tracked, "run_id"):
            print_tracking(tracked)
        summary = score_file(model, data, out_dir / "scores.csv")
        out.print(
            f"[bold]Scored[/] {summary.rows_scored:,} customers → {summary.output}: contact {summary.contacted:,} "
            f"({summary.contacted / max(summary.rows_scored, 1):.1%})."
        )


@datasets_app.command("coil2000")
def datasets_coil2000(
    folder: Annotated[Path, typer.Argument(help="Folder with ticdata2000.txt(.gz) and dictionary.txt.")],
    output: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write (with a header).")] = Path(
        "coil2000.csv"
    ),
) -> None:
    """Write the headerless CoIL 2000 training file as a CSV with column names (target CARAVAN)."""
    from propensity.datasets import load_coil2000

    with user_errors():
        frame = load_coil2000(folder)
    frame.to_csv(output, index=False)
    out.print(f"Wrote {len(frame):,} rows × {frame.shape[1]} columns → {output} (target: CARAVAN)")
