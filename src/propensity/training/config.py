"""The settings of one training run, validated when they are made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from propensity.errors import ParameterError
from propensity.metrics import METRICS
from propensity.training.candidates import get_family
from propensity.training.policy import PolicySpec

__all__ = ["TrainConfig"]


def _check(name: str, ok: bool, expected: str, got: Any) -> None:
    if not ok:
        raise ParameterError(f"The '{name}' parameter of train must be {expected}. Got {got!r} instead.")


#: Up to this many training + test rows, the shipped model is refitted on both (``refit_all=None``).
REFIT_ALL_MAX_ROWS = 200_000


@dataclass
class TrainConfig:
    """Settings of one training run (validated on creation).

    Parameters
    ----------
    target
        Name of the 0/1 (or two-valued) outcome column.
    id_column
        Column kept as the output id (inferred when ``None``).
    roles
        ``{column: role}`` overrides of the inferred roles.
    positive
        The target value that counts as positive (default: the true/yes/1 value, else the rarer).
    test_size
        Share of rows held out for the final test when no test table is given.
    folds
        Cross-validation folds (stratified).
    metric
        Selection metric, on out-of-fold predictions: ``roc_auc`` (default), ``pr_auc``,
        ``log_loss``, ``brier``, ``lift_top10``. It picks the single winner (the ensemble's
        fallback, and the model when only one family is trained or ``ensemble`` is off), the
        leader that tuning works on and the finalists of screening. ROC-AUC is the default
        because it is stable on rare targets: PR-AUC and lift lean on a few dozen top-ranked
        positives and flipped the winner on a 0.01 margin that did not hold on new data.
    policy
        Decision policy, see :class:`~propensity.training.policy.PolicySpec`.
    time_budget
        Seconds of Optuna tuning for the leading family (0 = no time limit when ``trials`` is set).
    trials
        Number of Optuna trials for the leading family (0 = no limit when ``time_budget`` is set).
        With neither, there is no tuning. A trial count is reproducible; a time budget is not.
    candidates
        Families to compare (default: every installed one).
    ensemble
        With two or more candidates cross-validated on every training row, ship a greedy
        ensemble of them blended in log-odds (:mod:`propensity.training.ensemble`, weights
        fitted on out-of-fold predictions only) instead of the single winner, whenever the
        blend beats its best member out of fold. Default on; one candidate family
        (``candidates=["lightgbm"]``) always gives a single model.
    class_weight
        ``auto`` (default: balanced weights for the random forest, none for boosted trees and
        the linear model), ``balanced`` (all) or ``none``.
    resample
        ``none`` (default), ``under`` or ``over``, applied inside training folds only.
    seed
        Random seed for splits, models and tuning.
    n_jobs
        Threads per model (default from settings).
    min_rows
        Fewest usable rows to train on.
    leak_auc
        Single-column ROC-AUC above which a column is a leak suspect and excluded.
    time_column
        For stacked snapshots (one row per customer and cutoff): the column with each row's
        cutoff. Validation and test then follow time instead of random folds — test on the
        latest cutoff, validate on the latest earlier one(s), and never train on a row whose
        label window (``time + time_gap``) reaches past the cutoff it is evaluated on. The
        column is not a feature, and the id only has to be unique per cutoff.
    time_gap
        How far each row's label looks ahead of its time (e.g. ``pd.Timedelta(days=30)``).
    time_folds
        How many of the latest training cutoffs serve as validation folds (each trained on the
        cutoffs before it); 1 = validate on the latest.
    screen_above, screen_sample, finalists
        Successive halving for large tables: with more than ``screen_above`` training rows
        (0 = never), every candidate is first cross-validated on a stratified sample of
        ``screen_sample`` rows, with the parameters it would get on the whole table, and
        only the best ``finalists`` are then cross-validated on every training row; the
        winner is chosen among those. Random folds only: with a ``time_column`` every
        candidate runs on the time-ordered folds.
    refit_all
        Ship a model refitted on the training *and* test rows once the test figures are
        recorded (the report keeps the held-out figures and says the shipped model saw more
        data; with stacked snapshots the latest cutoff joins the fit). ``None`` (default):
        yes up to :data:`REFIT_ALL_MAX_ROWS` rows, where a fifth more data still moves the
        model (above, the second fit costs time and changes little), unless the test rows are
        a table the user gave, which stays unseen so that evaluating on it remains honest.
    """

    target: str
    id_column: str | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    positive: str | None = None
    test_size: float = 0.2
    folds: int = 5
    metric: str = "roc_auc"
    policy: PolicySpec = field(default_factory=PolicySpec)
    time_budget: float = 0.0
    trials: int = 0
    candidates: Sequence[str] | None = None
    ensemble: bool = True
    class_weight: str = "auto"
    resample: str = "none"
    seed: int = 42
    n_jobs: int | None = None
    min_rows: int = 50
    leak_auc: float = 0.99
    time_column: str | None = None
    time_gap: Any = None
    time_folds: int = 1
    screen_above: int = 100_000
    screen_sample: int = 30_000
    finalists: int = 1
    refit_all: bool | None = None

    def __post_init__(self) -> None:
        _check(
            "folds", isinstance(self.folds, int) and 2 <= self.folds <= 20, "an int in [2, 20]", self.folds
        )
        _check("test_size", 0 < self.test_size < 0.9, "a float in (0, 0.9)", self.test_size)
        _check("metric", self.metric in METRICS, f"one of {', '.join(METRICS)}", self.metric)
        _check("time_budget", self.time_budget >= 0, "a number of seconds >= 0", self.time_budget)
        _check("trials", isinstance(self.trials, int) and self.trials >= 0, "an int >= 0", self.trials)
        _check(
            "class_weight",
            self.class_weight in ("auto", "balanced", "none"),
            "'auto', 'balanced' or 'none'",
            self.class_weight,
        )
        _check(
            "resample", self.resample in ("none", "under", "over"), "'none', 'under' or 'over'", self.resample
        )
        _check("leak_auc", 0.5 < self.leak_auc <= 1.0, "a float in (0.5, 1]", self.leak_auc)
        _check("min_rows", self.min_rows >= 10, "an int >= 10", self.min_rows)
        _check("screen_above", self.screen_above >= 0, "an int >= 0", self.screen_above)
        _check("screen_sample", self.screen_sample >= 500, "an int >= 500", self.screen_sample)
        _check("finalists", self.finalists >= 1, "an int >= 1", self.finalists)
        _check(
            "time_folds",
            isinstance(self.time_folds, int) and 1 <= self.time_folds <= 20,
            "an int in [1, 20]",
            self.time_folds,
        )
        if self.candidates is not None:
            for name in self.candidates:
                fam = get_family(name)
                if not fam.available():
                    raise ParameterError(
                        f"Candidate '{name}' needs an extra: pip install 'propensity[{name}]'."
                    )
