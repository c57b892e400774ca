"""The monitoring report: one offline HTML page from ``monitor.json``.

A status banner with the alerts, a red/amber/green table of every feature's tests, the score
distribution against training with the CBPE estimate, realised performance when labels exist,
and the reference-vs-current bins of the most-drifted features. Plotly.js is embedded as in the
model report, so the page opens without a network.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from propensity.report import _json, _num, _pct, _plotly_js
from propensity.report.figures import COLORS, _layout
from propensity.sources import atomic_path

__all__ = ["monitor_figures", "render_monitor_report", "write_monitor_report"]

RAG = {"green": "#2f9e44", "amber": "#f08c00", "red": "#c92a2a", "n/a": "#868e96"}


def _bars(title: str, bins: list[dict[str, Any]], x: str) -> dict[str, Any]:
    labels = [b["bin"] for b in bins]
    return {
        "data": [
            {
                "type": "bar",
                "x": labels,
                "y": [b["reference"] for b in bins],
                "name": "training",
                "marker": {"color": COLORS["oof"]},
            },
            {
                "type": "bar",
                "x": labels,
                "y": [b["current"] for b in bins],
                "name": "now",
                "marker": {"color": COLORS["test"]},
            },
        ],
        "layout": _layout(title, x, "share of rows", barmode="group", xaxis={"type": "category"}),
    }


def monitor_figures(result: dict[str, Any], top: int = 6) -> dict[str, Any]:
    """Plotly figures: PSI per feature, the score distribution, the most-drifted features' bins."""
    feats = [f for f in result["features"] if f.get("psi") is not None]
    figures: dict[str, Any] = {
        "psi": {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "y": [f["name"] for f in feats][::-1],
                    "x": [f["psi"] for f in feats][::-1],
                    "marker": {"color": [RAG[f["status"]] for f in feats][::-1]},
                    "hovertemplate": "%{y}: PSI %{x:.3f}<extra></extra>",
                }
            ],
            "layout": _layout(
                "Population stability index per feature",
                "PSI",
                "",
                height=max(260, 22 * len(feats) + 90),
                margin={"l": 190},
            ),
        }
    }
    if result["score"].get("bins"):
        figures["score"] = _bars(
            "Calibrated probability: training (out-of-fold) vs now", result["score"]["bins"], "probability"
        )
    figures["features"] = [
        {"id": f"feat-{i}", "figure": _bars(f"{f['name']} ({f['status']})", f["bins"], f["name"])}
        for i, f in enumerate(feats[:top])
    ]
    return figures


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(num=_num, pct=_pct)
    text = resources.files("propensity.report").joinpath("monitor_template.html").read_text(encoding="utf-8")
    return env.from_string(text)


def render_monitor_report(result: dict[str, Any]) -> str:
    """The report as one HTML string (plotly.js embedded)."""
    figures = monitor_figures(result)
    return str(
        _template().render(
            title=f"Monitoring — {result['model'].get('name') or 'propensity model'}",
            r=result,
            rag=RAG,
            feature_figures=figures["features"],
            figures=_json(figures),
            plotly_js=_plotly_js(),
        )
    )


def write_monitor_report(result: dict[str, Any], path: str | Path) -> Path:
    """Write the report to ``path`` (atomically) and return the path."""
    path = Path(path)
    text = render_monitor_report(result)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
