"""The lifetime-value report: one self-contained, offline HTML file.

Sections: the headline figures, the fitted parameters with log-likelihoods and fit times, the
holdout check (mean holdout purchases by calibration-period frequency, observed against each
model — Fader and Hardie's calibration/holdout plot — plus totals and errors), the distribution of
P(alive), lifetime value by decile, and the most valuable customers. Plotly.js is embedded as in
the model report (:mod:`propensity.report`), so the file opens without a network; its size does not
grow with the number of customers (aggregates and the top 25 rows only).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from propensity.manifest import ClvManifest
from propensity.report import _json, _num, _plotly_js
from propensity.report.figures import COLORS, _layout
from propensity.sources import atomic_path

__all__ = ["build_clv_figures", "render_clv_report", "write_clv_report"]

MODEL_NAMES = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"}
REVENUE_NAMES = {
    "lightgbm": "LightGBM regression",
    "bgnbd_gamma_gamma": "BG/NBD × Gamma-Gamma",
    "pareto_nbd_gamma_gamma": "Pareto/NBD × Gamma-Gamma",
    "last_period": "last period repeats",
}
_LINE = {"bgnbd": COLORS["test"], "pareto_nbd": "#e8590c"}


def _holdout_figure(holdout: dict[str, Any], days: int | None) -> dict[str, Any]:
    rows = holdout["by_frequency"]
    x = [r["frequency"] for r in rows]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "x": x,
            "y": [r["actual"] for r in rows],
            "name": "observed",
            "marker": {"color": "#adb5bd"},
            "customdata": [r["customers"] for r in rows],
            "hovertemplate": "frequency %{x}: observed %{y:.3f} (%{customdata:,} customers)<extra></extra>",
        }
    ]
    for name in holdout["models"]:
        if name not in MODEL_NAMES or name == "gamma_gamma":
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": x,
                "y": [r.get(name) for r in rows],
                "name": f"{MODEL_NAMES[name]} predicted",
                "line": {"color": _LINE.get(name, "#495057")},
                "hovertemplate": "frequency %{x}: predicted %{y:.3f}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": _layout(
            f"Purchases in the {days}-day holdout by calibration-period frequency",
            "repeat purchases in the calibration period",
            "mean purchases in the holdout",
            xaxis={"type": "category"},
        ),
    }


def _alive_figure(scores: pd.DataFrame) -> dict[str, Any]:
    counts, edges = np.histogram(scores["p_alive"].to_numpy(), bins=20, range=(0.0, 1.0))
    return {
        "data": [
            {
                "type": "bar",
                "x": [round(float(e), 3) for e in (edges[:-1] + edges[1:]) / 2],
                "y": counts.tolist(),
                "marker": {"color": COLORS["test"]},
                "hovertemplate": "P(alive) ≈ %{x:.2f}: %{y:,} customers<extra></extra>",
            }
        ],
        "layout": _layout("P(alive) across customers", "P(alive)", "customers", showlegend=False),
    }


def _deciles(scores: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    values = np.sort(scores[column].to_numpy(dtype="float64"))[::-1]
    if not len(values):
        return []
    total = float(values.sum())
    parts = np.array_split(values, min(10, len(values)))
    out = []
    for i, part in enumerate(parts, start=1):
        out.append(
            {
                "decile": i,
                "customers": len(part),
                "mean": float(part.mean()),
                "share": float(part.sum() / total) if total > 0 else 0.0,
            }
        )
    return out


def _decile_figure(deciles: list[dict[str, Any]], label: str) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "bar",
                "x": [str(d["decile"]) for d in deciles],
                "y": [d["share"] for d in deciles],
                "marker": {"color": "#2f9e44"},
                "hovertemplate": "decile %{x}: %{y:.1%} of the total<extra></extra>",
            }
        ],
        "layout": _layout(
            f"Share of total {label} by decile (highest first)",
            "decile",
            "share",
            showlegend=False,
            yaxis={"tickformat": ".0%"},
        ),
    }


def build_clv_figures(manifest: ClvManifest, scores: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The report's Plotly figures (as JSON-ready dicts) by element id."""
    figures = {"alive": _alive_figure(scores)}
    if manifest.holdout:
        figures["holdout-chart"] = _holdout_figure(manifest.holdout, manifest.settings.holdout_days)
    column = "clv" if "clv" in scores.columns else "expected_purchases"
    figures["deciles"] = _decile_figure(
        _deciles(scores, column), "lifetime value" if column == "clv" else "purchases"
    )
    return figures


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(num=_num)
    text = resources.files("propensity.report").joinpath("clv_template.html").read_text(encoding="utf-8")
    return env.from_string(text)


def render_clv_report(manifest: ClvManifest, scores: pd.DataFrame) -> str:
    """The report as one HTML string (plotly.js embedded)."""
    s = manifest.settings
    column = "clv" if "clv" in scores.columns else "expected_purchases"
    top = scores.sort_values(column, ascending=False, kind="stable").head(25)
    show = [
        c
        for c in (
            "customer_id",
            "frequency",
            "recency",
            "T",
            "monetary_value",
            "p_alive",
            "expected_purchases",
            "expected_spend",
            "clv",
        )
        if c in top.columns
    ]
    totals = {
        "customers": len(scores),
        "likely_alive": int((scores["p_alive"] >= 0.5).sum()),
        "expected_purchases": float(scores["expected_purchases"].sum()),
        "clv": float(scores["clv"].sum()) if "clv" in scores.columns else None,
    }
    deciles = _deciles(scores, column)
    models = [
        {
            "name": MODEL_NAMES.get(m.model, m.model),
            "params": ", ".join(f"{k} = {v:.4f}" for k, v in m.params.items()),
            "log_likelihood": m.log_likelihood,
            "fit_seconds": m.fit_seconds,
            "customers": m.customers,
            "method": m.method,
            "notes": m.notes,
        }
        for m in manifest.models
    ]
    unit = "days" if s.time_scaler == 1 else f"units of {s.time_scaler:g} days"
    return str(
        _template().render(
            title=f"Lifetime value — {manifest.name or 'propensity'}",
            m=manifest,
            s=s,
            unit=unit,
            models=models,
            holdout=manifest.holdout,
            model_names=MODEL_NAMES,
            revenue_names=REVENUE_NAMES,
            totals=totals,
            deciles=deciles,
            value_column=column,
            top=top[show].to_dict(orient="records"),
            top_columns=show,
            scored_as_of=str(scores["as_of"].iloc[0]) if len(scores) else "",
            figures=_json(build_clv_figures(manifest, scores)),
            plotly_js=_plotly_js(),
        )
    )


def write_clv_report(path: str | Path, *, manifest: ClvManifest, scores: pd.DataFrame) -> Path:
    """Write the report to ``path`` (atomic: temporary file, then rename) and return the path."""
    path = Path(path)
    text = render_clv_report(manifest, scores)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
