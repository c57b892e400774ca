"""The Streamlit dashboard: behaviour analytics, model quality, explanations, targeting, scoring and
live scores.

``propensity dashboard [--model MODEL] [--events EVENTS] [--clv CLV] [--store STORE]`` runs ``streamlit run`` on
:func:`app_path` and tells the app what to show through the environment (so Streamlit's own
test harness, ``AppTest``, can set the same variables):

- ``PROPENSITY_DASHBOARD_MODEL`` — a bundle folder or ``models:/`` URI (empty: no model);
- ``PROPENSITY_DASHBOARD_EVENTS`` — a raw event or order log (empty: no log);
- ``PROPENSITY_DASHBOARD_CLV`` — a lifetime-value bundle of ``propensity clv`` (folder or
  ``models:/`` URI; empty: none): the log's customers get P(alive) and CLV, the Behaviour page
  shows them by RFM segment and the Target page can rank by probability × CLV;
- ``PROPENSITY_DASHBOARD_STORE`` — the live store kept current by ``propensity stream``
  (empty: none): the Live page shows its latest scores, read-only, refreshed while it is open;
- ``PROPENSITY_DASHBOARD_CACHE`` — where the validated log and the scored customers are kept
  between runs (default: ``<PROPENSITY_HOME>/dashboard/<hash of the log's path>``).

Nothing here imports Streamlit: the app and its pages (``app.py``, ``views/``) do, when run.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from propensity.errors import ParameterError

__all__ = [
    "CACHE_ENV",
    "CLV_ENV",
    "EVENTS_ENV",
    "MODEL_ENV",
    "STORE_ENV",
    "DashboardSources",
    "app_path",
    "cache_dir",
    "demo_sources",
    "resolve_sources",
    "sources_from_env",
    "streamlit_command",
]

MODEL_ENV = "PROPENSITY_DASHBOARD_MODEL"
EVENTS_ENV = "PROPENSITY_DASHBOARD_EVENTS"
CACHE_ENV = "PROPENSITY_DASHBOARD_CACHE"
CLV_ENV = "PROPENSITY_DASHBOARD_CLV"
STORE_ENV = "PROPENSITY_DASHBOARD_STORE"
#: Where ``propensity demo`` (``make demo``) writes its outputs, relative to the working directory.
DEMO_DIR = Path("demo")


@dataclass(frozen=True)
class DashboardSources:
    """What the dashboard shows: a model reference and/or a raw event log, its cache folder,
    optionally a lifetime-value bundle and a live store."""

    model: str | None
    events: str | None
    cache: Path
    clv: str | None = None
    store: str | None = None

    def environ(self) -> dict[str, str]:
        """The environment variables that hand these sources to the app."""
        return {
            MODEL_ENV: self.model or "",
            EVENTS_ENV: self.events or "",
            CACHE_ENV: str(self.cache),
            CLV_ENV: self.clv or "",
            STORE_ENV: self.store or "",
        }


def app_path() -> Path:
    """The Streamlit script (``streamlit run`` this file)."""
    return Path(__file__).with_name("app.py")


def cache_dir(events: str | None) -> Path:
    """Default cache folder for a log: ``<PROPENSITY_HOME>/dashboard/<12 hex of its resolved path>``."""
    from propensity.config import get_settings

    key = hashlib.sha256(str(Path(events).resolve()).encode()).hexdigest()[:12] if events else "no-events"
    return get_settings().home.resolve() / "dashboard" / key


def demo_sources(folder: Path = DEMO_DIR) -> tuple[str | None, str | None]:
    """The demo's model bundle and event log when ``propensity demo`` has written them (else ``None``)."""
    model, events = folder / "model", folder / "shop" / "events.parquet"
    return (
        str(model) if (model / "manifest.json").exists() else None,
        str(events) if events.exists() else None,
    )


def sources_from_env() -> DashboardSources:
    """The sources the app was started with (see the module docstring)."""
    model = os.environ.get(MODEL_ENV, "").strip() or None
    events = os.environ.get(EVENTS_ENV, "").strip() or None
    cache = os.environ.get(CACHE_ENV, "").strip()
    clv = os.environ.get(CLV_ENV, "").strip() or None
    store = os.environ.get(STORE_ENV, "").strip() or None
    return DashboardSources(model, events, Path(cache) if cache else cache_dir(events), clv, store)


def resolve_sources(
    model: str | None,
    events: str | None,
    *,
    cache: Path | None = None,
    clv: str | None = None,
    store: str | None = None,
) -> DashboardSources:
    """Check the paths given on the command line; without a model, a log or a live store, use the
    demo's outputs.

    Raises
    ------
    ParameterError
        A given path does not exist, nothing was given and the demo outputs are missing (the
        message says to run ``make demo``), or ``clv`` is not a lifetime-value bundle or comes
        without an event log.
    """
    if store is not None and not Path(store).exists():
        raise ParameterError(
            f"The live store '{store}' does not exist: start `propensity stream MODEL ... --store {store}` first."
        )
    if model is None and events is None and store is None:
        model, events = demo_sources()
        if model is None and events is None:
            raise ParameterError(
                f"Nothing to show: no --model or --events given, and the demo's outputs are not in "
                f"'{DEMO_DIR.resolve()}'. Run `make demo` (or `propensity demo`) first, or pass "
                "--model MODEL and/or --events EVENTS."
            )
    if model is not None and not model.startswith("models:/") and not Path(model).exists():
        raise ParameterError(f"The model '{model}' does not exist (a bundle folder or a models:/ URI).")
    if events is not None and not Path(events).exists():
        raise ParameterError(f"The event log '{events}' does not exist.")
    if clv is not None:
        _check_clv(clv, events)
    return DashboardSources(model, events, cache or cache_dir(events), clv, store)


def _check_clv(clv: str, events: str | None) -> None:
    from propensity.bundle import is_clv_bundle

    if events is None:
        raise ParameterError("--clv needs an event log (--events) whose customers it scores.")
    if clv.startswith("models:/"):
        return
    if not Path(clv).exists():
        raise ParameterError(
            f"The lifetime-value bundle '{clv}' does not exist (run `propensity clv` first)."
        )
    if not is_clv_bundle(clv):
        raise ParameterError(
            f"'{clv}' is not a lifetime-value bundle (`propensity clv LOG --out FOLDER` writes one); "
            "a propensity model goes to --model."
        )


def streamlit_command(port: int) -> list[str]:
    """``streamlit run`` of the app on 127.0.0.1:``port``: headless, no telemetry, no "Deploy" button."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",  # a shop's own dashboard, not a Streamlit Cloud app
    ]
