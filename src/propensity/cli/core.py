"""Core commands: train, score, roles, info, demo, datasets."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from propensity.cli._common import (
    Encoding,
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
    text_inputs,
    user_errors,
)
from propensity.cli.events import (
    EligibleDays,
    Engine,
    ExportTime,
    Lookbacks,
    MapCols,
    MapEvents,
    MappingFile,
    OrderLog,
    Returns,
    SessionGap,
    Timezone,
    TsFormat,
    build_mapping,
    parse_lookbacks,
    print_validation,
)
from propensity.errors import PropensityWarning
from propensity.metrics import percent

if TYPE_CHECKING:  # pragma: no cover
    from propensity.training.progress import ProgressEvent
    from propensity.workflows.tables import TrainingResult


# Options of `train` (module level so the command's signature reads as a list).
_DataOpt = Annotated[
    Path,
    typer.Argument(
        help="CSV (any delimiter, .gz ok) or Parquet table; one row per customer/session. "
        "With --from-events: an event or order log."
    ),
]
_TargetOpt = Annotated[
    str | None,
    typer.Option("--target", "-t", help="The outcome column (two values); not with --from-events."),
]
_OutDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the model bundle and outputs.")]
_IdColumnOpt = Annotated[str | None, typer.Option("--id", help="Column to keep as the output id.")]
_RolesOpt = Annotated[Path | None, typer.Option(help="YAML file of column roles that override inference.")]
_PositiveOpt = Annotated[str | None, typer.Option(help="Target value that counts as positive.")]
_TestOpt = Annotated[Path | None, typer.Option(help="Separate test table (else a stratified hold-out).")]
_TestSizeOpt = Annotated[float, typer.Option(help="Hold-out share when no --test is given.")]
_FoldsOpt = Annotated[int, typer.Option(help="Cross-validation folds.")]
_MetricOpt = Annotated[
    str, typer.Option(help="Selection metric: pr_auc, roc_auc, log_loss, brier, lift_top10.")
]
_PolicyOpt = Annotated[str, typer.Option(help="Decision policy: f1, profit, top, precision, recall.")]
_ValueOpt = Annotated[float | None, typer.Option(help="Profit policy: margin of one conversion.")]
_CostOpt = Annotated[float | None, typer.Option(help="Profit policy: cost of one contact.")]
_FractionOpt = Annotated[float | None, typer.Option(help="Top policy: share of customers to contact.")]
_MinScoreOpt = Annotated[
    float | None, typer.Option("--min", help="Precision/recall policy: the minimum to reach.")
]
_TimeBudgetOpt = Annotated[float, typer.Option(help="Seconds of Optuna tuning for the leading family.")]
_TrialsOpt = Annotated[int, typer.Option(help="Optuna trials for the leading family (reproducible).")]
_CandidatesOpt = Annotated[
    str | None, typer.Option(help="Comma-separated families (default: all installed).")
]
_EnsembleOpt = Annotated[
    bool,
    typer.Option(
        "--ensemble/--no-ensemble",
        help="Blend the candidates in a greedy ensemble (default) or ship the single winner.",
    ),
]
_RefitAllOpt = Annotated[
    bool | None,
    typer.Option(
        "--refit-all/--no-refit-all",
        help="Refit the shipped model on the training and test rows once tested "
        "(default: yes up to 200,000 rows, never on a --test table; the report keeps the held-out figures).",
        show_default=False,
    ),
]
_ClassWeightOpt = Annotated[str, typer.Option(help="auto, balanced or none.")]
_ResampleOpt = Annotated[str, typer.Option(help="none, under or over (inside training folds only).")]
_SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
_NJobsOpt = Annotated[int | None, typer.Option(help="Threads per model (default: all cores, max 8).")]
_ScreenAboveOpt = Annotated[
    int,
    typer.Option(help="Screen candidates on a 30k-row sample above this many training rows (0 = never)."),
]
_NameOpt = Annotated[
    str | None, typer.Option("--name", help="Registered model name (default: the --out folder's name).")
]
_TrackingOpt = Annotated[
    bool | None,
    typer.Option(
        "--tracking/--no-tracking",
        help="Record the run in MLflow and register the model (default: on; PROPENSITY_TRACKING=false).",
        show_default=False,
    ),
]
_TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store (default: PROPENSITY_TRACKING_URI, else MLFLOW_TRACKING_URI, else .propensity/mlflow.db).",
    ),
]
_ExperimentOpt = Annotated[
    str | None, typer.Option(help="MLflow experiment for the run (default: the model name).")
]
_QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary line.")]
_FromEventsOpt = Annotated[
    bool,
    typer.Option("--from-events", help="DATA is an event/order log: build features and labels from it."),
]
_HorizonDaysOpt = Annotated[int, typer.Option(help="--from-events: predict within this many days.")]
_LabelOpt = Annotated[str, typer.Option(help="--from-events: purchase or churn.")]
_CutoffsOpt = Annotated[
    int | None,
    typer.Option(
        help="--from-events: rolling cutoffs (snapshots) to stack (default: 4, or as many as the log holds).",
        show_default=False,
    ),
]
_StepDaysOpt = Annotated[
    int | None, typer.Option(help="--from-events: days between cutoffs (default: the horizon).")
]
_LastCutoffOpt = Annotated[
    str | None, typer.Option(help="--from-events: the latest cutoff (default: data end - horizon).")
]
_TimeFoldsOpt = Annotated[
    int, typer.Option(help="--from-events: validation cutoffs (1 = the latest before the test cutoff).")
]
_ClvFeaturesOpt = Annotated[
    bool,
    typer.Option(
        "--clv-features",
        help="--from-events: add BG/NBD P(alive) and expected purchases, fitted before each cutoff.",
    ),
]
_AllowPartialHorizonOpt = Annotated[
    bool, typer.Option(help="--from-events: accept a last horizon that runs past the end of the data.")
]


@app.command()
def train(
    data: _DataOpt,
    target: _TargetOpt = None,
    out_dir: _OutDirOpt = Path("models/model"),
    id_column: _IdColumnOpt = None,
    roles: _RolesOpt = None,
    positive: _PositiveOpt = None,
    test: _TestOpt = None,
    test_size: _TestSizeOpt = 0.2,
    folds: _FoldsOpt = 5,
    metric: _MetricOpt = "roc_auc",
    policy: _PolicyOpt = "f1",
    value: _ValueOpt = None,
    cost: _CostOpt = None,
    fraction: _FractionOpt = None,
    min_score: _MinScoreOpt = None,
    time_budget: _TimeBudgetOpt = 0.0,
    trials: _TrialsOpt = 0,
    candidates: _CandidatesOpt = None,
    ensemble: _EnsembleOpt = True,
    refit_all: _RefitAllOpt = None,
    class_weight: _ClassWeightOpt = "auto",
    resample: _ResampleOpt = "none",
    seed: _SeedOpt = 42,
    n_jobs: _NJobsOpt = None,
    screen_above: _ScreenAboveOpt = 100_000,
    name: _NameOpt = None,
    tracking: _TrackingOpt = None,
    tracking_uri: _TrackingUriOpt = None,
    experiment: _ExperimentOpt = None,
    quiet: _QuietOpt = False,
    from_events: _FromEventsOpt = False,
    horizon_days: _HorizonDaysOpt = 30,
    label: _LabelOpt = "purchase",
    cutoffs: _CutoffsOpt = None,
    step_days: _StepDaysOpt = None,
    last_cutoff: _LastCutoffOpt = None,
    time_folds: _TimeFoldsOpt = 1,
    allow_partial_horizon: _AllowPartialHorizonOpt = False,
    clv_features: _ClvFeaturesOpt = False,
    lookbacks: Lookbacks = "7,30,90",
    eligible_days: EligibleDays = None,
    mapping: MappingFile = None,
    columns: MapCols = None,
    event_names: MapEvents = None,
    order_log: OrderLog = None,
    returns: Returns = None,
    timezone: Timezone = None,
    ts_format: TsFormat = None,
    session_gap: SessionGap = None,
    engine: Engine = "duckdb",
    export_time: ExportTime = None,
    encoding: Encoding = None,
) -> None:
    """Train, calibrate and choose a decision threshold on a labelled table — or, with --from-events,
    on rolling-cutoff snapshots of an event log (features and labels built point in time). The run
    is recorded in MLflow and the model registered (--no-tracking to skip)."""
    from propensity.errors import ParameterError

    common: dict[str, Any] = {
        "test_size": test_size,
        "folds": folds,
        "metric": metric,
        "policy": policy,
        "value": value,
        "cost": cost,
        "fraction": fraction,
        "min_score": min_score,
        "time_budget": time_budget,
        "trials": trials,
        "candidates": [c.strip() for c in candidates.split(",")] if candidates else None,
        "ensemble": ensemble,
        "refit_all": refit_all,
        "class_weight": class_weight,
        "resample": resample,
        "seed": seed,
        "n_jobs": n_jobs,
        "screen_above": screen_above,
        "name": name,
        "tracking": tracking,
        "tracking_uri": tracking_uri,
        "experiment": experiment,
    }
    with text_inputs(encoding, show=not quiet):
        if from_events:
            with user_errors():
                if target is not None or test is not None or roles is not None or id_column is not None:
                    raise ParameterError(
                        "--from-events builds the target, id and roles itself; drop --target/--test/--roles/--id "
                        "(choose the outcome with --label and --horizon-days)."
                    )
                mp = build_mapping(
                    mapping, columns, event_names, order_log, returns, timezone, ts_format, session_gap
                )
            _train_events(
                data,
                out_dir,
                quiet=quiet,
                horizon_days=horizon_days,
                label=label,
                cutoffs=cutoffs,
                step_days=step_days,
                last_cutoff=last_cutoff,
                time_folds=time_folds,
                allow_partial_horizon=allow_partial_horizon,
                clv_features=clv_features,
                lookbacks=lookbacks,
                eligible_days=eligible_days,
                mapping=mp,
                engine=engine,
                export_time=export_time,
                options={k: v for k, v in common.items() if k != "test_size"},
            )
            return
        if target is None:
            err.print(
                "error: Missing option '--target' / '-t' (the outcome column). For an event log, pass --from-events.",
                style="bold red",
                markup=False,
            )
            raise typer.Exit(code=2)
        _train_table(
            data,
            target,
            out_dir,
            quiet,
            test=test,
            id_column=id_column,
            roles=roles,
            positive=positive,
            **common,
        )


def _train_table(data: Path, target: str, out_dir: Path, quiet: bool, **options: Any) -> None:
    """Train on a labelled table with progress bars, then print what was learned."""
    from propensity.workflows.tables import train as train_model

    with user_errors(), _progress() as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PropensityWarning)
        result = train_model(data, target, out=out_dir, progress=_training_progress(bar), **options)
    if not quiet:
        print_roles(result.run)
        print_training_summary(result.model, out_dir)
    _finish(result, out_dir, quiet, caught)


def _training_progress(bar: Any) -> Callable[[ProgressEvent], None]:
    """A progress callback that keeps one bar per training stage (folds reuse theirs per candidate)."""
    tasks: dict[str, Any] = {}
    labels = {"fold": "", "cross-validate": "candidates", "trial": "  tuning trials"}

    def on_progress(ev: ProgressEvent) -> None:
        key = ev.stage
        label = f"  {ev.message} folds" if key == "fold" else labels.get(key, key)
        if key not in tasks:
            tasks[key] = bar.add_task(label, total=ev.total or None)
        if key == "fold" and ev.done == 1:
            bar.reset(tasks[key], total=ev.total, description=f"  {ev.message} folds")
        bar.update(tasks[key], completed=ev.done, total=ev.total or None)

    return on_progress


def _finish(
    result: TrainingResult, out_dir: Path, quiet: bool, caught: list[warnings.WarningMessage]
) -> None:
    """The last lines of a training command: the quiet summary, warnings, where MLflow recorded it."""
    from propensity.tracking import TrackingResult

    tracked, model = result.tracking, result.model
    if quiet:
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
    input: Annotated[
        Path, typer.Argument(help="CSV or Parquet file to score (for an event model: an event or order log).")
    ],
    output: Annotated[Path, typer.Option("--out", "-o", help="Output CSV or Parquet file.")] = Path(
        "scores.csv"
    ),
    batch_rows: Annotated[int, typer.Option(help="Rows per chunk (memory stays flat).")] = 200_000,
    allow_missing: Annotated[
        bool, typer.Option(help="Impute required columns that are absent instead of failing.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Event models: rebuild features at this cutoff (default: the end of the log's data) "
            "and score every customer seen before it.",
        ),
    ] = None,
    eligible_only: Annotated[
        bool,
        typer.Option("--eligible-only", help="Event models: score only customers eligible at the cutoff."),
    ] = False,
    mapping: MappingFile = None,
    engine: Engine = "duckdb",
    export_time: ExportTime = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow registry for models:/ references.")
    ] = None,
    reasons: Annotated[
        int, typer.Option(help="Add the K strongest reasons per row as text columns reason_1..reason_K.")
    ] = 0,
    encoding: Encoding = None,
    partition_by: Annotated[
        str | None,
        typer.Option(
            "--partition-by",
            help="--engine spark: split the Parquet output folder by these columns (comma-separated, e.g. band).",
        ),
    ] = None,
) -> None:
    """Score a file in chunks: id, probability, decision, band, model_version, scored_at (and reasons).

    For a model trained with --from-events, INPUT is an event log: the features are rebuilt at
    --as-of from the definitions in the model, and every customer seen before it is scored (with
    an ``eligible`` column). For a lifetime-value bundle (propensity clv), INPUT is a log: every
    buyer before --as-of gets P(alive), expected purchases, spend and lifetime value.

    With --engine spark, a table must be Parquet (a file, a folder of part files or a partitioned
    dataset), each Spark partition is scored on an executor, and --out is a folder of Parquet
    part files (optionally split by --partition-by)."""
    from propensity.bundle import is_clv_bundle

    with text_inputs(encoding):
        if not model.startswith("models:/") and is_clv_bundle(model):
            _score_clv(model, input, output, as_of, mapping, engine, export_time)
            return
        _score(
            model,
            input,
            output,
            batch_rows,
            allow_missing,
            as_of,
            eligible_only,
            mapping,
            engine,
            export_time,
            tracking_uri,
            reasons,
            [c.strip() for c in partition_by.split(",") if c.strip()] if partition_by else [],
        )


def _score(
    model: str,
    input: Path,
    output: Path,
    batch_rows: int,
    allow_missing: bool,
    as_of: str | None,
    eligible_only: bool,
    mapping: Path | None,
    engine: str,
    export_time: str | None,
    tracking_uri: str | None,
    reasons: int,
    partition_by: list[str],
) -> None:
    """Score a table (or, for an event model, a log) with a propensity bundle."""
    from propensity.errors import ParameterError
    from propensity.loading import resolve_model
    from propensity.pipeline import preload_batch_kernel
    from propensity.workflows.scoring import score_file
    from propensity.workflows.spark import score_table_on_spark

    with user_errors(), live_warnings():
        preload_batch_kernel()  # the tree kernel loads while the bundle does
        loaded = resolve_model(model, tracking_uri=tracking_uri)
        if loaded.manifest.events:
            _score_events(
                loaded,
                input,
                output,
                as_of,
                eligible_only,
                mapping,
                engine,
                export_time,
                batch_rows,
                reasons,
                partition_by,
            )
            return
        if as_of is not None or eligible_only or mapping is not None:
            raise ParameterError(
                "--as-of, --eligible-only and --mapping apply to models trained with --from-events; "
                "this model was trained on a table of features."
            )
        key = engine.strip().lower()
        if key not in ("duckdb", "spark"):
            raise ParameterError(f"--engine must be one of duckdb, spark. Got {engine!r} instead.")
        if partition_by and key != "spark":
            raise ParameterError("--partition-by applies to --engine spark (a folder of Parquet part files).")
        with _progress() as bar:
            task = bar.add_task("scoring on Spark" if key == "spark" else "scoring rows", total=None)
            if key == "spark":
                summary = score_table_on_spark(
                    loaded,
                    input,
                    output,
                    allow_missing=allow_missing,
                    reasons=reasons,
                    partition_by=partition_by,
                )
            else:
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


def _train_events(
    data: Path,
    out_dir: Path,
    *,
    quiet: bool,
    lookbacks: str,
    options: dict[str, Any],
    **kwargs: Any,
) -> None:
    from propensity.workflows.events import train_from_events

    with user_errors(), _progress() as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PropensityWarning)
        task = bar.add_task("validating", total=None)

        def step(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        result = train_from_events(
            data, lookbacks=parse_lookbacks(lookbacks), out=out_dir, progress=step, **kwargs, **options
        )
    if quiet:
        _finish(result, out_dir, quiet, caught)
        return
    print_validation(result.validation)
    _print_cutoffs(result.model)
    print_roles(result.run)
    print_training_summary(result.model, out_dir)
    ev = result.model.manifest.events
    assert ev is not None
    out.print(f"[bold]Validation:[/] {ev.validation}. [bold]Label:[/] {ev.label.definition}.")
    out.print(
        f"[bold]Score a fresh log:[/] propensity score {out_dir} EVENTS --as-of YYYY-MM-DD --out scores.parquet"
    )
    _finish(result, out_dir, quiet, caught)


def _score_clv(
    model: str,
    events: Path,
    output: Path,
    as_of: str | None,
    mapping: Path | None,
    engine: str,
    export_time: str | None,
) -> None:
    """A lifetime-value bundle: every buyer of the log at --as-of, with the bundle's stored parameters."""
    from propensity.workflows.clv import score_clv

    with user_errors():
        summary = score_clv(
            model, events, output, as_of=as_of, mapping=mapping, engine=engine, export_time=export_time
        )
    t = summary["totals"]
    value = f", lifetime value {t['clv']:,.2f}" if "clv" in t else ""
    out.print(
        f"[bold]Scored[/] {int(t['customers']):,} customers at {summary['as_of']} with CLV bundle {summary['model_version']}: "
        f"{int(t['likely_alive']):,} likely alive; next {summary['horizon_days']:g} days "
        f"{t['expected_purchases']:,.1f} expected purchases{value} → {output}"
    )


def _score_events(
    model: Any,
    events: Path,
    output: Path,
    as_of: str | None,
    eligible_only: bool,
    mapping: Path | None,
    engine: str,
    export_time: str | None,
    batch_rows: int,
    reasons: int,
    partition_by: list[str],
) -> None:
    from propensity.workflows.events import score_events

    with _progress() as bar:
        bar.add_task("validating the log, rebuilding features, scoring", total=None)
        summary = score_events(
            model,
            events,
            output,
            as_of=as_of,
            eligible_only=eligible_only,
            mapping=mapping,
            engine=engine,
            export_time=export_time,
            batch_rows=batch_rows,
            reasons=reasons,
            partition_by=partition_by,
        )
    if as_of is None:
        err.print(
            f"note: no --as-of given; scored at the end of the log's data ({summary.as_of}).", style="yellow"
        )
    v = summary.validation
    out.print(
        f"Scored {summary.scored:,} customers seen before {summary.as_of} ({summary.eligible:,} eligible) in "
        f"{summary.seconds:.1f}s → {summary.output}; {summary.contacted:,} to contact (threshold "
        f"{summary.threshold:.4f}, expected {summary.expected_conversions_contacted:,.0f} conversions among them); "
        f"bands {summary.bands}.",
        highlight=False,
    )
    if v.get("rows_quarantined"):
        why = ", ".join(f"{k}: {n:,}" for k, n in v["reasons"].items())
        err.print(
            f"{v['rows_quarantined']:,} event row(s) quarantined ({why}) → {summary.quarantine}",
            style="yellow",
            markup=False,
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
    from propensity.loading import resolve_model

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
    ev = m.events
    if ev:
        cfg = ev.features.config
        out.print(
            f"[bold]Trained from events:[/] {ev.label.definition}; lookbacks {cfg['lookbacks']} days; "
            f"{len(ev.cutoffs)} cutoffs {ev.step_days} days apart ({ev.cutoffs[0][:10]} .. "
            f"{ev.test_cutoff[:10]}); eligible: {ev.eligibility.definition}."
        )
        out.print(
            f"[bold]Score a log:[/] propensity score {model} EVENTS --as-of YYYY-MM-DD --out scores.parquet"
        )


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the demo's data and model.")
    ] = Path("demo"),
    customers: Annotated[int, typer.Option(help="Synthetic customers.")] = 20_000,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 365,
    horizon_days: Annotated[int, typer.Option(help="Predict purchases within this many days.")] = 30,
    cutoffs: Annotated[int, typer.Option(help="Rolling cutoffs to stack (30 days apart).")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    candidates: Annotated[
        str | None, typer.Option(help="Comma-separated families (default: logistic_regression,lightgbm).")
    ] = None,
) -> None:
    """The main job end to end on a synthetic shop: generate an event log, validate it, build
    rolling-cutoff features, train, write the bundle and metrics, score today's customers, and
    tell the story."""
    import time

    from propensity.datasets import generate_shop
    from propensity.workflows.events import score_events, train_from_events

    started = time.perf_counter()
    shop_dir, model_dir = out_dir / "shop", out_dir / "model"
    with user_errors():
        with _progress() as bar:
            task = bar.add_task("simulating the shop", total=customers)
            shop = generate_shop(
                customers,
                days=days,
                seed=seed,
                out=shop_dir,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        events = Path(shop.paths["events"])
        out.print(
            f"[bold]Data:[/] a synthetic shop with {shop.customers:,} customers and {shop.events:,} events over "
            f"{shop.days} days ({shop.start} .. {shop.end}) → {events}"
        )
        with _progress() as bar, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PropensityWarning)
            task = bar.add_task("validating", total=None)

            def step(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total or None)

            result = train_from_events(
                events,
                horizon_days=horizon_days,
                cutoffs=cutoffs,
                out=model_dir,
                seed=seed,
                name="demo",
                candidates=[c.strip() for c in candidates.split(",")] if candidates else _DEMO_CANDIDATES,
                progress=step,
                clean_out=out_dir / "validated" / "events.parquet",
            )
        _print_quarantine_line(result.validation, model_dir / "events_quarantine.csv")
        _print_cutoffs(result.model)
        print_training_summary(result.model, model_dir)
        _finish(result, model_dir, False, caught)
        scores_path = out_dir / "scores.parquet"
        scored = score_events(result.model, events, scores_path, export_time=None)
        insights = _demo_insights(result, events, out_dir)
    _print_story(result.model, scored, time.perf_counter() - started, insights)


def _demo_insights(result: Any, events: Path, out_dir: Path) -> Any:
    """The shop report of the demo, from the log validated and the scores written (nothing done twice)."""
    import pandas as pd

    from propensity.workflows.shop import report_shop

    with _progress() as bar:
        bar.add_task("writing the shop report", total=None)
        scores = pd.read_parquet(out_dir / "scores.parquet", columns=["customer_id", "probability", "band"])
        return report_shop(
            events,
            out_dir / "insights.html",
            model=result.model,
            scores=scores,
            validated=(out_dir / "validated" / "events.parquet", result.validation),
        )


#: Families the demo compares (all installed families are the default of `train`).
_DEMO_CANDIDATES = ["logistic_regression", "lightgbm"]


def _print_quarantine_line(report: Any, path: Path) -> None:
    reasons = ", ".join(f"{k} {v:,}" for k, v in report.reasons.items())
    out.print(
        f"[bold]Validated:[/] {report.rows_in:,} rows → {report.rows_ok:,} valid events of {report.customers:,} "
        f"customers; {report.rows_quarantined:,} quarantined ({report.rows_quarantined / max(report.rows_in, 1):.1%}"
        + (f": {reasons}" if reasons else "")
        + f") → {path}"
    )


def _print_cutoffs(model: Any) -> None:
    ev = model.manifest.events
    table = Table(
        title=f"Rolling cutoffs: {ev.label.column} ({ev.eligibility.definition})",
        title_justify="left",
    )
    for col in ("cutoff", "customers seen", "eligible", "positives", "rate", "role"):
        table.add_column(col, justify="right" if col not in ("cutoff", "role") else "left")
    validation = {str(c)[:10] for c in ev.validation_cutoffs}
    for i, row in enumerate(ev.per_cutoff):
        last = i == len(ev.per_cutoff) - 1
        role = "test" if last else ("validation" if row["cutoff"] in validation else "train")
        table.add_row(
            row["cutoff"],
            f"{row['customers_seen']:,}",
            f"{row['eligible']:,}",
            f"{row.get('positives', 0):,.0f}",
            _fmt(row.get("positive_rate"), 3),
            role,
        )
    out.print(table)


def _print_story(model: Any, scored: Any, seconds: float, insights: Any = None) -> None:
    m = model.manifest
    ev = m.events
    test = m.metrics.get("test") or {}
    label = ev.label
    out.print("")
    out.print("[bold underline]The story[/]")
    out.print(
        f"- We asked: which customers will buy in the next {label.horizon_days} days? "
        f"{len(ev.cutoffs)} monthly snapshots of the shop taught the model what buyers looked like "
        f"before they bought (features use only events before each cutoff)."
    )
    out.print(
        f"- {m.winner} won; on the held-out latest cutoff ({ev.test_cutoff[:10]}, {m.provenance.rows_test:,} "
        f"customers it never saw labels for) it ranks buyers with ROC-AUC {_fmt(test.get('roc_auc'), 3)}, "
        f"PR-AUC {_fmt(test.get('pr_auc'), 3)}; the top 10 % hold {_fmt(test.get('lift_top10'), 1)}x the average buyer rate."
        + (
            " Once measured, the model was refitted with that cutoff's labels too, to learn from the latest behaviour."
            if m.provenance.refit_rows
            else ""
        )
    )
    out.print(
        f"- Threshold {m.policy.threshold:.3f} ({m.policy.rationale}): on the test cutoff it would have contacted "
        f"{percent(test.get('contacted_share'), 0)} of eligible customers and reached {percent(test.get('recall'), 0)} of those who "
        f"bought, {percent(test.get('precision'), 0)} of the contacted being buyers (the base rate is "
        f"{percent(test.get('positive_rate'), 0)})."
    )
    out.print(
        f"- Today ({scored.as_of[:10]}): {scored.scored:,} customers scored, {scored.eligible:,} eligible. "
        f"Contact {scored.contacted_eligible:,} eligible customers; expected ≈ {scored.expected_conversions_eligible:,.0f} "
        f"purchases among them in the next {label.horizon_days} days "
        f"(vs ≈ {scored.expected_conversions_all_eligible:,.0f} if you contacted all {scored.eligible:,})."
    )
    out.print(
        f"- Files: bundle {model.path}/ (manifest.json, model.joblib, metrics.json, validation.json, "
        f"events_quarantine.csv, training_set.parquet); scores {scored.output}."
    )
    if insights is not None:
        out.print(
            f"- Shop insights for a manager (products, categories, churn-risk segments, recommendations): "
            f"{insights.report} (every number in {insights.json})."
        )
    out.print(f"- Done in {seconds:.0f}s.")


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
