"""What a training run records: parameters, metrics, tags, the data summary, signature and example."""

from __future__ import annotations

import contextlib
import getpass
import json
import math
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from propensity.manifest import Manifest
from propensity.tracking.session import Session

if TYPE_CHECKING:  # pragma: no cover
    from propensity.training.trainer import TrainingRun

__all__ = [
    "HEADLINE_METRICS",
    "TAG",
    "dataset_input",
    "ensemble_text",
    "flat_numbers",
    "git_state",
    "model_metadata",
    "param_text",
    "requirement_pins",
    "run_metrics",
    "run_note",
    "run_params",
    "run_tags",
    "signature_and_example",
    "summarize_data",
    "version_tags",
]


TAG = "propensity."

HEADLINE_METRICS = ("test_roc_auc", "test_pr_auc", "oof_pr_auc")


def git_state(path: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git repository containing ``path`` (default: the working directory).

    ``(None, None)`` outside a repository or without git. "Dirty" means tracked files have
    uncommitted changes, so the commit alone does not reproduce the code.
    """
    cwd = str(path) if path is not None else None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or None, dirty


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def requirement_pins(manifest: Manifest) -> list[str]:
    """Explicit pins for the logged model (MLflow's own inference would cost ~6 s per model).

    Libraries the pickle depends on are pinned to the versions the model was trained with;
    the rest to what is installed now.
    """
    trained = manifest.provenance.versions
    dists = ["propensity", "mlflow", "numpy", "pandas", "scikit-learn", "scipy", "joblib", "lightgbm"]
    dists += ["pyarrow", "pydantic", "pydantic-settings"]
    families = {c.family for c in manifest.candidates if c.name == manifest.winner}
    if manifest.ensemble is not None:
        families |= {e.family for e in manifest.ensemble.members}
    if "xgboost" in families:
        dists.append("xgboost-cpu" if _installed("xgboost-cpu") else "xgboost")
    pins = []
    for dist in dists:
        version = trained.get(dist) or _installed(dist)
        pins.append(f"{dist}=={version}" if version else dist)
    return pins


def flat_numbers(prefix: str, data: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flat_numbers(name, value))
        elif isinstance(value, (int, float)) and math.isfinite(float(value)):  # bool is an int
            out[name] = float(value)
    return out


def param_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple, set)):
        text = ",".join(map(str, value))
    elif isinstance(value, Mapping):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= 6000 else text[:5990] + "…"


def run_params(manifest: Manifest, train_params: Mapping[str, Any] | None) -> dict[str, str]:
    prov, policy = manifest.provenance, manifest.policy
    features = manifest.input_schema.features
    params: dict[str, Any] = {
        "target": manifest.task.target,
        "positive": manifest.task.positive,
        "id_column": manifest.input_schema.id_column,
        "folds": prov.folds,
        "seed": prov.seed,
        "metric": prov.metric,
        "time_budget": prov.time_budget,
        "trials": prov.trials,
        "policy": policy.kind,
        **{f"policy_{k}": v for k, v in policy.params.items()},
        "winner": manifest.winner,
        "calibration": manifest.calibration.method,
        "candidates": [c.name for c in manifest.candidates],
        "n_features": len(features),
        "features": [f.name for f in features],
        "excluded": [f"{e.name} ({e.role})" for e in manifest.input_schema.excluded],
    }
    for key, value in (train_params or {}).items():
        if key == "policy" and isinstance(value, Mapping):
            params.update({f"policy_{k}": v for k, v in value.items() if v is not None and k != "kind"})
        elif key == "roles":
            params["role_overrides"] = dict(value) if value else "none"
        elif key not in params or params[key] in (None, ""):
            params[key] = value
    return {k: param_text(v) for k, v in params.items()}


def run_metrics(manifest: Manifest, run: TrainingRun | None) -> dict[str, float]:
    prov = manifest.provenance
    metrics: dict[str, float] = {}
    metrics.update(flat_numbers("oof", manifest.metrics.get("oof")))
    metrics.update(flat_numbers("test", manifest.metrics.get("test")))
    metrics["threshold"] = float(manifest.policy.threshold)
    metrics.update(flat_numbers("policy", manifest.policy.expected))
    metrics.update(flat_numbers("calibration_before", manifest.calibration.before))
    metrics.update(flat_numbers("calibration_after", manifest.calibration.after))
    metrics.update(
        {
            "rows_in": prov.rows_in,
            "rows_quarantined": prov.rows_quarantined,
            "rows_used": prov.rows_used,
            "rows_train": prov.rows_train,
            "rows_test": prov.rows_test,
            "positive_rate": manifest.task.positive_rate,
            "n_candidates": len(manifest.candidates),
        }
    )
    if run is not None:
        metrics.update(flat_numbers("seconds", run.timings))
        tuning = run.tuning or {}
        metrics.update(flat_numbers("tuning", {k: v for k, v in tuning.items() if k != "best_params"}))
    return metrics


def run_tags(
    manifest: Manifest, name: str, source: str, git: tuple[str | None, bool | None]
) -> dict[str, str]:
    prov = manifest.provenance
    commit, dirty = git
    tags = {
        "mlflow.runName": f"{name}-{manifest.model_version}",
        "mlflow.source.name": source,
        "mlflow.source.type": "LOCAL",
        "mlflow.note.content": run_note(manifest, name),
        f"{TAG}model_name": name,
        f"{TAG}model_version": manifest.model_version,
        f"{TAG}data_hash": prov.data_hash,
        f"{TAG}data_source": prov.data_source[:5000],
        f"{TAG}seed": str(prov.seed),
        f"{TAG}target": manifest.task.target,
        f"{TAG}positive": manifest.task.positive,
        f"{TAG}winner": manifest.winner,
        f"{TAG}created_at": prov.created_at,
        f"{TAG}python": prov.python,
        f"{TAG}platform": prov.platform,
        **{f"{TAG}version.{pkg}": v for pkg, v in prov.versions.items()},
    }
    with contextlib.suppress(Exception):
        tags["mlflow.user"] = getpass.getuser()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags[f"{TAG}git_commit"] = commit
        if dirty is not None:
            tags[f"{TAG}git_dirty"] = str(dirty).lower()
    return tags


def _headline(manifest: Manifest) -> dict[str, float]:
    numbers = {
        **flat_numbers("oof", manifest.metrics.get("oof")),
        **flat_numbers("test", manifest.metrics.get("test")),
    }
    return {k: numbers[k] for k in HEADLINE_METRICS if k in numbers}


def run_note(manifest: Manifest, name: str) -> str:
    test = manifest.metrics.get("test") or {}
    prov = manifest.provenance

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, (int, float)) else "–"

    return (
        f"**{name}**: {manifest.winner} predicting `{manifest.task.target}` = {manifest.task.positive!r} "
        f"(bundle {manifest.model_version}).\n\n"
        f"Test ROC-AUC {fmt(test.get('roc_auc'))}, PR-AUC {fmt(test.get('pr_auc'))}; threshold "
        f"{manifest.policy.threshold:.4f} ({manifest.policy.rationale}).\n\n"
        f"Data: {prov.data_source} (sha256 {prov.data_hash[:12]}…), {prov.rows_in} rows, "
        f"{prov.rows_quarantined} quarantined, {prov.rows_train} train, {prov.rows_test} test; seed {prov.seed}."
    )


def summarize_data(manifest: Manifest) -> dict[str, Any]:
    prov = manifest.provenance
    by_role: dict[str, int] = {}
    for f in manifest.input_schema.features:
        by_role[f.role] = by_role.get(f.role, 0) + 1
    return {
        "source": prov.data_source,
        "sha256": prov.data_hash,
        "rows": {
            "in": prov.rows_in,
            "quarantined": prov.rows_quarantined,
            "used": prov.rows_used,
            "train": prov.rows_train,
            "test": prov.rows_test,
        },
        "test_source": prov.test_source,
        "target": manifest.task.model_dump(),
        "id_column": manifest.input_schema.id_column,
        "features_by_role": by_role,
        "features": [
            {
                "name": f.name,
                "role": f.role,
                "dtype": f.dtype,
                "required": f.required,
                "missing": f.missing_share,
            }
            for f in manifest.input_schema.features
        ],
        "excluded": [e.model_dump() for e in manifest.input_schema.excluded],
        "quarantine_reasons": prov.quarantine_reasons,
    }


_MLFLOW_TYPES = {"int": "long", "float": "double", "bool": "boolean", "datetime64": "datetime"}


def _mlflow_type(dtype: str, role: str) -> str:
    if role == "categorical":
        return "string"
    for prefix, kind in _MLFLOW_TYPES.items():
        if dtype.startswith(prefix):
            return kind
    return "string" if dtype == "object" else "double"


def dataset_input(session: Session, manifest: Manifest) -> Any:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    prov = manifest.provenance
    source = prov.data_source.split(" (test:")[0]
    is_file = source != "DataFrame"
    columns = [
        {"name": f.name, "type": _mlflow_type(f.dtype, f.role), "required": f.required}
        for f in manifest.input_schema.features
    ]
    dataset = Dataset(
        name=Path(source).name if is_file else "training DataFrame",
        digest=prov.data_hash[:16],
        source_type="local" if is_file else "code",
        source=json.dumps({"uri": str(Path(source).absolute())} if is_file else {"tags": {}}),
        schema=json.dumps({"mlflow_colspec": columns}),
        profile=json.dumps(
            {
                "num_rows": prov.rows_in,
                "rows_used": prov.rows_used,
                "rows_quarantined": prov.rows_quarantined,
                "positive_rate": manifest.task.positive_rate,
            }
        ),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


def signature_and_example(manifest: Manifest) -> tuple[Any, Any]:
    """Input signature and a synthetic example, both from the manifest.

    Column types are ``Any``: the model validates and coerces its input itself (numbers as
    text, ``yes``/``no`` flags, date strings) and quarantines what it cannot read, while
    MLflow's strict types would refuse an ``int64`` column for a ``double`` feature. The
    precise types are in the model metadata. The example is built from the training profile
    (medians, frequent levels), so no customer's row is copied into the registry.
    """
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    specs = manifest.input_schema.features
    columns: list[Any] = [ColSpec(AnyType(), f.name, required=f.required) for f in specs]
    id_column = manifest.input_schema.id_column
    if id_column:
        columns.append(ColSpec(AnyType(), id_column, required=False))
    example: dict[str, list[Any]] = {}
    for f in specs:
        prof = manifest.profile_of(f.name)
        if f.role in ("numeric", "boolean"):
            qs = prof.quantiles or {}
            values = [qs.get(q, f.min if f.min is not None else 0.0) for q in ("0.25", "0.5", "0.75")]
            if f.role == "boolean" or f.integer:
                example[f.name] = [round(float(v)) for v in values]
            else:
                example[f.name] = [float(v) for v in values]
        elif f.role == "categorical":
            levels = list(prof.top or {}) or list(f.categories or []) or ["other"]
            example[f.name] = [levels[i % len(levels)] for i in range(3)]
        else:  # datetime
            low, high = prof.min, prof.max
            stamps = [s for s in (low, high) if s] or ["2024-01-01"]
            example[f.name] = [str(stamps[i % len(stamps)])[:19] for i in range(3)]
    if id_column:
        example[id_column] = ["example-1", "example-2", "example-3"]
    return ModelSignature(inputs=Schema(columns)), pd.DataFrame(example)


def model_metadata(manifest: Manifest) -> dict[str, Any]:
    return {
        "propensity": {
            "bundle_version": manifest.model_version,
            "target": manifest.task.target,
            "positive": manifest.task.positive,
            "winner": manifest.winner,
            "threshold": manifest.policy.threshold,
            "id_column": manifest.input_schema.id_column,
            "features": [
                {"name": f.name, "role": f.role, "dtype": f.dtype, "required": f.required}
                for f in manifest.input_schema.features
            ],
            "output": ["probability", "decision", "band"],
        }
    }


def version_tags(manifest: Manifest, bundle: Path) -> dict[str, str]:
    tags = {
        f"{TAG}model_version": manifest.model_version,
        f"{TAG}winner": manifest.winner,
        f"{TAG}target": manifest.task.target,
        f"{TAG}positive": manifest.task.positive,
        f"{TAG}data_hash": manifest.provenance.data_hash,
        f"{TAG}threshold": f"{manifest.policy.threshold:.6f}",
        f"{TAG}bundle_path": str(bundle.absolute()),
    }
    tags.update({f"{TAG}{k}": f"{v:.6f}" for k, v in _headline(manifest).items()})
    if manifest.ensemble is not None:
        tags[f"{TAG}ensemble"] = ensemble_text(manifest)
    return tags


def ensemble_text(manifest: Manifest) -> str:
    """An ensemble's members and weights in one line: ``lightgbm 0.800, logistic_regression 0.200``."""
    if manifest.ensemble is None:
        return ""
    return ", ".join(f"{e.name} {e.weight:.3f}" for e in manifest.ensemble.members)
