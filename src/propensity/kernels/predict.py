"""Batch prediction of tree ensembles: the raw margin of LightGBM (and XGBoost) trees in numba.

LightGBM's and XGBoost's own ``predict`` convert every row to a sparse vector and walk it down
each tree; :class:`FastTreePredictor` evaluates trees of at most 64 leaves by leaf bitmasks
instead (every split is one branch-free comparison over a block of rows), larger ones by a
plain walk. Equal to the libraries' margins bit for bit (tests compare them on data with
missing values and categorical splits); speed in ``benchmarks/bench_scoring.py``.

This is the scoring path: it needs numba (a core dependency), not the ``explain`` extra.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from propensity.kernels.trees import Node, Tree, lightgbm_trees, node_arrays, numba_threads

__all__ = ["FastTreePredictor", "load_leaf_mask_kernel"]


class FastTreePredictor:
    """The raw margin of a list of trees, as one parallel numba kernel.

    The same trees and split rules as :class:`FastTreeShap`. LightGBM's and XGBoost's own
    ``predict`` convert every row to a sparse vector and walk it down each tree; trees of at most
    64 leaves are evaluated here by leaf bitmasks instead (``margin_leaf_masks``: every split
    is one branch-free comparison over a block of rows), larger ones by a plain walk
    (``margin_rows``). Equal to the libraries' margins bit for bit (tests compare them on data
    with missing values and categorical splits); speed in ``benchmarks/bench_scoring.py``.
    """

    def __init__(self, arrays: dict[str, np.ndarray], base: float, layout: str) -> None:
        self.arrays = arrays
        self.base = base
        self.layout = layout

    @classmethod
    def from_lightgbm(cls, booster: Any) -> FastTreePredictor:
        """The predictor of a LightGBM booster, read from its text model (~10x faster than
        :func:`lightgbm_trees`, which needs the JSON dump's counts for SHAP)."""
        arrays = _lightgbm_leaf_mask_arrays(booster.model_to_string())
        if arrays is None:
            return cls.build(lightgbm_trees(booster))
        return cls(arrays, 0.0, "leaf_masks")

    @classmethod
    def build(cls, trees: list[Tree], margin: float = 0.0) -> FastTreePredictor:
        lightgbm_only = all(node.missing != "xgb" for tree in trees for node in tree.nodes)
        if lightgbm_only and all(len(tree.leaves) <= 64 for tree in trees):
            return cls(_leaf_mask_arrays(trees), margin, "leaf_masks")
        return cls(_walk_arrays(trees), margin, "walk")

    def _kernel_args(self, X: np.ndarray, out: np.ndarray) -> tuple[Any, tuple[Any, ...]]:
        from propensity.kernels import _numba_predict as kern
        from propensity.kernels._numba_predict import margin_leaf_masks, margin_rows

        a = self.arrays
        if self.layout == "leaf_masks":
            names = [
                "node_feature",
                "node_thr",
                "node_mode",
                "node_mask",
                "cat_start",
                "cat_words",
                "cat_bits",
            ]
            names += ["tree_node_start", "tree_leaf_start", "leaf_value"]
            read_as_codes = a["node_feature"][a["node_mode"] >= kern.CAT_WORD]
            categorical = np.zeros(max(X.shape[1], int(read_as_codes.max(initial=-1)) + 1), dtype=np.bool_)
            categorical[read_as_codes] = True  # columns that some split reads as category codes
            return margin_leaf_masks, (X, *(a[k] for k in names), categorical, out)
        names = ["node_feature", "node_kind", "node_missing", "node_default", "node_thr", "node_thr32"]
        names += ["cat_start", "cats", "node_left", "node_right", "tree_root", "leaf_value"]
        return margin_rows, (X, *(a[k] for k in names), out)

    def load_kernel(self, order: Literal["C", "F"] = "F") -> None:
        """Load the compiled kernel for ``order``-major matrices without running it.

        Safe in a background thread (running a parallel kernel there would start a second
        OpenMP thread team).
        """
        import numba

        X = np.zeros((2, 2), order=order)  # 2 x 2: a 1 x 1 array would type as C-major
        kernel, args = self._kernel_args(X, np.zeros(1))
        kernel.compile(tuple(numba.typeof(v) for v in args))

    def margin(self, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        """Raw margin (log-odds) of every row of the encoded matrix ``X``."""
        if X.dtype != np.float64 or not (X.flags.c_contiguous or X.flags.f_contiguous):
            X = np.ascontiguousarray(X, dtype=np.float64)  # a column-major matrix is read as it is
        out = np.full(X.shape[0], self.base, dtype=np.float64)
        kernel, args = self._kernel_args(X, out)
        with numba_threads(n_jobs):
            kernel(*args)
        return out


def load_leaf_mask_kernel(order: Literal["C", "F"] = "F") -> None:
    """Import numba and load the compiled leaf-mask kernel for ``order``-major matrices, without
    a model (only the argument types matter): ~0.5 s once per process, worth starting early."""
    empty = FastTreePredictor(_leaf_mask_arrays([]), 0.0, "leaf_masks")
    empty.load_kernel(order)


def _walk_arrays(trees: list[Tree]) -> dict[str, np.ndarray]:
    """Split rules plus child links (``-(leaf index) - 1`` for a leaf) for ``margin_rows``."""
    nodes: list[Node] = []
    left: list[int] = []
    right: list[int] = []
    roots: list[int] = []
    values: list[float] = []
    for tree in trees:
        first_node, first_leaf = len(nodes), len(values)
        nodes.extend(tree.nodes)
        children = [[0, 0] for _ in tree.nodes]
        for j, (value, path) in enumerate(tree.leaves):
            values.append(value)
            for step, (k, went_left, _) in enumerate(path):
                child = path[step + 1][0] + first_node if step + 1 < len(path) else -(first_leaf + j) - 1
                children[k][0 if went_left else 1] = child
        left.extend(c[0] for c in children)
        right.extend(c[1] for c in children)
        roots.append(first_node if tree.nodes else -first_leaf - 1)
    arrays = node_arrays(nodes)
    arrays.update(
        node_left=np.asarray(left, dtype=np.int64),
        node_right=np.asarray(right, dtype=np.int64),
        tree_root=np.asarray(roots, dtype=np.int64),
        leaf_value=np.asarray(values, dtype=np.float64),
    )
    return arrays


def _lightgbm_leaf_mask_arrays(model: str) -> dict[str, np.ndarray] | None:
    """The arrays of :func:`_leaf_mask_arrays` straight from LightGBM's text model.

    ``None`` when a tree has more than 64 leaves or the model is not a plain tree model.
    ``decision_type`` bits: 1 categorical, 2 default left, bits 2-3 missing type (0 None, 1 Zero,
    2 NaN); a categorical split's threshold indexes ``cat_boundaries`` into 32-bit words of
    ``cat_threshold``, the codes that go left.
    """
    body = model.split("end of trees")[0]
    blocks = body.split("\nTree=")[1:]
    if not blocks:
        return None
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("feature", "thr", "mode", "mask", "words", "values")
    }
    cat_start: list[np.ndarray] = []
    cat_bits: list[int] = []
    node_start, leaf_start = [0], [0]
    for block in blocks:
        fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        n_leaves = int(fields["num_leaves"])
        if n_leaves > 64 or fields.get("is_linear", "0") != "0":
            return None
        values = np.asarray(fields["leaf_value"].split(), dtype=np.float64)
        if n_leaves == 1:
            parts["values"].append(values)
            node_start.append(node_start[-1])
            leaf_start.append(leaf_start[-1] + 1)
            continue
        n = n_leaves - 1
        feature = np.asarray(fields["split_feature"].split(), dtype=np.int64)
        thr = np.asarray(fields["threshold"].split(), dtype=np.float64)
        dtype = np.asarray(fields["decision_type"].split(), dtype=np.int64)
        left = np.asarray(fields["left_child"].split(), dtype=np.int64)
        right = np.asarray(fields["right_child"].split(), dtype=np.int64)
        order, first, position = _leaf_order(left, right, n_leaves)
        masks = _left_leaf_masks(left, right, first, position)
        missing = (dtype >> 2) & 3
        default_left = (dtype & 2) == 2
        mode = np.asarray(
            [
                _numeric_split_mode(_MISSING_TYPES[m], left_default, threshold)
                for m, left_default, threshold in zip(missing, default_left, thr, strict=True)
            ],
            dtype=np.int64,
        )
        starts, words = _categorical_splits(fields, (dtype & 1) == 1, thr, mode, cat_bits)
        parts["feature"].append(feature)
        parts["thr"].append(thr)
        parts["mode"].append(mode)
        parts["mask"].append(masks)
        parts["words"].append(words)
        cat_start.append(starts)
        parts["values"].append(values[order])
        node_start.append(node_start[-1] + n)
        leaf_start.append(leaf_start[-1] + n_leaves)

    def joined(pieces: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(pieces) if pieces else np.zeros(0)

    return _leaf_mask_layout(
        joined(parts["feature"]),
        joined(parts["thr"]),
        joined(parts["mode"]),
        joined(parts["mask"]),
        joined(cat_start),
        joined(parts["words"]),
        cat_bits,
        node_start,
        leaf_start,
        joined(parts["values"]),
    )


def _leaf_order(
    left: np.ndarray, right: np.ndarray, n_leaves: int
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Leaves left to right, the first leaf position under each node, and each leaf's position."""
    order: list[int] = []
    first = np.zeros(n_leaves - 1, dtype=np.int64)
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node, done = stack.pop()
        if node < 0:
            order.append(~node)
            continue
        if done:
            continue
        first[node] = len(order)
        stack.extend([(node, True), (int(right[node]), False), (int(left[node]), False)])
    position = np.empty(n_leaves, dtype=np.int64)
    position[order] = np.arange(n_leaves)
    return order, first, position


def _left_leaf_masks(
    left: np.ndarray, right: np.ndarray, first: np.ndarray, position: np.ndarray
) -> np.ndarray:
    """Per node, all leaf bits set except those of the leaves under its left child."""
    n = len(first)
    masks = np.full(n, (1 << 64) - 1, dtype=np.uint64)
    for node in range(n):
        lo = first[node]
        child = int(left[node])
        hi = position[~child] + 1 if child < 0 else _last_leaf(child, right, position) + 1
        width = int(hi - lo)
        masks[node] &= ~np.uint64((((1 << width) - 1) << int(lo)) & ((1 << 64) - 1))
    return masks


def _categorical_splits(
    fields: dict[str, str], categorical: np.ndarray, thr: np.ndarray, mode: np.ndarray, cat_bits: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Move each categorical split's 32-bit words into 64-bit ``cat_bits``; return (starts, word counts).

    Sets the split's mode to one- or multi-word categorical and its threshold to 0, in place.
    """
    from propensity.kernels import _numba_predict as kern

    n = len(thr)
    starts = np.zeros(n, dtype=np.int64)
    words = np.zeros(n, dtype=np.int64)
    if not categorical.any():
        return starts, words
    bounds = np.asarray(fields["cat_boundaries"].split(), dtype=np.int64)
    words32 = np.asarray(fields["cat_threshold"].split(), dtype=np.uint64)
    for split in np.flatnonzero(categorical):
        at = int(thr[split])
        w32 = words32[bounds[at] : bounds[at + 1]]
        w64 = [
            int(w32[i]) | (int(w32[i + 1]) << 32 if i + 1 < len(w32) else 0) for i in range(0, len(w32), 2)
        ]
        starts[split] = len(cat_bits)
        words[split] = len(w64)
        cat_bits.extend(w64)
        mode[split] = kern.CAT_WORD if len(w64) == 1 else kern.CAT_WORDS
        thr[split] = 0.0
    return starts, words


_MISSING_TYPES = ("None", "Zero", "NaN")


def _numeric_split_mode(missing: str, default_left: bool, threshold: float) -> int:
    """The leaf-mask kernel's kind of a LightGBM numeric split (where NaN and zero go)."""
    from propensity.kernels import _numba_predict as kern

    if missing == "Zero":
        return kern.ZERO_LEFT if default_left else kern.ZERO_RIGHT
    if missing == "NaN":
        return kern.NUM_NAN_LEFT if default_left else kern.NUM_NAN_RIGHT
    # "None": a missing value is read as 0.0
    return kern.NUM_NAN_LEFT if threshold >= 0.0 else kern.NUM_NAN_RIGHT


def _leaf_mask_layout(
    feature: Any,
    thr: Any,
    mode: Any,
    masks: Any,
    cat_start: Any,
    cat_words: Any,
    cat_bits: list[int],
    node_start: list[int],
    leaf_start: list[int],
    values: Any,
) -> dict[str, np.ndarray]:
    """The arrays ``margin_leaf_masks`` reads, with their dtypes."""
    return {
        "node_feature": np.asarray(feature, dtype=np.int64),
        "node_thr": np.asarray(thr, dtype=np.float64),
        "node_mode": np.asarray(mode, dtype=np.int64),
        "node_mask": np.asarray(masks, dtype=np.uint64),
        "cat_start": np.asarray(cat_start, dtype=np.int64),
        "cat_words": np.asarray(cat_words, dtype=np.int64),
        "cat_bits": np.asarray(cat_bits or [0], dtype=np.uint64),
        "tree_node_start": np.asarray(node_start, dtype=np.int64),
        "tree_leaf_start": np.asarray(leaf_start, dtype=np.int64),
        "leaf_value": np.asarray(values, dtype=np.float64),
    }


def _last_leaf(node: int, right: np.ndarray, position: np.ndarray) -> int:
    """Left-to-right position of the last leaf under ``node`` (follow right children)."""
    while node >= 0:
        node = int(right[node])
    return int(position[~node])


def _leaf_mask_arrays(trees: list[Tree]) -> dict[str, np.ndarray]:
    """LightGBM trees of at most 64 leaves as the arrays of ``margin_leaf_masks``.

    Leaves are numbered left to right (their paths in lexicographic order, left before right);
    a split's mask has the bits of the leaves below its left child cleared.
    """
    from propensity.kernels import _numba_predict as kern

    feature: list[int] = []
    thr: list[float] = []
    mode: list[int] = []
    masks: list[int] = []
    cat_start: list[int] = []
    cat_words: list[int] = []
    cat_bits: list[int] = []
    node_start, leaf_start = [0], [0]
    values: list[float] = []
    full = (1 << 64) - 1
    for tree in trees:
        order = sorted(range(len(tree.leaves)), key=lambda j: [not left for _, left, _ in tree.leaves[j][1]])
        tree_masks = [full] * len(tree.nodes)
        for bit, j in enumerate(order):
            value, path = tree.leaves[j]
            values.append(value)
            for k, went_left, _ in path:
                if went_left:
                    tree_masks[k] &= ~(1 << bit)
        for node, mask in zip(tree.nodes, tree_masks, strict=True):
            feature.append(node.feature)
            thr.append(node.threshold)
            masks.append(mask)
            cat_start.append(len(cat_bits))
            if node.categories is not None:
                codes = [int(c) for c in node.categories]
                words = [0] * (max(codes, default=0) // 64 + 1)
                for code in codes:
                    words[code // 64] |= 1 << (code % 64)
                cat_words.append(len(words))
                cat_bits.extend(words)
                mode.append(kern.CAT_WORD if len(words) == 1 else kern.CAT_WORDS)
                continue
            cat_words.append(0)
            mode.append(_numeric_split_mode(node.missing, node.default_left, node.threshold))
        node_start.append(len(feature))
        leaf_start.append(len(values))
    return _leaf_mask_layout(
        feature, thr, mode, masks, cat_start, cat_words, cat_bits, node_start, leaf_start, values
    )
