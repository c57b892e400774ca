"""The fitted model as used after training: encoder → estimator → calibrator → decision.

Nothing here imports the training code, so batch scoring, the API and the dashboard can
load a bundle without it. :class:`TrainedModel` pairs the fitted :class:`ScoringPipeline`
with its :class:`~propensity.manifest.Manifest` and validates every input against it.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The calibrators live in propensity.calibration; their names stay importable from here because
# bundles saved before the move pickled them as propensity.pipeline.*.
from propensity.calibration import (
    Calibrator,
    IdentityCalibrator,
    IsotonicCalibrator,
    SigmoidCalibrator,
)
from propensity.errors import DataError, SchemaError
from propensity.manifest import DecisionPolicy, Manifest
from propensity.metrics import sigmoid
from propensity.schema import Quarantine, Role, coerce_features

__all__ = [
    "BAND_NAMES",
    "Calibrator",
    "IdentityCalibrator",
    "IsotonicCalibrator",
    "LogOddsEnsemble",
    "PreparedInput",
    "RecordEncoder",
    "RowPredictor",
    "ScoringPipeline",
    "SigmoidCalibrator",
    "TabularEncoder",
    "TrainedModel",
    "band_codes",
    "band_of",
    "log_odds",
    "positive_proba",
]

DATETIME_PARTS = ("year", "month", "day", "weekday", "hour")

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- encoder


class TabularEncoder:
    """Typed feature columns → one float matrix, identical at training and scoring time.

    Numeric and boolean columns pass through; categorical columns become integer codes of
    their ``max_levels`` most frequent levels (those seen at least ``min_level_count`` times),
    with every other level — rare in training or never seen — sharing one "other" code;
    datetime columns expand to year, month, day, weekday and (when times vary) hour.
    Missing values stay ``NaN``.

    Parameters
    ----------
    roles
        ``{column: role}`` for the feature columns, in output order.
    max_levels, min_level_count
        Cap on the levels a categorical column keeps.
    """

    def __init__(self, roles: Mapping[str, str], max_levels: int = 64, min_level_count: int = 5) -> None:
        self.roles = dict(roles)
        self.max_levels = max_levels
        self.min_level_count = min_level_count

    def fit(self, frame: pd.DataFrame) -> TabularEncoder:
        self.levels_: dict[str, list[str]] = {}
        self.datetime_parts_: dict[str, list[str]] = {}
        names: list[str] = []
        cat_idx: list[int] = []
        for col, role in self.roles.items():
            if role == Role.CATEGORICAL:
                counts = frame[col].value_counts(dropna=True)
                floor = min(self.min_level_count, max(1, int(counts.max()))) if len(counts) else 1
                keep = counts[counts >= floor]
                self.levels_[col] = [str(v) for v in keep.index[: self.max_levels]]
                cat_idx.append(len(names))
                names.append(col)
            elif role == Role.DATETIME:
                ts = frame[col]
                parts = ["year", "month", "day", "weekday"]
                valid = ts.dropna()
                if len(valid) and ((valid.dt.hour != 0) | (valid.dt.minute != 0)).any():
                    parts.append("hour")
                self.datetime_parts_[col] = parts
                names.extend(f"{col}__{p}" for p in parts)
            else:
                names.append(col)
        self.output_names_ = names
        self.categorical_outputs_ = cat_idx
        return self

    @property
    def n_outputs(self) -> int:
        return len(self.output_names_)

    def category_codes(self, col: str, values: pd.Series) -> np.ndarray:
        levels = self.levels_[col]
        if isinstance(values.dtype, pd.CategoricalDtype):  # map the categories once, then the codes
            table = self._category_table(levels, values.cat.categories)
            return table[values.cat.codes.to_numpy()]
        codes = pd.Categorical(values, categories=levels).codes.astype("float64")
        missing = values.isna().to_numpy()
        codes[(codes < 0) & ~missing] = len(levels)  # rare or unseen level -> "other"
        codes[missing] = np.nan
        return codes

    @staticmethod
    def _category_table(levels: list[str], categories: pd.Index) -> np.ndarray:
        """Code of each category (``len(levels)`` for "other"), then NaN for code -1 (missing)."""
        position = {level: float(i) for i, level in enumerate(levels)}
        other = float(len(levels))
        return np.asarray([position.get(str(c), other) for c in categories] + [np.nan], dtype="float64")

    def unknown_counts(self, frame: pd.DataFrame) -> dict[str, int]:
        """Per categorical column, how many non-missing values are not a kept training level."""
        out = {}
        for col, levels in self.levels_.items():
            values = frame[col]
            if isinstance(values.dtype, pd.CategoricalDtype):
                table = self._category_table(levels, values.cat.categories)[:-1]
                per_category = np.bincount(values.cat.codes.to_numpy() + 1, minlength=len(table) + 1)[1:]
                n = int(per_category[table == len(levels)].sum())
            else:
                n = int((values.notna() & ~values.isin(levels)).sum())
            if n:
                out[col] = n
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        # Column-major: each column is written contiguously (rows x columns, as the models expect).
        out = np.empty((len(frame), self.n_outputs), dtype="float64", order="F")
        j = 0
        for col, role in self.roles.items():
            if role == Role.CATEGORICAL:
                out[:, j] = self.category_codes(col, frame[col])
                j += 1
            elif role == Role.DATETIME:
                ts = frame[col]
                for part in self.datetime_parts_[col]:
                    values = ts.dt.dayofweek if part == "weekday" else getattr(ts.dt, part)
                    out[:, j] = values.to_numpy(dtype="float64", na_value=np.nan)
                    j += 1
            else:
                values = frame[col]
                if values.dtype == np.float64:  # already typed by coerce_features: no converting copy
                    out[:, j] = values.to_numpy()
                else:
                    out[:, j] = values.to_numpy(dtype="float64", na_value=np.nan)
                j += 1
        return out


class RecordEncoder:
    """One typed record → the row :meth:`TabularEncoder.transform` makes of it, without pandas.

    The API scores one record per request; a one-row DataFrame costs ~0.6 ms, this costs a few
    microseconds. Values must already be typed the way :func:`~propensity.schema.coerce_features`
    types a column (see :func:`~propensity.schema.category_value`, ``boolean_value``,
    ``datetime_value``): numbers and booleans as ``float`` (or ``int``/``bool``), categories
    as text, dates as naive-UTC ``datetime``; ``None`` (or an absent key) is missing.

    Parameters
    ----------
    encoder
        A fitted :class:`TabularEncoder`.

    Example
    -------
    >>> row = RecordEncoder(model.pipeline.encoder).encode({"visits": 3.0, "device": "mobile"})  # doctest: +SKIP
    """

    def __init__(self, encoder: TabularEncoder) -> None:
        self.n_outputs = encoder.n_outputs
        self.output_names = list(encoder.output_names_)
        # One step per input column: (column, role, first output slot, payload).
        self._steps: list[tuple[str, str, int, Any]] = []
        j = 0
        for col, role in encoder.roles.items():
            if role == Role.CATEGORICAL:
                levels = encoder.levels_[col]
                codes = {level: float(i) for i, level in enumerate(levels)}
                self._steps.append((col, "categorical", j, (codes, float(len(levels)))))
                j += 1
            elif role == Role.DATETIME:
                parts = tuple(encoder.datetime_parts_[col])
                self._steps.append((col, "datetime", j, parts))
                j += len(parts)
            else:
                self._steps.append((col, "number", j, None))
                j += 1
        self.categorical_levels = {
            col: frozenset(payload[0]) for col, kind, _, payload in self._steps if kind == "categorical"
        }

    def encode(self, record: Mapping[str, Any], out: np.ndarray | None = None) -> np.ndarray:
        """Encode one record into ``out`` (a float64 row of ``n_outputs``; allocated when ``None``)."""
        row = np.empty(self.n_outputs, dtype="float64") if out is None else out
        nan = math.nan
        get = record.get
        for col, kind, j, payload in self._steps:
            value = get(col)
            if value is None:
                if kind == "datetime":
                    row[j : j + len(payload)] = nan
                else:
                    row[j] = nan
            elif kind == "number":
                row[j] = value
            elif kind == "categorical":
                codes, other = payload
                row[j] = codes.get(value, other)
            else:
                for k, part in enumerate(payload):
                    row[j + k] = value.weekday() if part == "weekday" else getattr(value, part)
        return row

    def encode_many(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode records into a ``(len(records), n_outputs)`` float64 matrix."""
        out = np.empty((len(records), self.n_outputs), dtype="float64")
        for i, record in enumerate(records):
            self.encode(record, out[i])
        return out

    def unknown_categories(self, record: Mapping[str, Any]) -> list[str]:
        """Categorical columns of ``record`` whose (non-missing) level was not kept in training."""
        return [
            col
            for col, levels in self.categorical_levels.items()
            if (value := record.get(col)) is not None and value not in levels
        ]


# --------------------------------------------------------------------------- fitted pipeline


def positive_proba(estimator: Any, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Uncalibrated probability of the positive class from any fitted candidate.

    Large batches of a LightGBM binary model go through propensity's tree kernel (the same
    margins, bit for bit, several times faster); cross-validation predicts its folds this way.
    An ensemble gives the sigmoid of its blended log-odds (:class:`LogOddsEnsemble`).
    """
    if isinstance(estimator, LogOddsEnsemble):
        return sigmoid(estimator.log_odds(X, n_jobs))
    if len(X) >= FAST_PREDICT_ROWS:
        fast = _tree_predictor(estimator)
        if fast is not None:
            return sigmoid(fast.margin(X, n_jobs))
    booster = getattr(estimator, "booster_", None)
    if booster is not None and hasattr(booster, "num_trees"):  # LightGBM: skip the sklearn wrapper's checks
        kwargs = {"num_threads": n_jobs} if n_jobs else {}
        return np.asarray(booster.predict(X, **kwargs), dtype="float64")
    return np.asarray(estimator.predict_proba(X)[:, 1], dtype="float64")


#: A random forest can say exactly 0 or 1; its log-odds are those of its probability clipped to
#: [FOREST_CLIP, 1 - FOREST_CLIP] (the explanations use the same bounds, so they add up exactly).
FOREST_CLIP = 1e-4


def log_odds(estimator: Any, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """A fitted candidate's raw output in log-odds, the space its explanations are in.

    Boosted trees give their margin, the linear model its decision function, a random forest
    the log-odds of its (clipped) average probability, an ensemble its weighted blend.
    """
    if isinstance(estimator, LogOddsEnsemble):
        return estimator.log_odds(X, n_jobs)
    booster = getattr(estimator, "booster_", None)
    if booster is not None and hasattr(booster, "num_trees"):  # LightGBM
        fast = _tree_predictor(estimator) if len(X) >= FAST_PREDICT_ROWS else None
        if fast is not None:
            return np.asarray(fast.margin(X, n_jobs), dtype="float64")
        kwargs = {"num_threads": n_jobs} if n_jobs else {}
        return np.asarray(booster.predict(X, raw_score=True, **kwargs), dtype="float64")
    if hasattr(estimator, "get_booster"):  # XGBoost (stops at its best iteration, as its SHAP values do)
        return np.asarray(estimator.predict(X, output_margin=True), dtype="float64")
    if hasattr(estimator, "decision_function"):  # the linear model's pipeline
        return np.asarray(estimator.decision_function(X), dtype="float64")
    p = np.clip(positive_proba(estimator, X, n_jobs), FOREST_CLIP, 1 - FOREST_CLIP)
    return np.log(p / (1 - p))


class LogOddsEnsemble:
    """Fitted candidates blended in log-odds: ``sigmoid(Σ wᵢ · log_oddsᵢ(x))``.

    The weights (non-negative, summing to 1) come from greedy ensemble selection on
    out-of-fold predictions (:mod:`propensity.training.ensemble`). Blending in log-odds keeps
    the ensemble one model with one raw score, which the bundle's calibrator maps to a
    probability, and keeps explanations exact: the ensemble's contributions are the weighted
    sum of its members' (see :mod:`propensity.explain`).

    Parameters
    ----------
    members
        The fitted candidates (each refitted on every training row).
    weights
        One weight per member.
    names, families
        Each member's candidate name and model family.
    """

    def __init__(
        self,
        members: Sequence[Any],
        weights: Sequence[float],
        names: Sequence[str],
        families: Sequence[str],
    ) -> None:
        self.members = list(members)
        self.weights = [float(w) for w in weights]
        self.names = list(names)
        self.families = list(families)

    def log_odds(self, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        """The blended log-odds of each row."""
        out = np.zeros(len(X), dtype="float64")
        for member, weight in zip(self.members, self.weights, strict=True):
            out += weight * log_odds(member, X, n_jobs)
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated ``(n, 2)`` class probabilities, like a scikit-learn classifier."""
        p = sigmoid(self.log_odds(X))
        return np.column_stack([1.0 - p, p])

    def __repr__(self) -> str:
        parts = ", ".join(f"{n} {w:.2f}" for n, w in zip(self.names, self.weights, strict=True))
        return f"LogOddsEnsemble({parts})"


# Batches of at least this many rows go through propensity's own tree walker (see
# :class:`propensity.kernels.predict.FastTreePredictor`) when the model is a LightGBM binary booster:
# the same margins as LightGBM's predict, bit for bit, without its per-row sparse conversion.
FAST_PREDICT_ROWS = 20_000
_TREE_PREDICTORS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_TREE_PREDICTORS_LOCK = threading.Lock()


def _tree_predictor(estimator: Any) -> Any:
    """The compiled walker of a LightGBM binary classifier (built once per estimator), else ``None``."""
    if not hasattr(getattr(estimator, "booster_", None), "num_trees"):
        return None
    with _TREE_PREDICTORS_LOCK:  # a warm-up thread may be building it (ScoringPipeline.warm_up)
        if estimator not in _TREE_PREDICTORS:
            _TREE_PREDICTORS[estimator] = _build_tree_predictor(estimator)
        return _TREE_PREDICTORS[estimator]


_KERNEL_PRELOAD: list[threading.Thread] = []


def preload_batch_kernel() -> None:
    """Start importing numba and loading the batch tree kernel in a background thread, once per
    process. Nothing of the model is needed, so a scoring job starts it before it loads the bundle
    and the ~0.5 s overlaps the loading."""
    with _TREE_PREDICTORS_LOCK:
        if _KERNEL_PRELOAD:
            return
        thread = threading.Thread(target=_load_batch_kernel, name="propensity-kernel", daemon=True)
        _KERNEL_PRELOAD.append(thread)
    thread.start()


def _load_batch_kernel() -> None:
    try:
        from propensity.kernels.predict import load_leaf_mask_kernel

        load_leaf_mask_kernel()
    except Exception:  # only a head start: the first batch loads (or compiles) it anyway
        log.debug("preloading the tree kernel failed", exc_info=True)


def _build_tree_predictor(estimator: Any) -> Any:
    from propensity.kernels.predict import FastTreePredictor

    booster = estimator.booster_
    binary = getattr(estimator, "objective_", None) == "binary"
    if binary and float(booster.params.get("sigmoid", 1.0)) == 1.0:
        return FastTreePredictor.from_lightgbm(booster)
    return None


@dataclass
class ScoringPipeline:
    """Encoder, fitted estimator and calibrator: raw features in, calibrated probability out."""

    encoder: TabularEncoder
    estimator: Any
    calibrator: Calibrator = field(default_factory=IdentityCalibrator)
    family: str = ""
    n_jobs: int | None = None

    @property
    def families(self) -> list[str]:
        """The model families inside: the ensemble's members', else the one family."""
        if isinstance(self.estimator, LogOddsEnsemble):
            return list(self.estimator.families)
        return [self.family]

    def raw_proba_encoded(self, X: np.ndarray) -> np.ndarray:
        return positive_proba(self.estimator, X, self.n_jobs)

    def proba_encoded(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator(self.raw_proba_encoded(X))

    def warm_up(self) -> None:
        """Build and load the batch tree walker now (~0.5-1 s once per process), e.g. in a
        background thread while the first chunk of a file is read."""
        try:
            estimators = getattr(self.estimator, "members", [self.estimator])
            for estimator in estimators:
                fast = _tree_predictor(estimator)
                if fast is not None:
                    fast.load_kernel()
        except Exception:
            log.debug("warming up the tree kernel failed", exc_info=True)

    def proba(self, typed: pd.DataFrame) -> np.ndarray:
        return self.proba_encoded(self.encoder.transform(typed))


class RowPredictor:
    """Calibrated probability of one encoded row, by the cheapest exact route the estimator offers.

    LightGBM boosters go through LightGBM's single-row C API (``PredictForMatSingleRowFast``,
    ~17 µs instead of ~75 µs through ``Booster.predict``; the same C++ predictor, so the
    numbers are identical); every other estimator goes through
    :meth:`ScoringPipeline.proba_encoded` on a one-row matrix. One thread per prediction —
    a single row gains nothing from more, and a server scales with workers instead.
    Thread-safe (a lock guards LightGBM's per-handle buffers).
    """

    def __init__(self, pipeline: ScoringPipeline) -> None:
        self.pipeline = replace(pipeline, n_jobs=1)
        self._lock = threading.Lock()
        self._fast: Callable[[np.ndarray], float] | None = None
        self._handle: ctypes.c_void_p | None = None
        self._free: Callable[[ctypes.c_void_p], int] | None = None
        self.route = "generic"
        try:
            self._fast = self._lightgbm_fast_path()
        except Exception as exc:  # an unexpected LightGBM build: the generic route is still exact
            log.warning("LightGBM single-row fast path unavailable (%s); using Booster.predict.", exc)
            self._fast = None

    def _lightgbm_fast_path(self) -> Callable[[np.ndarray], float] | None:
        booster = getattr(self.pipeline.estimator, "booster_", None)
        if booster is None or not hasattr(booster, "num_trees") or not hasattr(booster, "_handle"):
            return None
        from lightgbm.basic import _LIB

        ncol = int(booster.num_feature())
        # Booster.predict's defaults: all iterations unless the booster kept a best iteration.
        num_iteration = int(booster.best_iteration) if booster.best_iteration else -1
        handle = ctypes.c_void_p()
        status = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle,
            ctypes.c_int(0),  # C_API_PREDICT_NORMAL: the transformed (probability) output
            ctypes.c_int(0),  # start iteration
            ctypes.c_int(num_iteration),
            ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
            ctypes.c_int32(ncol),
            ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(handle),
        )
        if status != 0:
            raise RuntimeError(_LIB.LGBM_GetLastError().decode())
        self._handle, self._free = handle, _LIB.LGBM_FastConfigFree
        self._booster = booster  # the fast config points into it: keep it alive
        predict = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        result = np.empty(1, dtype="float64")
        result_ptr = result.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        out_len = ctypes.c_int64()
        out_len_ref = ctypes.byref(out_len)
        calibrator = self.pipeline.calibrator
        identity = isinstance(calibrator, IdentityCalibrator)
        self.route = "lightgbm-single-row"

        def fast(row: np.ndarray) -> float:
            if row.dtype != np.float64 or not row.flags.c_contiguous or row.shape != (ncol,):
                row = np.ascontiguousarray(row, dtype="float64").reshape(ncol)
            with self._lock:
                if predict(handle, ctypes.c_void_p(row.ctypes.data), out_len_ref, result_ptr) != 0:
                    raise RuntimeError(_LIB.LGBM_GetLastError().decode())
                p = result.copy()
            return float(p[0]) if identity else float(calibrator(p)[0])

        return fast

    def __call__(self, row: np.ndarray) -> float:
        """Calibrated probability of the positive class for one encoded row."""
        if self._fast is not None:
            return self._fast(row)
        return float(self.pipeline.proba_encoded(np.asarray(row, dtype="float64").reshape(1, -1))[0])

    def __del__(self) -> None:
        if self._handle is not None and self._free is not None:
            self._free(self._handle)
            self._handle = None


BAND_NAMES = ("low", "medium", "high")


def band_codes(p: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    """Band per probability as an index into :data:`BAND_NAMES` (0 low, 1 medium, 2 high)."""
    bounds = {b.name: b.lower for b in policy.bands}
    codes = (p >= bounds.get("medium", np.inf)).astype(np.int8)
    codes[p >= bounds.get("high", np.inf)] = 2
    return codes


def band_of(p: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    """Band name per probability ("high", "medium", "low")."""
    return np.asarray(BAND_NAMES, dtype=object)[band_codes(p, policy)]


@dataclass
class PreparedInput:
    """Scoring input after validation: typed features for the good rows and what was wrong."""

    features: pd.DataFrame
    ids: pd.Series
    good: np.ndarray
    quarantine: Quarantine
    unknown_categories: dict[str, int]
    missing_optional: list[str]


class TrainedModel:
    """A trained model: the fitted pipeline plus its manifest.

    Obtain one from :func:`propensity.train` or :func:`propensity.load_model`.

    Example
    -------
    >>> model = propensity.load_model("models/shoppers")  # doctest: +SKIP
    >>> model.decide(new_sessions).head()                # doctest: +SKIP
    """

    def __init__(self, manifest: Manifest, pipeline: ScoringPipeline, path: Path | None = None) -> None:
        self.manifest = manifest
        self.pipeline = pipeline
        self.path = path

    def __repr__(self) -> str:
        m = self.manifest
        return f"TrainedModel(winner={m.winner!r}, target={m.task.target!r}, version={m.model_version!r})"

    @property
    def version(self) -> str:
        return self.manifest.model_version

    @property
    def threshold(self) -> float:
        return self.manifest.policy.threshold

    @property
    def features(self) -> list[str]:
        return self.manifest.feature_names

    @property
    def id_column(self) -> str | None:
        return self.manifest.input_schema.id_column

    def _roles(self) -> dict[str, Role]:
        return {f.name: Role(f.role) for f in self.manifest.input_schema.features}

    def check_columns(self, columns: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
        """Return (missing required, missing optional, unexpected) column names."""
        have = set(map(str, columns))
        specs = self.manifest.input_schema.features
        missing_req = [f.name for f in specs if f.required and f.name not in have]
        missing_opt = [f.name for f in specs if not f.required and f.name not in have]
        known = (
            {f.name for f in specs}
            | {self.id_column, self.manifest.task.target}
            | {c.name for c in self.manifest.input_schema.excluded}
        )
        unexpected = [c for c in columns if c not in known]
        return missing_req, missing_opt, unexpected

    def prepare(
        self, frame: pd.DataFrame, *, row_offset: int = 0, allow_missing: bool = False
    ) -> PreparedInput:
        """Validate scoring input against the manifest.

        Raises
        ------
        SchemaError
            If a required feature column is absent (unless ``allow_missing``).
        """
        missing_req, missing_opt, _ = self.check_columns(list(frame.columns))
        if missing_req and not allow_missing:
            raise SchemaError(
                f"The input is missing required column(s) {', '.join(map(repr, missing_req))} that the model "
                f"was trained on (it has: {', '.join(map(repr, list(frame.columns)[:20]))}). Add them, or pass "
                "--allow-missing to impute them (scores will be less accurate)."
            )
        frame = frame.copy() if (missing_req or missing_opt) else frame
        for col in missing_req + missing_opt:
            frame[col] = np.nan
        quarantine = Quarantine(len(frame), row_offset=row_offset)
        roles = self._roles()
        typed = coerce_features(frame, roles, quarantine)
        for spec in self.manifest.input_schema.features:
            if spec.role == "numeric" and spec.min is not None and spec.min >= 0:
                values = typed[spec.name].to_numpy()
                neg = values < 0
                if neg.any():
                    quarantine.add(
                        neg,
                        spec.name,
                        values[neg],
                        "negative value in a column that was never negative in training",
                    )
        if self.id_column and self.id_column in frame.columns:
            ids = frame[self.id_column]
        else:
            ids = pd.Series(
                np.arange(row_offset + 1, row_offset + len(frame) + 1), index=frame.index, name="row"
            )
        good = ~quarantine.bad
        unknown = self.pipeline.encoder.unknown_counts(typed[good] if not good.all() else typed)
        return PreparedInput(typed, ids, good, quarantine, unknown, missing_req + missing_opt)

    def _strict(self, frame: pd.DataFrame) -> pd.DataFrame:
        prepared = self.prepare(frame)
        if not prepared.good.all():
            problems = prepared.quarantine.to_frame().head(5)
            listed = "; ".join(
                f"row {r.row} column '{r.column}' value {r.value!r}: {r.reason}"
                for r in problems.itertuples()
            )
            raise DataError(
                f"{prepared.quarantine.n_bad_rows} row(s) cannot be scored: {listed}. "
                "Use score_frame() or `propensity score` to quarantine them and score the rest."
            )
        return prepared.features

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class for each row.

        Raises
        ------
        DataError
            If a row has a value that cannot be read (use :meth:`score_frame` to quarantine instead).
        """
        return self.pipeline.proba(self._strict(frame))

    def decide(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Id, probability, decision (contact or not) and band for each row."""
        typed = self._strict(frame)
        p = self.pipeline.proba(typed)
        ids = frame[self.id_column] if self.id_column and self.id_column in frame.columns else None
        return self._result_frame(p, ids, index=frame.index)

    def _result_frame(self, p: np.ndarray, ids: pd.Series | None, index: Any = None) -> pd.DataFrame:
        out = pd.DataFrame(index=index)
        if ids is not None:
            out[ids.name if ids.name else "id"] = ids.to_numpy()
        out["probability"] = p
        out["decision"] = p >= self.threshold
        out["band"] = band_of(p, self.manifest.policy)
        return out

    def score_frame(
        self,
        frame: pd.DataFrame,
        *,
        row_offset: int = 0,
        allow_missing: bool = False,
        scored_at: str | None = None,
    ) -> tuple[pd.DataFrame, PreparedInput]:
        """Score the valid rows of a chunk; invalid rows go to the returned quarantine.

        Returns
        -------
        (scores, prepared)
            ``scores`` has the id column, ``probability``, ``decision``, ``band``,
            ``model_version`` and ``scored_at`` for every valid row, in input order.
        """
        prepared = self.prepare(frame, row_offset=row_offset, allow_missing=allow_missing)
        good = prepared.good
        typed = prepared.features if good.all() else prepared.features[good]
        p = self.pipeline.proba(typed) if len(typed) else np.zeros(0)
        ids = prepared.ids if good.all() else prepared.ids[good]
        out = self._result_frame(p, ids.reset_index(drop=True))
        out["model_version"] = self.version
        out["scored_at"] = scored_at or datetime.now(UTC).isoformat(timespec="seconds")
        return out, prepared
