"""``propensity monitor``: input drift, score drift and performance of a saved model on new data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from propensity.cli._common import app, err, out, user_errors

#: Exit code when a test is red, so a scheduler can act on it.
ALERT_EXIT = 3
_STYLE = {"green": "green", "amber": "yellow", "red": "bold red", "n/a": "dim"}


@app.command()
def monitor(
    model: Annotated[str, typer.Argument(help="Bundle folder, or models:/name/version, models:/name@alias.")],
    data: Annotated[
        Path,
        typer.Argument(
            help="New data: a CSV/Parquet table of feature records, or the event log of an event model."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for monitor.json and monitor.html.")
    ] = Path("monitor"),
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels", help="Column of a table with the outcome: realised ROC-AUC, PR-AUC, calibration."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Event models: rebuild features at this instant (default: end of data)."
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="NAME=AMBER,RED to change a test's levels, e.g. psi=0.1,0.25 (repeatable; names: psi, ks, "
            "jensen_shannon, missing, score_psi, decision_rate, auc_drop, ece).",
        ),
    ] = None,
    sample_rows: Annotated[
        int,
        typer.Option("--sample-rows", help="Rows scored for score drift and performance (drift uses all)."),
    ] = 200_000,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write monitor.json only.")] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            envvar="PROPENSITY_ENGINE",
            show_envvar=True,
            help="Engine of event-log features: duckdb or spark.",
        ),
    ] = "duckdb",
) -> None:
    """Has anything moved since training? Drift per feature, of the score, and performance (exit 3 on an alert)."""
    from propensity.monitoring import Thresholds
    from propensity.workflows.monitoring import monitor as run_monitor

    with user_errors():
        result = run_monitor(
            model,
            data,
            out=out_dir,
            labels=labels,
            as_of=as_of,
            thresholds=Thresholds.parse(threshold),
            sample_rows=sample_rows,
            engine=engine,
            report=not no_report,
        )
    table = Table(
        title=f"Drift of {result.data['rows']:,} rows against the training profile", title_justify="left"
    )
    for col in ("feature", "status", "PSI", "KS / JS", "missing now"):
        table.add_column(col, justify="left" if col in ("feature", "status") else "right")
    for f in result.features[:15]:
        dist = f["ks"] if f["ks"] is not None else f["jensen_shannon"]
        table.add_row(
            f["name"],
            f"[{_STYLE[f['status']]}]{f['status']}[/]",
            "–" if f["psi"] is None else f"{f['psi']:.3f}",
            "–" if dist is None else f"{dist:.3f}",
            f"{f['missing_current']:.1%}",
        )
    out.print(table)
    if len(result.features) > 15:
        out.print(
            f"… and {len(result.features) - 15} more features in {result.paths.get('summary')}",
            highlight=False,
        )
    s = result.score
    est = s["estimated"].get("roc_auc")
    ref = result.model["test"].get("roc_auc")
    out.print(
        f"score: mean {s['mean']:.3f} (training {s['reference']['mean'] or float('nan'):.3f}), contact rate "
        f"{s['decision_rate']:.1%}, estimated ROC-AUC {est if est is not None else float('nan'):.3f} "
        f"(test at training {ref if ref is not None else float('nan'):.3f}) [{_STYLE[s['status']]}]{s['status']}[/]",
        highlight=False,
    )
    if result.performance is not None and "roc_auc" in result.performance:
        p = result.performance
        low, high = p["roc_auc_interval"]
        out.print(
            f"realised on {p['rows']:,} labelled rows: ROC-AUC {p['roc_auc']:.3f} ({low:.3f}–{high:.3f}), "
            f"PR-AUC {p['pr_auc']:.3f}, calibration error {p['ece']:.3f} [{_STYLE[p['status']]}]{p['status']}[/]",
            highlight=False,
        )
    for path in result.paths.values():
        out.print(f"wrote {path}", highlight=False)
    if result.alert:
        for a in result.alerts:
            err.print(f"alert: {a}", style="bold red", markup=False, highlight=False)
        raise typer.Exit(code=ALERT_EXIT)
    for w in result.warnings:
        err.print(f"warning: {w}", style="yellow", markup=False, highlight=False)
