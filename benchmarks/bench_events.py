"""Quality on event and order logs: "will this customer buy within the horizon?", against recency/frequency.

Our model is ``train_from_events`` with every default except the horizon and the number of
cutoffs. Beside it, the baseline a marketing analyst would start from: a logistic regression on
recency and frequency — ``log(1 + days since the last purchase)`` (for a customer who never
bought: days since first seen) and ``log(1 + orders to date)`` — fitted on the snapshots our
shipped model was fitted on (``train_from_events`` holds its latest cutoff out as its own test,
then, on small data, refits the shipped model on every snapshot including it) and scored on
exactly the same customers. Seeds are fixed and printed.

- **synthetic shop** (``propensity demo``'s shop: 20,000 customers over 365 days, seed 7; quick:
  5,000): 30-day horizon, 6 monthly cutoffs. Ours = the model's held-out latest cutoff (never
  trained on; its test metrics are taken before the refit on every snapshot); the baseline is
  fitted on the earlier cutoffs whose label windows end by the test cutoff, and scored on the
  test cutoff's customers.
- **online_retail** (cutoff 2011-09-01) and **online_retail_ii_2009_2010** (cutoff 2010-09-01):
  "purchase in the next 90 days". Training reads the log *as exported at the cutoff*
  (``export_time=cutoff``: every later line is quarantined before anything else happens), with
  two cutoffs 90 days apart, the latest ending its label window at the evaluation cutoff. The
  bundle is written to disk, then ``score_events`` scores every customer at the cutoff from the
  full log, and only then are the labels of the 90 days after the cutoff computed
  (``compute_features`` with ``horizon_days=90``). Both models are scored on the customers
  eligible at the cutoff (by default everyone seen before it, the training population).

No published figure exists for these exact tasks; the recency/frequency baseline is the peer.
The seeds are fixed, but ``train_from_events`` is not yet bit-reproducible: DuckDB returns each
snapshot's rows in a varying order (and parallel sums differ in the last bits), so a model can
move by a few thousandths of ROC-AUC from run to run.

    python -m benchmarks.bench_events                  # all three, the demo's shop size
    python -m benchmarks.bench_events online_retail    # one of synthetic, online_retail, online_retail_ii
    python -m benchmarks.bench_events --quick          # a 5,000-customer shop and online_retail
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import ROOT, WORK, Figure, guarded, main_with_parts, shared, skipped

QUICK = True
COMMAND = "python -m benchmarks.bench_events"
MAPPINGS = ROOT / "examples" / "mappings"
SEED = 7
#: The shop ``propensity demo`` simulates, and its training settings.
SHOP = {"customers": 20_000, "days": 365, "seed": SEED, "horizon_days": 30, "cutoffs": 6}
QUICK_CUSTOMERS = 5_000
#: name -> (file under ../shared/data, mapping, evaluation cutoff)
LOGS = {
    "online_retail": (("online_retail", "online_retail.parquet"), "online_retail.yaml", "2011-09-01"),
    "online_retail_ii": (
        ("online_retail_ii_2009_2010", "online_retail_ii_2009_2010.parquet"),
        "online_retail_ii.yaml",
        "2010-09-01",
    ),
}
LOG_HORIZON = 90
BASELINE = "logistic regression on log(1+recency) and log(1+frequency), same training snapshots"


def recency_frequency(frame: pd.DataFrame) -> np.ndarray:
    """The two baseline inputs: log(1 + days since the last purchase), log(1 + orders to date)."""
    recency = frame["days_since_last_purchase"].astype(float)
    recency = recency.fillna(frame["tenure_days"].astype(float))  # never bought: since first seen
    orders = frame["n_orders_all"].astype(float).fillna(0.0)
    return np.column_stack([np.log1p(recency.clip(lower=0)), np.log1p(orders)])


def recency_frequency_baseline(train: pd.DataFrame, label: str, score: pd.DataFrame) -> np.ndarray:
    """Fit the baseline on ``train`` (features and ``label``) and return probabilities for ``score``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(random_state=SEED).fit(recency_frequency(train), train[label].astype(int))
    return clf.predict_proba(recency_frequency(score))[:, 1]


def training_rows(frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """The snapshots ``train_from_events`` fits its final model on: not the latest cutoff (its
    held-out test) and none whose label window reaches past it — the baseline learns from these too."""
    test_cutoff = frame["cutoff"].max()
    keep = (frame["cutoff"] != test_cutoff) & (
        frame["cutoff"] + pd.Timedelta(days=horizon_days) <= test_cutoff
    )
    return frame[keep]


def _figures(
    name: str,
    y: np.ndarray,
    ours: np.ndarray,
    base: np.ndarray,
    params: dict[str, Any],
    command: str,
    note: str,
) -> list[Figure]:
    from propensity.metrics import metric_value

    out = []
    for metric in ("roc_auc", "pr_auc"):
        value, peer = metric_value(metric, y, ours), metric_value(metric, y, base)
        out.append(
            Figure(
                f"{name}_{metric}",
                round(value, 4),
                "",
                "higher",
                baseline=round(peer, 4),
                baseline_name=BASELINE,
                ratio=round(value / peer, 4),
                note=note
                + (
                    f"; positive rate {y.mean():.3f} (= PR-AUC of a random ranking)"
                    if metric == "pr_auc"
                    else ""
                ),
                params=params,
                command=command,
            )
        )
    return out


# ------------------------------------------------------------------------------ synthetic shop


def _shop(customers: int) -> Path:
    """The demo's shop at ``customers``, generated once into benchmarks/.work (seeded: identical every time)."""
    import json

    from propensity.datasets import generate_shop

    folder = WORK / f"events_shop_{customers}"
    meta = folder / "shop.json"
    if not meta.exists() or json.loads(meta.read_text()).get("customers") != customers:
        generate_shop(customers, days=SHOP["days"], seed=SHOP["seed"], out=folder)
    return folder / "events.parquet"


def synthetic(quick: bool) -> list[Figure]:
    from propensity.metrics import metric_value
    from propensity.workflows.events import train_from_events

    customers = QUICK_CUSTOMERS if quick else SHOP["customers"]
    events = _shop(customers)
    horizon = SHOP["horizon_days"]
    start = time.perf_counter()
    result = train_from_events(events, horizon_days=horizon, cutoffs=SHOP["cutoffs"], seed=SEED)
    model = result.model
    seconds = time.perf_counter() - start
    # The model is frozen; its test cutoff's labels are read from here on.
    ts = result.training_set
    label = ts.label.column
    frame = ts.frame
    test_cutoff = max(ts.cutoffs)
    test = frame[frame["cutoff"] == test_cutoff]
    train = training_rows(frame, horizon)
    y = test[label].astype(int).to_numpy()
    ours = model.predict_proba(test.drop(columns=[label]))
    manifest_test = model.manifest.metrics["test"]
    if abs(metric_value("roc_auc", y, ours) - manifest_test["roc_auc"]) > 1e-4:
        raise AssertionError("the held-out cutoff's rows are not the ones the trainer tested on")
    params = {
        "customers": customers,
        "days": SHOP["days"],
        "shop_seed": SHOP["seed"],
        "train_seed": SEED,
        "horizon_days": horizon,
        "cutoffs": [str(c.date()) for c in ts.cutoffs],
        "test_cutoff": str(test_cutoff.date()),
        "rows_test": len(test),
        "positives_test": int(y.sum()),
        "rows_baseline_train": len(train),
        "winner": model.manifest.winner,
        "validation": model.manifest.provenance.validation,
        "manifest_test_roc_auc": manifest_test.get("roc_auc"),
        "manifest_test_pr_auc": manifest_test.get("pr_auc"),
        "train_seconds": round(seconds, 1),
    }
    command = f"{COMMAND} synthetic" + (" --quick" if quick else "")
    note = f"held-out latest cutoff {test_cutoff.date()}: {len(test):,} eligible customers, {int(y.sum()):,} buyers"
    size = f"{customers // 1000}k"
    return _figures(
        f"shop_{size}_{horizon}d",
        y,
        ours,
        recency_frequency_baseline(train, label, test),
        params,
        command,
        note,
    )


# ------------------------------------------------------------------------------ order logs


def order_log(name: str) -> list[Figure]:
    from propensity.workflows.events import compute_features, score_events, train_from_events

    parts, mapping_file, cutoff_text = LOGS[name]
    path = shared(*parts)
    assert path is not None  # run() skips absent data
    mapping = MAPPINGS / mapping_file
    cutoff = pd.Timestamp(cutoff_text)
    horizon = LOG_HORIZON
    with tempfile.TemporaryDirectory(prefix=f"bench_{name}_") as tmp:
        bundle = Path(tmp) / "model"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the lines after the cutoff are "clock skew" on purpose
            result = train_from_events(
                path,
                mapping=mapping,
                export_time=cutoff,
                horizon_days=horizon,
                cutoffs=2,
                last_cutoff=cutoff - pd.Timedelta(days=horizon),
                seed=SEED,
                out=bundle,
            )
        seconds = time.perf_counter() - start
        after_cutoff = result.validation.reasons.get("timestamp after the end of the data", 0)
        # Frozen on disk. Score the customers at the cutoff from the full log, then read labels.
        scored = score_events(bundle, path, Path(tmp) / "scores.parquet", as_of=cutoff)
        scores = pd.read_parquet(scored.output)
        truth, _ = compute_features(path, cutoff, mapping=mapping, horizon_days=horizon)
    assert truth is not None
    label = f"purchase_next_{horizon}d"
    joined = truth.merge(
        scores[["customer_id", "probability", "eligible"]], on="customer_id", suffixes=("", "_scored")
    )
    if len(joined) != len(truth) or not (joined["eligible"] == joined["eligible_scored"]).all():
        raise AssertionError(f"{name}: scored customers differ from the labelled ones at {cutoff.date()}")
    rows = joined[joined["eligible"].astype(bool)]
    y = rows[label].astype(int).to_numpy()
    ts = result.training_set
    refit = result.model.manifest.provenance.refit_rows
    # the shipped model was refitted on every snapshot (the latest too): so is the baseline
    train = ts.frame if refit else training_rows(ts.frame, horizon)
    base = recency_frequency_baseline(train, ts.label.column, rows)
    params = {
        "log": "/".join(parts),
        "mapping": f"examples/mappings/{mapping_file}",
        "evaluation_cutoff": cutoff_text,
        "horizon_days": horizon,
        "training_cutoffs": [str(c.date()) for c in ts.cutoffs],
        "lines_after_cutoff_quarantined_in_training": after_cutoff,
        "rows_train": len(train),
        "shipped_model_refitted_on_rows": refit,
        "customers_scored": len(joined),
        "customers_eligible": len(rows),
        "positives": int(y.sum()),
        "winner": result.model.manifest.winner,
        "validation": result.model.manifest.provenance.validation,
        "internal_test": result.model.manifest.provenance.test_source,
        "internal_test_roc_auc": result.model.manifest.metrics["test"].get("roc_auc"),
        "seed": SEED,
        "train_seconds": round(seconds, 1),
    }
    note = (
        f"cutoff {cutoff_text}: {len(rows):,} eligible customers (every one seen before it), "
        f"{int(y.sum()):,} bought in the next {horizon} days"
    )
    return _figures(
        f"{name}_{horizon}d", y, rows["probability"].to_numpy(), base, params, f"{COMMAND} {name}", note
    )


def run(quick: bool = False, only: set[str] | None = None) -> list[Figure]:
    """The synthetic shop and both order logs; a part that fails becomes an error figure."""
    wanted = only or ({"synthetic", "online_retail"} if quick else {"synthetic", *LOGS})
    unknown = wanted - {"synthetic", *LOGS}
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; choose from synthetic, {', '.join(LOGS)}")
    figures: list[Figure] = []
    if "synthetic" in wanted:
        figures += guarded("shop", f"{COMMAND} synthetic", lambda: synthetic(quick))
    missing = []
    for name, (parts, _, _) in LOGS.items():
        if name not in wanted:
            continue
        if shared(*parts) is None:
            missing.append(parts[0])
            continue
        figures += guarded(name, f"{COMMAND} {name}", lambda name=name: order_log(name))
    return figures + skipped(missing)


if __name__ == "__main__":
    main_with_parts("events", run)
