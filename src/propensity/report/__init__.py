"""The model report: one self-contained, offline HTML file drawn from ``evaluation.json`` data.

:func:`render_report` fills ``template.html`` (Jinja2) with the evaluation's numbers and the
Plotly figures of :mod:`propensity.report.figures`, and embeds plotly.js itself, so the file
opens without a network. Its size does not grow with the number of scored rows: every plot
uses aggregates or a fixed-size sample (about 5 MB, most of it plotly.js).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from propensity.metrics import percent
from propensity.sources import atomic_path

__all__ = ["render_report", "write_report"]

_SELECTION = {
    "pr_auc": "PR-AUC",
    "roc_auc": "ROC-AUC",
    "log_loss": "log loss",
    "brier": "Brier score",
    "lift_top10": "lift in the top 10 %",
}


def _num(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "–"
    return f"{float(value):.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    return percent(value, digits, sep=" ")


def _int(value: Any) -> str:
    if value is None:
        return "–"
    return f"{int(value):,}"


def _json(data: Any) -> str:
    # "</" would end the <script> element early; JSON allows the escaped form.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:  # pragma: no cover - plotly is in the explain extra
        raise ImportError("The HTML report needs plotly: pip install 'propensity[explain]'.") from exc
    return str(get_plotlyjs())


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(num=_num, pct=_pct, int_=_int)
    text = resources.files("propensity.report").joinpath("template.html").read_text(encoding="utf-8")
    return env.from_string(text)


def _texts(ev: dict[str, Any]) -> dict[str, Any]:
    model = ev["model"]
    main = ev["datasets"][ev["main"]]
    m = main["metrics"]
    training = ev["kind"] == "training"
    lead, data_line = _lead(ev)
    c = m.get("confusion", {})
    contacted = c.get("tp", 0) + c.get("fp", 0)
    decision_words = (
        f"Contacting {contacted:,} of {main['n']:,} customers ({_pct(m.get('contacted_share'))}) reaches "
        f"{c.get('tp', 0):,} of {c.get('tp', 0) + c.get('fn', 0):,} buyers (recall {_pct(m.get('recall'))}); "
        f"{_pct(m.get('precision'))} of those contacted buy (precision), against {_pct(m['positive_rate'])} overall."
    )
    disc = []
    for ds in ev["datasets"].values():
        if ds["roc"] is None:
            disc.append(f"ROC and PR curves are undefined on the {ds['label']} (a single outcome).")
    if training:
        disc.append(
            "Out-of-fold curves come from models that never saw those rows; a test curve far below the out-of-fold one "
            "means the model does not carry over to new rows."
        )
    return {
        "title": f"{model['target']} model report — {model['winner']}"
        if training
        else f"Evaluation of the {model['target']} model — {model['winner']}",
        "subtitle": f"model version {model['version'] or '(unsaved)'} · created {ev['created_at']} · {'training report' if training else 'evaluation on new data'}",
        "lead": lead,
        "data_line": data_line,
        "kpis": _kpis(m),
        "decision_words": decision_words,
        "profit_note": _profit_note(main["profit"]),
        "main_label": main["label"],
        "slices_label": ev["datasets"][ev["slices"]["dataset"]]["label"] if ev["slices"]["columns"] else "",
        "discrimination_note": " ".join(disc),
        "selection_metric": _SELECTION.get(model["selection_metric"], model["selection_metric"]),
    }


def _lead(ev: dict[str, Any]) -> tuple[str, str]:
    """The report's first sentence and its data line, for a training or an evaluation."""
    model, data = ev["model"], ev["data"]
    main = ev["datasets"][ev["main"]]
    rate = data.get("positive_rate")
    if ev["kind"] == "training":
        lead = (
            f"{model['winner']} predicts {model['target']} = {model['positive']!s}. It was trained on "
            f"{data['rows_train']:,} rows and tested on {data['rows_test']:,} held-out rows ({data['test_source']}); "
            f"{_pct(rate)} of training rows are positive."
            + (
                f" Once tested, the shipped model was refitted on all {data['refit_rows']:,} training and test rows: "
                "it saw more data than the held-out figures below measure."
                if data.get("refit_rows")
                else ""
            )
        )
        data_line = (
            f"Data: {data['source']} — {data['rows_in']:,} rows read, {data['rows_quarantined']:,} quarantined, "
            f"{data['rows_train']:,} train, {data['rows_test']:,} test."
        )
        return lead, data_line
    lead = (
        f"The model ({model['winner']}, version {model['version'] or 'unsaved'}) predicting {model['target']} = "
        f"{model['positive']!s}, evaluated on {main['n']:,} rows of new data with known outcomes "
        f"({_pct(rate)} positive)."
    )
    data_line = (
        f"Data: {data['source']} — {data['rows_in']:,} rows read, {data['rows_quarantined']:,} quarantined, "
        f"{data['rows_used']:,} evaluated."
    )
    return lead, data_line


def _kpis(m: dict[str, Any]) -> list[dict[str, Any]]:
    kpis = []
    for key, label, digits, sub in (
        ("roc_auc", "ROC-AUC", 3, "0.5 = random, 1 = perfect ranking"),
        ("pr_auc", "PR-AUC", 3, f"base rate {_pct(m['positive_rate'])}"),
        ("lift_top10", "Lift in the top 10 %", 2, "buyer rate vs average"),
        ("brier", "Brier score", 4, "lower is better"),
        ("recall", "Buyers reached", 1, f"contacting {_pct(m.get('contacted_share'))}"),
    ):
        value = m.get(key)
        shown = (
            _pct(value) if key == "recall" else (f"{value:.{digits}f}" if value is not None else "undefined")
        )
        kpis.append(
            {
                "key": f"kpi.{key}",
                "label": label,
                "value": shown,
                "raw": "" if value is None else value,
                "sub": sub,
            }
        )
    return kpis


def _profit_note(pf: dict[str, Any]) -> str:
    return {
        "policy": "Value and cost are the ones the model's profit policy was trained with.",
        "given": "Value and cost were given for this evaluation.",
        "example": (
            f"No value or cost was given, so the curve uses an example ({pf['value']:g} per buyer, {pf['cost']:g} per "
            "contact): type your own numbers above, or train with --policy profit --value V --cost C."
        ),
    }[pf["source"]]


def render_report(evaluation: dict[str, Any]) -> str:
    """The report as one HTML string (see :mod:`propensity.evaluation` for the data it shows)."""
    from propensity.report.figures import build_all

    main = evaluation["datasets"][evaluation["main"]]
    sweep = main["sweep"]
    threshold = evaluation["model"]["threshold"]
    calc = {
        "share": main["profit"]["share_contacted"],
        "contacted": main["profit"]["contacted"],
        "buyers": main["profit"]["buyers"],
        "tp_at_threshold": main["metrics"]["confusion"]["tp"],
        "contacted_at_threshold": main["metrics"]["confusion"]["tp"] + main["metrics"]["confusion"]["fp"],
        "sweep_tp": sweep["tp"],
        "sweep_contacted": sweep["contacted"],
        "threshold": threshold,
    }
    return str(
        _template().render(
            ev=evaluation,
            main=main,
            figures_json=_json(build_all(evaluation)),
            calc_json=_json(calc),
            plotly_js=_plotly_js(),
            **_texts(evaluation),
        )
    )


def write_report(evaluation: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML report to ``path`` (atomic: temporary file, then rename)."""
    path = Path(path)
    text = render_report(evaluation)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
