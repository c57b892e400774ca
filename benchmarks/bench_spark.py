"""Spark local[2] against DuckDB, in the same run: scoring an event log and scoring a table.

Both engines run the same code: the features are one Ibis definition, the scores come from the
one chunked loop (``score_rows``), on DuckDB in-process and on Spark inside ``mapInPandas`` on the
executors, with the bundle broadcast once. Each measurement runs in a fresh process, so Spark's
figure **includes starting its session** (JVM and executors, ~10 s here) — what a user of
``propensity score --engine spark`` waits for on one machine. The ratio is DuckDB's time over
Spark's (>1 would mean Spark is faster).

- **events**: the demo's synthetic shop (20,000 customers, 365 days, seed 7; quick: 3,000
  customers, 120 days); a model trained once on DuckDB (LightGBM, two cutoffs), then
  ``score_events`` at the end of the data on each engine (validation, features, scores).
- **table**: 400,000 rows of the synthetic customer table (quick: 50,000) in one Parquet file,
  scored by ``score_file`` (DuckDB side: the chunked reader) and ``score_table_on_spark``.
- **scale_score**, **scale_features** (not in the default run): the same shop generator scaled to
  ~10M events (211,000 customers, 365 days, seed 7; quick: 40,000 customers), scored with the
  events part's model (``score_events``: validation, features, scores), and its features
  alone (``compute_features`` at the end of the data, written to Parquet).
- **scale50_score**, **scale50_features** (not in the default run): the same at ~50M events
  (1,055,000 customers).

On a 2-core machine Spark is expected to lose: both engines get the same two cores and Spark
pays for its JVM, serialisation to Python workers and a shuffle-free but multi-stage plan. Spark
wins when there are more cores than one machine holds (partitions × executors on a cluster).

    python -m benchmarks.bench_spark            # both parts
    python -m benchmarks.bench_spark --quick
    python -m benchmarks.bench_spark events     # one part: events, table, scale_score or scale_features
    python -m benchmarks.bench_spark scale_score scale_features    # the ~10M-event log (~25 min here)
    python -m benchmarks.bench_spark scale50_score scale50_features    # the ~50M-event log
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from benchmarks._common import WORK, Figure, guarded, isolated, main_with_parts, speed_ratio

QUICK = False  # a Spark session alone takes ~10 s, twice per part: not in the 5-minute quick set
COMMAND = "python -m benchmarks.bench_spark"
SEED = 7
SHOP = {"customers": 20_000, "days": 365}
QUICK_SHOP = {"customers": 3_000, "days": 120}
TABLE_ROWS, QUICK_TABLE_ROWS = 400_000, 50_000
FEATURES_AS_OF = "2024-12-31"  # the last day of the generated year (2024-01-01 + 365 days)
#: ~47 events per customer and year: 211,000 customers give ~10M events.
SCALE_SHOP, QUICK_SCALE_SHOP = {"customers": 211_000, "days": 365}, {"customers": 40_000, "days": 365}
#: ~50M events: five times the customers of :data:`SCALE_SHOP` (``scale50_score``, ``scale50_features``).
SCALE50_SHOP = {"customers": 1_055_000, "days": 365}
BASELINE = "DuckDB in-process, same code and data, same run"


def _spark_ready() -> str | None:
    """Why Spark cannot run here, or ``None``."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed"
    if shutil.which("java") is None:
        return "no Java runtime on PATH"
    return None


def _score_events(model: str, log: str, out: str, engine: str) -> dict:
    from propensity.workflows.events import score_events

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return score_events(model, log, out, engine=engine).to_dict()


def _features(log: str, out: str, engine: str) -> dict:
    from propensity.workflows.events import compute_features

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    _, summary = compute_features(log, FEATURES_AS_OF, out=out, engine=engine)
    return {**summary.to_dict(), "rows": summary.customers}


def _score_table(model: str, table: str, out: str, engine: str) -> dict:
    if engine == "spark":
        from propensity.workflows.spark import score_table_on_spark

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        return score_table_on_spark(model, table, out).to_dict()
    from propensity.workflows.scoring import score_file

    return score_file(model, table, out).to_dict()


def _clear(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _compare(name: str, fn, args: tuple[str, ...], out: Path, params: dict, command: str, rows_key: str):
    times, results = {}, {}
    for engine in ("duckdb", "spark"):
        target = out.with_name(f"{out.stem}_{engine}.parquet")
        _clear(target)
        start = time.perf_counter()
        results[engine], _, _ = isolated(fn, *args, str(target), engine)
        times[engine] = time.perf_counter() - start
    rows = results["spark"][rows_key]
    same = results["spark"][rows_key] == results["duckdb"][rows_key]
    agree = _agreement(
        out.with_name(f"{out.stem}_duckdb.parquet"), out.with_name(f"{out.stem}_spark.parquet")
    )
    return [
        Figure(
            f"{name}_spark_seconds",
            round(times["spark"], 2),
            "s",
            "lower",
            baseline=round(times["duckdb"], 2),
            baseline_name=BASELINE,
            ratio=round(speed_ratio(times["spark"], times["duckdb"], "lower"), 3),
            note=f"{rows:,} rows {'scored' if 'score' in name else 'of features'} on both (same count: {same}); {agree}; "
            "Spark time includes its session start in a fresh process; ratio = DuckDB seconds / Spark seconds "
            "(>1: Spark faster)",
            params={**params, "spark_master": "local[2]"},
            command=command,
        )
    ]


def _agreement(duck: Path, spark: Path, key: str = "customer_id") -> str:
    """How the two outputs (a file or a folder of part files each) agree, row by row on ``key``.

    Numeric columns: the largest absolute difference; other columns: how many values differ.
    Run in DuckDB on the files, so a million-row table is never held in Python.
    """
    import duckdb

    def scan(path: Path) -> str:
        return f"read_parquet('{path / '**' / '*.parquet' if path.is_dir() else path}', union_by_name=true)"

    con = duckdb.connect()
    a = con.sql(f"select * from {scan(duck)} limit 0")
    b = {c for c in con.sql(f"select * from {scan(spark)} limit 0").columns}
    if key not in a.columns or key not in b:
        return f"not compared (no {key} column)"
    skip = {key, "scored_at", "_file", "_row_index"}
    numeric, other = [], []
    for col, kind in zip(a.columns, a.types, strict=True):
        if col in skip or col not in b:
            continue
        (
            numeric
            if str(kind) in {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT"}
            or str(kind).startswith("DECIMAL")
            else other
        ).append(col)
    parts = [f'coalesce(max(abs(a."{c}" - b."{c}")), 0)' for c in numeric] or ["0"]
    flips = [f'count(*) filter (where a."{c}" is distinct from b."{c}")' for c in other] or ["0"]
    row = con.execute(
        f"select count(*), count(b.{key}), greatest({', '.join(parts)}), {' + '.join(flips)} "
        f"from {scan(duck)} a left join {scan(spark)} b using ({key})"
    ).fetchall()[0]
    con.close()
    total, matched, worst, differ = row
    return (
        f"values compared on {key}: {matched:,} of {total:,} DuckDB rows found on Spark, largest difference over "
        f"{len(numeric)} numeric columns {worst:.3g}, differing values in {len(other)} other columns: {differ:,}"
    )


def _shop(shop: dict[str, int]) -> tuple[Path, dict]:
    """The demo shop's event log at this size (generated once), and its parameters."""
    import pyarrow.parquet as pq

    from propensity.datasets import generate_shop

    folder = WORK / f"spark_shop_{shop['customers']}_{shop['days']}"
    meta = folder / "shop.json"
    if not meta.exists() or json.loads(meta.read_text()).get("customers") != shop["customers"]:
        generate_shop(shop["customers"], days=shop["days"], seed=SEED, out=folder)
    log = folder / "events.parquet"
    return log, {**shop, "seed": SEED, "events": pq.ParquetFile(log).metadata.num_rows}


def _event_model(quick: bool) -> Path:
    """The events part's model (LightGBM, two cutoffs), trained once on DuckDB."""
    from propensity.workflows.events import train_from_events

    log, _ = _shop(QUICK_SHOP if quick else SHOP)
    model = log.parent / "model"
    if not (model / "manifest.json").exists():
        train_from_events(log, horizon_days=30, cutoffs=2, out=model, candidates=["lightgbm"], seed=SEED)
    return model


def events(quick: bool) -> list[Figure]:
    log, params = _shop(QUICK_SHOP if quick else SHOP)
    model = _event_model(quick)
    command = COMMAND + (" --quick" if quick else "") + " events"
    return _compare(
        "events_score",
        _score_events,
        (str(model), str(log)),
        log.parent / "scores",
        params,
        command,
        "scored",
    )


def _scale_score(name: str, shop: dict[str, int], quick: bool) -> list[Figure]:
    log, params = _shop(shop)
    model = _event_model(quick)
    command = COMMAND + (" --quick" if quick else "") + f" {name}"
    return _compare(
        name, _score_events, (str(model), str(log)), log.parent / "scores", params, command, "scored"
    )


def _scale_features(name: str, shop: dict[str, int], quick: bool) -> list[Figure]:
    log, params = _shop(shop)
    command = COMMAND + (" --quick" if quick else "") + f" {name}"
    return _compare(name, _features, (str(log),), log.parent / "features", params, command, "rows")


def scale_score(quick: bool) -> list[Figure]:
    return _scale_score("scale_score", QUICK_SCALE_SHOP if quick else SCALE_SHOP, quick)


def scale_features(quick: bool) -> list[Figure]:
    return _scale_features("scale_features", QUICK_SCALE_SHOP if quick else SCALE_SHOP, quick)


def scale50_score(quick: bool) -> list[Figure]:
    return _scale_score("scale50_score", QUICK_SCALE_SHOP if quick else SCALE50_SHOP, quick)


def scale50_features(quick: bool) -> list[Figure]:
    return _scale_features("scale50_features", QUICK_SCALE_SHOP if quick else SCALE50_SHOP, quick)


def table(quick: bool) -> list[Figure]:
    import propensity
    from propensity.datasets import make_customer_table

    rows = QUICK_TABLE_ROWS if quick else TABLE_ROWS
    folder = WORK / f"spark_table_{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "customers.parquet"
    model = folder / "model"
    if not data.exists():
        frame = make_customer_table(rows, seed=SEED)
        frame.drop(columns="purchased").to_parquet(data, index=False)
        if not (model / "manifest.json").exists():
            propensity.train(
                frame.head(20_000), target="purchased", out=model, candidates=["lightgbm"], seed=SEED
            )
    params = {"rows": rows, "seed": SEED}
    command = COMMAND + (" --quick" if quick else "") + " table"
    return _compare(
        "table_score",
        _score_table,
        (str(model), str(data)),
        folder / "scores",
        params,
        command,
        "rows_scored",
    )


def run(quick: bool, only: set[str] | None = None) -> list[Figure]:
    why = _spark_ready()
    if why:
        return [Figure("skipped", None, "", "higher", note=f"Spark unavailable: {why}")]
    figures: list[Figure] = []
    parts = (
        ("events", events),
        ("table", table),
        ("scale_score", scale_score),
        ("scale_features", scale_features),
        ("scale50_score", scale50_score),
        ("scale50_features", scale50_features),
    )
    for name, part in parts:
        # the ~10M- and ~50M-event parts take long (~25 minutes for the 10M pair here): only when named
        if (only is None and not name.startswith("scale")) or (only is not None and name in only):
            figures += guarded(
                name, COMMAND + (" --quick" if quick else "") + f" {name}", lambda p=part: p(quick)
            )
    return figures


if __name__ == "__main__":
    main_with_parts("spark", run)
