"""Reading logs through a mapping, validation, quarantine — and bad input, each with its own test."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from propensity.errors import DataError, InsufficientDataError, SchemaError
from propensity.events.mapping import load_mapping, mapping_from_options
from propensity.events.validate import REASONS, load_events, validate_events
from tests.features.fixtures import hand_log

EXPORT = "2030-01-01"


def report_of(frame: pd.DataFrame, mapping=None, **kw):
    with load_events(
        frame, mapping, export_time=kw.pop("export_time", EXPORT), require_rows=False, **kw
    ) as log:
        return log.report, log.engine.execute(log.events).sort_values(["customer_id", "ts"]).reset_index(
            drop=True
        )


def test_one_reason_per_bad_row_and_the_counts_add_up(tmp_path):
    raw = pd.DataFrame(
        {
            "customer_id": ["a", None, "b", "c", "d", "e", "e", "e", "f", "g", " ", "h"],
            "ts": [
                "2024-01-01 10:00:00",
                "2024-01-01 10:00:00",
                "not a date",
                "2024-01-02 10:00:00",
                "2024-01-02 10:00:00",
                "2024-01-03 10:00:00",
                "2024-01-03 10:00:00",
                "2024-01-03 10:00:00",
                "2031-05-01 00:00:00",
                None,
                "2024-01-04 00:00:00",
                "2024-01-05 00:00:00",
            ],
            "event_type": [
                "view",
                "view",
                "view",
                "dance",
                "purchase",
                "view",
                "view",
                "view",
                "view",
                "view",
                "view",
                None,
            ],
            "amount": ["", "", "", "", "-5", "", "", "", "", "", "", ""],
        }
    )
    report, clean = report_of(raw, export_time="2030-01-01")
    assert report.rows_in == 12 == report.rows_ok + report.rows_quarantined
    assert report.reasons == {
        "missing customer id": 2,  # None and a blank
        "missing timestamp": 1,
        "unparseable timestamp": 1,
        "missing event type": 1,
        "unknown event type": 1,
        "negative amount on a non-return": 1,
        "timestamp after the end of the data": 1,
        "exact duplicate event": 2,  # three identical rows of e: one kept
    }
    assert list(report.reasons) == [r for r in REASONS if r in report.reasons]  # rule order
    assert report.rows_ok == 2 and sorted(clean["customer_id"]) == ["a", "e"]
    assert report.unknown_event_names == {"dance": 1}
    assert any("dance (1)" in note for note in report.notes)
    out = tmp_path / "q.csv"
    with load_events(raw, export_time="2030-01-01", quarantine=out):
        pass
    q = pd.read_csv(out)
    assert q["rows"].sum() == report.rows_quarantined  # the file accounts for every quarantined row
    assert set(q.columns[:4]) == {"reason", "column", "value", "rows"} and "event_type" in q.columns
    row = q[q["reason"] == "unparseable timestamp"].iloc[0]
    assert (row["column"], row["value"]) == ("ts", "not a date")


def test_mixed_time_zones_are_converted_to_utc_and_reported():
    raw = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a"],
            "ts": [
                "2024-06-01T12:00:00+02:00",
                "2024-06-01 10:00:01Z",
                "2024-06-01 10:00:02",
                "2024-06-01T05:00:03-05:00",
            ],
            "event_type": ["view"] * 4,
        }
    )
    report, clean = report_of(raw)
    assert list(clean["ts"]) == [
        pd.Timestamp("2024-06-01 10:00:00") + pd.Timedelta(seconds=i) for i in range(4)
    ]
    assert (report.timestamps_with_offset, report.timestamps_read_in_zone) == (3, 1)
    assert any("Mixed time zones" in n for n in report.notes)

    # naive times in a named zone: 12:00 in Berlin summer time is 10:00 UTC; offsets still win
    def times(*hms: str) -> list[pd.Timestamp]:
        return [pd.Timestamp(f"2024-06-01 {t}") for t in hms]

    _, clean = report_of(raw, {"timezone": "Europe/Berlin"})
    assert list(clean["ts"]) == times("08:00:02", "10:00:00", "10:00:01", "10:00:03")
    _, fixed = report_of(raw, {"timezone": "+01:00"})
    assert list(fixed["ts"]) == times("09:00:02", "10:00:00", "10:00:01", "10:00:03")


def test_a_mapping_naming_a_missing_column_says_which_and_suggests():
    raw = pd.DataFrame({"CustomerID": ["1"], "InvoiceDate": ["2024-01-01"], "event": ["purchase"]})
    with pytest.raises(SchemaError, match=r"'CustomrID' for 'customer_id'.*Did you mean 'CustomerID'"):
        load_events(raw, {"columns": {"customer_id": "CustomrID", "ts": "InvoiceDate"}})
    with pytest.raises(SchemaError, match="returns rule names column 'Invoice'"):
        load_events(
            raw,
            {
                "columns": {"customer_id": "CustomerID", "ts": "InvoiceDate"},
                "order_log": True,
                "returns": {"column": "Invoice", "prefix": "C"},
            },
        )
    with pytest.raises(SchemaError, match="No column for 'ts'"):
        load_events(pd.DataFrame({"user_id": ["1"], "event": ["view"]}))
    with pytest.raises(SchemaError, match="order_log: true"):
        load_events(pd.DataFrame({"user_id": ["1"], "timestamp": ["2024-01-01"]}))


def test_all_rows_quarantined_is_refused_with_the_reasons(tmp_path):
    raw = pd.DataFrame(
        {
            "user_id": ["1", "2"],
            "timestamp": ["31/01/2024 10:00", "01/02/2024 11:00"],
            "event": ["view", "view"],
        }
    )
    with pytest.raises(
        InsufficientDataError, match=r"Every one of the 2 rows .*\(unparseable timestamp: 2\)"
    ):
        load_events(raw, quarantine=tmp_path / "q.csv")
    assert len(pd.read_csv(tmp_path / "q.csv")) == 2
    report = validate_events(raw, out=tmp_path / "v")  # the report itself is still written
    assert (
        report.rows_ok == 0
        and json.loads((tmp_path / "v" / "validation.json").read_text())["rows_quarantined"] == 2
    )
    # the same file reads with the right format
    report, clean = report_of(raw, {"timestamp_format": "%d/%m/%Y %H:%M"})
    assert report.rows_ok == 2 and clean["ts"].iloc[1] == pd.Timestamp("2024-02-01 11:00")


def test_no_purchase_events_is_reported_as_nothing_to_predict():
    raw = hand_log()
    raw = raw[raw["event_type"] != "purchase"]
    report, _ = report_of(raw)
    assert not report.has_purchases
    assert any("nothing to predict" in n for n in report.notes)


def test_order_log_with_cancellations_and_numeric_ids(tmp_path):
    raw = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536365", "C536379", "536380", "536381"],
            "Quantity": [6, 2, -1, 3, -2],
            "InvoiceDate": pd.to_datetime(
                [
                    "2010-12-01 08:26",
                    "2010-12-01 08:26",
                    "2010-12-01 09:41",
                    "2010-12-02 10:00",
                    "2010-12-03 10:00",
                ]
            ),
            "UnitPrice": [2.55, 3.39, 27.5, 1.0, 4.0],
            "CustomerID": [17850.0, 17850.0, 14527.0, None, 14527.0],
        }
    )
    mapping = {
        "columns": {
            "customer_id": "CustomerID",
            "ts": "InvoiceDate",
            "order_id": "InvoiceNo",
            "quantity": "Quantity",
            "price": "UnitPrice",
        },
        "order_log": True,
        "returns": {"column": "InvoiceNo", "prefix": "C"},
    }
    report, clean = report_of(raw, mapping)
    assert report.reasons == {"missing customer id": 1, "negative amount on a non-return": 1}
    assert sorted(clean["customer_id"].unique()) == ["14527", "17850"]  # 17850.0 is the id 17850
    assert clean["event_type"].tolist() == ["return", "purchase", "purchase"]
    assert sorted(clean["amount"]) == pytest.approx([-27.5, 6.78, 15.3])
    assert clean["order_id"].tolist() == ["C536379", "536365", "536365"]
    # sessions were derived: the two lines of one invoice share a session
    assert clean["session_id"].iloc[1] == clean["session_id"].iloc[2]


def test_event_names_are_mapped_case_insensitively_and_others_kept_or_quarantined():
    raw = pd.DataFrame(
        {
            "uid": ["1"] * 5,
            "time": [f"2024-01-01 10:0{i}:00" for i in range(5)],
            "action": ["Catalog", "cart", " payment_done ", "search", "odd"],
        }
    )
    mapping = {
        "columns": {"customer_id": "uid", "ts": "time", "event_type": "action"},
        "events": {"view": ["catalog"], "add_to_cart": "cart", "purchase": ["PAYMENT_DONE"]},
        "other_events": ["search"],
    }
    report, clean = report_of(raw, mapping)
    assert clean["event_type"].tolist() == ["view", "add_to_cart", "purchase", "search"]
    assert report.reasons == {"unknown event type": 1}
    report, clean = report_of(raw, {**mapping, "keep_unmapped_events": True})
    assert clean["event_type"].tolist()[-1] == "odd" and report.rows_quarantined == 0


def test_mapping_files_and_flags(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "columns: {customer_id: user, ts: when}\nevents: {purchase: [buy, order]}\ntimezone: Europe/Berlin\n"
    )
    m = load_mapping(path)
    assert m.columns == {"customer_id": "user", "ts": "when"} and m.event_lookup()["order"] == "purchase"
    merged = mapping_from_options(
        path, columns=["event_type=what"], events=["view=seen,looked"], session_gap_minutes=45
    )
    assert merged.columns["event_type"] == "what" and merged.events["view"] == ["seen", "looked"]
    assert merged.session_gap_minutes == 45 and merged.timezone == "Europe/Berlin"
    path.write_text("columns: {customer: user}\n")
    with pytest.raises(DataError, match="unknown canonical column"):
        load_mapping(path)
    path.write_text("events: {buy: [x]}\n")
    with pytest.raises(DataError, match="unknown canonical event"):
        load_mapping(path)
    path.write_text("columns: [")
    with pytest.raises(DataError, match="not valid YAML"):
        load_mapping(path)
    with pytest.raises(DataError, match="--map expects"):
        mapping_from_options(columns=["customer_id"])
    with pytest.raises(DataError, match="timezone"):
        mapping_from_options(timezone="Mars/Olympus")
    with pytest.raises(DataError, match="both 'view' and 'purchase'"):
        mapping_from_options(events=["view=x", "purchase=X"])


def test_validate_writes_canonical_events_quarantine_and_report(tmp_path, small_shop):
    truth = json.loads((small_shop / "shop.json").read_text())
    report = validate_events(small_shop / "events.parquet", out=tmp_path / "v")
    assert report.rows_in == truth["events"]
    # the generator's planted dirt is found exactly
    expected = {
        "missing customer id": truth["dirty"]["missing_customer"],
        "unparseable timestamp": truth["dirty"]["bad_timestamp"],
        "unknown event type": truth["dirty"]["unknown_event_type"],
        "negative amount on a non-return": truth["dirty"]["negative_amount"],
        "timestamp after the end of the data": truth["dirty"]["future_timestamp"],
        "exact duplicate event": truth["dirty"]["duplicate"],
    }
    assert report.reasons == {k: v for k, v in expected.items() if v}
    assert report.rows_ok == truth["clean_events"]
    clean = pd.read_parquet(tmp_path / "v" / "events.parquet")
    assert len(clean) == report.rows_ok and list(clean.columns)[:3] == ["customer_id", "ts", "event_type"]
    assert clean["ts"].max() < pd.Timestamp(truth["end"])
    assert report.timestamps_with_offset > 0  # ~1 % of the shop's timestamps carry +01:00
    assert pd.read_csv(tmp_path / "v" / "quarantine.csv")["rows"].sum() == report.rows_quarantined
    assert json.loads((tmp_path / "v" / "validation.json").read_text())["rows_ok"] == report.rows_ok


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="File not found"):
        load_events(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no rows"):
        load_events(pd.DataFrame())
