"""Plotly figures (as plain JSON-ready dicts) built from ``evaluation.json`` data.

Building the dicts directly keeps the report fast and its numbers exactly those of the
evaluation; plotly.js (embedded by the template) draws them.
"""

from __future__ import annotations

from typing import Any

COLORS = {
    "oof": "#7f8c9a",
    "test": "#1f6feb",
    "evaluation": "#1f6feb",
    "pos": "#d9480f",
    "neg": "#1f6feb",
    "good": "#2f9e44",
    "bad": "#c92a2a",
    "grid": "#e6e8eb",
    "muted": "#9aa4ae",
}
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12, "color": "#24292f"}


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "font": FONT,
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 44, "b": 48},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"title": {"text": x}, "gridcolor": COLORS["grid"], "zeroline": False},
        "yaxis": {"title": {"text": y}, "gridcolor": COLORS["grid"], "zeroline": False},
        "legend": {"orientation": "h", "x": 0, "y": -0.22, "font": {"size": 11}},
        "hovermode": "closest",
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def _name(ds: dict[str, Any], key: str) -> str:
    return {"oof": "out-of-fold (train)", "test": "test", "evaluation": "evaluation"}.get(key, ds["label"])


def roc(ev: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {
            "x": [0, 1],
            "y": [0, 1],
            "mode": "lines",
            "name": "random",
            "line": {"dash": "dot", "color": COLORS["muted"]},
        }
    ]
    for key, ds in ev["datasets"].items():
        if ds["roc"] is None:
            continue
        data.append(
            {
                "x": ds["roc"]["fpr"],
                "y": ds["roc"]["tpr"],
                "mode": "lines",
                "name": f"{_name(ds, key)} · AUC {ds['roc']['auc']:.3f}",
                "line": {"color": COLORS.get(key, "#444"), "width": 2.2},
            }
        )
    return {
        "data": data,
        "layout": _layout(
            "ROC curve",
            "non-buyers contacted (FPR)",
            "buyers reached (TPR)",
            xaxis={"range": [0, 1]},
            yaxis={"range": [0, 1.02]},
        ),
    }


def pr(ev: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for key, ds in ev["datasets"].items():
        if ds["pr"] is None:
            continue
        data.append(
            {
                "x": ds["pr"]["recall"],
                "y": ds["pr"]["precision"],
                "mode": "lines",
                "name": f"{_name(ds, key)} · AP {ds['pr']['average_precision']:.3f}",
                "line": {"color": COLORS.get(key, "#444"), "width": 2.2, "shape": "hv"},
            }
        )
        data.append(
            {
                "x": [0, 1],
                "y": [ds["pr"]["base_rate"]] * 2,
                "mode": "lines",
                "name": f"base rate ({_name(ds, key)})",
                "line": {"dash": "dot", "color": COLORS.get(key, "#444"), "width": 1},
                "showlegend": key == ev["main"],
            }
        )
    return {
        "data": data,
        "layout": _layout(
            "Precision–recall curve",
            "recall (share of buyers reached)",
            "precision",
            xaxis={"range": [0, 1]},
            yaxis={"range": [0, 1.02]},
        ),
    }


def reliability(ev: dict[str, Any]) -> dict[str, Any]:
    main = ev["datasets"][ev["main"]]
    top = 0.0
    data: list[dict[str, Any]] = []
    for kind, color, label in (
        ("raw", COLORS["muted"], "before calibration"),
        ("calibrated", COLORS["test"], "after calibration"),
    ):
        bins = main["calibration"].get(kind)
        if not bins:
            continue
        x = [b["mean_predicted"] for b in bins]
        y = [b["observed_rate"] for b in bins]
        top = max(top, *(v for v in x + y if v is not None))
        data.append(
            {
                "x": x,
                "y": y,
                "mode": "lines+markers",
                "name": label,
                "line": {"color": color, "width": 2},
                "customdata": [b["count"] for b in bins],
                "hovertemplate": "predicted %{x:.3f}<br>observed %{y:.3f}<br>%{customdata} rows<extra></extra>",
            }
        )
    top = min(1.0, top * 1.08 + 0.01)
    data.insert(
        0,
        {
            "x": [0, top],
            "y": [0, top],
            "mode": "lines",
            "name": "perfect",
            "line": {"dash": "dot", "color": "#adb5bd"},
        },
    )
    return {
        "data": data,
        "layout": _layout(
            f"Reliability ({_name(main, ev['main'])}, equal-count bins)",
            "mean predicted probability",
            "observed rate",
            xaxis={"range": [0, top]},
            yaxis={"range": [0, top]},
        ),
    }


def score_histogram(ev: dict[str, Any]) -> dict[str, Any]:
    main = ev["datasets"][ev["main"]]
    h = main["histogram"]
    centers = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:], strict=True)]
    data = []
    for key, color, label in (
        ("negatives", COLORS["neg"], "did not buy"),
        ("positives", COLORS["pos"], "bought"),
    ):
        counts = h[key]
        total = sum(counts) or 1
        data.append(
            {
                "type": "bar",
                "x": centers,
                "y": [c / total for c in counts],
                "name": f"{label} ({total:,})",
                "marker": {"color": color},
                "opacity": 0.6,
                "customdata": counts,
                "hovertemplate": "score %{x:.2f}: %{customdata} rows (%{y:.1%} of class)<extra></extra>",
            }
        )
    layout = _layout(
        f"Scores per outcome ({_name(main, ev['main'])})",
        "calibrated probability",
        "share of the class",
        barmode="overlay",
        bargap=0.02,
    )
    layout["yaxis"]["tickformat"] = ".0%"
    layout["shapes"] = [_vline(ev["model"]["threshold"])]
    return {"data": data, "layout": layout}


def _vline(x: float, color: str = "#495057") -> dict[str, Any]:
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "yref": "paper",
        "line": {"color": color, "dash": "dash", "width": 1.5},
    }


def sweep(ev: dict[str, Any]) -> dict[str, Any]:
    main = ev["datasets"][ev["main"]]
    s = main["sweep"]
    t = ev["model"]["threshold"]
    data = [
        {
            "x": s["threshold"],
            "y": s[k],
            "mode": "lines",
            "name": k.replace("_", " "),
            "line": {"color": c, "width": 2},
        }
        for k, c in (
            ("precision", "#1f6feb"),
            ("recall", "#d9480f"),
            ("f1", "#2f9e44"),
            ("contacted_share", "#868e96"),
        )
    ]
    profit = main["profit"]
    data.append(
        {
            "x": s["threshold"],
            "y": s["profit"],
            "mode": "lines",
            "name": f"expected profit (value {profit['value']:g}, cost {profit['cost']:g})",
            "line": {"color": "#9c36b5", "width": 2, "dash": "dot"},
            "yaxis": "y2",
        }
    )
    layout = _layout(
        "Threshold sweep (contact everyone at or above the threshold)",
        "threshold (calibrated probability)",
        "rate",
        yaxis={"range": [0, 1.02]},
        yaxis2={
            "title": {"text": "profit"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "zeroline": True,
        },
        margin={"r": 64},
        height=380,
    )
    layout["shapes"] = [_vline(t)]
    layout["annotations"] = [
        {
            "x": t,
            "y": 1.0,
            "yref": "paper",
            "text": f"chosen {t:.3f}",
            "showarrow": False,
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": 11},
        }
    ]
    return {"data": data, "layout": layout}


def gain(ev: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {
            "x": [0, 1],
            "y": [0, 1],
            "mode": "lines",
            "name": "random",
            "line": {"dash": "dot", "color": COLORS["muted"]},
        }
    ]
    for key, ds in ev["datasets"].items():
        g = ds["gain"]
        if not g["share_captured"] or g["share_captured"][0] is None:
            continue
        data.append(
            {
                "x": g["share_contacted"],
                "y": g["share_captured"],
                "mode": "lines",
                "name": _name(ds, key),
                "line": {"color": COLORS.get(key, "#444"), "width": 2.2},
                "hovertemplate": "top %{x:.0%} contacted → %{y:.1%} of buyers<extra></extra>",
            }
        )
    main = ev["datasets"][ev["main"]]
    rate = main["metrics"]["positive_rate"] or 0
    if rate:
        data.append(
            {
                "x": [0, rate, 1],
                "y": [0, 1, 1],
                "mode": "lines",
                "name": "perfect",
                "line": {"dash": "dash", "color": "#adb5bd", "width": 1},
            }
        )
    layout = _layout(
        "Cumulative gain", "share of customers contacted (highest scores first)", "share of buyers reached"
    )
    layout["xaxis"]["tickformat"] = ".0%"
    layout["yaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


def lift(ev: dict[str, Any]) -> dict[str, Any]:
    main = ev["datasets"][ev["main"]]
    rows = main["deciles"]
    data = [
        {
            "type": "bar",
            "x": [str(r["decile"]) for r in rows],
            "y": [r["lift"] for r in rows],
            "name": "lift",
            "marker": {"color": ["#1f6feb" if (r["lift"] or 0) >= 1 else "#adb5bd" for r in rows]},
            "text": [f"{r['lift']:.2f}×" if r["lift"] is not None else "" for r in rows],
            "textposition": "outside",
            "cliponaxis": False,
            "hovertemplate": "decile %{x}: lift %{y:.2f}<extra></extra>",
        }
    ]
    layout = _layout(
        f"Lift by decile ({_name(main, ev['main'])})",
        "decile (1 = highest scores)",
        "buyer rate ÷ average rate",
    )
    layout["xaxis"]["type"] = "category"
    layout["shapes"] = [
        {
            "type": "line",
            "x0": 0,
            "x1": 1,
            "xref": "paper",
            "y0": 1,
            "y1": 1,
            "line": {"dash": "dot", "color": "#868e96"},
        }
    ]
    layout["showlegend"] = False
    return {"data": data, "layout": layout}


def profit(ev: dict[str, Any]) -> dict[str, Any]:
    main = ev["datasets"][ev["main"]]
    pf = main["profit"]
    data = [
        {
            "x": pf["share_contacted"],
            "y": pf["profit"],
            "mode": "lines",
            "name": "profit",
            "line": {"color": "#9c36b5", "width": 2.2},
            "hovertemplate": "contact top %{x:.1%} → profit %{y:,.0f}<extra></extra>",
        },
        {
            "x": [pf["best"]["share_contacted"]],
            "y": [pf["best"]["profit"]],
            "mode": "markers",
            "name": "best",
            "marker": {"size": 10, "color": "#2f9e44"},
        },
        {
            "x": [pf["at_threshold"]["share_contacted"]],
            "y": [pf["at_threshold"]["profit"]],
            "mode": "markers",
            "name": "at the chosen threshold",
            "marker": {"size": 10, "color": "#d9480f", "symbol": "diamond"},
        },
    ]
    layout = _layout(
        f"Profit (value {pf['value']:g} per buyer, cost {pf['cost']:g} per contact)",
        "share of customers contacted (highest scores first)",
        "profit",
    )
    layout["xaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


def importance(ev: dict[str, Any]) -> dict[str, Any] | None:
    ex = ev["explanations"]
    if "importance" not in ex:
        return None
    rows = ex["importance"][:15][::-1]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [r["mean_abs"] for r in rows],
                "y": [r["feature"] for r in rows],
                "marker": {"color": "#1f6feb"},
                "text": [f"{r['share']:.0%}" for r in rows],
                "textposition": "outside",
                "cliponaxis": False,
                "customdata": [r["description"] or r["role"] for r in rows],
                "hovertemplate": "%{y} (%{customdata}): mean |SHAP| %{x:.3f}<extra></extra>",
            }
        ],
        "layout": _layout(
            "Global importance: mean |contribution|",
            "mean |SHAP| (log-odds)",
            "",
            height=max(300, 26 * len(rows) + 90),
            margin={"l": 170, "r": 40},
            showlegend=False,
        ),
    }


def beeswarm(ev: dict[str, Any]) -> dict[str, Any] | None:
    ex = ev["explanations"]
    if "beeswarm" not in ex:
        return None
    rows = ex["beeswarm"]
    n = len(rows)
    data = []
    for i, row in enumerate(rows):
        level = n - 1 - i
        colors = row["color"]
        numeric = any(c is not None for c in colors)
        data.append(
            {
                "type": "scattergl" if len(row["shap"]) > 800 else "scatter",
                "mode": "markers",
                "x": row["shap"],
                "y": [level + j for j in row["jitter"]],
                "text": row["value"],
                "name": row["feature"],
                "showlegend": False,
                "hovertemplate": row["feature"] + " = %{text}<br>contribution %{x:+.3f}<extra></extra>",
                "marker": {
                    "size": 4,
                    "opacity": 0.75,
                    "color": [c if c is not None else 0.5 for c in colors] if numeric else "#868e96",
                    "colorscale": [[0, "#1f6feb"], [1, "#d9480f"]],
                    "cmin": 0,
                    "cmax": 1,
                    "showscale": i == 0,
                    "colorbar": {
                        "title": {"text": "value"},
                        "tickvals": [0, 1],
                        "ticktext": ["low", "high"],
                        "len": 0.6,
                        "thickness": 10,
                    },
                },
            }
        )
    layout = _layout(
        "Beeswarm: each dot is a customer",
        "contribution to log-odds (→ more likely to buy)",
        "",
        height=max(320, 34 * n + 110),
        margin={"l": 170, "r": 30},
    )
    layout["yaxis"].update(
        {
            "tickvals": list(range(n)),
            "ticktext": [r["feature"] for r in rows][::-1],
            "range": [-0.6, n - 0.4],
            "showgrid": False,
        }
    )
    layout["shapes"] = [
        {
            "type": "line",
            "x0": 0,
            "x1": 0,
            "y0": 0,
            "y1": 1,
            "yref": "paper",
            "line": {"color": "#adb5bd", "width": 1},
        }
    ]
    return {"data": data, "layout": layout}


def dependence(ev: dict[str, Any], index: int) -> dict[str, Any] | None:
    ex = ev["explanations"]
    rows = ex.get("dependence") or []
    if index >= len(rows):
        return None
    row = rows[index]
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "markers",
        "x": row["x"],
        "y": row["shap"],
        "marker": {"size": 4, "opacity": 0.55, "color": "#1f6feb"},
        "hovertemplate": row["feature"] + " = %{x}<br>contribution %{y:+.3f}<extra></extra>",
        "showlegend": False,
    }
    layout = _layout(f"Dependence: {row['feature']}", row["feature"], "contribution (log-odds)", height=300)
    if row["role"] in ("categorical", "boolean"):
        layout["xaxis"]["categoryorder"] = "array"
        layout["xaxis"]["categoryarray"] = _category_order(row["x"], row["shap"])
        trace = {
            "type": "box",
            "x": row["x"],
            "y": row["shap"],
            "boxpoints": False,
            "marker": {"color": "#1f6feb"},
            "showlegend": False,
        }
        layout["xaxis"]["type"] = "category"
    layout["shapes"] = [
        {
            "type": "line",
            "x0": 0,
            "x1": 1,
            "xref": "paper",
            "y0": 0,
            "y1": 0,
            "line": {"color": "#adb5bd", "width": 1},
        }
    ]
    return {"data": [trace], "layout": layout}


def _category_order(levels: list[Any], shap: list[float | None]) -> list[str]:
    """Numeric codes in numeric order; other levels by mean contribution, highest first."""
    sums: dict[str, list[float]] = {}
    for level, value in zip(levels, shap, strict=True):
        sums.setdefault(str(level), []).append(value or 0.0)
    names = list(sums)
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names, key=lambda k: -sum(sums[k]) / len(sums[k]))


def waterfall(example: dict[str, Any]) -> dict[str, Any]:
    """From the average customer's log-odds, each strong contribution in turn, to this customer's."""
    labels = ["average customer"]
    measures = ["absolute"]
    values = [example["base"]]
    texts = [f"{example['base']:+.2f}"]
    for c in example["contributions"]:
        value_text = c["value"] if len(c["value"]) <= 22 else c["value"][:21] + "…"
        labels.append(f"{c['feature']} = {value_text}")
        measures.append("relative")
        values.append(c["contribution"])
        texts.append(f"{c['contribution']:+.2f}")
    other = example["other"]
    if other["features"]:
        labels.append(f"{other['features']} other features")
        measures.append("relative")
        values.append(other["contribution"])
        texts.append(f"{other['contribution']:+.2f}")
    labels.append("this customer")
    measures.append("total")
    values.append(example["raw"])
    texts.append(f"{example['raw']:+.2f}")
    running, lo, hi = example["base"], min(0.0, example["base"]), max(0.0, example["base"])
    for v in values[1:-1]:
        running += v
        lo, hi = min(lo, running), max(hi, running)
    span = (hi - lo) or 1.0
    return {
        "data": [
            {
                "type": "waterfall",
                "orientation": "h",
                "y": labels,
                "x": values,
                "measure": measures,
                "text": texts,
                "textposition": "outside",
                "cliponaxis": False,
                "increasing": {"marker": {"color": "#d9480f"}},
                "decreasing": {"marker": {"color": "#1f6feb"}},
                "totals": {"marker": {"color": "#495057"}},
                "connector": {"line": {"color": "#ced4da"}},
                "hoverinfo": "skip",
            }
        ],
        "layout": _layout(
            "",
            "log-odds before calibration (red: towards buying, blue: away)",
            "",
            height=30 * len(labels) + 70,
            margin={"l": 250, "r": 40, "t": 10, "b": 44},
            showlegend=False,
            xaxis={"range": [lo - 0.35 * span, hi + 0.6 * span]},
            yaxis={"autorange": "reversed"},
        ),
    }


def build_all(ev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every figure of the report, keyed by the id of the element that shows it."""
    figs: dict[str, dict[str, Any] | None] = {
        "fig-roc": roc(ev),
        "fig-pr": pr(ev),
        "fig-reliability": reliability(ev),
        "fig-histogram": score_histogram(ev),
        "fig-sweep": sweep(ev),
        "fig-gain": gain(ev),
        "fig-lift": lift(ev),
        "fig-profit": profit(ev),
        "fig-importance": importance(ev),
        "fig-beeswarm": beeswarm(ev),
    }
    for i in range(4):
        figs[f"fig-dependence-{i}"] = dependence(ev, i)
    for example in ev["explanations"].get("examples", []):
        figs[f"fig-example-{example['kind']}"] = waterfall(example)
    return {k: v for k, v in figs.items() if v is not None}
