"""Input drift of every feature against the training profile, aggregated in one DuckDB scan.

The bundle's profile holds each feature's training deciles (numeric), 0/1 shares (boolean) or
top-20 level shares (categorical) and its missing share. :func:`feature_drift` reduces the new
rows to the same bins in SQL — one ``count_if`` per bin edge, all features in one pass — so
10M rows never reach pandas; then every test runs on a few dozen numbers per feature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np

from propensity.manifest import FeatureProfile, Manifest
from propensity.monitoring.stats import chi_square, jensen_shannon, ks_binned, psi, shares
from propensity.monitoring.thresholds import Thresholds, worst
from propensity.schema import FALSE_TEXTS, TRUE_TEXTS

__all__ = ["FeatureDrift", "feature_drift", "quote"]


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _literal(texts: frozenset[str]) -> str:
    return ", ".join("'" + t.replace("'", "''") + "'" for t in sorted(texts))


@dataclass
class FeatureDrift:
    """One feature's drift tests and status (``green``, ``amber``, ``red`` or ``n/a``)."""

    name: str
    role: str
    status: str
    rows: int
    missing_reference: float
    missing_current: float
    psi: float | None = None
    ks: float | None = None
    ks_p_value: float | None = None
    chi_square: float | None = None
    chi_square_p_value: float | None = None
    jensen_shannon: float | None = None
    mean_reference: float | None = None
    mean_current: float | None = None
    unreadable: int = 0
    bins: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    """The SQL aggregates of one feature and how to read them back."""

    name: str
    profile: FeatureProfile
    kind: str  # numeric | boolean | categorical
    columns: list[str] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)


def _numeric_sql(col: str) -> str:
    return f"TRY_CAST({col} AS DOUBLE)"


def _boolean_sql(col: str) -> str:
    text = f"lower(trim(CAST({col} AS VARCHAR)))"
    return (
        f"CASE WHEN {text} IN ({_literal(TRUE_TEXTS)}) THEN 1.0 "
        f"WHEN {text} IN ({_literal(FALSE_TEXTS)}) THEN 0.0 ELSE TRY_CAST({col} AS DOUBLE) END"
    )


def _plans(manifest: Manifest, present: set[str]) -> tuple[list[_Plan], list[str]]:
    plans: list[_Plan] = []
    aggregates = ["count(*) AS n__rows"]
    for spec in manifest.input_schema.features:
        prof = manifest.profile.get(spec.name)
        if prof is None or spec.name not in present or spec.role == "datetime":
            continue
        col = quote(spec.name)
        i = len(plans)
        if spec.role == "categorical":
            plan = _Plan(spec.name, prof, "categorical")
            aggregates.append(f"count({col}) AS c{i}_present")
        else:
            kind = "boolean" if spec.role == "boolean" else "numeric"
            value = _boolean_sql(col) if kind == "boolean" else _numeric_sql(col)
            plan = _Plan(spec.name, prof, kind)
            if kind == "numeric":
                plan.edges = _edges(prof)
                aggregates += [f"count_if({value} < {e!r}) AS c{i}_lt{j}" for j, e in enumerate(plan.edges)]
                aggregates.append(f"count_if({value} <= {plan.edges[-1]!r}) AS c{i}_le")
            else:
                aggregates.append(f"count_if({value} = 1) AS c{i}_one")
            aggregates += [
                f"count({value}) AS c{i}_valid",
                f"count({col}) AS c{i}_present",
                f"avg(CASE WHEN isfinite({value}) THEN {value} END) AS c{i}_mean",
            ]
        plans.append(plan)
    return plans, aggregates


def _edges(prof: FeatureProfile) -> list[float]:
    if prof.histogram is not None:
        return [float(e) for e in prof.histogram.edges]
    median = prof.quantile("0.5")
    return [float(median if median is not None else 0.0)] * 2


def _numeric_bins(plan: _Plan, row: dict[str, Any], i: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    edges = plan.edges
    lt = [row[f"c{i}_lt{j}"] for j in range(len(edges))]
    le_last, valid = row[f"c{i}_le"], row[f"c{i}_valid"]
    inner = [lt[j + 1] - lt[j] for j in range(len(edges) - 2)] + [le_last - lt[-2]]
    current = np.array([lt[0], *inner, valid - le_last], dtype=float)
    hist = plan.profile.histogram
    ref_inner = list(hist.shares) if hist is not None else [1.0]
    reference = np.array([0.0, *ref_inner, 0.0])
    labels = [f"< {edges[0]:g}"]
    labels += [f"[{edges[j]:g}, {edges[j + 1]:g})" for j in range(len(edges) - 2)]
    labels += [f"[{edges[-2]:g}, {edges[-1]:g}]", f"> {edges[-1]:g}"]
    return reference, current, labels


def _category_counts(
    con: duckdb.DuckDBPyConnection, relation: str, plans: list[_Plan]
) -> dict[str, dict[str, int]]:
    """Level counts of every categorical feature, in one query (a UNION of group-bys)."""
    cats = [p for p in plans if p.kind == "categorical"]
    if not cats:
        return {p.name: {} for p in plans}
    parts = [
        f"SELECT {k} AS feature, CAST({quote(p.name)} AS VARCHAR) AS level, count(*) AS n FROM {relation} "
        f"WHERE {quote(p.name)} IS NOT NULL GROUP BY ALL"
        for k, p in enumerate(cats)
    ]
    out: dict[str, dict[str, int]] = {p.name: {} for p in cats}
    for k, level, n in con.execute(" UNION ALL ".join(parts)).fetchall():
        out[cats[k].name][str(level).strip()] = out[cats[k].name].get(str(level).strip(), 0) + int(n)
    return out


def _categorical_bins(
    prof: FeatureProfile, counts: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    top = prof.top or {}
    labels = [*top, "(other)"]
    current = np.array([counts.get(level, 0) for level in top] + [0], dtype=float)
    current[-1] = sum(n for level, n in counts.items() if level not in top)
    reference = np.array([*top.values(), prof.other_share or 0.0])
    return reference, current, labels


def feature_drift(
    con: duckdb.DuckDBPyConnection, relation: str, manifest: Manifest, thresholds: Thresholds
) -> tuple[int, list[FeatureDrift]]:
    """Rows of ``relation`` (a table name or a parenthesised query) and every profiled feature's drift."""
    present = {str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    plans, aggregates = _plans(manifest, present)
    names = [a.rsplit(" AS ", 1)[1] for a in aggregates]
    values = con.execute(f"SELECT {', '.join(aggregates)} FROM {relation}").fetchone()
    assert values is not None
    row = {k: (v if v is not None else 0) for k, v in zip(names, values, strict=True)}
    n_rows = int(row["n__rows"])
    levels = _category_counts(con, relation, plans)
    results = [
        _one(plan, row, i, n_rows, levels.get(plan.name, {}), thresholds) for i, plan in enumerate(plans)
    ]
    missing = [
        FeatureDrift(
            f.name,
            f.role,
            "red",
            n_rows,
            manifest.profile_of(f.name).missing_share,
            1.0,
            reasons=["the column is absent from the data"],
        )
        for f in manifest.input_schema.features
        if f.name not in present and f.role != "datetime"
    ]
    return n_rows, results + missing


def _one(
    plan: _Plan, row: dict[str, Any], i: int, n_rows: int, levels: dict[str, int], th: Thresholds
) -> FeatureDrift:
    prof = plan.profile
    present = int(row[f"c{i}_present"])
    if plan.kind == "categorical":
        reference, counts, labels = _categorical_bins(prof, levels)
        valid = present
    elif plan.kind == "boolean":
        valid = int(row[f"c{i}_valid"])
        ones = int(row[f"c{i}_one"])
        mean = prof.mean if prof.mean is not None else 0.0
        reference, counts, labels = (
            np.array([1 - mean, mean]),
            np.array([valid - ones, ones], float),
            ["0", "1"],
        )
    else:
        valid = int(row[f"c{i}_valid"])
        reference, counts, labels = _numeric_bins(plan, row, i)
    drift = FeatureDrift(
        name=plan.name,
        role=plan.kind,
        status="n/a",
        rows=valid,
        missing_reference=round(prof.missing_share, 6),
        missing_current=round(1 - valid / n_rows, 6) if n_rows else 0.0,
        unreadable=present - valid,
        mean_reference=prof.mean,
        mean_current=float(row[f"c{i}_mean"]) if plan.kind != "categorical" and valid else None,
    )
    current = shares(counts)
    drift.bins = [
        {"bin": b, "reference": round(float(r), 6), "current": round(float(c), 6)}
        for b, r, c in zip(labels, reference, current, strict=True)
    ]
    if valid < th.min_rows:
        drift.reasons.append(f"only {valid} readable value(s); tests need {th.min_rows}")
        return drift
    drift.psi = round(psi(reference, current), 6)
    if plan.kind == "categorical":
        drift.chi_square, drift.chi_square_p_value = chi_square(reference, counts)
        drift.jensen_shannon = round(jensen_shannon(reference, current), 6)
    else:
        stat, p = ks_binned(reference, current, th.reference_rows, valid)
        drift.ks, drift.ks_p_value = round(stat, 6), p
    drift.status, drift.reasons = _status(drift, th)
    return drift


def _status(d: FeatureDrift, th: Thresholds) -> tuple[str, list[str]]:
    checks = [
        ("PSI", d.psi, th.psi),
        ("KS distance", d.ks, th.ks),
        ("Jensen-Shannon distance", d.jensen_shannon, th.jensen_shannon),
        ("missing share change", abs(d.missing_current - d.missing_reference), th.missing),
    ]
    return worst(checks)
