"""The default greedy ensemble vs our single winner vs every single family vs a plain logistic regression.

Same folds for everything. Per fold, propensity trains once with its defaults on the training part
(the held-out part passed as ``test=``: its labels are read only after the models are frozen), which
gives, on the held-out rows:

- **ensemble**: the shipped default model (greedy ensemble selection, members refitted on every
  training row) — or the single winner when no blend beat it;
- **single winner**: the best single candidate by OOF ``metric`` (``manifest.ensemble.single_winner``);
- **each family**: its cross-validation fold models' mean prediction (not a refit; the same rows);
- **plain LR**: scikit-learn ``StandardScaler`` + ``LogisticRegression`` (categoricals one-hot), same rows.

Parts: ``coil2000`` (5-fold StratifiedKFold seed 42 on the CoIL training file; share of buyers in the
top 20 %), ``social`` (StratifiedKFold 5, shuffle, seed 11; ROC-AUC), ``shoppers`` (5 stratified
80/20 splits, seed 42; ROC-AUC and PR-AUC).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks._common import Figure, guarded, main_with_parts, shared, skipped

COMMAND = "python -m benchmarks.bench_ensemble"


def _capture(y: np.ndarray, p: np.ndarray, share: float = 0.2) -> float:
    top = max(1, round(share * len(y)))
    return float(y[np.argsort(-p, kind="stable")[:top]].sum() / y.sum())


def _plain_lr(train: pd.DataFrame, test: pd.DataFrame, target: str, positive: Any) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ids = [c for c in train.columns if str(c).lower().replace(" ", "").replace("_", "") in {"id", "userid"}]
    X = pd.get_dummies(pd.concat([train, test]).drop(columns=[target, *ids]), dtype=float).fillna(0.0)
    X_tr, X_te = X.iloc[: len(train)], X.iloc[len(train) :]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(X_tr, (train[target] == positive).astype(int))
    return clf.predict_proba(X_te)[:, 1]


def _compare(
    part: str,
    frame: pd.DataFrame,
    target: str,
    positive: Any,
    splits: Iterable[tuple[np.ndarray, np.ndarray]],
    scores: dict[str, Callable[[np.ndarray, np.ndarray], float]],
    train_options: dict[str, Any],
) -> list[Figure]:
    import propensity

    per: dict[str, dict[str, list[float]]] = {}
    members: list[str] = []
    start = time.perf_counter()
    for k, (tr, te) in enumerate(splits):
        train, test = frame.iloc[tr], frame.iloc[te]
        result = propensity.train(train, target, test=test, tracking=False, **train_options)
        model, run = result.model, result.run
        y = (test[target] == positive).to_numpy().astype(int)
        preds = {"ensemble": model.predict_proba(test)}
        test_raw = {res.name: res.test_raw for res in run.candidates if res.test_raw is not None}
        for name, raw in test_raw.items():
            if name != "ensemble":
                preds[name] = raw
        m = model.manifest
        single = m.ensemble.single_winner if m.ensemble is not None else m.winner
        preds["single_winner"] = test_raw.get(single, preds["ensemble"]) if m.ensemble else preds["ensemble"]
        preds["plain_lr"] = _plain_lr(train, test, target, positive)
        members.append(
            f"fold {k}: "
            + (", ".join(f"{e.name} {e.weight:.2f}" for e in m.ensemble.members) if m.ensemble else m.winner)
            + f" (single {single})"
        )
        for name, p in preds.items():
            for metric, fn in scores.items():
                per.setdefault(f"{name}:{metric}", {}).setdefault("v", []).append(fn(y, p))
    seconds = time.perf_counter() - start
    figures = []
    for metric in scores:
        ours = float(np.mean(per[f"ensemble:{metric}"]["v"]))
        others = {
            key.split(":")[0]: round(float(np.mean(v["v"])), 4)
            for key, v in per.items()
            if key.endswith(f":{metric}") and not key.startswith("ensemble:")
        }
        best_other = max(v for k, v in others.items())
        figures.append(
            Figure(
                f"{part}_{metric}",
                round(ours, 4),
                metric,
                "higher",
                baseline=best_other,
                baseline_name="best of single winner, every family, plain LR (same folds)",
                ratio=round(ours / best_other, 4) if best_other else None,
                note="; ".join(members),
                params={
                    "others": others,
                    "per_fold_ensemble": [round(v, 4) for v in per[f"ensemble:{metric}"]["v"]],
                    "seconds": round(seconds, 1),
                },
                command=f"{COMMAND} {part}",
            )
        )
    return figures


def _roc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p))


def _pr(y: np.ndarray, p: np.ndarray) -> float:
    return float(average_precision_score(y, p))


def run(quick: bool = False, only: set[str] | None = None) -> list[Figure]:
    from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

    wanted = only or ({"social"} if quick else {"coil2000", "social", "shoppers"})
    figures: list[Figure] = []
    missing = []
    if "coil2000" in wanted:
        path = shared("coil2000", "ticdata2000.txt.gz")
        if path:
            from propensity.datasets import COIL2000_CATEGORICAL, load_coil2000

            def coil() -> list[Figure]:
                frame = load_coil2000(path.parent)
                folds = StratifiedKFold(5, shuffle=True, random_state=42).split(frame, frame["CARAVAN"])
                roles = dict.fromkeys(COIL2000_CATEGORICAL, "categorical")
                return _compare(
                    "coil2000", frame, "CARAVAN", 1, folds, {"top20_capture": _capture}, {"roles": roles}
                )

            figures += guarded("coil2000", f"{COMMAND} coil2000", coil)
        else:
            missing.append("coil2000")
    if "social" in wanted:
        path = shared("social_network_ads", "Social_Network_Ads.csv")
        if path:

            def social() -> list[Figure]:
                frame = pd.read_csv(path)
                folds = StratifiedKFold(5, shuffle=True, random_state=11).split(frame, frame["Purchased"])
                return _compare("social", frame, "Purchased", 1, folds, {"roc_auc": _roc}, {})

            figures += guarded("social", f"{COMMAND} social", social)
        else:
            missing.append("social_network_ads")
    if "shoppers" in wanted:
        path = shared("online_shoppers_intention", "online_shoppers_intention.csv.gz")
        if path:

            def shoppers() -> list[Figure]:
                frame = pd.read_csv(path)
                splits = StratifiedShuffleSplit(5, test_size=0.2, random_state=42).split(
                    frame, frame["Revenue"]
                )
                return _compare(
                    "shoppers", frame, "Revenue", True, splits, {"roc_auc": _roc, "pr_auc": _pr}, {}
                )

            figures += guarded("shoppers", f"{COMMAND} shoppers", shoppers)
        else:
            missing.append("online_shoppers_intention")
    return figures + skipped(missing)


if __name__ == "__main__":
    main_with_parts("ensemble", run)
