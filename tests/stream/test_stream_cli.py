"""`propensity replay` and `propensity stream`: the CLI's own answers (the processes run in test_stream.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from propensity.cli import app
from propensity.workflows.store import EventStore
from tests.stream._helpers import batch_validation


def test_replay_sends_the_log_and_prints_a_summary(broker_server, stream_log):
    result = CliRunner().invoke(app, ["replay", str(stream_log), "--to", broker_server.url, "--stream", "ev"])
    assert result.exit_code == 0, result.output
    assert "Sent 3,054 events to 'ev'" in result.output
    assert len(broker_server.records("ev")) == 3054


@pytest.mark.kafka
def test_replay_to_kafka_then_stream_from_it(tansu_server, stream_model, stream_log, tmp_path):
    runner = CliRunner()
    sent = runner.invoke(app, ["replay", str(stream_log), "--to", tansu_server.url, "--stream", "ev"])
    assert sent.exit_code == 0, sent.output
    store = tmp_path / "live.db"
    args = ["stream", str(stream_model), "--source", tansu_server.url, "--stream", "ev", "--group", "g"]
    args += ["--out-stream", "ev-scores", "--store", str(store), "--batch", "1000", "--block-ms", "2000"]
    args += ["--claim-idle-ms", "2000", "--max-batches", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    rows_ok, refused = batch_validation(stream_log)
    assert (summary["events"], summary["new"], summary["dead"]) == (3054, rows_ok, refused)
    assert tansu_server.backlog("ev", "g") == 0  # every offset committed
    dead = tansu_server.records("ev-dead")
    assert len(dead) == refused and all(d["_reason"] and d["_id"] for d in dead)
    assert len(tansu_server.records("ev-scores")) == summary["scored"]
    with EventStore(store, readonly=True) as live:
        assert live.event_count() == rows_ok


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://localhost:1", "redis://127.0.0.1:6379/0"),
        ("kafka://127.0.0.1", "kafka://127.0.0.1:9092"),
        ("kafka://:9092", "kafka://127.0.0.1:9092"),
    ],
)
def test_a_url_of_no_known_broker_is_one_line_and_exit_2(stream_log, url, said):
    result = CliRunner().invoke(app, ["replay", str(stream_log), "--to", url])
    assert result.exit_code == 2 and said in result.output
    assert "Traceback" not in result.output


@pytest.mark.kafka
def test_an_unreachable_kafka_broker_is_one_line_and_exit_2(stream_log, stream_model, tmp_path, monkeypatch):
    pytest.importorskip("confluent_kafka")
    from propensity.stream import kafka
    from tests.conftest import _free_port

    monkeypatch.setattr(kafka, "CONNECT_TIMEOUT", 1.0)
    url = f"kafka://127.0.0.1:{_free_port()}"
    for args in (
        ["replay", str(stream_log), "--to", url],
        ["stream", str(stream_model), "--source", url, "--store", str(tmp_path / "live.db")],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"Cannot reach the Kafka broker at {url}" in result.output and "Traceback" not in result.output


def test_a_table_model_cannot_be_streamed(trained_result, tmp_path):
    _, bundle = trained_result
    result = CliRunner().invoke(app, ["stream", str(bundle), "--store", str(tmp_path / "live.db")])
    assert result.exit_code == 2 and "trained on a table" in result.output
