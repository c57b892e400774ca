"""Live drift on /metrics: the gauges stay quiet on the training shop and move when the shop shifts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from propensity.datasets import make_customer_table
from propensity.serving import ServeSettings, create_app

from .conftest import HEADERS, KEY, records_of

WINDOW = 600


@pytest.fixture(scope="module")
def live_client(lgbm_bundle: Path):
    from fastapi.testclient import TestClient

    settings = ServeSettings(api_keys=KEY, max_batch_records=WINDOW, drift_window=WINDOW, drift_refresh=0)
    with TestClient(create_app(lgbm_bundle, settings), headers=HEADERS) as c:
        yield c


def gauges(client: Any) -> dict[str, float]:
    """The drift gauges of /metrics as ``{name or name{feature="x"}: value}``."""
    text = client.get("/metrics").text
    out = {}
    for line in text.splitlines():
        m = re.match(
            r"^(propensity_(?:drift|feature|score_psi|score_mean|decision_rate|estimated)\S*) (\S+)$", line
        )
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def send(client: Any, frame, model) -> None:
    response = client.post("/predict/batch", json={"records": records_of(frame, model)})
    assert response.status_code == 200, response.text


def test_gauges_are_not_tested_before_enough_records(live_client, lgbm_model):
    g = gauges(live_client)
    assert g["propensity_drift_window_records"] == 0  # the warm-up example is not traffic
    assert g["propensity_drift_status"] == -1
    send(live_client, make_customer_table(20, seed=5), lgbm_model)
    g = gauges(live_client)
    assert g["propensity_drift_window_records"] == 20 and g["propensity_drift_status"] == -1


def test_gauges_stay_green_on_the_training_shop_and_turn_red_when_it_shifts(live_client, lgbm_model):
    send(live_client, make_customer_table(WINDOW, seed=21), lgbm_model)
    calm = gauges(live_client)
    assert calm["propensity_drift_window_records"] == WINDOW
    assert calm["propensity_drift_status"] <= 1  # amber at most on 600 records
    assert calm['propensity_feature_psi{feature="device"}'] < 0.1
    assert calm["propensity_score_psi"] < 0.1
    assert 0.5 < calm["propensity_estimated_roc_auc"] <= 1

    # single records (the /predict path) feed the same window
    for record in records_of(
        make_customer_table(WINDOW, seed=22, engagement=2.0, mobile_share=0.9), lgbm_model
    ):
        assert live_client.post("/predict", json=record).status_code == 200
    shifted = gauges(live_client)
    assert shifted["propensity_drift_window_records"] == WINDOW  # the old records fell out
    assert shifted["propensity_drift_status"] == 2
    assert shifted['propensity_feature_drift_status{feature="device"}'] == 2
    assert shifted['propensity_feature_psi{feature="device"}'] > 0.25
    assert (
        shifted['propensity_feature_psi{feature="visits_30d"}']
        > calm['propensity_feature_psi{feature="visits_30d"}']
    )
    assert shifted["propensity_score_mean_window"] > calm["propensity_score_mean_window"]
    assert shifted['propensity_feature_drift_status{feature="country"}'] <= 1


def test_drift_gauges_can_be_turned_off(lgbm_bundle: Path):
    from fastapi.testclient import TestClient

    with TestClient(
        create_app(lgbm_bundle, ServeSettings(api_keys=KEY, drift_window=0)), headers=HEADERS
    ) as c:
        assert c.app.state.holder.scorer.live is None
        assert "propensity_drift_window_records 0.0" in c.get("/metrics").text
