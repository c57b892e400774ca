"""The manifest: everything needed to use a trained model safely, as typed data.

A bundle is a folder with ``manifest.json`` (this schema) and ``model.joblib`` (the fitted
pipeline). Serving, scoring, the report and the dashboard all read the manifest; none of
them needs the training code. ``SCHEMA_VERSION`` changes whenever a reader of an older
manifest could misread a newer one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BUNDLE_FORMAT",
    "CLV_BUNDLE_FORMAT",
    "CLV_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "Band",
    "CalibrationReport",
    "CandidateReport",
    "ClvManifest",
    "ClvModelFit",
    "ClvProvenance",
    "ClvSettings",
    "DecisionPolicy",
    "EnsembleMember",
    "EnsembleSpec",
    "EventsSpec",
    "FeatureProfile",
    "FeatureSpec",
    "InputSchema",
    "Integrity",
    "Manifest",
    "Provenance",
    "TaskSpec",
]

BUNDLE_FORMAT: Literal["propensity-bundle"] = "propensity-bundle"
SCHEMA_VERSION = 1
CLV_BUNDLE_FORMAT: Literal["propensity-clv-bundle"] = "propensity-clv-bundle"
CLV_SCHEMA_VERSION = 1

FeatureRole = Literal["numeric", "boolean", "categorical", "datetime"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class FeatureSpec(_Model):
    """One model input as the caller provides it (before encoding)."""

    name: str
    role: FeatureRole
    dtype: str = Field(description="Type of the column in the training data.")
    required: bool = Field(
        description="True when the column was never missing in training; scoring input must have it."
    )
    missing_share: float = Field(ge=0, le=1)
    description: str = ""
    unit: str | None = Field(default=None, description="Unit of the value (days, events, money, share ...).")
    categories: list[str] | None = Field(default=None, description="Known levels, most frequent first.")
    min: float | None = None
    max: float | None = None
    integer: bool = False
    datetime_parts: list[str] | None = None


class ExcludedColumn(_Model):
    name: str
    role: str
    note: str = ""


class InputSchema(_Model):
    id_column: str | None
    features: list[FeatureSpec]
    excluded: list[ExcludedColumn] = []
    unknown_category_policy: str = (
        "A category not seen in training is scored like the rare categories of training (one 'other' level)."
    )
    missing_value_policy: str = (
        "A missing cell is imputed by the model (trees route it to their learned missing branch; the linear "
        "model uses the training median plus a missing indicator). A column marked required must be present."
    )


class TaskSpec(_Model):
    kind: Literal["binary"] = "binary"
    target: str
    positive: str
    negative: str
    positive_rate: float
    note: str = ""
    label_definition: str | None = None


class Band(_Model):
    name: Literal["high", "medium", "low"]
    lower: float = Field(description="Inclusive lower bound on the probability.")
    upper: float = Field(description="Exclusive upper bound (1.0 is inclusive for the top band).")
    share: float = Field(description="Share of out-of-fold rows in the band.")
    observed_rate: float | None = Field(description="Observed positive rate of out-of-fold rows in the band.")
    meaning: str = ""


class DecisionPolicy(_Model):
    kind: Literal["f1", "profit", "top", "precision", "recall"]
    params: dict[str, float] = {}
    threshold: float = Field(ge=0, le=1)
    rationale: str
    expected: dict[str, Any] = Field(
        default_factory=dict, description="Out-of-fold figures at the threshold."
    )
    bands: list[Band]


class CalibrationReport(_Model):
    method: Literal["none", "sigmoid", "isotonic"]
    scores: dict[str, dict[str, float]] = Field(
        description="Cross-fitted out-of-fold log loss and Brier per method."
    )
    before: dict[str, float]
    after: dict[str, float]


class CandidateReport(_Model):
    name: str
    family: str
    params: dict[str, Any] = {}
    oof: dict[str, Any]
    test: dict[str, Any] | None = None
    test_source: str | None = None
    fit_seconds: float
    calibration: str = "none"
    tuned: bool = False
    rows: int = Field(
        default=0,
        description="Training rows its out-of-fold metrics cover (fewer when screened on a sample).",
    )
    error: str | None = None


class EnsembleMember(_Model):
    name: str = Field(description="The candidate (see ``candidates``).")
    family: str
    weight: float = Field(ge=0, le=1, description="Its weight in the blend of log-odds (weights sum to 1).")


class EnsembleSpec(_Model):
    """The shipped model is a blend of candidates (see :mod:`propensity.training.ensemble`)."""

    method: str = Field(
        default="greedy ensemble selection with replacement (Caruana et al. 2004) on out-of-fold predictions",
        description="How the weights were chosen.",
    )
    blend: str = Field(
        default="log-odds: raw score = sigmoid(sum of weight x member log-odds), then the calibrator",
        description="How the members are combined.",
    )
    criterion: str = "out-of-fold log loss after a sigmoid fit"
    rounds: int
    members: list[EnsembleMember]
    score: dict[str, float] = Field(
        description="The criterion for the ensemble and for its best single member (lower is better)."
    )
    single_winner: str = Field(description="The best single candidate by the selection metric.")


class Provenance(_Model):
    data_source: str
    data_hash: str
    rows_in: int
    rows_quarantined: int
    rows_used: int
    rows_train: int
    rows_test: int
    test_source: str
    validation: str = Field(default="", description="How the out-of-fold predictions were made.")
    folds: int
    seed: int
    metric: str
    time_budget: float
    trials: int = 0
    versions: dict[str, str]
    created_at: str
    python: str
    platform: str
    git_commit: str | None = None
    quarantine_reasons: dict[str, int] = {}
    test_rows_repeating_training: int = Field(
        default=0, description="Test rows equal to a training row in every feature (copies in the table)."
    )
    refit_rows: int = Field(
        default=0,
        description="Rows the shipped model was refitted on after the test (training + test rows); "
        "0: it saw the training rows only, as tested.",
    )


class Histogram(_Model):
    edges: list[float] = Field(description="Bin edges (deciles of the training values, duplicates merged).")
    shares: list[float] = Field(description="Share of training values per bin.")


class FeatureProfile(_Model):
    """One feature's training distribution: the reference for drift checks and example records."""

    role: str
    missing_share: float = Field(ge=0, le=1)
    quantiles: dict[str, float] | None = Field(
        default=None, description="Quantiles of numeric and boolean features, keyed by level ('0.5': median)."
    )
    mean: float | None = None
    std: float | None = None
    histogram: Histogram | None = None
    top: dict[str, float] | None = Field(
        default=None, description="Shares of the 20 most frequent levels of a categorical feature."
    )
    other_share: float | None = Field(default=None, description="Share of the other levels.")
    min: str | None = Field(default=None, description="Earliest value of a datetime feature.")
    max: str | None = Field(default=None, description="Latest value of a datetime feature.")

    def quantile(self, level: str) -> float | None:
        """A stored quantile (``"0.5"`` for the median), or ``None``."""
        return (self.quantiles or {}).get(level)


class ScoreProfile(_Model):
    """The training rows' calibrated out-of-fold probabilities: the reference for score drift."""

    rows: int
    mean: float
    decision_rate: float = Field(description="Share of the rows at or above the policy threshold.")
    histogram: Histogram
    estimated_roc_auc: float | None = Field(
        default=None,
        description="ROC-AUC these probabilities imply if calibrated (CBPE): what the monitor's estimate on new "
        "rows is compared with (older bundles: the test ROC-AUC).",
    )


class EventLabel(_Model):
    kind: Literal["purchase", "churn", "revenue"]
    horizon_days: int
    column: str
    definition: str


class EventFeatures(_Model):
    config: dict[str, Any] = Field(
        description="The feature configuration: lookbacks, trend span, device/channel levels."
    )
    definitions: list[dict[str, Any]] = Field(description="Every feature's registry entry.")


class EventEligibility(_Model):
    active_days: int | None
    min_orders: int = 0
    definition: str = ""


class EventData(_Model):
    """The training log as validation saw it."""

    source: str
    first_event: str | None
    last_event: str | None
    data_end: str | None
    rows_in: int
    rows_ok: int
    rows_quarantined: int
    reasons: dict[str, int]
    customers: int
    event_types: dict[str, int]
    sessions: str


class EventsSpec(_Model):
    """How an event-trained model's features and labels were built: what scoring a log needs."""

    format: int = Field(description="Version of this block; readers refuse newer ones.")
    mapping: dict[str, Any] = Field(description="The mapping of the log's columns and event names.")
    engine: str
    features: EventFeatures
    label: EventLabel
    cutoffs: list[str]
    step_days: int
    test_cutoff: str
    validation: str
    validation_cutoffs: list[str] = []
    test: str
    per_cutoff: list[dict[str, Any]] = Field(description="Customers seen, eligible and positive per cutoff.")
    eligibility: EventEligibility
    data: EventData
    clv_features: bool = Field(
        default=False,
        description="BG/NBD P(alive) and expected purchases were added at every cutoff, fitted on the history "
        "before it (scoring refits them at its own cutoff the same way).",
    )


class Integrity(_Model):
    algorithm: Literal["sha256"] = "sha256"
    files: dict[str, str]
    bundle_sha256: str


class Manifest(_Model):
    format: Literal["propensity-bundle"] = BUNDLE_FORMAT
    schema_version: int = SCHEMA_VERSION
    propensity_version: str
    name: str | None = None
    model_version: str = ""
    task: TaskSpec
    roles: dict[str, Any]
    input_schema: InputSchema
    policy: DecisionPolicy
    calibration: CalibrationReport
    winner: str
    metrics: dict[str, dict[str, Any] | None]
    candidates: list[CandidateReport]
    profile: dict[str, FeatureProfile]
    score_profile: ScoreProfile | None = Field(
        default=None,
        description="Out-of-fold probability distribution (absent in bundles before monitoring).",
    )
    provenance: Provenance
    events: EventsSpec | None = None
    ensemble: EnsembleSpec | None = Field(
        default=None, description="The members and weights when the winner is an ensemble."
    )
    integrity: Integrity | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.input_schema.features]

    def profile_of(self, name: str) -> FeatureProfile:
        """The training profile of a feature (an empty one when the manifest has none)."""
        return self.profile.get(name) or FeatureProfile(role=self.feature(name).role, missing_share=0.0)

    def feature(self, name: str) -> FeatureSpec:
        for f in self.input_schema.features:
            if f.name == name:
                return f
        raise KeyError(name)


# ------------------------------------------------------------------------------ lifetime value


class ClvModelFit(_Model):
    """One fitted lifetime-value model (see :class:`propensity.clv.base.ModelFit`)."""

    model: Literal["bgnbd", "pareto_nbd", "gamma_gamma"]
    params: dict[str, float]
    log_likelihood: float
    fit_seconds: float
    customers: int
    method: Literal["map", "mcmc"]
    priors: dict[str, str] = {}
    posterior: dict[str, list[float]] | None = Field(
        default=None, description="Posterior draws per parameter (mcmc fits), for credible intervals."
    )
    notes: list[str] = []


class ClvSettings(_Model):
    """How the summary was built and how predictions are made by default."""

    as_of: str = Field(description="Cutoff of the fitting summary: purchases before it were used.")
    time_scaler: float = Field(description="Days per model time unit (1 = days, 7 = weeks).")
    holdout_days: int | None = Field(description="Days after as_of held out to check the fit.")
    horizon_days: float = Field(description="Default horizon of expected purchases and lifetime value.")
    discount_rate: float = Field(description="Default discount rate per 30 days of the lifetime value.")
    interval: float = Field(description="Mass of the credible intervals (mcmc fits).")
    primary: Literal["bgnbd", "pareto_nbd"] = Field(description="The model behind the unprefixed columns.")
    summary_definition: str = ""


class ClvProvenance(_Model):
    data_source: str
    data_hash: str
    customers: int = Field(description="Customers in the fitting summary (a purchase before as_of).")
    versions: dict[str, str]
    created_at: str
    python: str
    platform: str
    git_commit: str | None = None
    seed: int = 0


class ClvManifest(_Model):
    """A lifetime-value bundle: the fitted parameters and everything needed to score a log again.

    Unlike a classifier bundle it holds no pickle: the parameters (and posterior draws) are
    numbers in this file, and predictions are closed forms (:mod:`propensity.clv.predict`).
    """

    format: Literal["propensity-clv-bundle"] = CLV_BUNDLE_FORMAT
    schema_version: int = CLV_SCHEMA_VERSION
    kind: Literal["clv"] = "clv"
    propensity_version: str
    name: str | None = None
    model_version: str = ""
    settings: ClvSettings
    models: list[ClvModelFit]
    holdout: dict[str, Any] | None = Field(
        default=None, description="Calibration predictions against the holdout period."
    )
    mapping: dict[str, Any] = Field(description="The mapping of the log's columns and event names.")
    engine: str
    data: EventData
    provenance: ClvProvenance
    integrity: Integrity | None = None

    def fit_of(self, model: str) -> ClvModelFit | None:
        return next((m for m in self.models if m.model == model), None)
