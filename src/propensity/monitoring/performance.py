"""Score drift and model performance, before labels (CBPE) and after (realised)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from propensity.manifest import Manifest
from propensity.metrics import binary_metrics
from propensity.monitoring.stats import auc_interval, cbpe, expected_calibration_error, ks_binned, psi, shares
from propensity.monitoring.thresholds import Thresholds, worst

__all__ = ["realised_performance", "score_drift"]


def _reference_metric(manifest: Manifest, name: str) -> float | None:
    for block in ("test", "oof"):
        value = (manifest.metrics.get(block) or {}).get(name)
        if value is not None:
            return float(value)
    return None


def score_drift(probability: np.ndarray, manifest: Manifest, th: Thresholds) -> dict[str, Any]:
    """How the probabilities and the contact rate moved, and the CBPE estimate of performance."""
    p = np.asarray(probability, dtype=float)
    threshold = manifest.policy.threshold
    estimated = cbpe(p, threshold)
    ref_auc = _reference_metric(manifest, "roc_auc")
    prof = manifest.score_profile
    out: dict[str, Any] = {
        "rows": len(p),
        "mean": float(p.mean()) if len(p) else None,
        "decision_rate": float((p >= threshold).mean()) if len(p) else None,
        "threshold": threshold,
        "estimated": {k: (round(v, 6) if v == v else None) for k, v in estimated.items()},
        "reference": {"roc_auc": ref_auc, "mean": None, "decision_rate": None},
        "status": "n/a",
        "reasons": [],
    }
    checks: list[tuple[str, float | None, tuple[float, float]]] = []
    # Like with like: the estimate on the new rows against the same estimate on the training rows'
    # out-of-fold probabilities (their realised test ROC-AUC carries the test split's own noise,
    # ±0.02 on a few hundred rows). Older bundles have only the realised figure.
    ref_estimate = (
        prof.estimated_roc_auc if prof is not None and prof.estimated_roc_auc is not None else ref_auc
    )
    out["reference"]["estimated_roc_auc"] = ref_estimate
    if ref_estimate is not None and estimated["roc_auc"] == estimated["roc_auc"]:
        out["estimated"]["roc_auc_change"] = round(estimated["roc_auc"] - ref_estimate, 6)
        checks.append(("estimated ROC-AUC drop", ref_estimate - estimated["roc_auc"], th.auc_drop))
    if prof is not None and len(p):
        edges = np.asarray(prof.histogram.edges)
        inner = (
            np.histogram(np.clip(p, edges[0], edges[-1]), bins=edges)[0]
            if len(edges) > 1
            else np.array([len(p)])
        )
        counts = np.concatenate([[np.sum(p < edges[0])], inner, [np.sum(p > edges[-1])]]).astype(float)
        counts[1] -= counts[0]
        counts[-2] -= counts[-1]
        reference = np.array([0.0, *prof.histogram.shares, 0.0])
        current = shares(counts)
        out["psi"] = round(psi(reference, current), 6)
        out["ks"], out["ks_p_value"] = ks_binned(reference, current, prof.rows, len(p))
        out["reference"].update(mean=prof.mean, decision_rate=prof.decision_rate)
        labels = [f"< {edges[0]:.3f}"]
        labels += [f"{lo:.3f}–{hi:.3f}" for lo, hi in itertools.pairwise(edges)]
        labels += [f"> {edges[-1]:.3f}"]
        out["bins"] = [
            {"bin": b, "reference": round(float(r), 6), "current": round(float(c), 6)}
            for i, (b, r, c) in enumerate(zip(labels, reference, current, strict=True))
            if 0 < i < len(labels) - 1 or c > 0  # beyond the training range: shown when scores went there
        ]
        checks.append(("score PSI", out["psi"], th.score_psi))
        if prof.decision_rate > 0:
            change = abs(out["decision_rate"] - prof.decision_rate) / prof.decision_rate
            out["decision_rate_change"] = round(change, 6)
            checks.append(("decision rate change", change, th.decision_rate))
    if len(p) < th.min_rows:
        out["reasons"] = [f"only {len(p)} scored row(s); tests need {th.min_rows}"]
        return out
    out["status"], out["reasons"] = worst(checks)
    return out


def realised_performance(
    y: np.ndarray, probability: np.ndarray, manifest: Manifest, th: Thresholds
) -> dict[str, Any]:
    """ROC-AUC, PR-AUC and calibration on labelled rows, against the bundle's test figures."""
    y, p = np.asarray(y, dtype=int), np.asarray(probability, dtype=float)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    out: dict[str, Any] = {"rows": len(y), "positives": n_pos, "status": "n/a", "reasons": []}
    if n_pos == 0 or n_neg == 0:
        out["reasons"] = ["the labels hold one class only: no ROC-AUC"]
        return out
    m = binary_metrics(y, p, manifest.policy.threshold)
    auc = float(m["roc_auc"])
    low, high = auc_interval(auc, n_pos, n_neg)
    out.update(
        roc_auc=round(auc, 6),
        roc_auc_interval=[round(low, 6), round(high, 6)],
        pr_auc=round(float(m["pr_auc"]), 6),
        positive_rate=round(n_pos / len(y), 6),
        ece=round(expected_calibration_error(y, p), 6),
        reference={
            "roc_auc": _reference_metric(manifest, "roc_auc"),
            "pr_auc": _reference_metric(manifest, "pr_auc"),
        },
    )
    checks: list[tuple[str, float | None, tuple[float, float]]] = [
        ("expected calibration error", out["ece"], th.ece)
    ]
    ref_auc = out["reference"]["roc_auc"]
    if ref_auc is not None:
        out["roc_auc_change"] = round(auc - ref_auc, 6)
        checks.append(("ROC-AUC drop", ref_auc - auc, th.auc_drop))
    if out["reference"]["pr_auc"] is not None:
        out["pr_auc_change"] = round(out["pr_auc"] - out["reference"]["pr_auc"], 6)
    if len(y) < th.min_rows:
        out["reasons"] = [f"only {len(y)} labelled row(s); tests need {th.min_rows}"]
        return out
    out["status"], out["reasons"] = worst(checks)
    return out
