"""`propensity replay` and `propensity stream`: the CLI's own answers (the processes run in test_stream.py)."""

from __future__ import annotations

from typer.testing import CliRunner

from propensity.cli import app
from propensity.stream.redis import connect


def test_replay_sends_the_log_and_prints_a_summary(redis_server, stream_log):
    result = CliRunner().invoke(app, ["replay", str(stream_log), "--to", redis_server.url, "--stream", "ev"])
    assert result.exit_code == 0, result.output
    assert "Sent 3,054 events to 'ev'" in result.output
    client = connect(redis_server.url)
    assert client.xlen("ev") == 3054
    client.close()


def test_a_url_that_is_not_redis_is_one_line_and_exit_2(stream_log):
    result = CliRunner().invoke(app, ["replay", str(stream_log), "--to", "http://localhost:1"])
    assert result.exit_code == 2 and "redis://127.0.0.1:6379/0" in result.output


def test_a_table_model_cannot_be_streamed(trained_result, tmp_path):
    _, bundle = trained_result
    result = CliRunner().invoke(app, ["stream", str(bundle), "--store", str(tmp_path / "live.db")])
    assert result.exit_code == 2 and "trained on a table" in result.output
