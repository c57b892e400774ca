"""Exceptions and warnings raised by propensity.

Every error is a :class:`PropensityError` *and* the built-in exception a caller would
naturally catch (like scikit-learn's ``NotFittedError(ValueError, AttributeError)``), so
old ``except ValueError`` clauses keep working. Messages name the column, row or value,
what was allowed and how to fix it. The edges translate them: the CLI prints one line and
exits with code 2, the API answers 4xx with field-level detail.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "DataError",
    "InsufficientDataError",
    "ModelNotFoundError",
    "ParameterError",
    "PropensityError",
    "PropensityWarning",
    "SchemaError",
    "TrackingError",
]


class PropensityError(Exception):
    """Base class of every error raised on purpose by propensity."""


class DataError(PropensityError, ValueError):
    """The input data cannot be used as given (empty file, unreadable format, bad values)."""


class ParameterError(PropensityError, ValueError):
    """An argument is out of its allowed range; the message names it, the range and the value."""


class SchemaError(DataError):
    """Columns or types do not match what was asked for or what the model expects."""


class InsufficientDataError(DataError):
    """Too few usable rows (or too few of one class) remain after validation."""


class BundleError(PropensityError, ValueError):
    """A model bundle is missing, foreign, of an unsupported version, or was modified."""


class ModelNotFoundError(PropensityError, LookupError):
    """A model name, version or alias does not exist in the registry."""


class TrackingError(PropensityError, RuntimeError):
    """Experiment tracking (MLflow) failed; the local bundle is unaffected."""


class PropensityWarning(UserWarning):
    """Something worth a user's attention that does not stop the run."""
