"""Event-log commands: validate, features, generate (and the options train/score share with them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from propensity.cli._common import Encoding, _progress, app, err, out, text_inputs, user_errors

# ------------------------------------------------------------------------------ shared options

MappingFile = Annotated[
    Path | None,
    typer.Option("--mapping", "-m", help="YAML mapping of your columns and event names (see docs)."),
]
MapCols = Annotated[
    list[str] | None,
    typer.Option("--map", help="canonical=your_column, e.g. --map customer_id=CustomerID (repeatable)."),
]
MapEvents = Annotated[
    list[str] | None,
    typer.Option("--event", help="canonical=name[,name], e.g. --event purchase=payment_done (repeatable)."),
]
OrderLog = Annotated[
    bool | None,
    typer.Option("--order-log/--event-log", help="Every line is a purchase (an order/transaction log)."),
]
Returns = Annotated[
    str | None,
    typer.Option("--returns", help="COLUMN:PREFIX marking returns, e.g. InvoiceNo:C (cancellations)."),
]
Timezone = Annotated[
    str | None,
    typer.Option("--timezone", help="Zone of timestamps without an offset: UTC, +01:00, Europe/Berlin."),
]
TsFormat = Annotated[
    str | None,
    typer.Option("--ts-format", help="strftime pattern for non-ISO timestamps, e.g. '%d/%m/%Y %H:%M'."),
]
SessionGap = Annotated[
    float | None,
    typer.Option("--session-gap", help="Minutes of inactivity that start a new session (default 30)."),
]
Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        envvar="PROPENSITY_ENGINE",
        help="duckdb (in-process, default) or spark.",
        show_envvar=True,
    ),
]
ExportTime = Annotated[
    str | None,
    typer.Option(
        "--export-time", help="When the log was exported: later timestamps are quarantined (default: now)."
    ),
]
Lookbacks = Annotated[str, typer.Option("--lookbacks", help="Comma-separated window lengths in days.")]
EligibleDays = Annotated[
    int | None,
    typer.Option(
        "--eligible-days",
        help="Eligible = active within N days before the cutoff (default or 0: everyone seen before it).",
    ),
]


def build_mapping(
    mapping: Path | None,
    columns: list[str] | None,
    events: list[str] | None,
    order_log: bool | None,
    returns: str | None,
    timezone: str | None,
    ts_format: str | None,
    session_gap: float | None,
) -> Any:
    """The mapping from a YAML file and/or flags (flags win)."""
    from propensity.events.mapping import mapping_from_options

    return mapping_from_options(
        mapping,
        columns=columns or (),
        events=events or (),
        order_log=order_log,
        returns_prefix=returns,
        timezone=timezone,
        timestamp_format=ts_format,
        session_gap_minutes=session_gap,
    )


def parse_lookbacks(text: str) -> tuple[int, ...]:
    from propensity.errors import ParameterError

    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise ParameterError(
            f"--lookbacks must be comma-separated whole days like 7,30,90. Got {text!r} instead."
        ) from None


def print_validation(report: Any) -> None:
    """The validation report as a short table and notes."""
    r = report
    share = r.rows_quarantined / r.rows_in if r.rows_in else 0.0
    out.print(
        f"[bold]Read[/] {r.rows_in:,} rows: {r.rows_ok:,} valid, {r.rows_quarantined:,} quarantined ({share:.1%}); "
        f"{r.customers:,} customers, {r.first_event or '–'} .. {r.last_event or '–'} ({r.engine}, {r.seconds:.1f}s)."
    )
    if r.reasons:
        table = Table(title="Quarantined by reason", title_justify="left")
        table.add_column("reason")
        table.add_column("rows", justify="right")
        for reason, n in r.reasons.items():
            table.add_row(reason, f"{n:,}")
        out.print(table)
    if r.event_types:
        out.print("[bold]Event types:[/] " + ", ".join(f"{k} {v:,}" for k, v in r.event_types.items()))
    out.print(
        f"[bold]Sessions:[/] {r.sessions}. [bold]Columns:[/] "
        + ", ".join(f"{k}←{v}" for k, v in r.columns.items())
        + (" (order log)" if r.order_log else "")
    )
    if getattr(r, "encoding", None):
        out.print(f"[bold]Encoding:[/] {r.encoding}.")
    for note in r.notes:
        err.print(f"note: {note}", style="yellow", markup=False, highlight=False)


# ------------------------------------------------------------------------------ commands


@app.command()
def validate(
    events: Annotated[Path, typer.Argument(help="Event or order log: CSV (compressed ok) or Parquet.")],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for events.parquet (valid, canonical), quarantine.csv, validation.json.",
        ),
    ] = None,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    encoding: Encoding = None,
) -> None:
    """Validate an event log: rows read, valid and quarantined by reason (written beside the output)."""
    from propensity.events.validate import validate_events

    folder = out_dir or Path(f"{events.name.split('.')[0]}_validated")
    with user_errors(), text_inputs(encoding, show=False):
        mp = build_mapping(
            mapping, columns, event_names, order_log, returns, timezone, ts_format, session_gap
        )
        report = validate_events(events, mp, out=folder, engine=engine, export_time=export_time)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        print_validation(report)
        written = ["validation.json"] + (["events.parquet"] if report.rows_ok else [])
        if report.quarantine_path:
            written.append("quarantine.csv")
        out.print(f"[bold]Written:[/] {folder}/ — {', '.join(written)}")
    if report.rows_ok == 0:
        err.print(
            f"error: every one of the {report.rows_in:,} rows was quarantined; see {folder}/quarantine.csv "
            "and check the mapping.",
            style="bold red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(code=2)


@app.command()
def features(
    events: Annotated[Path, typer.Argument(help="Event or order log: CSV (compressed ok) or Parquet.")],
    as_of: Annotated[
        str, typer.Option("--as-of", help="Cutoff date/time (UTC); only events before it are used.")
    ],
    output: Annotated[Path, typer.Option("--out", "-o", help="Output CSV or Parquet file.")] = Path(
        "features.parquet"
    ),
    lookbacks: Lookbacks = "7,30,90",
    horizon_days: Annotated[
        int | None,
        typer.Option(
            "--horizon-days", help="Also add labels: purchase/churn/revenue in the N days from the cutoff."
        ),
    ] = None,
    allow_partial_horizon: Annotated[
        bool,
        typer.Option(help="Accept a horizon that runs past the end of the data (labels will undercount)."),
    ] = False,
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
    list_features: Annotated[bool, typer.Option("--list", help="Also print the feature registry.")] = False,
    encoding: Encoding = None,
) -> None:
    """Point-in-time customer features at a cutoff (and labels with --horizon-days)."""
    from propensity.features import FeatureConfig, feature_registry
    from propensity.workflows.events import compute_features

    with user_errors(), text_inputs(encoding):
        mp = build_mapping(
            mapping, columns, event_names, order_log, returns, timezone, ts_format, session_gap
        )
        with _progress() as bar:
            bar.add_task("validating and building features", total=None)
            _, summary = compute_features(
                events,
                as_of,
                mapping=mp,
                lookbacks=parse_lookbacks(lookbacks),
                horizon_days=horizon_days,
                eligible_days=eligible_days,
                out=output,
                engine=engine,
                export_time=export_time,
                allow_partial_horizon=allow_partial_horizon,
            )
    v = summary.validation
    out.print(
        f"[bold]Features[/] at {summary.as_of}: {summary.customers:,} customers seen before it "
        f"({summary.eligible:,} eligible: {summary.eligibility['definition']}), {summary.features} features "
        f"→ {summary.output}"
    )
    out.print(
        f"[bold]Events:[/] {v['rows_in']:,} read, {v['rows_quarantined']:,} quarantined"
        + (f" → {summary.quarantine}" if summary.quarantine else "")
        + f"; {summary.seconds:.1f}s ({summary.events_per_second:,.0f} events/s end to end)."
    )
    if summary.labels:
        out.print(
            "[bold]Labels[/] (share / mean): " + ", ".join(f"{k} {v:.4g}" for k, v in summary.labels.items())
        )
    if list_features:
        table = Table(title="Feature registry", title_justify="left")
        for col in ("name", "window", "unit", "description"):
            table.add_column(col)
        for d in feature_registry(FeatureConfig.from_dict(summary.config)):
            table.add_row(d.name, d.window, d.unit or "", d.description)
        out.print(table)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 10_000,
    days: Annotated[int, typer.Option(help="Length of the period in days.")] = 180,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 7,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("data/shop"),
    start: Annotated[str, typer.Option(help="First day (UTC), YYYY-MM-DD.")] = "2024-01-01",
    clean: Annotated[bool, typer.Option("--clean", help="Plant no dirty rows.")] = False,
) -> None:
    """Generate a realistic synthetic shop: events.parquet, customers.parquet and shop.json."""
    from propensity.datasets import generate_shop

    with user_errors(), _progress() as bar:
        task = bar.add_task("simulating customers", total=customers)
        summary = generate_shop(
            customers,
            days=days,
            seed=seed,
            out=out_dir,
            start=start,
            dirty=not clean,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    dirty = sum(summary.dirty.values())
    out.print(
        f"[bold]Generated[/] {summary.events:,} events for {summary.customers:,} customers over {summary.days} days "
        f"({summary.start} .. {summary.end}) in {summary.seconds:.1f}s → {out_dir}/"
    )
    out.print("[bold]Event types:[/] " + ", ".join(f"{k} {v:,}" for k, v in summary.event_types.items()))
    if dirty:
        out.print(
            f"[bold]Dirty rows planted:[/] {dirty:,} ("
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in summary.dirty.items())
            + ") — see shop.json"
        )
