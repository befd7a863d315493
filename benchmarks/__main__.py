"""Run every benchmark and write ``benchmarks/RESULTS.md``.

Usage::

    python -m benchmarks            # full run (10M-row analytics, 1M-record memory soak)
    python -m benchmarks --quick    # smaller sizes, for a quick look
    python -m benchmarks pricing ingest   # only some (names after ``bench_``)

Every figure is a ratio against a baseline measured in the same run, on this machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Order: cheap first, so a partial run still says something.
ORDER = (
    "extract",
    "pricing",
    "estimate",
    "guard",
    "ingest",
    "langchain",
    "llamaindex",
    "memory",
    "background",
    "analytics",
)


def available() -> list[str]:
    """Benchmark names (``bench_<name>.py``) present, in run order."""
    found = {p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def machine() -> str:
    """One line describing the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 1:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def render(results: dict[str, list[dict[str, Any]]], errors: dict[str, str], quick: bool) -> str:
    """The RESULTS.md text."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Run {now} with `python -m benchmarks{' --quick' if quick else ''}` on: {machine()}.",
        "",
        "Each figure has its baseline measured in the same run; *ratio* is ours ÷ baseline "
        "(for times, lower is better; for throughputs, higher is better; see each goal).",
        "",
    ]
    for name, rows in results.items():
        lines += [f"## {name}", ""]
        lines += [
            "| measure | value | unit | baseline | baseline value | ratio | goal | met |",
            "| --- | ---: | --- | --- | ---: | ---: | --- | --- |",
        ]
        for r in rows:
            met = r.get("met")
            mark = "yes" if met is True else ("no" if met is False else "")
            lines.append(
                f"| {r.get('name', '')} | {_fmt(r.get('value'))} | {r.get('unit', '')} | "
                f"{r.get('baseline_name', '')} | {_fmt(r.get('baseline_value'))} | "
                f"{_fmt(r.get('ratio'))} | {r.get('goal', '')} | {mark} |"
            )
        lines.append("")
    for name, err in errors.items():
        lines += [f"## {name}: failed", "", "```", err.strip()[-2000:], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks named (or all) and write RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("-o", "--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    names = args.names or available()
    results: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            rows = module.run(quick=args.quick)
        except Exception:
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr)
            continue
        results[name] = rows
        for r in rows:
            print(
                f"   {r.get('name')}: {_fmt(r.get('value'))} {r.get('unit', '')} "
                f"(baseline {_fmt(r.get('baseline_value'))}, ratio {_fmt(r.get('ratio'))}, "
                f"goal {r.get('goal', '')}, met {r.get('met')})",
                flush=True,
            )
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    Path(args.output).write_text(render(results, errors, args.quick), encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
