from __future__ import annotations

import gzip

import pandas as pd
import pytest

from propensity.errors import DataError
from propensity.sources import TableWriter, iter_table, read_table, sniff_delimiter, table_columns


def test_semicolon_csv_is_detected_and_read(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b;c\n1;x;2.5\n2;y;3.5\n")
    assert sniff_delimiter(path) == ";"
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame["c"].tolist() == [2.5, 3.5]


def test_gzip_csv_with_crlf_and_true_false_just_works(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        fh.write("x,flag\r\n1,TRUE\r\n2,FALSE")
    frame = read_table(path)
    assert frame["flag"].tolist() == [True, False]


def test_empty_file_is_one_clear_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_table(path)


def test_header_only_file_is_one_clear_error(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,c\n")
    with pytest.raises(DataError, match="header .*no data rows"):
        read_table(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="File not found: .*nope.csv"):
        read_table(tmp_path / "nope.csv")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match="not supported"):
        read_table(path)


def test_ragged_csv_is_a_data_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match="Cannot parse"):
        read_table(path)


def test_iter_table_chunks_parquet_and_csv_agree(tmp_path):
    frame = pd.DataFrame({"id": range(1000), "v": [i * 0.5 for i in range(1000)], "s": ["a", "b"] * 500})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    pq_chunks = list(iter_table(tmp_path / "t.parquet", batch_rows=300))
    assert [len(c) for c in pq_chunks] == [300, 300, 300, 100]
    csv_all = pd.concat(
        iter_table(tmp_path / "t.csv", batch_rows=300, string_columns=["v"]), ignore_index=True
    )
    assert len(csv_all) == 1000
    assert csv_all["v"].iloc[3] == "1.5"  # read as text when asked, so bad cells can be quarantined later
    assert table_columns(tmp_path / "t.csv") == ["id", "v", "s"]


def test_table_writer_round_trips_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "p": [0.1, 0.9]})
    for name in ("o.csv", "o.parquet", "o.csv.gz"):
        with TableWriter(tmp_path / name) as writer:
            writer.write(frame)
            writer.write(frame)
        back = read_table(tmp_path / name)
        assert len(back) == 4 and back["p"].tolist() == [0.1, 0.9, 0.1, 0.9]


def test_prefetched_yields_in_order_raises_reader_errors_and_stops_when_abandoned():
    import threading

    from propensity.sources import prefetched

    assert list(prefetched(iter(range(5)))) == [0, 1, 2, 3, 4]

    def broken():
        yield 1
        raise DataError("chunk 2 is unreadable")

    got = []
    reader = prefetched(broken())
    got.append(next(reader))
    with pytest.raises(DataError, match="chunk 2"):
        next(reader)
    assert got == [1]

    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    for item in prefetched(endless()):
        if item == 2:
            break
    assert len(produced) <= 5, "the reader ran ahead by more than one chunk"
    assert not any(t.name == "propensity-prefetch" and t.is_alive() for t in threading.enumerate())


def test_header_names_with_control_characters_are_cleaned(tmp_path):
    # a NUL inside a UTF-16 header: DuckDB cut the name at it, and the quarantine's schema broke
    # (found by the CLI fuzz tests)
    from propensity.sources import renamed_header

    path = tmp_path / "log.csv"
    path.write_bytes("customer_id,~\x00x,~,\t\n1,2,3,4\n".encode("utf-16"))
    assert renamed_header(path) == ["customer_id", "~x", "~", "column_4"]
