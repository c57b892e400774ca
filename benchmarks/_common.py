"""Helpers shared by the benchmarks: machine facts, isolated runs with peak memory, figures.

A benchmark module is ``benchmarks/bench_<name>.py`` with

- ``QUICK: bool`` — part of ``make bench-quick`` (the quick set must finish in 5 minutes);
- ``run(quick: bool) -> list[Figure]`` — measures and returns figures.

Each :class:`Figure` carries its value, unit, which direction is better, and — for speed —
a baseline measured *in the same run* and the ratio to it, so figures stay meaningful on a
shared, noisy machine. ``python -m benchmarks.bench_<name>`` runs one module alone and
prints its JSON; ``python -m benchmarks.run`` runs the suite and records the results.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# Benchmarks measure one stage at a time: MLflow tracking is off unless a benchmark turns it on
# (bench_tracking measures it), so no run leaves a .propensity/ store in the working directory.
os.environ.setdefault("PROPENSITY_TRACKING", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROPENSITY_SHARED_DATA", ROOT.parent / "shared" / "data"))
WORK = ROOT / "benchmarks" / ".work"


@dataclass
class Figure:
    """One measured number."""

    name: str
    value: float | None
    unit: str
    better: str  # "higher" or "lower"
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    target: float | None = None
    published: float | None = None
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    error: str | None = None  # set (and value None) when the measurement failed

    @property
    def meets_target(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["meets_target"] = self.meets_target
        return out


def guarded(name: str, command: str, measure: Callable[[], list[Figure]]) -> list[Figure]:
    """``measure()``, or — when it raises — one ``<name>_error`` figure carrying the exception.

    Lets a benchmark with several independent parts (data sets, logs) report the parts that
    worked when one fails; the traceback goes to stderr and the suite's exit code says so.
    """
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc()
        return [
            Figure(
                f"{name}_error",
                None,
                "",
                "higher",
                error=f"{type(exc).__name__}: {exc}",
                command=command,
            )
        ]


def speed_ratio(ours: float, baseline: float, better: str) -> float:
    """How many times better ours is than the baseline (>1 = ours is better)."""
    if not ours or not baseline:
        return float("nan")
    return baseline / ours if better == "lower" else ours / baseline


def shared(*parts: str) -> Path | None:
    """A public data file, or ``None`` when ../shared is absent (the benchmark then says so)."""
    path = SHARED.joinpath(*parts)
    return path if path.exists() else None


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and the versions that matter."""
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for pkg in (
        "propensity",
        "numpy",
        "pandas",
        "pyarrow",
        "duckdb",
        "scikit-learn",
        "lightgbm",
        "xgboost",
        "fastapi",
        "uvicorn",
        "mlflow",
        "pyspark",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "cpu": cpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
    }


def peak_rss_mib() -> float:
    """Peak resident memory of *this process's own address space*, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: the high-water mark of the current
    memory map, which starts afresh at ``exec``. ``ru_maxrss`` does not: the kernel carries it
    across ``exec``, so a spawned child (fork + exec) of a parent holding 2 GiB reports at least
    2 GiB whatever it allocates itself. Elsewhere ``ru_maxrss`` is the fallback (KiB on Linux and
    the BSDs, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        conn.send(("ok", result, seconds, peak_rss_mib()))
    except BaseException as exc:  # report, do not hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}", 0.0, 0.0))
    finally:
        conn.close()


def isolated(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """Run ``fn`` in a fresh (spawned) process; return (result, seconds inside fn, peak RSS MiB of that process).

    A spawned process starts empty, so its peak RSS (:func:`peak_rss_mib`, read in the child)
    is the stage's own memory plus the interpreter and imports — not whatever the parent had
    allocated.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs))
    proc.start()
    child.close()
    try:
        status, result, seconds, peak = parent.recv()
    except EOFError:  # killed (e.g. out of memory) before it could report
        proc.join()
        raise RuntimeError(
            f"the isolated process running {fn.__name__} died with exit code {proc.exitcode}"
        ) from None
    proc.join()
    if status != "ok":
        raise RuntimeError(result)
    return result, seconds, peak


def emit(name: str, figures: list[Figure]) -> None:
    """Print one benchmark's figures as JSON (what ``python -m benchmarks.bench_x`` shows)."""
    print(
        json.dumps(
            {"benchmark": name, "machine": machine(), "figures": [f.to_dict() for f in figures]}, indent=2
        )
    )


def skipped(missing: list[str]) -> list[Figure]:
    """One ``skipped`` figure naming the absent public data sets (none absent: no figure)."""
    if not missing:
        return []
    return [Figure("skipped", None, "", "higher", note=f"../shared/data absent: {', '.join(missing)}")]


def main_with_parts(name: str, run: Callable[..., list[Figure]]) -> None:
    """``python -m benchmarks.bench_<name> [--quick] [part ...]``: run the named parts (default all), print JSON."""
    args = sys.argv[1:]
    only = {a for a in args if not a.startswith("-")} or None
    emit(name, run(quick="--quick" in args, only=only))
