"""Shop insights for a manager: one job from an event log (and optionally a model) to a written report.

:func:`shop_insights` gathers the numbers — validation, headline KPIs, the funnel, products and
categories (:mod:`propensity.analytics.products`, run by an engine), churn-risk segments
(:mod:`propensity.analytics.segments`) and, with an event-trained model, every customer's score —
and :func:`report_shop` writes them as one offline HTML page (or Markdown) with every number also
in a JSON file next to it (``propensity report-shop``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from propensity import __version__
from propensity.analytics import EventStore, funnel, prepare_events, rfm_table, summary_kpis
from propensity.analytics.products import product_analytics
from propensity.analytics.segments import risk_segments
from propensity.engines import get_engine
from propensity.errors import ParameterError
from propensity.events.mapping import MappingLike
from propensity.events.validate import ValidationReport
from propensity.sources import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from propensity.pipeline import TrainedModel

__all__ = ["ShopReport", "read_customer_table", "report_shop", "shop_insights"]

#: Rankings shown per level, and how many rows each.
TOP_N = 10
TOP_PAIRS = 15


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN as null, numpy scalars as Python numbers."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]


def read_customer_table(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A Parquet or CSV table of customers with ``columns`` (e.g. the scores of ``propensity clv``)."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"The table '{path}' does not exist.")
    frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ParameterError(
            f"The table '{path}' lacks the column(s) {', '.join(missing)} (it has: {', '.join(map(str, frame.columns[:15]))})."
        )
    return frame.astype({"customer_id": str})


def _model_facts(model: TrainedModel) -> dict[str, Any]:
    m = model.manifest
    ev = m.events
    test = dict(m.metrics.get("test") or {})
    return {
        "name": m.name,
        "version": model.version,
        "winner": m.winner,
        "label": ev.label.column if ev else None,
        "horizon_days": ev.label.horizon_days if ev else None,
        "test_cutoff": ev.test_cutoff if ev else None,
        "rows_test": m.provenance.rows_test,
        "threshold": m.policy.threshold,
        "policy": m.policy.rationale,
        "test": {
            k: test.get(k)
            for k in (
                "roc_auc",
                "pr_auc",
                "lift_top10",
                "precision",
                "recall",
                "contacted_share",
                "positive_rate",
                "brier",
            )
        },
    }


def shop_insights(
    events: str | Path,
    *,
    mapping: MappingLike = None,
    model: TrainedModel | None = None,
    scores: pd.DataFrame | None = None,
    clv: pd.DataFrame | None = None,
    cache: str | Path,
    validated: tuple[str | Path, ValidationReport] | None = None,
    engine: str = "duckdb",
    min_support: int = 30,
    top_items: int = 50,
    min_pair_orders: int = 10,
) -> dict[str, Any]:
    """Every number of the shop report, JSON-ready (the schema is the report's ``insights.json``).

    Parameters
    ----------
    events
        The raw event or order log (CSV or Parquet), read through ``mapping``.
    model
        An event-trained model: every customer is scored at the end of the data (unless
        ``scores`` already hold them) and its test figures are described.
    scores
        ``customer_id``, ``probability`` and ``band`` per customer (e.g. ``propensity score``
        output), used instead of scoring again.
    clv
        ``customer_id`` and ``clv`` per customer (the ``scores.parquet`` of ``propensity clv``).
    cache
        Folder for the validated log (reused while the log and mapping are unchanged).
    validated
        The log already validated: (canonical events file, its validation report), e.g. from
        ``train_from_events(..., clean_out=...)``; ``cache`` is then not used.
    engine
        Runs the aggregates (KPIs, funnel, RFM, products) and scores the customers with ``model``:
        ``duckdb`` (default) or ``spark``.
    min_support, top_items, min_pair_orders
        See :func:`propensity.analytics.products.product_analytics`.

    Returns
    -------
    dict
        ``source``, ``created_at``, ``propensity_version``, ``validation``, ``kpis``, ``funnel``,
        ``products`` (``rankings`` and ``categories`` by ranking name, ``pairs``, ``min_support``,
        ``notes``, counts and shares), ``segments`` (rows of
        :func:`~propensity.analytics.segments.risk_segments`), ``model`` (or ``None``),
        ``as_of`` and ``seconds`` per step.
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if validated is not None:
        canonical, validation = Path(validated[0]), validated[1]
    else:
        canonical, validation = prepare_events(events, Path(cache), mapping=mapping, engine=engine)
    seconds["validation"] = round(time.perf_counter() - started, 3)
    with get_engine(engine) as eng:
        t = time.perf_counter()
        store = EventStore(canonical, engine=eng)
        kpis = summary_kpis(store)
        funnel_table = funnel(store)
        rfm = rfm_table(store)
        seconds["kpis_funnel_rfm"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        pa = product_analytics(
            eng.read(canonical),
            engine=eng,
            min_support=min_support,
            top_items=top_items,
            min_pair_orders=min_pair_orders,
        )
        seconds["products"] = round(time.perf_counter() - t, 3)
        facts = None
        if model is not None:
            facts = _model_facts(model)
            if scores is None:
                t = time.perf_counter()
                from propensity.workflows.events import customer_scores

                # The engine's batch scoring (on Spark: on the executors), not a second path.
                scores = customer_scores(model, canonical, as_of=store.data_end, engine=eng)
                seconds["scoring"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    segments = risk_segments(rfm, scores, clv)
    seconds["segments"] = round(time.perf_counter() - t, 3)
    products: dict[str, Any] | None = None
    if pa is not None:
        sold = pa.products.sort_values("revenue", ascending=False, kind="stable")
        products = {
            "min_support": pa.min_support,
            "rankings_available": pa.rankings(),
            "notes": pa.notes,
            "products_count": len(pa.products),
            "products_sold": int((pa.products["orders"] > 0).sum()),
            "categories_count": len(pa.categories),
            "top10_revenue_share": float(sold["revenue_share"].head(10).sum()) if len(sold) else None,
            "rankings": {by: _records(pa.top(by, n=TOP_N)) for by in pa.rankings()},
            "categories": {by: _records(pa.top(by, level="categories", n=TOP_N)) for by in pa.rankings()}
            if len(pa.categories)
            else {},
            "pairs": _records(pa.pairs.head(TOP_PAIRS)),
            "pairs_total": len(pa.pairs),
            "affinity": {"top_items": top_items, "min_pair_orders": min_pair_orders},
        }
    buyers_scored = None
    if scores is not None:
        buyers_scored = int(scores["customer_id"].astype(str).isin(rfm["customer_id"].astype(str)).sum())
    seconds["total"] = round(time.perf_counter() - started, 3)
    return {
        "source": str(events),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "propensity_version": __version__,
        "as_of": str(store.data_end),
        "validation": validation.to_dict(),
        "kpis": kpis,
        "funnel": _records(funnel_table),
        "products": products,
        "segments": _records(segments),
        "segments_basis": {
            "scored_customers": buyers_scored,
            "clv": clv is not None,
            "customers": len(rfm),
        },
        "model": facts,
        "seconds": seconds,
    }


@dataclass
class ShopReport:
    """What :func:`report_shop` wrote."""

    report: str
    json: str
    format: str
    findings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_shop(
    events: str | Path,
    out: str | Path,
    *,
    format: str | None = None,
    json_path: str | Path | None = None,
    cache: str | Path | None = None,
    **options: Any,
) -> ShopReport:
    """Write the shop report (HTML, or Markdown when ``out`` ends in ``.md`` or ``format="md"``) and its JSON.

    Parameters
    ----------
    events
        The raw event or order log.
    out
        The report file.
    format
        ``"html"`` or ``"md"`` (default: from the suffix of ``out``; HTML unless it is ``.md``).
    json_path
        Where every number goes (default: ``out`` with ``.json``).
    cache
        Folder for the validated log (default: ``<out stem>_validated`` next to ``out``).
    **options
        Passed to :func:`shop_insights` (``mapping``, ``model``, ``scores``, ``clv``, ``engine``,
        ``min_support`` …).

    Returns
    -------
    ShopReport
    """
    from propensity.report.shop import compose, render_shop_html, render_shop_markdown

    started = time.perf_counter()
    out = Path(out)
    fmt = (format or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")).lower()
    if fmt not in ("html", "md"):
        raise ParameterError(f"The 'format' parameter must be 'html' or 'md'. Got {format!r} instead.")
    target_json = Path(json_path) if json_path is not None else out.with_suffix(".json")
    if target_json == out:
        raise ParameterError(
            f"The report and its JSON would both be '{out}': give the report another suffix."
        )
    folder = Path(cache) if cache is not None else out.with_name(f"{out.stem}_validated")
    insights = compose(shop_insights(events, cache=folder, **options))
    text = render_shop_html(insights) if fmt == "html" else render_shop_markdown(insights)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    insights["seconds"]["report"] = round(time.perf_counter() - started, 3)
    with atomic_path(target_json) as tmp:
        tmp.write_text(json.dumps(insights, indent=2, default=str, allow_nan=False), encoding="utf-8")
    return ShopReport(
        report=str(out),
        json=str(target_json),
        format=fmt,
        findings=[f["text"] for f in insights["findings"]],
        seconds=insights["seconds"]["report"],
    )
