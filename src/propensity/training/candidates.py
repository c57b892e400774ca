"""Candidate model families: how each is built, fitted (with early stopping) and tuned.

Every family works on the encoder's float matrix (categoricals as integer codes). The
linear model one-hot encodes those codes and scales the numbers itself; tree models take
them as they are (LightGBM natively as categoricals). Thread counts are always explicit.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from propensity.errors import ParameterError

__all__ = ["FAMILIES", "Family", "FitContext", "available_families", "get_family"]

#: Below this many training rows, boosted trees default to small, strongly regularised trees.
SMALL_ROWS = 10_000


@dataclass
class FitContext:
    """What every family needs to know about the data and the run."""

    n_rows: int
    n_features: int
    categorical: Sequence[int]
    n_jobs: int
    seed: int
    class_weight: str = "auto"
    positive_rate: float = 0.5
    numeric: Sequence[int] = field(default_factory=list)


class Family:
    """One model family. Subclasses set ``name`` and implement ``build``."""

    name: ClassVar[str]
    early_stopping: ClassVar[bool] = False

    def default_params(self, ctx: FitContext) -> dict[str, Any]:
        return {}

    def search_space(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {}

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        raise NotImplementedError

    def fit(
        self,
        model: Any,
        X: np.ndarray,
        y: np.ndarray,
        ctx: FitContext,
        X_es: np.ndarray | None = None,
        y_es: np.ndarray | None = None,
    ) -> tuple[Any, int | None]:
        """Fit; return the model and, for boosted families, the best iteration."""
        model.fit(X, y)
        return model, None

    def final_params(self, params: dict[str, Any], best_iterations: Sequence[int | None]) -> dict[str, Any]:
        """Parameters for the refit on all training rows (no early-stopping set there)."""
        return dict(params)

    def available(self) -> bool:
        return True


class LogisticFamily(Family):
    name = "logistic_regression"

    def default_params(self, ctx: FitContext) -> dict[str, Any]:
        # Stronger than scikit-learn's C=1. Measured (5-fold, scaled as in build, no class
        # weights): CoIL 2000 top-20 % capture 0.491 at C=1, 0.506 at 0.1, 0.529 at 0.03; online
        # shoppers PR-AUC 0.695 / 0.698 / 0.701 (ROC-AUC 0.914 / 0.913 / 0.913); social ads
        # unchanged. The penalty does not grow with the rows, so large tables are barely held back.
        return {"C": 0.03}

    def search_space(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        from propensity.training.scaling import ShapeScaler

        numeric = [i for i in range(ctx.n_features) if i not in set(ctx.categorical)]
        parts: list[tuple[str, Any, list[int]]] = []
        if numeric:
            # Quantile-normal scaling of many-valued columns (shop data are heavy-tailed), plain
            # standardisation of flags and few-level ordinals (see propensity.training.scaling).
            # Missing values get the median plus an indicator column, so "missing" can carry its
            # own weight.
            parts.append(
                (
                    "num",
                    make_pipeline(
                        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                        ShapeScaler(n_quantiles=min(1000, max(10, ctx.n_rows // 2)), random_state=ctx.seed),
                    ),
                    numeric,
                )
            )
        if ctx.categorical:
            parts.append(
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                        OneHotEncoder(handle_unknown="ignore", sparse_output=True),
                    ),
                    list(ctx.categorical),
                )
            )
        pre = ColumnTransformer(parts, sparse_threshold=0.3)
        # Newton-Cholesky converges in a handful of iterations when rows far outnumber columns (our
        # case); L-BFGS needed ~1,000 per fit on CoIL 2000's 85 discrete columns: same out-of-fold
        # ROC-AUC (0.721), 5 s instead of 320 s for 5 folds.
        clf = LogisticRegression(
            C=params["C"],
            class_weight=_sk_weight(ctx),
            solver="newton-cholesky",
            max_iter=200,
            tol=1e-4,
            random_state=ctx.seed,
        )
        return Pipeline([("pre", pre), ("clf", clf)])

    def fit(
        self,
        model: Any,
        X: np.ndarray,
        y: np.ndarray,
        ctx: FitContext,
        X_es: np.ndarray | None = None,
        y_es: np.ndarray | None = None,
    ) -> tuple[Any, int | None]:
        model.fit(X, y)
        # Linear SHAP (propensity.explain) measures each design column against its training
        # mean; keep that mean with the fitted model so a loaded bundle can explain alone.
        design = model.named_steps["pre"].transform(X)
        model.background_mean_ = np.asarray(design.mean(axis=0), dtype="float64").ravel()
        return model, None


class RandomForestFamily(Family):
    name = "random_forest"

    def default_params(self, ctx: FitContext) -> dict[str, Any]:
        # Larger tables: 100 trees, each on a bootstrap of 10,000 rows with leaves of 5+ rows.
        # Measured on 80k rows of the training benchmark's table: ROC-AUC 0.797 in 2.7 s, against
        # 0.807 in 31.8 s for 150 trees grown on every row; boosted trees lead there anyway
        # (LightGBM 0.827), and small trees keep the forest's explanations affordable.
        # Above 100k rows: 60 trees with leaves of 10+ rows, measured on a 24k-row fold of the
        # same table: ROC-AUC 0.7924 vs 0.7944 and PR-AUC 0.5134 vs 0.5149 in 59 % of the time.
        small = ctx.n_rows <= 20_000
        large = ctx.n_rows > 100_000
        return {
            "n_estimators": 300 if small else 60 if large else 100,
            "min_samples_leaf": 3 if small else 10 if large else 5,
            "max_features": "sqrt",
            "max_samples": None if small else 10_000,
        }

    def search_space(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        base = self.default_params(ctx)
        base.update(
            min_samples_leaf=trial.suggest_int("min_samples_leaf", 1, 50, log=True),
            max_features=trial.suggest_float("max_features", 0.1, 0.9),
        )
        return base

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        rows = params.get("max_samples")
        if isinstance(rows, int) and rows >= ctx.n_rows:  # a bootstrap of every row
            params = {**params, "max_samples": None}
        return RandomForestClassifier(
            criterion="gini",
            class_weight="balanced_subsample" if _sk_weight(ctx, forest=True) else None,
            n_jobs=ctx.n_jobs,
            random_state=ctx.seed,
            **params,
        )


class LightGBMFamily(Family):
    name = "lightgbm"
    early_stopping = True

    def default_params(self, ctx: FitContext) -> dict[str, Any]:
        # Leaves grow with the table (20 rows up to 40k rows, 200 from 400k): on large tables
        # 20-row leaves fit noise and need more rounds. Measured on 320k rows: 145 rounds instead
        # of 263 and a slightly better test ROC-AUC (0.8270 vs 0.8266).
        if ctx.n_rows < SMALL_ROWS:
            return {
                "learning_rate": 0.03,
                "num_leaves": 8,
                "min_child_samples": max(10, min(30, ctx.n_rows // 20)),
                "colsample_bytree": 0.5,
                "subsample": 0.8,
                "reg_lambda": 5.0,
                "n_estimators": 2000,
            }
        return {
            "learning_rate": 0.05 if ctx.n_rows <= 100_000 else 0.1,
            "num_leaves": 31,
            "min_child_samples": max(20, min(200, ctx.n_rows // 2000)),
            "colsample_bytree": 0.8,
            "subsample": 0.8,
            "reg_lambda": 1.0,
            "n_estimators": 2000,
        }

    def search_space(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 300, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
            "n_estimators": 2000,
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            objective="binary",
            subsample_freq=1,
            class_weight=_sk_weight(ctx),
            n_jobs=ctx.n_jobs,
            random_state=ctx.seed,
            verbose=-1,
            deterministic=True,
            force_col_wise=True,
            cat_smooth=10.0,
            min_data_per_group=50,
            **params,
        )

    def fit(
        self,
        model: Any,
        X: np.ndarray,
        y: np.ndarray,
        ctx: FitContext,
        X_es: np.ndarray | None = None,
        y_es: np.ndarray | None = None,
    ) -> tuple[Any, int | None]:
        import lightgbm as lgb

        cats = list(ctx.categorical) or "auto"
        if X_es is None:
            model.fit(X, y, categorical_feature=cats)
            return model, None
        model.fit(
            X,
            y,
            eval_X=(X_es,),
            eval_y=(y_es,),
            eval_metric="binary_logloss",
            categorical_feature=cats,
            callbacks=[lgb.early_stopping(_patience(model), first_metric_only=True, verbose=False)],
        )
        return model, int(model.best_iteration_ or model.n_estimators)

    def final_params(self, params: dict[str, Any], best_iterations: Sequence[int | None]) -> dict[str, Any]:
        return _final_rounds(params, best_iterations)


class XGBoostFamily(Family):
    name = "xgboost"
    early_stopping = True

    def available(self) -> bool:
        return importlib.util.find_spec("xgboost") is not None

    def default_params(self, ctx: FitContext) -> dict[str, Any]:
        # As LightGBM's leaves, the minimum hessian per leaf grows with the table (1 up to 10k rows,
        # 30 from 300k). Measured on 320k rows: 231 rounds instead of 293, test ROC-AUC 0.8267 vs 0.8260.
        if ctx.n_rows < SMALL_ROWS:
            return {
                "learning_rate": 0.03,
                "max_depth": 3,
                "min_child_weight": 3.0,
                "subsample": 0.8,
                "colsample_bytree": 0.5,
                "reg_lambda": 5.0,
                "n_estimators": 2000,
            }
        return {
            "learning_rate": 0.05 if ctx.n_rows <= 100_000 else 0.1,
            "max_depth": 6,
            "min_child_weight": float(max(1, min(30, ctx.n_rows // 10_000))),
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "n_estimators": 2000,
        }

    def search_space(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
            "n_estimators": 2000,
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from xgboost import XGBClassifier

        weight = 1.0
        if _sk_weight(ctx) and 0 < ctx.positive_rate < 1:
            weight = (1 - ctx.positive_rate) / ctx.positive_rate
        return XGBClassifier(
            tree_method="hist",
            scale_pos_weight=weight,
            n_jobs=ctx.n_jobs,
            random_state=ctx.seed,
            eval_metric="logloss",
            verbosity=0,
            **params,
        )

    def fit(
        self,
        model: Any,
        X: np.ndarray,
        y: np.ndarray,
        ctx: FitContext,
        X_es: np.ndarray | None = None,
        y_es: np.ndarray | None = None,
    ) -> tuple[Any, int | None]:
        if X_es is None:
            model.fit(X, y, verbose=False)
            return model, None
        model.set_params(early_stopping_rounds=_patience(model))
        model.fit(X, y, eval_set=[(X_es, y_es)], verbose=False)
        best = getattr(model, "best_iteration", None)
        model.set_params(early_stopping_rounds=None)
        return model, (int(best) + 1 if best is not None else None)

    def final_params(self, params: dict[str, Any], best_iterations: Sequence[int | None]) -> dict[str, Any]:
        return _final_rounds(params, best_iterations)


def _patience(model: Any) -> int:
    """Early-stopping patience: 2.5 / learning rate rounds, within [20, 100].

    50 rounds at the small-table rate of 0.05, 25 at the large-table rate of 0.1. Measured on
    324k rows of the training benchmark's table (XGBoost, rate 0.1): 25 rounds instead of 50
    stopped at 161 rounds instead of 230 in 4.9 s instead of 6.7 s, with validation ROC-AUC
    0.8264 vs 0.8265 and PR-AUC 0.5904 vs 0.5906.
    """
    rate = float(model.get_params().get("learning_rate") or 0.1)
    return int(min(100, max(20, round(2.5 / rate))))


def _final_rounds(params: dict[str, Any], best_iterations: Sequence[int | None]) -> dict[str, Any]:
    # Folds saw (K-1)/K of the rows minus the early-stopping slice; a refit on all rows
    # supports slightly more rounds.
    found = [b for b in best_iterations if b]
    out = dict(params)
    if found:
        out["n_estimators"] = max(10, round(float(np.median(found)) * 1.1))
    return out


def _sk_weight(ctx: FitContext, forest: bool = False) -> str | None:
    """Class weights: ``auto`` weights the random forest only, not boosted trees or the linear model.

    Measured on out-of-fold PR-AUC (online shoppers, e-commerce churn, social ads), balanced
    weights cost boosted trees up to 0.01. The linear model (5-fold, C=0.03): online shoppers
    PR-AUC 0.701 without weights, 0.661 with (ROC-AUC 0.913 / 0.918); CoIL 2000 top-20 % capture
    0.529 / 0.489. Calibration repairs the probabilities either way.
    """
    if ctx.class_weight == "balanced" or (ctx.class_weight == "auto" and forest):
        return "balanced"
    return None


FAMILIES: dict[str, Family] = {
    f.name: f for f in (LogisticFamily(), RandomForestFamily(), LightGBMFamily(), XGBoostFamily())
}


def available_families() -> list[str]:
    """Names of families whose libraries are installed, in default order."""
    return [name for name, fam in FAMILIES.items() if fam.available()]


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParameterError(f"Unknown candidate '{name}'; choose from {', '.join(FAMILIES)}.") from None
