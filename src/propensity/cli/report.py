"""Report commands: ``propensity evaluate`` (a saved model on new labelled data, with a report) and
``propensity report-shop`` (shop insights from an event log)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from propensity.cli._common import Encoding, _fmt, app, err, out, text_inputs, user_errors
from propensity.cli.events import (
    Engine,
    MapCols,
    MapEvents,
    MappingFile,
    OrderLog,
    Returns,
    SessionGap,
    Timezone,
    TsFormat,
    build_mapping,
)


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Bundle folder, or models:/name/version, models:/name@alias.")],
    data: Annotated[
        Path, typer.Argument(help="Labelled CSV or Parquet table with the model's columns and the outcome.")
    ],
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Outcome column (default: the one the model was trained on)."),
    ] = None,
    report: Annotated[Path, typer.Option("--report", "-r", help="HTML report to write.")] = Path(
        "report.html"
    ),
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Evaluation data (JSON) to write (default: the report's name with .json)."
        ),
    ] = None,
    value: Annotated[
        float | None, typer.Option(help="Profit curve: value of one buyer (default: the model's policy).")
    ] = None,
    cost: Annotated[float | None, typer.Option(help="Profit curve: cost of one contact.")] = None,
    allow_missing: Annotated[
        bool, typer.Option(help="Impute required columns that are absent instead of failing.")
    ] = False,
    encoding: Encoding = None,
) -> None:
    """Evaluate a saved model on new labelled data: metrics, curves, lift, profit, slices, SHAP → HTML + JSON."""
    with text_inputs(encoding):
        _evaluate(model, data, target, report, json_path, value, cost, allow_missing)


def _evaluate(
    model: str,
    data: Path,
    target: str | None,
    report: Path,
    json_path: Path | None,
    value: float | None,
    cost: float | None,
    allow_missing: bool,
) -> None:
    from propensity.errors import ParameterError
    from propensity.evaluation import write_evaluation
    from propensity.sources import check_output
    from propensity.workflows.evaluation import evaluate as run_evaluation

    with user_errors():
        if (value is None) != (cost is None):
            raise ParameterError("--value and --cost go together (both or neither).")
        if report.suffix.lower() not in (".html", ".htm"):
            raise ParameterError(f"The --report file must end in .html. Got '{report}' instead.")
        from propensity.loading import resolve_model

        json_target = json_path or report.with_suffix(".json")
        for path, what in ((report, "--report file"), (json_target, "--json file")):
            check_output(path, inputs=[data], what=what)
        loaded = resolve_model(model)
        stem = report.with_suffix("")
        evaluation = run_evaluation(
            loaded,
            data,
            target=target,
            value=value,
            cost=cost,
            allow_missing=allow_missing,
            quarantine_path=stem.with_name(stem.name + ".quarantine.csv"),
        )
        json_file = write_evaluation(evaluation, json_target)
        try:
            from propensity.report import write_report
        except ImportError as exc:  # pragma: no cover - plotly/jinja2 are in the explain extra
            raise ParameterError(f"{exc}") from exc
        write_report(evaluation, report)
    ds = evaluation["datasets"]["evaluation"]
    m = ds["metrics"]
    out.print(
        f"Evaluated {ds['n']:,} rows ({ds['positives']:,} positive): ROC-AUC {_fmt(m['roc_auc'])}, "
        f"PR-AUC {_fmt(m['pr_auc'])}, Brier {_fmt(m['brier'])}, lift@10% {_fmt(m['lift_top10'], 2)}; at threshold "
        f"{m['threshold']:.4f}: precision {_fmt(m['precision'], 3)}, recall {_fmt(m['recall'], 3)}, "
        f"contacting {_fmt(m['contacted_share'], 3)}.",
        highlight=False,
    )
    out.print(f"Written: {report} and {json_file}", highlight=False)
    for warning in evaluation["warnings"]:
        err.print(f"note: {warning}", style="yellow", markup=False, highlight=False)


@app.command("report-shop")
def report_shop(
    events: Annotated[Path, typer.Argument(help="Event or order log: CSV (compressed ok) or Parquet.")],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Report to write: .html (default) or .md (Markdown).")
    ] = Path("insights.html"),
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="An event-trained model (folder or models:/ URI): scores, segments by band, its performance.",
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="html or md (default: from the --out suffix).")
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Every number as JSON (default: the report's name with .json)."),
    ] = None,
    clv: Annotated[
        Path | None,
        typer.Option(
            "--clv",
            help="A lifetime-value bundle of propensity clv (scored on EVENTS), or a table of customer_id and clv "
            "(e.g. its scores.parquet).",
        ),
    ] = None,
    min_support: Annotated[
        int,
        typer.Option("--min-support", help="Viewers (or carters) a product needs to be ranked by a rate."),
    ] = 30,
    engine: Engine = "duckdb",
    mapping: MappingFile = None,
    map_cols: MapCols = None,
    map_events: MapEvents = None,
    order_log: OrderLog = None,
    returns: Returns = None,
    timezone: Timezone = None,
    ts_format: TsFormat = None,
    session_gap: SessionGap = None,
) -> None:
    """Shop insights a manager can act on: products, categories, churn-risk segments, findings and
    recommendations, as one offline HTML page (or Markdown) with every number in a JSON file next to it."""
    from propensity.sources import check_output
    from propensity.workflows.shop import report_shop as run_report

    with user_errors():
        mp = build_mapping(
            mapping, map_cols, map_events, order_log, returns, timezone, ts_format, session_gap
        )
        check_output(out_path, inputs=[events], what="--out file")
        loaded = None
        if model is not None:
            from propensity.loading import resolve_model

            loaded = resolve_model(model)
        values = _lifetime_values(clv, events, engine) if clv is not None else None
        result = run_report(
            events,
            out_path,
            format=fmt,
            json_path=json_path,
            mapping=mp,
            model=loaded,
            clv=values,
            engine=engine,
            min_support=min_support,
        )
    for finding in result.findings:
        out.print(f"- {finding}", highlight=False, soft_wrap=True)
    out.print(f"Written: {result.report} and {result.json} (in {result.seconds:.1f}s)", highlight=False)


def _lifetime_values(clv: Path, events: Path, engine: str) -> Any:
    """``customer_id`` and ``clv``: a CLV bundle scored on the log (at its end), or a table as given."""
    from propensity.bundle import is_clv_bundle
    from propensity.workflows.shop import read_customer_table

    if clv.is_dir() and is_clv_bundle(clv):
        from propensity.workflows.clv import lifetime_values

        return lifetime_values(clv, events, engine=engine)[["customer_id", "clv"]]
    return read_customer_table(clv, ("customer_id", "clv"))
