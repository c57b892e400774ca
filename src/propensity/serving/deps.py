"""FastAPI dependencies: the current model holder, scorer, metrics and settings.

The API-key check is not a dependency: it runs in :class:`~propensity.serving.middleware.ServiceMiddleware`
for every path except the open ones, so no route can forget it and the hot path pays no
dependency resolution for it (measured ~100 µs per request as a FastAPI dependency).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from propensity.serving.metrics import ServiceMetrics
from propensity.serving.scorer import ModelHolder, Scorer
from propensity.serving.settings import ServeSettings

__all__ = [
    "HolderDep",
    "MetricsDep",
    "ScorerDep",
    "SettingsDep",
]


def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


async def get_scorer(request: Request) -> Scorer:
    """The scorer of this request: taken once, so a reload mid-request cannot mix two models."""
    scorer: Scorer = request.app.state.holder.scorer
    return scorer


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


async def get_settings(request: Request) -> ServeSettings:
    settings: ServeSettings = request.app.state.settings
    return settings


HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
