"""Trees of LightGBM and XGBoost boosters as plain Python records, and their split rules as arrays.

The prediction kernel (:mod:`.predict`) and the TreeSHAP kernel (:mod:`.shap`) read the same
records; split decisions replicate the libraries': LightGBM ``x <= t`` with its missing-value
types and categorical bitsets (a missing category goes right), XGBoost ``float32(x) < t`` with
the node's missing branch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Node", "Tree", "lightgbm_trees", "node_arrays", "numba_threads", "xgboost_trees"]


@dataclass
class Node:
    feature: int
    threshold: float
    categories: np.ndarray | None  # LightGBM categorical split: codes going left
    default_left: bool
    missing: str  # LightGBM: "None" | "Zero" | "NaN" (x <= t goes left); XGBoost: "xgb" (float32 x < t)


@dataclass
class Tree:
    """One tree as the algorithm needs it."""

    nodes: list[Node] = field(default_factory=list)
    # per leaf: value, and the (node, went_left, child cover / parent cover) steps of its path
    leaves: list[tuple[float, list[tuple[int, bool, float]]]] = field(default_factory=list)


def lightgbm_trees(booster: Any) -> list[Tree]:
    """Trees of a LightGBM booster (``booster_`` of an ``LGBMClassifier``)."""
    trees = []
    for info in booster.dump_model()["tree_info"]:
        tree = Tree()

        def walk(node: dict[str, Any], path: list[tuple[int, bool, float]], tree: Tree = tree) -> None:
            if "leaf_index" in node or "split_feature" not in node:
                tree.leaves.append((float(node.get("leaf_value", 0.0)), path))
                return
            categorical = node["decision_type"] == "=="
            tree.nodes.append(
                Node(
                    feature=int(node["split_feature"]),
                    threshold=0.0 if categorical else float(node["threshold"]),
                    categories=np.asarray(
                        [int(c) for c in str(node["threshold"]).split("||")], dtype="float64"
                    )
                    if categorical
                    else None,
                    default_left=bool(node["default_left"]),
                    missing=str(node["missing_type"]),
                )
            )
            k = len(tree.nodes) - 1
            total = float(node["internal_count"])
            for child, left in ((node["left_child"], True), (node["right_child"], False)):
                count = float(child["leaf_count"] if "leaf_index" in child else child["internal_count"])
                walk(child, [*path, (k, left, count / total if total else 0.0)])

        walk(info["tree_structure"], [])
        trees.append(tree)
    return trees


def xgboost_trees(booster: Any) -> tuple[list[Tree], float]:
    """Trees of an XGBoost booster and its base margin (log-odds)."""
    frame = booster.trees_to_dataframe()
    trees = []
    for _, part in frame.groupby("Tree", sort=True):
        rows = {r.ID: r for r in part.itertuples(index=False)}
        tree = Tree()
        root = part.iloc[0]["ID"]

        def walk(
            node_id: str, path: list[tuple[int, bool, float]], tree: Tree = tree, rows: Any = rows
        ) -> None:
            r = rows[node_id]
            if r.Feature == "Leaf":
                tree.leaves.append((float(r.Gain), path))
                return
            feature = int(str(r.Feature).lstrip("f"))
            tree.nodes.append(
                Node(feature, float(r.Split), None, default_left=r.Missing == r.Yes, missing="xgb")
            )
            k = len(tree.nodes) - 1
            for child, left in ((r.Yes, True), (r.No, False)):
                walk(child, [*path, (k, left, float(rows[child].Cover) / float(r.Cover) if r.Cover else 0.0)])

        walk(root, [])
        trees.append(tree)
    config = json.loads(booster.save_config())
    raw = str(config["learner"]["learner_model_param"]["base_score"]).strip("[]")
    base_score = float(raw.split(",")[0])
    objective = config["learner"]["objective"]["name"]
    margin = (
        math.log(base_score / (1 - base_score)) if objective.startswith("binary:logistic") else base_score
    )
    return trees, margin


def node_arrays(nodes: list[Node]) -> dict[str, np.ndarray]:
    """The split rules of ``nodes`` as the flat arrays the kernels' ``_goes_left`` reads."""
    kinds = [2 if n.missing == "xgb" else 1 if n.categories is not None else 0 for n in nodes]
    cat_start = [0]
    cats: list[int] = []
    for node in nodes:
        if node.categories is not None:
            cats.extend(int(v) for v in node.categories)
        cat_start.append(len(cats))
    thresholds = [n.threshold for n in nodes]
    with np.errstate(over="ignore"):  # LightGBM's "always left" 1e300 becomes inf: the same split
        thr32 = np.asarray(thresholds, dtype=np.float32)
    return {
        "node_feature": np.asarray([n.feature for n in nodes], dtype=np.int64),
        "node_kind": np.asarray(kinds, dtype=np.int64),
        "node_missing": np.asarray([{"Zero": 1, "NaN": 2}.get(n.missing, 0) for n in nodes], dtype=np.int64),
        "node_default": np.asarray([n.default_left for n in nodes], dtype=np.bool_),
        "node_thr": np.asarray(thresholds, dtype=np.float64),
        "node_thr32": thr32,
        "cat_start": np.asarray(cat_start, dtype=np.int64),
        "cats": np.asarray(cats, dtype=np.int64),
    }


@contextmanager
def numba_threads(n_jobs: int | None) -> Iterator[None]:
    """Run a parallel kernel on ``n_jobs`` threads (all of numba's when ``None``)."""
    import numba

    previous = numba.get_num_threads()
    if n_jobs:
        numba.set_num_threads(max(1, min(n_jobs, int(numba.config.NUMBA_NUM_THREADS))))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        numba.set_num_threads(previous)
