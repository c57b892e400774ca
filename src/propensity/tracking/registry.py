"""The model registry: register a bundle, list and show models, promote a version to an alias."""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from propensity.errors import ModelNotFoundError, ParameterError
from propensity.manifest import Manifest
from propensity.tracking.records import HEADLINE_METRICS, TAG, run_note, version_tags
from propensity.tracking.results import (
    DEFAULT_ALIAS,
    ModelVersionInfo,
    PromoteResult,
    RegisteredModelInfo,
)
from propensity.tracking.session import Session, mlflow_error_code, open_session, run_link
from propensity.tracking.uris import (
    ALIAS_RE,
    display_uri,
    parse_name_selector,
    resolve_tracking_uri,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "all_versions",
    "check_alias",
    "list_models",
    "promote",
    "register_version",
    "resolve_version",
    "show_model",
]


def register_version(
    session: Session,
    name: str,
    logged: Any,
    run_id: str,
    manifest: Manifest,
    bundle: Path,
    experiment_id: str,
) -> ModelVersion:
    client = session.client
    try:
        client.create_registered_model(
            name,
            tags={f"{TAG}target": manifest.task.target},
            description=f"propensity model predicting {manifest.task.target} = {manifest.task.positive!r}.",
        )
    except Exception as exc:
        if "ALREADY_EXISTS" not in mlflow_error_code(exc):
            raise
    note = run_note(manifest, name).replace("**", "")
    return client.create_model_version(
        name,
        source=logged.model_uri,
        run_id=run_id,
        tags=version_tags(manifest, bundle),
        run_link=run_link(session.uri, experiment_id, run_id),
        description=note,
        model_id=getattr(logged, "model_id", None),
    )


def all_versions(session: Session, name: str | None = None) -> list[ModelVersion]:
    filter_string = f"name = '{name}'" if name is not None else None
    out: list[ModelVersion] = []
    token = None
    while True:
        page = session.client.search_model_versions(filter_string, max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _all_models(session: Session) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = session.client.search_registered_models(max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().isoformat(timespec="seconds")


def _version_info(mv: ModelVersion) -> ModelVersionInfo:
    tags = mv.tags or {}
    metrics = {}
    for key in HEADLINE_METRICS:
        with contextlib.suppress(KeyError, ValueError):
            metrics[key] = float(tags[f"{TAG}{key}"])
    return ModelVersionInfo(
        name=mv.name,
        version=int(mv.version),
        aliases=sorted(getattr(mv, "aliases", None) or []),
        created=_when(mv.creation_timestamp),
        run_id=mv.run_id or None,
        status=str(mv.status),
        bundle_version=tags.get(f"{TAG}model_version"),
        winner=tags.get(f"{TAG}winner"),
        target=tags.get(f"{TAG}target"),
        metrics=metrics,
        description=mv.description or "",
        source=mv.source or "",
        ensemble=tags.get(f"{TAG}ensemble"),
    )


def _model_info(rm: Any, versions: Sequence[ModelVersion]) -> RegisteredModelInfo:
    infos = sorted((_version_info(v) for v in versions), key=lambda v: v.version, reverse=True)
    raw = getattr(rm, "aliases", None) or {}
    aliases = {str(a): int(v) for a, v in raw.items()} if isinstance(raw, Mapping) else {}
    if not aliases:
        aliases = {a: v.version for v in infos for a in v.aliases}
    for v in infos:  # search results do not always carry aliases; fill them from the model
        v.aliases = sorted({*v.aliases, *(a for a, n in aliases.items() if n == v.version)})
    return RegisteredModelInfo(
        name=rm.name if rm is not None else versions[0].name,
        created=_when(getattr(rm, "creation_timestamp", None)),
        updated=_when(getattr(rm, "last_updated_timestamp", None)),
        description=getattr(rm, "description", "") or "",
        aliases=dict(sorted(aliases.items())),
        versions=infos,
    )


def list_models(*, tracking_uri: str | None = None, include_all: bool = False) -> list[RegisteredModelInfo]:
    """Registered models with their versions and aliases, by name.

    Only models holding propensity bundles are listed unless ``include_all`` (a shared
    server may hold other teams' models too).
    """
    uri = resolve_tracking_uri(tracking_uri)
    with open_session(uri, create=False) as session:
        models = _all_models(session)
        versions = all_versions(session)
    by_name: dict[str, list[ModelVersion]] = {}
    for mv in versions:
        by_name.setdefault(mv.name, []).append(mv)
    infos = [_model_info(rm, by_name.get(rm.name, [])) for rm in models]
    infos = [m for m in infos if include_all or m.is_propensity]
    return sorted(infos, key=lambda m: m.name.lower())


def _not_found_names(session: Session, name: str) -> ModelNotFoundError:
    names = sorted(rm.name for rm in _all_models(session))
    shown = display_uri(session.uri)
    if not names:
        return ModelNotFoundError(
            f"No registered model '{name}' at {shown}: no models are registered there yet."
        )
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(names[:30]) + (f" … ({len(names)} in all)" if len(names) > 30 else "")
    return ModelNotFoundError(f"No registered model '{name}' at {shown}.{hint} Registered models: {listed}.")


def _get_model(session: Session, name: str) -> Any:
    try:
        return session.client.get_registered_model(name)
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in mlflow_error_code(exc) or "NOT_FOUND" in mlflow_error_code(exc):
            raise _not_found_names(session, name) from None
        raise


def _version_list(info: RegisteredModelInfo) -> str:
    versions = ", ".join(str(v.version) for v in reversed(info.versions)) or "none"
    aliases = ", ".join(f"{a} → {v}" for a, v in info.aliases.items()) or "none"
    return f"versions: {versions}; aliases: {aliases}"


def resolve_version(session: Session, name: str, selector: int | str) -> ModelVersion:
    rm = _get_model(session, name)
    versions = all_versions(session, name)
    info = _model_info(rm, versions)
    if selector == "latest":
        if not versions:
            raise ModelNotFoundError(f"Model '{name}' has no versions yet.")
        return max(versions, key=lambda v: int(v.version))
    if isinstance(selector, str) and selector.startswith("@"):
        alias = selector[1:]
        if alias not in info.aliases:
            raise ModelNotFoundError(
                f"Model '{name}' has no alias '{alias}' ({_version_list(info)}). "
                f"Set one with: propensity models promote {name} VERSION --alias {alias}"
            )
        selector = info.aliases[alias]
    for mv in versions:
        if int(mv.version) == selector:
            return mv
    raise ModelNotFoundError(f"Model '{name}' has no version {selector} ({_version_list(info)}).")


def show_model(ref: str, *, tracking_uri: str | None = None) -> RegisteredModelInfo:
    """A registered model and its versions; ``NAME@alias`` or ``NAME/3`` narrows to one version.

    Raises
    ------
    ModelNotFoundError
        Unknown name, version or alias (the message lists what exists).
    """
    name, selector = parse_name_selector(ref)
    uri = resolve_tracking_uri(tracking_uri)
    with open_session(uri, create=False) as session:
        info = _model_info(_get_model(session, name), all_versions(session, name))
        if selector is not None:
            chosen = int(resolve_version(session, name, selector).version)
            info.versions = [v for v in info.versions if v.version == chosen]
    return info


def check_alias(alias: str) -> None:
    if not ALIAS_RE.match(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ParameterError(
            f"The alias must start with a letter and contain only letters, digits, '_' or '-', and cannot be "
            f"'latest' or look like a version ('v3'). Got {alias!r} instead."
        )


def promote(
    name: str, version: int, *, alias: str = DEFAULT_ALIAS, tracking_uri: str | None = None
) -> PromoteResult:
    """Point ``alias`` at ``version`` of ``name`` (``models:/name@alias`` then loads it).

    Promoting an older version is how a team rolls back.

    Raises
    ------
    ModelNotFoundError
        Unknown name or version (the message lists the versions that exist).
    ParameterError
        An alias MLflow does not allow.
    """
    check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    with open_session(uri, create=False) as session:
        mv = resolve_version(session, name, int(version))
        info = _model_info(_get_model(session, name), [])
        previous = info.aliases.get(alias)
        session.client.set_registered_model_alias(name, alias, str(mv.version))
    return PromoteResult(name=name, version=int(mv.version), alias=alias, previous=previous)
