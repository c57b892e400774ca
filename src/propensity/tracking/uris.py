"""Tracking URIs (which store, first match wins) and registered-model names and references."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from propensity.config import get_settings
from propensity.errors import ParameterError

__all__ = [
    "ALIAS_RE",
    "NAME_RE",
    "artifact_folder",
    "default_model_name",
    "display_uri",
    "embedded_tracking_uri",
    "is_http",
    "parse_model_ref",
    "parse_name_selector",
    "resolve_tracking_uri",
    "sqlite_path",
    "validate_model_name",
]


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")


def embedded_tracking_uri(home: str | Path | None = None) -> str:
    """The embedded store: ``sqlite:///<abs home>/mlflow.db`` (home defaults to ``PROPENSITY_HOME``)."""
    folder = Path(home) if home is not None else get_settings().home
    return "sqlite:///" + str((folder / "mlflow.db").absolute())


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI to use: the argument, ``PROPENSITY_TRACKING_URI``, ``MLFLOW_TRACKING_URI``, embedded."""
    for candidate in (tracking_uri, get_settings().tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")):
        if candidate and candidate.strip():
            return candidate.strip()
    return embedded_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    raw = unquote(uri[len("sqlite:///") :]).split("?", 1)[0]
    return Path(raw).absolute() if raw and raw != ":memory:" else None


def is_http(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def artifact_folder(uri: str) -> str | None:
    """Artifact folder for experiments propensity creates in a SQLite store: beside the database.

    Without this MLflow would put them in ``./mlruns`` of whatever directory the first run
    happened to start in. Servers and other stores decide for themselves (``None``).
    """
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").as_uri() if db is not None else None


def display_uri(uri: str) -> str:
    """A URI without credentials, for messages."""
    parsed = urlparse(uri)
    if parsed.password:
        netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return parsed._replace(netloc=netloc).geturl()
    return uri


def validate_model_name(name: str) -> str:
    """Check a registered-model name: letters, digits, ``_ . -``; it must start with a letter or digit.

    Raises
    ------
    ParameterError
        With the name and the allowed characters.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ParameterError(
            f"The model name must be 1-100 characters of letters, digits, '_', '.' or '-', starting with a "
            f"letter or digit (it appears in models:/NAME/VERSION). Got {name!r} instead."
        )
    return name


def default_model_name(out: str | Path) -> str:
    """A registered-model name derived from a bundle folder: ``models/shoppers`` gives ``shoppers``."""
    stem = Path(out).absolute().name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-_.")[:100]
    return cleaned or "model"


def parse_model_ref(ref: str) -> tuple[str, int | str]:
    """Split ``models:/name/3``, ``models:/name@alias`` or ``models:/name/latest`` (``models:/`` optional).

    Returns
    -------
    (name, selector)
        ``selector`` is a version number, ``"latest"`` or ``"@alias"``.

    Raises
    ------
    ParameterError
        If the reference has neither a version nor an alias.
    """
    text = ref.strip()
    body = text[len("models:/") :] if text.startswith("models:/") else text
    body = body.strip("/")
    if "@" in body:
        name, alias = body.split("@", 1)
        if name and alias and "/" not in name:
            return name, "latest" if alias == "latest" else "@" + alias
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        if name and "/" not in name and (version.isdigit() or version == "latest"):
            return name, int(version) if version.isdigit() else "latest"
    raise ParameterError(
        f"Cannot read the model reference {ref!r}: use models:/NAME/VERSION (e.g. models:/shoppers/3), "
        "models:/NAME@ALIAS (e.g. models:/shoppers@champion) or models:/NAME/latest."
    )


def parse_name_selector(ref: str) -> tuple[str, int | str | None]:
    """Like :func:`parse_model_ref` but a bare name is allowed (selector ``None``)."""
    body = ref.strip()
    body = body[len("models:/") :] if body.startswith("models:/") else body
    if "@" not in body and "/" not in body.strip("/"):
        return body.strip("/"), None
    return parse_model_ref(ref)
