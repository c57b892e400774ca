"""What the manifest records about a fit: the data profile, the input schema, candidates, provenance.

Everything here describes; nothing learns. :func:`build_manifest` assembles the
:class:`~propensity.manifest.Manifest` of a finished fit from the held-out split, the design,
the selection and the test metrics.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from propensity.manifest import (
    CalibrationReport,
    CandidateReport,
    EnsembleMember,
    EnsembleSpec,
    ExcludedColumn,
    FeatureProfile,
    FeatureSpec,
    Histogram,
    InputSchema,
    Manifest,
    Provenance,
    ScoreProfile,
    TaskSpec,
)
from propensity.metrics import binary_metrics, cbpe
from propensity.pipeline import TabularEncoder
from propensity.schema import Role, RoleTable
from propensity.training.config import TrainConfig
from propensity.training.ensemble import ROUNDS
from propensity.training.holdout import HeldOut
from propensity.training.policy import choose_policy
from propensity.training.selection import Design, Search, Selection, rounded

__all__ = ["build_manifest", "candidate_reports", "feature_profile", "library_versions", "score_profile"]

#: Quantile levels stored in each numeric feature's profile.
QUANTILES = (0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a bundle depends on."""
    out = {}
    for pkg in ("propensity", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost", "pyarrow", "optuna"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _scale(values: np.ndarray) -> float:
    """A power of two that brings values near the float limit (|x| up to 1.8e308) into safe range."""
    top = float(np.max(np.abs(values))) if len(values) else 0.0
    return 2.0 ** (np.frexp(top)[1] - 1) if top > 1e300 else 1.0


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation without overflow, however close to the float limit the values are."""
    scale = _scale(values)
    scaled = values / scale
    return float(scaled.mean() * scale), float(min(scaled.std() * scale, np.finfo("float64").max))


def _quantiles(values: np.ndarray, q: Any) -> np.ndarray:
    """Quantiles that interpolate between huge values of opposite sign without overflow."""
    scale = _scale(values)
    return np.asarray(np.quantile(values / scale, q)) * scale


def feature_profile(col: pd.Series, role: Role) -> FeatureProfile:
    """One feature's training distribution: quantiles, mean, decile histogram or level shares."""
    prof = FeatureProfile(role=str(role), missing_share=float(col.isna().mean()))
    valid = col.dropna()
    if not len(valid):
        return prof
    if role in (Role.NUMERIC, Role.BOOLEAN):
        values = valid.to_numpy(dtype="float64")
        prof.quantiles = {
            str(q): float(v) for q, v in zip(QUANTILES, _quantiles(values, QUANTILES), strict=True)
        }
        prof.mean, prof.std = _mean_std(values)
        edges = np.unique(_quantiles(values, np.linspace(0, 1, 11)))
        if len(edges) > 1:
            counts, _ = np.histogram(valid, bins=edges)
            prof.histogram = Histogram(edges=edges.tolist(), shares=(counts / counts.sum()).tolist())
    elif role is Role.CATEGORICAL:
        shares = valid.value_counts(normalize=True)
        prof.top = {str(k): float(v) for k, v in shares.head(20).items()}
        prof.other_share = float(shares.iloc[20:].sum())
    elif role is Role.DATETIME:
        prof.min, prof.max = str(valid.min()), str(valid.max())
    return prof


def score_profile(probability: np.ndarray, threshold: float) -> ScoreProfile:
    """Where the calibrated probabilities fall (decile bins) and how many reach the threshold."""
    p = np.asarray(probability, dtype=float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, 11)))
    if len(edges) < 2:  # one value everywhere: a single bin around it
        edges = np.array([edges[0], edges[0]])
    counts, _ = np.histogram(p, bins=edges)
    return ScoreProfile(
        rows=len(p),
        mean=float(p.mean()),
        decision_rate=float((p >= threshold).mean()),
        histogram=Histogram(edges=edges.tolist(), shares=(counts / max(1, counts.sum())).tolist()),
        estimated_roc_auc=_finite(cbpe(p, threshold)["roc_auc"]),
    )


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _feature_specs(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    roles: RoleTable,
    encoder: TabularEncoder,
    descriptions: Mapping[str, str],
    units: Mapping[str, str],
) -> list[FeatureSpec]:
    specs = []
    for name in roles.features:
        info = roles[name]
        col = typed[name]
        spec: dict[str, Any] = {
            "name": name,
            "role": str(info.role),
            "dtype": str(frame[name].dtype),
            "missing_share": float(col.isna().mean()),
            "required": bool(col.notna().all()),
            "description": descriptions.get(name, ""),
            "unit": units.get(name),
        }
        valid = col.dropna()
        if info.role in (Role.NUMERIC,) and len(valid):
            spec.update(
                min=float(valid.min()),
                max=float(valid.max()),
                integer=bool(np.all(np.mod(valid.to_numpy(), 1) == 0)),
            )
        elif info.role is Role.CATEGORICAL:
            spec["categories"] = encoder.levels_[name]
        elif info.role is Role.DATETIME:
            spec["datetime_parts"] = encoder.datetime_parts_[name]
        specs.append(FeatureSpec(**spec))
    return specs


def candidate_reports(
    found: Search,
    chosen: Selection,
    config: TrainConfig,
    test_metrics: dict[str, Any],
    final_params: Mapping[str, Any],
    refit_seconds: float,
) -> list[CandidateReport]:
    """One report per candidate (the winner's test figures are those of its refit) and per failure."""
    reports = []
    y_test = found.design.y_test
    for res in found.results:
        cal = chosen.calibrations[res.name]
        is_winner = res is chosen.winner
        if is_winner:
            test, source = test_metrics, "refit on all training rows"
            if chosen.is_ensemble:
                source = "members refit on all training rows, blended"
        elif res.test_raw is not None:
            pol = choose_policy(config.policy, found.labels(res), cal.oof)
            test = rounded(binary_metrics(y_test, cal.calibrator(res.test_raw), pol.threshold))
            source = "mean of the fold models"
        else:
            test, source = None, None
        reports.append(
            CandidateReport(
                name=res.name,
                family=res.family,
                params=_jsonable(final_params if is_winner else res.params),
                oof=chosen.oof_metrics[res.name],
                test=test,
                test_source=source,
                fit_seconds=round(res.fit_seconds + (refit_seconds if is_winner else 0.0), 3),
                calibration=cal.method,
                tuned=res.tuned,
                rows=len(found.design.y_evaluated) if res.rows is None else len(res.rows),
            )
        )
    for name, err in found.errors.items():
        reports.append(CandidateReport(name=name, family=name, oof={}, fit_seconds=0.0, error=err))
    return reports


def build_manifest(
    frame: pd.DataFrame,
    held: HeldOut,
    d: Design,
    chosen: Selection,
    reports: list[CandidateReport],
    test_metrics: dict[str, Any],
    config: TrainConfig,
    *,
    data_source: str,
    data_hash: str,
    descriptions: Mapping[str, str],
    units: Mapping[str, str],
    label_definition: str | None,
    refit_rows: int = 0,
) -> Manifest:
    """The manifest of a finished fit (name, model version and integrity are set when saved);
    ``refit_rows`` > 0 when the shipped model was refitted on the training and test rows."""
    win_cal = chosen.calibrations[chosen.winner.name]
    versions = library_versions()
    return Manifest(
        propensity_version=versions.get("propensity", "0"),
        task=TaskSpec(
            target=config.target,
            positive=held.target.positive,
            negative=held.target.negative,
            positive_rate=float(held.y_train.mean()),
            note=held.target.note,
            label_definition=label_definition,
        ),
        roles=held.roles.to_dict(),
        input_schema=InputSchema(
            id_column=held.roles.id_column,
            features=_feature_specs(frame, held.X_train, held.roles, d.encoder, descriptions, units),
            excluded=[
                ExcludedColumn(name=c.name, role=str(c.role), note=c.note) for c in held.roles.excluded()
            ],
        ),
        policy=chosen.policy,
        calibration=CalibrationReport(
            method=win_cal.method,
            scores=win_cal.scores,
            before=win_cal.scores["none"],
            after=win_cal.scores[win_cal.method],
        ),
        winner=chosen.winner.name,
        ensemble=_ensemble_spec(chosen),
        metrics={"oof": chosen.oof_metrics[chosen.winner.name], "test": test_metrics},
        candidates=reports,
        profile={
            name: feature_profile(held.X_train[name], role) for name, role in held.feature_roles.items()
        },
        score_profile=score_profile(win_cal.oof, chosen.policy.threshold),
        provenance=Provenance(
            data_source=data_source,
            data_hash=data_hash,
            rows_in=len(frame),
            rows_quarantined=held.quarantine.n_bad_rows,
            rows_used=held.rows_used,
            rows_train=len(held.y_train),
            rows_test=len(held.y_test),
            test_source=held.test_source,
            folds=len(d.folds),
            validation=d.validation,
            seed=config.seed,
            metric=config.metric,
            time_budget=config.time_budget,
            trials=config.trials,
            versions=versions,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            python=sys.version.split()[0],
            platform=platform.platform(),
            quarantine_reasons=held.quarantine.counts_by_reason(),
            test_rows_repeating_training=held.repeated,
            refit_rows=refit_rows,
        ),
    )


def _ensemble_spec(chosen: Selection) -> EnsembleSpec | None:
    if not chosen.is_ensemble:
        return None
    return EnsembleSpec(
        rounds=ROUNDS,
        members=[
            EnsembleMember(name=m.name, family=m.family, weight=w)
            for m, w in zip(chosen.members, chosen.weights, strict=True)
        ],
        score=chosen.ensemble_score,
        single_winner=chosen.single.name if chosen.single is not None else "",
    )


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        out[k] = v
    return out
