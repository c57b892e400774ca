"""``propensity clv``: lifetime value from an event or order log (BG/NBD, Pareto/NBD, Gamma-Gamma)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from propensity.cli._common import _progress, app, err, out, user_errors
from propensity.cli.events import (
    Engine,
    ExportTime,
    MapCols,
    MapEvents,
    MappingFile,
    OrderLog,
    Returns,
    SessionGap,
    Timezone,
    TsFormat,
    build_mapping,
    print_validation,
)


@app.command()
def clv(
    events: Annotated[Path, typer.Argument(help="Event or order log: CSV (compressed ok) or Parquet.")],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Bundle folder: manifest.json, scores.parquet, clv.json, report.html."
        ),
    ] = Path("models/clv"),
    holdout_days: Annotated[
        int | None,
        typer.Option(
            "--holdout-days", help="Hold out the last D days to check the fit (calibration vs holdout)."
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option("--model", help="bgnbd (default), pareto, or both (BG/NBD is then the primary model)."),
    ] = "bgnbd",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Fit on purchases before this cutoff (default: end of data minus the holdout)."
        ),
    ] = None,
    horizon_days: Annotated[
        float,
        typer.Option("--horizon-days", help="Horizon of expected purchases and lifetime value, in days."),
    ] = 365.0,
    discount_rate: Annotated[
        float,
        typer.Option("--discount-rate", help="Discount rate per 30 days of the lifetime value (0.01 = 1 %)."),
    ] = 0.0,
    time_unit_days: Annotated[
        float,
        typer.Option("--time-unit-days", help="Days per model time unit: 1 (days, default) or 7 (weeks)."),
    ] = 1.0,
    method: Annotated[
        str,
        typer.Option(
            "--method", help="map (flat priors, seconds) or mcmc (posterior and intervals, minutes)."
        ),
    ] = "map",
    spend: Annotated[
        bool, typer.Option("--spend/--no-spend", help="Fit the Gamma-Gamma spend model and lifetime value.")
    ] = True,
    scores: Annotated[
        Path | None,
        typer.Option("--scores", help="Scores file, CSV or Parquet (default OUT/scores.parquet)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the mcmc sampler.")] = 0,
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
    name: Annotated[
        str | None, typer.Option("--name", help="Registered model name (default: the --out folder's name).")
    ] = None,
    no_tracking: Annotated[
        bool, typer.Option("--no-tracking", help="Do not record the run in MLflow.")
    ] = False,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="MLflow experiment (default: the name).")
    ] = None,
) -> None:
    """Customer lifetime value: who is alive, how often they will buy, what they are worth."""
    from propensity.workflows.clv import fit_clv_from_events

    with user_errors():
        mp = build_mapping(
            mapping, columns, event_names, order_log, returns, timezone, ts_format, session_gap
        )
        with _progress() as bar:
            bar.add_task("validating, summarising and fitting (PyTensor compiles the first fit)", total=None)
            result = fit_clv_from_events(
                events,
                out=out_dir,
                as_of=as_of,
                holdout_days=holdout_days,
                model=model,
                method=method,
                spend=spend,
                horizon_days=horizon_days,
                discount_rate=discount_rate,
                time_scaler=time_unit_days,
                mapping=mp,
                engine=engine,
                export_time=export_time,
                scores=scores,
                seed=seed,
                name=name,
                tracking=False if no_tracking else None,
                tracking_uri=tracking_uri,
                experiment=experiment,
            )
    s = result.summary
    print_validation(result.validation)
    out.print(
        f"[bold]Summary[/] at {s.as_of}: {s.customers_fitted:,} customers with a purchase before it"
        + (f"; holdout {s.holdout_days} days" if s.holdout_days else "")
        + f" (time unit {s.time_scaler:g} day(s))."
    )
    for fit in result.fit.fits:
        params = ", ".join(f"{k} {v:.4f}" for k, v in fit.params.items())
        out.print(
            f"[bold]{fit.model}[/] ({fit.method}): {params}; log-likelihood {fit.log_likelihood:,.2f}; "
            f"{fit.customers:,} customers; {fit.fit_seconds:.1f} s",
            highlight=False,
        )
        for note in fit.notes:
            out.print(f"  {note}", highlight=False)
    if s.holdout:
        for name_, m in s.holdout["models"].items():
            if "predicted_purchases" in m:
                out.print(
                    f"[bold]Holdout[/] {name_}: predicted {m['predicted_purchases']:,.1f} purchases, observed "
                    f"{m['actual_purchases']:,}; mean absolute error {m['mean_absolute_error']:.4f} per customer."
                )
    t = s.totals
    value = (
        f", lifetime value {t['clv']:,.2f} (top 10 % hold {t['top_decile_clv_share']:.0%})"
        if "clv" in t
        else ""
    )
    out.print(
        f"[bold]Scores[/] at {s.scored_as_of}: {s.customers_scored:,} customers, {int(t['likely_alive']):,} likely alive; "
        f"next {s.horizon_days:g} days: {t['expected_purchases']:,.1f} expected purchases{value}."
    )
    for note in s.notes:
        err.print(f"note: {note}", style="yellow", markup=False, highlight=False)
    out.print(
        f"[bold]Written:[/] {out_dir}/ (CLV bundle {s.model_version}) — "
        + ", ".join(Path(p).name for k, p in s.paths.items() if k not in ("bundle",))
    )
    if result.tracking is not None:
        from propensity.cli._common import print_tracking

        if getattr(result.tracking, "run_id", None):
            print_tracking(result.tracking)
        else:
            err.print(f"warning: {result.tracking.message}", style="yellow", markup=False, highlight=False)
