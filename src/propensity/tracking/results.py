"""What tracking returns: where a run went, registered models and versions, promotions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ALIAS",
    "TRACKING_FILE",
    "ModelVersionInfo",
    "PromoteResult",
    "RegisteredModelInfo",
    "TrackingFailure",
    "TrackingResult",
]


DEFAULT_ALIAS = "champion"

TRACKING_FILE = "tracking.json"
"""Written beside the bundle after training: where the run went, or why it did not."""


@dataclass
class TrackingResult:
    """Where a training run was recorded and under which name and version the model was registered."""

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    run_id: str
    model_name: str
    version: int
    logged_model_uri: str
    bundle_version: str
    run_url: str | None = None
    alias: str | None = None
    seconds: float = 0.0
    already_registered: bool = False

    @property
    def model_uri(self) -> str:
        """The registry address of this version, e.g. ``models:/shoppers/3``."""
        return f"models:/{self.model_name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"status": "logged", **asdict(self), "model_uri": self.model_uri}


@dataclass
class TrackingFailure:
    """Tracking failed after the bundle was saved: the model is safe on disk, and how to register it."""

    tracking_uri: str
    error: str
    bundle: str
    register_command: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": "failed", **asdict(self)}


@dataclass
class ModelVersionInfo:
    """One registered version, with the headline facts propensity tags it with."""

    name: str
    version: int
    aliases: list[str]
    created: str
    run_id: str | None
    status: str
    bundle_version: str | None
    winner: str | None
    target: str | None
    metrics: dict[str, float]
    description: str = ""
    source: str = ""
    #: The ensemble's members and weights ("lightgbm 0.800, logistic_regression 0.200"), when the winner is one.
    ensemble: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uri": self.uri}


@dataclass
class RegisteredModelInfo:
    """A registered model: its versions (newest first) and aliases."""

    name: str
    created: str
    updated: str
    description: str
    aliases: dict[str, int]
    versions: list[ModelVersionInfo] = field(default_factory=list)

    @property
    def is_propensity(self) -> bool:
        """True when at least one version carries a propensity bundle."""
        return any(v.bundle_version for v in self.versions)

    @property
    def latest(self) -> ModelVersionInfo | None:
        return self.versions[0] if self.versions else None

    def headline(self) -> ModelVersionInfo | None:
        """The version a reader cares about first: the champion if there is one, else the newest."""
        if DEFAULT_ALIAS in self.aliases:
            for v in self.versions:
                if v.version == self.aliases[DEFAULT_ALIAS]:
                    return v
        return self.latest

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "updated": self.updated,
            "description": self.description,
            "aliases": self.aliases,
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass
class PromoteResult:
    """What ``promote`` changed: ``alias`` now points at ``version`` (it pointed at ``previous``)."""

    name: str
    version: int
    alias: str
    previous: int | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"
