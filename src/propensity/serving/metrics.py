"""Prometheus metrics of the scoring service, in a registry of its own.

With ``--workers N`` every worker writes its values to ``PROMETHEUS_MULTIPROC_DIR`` (set by
``propensity serve``) and ``/metrics`` aggregates all workers, whichever one answers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from propensity.monitoring.live import LiveSnapshot

__all__ = ["ServiceMetrics"]

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
BATCH_BUCKETS = (1, 10, 50, 100, 500, 1_000, 2_500, 5_000, 10_000, 50_000)


class ServiceMetrics:
    """Request counts and latencies by route and status, scores, decisions and validation failures."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "propensity_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "propensity_http_request_duration_seconds",
            "Time from the request's arrival to its response, by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scores = Histogram(
            "propensity_prediction_probability",
            "Predicted probabilities served.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "propensity_decisions", "Served decisions by decision and band.", ["decision", "band"], registry=r
        )
        self.validation_failures = Counter(
            "propensity_validation_failures",
            "Rejected inputs by route, field and problem type.",
            ["route", "field", "type"],
            registry=r,
        )
        self.unknown_categories = Counter(
            "propensity_unknown_categories",
            "Categories not seen in training, by field (scored as 'other').",
            ["field"],
            registry=r,
        )
        self.batch_records = Histogram(
            "propensity_batch_records",
            "Records per /predict/batch request.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "propensity_model_reloads", "Model reloads by outcome.", ["outcome"], registry=r
        )
        gauge_kw: dict[str, Any] = {"multiprocess_mode": "liveall"} if self.multiprocess_dir else {}
        self.model_info = Gauge(
            "propensity_model_info",
            "The model being served (value 1).",
            ["model_version", "winner", "target"],
            registry=r,
            **gauge_kw,
        )
        self.drift_records = Gauge(
            "propensity_drift_window_records",
            "Scored records in the live drift window.",
            registry=r,
            **gauge_kw,
        )
        self.drift_status = Gauge(
            "propensity_drift_status",
            "Worst drift status of the window: -1 not tested (too few records), 0 green, 1 amber, 2 red.",
            registry=r,
            **gauge_kw,
        )
        self.feature_psi = Gauge(
            "propensity_feature_psi",
            "Population stability index of each feature in the window against its training profile.",
            ["feature"],
            registry=r,
            **gauge_kw,
        )
        self.feature_status = Gauge(
            "propensity_feature_drift_status",
            "Drift status of each feature in the window (-1 not tested, 0 green, 1 amber, 2 red).",
            ["feature"],
            registry=r,
            **gauge_kw,
        )
        self.score_psi = Gauge(
            "propensity_score_psi",
            "Population stability index of the window's probabilities against the out-of-fold scores.",
            registry=r,
            **gauge_kw,
        )
        self.window_mean = Gauge(
            "propensity_score_mean_window", "Mean probability served in the window.", registry=r, **gauge_kw
        )
        self.window_decision_rate = Gauge(
            "propensity_decision_rate_window",
            "Share of the window at or above the threshold.",
            registry=r,
            **gauge_kw,
        )
        self.estimated_auc = Gauge(
            "propensity_estimated_roc_auc",
            "ROC-AUC the calibrated probabilities of the window imply (CBPE), without labels.",
            registry=r,
            **gauge_kw,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._decision_children: dict[tuple[bool, str], Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_prediction(self, probability: float, decision: bool, band: str) -> None:
        self.scores.observe(probability)
        key = (decision, band)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(
                "contact" if decision else "no_contact", band
            )
        child.inc()

    def set_model(self, version: str, winner: str, target: str) -> None:
        if not self.multiprocess_dir:  # a worker of several serves one model for its whole life
            self.model_info.clear()
        self.model_info.labels(version, winner, target).set(1)

    def set_drift(self, snapshot: LiveSnapshot) -> None:
        """The live drift gauges from a window's tests (NaN where a test did not run)."""
        nan = float("nan")
        self.drift_records.set(snapshot.rows)
        self.drift_status.set(STATUS_LEVEL[snapshot.status])
        for f in snapshot.features:
            self.feature_psi.labels(f.name).set(f.psi if f.psi is not None else nan)
            self.feature_status.labels(f.name).set(STATUS_LEVEL[f.status])
        score = snapshot.score
        self.score_psi.set(_number(score.get("psi")))
        self.window_mean.set(_number(score.get("mean")))
        self.window_decision_rate.set(_number(score.get("decision_rate")))
        self.estimated_auc.set(_number(score.get("estimated", {}).get("roc_auc")))

    def render(self) -> tuple[bytes, str]:
        """The exposition text (all workers' values in multiprocess mode) and its content type."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


#: Gauge value of a drift status.
STATUS_LEVEL = {"n/a": -1, "green": 0, "amber": 1, "red": 2}


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")
