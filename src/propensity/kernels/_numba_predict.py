"""numba kernels of :mod:`propensity.kernels.predict`: the split rule, the tree walk and the leaf-mask kernel.

``cache=True`` keeps the compiled code in ``__pycache__`` so later processes skip the
~2 s compilation. Imported only when a batch is scored by the tree kernel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _goes_left(
    x: float,
    k: int,
    kind: np.ndarray,
    missing: np.ndarray,
    default: np.ndarray,
    thr: np.ndarray,
    thr32: np.ndarray,
    cat_start: np.ndarray,
    cats: np.ndarray,
) -> bool:  # pragma: no cover
    if kind[k] == 2:  # XGBoost: compares in float32; missing follows the node's default
        if math.isnan(x):
            return default[k]
        return np.float32(x) < thr32[k]
    if kind[k] == 1:  # LightGBM categorical: a missing or negative code goes right
        if math.isnan(x):
            return False
        code = int(x)
        if code < 0:
            return False
        for q in range(cat_start[k], cat_start[k + 1]):  # noqa: SIM110 (numba compiles loops, not generators)
            if cats[q] == code:
                return True
        return False
    m = missing[k]
    if math.isnan(x) and m != 2:
        x = 0.0
    if (m == 1 and abs(x) <= 1e-35) or (m == 2 and math.isnan(x)):
        return default[k]
    return x <= thr[k]


@njit(parallel=True, cache=True)
def margin_rows(
    X: np.ndarray,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_missing: np.ndarray,
    node_default: np.ndarray,
    node_thr: np.ndarray,
    node_thr32: np.ndarray,
    cat_start: np.ndarray,
    cats: np.ndarray,
    node_left: np.ndarray,
    node_right: np.ndarray,
    tree_root: np.ndarray,
    leaf_value: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Raw margin of every row: walk each tree to its leaf and add the leaf values (rows in parallel).

    ``tree_root[t]`` and the child arrays hold a node index (>= 0) or ``-(leaf index) - 1``.
    The trees are summed in order, as the libraries do.
    """
    n = X.shape[0]
    n_trees = tree_root.shape[0]
    block = 256
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        lo = b * block
        hi = min(n, lo + block)
        acc = np.zeros(hi - lo)
        for t in range(n_trees):  # tree-major within a block: one tree's nodes stay in cache
            for r in range(lo, hi):
                k = tree_root[t]
                while k >= 0:
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
                        k = node_left[k]
                    else:
                        k = node_right[k]
                acc[r - lo] += leaf_value[-k - 1]
        for r in range(lo, hi):
            out[r] += acc[r - lo]


# Index of the lowest set bit of a word by a de Bruijn multiplication (numba has no ctz).
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, dtype=np.int64)
for _i in range(64):
    _DEBRUIJN_INDEX[((1 << _i) * 0x03F79D71B4CB0A89 & 0xFFFFFFFFFFFFFFFF) >> 58] = _i

# Split kinds of the leaf-mask kernel (see kernels.predict._numeric_split_mode and _leaf_mask_arrays).
NUM_NAN_RIGHT, NUM_NAN_LEFT, ZERO_LEFT, ZERO_RIGHT, CAT_WORD, CAT_WORDS = 0, 1, 2, 3, 4, 5
_NO_CODE = 1 << 40  # category code of a missing, negative or huge value: in no split's set


@njit(parallel=True, cache=True)
def margin_leaf_masks(
    X: np.ndarray,
    node_feature: np.ndarray,
    node_thr: np.ndarray,
    node_mode: np.ndarray,
    node_mask: np.ndarray,
    cat_start: np.ndarray,
    cat_words: np.ndarray,
    cat_bits: np.ndarray,
    tree_node_start: np.ndarray,
    tree_leaf_start: np.ndarray,
    leaf_value: np.ndarray,
    categorical: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Raw margin of every row by leaf bitmasks (trees of at most 64 leaves; rows in parallel).

    Leaves are numbered left to right. Every split that sends a row right rules out the leaves of
    its left subtree (``node_mask`` has their bits cleared); the row's leaf is the lowest bit left
    after all splits of the tree. Each split is thus one comparison over a block of rows, with no
    branch per row, which vectorises: about 5x faster than walking each row down the tree, whose
    unpredictable branches stall the CPU. Trees are summed in order, as the libraries do.
    """
    n, p = X.shape
    n_trees = tree_node_start.shape[0] - 1
    block = 1024  # measured: 256 rows 0.78 s, 1024 rows 0.62 s per 1M rows x 235 trees
    n_blocks = (n + block - 1) // block
    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    for b in prange(n_blocks):
        lo = b * block
        m = min(n, lo + block) - lo
        cols = np.empty((p, m))  # the block transposed: one feature's values are contiguous
        codes = np.empty((p, m), dtype=np.int64)
        for j in range(p):
            for r in range(m):
                cols[j, r] = X[lo + r, j]
            if categorical[j]:
                for r in range(m):
                    x = cols[j, r]
                    codes[j, r] = np.int64(x) if (x > -1.0) & (x < 1e9) else np.int64(_NO_CODE)
        acc = np.zeros(m)
        alive = np.empty(m, dtype=np.uint64)
        for t in range(n_trees):
            alive[:] = ones
            for k in range(tree_node_start[t], tree_node_start[t + 1]):
                col = cols[node_feature[k]]
                thr = node_thr[k]
                mask = node_mask[k]
                mode = node_mode[k]
                if mode == NUM_NAN_RIGHT:
                    for r in range(m):
                        alive[r] &= ones if col[r] <= thr else mask
                elif mode == NUM_NAN_LEFT:
                    for r in range(m):
                        x = col[r]
                        alive[r] &= ones if (x <= thr) | (x != x) else mask
                elif mode <= ZERO_RIGHT:  # ZERO_LEFT / ZERO_RIGHT: |x| <= 1e-35 or NaN follow the default
                    default = mode == ZERO_LEFT
                    for r in range(m):
                        x = col[r]
                        left = default if (x != x) | (abs(x) <= 1e-35) else x <= thr
                        alive[r] &= ones if left else mask
                elif mode == CAT_WORD:  # category codes below 64: one bit set
                    word = cat_bits[cat_start[k]]
                    code_col = codes[node_feature[k]]
                    for r in range(m):
                        code = code_col[r]
                        left = (code < 64) & (((word >> np.uint64(code & 63)) & np.uint64(1)) == np.uint64(1))
                        alive[r] &= ones if left else mask
                else:  # CAT_WORDS
                    first = cat_start[k]
                    n_words = cat_words[k]
                    code_col = codes[node_feature[k]]
                    for r in range(m):
                        code = code_col[r]
                        w = code >> 6
                        left = False
                        if w < n_words:
                            left = (
                                (cat_bits[first + w] >> np.uint64(code & 63)) & np.uint64(1)
                            ) == np.uint64(1)
                        alive[r] &= ones if left else mask
            first_leaf = tree_leaf_start[t]
            for r in range(m):
                bits = alive[r]
                lowest = bits & (~bits + np.uint64(1))
                acc[r] += leaf_value[first_leaf + _DEBRUIJN_INDEX[(lowest * _DEBRUIJN) >> np.uint64(58)]]
        for r in range(m):
            out[lo + r] += acc[r]
