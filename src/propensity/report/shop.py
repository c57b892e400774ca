"""The shop report: findings a manager can act on, written from the numbers of ``insights.json``.

:func:`compose` turns the numbers gathered by :func:`propensity.workflows.shop.shop_insights` into
text — methodology, data quality, key findings (each with the numbers behind it), the model's
performance in plain words, limitations and recommendations — and adds them to the same dict, so
the JSON file holds every number the page shows. :func:`render_shop_html` draws one offline page
(inline CSS, plotly.js embedded as in the model report); :func:`render_shop_markdown` writes the
same content as Markdown (tables, no charts).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from propensity.analytics.products import RANKINGS
from propensity.analytics.segments import ACTIONS, CHURN_SEGMENTS
from propensity.metrics import percent
from propensity.report import _json, _num, _plotly_js
from propensity.report.figures import COLORS, _layout

__all__ = ["compose", "render_shop_html", "render_shop_markdown", "shop_figures"]

RANKING_TITLES = {
    "revenue": "by revenue",
    "views": "by views",
    "conversion": "by view → purchase conversion",
    "abandonment": "by cart abandonment",
}
STEP_NAMES = {
    "view": "viewing",
    "add_to_cart": "adding to cart",
    "checkout": "checkout",
    "purchase": "purchase",
}
#: Columns of the product and category tables on the page, with their headers and formats.
ITEM_SHOWN = (
    ("views", "views", "int"),
    ("viewers", "viewers", "int"),
    ("carters", "carters", "int"),
    ("orders", "orders", "int"),
    ("buyers", "buyers", "int"),
    ("revenue", "revenue", "money"),
    ("revenue_share", "share of revenue", "pct"),
    ("conversion_rate", "view → purchase", "pct"),
    ("conversion_low", "(95 % at least)", "pct"),
    ("abandonment_rate", "cart abandonment", "pct"),
)
SEGMENT_SHOWN = (
    ("segment", "segment", "text"),
    ("band", "model band", "text"),
    ("customers", "customers", "int"),
    ("revenue", "past revenue", "money"),
    ("revenue_at_risk", "revenue at risk", "money"),
    ("mean_probability", "mean probability", "pct"),
    ("expected_buyers", "expected buyers", "num1"),
    ("clv", "lifetime value", "money"),
    ("action", "suggested action", "text"),
)
PAIR_SHOWN = (
    ("product_a", "product A", "text"),
    ("product_b", "product B", "text"),
    ("orders_together", "orders together", "int"),
    ("support", "support", "pct2"),
    ("confidence_a_b", "A → B", "pct"),
    ("confidence_b_a", "B → A", "pct"),
    ("lift", "lift", "num2"),
)


def fmt(value: Any, kind: str) -> str:
    """A number as the page shows it (``–`` for a missing one)."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return "–"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{float(value):,.0f}"
    if kind == "pct":
        return percent(value, 1)
    if kind == "pct2":
        return percent(value, 2)
    if kind == "num1":
        return f"{float(value):,.1f}"
    if kind == "num2":
        return f"{float(value):,.2f}"
    return str(value)


def _finding(text: str, **numbers: Any) -> dict[str, Any]:
    return {"text": text, "numbers": numbers}


def _product_findings(p: dict[str, Any], kpis: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    top = p["rankings"].get("revenue") or []
    if top:
        best = top[0]
        found.append(
            _finding(
                f"The 10 best-selling of {p['products_sold']:,} products sold bring {percent(p['top10_revenue_share'])} of "
                f"revenue; {best['product_id']}{_cat(best)} alone brings {percent(best['revenue_share'])} "
                f"({fmt(best['revenue'], 'money')} from {best['orders']:,} orders).",
                products_sold=p["products_sold"],
                top10_revenue_share=p["top10_revenue_share"],
                best_product=best["product_id"],
                best_revenue=best["revenue"],
                best_revenue_share=best["revenue_share"],
                best_orders=best["orders"],
            )
        )
    category = _category_finding(p)
    if category is not None:
        found.append(category)
    conv = p["rankings"].get("conversion") or []
    if conv:
        b = conv[0]
        found.append(
            _finding(
                f"Best view → purchase conversion among products with at least {p['min_support']} viewers: "
                f"{b['product_id']}{_cat(b)}, bought by {b['view_buyers']:,} of its {b['viewers']:,} viewers "
                f"({percent(b['conversion_rate'])}; at least {percent(b['conversion_low'])} with 95 % confidence).",
                product=b["product_id"],
                viewers=b["viewers"],
                view_buyers=b["view_buyers"],
                conversion_rate=b["conversion_rate"],
                conversion_low=b["conversion_low"],
                min_support=p["min_support"],
            )
        )
    aband = p["rankings"].get("abandonment") or []
    if aband:
        a = aband[0]
        found.append(
            _finding(
                f"Most often left in the cart (at least {p['min_support']} carters): {a['product_id']}{_cat(a)} — "
                f"{a['abandoned']:,} of {a['carters']:,} customers who added it never bought it "
                f"({percent(a['abandonment_rate'])}).",
                product=a["product_id"],
                carters=a["carters"],
                abandoned=a["abandoned"],
                abandonment_rate=a["abandonment_rate"],
            )
        )
    if p["pairs"]:
        q = p["pairs"][0]
        found.append(
            _finding(
                f"Bought together most beyond chance: {q['product_a']} and {q['product_b']}, in {q['orders_together']:,} "
                f"orders — {q['lift']:.1f}× as often as if unrelated; {percent(q['confidence_a_b'])} of "
                f"{q['product_a']}'s orders hold {q['product_b']}.",
                **{
                    k: q[k]
                    for k in (
                        "product_a",
                        "product_b",
                        "orders_together",
                        "lift",
                        "confidence_a_b",
                        "support",
                    )
                },
            )
        )
    return found


def _category_finding(p: dict[str, Any]) -> dict[str, Any] | None:
    """The largest category by revenue, and the best and worst converting ones."""
    cats = p["categories"].get("revenue") or []
    if not cats:
        return None
    c = cats[0]
    text = f"{c['category']} is the largest category: {percent(c['revenue_share'])} of revenue ({fmt(c['revenue'], 'money')})"
    conv = p["categories"].get("conversion") or []
    numbers: dict[str, Any] = {
        "category": c["category"],
        "revenue": c["revenue"],
        "revenue_share": c["revenue_share"],
    }
    if conv:
        text += (
            f"; {conv[0]['category']} converts best ({percent(conv[0]['conversion_rate'])} of its "
            f"{conv[0]['viewers']:,} viewers buy from it), {conv[-1]['category']} worst "
            f"({percent(conv[-1]['conversion_rate'])})"
        )
        numbers.update(
            best_converting=conv[0]["category"],
            best_conversion=conv[0]["conversion_rate"],
            worst_converting=conv[-1]["category"],
            worst_conversion=conv[-1]["conversion_rate"],
        )
    return _finding(text + ".", **numbers)


def _cat(row: dict[str, Any]) -> str:
    return f" ({row['category']})" if row.get("category") else ""


def _funnel_finding(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    steps = [r for r in rows if r.get("drop_off") is not None]
    if not steps:
        return None
    worst = max(steps, key=lambda r: r["drop_off"])
    before = rows[rows.index(worst) - 1]
    return _finding(
        f"The funnel loses most sessions after {STEP_NAMES.get(before['step'], before['step'])}: "
        f"{percent(worst['drop_off'])} of the {before['sessions']:,} sessions that reached it did not go on to "
        f"{STEP_NAMES.get(worst['step'], worst['step'])}; {percent(rows[-1]['share_of_start'])} of sessions end in "
        f"{STEP_NAMES.get(rows[-1]['step'], rows[-1]['step'])}.",
        from_step=before["step"],
        to_step=worst["step"],
        sessions_at_step=before["sessions"],
        drop_off=worst["drop_off"],
        end_share=rows[-1]["share_of_start"],
    )


def _segment_findings(segments: list[dict[str, Any]], scored: bool) -> list[dict[str, Any]]:
    if not segments:
        return []
    total = sum(s["revenue_at_risk"] or 0 for s in segments)
    revenue = sum(s["revenue"] or 0 for s in segments)
    top = segments[0]
    band = f" the model rates {top['band']}" if scored else ""
    return [
        _finding(
            f"Revenue at risk: {fmt(total, 'money')} of {fmt(revenue, 'money')} past revenue "
            f"({percent(total / revenue if revenue else None)}). The most is held by '{top['segment']}' customers{band}: "
            f"{top['customers']:,} customers, {fmt(top['revenue_at_risk'], 'money')} at risk of "
            f"{fmt(top['revenue'], 'money')} they have spent.",
            revenue_at_risk=total,
            past_revenue=revenue,
            top_segment=top["segment"],
            top_band=top["band"],
            top_customers=top["customers"],
            top_revenue_at_risk=top["revenue_at_risk"],
        )
    ]


def model_words(model: dict[str, Any]) -> list[str]:
    """The model's held-out test figures in plain words."""
    t = model["test"]
    h = model["horizon_days"]
    words = [
        f"The model ({model['winner']}, version {model['version'] or 'unsaved'}) predicts who buys within {h} days. "
        f"It was checked on the latest cutoff it never learned from ({str(model['test_cutoff'])[:10]}, "
        f"{model['rows_test']:,} customers), where {percent(t['positive_rate'])} of customers bought."
    ]
    if t.get("roc_auc") is not None:
        words.append(
            f"Given one buyer and one non-buyer, it ranks the buyer higher {percent(t['roc_auc'], 0)} of the time "
            f"(ROC-AUC {t['roc_auc']:.3f}; 50 % would be guessing)."
        )
    if t.get("lift_top10") is not None:
        words.append(
            f"The 10 % of customers it rates highest hold {t['lift_top10']:.1f}× as many buyers as a random 10 %."
        )
    if t.get("recall") is not None:
        words.append(
            f"Contacting the customers at or above its threshold ({percent(t['contacted_share'])} of them) would have "
            f"reached {percent(t['recall'])} of the buyers, and {percent(t['precision'])} of those contacted bought."
        )
    words.append(
        "Probabilities are calibrated: summed over a group, they estimate how many of its customers will buy."
    )
    return words


def _methodology(ins: dict[str, Any]) -> list[str]:
    p = ins["products"]
    out = [
        f"The log ({ins['source']}) was validated: each bad row was set aside with its reason (see Data quality) and "
        "everything below uses the valid events only. Revenue is the amount of purchase events, before returns.",
        "A product is bought when a purchase event names it, or — when a session's purchase names no product — "
        "when it was added to the cart in a session that ended in a purchase. Conversion is the share of a "
        "product's viewers who bought it; cart abandonment the share of customers who added it to the cart and "
        "never bought it; both over the whole log, per customer.",
    ]
    if p:
        out.append(
            f"Minimum support: rates rank only products and categories with at least {p['min_support']} viewers "
            f"(conversion) or carters (abandonment); '95 % at least' is the lower end of the Wilson interval. "
            f"Bought-together pairs are counted among the {p['affinity']['top_items']} products with the most orders, "
            f"for pairs in at least {p['affinity']['min_pair_orders']} orders; lift = how many times more often the "
            "two share an order than if they were unrelated."
        )
    out.append(
        "Segments are RFM segments at the end of the data (recency and frequency scores 1–5 among buyers). "
        + (
            "Each is split by the model's score band; revenue at risk is the past revenue of the customers the model "
            "rates low (less likely to buy within its horizon than the average customer)."
            if ins["model"]
            else "Without a model, revenue at risk is the past revenue of the segments that have not bought lately ("
            + ", ".join(CHURN_SEGMENTS)
            + ")."
        )
        + " Suggested actions follow fixed rules per segment group and band (propensity.analytics.segments.ACTIONS)."
    )
    return out


def _limitations(ins: dict[str, Any]) -> list[str]:
    v, p, k = ins["validation"], ins["products"], ins["kpis"]
    out = []
    if v["rows_quarantined"]:
        out.append(
            f"{v['rows_quarantined']:,} of {v['rows_in']:,} rows ({percent(v['rows_quarantined'] / max(v['rows_in'], 1))}) "
            "were quarantined and are not counted."
        )
    if p is None:
        out.append("The log names no product or category: there are no product tables.")
    else:
        out.extend(p["notes"])
    out.append(
        "Conversion and abandonment are counted over the whole log, not within a visit or in time order; a product "
        "bought by customers who never viewed it online counts for revenue, not for conversion."
    )
    if k.get("returns"):
        out.append(f"Revenue is gross: {k['returns']:,} return events are not subtracted.")
    if ins["model"] is None:
        out.append(
            "No model was given: segments are not split by predicted propensity and revenue at risk is a rule of thumb "
            "(run with --model for a model-based estimate)."
        )
    else:
        out.append(
            "Model figures are predictions checked on one held-out period; a shop that changes (prices, campaigns, "
            "season) can move them — propensity monitor tells when."
        )
    out.append("Bought-together pairs show association, not cause; a high lift on few orders is uncertain.")
    return out


def _recommendations(ins: dict[str, Any]) -> list[dict[str, Any]]:
    recs = []
    for s in [s for s in ins["segments"] if (s["revenue_at_risk"] or 0) > 0][:3]:
        band = f" ({s['band']} band)" if s["band"] != "unscored" else ""
        recs.append(
            _finding(
                f"'{s['segment']}'{band}, {s['customers']:,} customers, {fmt(s['revenue_at_risk'], 'money')} at risk: "
                f"{s['action']}",
                segment=s["segment"],
                band=s["band"],
                customers=s["customers"],
                revenue_at_risk=s["revenue_at_risk"],
            )
        )
    p = ins["products"]
    if p:
        aband = p["rankings"].get("abandonment") or []
        if aband:
            names = ", ".join(a["product_id"] for a in aband[:3])
            recs.append(
                _finding(
                    f"Send cart reminders (and check price, stock and delivery terms) for the most abandoned products: {names}.",
                    products=[a["product_id"] for a in aband[:3]],
                )
            )
        if p["pairs"]:
            q = p["pairs"][0]
            recs.append(
                _finding(
                    f"Recommend {q['product_b']} on {q['product_a']}'s page and in its order confirmation, or bundle them "
                    f"(lift {q['lift']:.1f} over {q['orders_together']:,} orders).",
                    product_a=q["product_a"],
                    product_b=q["product_b"],
                )
            )
    if ins["model"]:
        recs.append(
            _finding(
                "Plan contacts with the model: propensity dashboard (Target page, filter by segment) turns a budget into "
                "a list of customers with expected buyers and profit."
            )
        )
    return recs


def compose(insights: dict[str, Any]) -> dict[str, Any]:
    """Add ``methodology``, ``findings``, ``model_words``, ``limitations`` and ``recommendations`` (and
    ``rules``: the fixed actions and ranking definitions) to the numbers of ``shop_insights``; returns it."""
    ins = insights
    findings: list[dict[str, Any]] = []
    k = ins["kpis"]
    findings.append(
        _finding(
            f"{k['customers']:,} customers, {k['buyers']:,} of whom bought; {k['orders']:,} orders worth "
            f"{fmt(k['revenue'], 'money')} (average order {fmt(k['avg_order_value'], 'num2')}) from "
            f"{k['first_event'][:10]} to {k['last_event'][:10]}"
            + (
                f"; {percent(k['conversion_rate'])} of {k['sessions']:,} sessions ended in a purchase."
                if k.get("conversion_rate") is not None
                else "."
            ),
            **{
                key: k[key]
                for key in (
                    "customers",
                    "buyers",
                    "orders",
                    "revenue",
                    "avg_order_value",
                    "sessions",
                    "conversion_rate",
                )
            },
        )
    )
    if ins["products"]:
        findings.extend(_product_findings(ins["products"], k))
    funnel_finding = _funnel_finding(ins["funnel"])
    if funnel_finding:
        findings.append(funnel_finding)
    findings.extend(_segment_findings(ins["segments"], ins["model"] is not None))
    ins["findings"] = findings
    ins["model_words"] = model_words(ins["model"]) if ins["model"] else []
    ins["methodology"] = _methodology(ins)
    ins["limitations"] = _limitations(ins)
    ins["recommendations"] = _recommendations(ins)
    ins["rules"] = {
        "actions": {
            group: {"high": a[0], "medium_or_low": a[1], "unscored": a[2]} for group, a in ACTIONS.items()
        },
        "rankings": {
            by: {"sorted_by": list(cols), "support": support} for by, (cols, support) in RANKINGS.items()
        },
    }
    return ins


# ------------------------------------------------------------------------------ figures


def shop_figures(ins: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Plotly figures (JSON-ready dicts) by element id: categories, funnel and revenue at risk."""
    figures: dict[str, dict[str, Any]] = {}
    p = ins["products"]
    cats = (p or {}).get("categories", {}).get("revenue") or []
    if cats:
        figures["fig-categories"] = {
            "data": [
                {
                    "type": "bar",
                    "x": [c["category"] for c in cats],
                    "y": [c["revenue"] for c in cats],
                    "marker": {"color": COLORS["test"]},
                    "customdata": [[c["revenue_share"], c["orders"]] for c in cats],
                    "hovertemplate": "%{x}: %{y:,.0f} (%{customdata[0]:.1%}), %{customdata[1]:,} orders<extra></extra>",
                }
            ],
            "layout": _layout(f"Revenue by category (top {len(cats)})", "", "revenue", showlegend=False),
        }
    if ins["funnel"]:
        rows = ins["funnel"]
        figures["fig-funnel"] = {
            "data": [
                {
                    "type": "bar",
                    "x": [STEP_NAMES.get(r["step"], r["step"]) for r in rows],
                    "y": [r["sessions"] for r in rows],
                    "text": [percent(r["share_of_start"], 0) for r in rows],
                    "textposition": "outside",
                    "marker": {"color": COLORS["test"]},
                    "hovertemplate": "%{x}: %{y:,} sessions<extra></extra>",
                }
            ],
            "layout": _layout("Sessions reaching each step", "", "sessions", showlegend=False),
        }
    segs = [s for s in ins["segments"] if (s["revenue_at_risk"] or 0) > 0][:12]
    if segs:
        labels = [s["segment"] + ("" if s["band"] == "unscored" else f" · {s['band']}") for s in segs]
        figures["fig-risk"] = {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "y": labels[::-1],
                    "x": [s["revenue_at_risk"] for s in segs][::-1],
                    "marker": {"color": COLORS["pos"]},
                    "customdata": [s["customers"] for s in segs][::-1],
                    "hovertemplate": "%{y}: %{x:,.0f} at risk, %{customdata:,} customers<extra></extra>",
                }
            ],
            "layout": _layout(
                "Revenue at risk by segment", "revenue at risk", "", showlegend=False, margin={"l": 200}
            ),
        }
    return figures


# ------------------------------------------------------------------------------ pages


def _tables(ins: dict[str, Any]) -> dict[str, Any]:
    """Every table of the page as headers and formatted rows (shared by HTML and Markdown)."""
    tables: dict[str, Any] = {"products": [], "categories": [], "pairs": None, "segments": None}
    p = ins["products"]
    if p:
        for level, key in (("products", "rankings"), ("categories", "categories")):
            for by, rows in p[key].items():
                if not rows:
                    continue
                name = "product_id" if level == "products" else "category"
                head = ["product", "category"] if level == "products" else ["category"]
                shown = [c for c in ITEM_SHOWN if level == "products" or c[0] != "category"]
                tables[level].append(
                    {
                        "title": f"Top {'products' if level == 'products' else 'categories'} {RANKING_TITLES[by]}",
                        "headers": head + [c[1] for c in shown],
                        "rows": [
                            [str(r[name])]
                            + ([str(r.get("category") or "–")] if level == "products" else [])
                            + [fmt(r.get(c[0]), c[2]) for c in shown]
                            for r in rows
                        ],
                    }
                )
        if p["pairs"]:
            tables["pairs"] = {
                "headers": [c[1] for c in PAIR_SHOWN],
                "rows": [[fmt(r[c[0]], c[2]) for c in PAIR_SHOWN] for r in p["pairs"]],
            }
    shown = [
        c
        for c in SEGMENT_SHOWN
        if not (c[0] in ("mean_probability", "expected_buyers", "band") and ins["model"] is None)
        and not (c[0] == "clv" and not ins["segments_basis"]["clv"])
    ]
    tables["segments"] = {
        "headers": [c[1] for c in shown],
        "rows": [[fmt(r[c[0]], c[2]) for c in shown] for r in ins["segments"]],
    }
    return tables


def _quality(ins: dict[str, Any]) -> dict[str, Any]:
    v = ins["validation"]
    return {
        "rows_in": v["rows_in"],
        "rows_ok": v["rows_ok"],
        "rows_quarantined": v["rows_quarantined"],
        "share": percent(v["rows_quarantined"] / max(v["rows_in"], 1), 2),
        "reasons": sorted(v["reasons"].items(), key=lambda kv: -kv[1]),
        "unknown": v.get("unknown_event_names") or {},
        "quarantine": v.get("quarantine_path"),
        "notes": v.get("notes") or [],
        "customers": v["customers"],
        "first": (v.get("first_event") or "")[:19],
        "last": (v.get("last_event") or "")[:19],
        "event_types": v.get("event_types") or {},
    }


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(num=_num)
    text = resources.files("propensity.report").joinpath("shop_template.html").read_text(encoding="utf-8")
    return env.from_string(text)


def render_shop_html(insights: dict[str, Any]) -> str:
    """The report as one offline HTML page (``insights`` from :func:`compose`)."""
    figures = shop_figures(insights)
    return str(
        _template().render(
            ins=insights,
            q=_quality(insights),
            tables=_tables(insights),
            figure_ids=list(figures),
            figures=_json(figures),
            plotly_js=_plotly_js() if figures else "",
        )
    )


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def render_shop_markdown(insights: dict[str, Any]) -> str:
    """The report as Markdown (the same text and tables as the HTML page, without charts)."""
    ins, q, tables = insights, _quality(insights), _tables(insights)
    md = [
        "# Shop insights",
        "",
        f"{ins['source']} · data to {ins['as_of'][:10]} · generated {ins['created_at']} by propensity "
        f"{ins['propensity_version']} · every number is also in the JSON file next to this one.",
        "",
        "## Key findings",
        "",
    ]
    md += [f"- {f['text']}" for f in ins["findings"]] + ["", "## Recommendations", ""]
    md += [f"{i}. {r['text']}" for i, r in enumerate(ins["recommendations"], start=1)] + [""]
    if ins["model_words"]:
        md += ["## The model in plain words", "", *[f"- {w}" for w in ins["model_words"]], ""]
    md += [
        "## Churn-risk and value segments",
        "",
        *_md_table(tables["segments"]["headers"], tables["segments"]["rows"]),
    ]
    if tables["products"]:
        md += ["## Products", ""]
        for t in tables["products"]:
            md += [f"### {t['title']}", "", *_md_table(t["headers"], t["rows"])]
    if tables["categories"]:
        md += ["## Categories", ""]
        for t in tables["categories"]:
            md += [f"### {t['title']}", "", *_md_table(t["headers"], t["rows"])]
    if tables["pairs"]:
        md += ["## Bought together", "", *_md_table(tables["pairs"]["headers"], tables["pairs"]["rows"])]
    md += [
        "## Data quality",
        "",
        f"{q['rows_in']:,} rows read, {q['rows_ok']:,} valid events of {q['customers']:,} customers "
        f"({q['first']} .. {q['last']}), {q['rows_quarantined']:,} quarantined ({q['share']}).",
        "",
    ]
    if q["reasons"]:
        md += _md_table(["reason", "rows"], [[r, f"{n:,}"] for r, n in q["reasons"]])
    md += ["## Methodology", "", *[f"- {m}" for m in ins["methodology"]], ""]
    md += ["## Limitations", "", *[f"- {m}" for m in ins["limitations"]], ""]
    return "\n".join(md)
