"""numba kernels of :mod:`propensity.kernels.shap`: per-leaf SHAP tables, TreeSHAP rows, forest path attribution.

``cache=True`` keeps the compiled code in ``__pycache__`` so later processes skip the
~2 s compilation. Imported only when a large batch is explained.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from propensity.kernels._numba_predict import _goes_left


@njit(cache=True)
def leaf_table(z: np.ndarray, v: float) -> np.ndarray:  # pragma: no cover - compiled
    """``(2^d, d)`` contributions of one leaf for every pattern of satisfied path features."""
    d = z.shape[0]
    out = np.zeros((1 << d, d))
    w = np.empty(d)
    for k in range(d):
        w[k] = math.exp(math.lgamma(k + 1) + math.lgamma(d - k) - math.lgamma(d + 1))
    poly = np.zeros(d + 1)
    for p in range(1 << d):
        for i in range(d):
            o_i = (p >> i) & 1
            poly[:] = 0.0
            poly[0] = 1.0
            deg = 0
            for j in range(d):
                if j == i:
                    continue
                o_j = (p >> j) & 1
                for k in range(deg + 1, 0, -1):
                    poly[k] = poly[k] * z[j] + poly[k - 1] * o_j
                poly[0] = poly[0] * z[j]
                deg += 1
            s = 0.0
            for k in range(d):
                s += w[k] * poly[k]
            out[p, i] = v * (o_i - z[i]) * s
    return out


@njit(parallel=True, cache=True)
def shap_rows(
    X: np.ndarray,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_missing: np.ndarray,
    node_default: np.ndarray,
    node_thr: np.ndarray,
    node_thr32: np.ndarray,
    cat_start: np.ndarray,
    cats: np.ndarray,
    tree_node_start: np.ndarray,
    tree_leaf_start: np.ndarray,
    leaf_d: np.ndarray,
    slot_start: np.ndarray,
    slot_feature: np.ndarray,
    slot_mask: np.ndarray,
    slot_want: np.ndarray,
    table_start: np.ndarray,
    tables: np.ndarray,
    phi: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Add every tree's contributions for every row into ``phi`` (rows in parallel)."""
    n = X.shape[0]
    n_trees = tree_node_start.shape[0] - 1
    n_words = slot_mask.shape[1]
    if n_words == 1:  # trees with at most 63 splits (XGBoost depth 6 included): one decision word, flat masks
        _shap_rows_1(
            X,
            node_feature,
            node_kind,
            node_missing,
            node_default,
            node_thr,
            node_thr32,
            cat_start,
            cats,
            tree_node_start,
            tree_leaf_start,
            leaf_d,
            slot_start,
            slot_feature,
            slot_mask[:, 0].copy(),
            slot_want[:, 0].copy(),
            table_start,
            tables,
            phi,
        )
        return
    # Tree-major within blocks of rows, as in _shap_rows_1.
    block = 256
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        lo = b * block
        hi = min(n, lo + block)
        words = np.zeros(n_words, dtype=np.int64)
        for t in range(n_trees):
            first = tree_node_start[t]
            for r in range(lo, hi):
                for w in range(n_words):
                    words[w] = 0
                for k in range(first, tree_node_start[t + 1]):
                    if _goes_left(
                        X[r, node_feature[k]],
                        k,
                        node_kind,
                        node_missing,
                        node_default,
                        node_thr,
                        node_thr32,
                        cat_start,
                        cats,
                    ):
                        local = k - first
                        words[local // 63] |= np.int64(1) << np.int64(local % 63)
                for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
                    d = leaf_d[leaf]
                    s0 = slot_start[leaf]
                    pattern = 0
                    for s in range(d):
                        ok = 1
                        for w in range(n_words):
                            if (words[w] & slot_mask[s0 + s, w]) != slot_want[s0 + s, w]:
                                ok = 0
                                break
                        pattern |= ok << s
                    base = table_start[leaf] + pattern * d
                    for s in range(d):
                        phi[r, slot_feature[s0 + s]] += tables[base + s]


@njit(parallel=True, cache=True)
def _shap_rows_1(
    X: np.ndarray,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_missing: np.ndarray,
    node_default: np.ndarray,
    node_thr: np.ndarray,
    node_thr32: np.ndarray,
    cat_start: np.ndarray,
    cats: np.ndarray,
    tree_node_start: np.ndarray,
    tree_leaf_start: np.ndarray,
    leaf_d: np.ndarray,
    slot_start: np.ndarray,
    slot_feature: np.ndarray,
    slot_mask: np.ndarray,
    slot_want: np.ndarray,
    table_start: np.ndarray,
    tables: np.ndarray,
    phi: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # Tree-major within blocks of rows: one tree's tables stay in cache while a block of rows
    # uses them (row-major order missed the cache on every leaf and was ~3x slower).
    n = X.shape[0]
    n_trees = tree_node_start.shape[0] - 1
    block = 256
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        lo = b * block
        hi = min(n, lo + block)
        for t in range(n_trees):
            first = tree_node_start[t]
            for r in range(lo, hi):
                x = X[r]
                word = np.int64(0)
                for k in range(first, tree_node_start[t + 1]):
                    if _goes_left(
                        x[node_feature[k]],
                        k,
                        node_kind,
                        node_missing,
                        node_default,
                        node_thr,
                        node_thr32,
                        cat_start,
                        cats,
                    ):
                        word |= np.int64(1) << np.int64(k - first)
                row = phi[r]
                for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
                    d = leaf_d[leaf]
                    s0 = slot_start[leaf]
                    pattern = 0
                    for s in range(d):
                        if (word & slot_mask[s0 + s]) == slot_want[s0 + s]:
                            pattern |= 1 << s
                    base = table_start[leaf] + pattern * d
                    for s in range(d):
                        row[slot_feature[s0 + s]] += tables[base + s]


@njit(parallel=True, cache=True)
def path_attribution_rows(
    X: np.ndarray,
    node_feature: np.ndarray,
    node_thr: np.ndarray,
    node_nan_left: np.ndarray,
    node_left: np.ndarray,
    node_right: np.ndarray,
    node_value: np.ndarray,
    tree_root: np.ndarray,
    phi: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Path attribution (Saabas) of scikit-learn trees: each split on a row's path credits its
    feature with the change of the node value (``value[child] - value[node]``), summed over trees.

    Splits as scikit-learn predicts: ``float32(x) <= threshold`` goes left, a missing value goes
    where ``missing_go_to_left`` says. ``node_left`` is -1 at a leaf. Rows in parallel, in blocks
    that walk one tree at a time (its nodes stay in cache).
    """
    n, p = X.shape
    n_trees = tree_root.shape[0]
    block = 256
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        lo = b * block
        m = min(n, lo + block) - lo
        acc = np.zeros((m, p))
        for t in range(n_trees):
            root = tree_root[t]
            for r in range(m):
                k = root
                while node_left[k] >= 0:
                    f = node_feature[k]
                    x = X[lo + r, f]
                    if math.isnan(x):
                        go_left = node_nan_left[k]
                    else:
                        go_left = np.float64(np.float32(x)) <= node_thr[k]
                    child = node_left[k] if go_left else node_right[k]
                    acc[r, f] += node_value[child] - node_value[k]
                    k = child
        for r in range(m):
            for j in range(p):
                phi[lo + r, j] += acc[r, j]
