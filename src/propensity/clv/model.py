"""A saved lifetime-value bundle's models, ready to score summaries (no PyMC needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from propensity.clv.fit import ClvFit, fits_from_dicts, predict
from propensity.manifest import ClvManifest

__all__ = ["ClvModel"]


class ClvModel:
    """The fitted models of a CLV bundle and its default prediction settings.

    Obtain one from :func:`propensity.bundle.load_clv_model` or
    :func:`propensity.loading.resolve_clv_model` (both verify the bundle's content hash).

    Attributes
    ----------
    manifest
        The :class:`~propensity.manifest.ClvManifest`.
    path
        The bundle folder, when loaded from or saved to one.
    """

    def __init__(self, manifest: ClvManifest, *, path: Path | None = None) -> None:
        self.manifest = manifest
        self.path = path
        self.fit: ClvFit = fits_from_dicts(
            [m.model_dump() for m in manifest.models], manifest.settings.time_scaler
        )

    @property
    def version(self) -> str:
        return self.manifest.model_version

    @property
    def time_scaler(self) -> float:
        return self.manifest.settings.time_scaler

    def predict(
        self,
        summary: pd.DataFrame,
        *,
        horizon_days: float | None = None,
        discount_rate: float | None = None,
        interval: float | None = None,
    ) -> pd.DataFrame:
        """Per-customer predictions for a summary built with this bundle's ``time_scaler``.

        Defaults come from the bundle's settings; see :func:`propensity.clv.fit.predict`.
        """
        s = self.manifest.settings
        return predict(
            summary,
            self.fit,
            horizon_days=s.horizon_days if horizon_days is None else horizon_days,
            discount_rate=s.discount_rate if discount_rate is None else discount_rate,
            interval=s.interval if interval is None else interval,
        )

    def __repr__(self) -> str:
        names = ", ".join(m.model for m in self.manifest.models)
        return f"ClvModel({names}; as_of {self.manifest.settings.as_of}, version {self.version})"
