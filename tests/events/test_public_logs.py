"""The three public logs load with only a mapping file (examples/mappings), no dataset-specific code."""

from __future__ import annotations

from pathlib import Path

import pytest

from propensity.events.validate import validate_events
from propensity.workflows.events import train_from_events
from tests.conftest import ROOT, shared_file

MAPPINGS = ROOT / "examples" / "mappings"
pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.mark.parametrize(
    ("parts", "mapping", "rows", "missing_customer", "customers"),
    [
        (("online_retail", "online_retail.csv.gz"), "online_retail.yaml", 541_909, 135_080, 4_372),
        (("online_retail", "online_retail.parquet"), "online_retail.yaml", 541_909, 135_080, 4_372),
        (
            ("online_retail_ii_2009_2010", "online_retail_ii_2009_2010.parquet"),
            "online_retail_ii.yaml",
            525_461,
            107_927,
            4_383,
        ),
    ],
)
def test_order_logs_validate_with_a_mapping(tmp_path, parts, mapping, rows, missing_customer, customers):
    report = validate_events(shared_file(*parts), MAPPINGS / mapping, out=tmp_path)
    # the published facts of the data sets (see SOURCE.md)
    assert report.rows_in == rows == report.rows_ok + report.rows_quarantined
    assert report.reasons["missing customer id"] == missing_customer
    assert report.customers == customers
    assert report.order_log and set(report.event_types) == {"purchase", "return"}
    assert report.event_types["return"] > 5_000  # the C-invoices with a customer id
    assert report.reasons.get("exact duplicate event", 0) > 0
    assert report.sessions.startswith("derived")
    assert (Path(tmp_path) / "quarantine.csv").exists()


def test_clickstream_validates_with_a_mapping(tmp_path):
    report = validate_events(
        shared_file("retentioneering_simple_shop", "simple-onlineshop.csv.gz"),
        MAPPINGS / "retentioneering_simple_shop.yaml",
        out=tmp_path,
    )
    assert report.rows_in == 32_283 == report.rows_ok + report.rows_quarantined
    assert report.customers == 3_751 and report.event_types["purchase"] == 706
    assert report.unknown_event_names == {}
    assert report.sessions == "derived (30-minute inactivity gap)"


def test_a_model_learns_repeat_purchases_from_the_online_retail_log(tmp_path):
    model = train_from_events(
        shared_file("online_retail", "online_retail.parquet"),
        mapping=MAPPINGS / "online_retail.yaml",
        horizon_days=30,
        cutoffs=4,
        candidates=["lightgbm"],
        seed=1,
        out=tmp_path / "m",
    ).model
    test = model.manifest.metrics["test"]
    assert 0.7 < test["roc_auc"] < 0.97
    assert model.manifest.events.data.reasons["missing customer id"] == 135_080
