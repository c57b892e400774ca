"""Progress of a training run, for progress bars: which step, how far."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ProgressCallback", "ProgressEvent", "emit", "fold_progress"]


@dataclass(frozen=True)
class ProgressEvent:
    """A step of training, for progress bars: ``done`` of ``total`` in ``stage``."""

    stage: str
    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def emit(progress: ProgressCallback | None, stage: str, done: int, total: int, message: str = "") -> None:
    """Report a step to the progress callback, if any."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message))


def fold_progress(
    progress: ProgressCallback | None, folds: int, name: str
) -> Callable[[int, Any, Any], None]:
    def report(i: int, _done: Any, _oof: Any) -> None:
        emit(progress, "fold", i + 1, folds, name)

    return report
