"""Run the benchmark suite, record the results and warn about regressions.

    python -m benchmarks.run [--quick] [--only a,b] [--no-record]

Writes ``benchmarks/results/<date>.json`` and appends a Markdown table to ``BENCHMARKS.md``.
A figure more than 20 % worse than the last recorded value of the same name is printed
as a warning (the machine is shared, so one warning is a prompt to re-run, not a verdict).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, Figure, machine

RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "BENCHMARKS.md"
REGRESSION = 0.20


def discover() -> list[str]:
    return sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))


def last_values(quick: bool, results_dir: Path = RESULTS) -> dict[str, float]:
    """The latest recorded value of every figure (``benchmark/figure``) from runs in the same mode.

    Quick and full runs are kept apart: a figure may share its name across modes while
    measuring a different size (e.g. features on 0.5M vs 10M events).
    """
    values: dict[str, float] = {}
    for path in sorted(results_dir.glob("*.json")):  # names are UTC stamps: later files win
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if bool(data.get("quick")) != quick:
            continue
        for bench in data.get("benchmarks", []):
            for fig in bench.get("figures", []):
                if fig.get("value") is not None:
                    values[f"{bench['benchmark']}/{fig['name']}"] = fig["value"]
    return values


def regressions(
    results: list[dict[str, Any]], previous: dict[str, float], threshold: float = REGRESSION
) -> list[str]:
    """One warning per figure more than ``threshold`` (a fraction) worse than its previous value.

    "Worse" follows the figure's ``better`` direction; figures without a value (errors,
    skips) or without a previous value are not compared.
    """
    out = []
    for bench in results:
        for fig in bench["figures"]:
            key = f"{bench['benchmark']}/{fig['name']}"
            old, new = previous.get(key), fig.get("value")
            if old is None or new is None or old == 0:
                continue
            change = (new - old) / abs(old)
            worse = change < -threshold if fig["better"] == "higher" else change > threshold
            if worse:
                out.append(f"WARNING: {key} regressed {abs(change):.0%} ({old:g} -> {new:g} {fig['unit']})")
    return out


def failures(results: list[dict[str, Any]]) -> list[str]:
    """``benchmark: error`` for every benchmark or figure that failed."""
    out = [f"{r['benchmark']}: {r['error']}" for r in results if r.get("error")]
    for r in results:
        out += [f"{r['benchmark']}/{f['name']}: {f['error']}" for f in r["figures"] if f.get("error")]
    return out


def markdown(
    stamp: str,
    info: dict[str, Any],
    results: list[dict[str, Any]],
    quick: bool,
    *,
    seconds: float | None = None,
    load: list[float] | None = None,
    warnings: Sequence[str] = (),
) -> str:
    run = f" Suite wall time {seconds:.0f} s" if seconds is not None else ""
    if load:
        run += f", load average (1/5/15 min) at the end {'/'.join(f'{x:g}' for x in load)}"
    lines = [
        f"\n## {stamp}{' (quick)' if quick else ''}\n",
        f"Machine: {info['cores']} cores, {info['memory_gb']} GiB, {info['cpu']}; Python {info['python']}."
        + (f"{run}." if run else "")
        + "\n",
        "| benchmark | figure | value | unit | baseline | ratio | target | published | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for bench in results:
        if bench.get("error"):
            lines.append(f"| {bench['benchmark']} | **error** | {bench['error'][:80]} | | | | | | |")
            continue
        for f in bench["figures"]:

            def fmt(v: Any) -> str:
                return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))

            if f.get("error"):
                lines.append(
                    f"| {bench['benchmark']} | {f['name']} | **error**: {f['error'][:80]} | | | | | | "
                    f"`{f['command']}` |"
                )
                continue
            mark = {True: " ✓", False: " ✗", None: ""}[f.get("meets_target")]
            base = f"{fmt(f['baseline'])} ({f['baseline_name']})" if f.get("baseline") is not None else ""
            lines.append(
                f"| {bench['benchmark']} | {f['name']} | {fmt(f['value'])}{mark} | {f['unit']} | {base} | "
                f"{fmt(f['ratio'])} | {fmt(f['target'])} | {fmt(f['published'])} | `{f['command']}` |"
            )
    if warnings:
        lines += ["", *(f"- {w}" for w in warnings)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="only benchmarks marked QUICK, in their quick mode"
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark names (bench_ prefix optional)")
    parser.add_argument(
        "--no-record", action="store_true", help="print only; do not write results or BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only.split(",")}
        names = [n for n in names if n in wanted]
    suite_start = time.perf_counter()
    info = machine()
    print(json.dumps({"machine": info, "load_average": _load()}, indent=2), flush=True)
    previous = last_values(args.quick)
    results: list[dict[str, Any]] = []
    for name in names:
        label = name.removeprefix("bench_")
        start = time.perf_counter()
        try:  # an import error is one benchmark's failure too
            module = importlib.import_module(f"benchmarks.{name}")
            if args.quick and not getattr(module, "QUICK", False):
                continue
            figures: list[Figure] = module.run(quick=args.quick)
            entry = {"benchmark": label, "figures": [f.to_dict() for f in figures]}
        except Exception as exc:
            traceback.print_exc()
            entry = {"benchmark": label, "figures": [], "error": f"{type(exc).__name__}: {exc}"}
        entry["seconds"] = round(time.perf_counter() - start, 1)
        results.append(entry)
        print(json.dumps(entry, indent=2), flush=True)
    warnings = regressions(results, previous)
    for w in warnings:
        print(w, file=sys.stderr)
    failed = failures(results)
    for f in failed:
        print(f"ERROR: {f}", file=sys.stderr)
    total = time.perf_counter() - suite_start
    print(
        f"{len(results)} benchmark(s){' (quick)' if args.quick else ''} in {total:.0f} s "
        f"({total / 60:.1f} min); load average at the end {_load()}; "
        f"{len(warnings)} regression warning(s), {len(failed)} error(s)",
        file=sys.stderr,
    )
    if not args.no_record and results:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
        RESULTS.mkdir(parents=True, exist_ok=True)
        payload = {
            "date": stamp,
            "quick": args.quick,
            "machine": info,
            "seconds": round(total, 1),
            "load_average": _load(),
            "benchmarks": results,
            "warnings": warnings,
        }
        (RESULTS / f"{stamp}.json").write_text(json.dumps(payload, indent=2))
        if not REPORT.exists():
            REPORT.write_text(
                "# Benchmarks\n\nAppended by `make bench` / `make bench-quick` (`python -m benchmarks.run`).\n"
            )
        with REPORT.open("a") as fh:
            fh.write(
                markdown(
                    stamp,
                    info,
                    results,
                    args.quick,
                    seconds=total,
                    load=payload["load_average"],
                    warnings=warnings,
                )
            )
    return 1 if failed else 0


def _load() -> list[float] | None:
    """1/5/15-minute load averages (the machine is shared: read timings against them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
