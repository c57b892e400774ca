"""Alert thresholds of the monitor: amber and red levels per test, with literature defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from propensity.errors import ParameterError

__all__ = ["STATUS_ORDER", "Thresholds", "worst"]

STATUS_ORDER = {"n/a": -1, "green": 0, "amber": 1, "red": 2}


@dataclass(frozen=True)
class Thresholds:
    """(amber, red) per test; a value at or above the level raises that status.

    Defaults: PSI 0.1 / 0.25 (Siddiqi 2006, the credit-scoring convention Evidently also uses);
    KS and Jensen–Shannon distances 0.1 / 0.2 (effect sizes, not p-values: on millions of rows
    every p-value is tiny); missing share ±5 / ±10 points; ROC-AUC drop 0.02 / 0.05 against the
    bundle's test figure, estimated (CBPE) or realised; decision rate change ±25 / ±50 % relative;
    expected calibration error 0.05 / 0.1. ``min_rows`` readable values are needed for a test,
    ``reference_rows`` is the training size the KS p-value assumes.
    """

    psi: tuple[float, float] = (0.1, 0.25)
    ks: tuple[float, float] = (0.1, 0.2)
    jensen_shannon: tuple[float, float] = (0.1, 0.2)
    missing: tuple[float, float] = (0.05, 0.1)
    score_psi: tuple[float, float] = (0.1, 0.25)
    decision_rate: tuple[float, float] = (0.25, 0.5)
    auc_drop: tuple[float, float] = (0.02, 0.05)
    ece: tuple[float, float] = (0.05, 0.1)
    min_rows: int = 100
    reference_rows: int = 10_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and not (len(value) == 2 and 0 <= value[0] <= value[1]):
                raise ParameterError(
                    f"The '{f.name}' threshold must be two numbers 0 <= amber <= red. Got {value!r} instead."
                )

    @classmethod
    def parse(cls, items: list[str] | None, **fixed: Any) -> Thresholds:
        """From ``["psi=0.05,0.2", ...]`` (the CLI's ``--threshold``), over the defaults."""
        known = {f.name for f in fields(cls) if f.type != "int"}
        values: dict[str, Any] = dict(fixed)
        for item in items or []:
            name, _, levels = item.partition("=")
            name = name.strip().replace("-", "_")
            if name not in known or name in ("min_rows", "reference_rows"):
                raise ParameterError(
                    f"Unknown threshold {name!r}. Use one of: {', '.join(sorted(known - {'min_rows', 'reference_rows'}))} "
                    "(e.g. --threshold psi=0.1,0.25)."
                )
            try:
                amber, red = (float(v) for v in levels.split(","))
            except ValueError:
                raise ParameterError(
                    f"The threshold {item!r} must read NAME=AMBER,RED with two numbers, e.g. psi=0.1,0.25."
                ) from None
            values[name] = (amber, red)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(checks: list[tuple[str, float | None, tuple[float, float]]]) -> tuple[str, list[str]]:
    """The worst status over ``(label, value, (amber, red))`` checks, and why."""
    status, reasons = "green", []
    for label, value, (amber, red) in checks:
        if value is None or value != value:  # None or NaN: not tested
            continue
        level = "red" if value >= red else "amber" if value >= amber else None
        if level:
            reasons.append(f"{label} {value:.3g} ≥ {red if level == 'red' else amber:g} ({level})")
            if STATUS_ORDER[level] > STATUS_ORDER[status]:
                status = level
    return status, reasons
