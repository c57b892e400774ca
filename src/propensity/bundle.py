"""Save, load and verify model bundles.

A bundle is a folder::

    manifest.json   the contract (see propensity.manifest), with an integrity block
    model.joblib    the fitted ScoringPipeline (encoder, estimator, calibrator)

plus outputs written beside them by training (``metrics.json``, ``quarantine.csv``,
``report.html``, ``evaluation.json``) that are not needed to score.

**A bundle is code.** ``model.joblib`` is a pickle: loading it can run arbitrary code, so
only load bundles from a source you trust. The integrity block (SHA-256 of every scoring
file and of the manifest) catches edits, truncation and mix-ups — it is a checksum, not a
signature, and does not stop someone who can rewrite the whole folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
from pydantic import ValidationError

from propensity.clv.model import ClvModel
from propensity.errors import BundleError
from propensity.manifest import (
    BUNDLE_FORMAT,
    CLV_BUNDLE_FORMAT,
    CLV_SCHEMA_VERSION,
    SCHEMA_VERSION,
    ClvManifest,
    Integrity,
    Manifest,
)
from propensity.pipeline import TrainedModel
from propensity.sources import atomic_path, file_sha256

__all__ = [
    "MANIFEST_FILE",
    "MODEL_FILE",
    "is_clv_bundle",
    "load_clv_model",
    "load_model",
    "read_manifest",
    "save_clv_model",
    "save_model",
    "verify_bundle",
    "verify_clv_bundle",
]

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.joblib"
SCORING_FILES = (MODEL_FILE,)


def _canonical(data: dict[str, Any]) -> bytes:
    """The manifest's JSON as written, minus the fields derived from the hash itself.

    Hashing the stored JSON (not a re-serialisation through the current schema) keeps
    older bundles verifiable when a later version adds optional fields.
    """
    body = {k: v for k, v in data.items() if k not in ("integrity", "model_version")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _bundle_hash(data: dict[str, Any], files: dict[str, str]) -> str:
    digest = hashlib.sha256(_canonical(data))
    for name in sorted(files):
        digest.update(f"\n{name}:{files[name]}".encode())
    return digest.hexdigest()


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write ``model`` as a bundle folder at ``path`` (created if needed) and return the path.

    The model's ``manifest.model_version`` becomes the first 12 hex digits of the bundle hash.
    Writing is atomic per file (temporary file, then rename).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / MODEL_FILE) as tmp:
        joblib.dump(model.pipeline, tmp, compress=3)
    files = {name: file_sha256(path / name) for name in SCORING_FILES}
    manifest = model.manifest.model_copy(deep=True)
    manifest.integrity = None
    data = manifest.model_dump(mode="json")
    digest = _bundle_hash(data, files)
    manifest.model_version = digest[:12]
    manifest.integrity = Integrity(files=files, bundle_sha256=digest)
    with atomic_path(path / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False))
    model.manifest = manifest
    model.path = path
    return path


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate ``manifest.json`` of a bundle folder (no integrity check).

    Raises
    ------
    BundleError
        If the folder or manifest is missing, not a propensity bundle, or of a newer schema.
    """
    return _read_manifest(path)[0]


def _read_json(path: Path) -> tuple[Path, Any]:
    """(manifest file, its parsed JSON) of a bundle folder, or a clear error."""
    if not path.exists():
        raise BundleError(f"No model at '{path}': the folder does not exist.")
    file = path / MANIFEST_FILE if path.is_dir() else path
    if not file.exists():
        raise BundleError(f"'{path}' is not a propensity model bundle: it has no {MANIFEST_FILE}.")
    try:
        return file, json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"'{file}' is not valid JSON ({exc}); the bundle is damaged.") from exc


def is_clv_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a lifetime-value bundle (written by ``propensity clv``); no verification."""
    try:
        _, data = _read_json(Path(path))
    except BundleError:
        return False
    return isinstance(data, dict) and data.get("format") == CLV_BUNDLE_FORMAT


def _read_manifest(path: str | Path) -> tuple[Manifest, dict[str, Any]]:
    path = Path(path)
    file, data = _read_json(path)
    if isinstance(data, dict) and data.get("format") == CLV_BUNDLE_FORMAT:
        raise BundleError(
            f"'{path}' is a lifetime-value bundle (written by propensity clv), not a purchase-propensity model: "
            "it has no classifier to load. Score a log with it: propensity score BUNDLE LOG --out scores.parquet "
            "(in Python: propensity.workflows.clv.score_clv)."
        )
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"'{path}' is not a propensity model bundle (its manifest has no format '{BUNDLE_FORMAT}')."
        )
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise BundleError(
            f"'{path}' has manifest schema version {version!r}; this propensity reads version {SCHEMA_VERSION}. "
            "Upgrade propensity (or retrain the model)."
        )
    try:
        return Manifest.model_validate(data), data
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise BundleError(
            f"'{file}' does not match the manifest schema at '{where}': {first['msg']}."
        ) from exc


def verify_bundle(path: str | Path) -> Manifest:
    """Check a bundle's integrity block against its files; return the manifest.

    Raises
    ------
    BundleError
        If any scoring file or the manifest was changed after the bundle was written.
    """
    path = Path(path)
    manifest, raw = _read_manifest(path)
    if manifest.integrity is None:
        raise BundleError(f"'{path}' has no integrity block; it was not written by propensity.save_model.")
    expected = manifest.integrity.files
    for name in SCORING_FILES:
        if name not in expected:
            raise BundleError(f"'{path}': the integrity block does not cover {name}.")
        file = path / name
        if not file.exists():
            raise BundleError(f"'{path}' is incomplete: {name} is missing.")
        actual = file_sha256(file)
        if actual != expected[name]:
            raise BundleError(
                f"'{file}' was modified after the bundle was written (sha256 {actual[:12]}…, expected "
                f"{expected[name][:12]}…). Refusing to load it; retrain or restore the original."
            )
    digest = _bundle_hash(raw, expected)
    if digest != manifest.integrity.bundle_sha256 or not digest.startswith(manifest.model_version):
        raise BundleError(
            f"'{path / MANIFEST_FILE}' was edited after the bundle was written (content hash mismatch). "
            "Refusing to load it; retrain or restore the original."
        )
    return manifest


def load_model(path: str | Path) -> TrainedModel:
    """Load a verified bundle from a folder.

    A registry reference (``models:/name/3``, ``models:/name@champion``) is resolved by
    :func:`propensity.resolve_model`; this function takes local folders.

    Raises
    ------
    BundleError
        Missing, foreign, newer-schema or modified bundle.
    """
    path = Path(path)
    manifest = verify_bundle(path)
    try:
        pipeline = joblib.load(path / MODEL_FILE)
    except Exception as exc:  # a verified file that does not unpickle: wrong library versions
        raise BundleError(
            f"'{path / MODEL_FILE}' passed its checksum but cannot be loaded ({type(exc).__name__}: {exc}). "
            f"It was written with {manifest.provenance.versions}; install matching versions."
        ) from exc
    from propensity.config import get_settings

    pipeline.n_jobs = get_settings().n_jobs
    return TrainedModel(manifest, pipeline, path=path)


# ------------------------------------------------------------------------------ lifetime value


def save_clv_model(manifest: ClvManifest, path: str | Path) -> ClvModel:
    """Write a lifetime-value bundle (``manifest.json`` alone) at ``path`` and return the model.

    The same integrity block as a classifier bundle (:func:`save_model`): a SHA-256 of the
    manifest's JSON, whose first 12 hex digits become ``model_version``; the file is written
    atomically (temporary file, then rename). A CLV bundle holds no pickle: its parameters are
    numbers in the manifest, so loading one runs no code.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    manifest = manifest.model_copy(deep=True)
    manifest.integrity = None
    digest = _bundle_hash(manifest.model_dump(mode="json"), {})
    manifest.model_version = digest[:12]
    manifest.integrity = Integrity(files={}, bundle_sha256=digest)
    with atomic_path(path / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return ClvModel(manifest, path=path)


def verify_clv_bundle(path: str | Path) -> ClvManifest:
    """Read a lifetime-value bundle and check its content hash and schema version.

    Raises
    ------
    BundleError
        Missing, not a CLV bundle, of a newer schema, or edited after it was written.
    """
    path = Path(path)
    file, data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != CLV_BUNDLE_FORMAT:
        kind = (
            "a purchase-propensity model"
            if isinstance(data, dict) and data.get("format") == BUNDLE_FORMAT
            else ("not a propensity bundle")
        )
        raise BundleError(f"'{path}' is not a lifetime-value bundle ({kind}); write one with propensity clv.")
    version = data.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= CLV_SCHEMA_VERSION:
        raise BundleError(
            f"'{path}' has CLV manifest schema version {version!r}; this propensity reads version "
            f"{CLV_SCHEMA_VERSION}. Upgrade propensity (or fit the model again)."
        )
    try:
        manifest = ClvManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise BundleError(
            f"'{file}' does not match the CLV manifest schema at '{where}': {first['msg']}."
        ) from exc
    integrity = manifest.integrity
    digest = _bundle_hash(data, {})
    if (
        integrity is None
        or digest != integrity.bundle_sha256
        or not digest.startswith(manifest.model_version)
    ):
        raise BundleError(
            f"'{file}' was edited after the bundle was written (content hash mismatch). "
            "Refusing to load it; fit the model again or restore the original."
        )
    return manifest


def load_clv_model(path: str | Path) -> ClvModel:
    """Load a verified lifetime-value bundle from a folder (see :func:`verify_clv_bundle`)."""
    return ClvModel(verify_clv_bundle(path), path=Path(path))
