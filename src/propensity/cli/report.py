"""Evaluation commands: ``propensity evaluate`` (a saved model on new labelled data, with a report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from propensity.cli._common import Encoding, _fmt, app, err, out, text_inputs, user_errors


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
