"""Shared pieces of the command line: the Typer app, consoles, error translation, formatting."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from propensity.errors import PropensityError, PropensityWarning

app = typer.Typer(
    name="propensity",
    help="Predict which customers will buy (or churn), explain why, and decide whom to contact.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(
    help="Export known public data sets in a ready-to-train layout.", no_args_is_help=True
)
app.add_typer(datasets_app, name="datasets")

# Rich falls back to 80 columns when output is not a terminal (CI logs, pipes), which
# squeezes the candidate table into unreadable stubs; logs get a wide page instead.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)


@contextmanager
def user_errors() -> Iterator[None]:
    """Translate expected errors into one stderr line and exit code 2."""
    try:
        yield
    except PropensityError as exc:
        if os.environ.get("PROPENSITY_DEBUG"):
            raise
        err.print(f"error: {exc}", style="bold red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


@contextmanager
def text_inputs(encoding: str | None, *, show: bool = True) -> Iterator[dict[str, str]]:
    """Read text inputs inside the block with ``--encoding`` (or detected); on success print how
    each was decoded (the summary's ``Encoding:`` line)."""
    from propensity.sources import check_encoding, reading_encoding

    if encoding is not None:
        with user_errors():
            check_encoding(encoding)
    with reading_encoding(encoding) as used:
        yield used
    if show and used:
        listed = ", ".join(f"{path} {how}" for path, how in used.items())
        out.print(f"Encoding: {listed}.", highlight=False, markup=False, soft_wrap=True)


def show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print recorded warnings: ours as one ``warning:`` line each, others as Python would."""
    for w in caught:
        if issubclass(w.category, PropensityWarning):
            err.print(f"warning: {w.message}", style="yellow", markup=False, highlight=False, soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@contextmanager
def live_warnings() -> Iterator[None]:
    """Print our warnings the moment they are raised (e.g. before a long run), others as Python would."""
    previous = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, PropensityWarning):
            err.print(f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True)
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", PropensityWarning)
        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = previous


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def print_roles(run: Any) -> None:
    """The column-role table of a training run (``TrainingResult.run``)."""
    table = Table(title="Columns", title_justify="left", show_lines=False)
    for col in ("column", "role", "distinct", "missing", "note"):
        table.add_column(col)
    for c in run.roles.columns:
        role = str(c.role) + (" (output id)" if c.name == run.roles.id_column else "")
        style = (
            "dim" if not (c.is_feature or c.role.value == "target" or c.name == run.roles.id_column) else None
        )
        table.add_row(c.name, role, str(c.n_unique), f"{c.missing_share:.1%}", c.note, style=style)
    out.print(table)


def print_training_summary(model: Any, out_dir: Path | None) -> None:
    m = model.manifest
    table = Table(
        title="Candidates (out-of-fold on the training part; test = held-out)", title_justify="left"
    )
    for col in (
        "candidate",
        "ROC-AUC",
        "PR-AUC",
        "Brier",
        "LogLoss",
        "F1",
        "Prec",
        "Recall",
        "Lift10",
        "test ROC",
        "test PR",
        "calib",
        "fit s",
    ):
        table.add_column(col, justify="right" if col != "candidate" else "left", no_wrap=True)
    for c in m.candidates:
        if c.error:
            table.add_row(c.name, f"failed: {c.error}", *[""] * 11, style="red")
            continue
        o, t = c.oof, c.test or {}
        style = "bold green" if c.name == m.winner else None
        table.add_row(
            c.name + (" *" if c.name == m.winner else ""),
            _fmt(o.get("roc_auc")),
            _fmt(o.get("pr_auc")),
            _fmt(o.get("brier")),
            _fmt(o.get("log_loss")),
            _fmt(o.get("f1")),
            _fmt(o.get("precision")),
            _fmt(o.get("recall")),
            _fmt(o.get("lift_top10"), 2),
            _fmt(t.get("roc_auc")),
            _fmt(t.get("pr_auc")),
            c.calibration,
            _fmt(c.fit_seconds, 1),
            style=style,
        )
    out.print(table)
    test = m.metrics.get("test") or {}
    p = m.policy
    prov = m.provenance
    out.print(
        f"[bold]Winner:[/] {m.winner} (by out-of-fold {prov.metric}); calibration: {m.calibration.method} "
        f"(log loss {m.calibration.before['log_loss']:.4f} → {m.calibration.after['log_loss']:.4f})."
    )
    if m.ensemble is not None:
        members = ", ".join(f"{e.name} {e.weight:.3f}" for e in m.ensemble.members)
        out.print(
            f"[bold]Ensemble:[/] {members} (weights by {m.ensemble.criterion}: "
            f"{m.ensemble.score['ensemble']:.4f} vs {m.ensemble.score['best_member']:.4f} for the best member; "
            f"best single candidate {m.ensemble.single_winner}).",
            highlight=False,
        )
    out.print(f"[bold]Threshold:[/] {p.threshold:.4f} — {p.rationale}.")
    exp = p.expected
    if exp:
        out.print(
            f"  On out-of-fold rows this contacts {exp['contacted_share']:.1%} of customers, reaching "
            f"{_fmt(exp.get('recall'), 3)} of buyers at precision {_fmt(exp.get('precision'), 3)}"
            + (
                f"; profit {exp['profit']:.2f} vs {exp['profit_contact_all']:.2f} contacting everyone."
                if "profit" in exp
                else "."
            )
        )
    bands = ", ".join(
        f"{b.name} ≥ {b.lower:.3f} ({b.share:.0%} of customers, {_fmt(b.observed_rate, 3)} converted)"
        for b in p.bands
    )
    out.print(f"[bold]Bands:[/] {bands}")
    out.print(
        f"[bold]Test[/] ({prov.rows_test} rows, {prov.test_source}): ROC-AUC {_fmt(test.get('roc_auc'))}, "
        f"PR-AUC {_fmt(test.get('pr_auc'))}, Brier {_fmt(test.get('brier'))}, F1 {_fmt(test.get('f1'))} at the threshold."
    )
    reasons = ", ".join(f"{k}: {v}" for k, v in prov.quarantine_reasons.items())
    out.print(
        f"[bold]Rows:[/] {prov.rows_in} read, {prov.rows_quarantined} quarantined"
        + (f" ({reasons})" if reasons else "")
        + f", {prov.rows_train} train, {prov.rows_test} test"
        + (
            f"; the shipped model was refitted on all {prov.refit_rows} once tested."
            if prov.refit_rows
            else "."
        )
    )
    if out_dir is not None:
        out.print(
            f"[bold]Written:[/] {out_dir}/ (bundle, version {m.model_version}) — manifest.json, model.joblib, "
            f"metrics.json, quarantine.csv"
            + (", evaluation.json" if (out_dir / "evaluation.json").exists() else "")
            + (", report.html" if (out_dir / "report.html").exists() else "")
        )


def print_tracking(result: Any) -> None:
    """One line about where a run was recorded (used by ``train`` and ``models register``)."""
    where = result.run_url or f"{result.tracking_uri} (browse: propensity tracking ui)"
    alias = f", {result.alias} → version {result.version}" if result.alias else ""
    out.print(
        f"Tracked: run {result.run_id[:8]} in experiment '{result.experiment_name}', registered as "
        f"{result.model_uri}{alias} ({result.seconds:.1f} s) — {where}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


Target = Annotated[str, typer.Option("--target", "-t", help="The outcome column (two values).")]
Encoding = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of CSV inputs, e.g. utf-8, cp1252, latin-1, utf-16 "
        "(default: detected; UTF-8 with or without BOM, UTF-16, cp1252/latin-1).",
    ),
]
