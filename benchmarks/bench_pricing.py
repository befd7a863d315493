"""Pricing speed: cost computations per second against ``genai_prices.calc_price``, the
time to import and price the first call, and the cached match lookup.

Both libraries price the same calls (same models, same usages) in the same process.
Run: ``python -m benchmarks.bench_pricing`` (``--quick`` for a short run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

# (model, tokentrail provider, genai-prices provider, usage counts)
# Counts as keyword arguments (Any: mypy cannot match ** of a dict to typed parameters).
CALLS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("gpt-4o", "openai", "openai", {"input_tokens": 1200, "output_tokens": 300}),
    ("gpt-4o-mini", "openai", "openai", {"input_tokens": 5000, "cache_read_tokens": 4096, "output_tokens": 120}),
    ("gpt-5", "openai", "openai", {"input_tokens": 3000, "output_tokens": 2500, "reasoning_tokens": 2000}),
    ("o3", "openai", "openai", {"input_tokens": 800, "output_tokens": 4000, "reasoning_tokens": 3500}),
    ("claude-sonnet-4-5", "anthropic", "anthropic", {"input_tokens": 12000, "cache_read_tokens": 10000, "output_tokens": 800}),
    ("claude-haiku-4-5", "anthropic", "anthropic", {"input_tokens": 9000, "cache_write_tokens": 8000, "output_tokens": 400}),
    ("claude-opus-4-1", "anthropic", "anthropic", {"input_tokens": 250000, "output_tokens": 1000}),
    ("gemini-2.5-pro", "google", "google", {"input_tokens": 300000, "output_tokens": 2000}),
    ("gemini-2.5-flash", "google", "google", {"input_tokens": 4000, "output_tokens": 500}),
    ("mistral-large-latest", "mistral", "mistral", {"input_tokens": 2000, "output_tokens": 700}),
]  # fmt: skip

_GENAI_KEYS = {"reasoning_tokens": "output_reasoning_tokens"}


def _rate(fn: Callable[[], object], n: int, rounds: int) -> float:
    """Calls per second of ``fn`` (best of ``rounds`` rounds of ``n`` calls)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def _throughput(quick: bool) -> list[dict[str, Any]]:
    import genai_prices

    from tokentrail import pricing
    from tokentrail.usage import Usage

    ours_usage = [(m, p, Usage(**c)) for m, p, _, c in CALLS]
    genai_usage = [
        (m, gp, genai_prices.Usage(**{_GENAI_KEYS.get(k, k): v for k, v in c.items()}))
        for m, _, gp, c in CALLS
    ]
    raw = [(m, p, gp, c) for m, p, gp, c in CALLS]
    # check both price the same calls, and warm both caches
    for (m, p, u), (_, gp, gu) in zip(ours_usage, genai_usage, strict=True):
        ours = pricing.cost(m, provider=p, usage=u, strict=True)
        theirs = genai_prices.calc_price(gu, m, provider_id=gp)
        assert ours is not None and ours.total == theirs.total_price, (m, ours, theirs)

    def ours_batch() -> None:
        for m, p, u in ours_usage:
            pricing.cost(m, provider=p, usage=u)

    def genai_batch() -> None:
        for m, gp, gu in genai_usage:
            genai_prices.calc_price(gu, m, provider_id=gp)

    def ours_raw() -> None:
        for m, p, _, c in raw:
            pricing.cost(m, provider=p, **c)

    def genai_raw() -> None:
        for m, _, gp, c in raw:
            usage = genai_prices.Usage(**{_GENAI_KEYS.get(k, k): v for k, v in c.items()})
            genai_prices.calc_price(usage, m, provider_id=gp)

    n, rounds = (200, 3) if quick else (2000, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = [
            ("cost() with a Usage object", ours_batch, genai_batch),
            ("cost() from keyword counts", ours_raw, genai_raw),
        ]
        results = []
        for name, ours_fn, genai_fn in pairs:
            batches = n // len(CALLS)
            ours_rate = _rate(ours_fn, batches, rounds) * len(CALLS)
            # genai-prices is slower: fewer batches keep the run short, the rate is per call
            genai_rate = _rate(genai_fn, max(batches // 4, 5), rounds) * len(CALLS)
            ratio = ours_rate / genai_rate
            results.append(
                {
                    "name": f"pricing: {name}, computations/s",
                    "value": round(ours_rate),
                    "unit": "calls/s",
                    "baseline_name": "genai_prices.calc_price",
                    "baseline_value": round(genai_rate),
                    "ratio": round(ratio, 1),
                    "goal": ">= 10x genai-prices",
                    "met": ratio >= 10,
                }
            )
    return results


def _cached_lookup(quick: bool) -> dict[str, Any]:
    from genai_prices.data_snapshot import get_snapshot

    from tokentrail.pricing import default_pricer

    pricer = default_pricer()
    names = [(m, p) for m, p, _, _ in CALLS] + [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock"),
        ("claude-sonnet-4-5@20250929", "vertex_ai"),
    ]
    for m, p in names:
        pricer.find(m, p)
    snapshot = get_snapshot()
    genai_names = [(m, gp) for m, _, gp, _ in CALLS]
    for m, gp in genai_names:
        snapshot.find_provider_model(m, None, gp, None)
    n = 2_000 if quick else 20_000

    def ours() -> None:
        for m, p in names:
            pricer.find(m, p)

    def theirs() -> None:
        for m, gp in genai_names:
            snapshot.find_provider_model(m, None, gp, None)

    ours_us = 1e6 / (_rate(ours, n // len(names), 3) * len(names))
    theirs_us = 1e6 / (_rate(theirs, n // len(genai_names), 3) * len(genai_names))
    return {
        "name": "pricing: match lookup of an already-seen model name",
        "value": round(ours_us, 3),
        "unit": "µs",
        "baseline_name": "genai-prices cached find_provider_model",
        "baseline_value": round(theirs_us, 3),
        "ratio": round(ours_us / theirs_us, 2),
        "goal": "<= 5 µs",
        "met": ours_us <= 5,
    }


_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "ours":
    from tokentrail import pricing
    t1 = time.perf_counter()
    pricing.cost("gpt-4o", input_tokens=1000, output_tokens=200)
else:
    import genai_prices
    t1 = time.perf_counter()
    genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=200), "gpt-4o",
                            provider_id="openai")
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3}))
"""


def _cold_once(which: str, cache_dir: str) -> dict[str, float]:
    env = dict(os.environ, TOKENTRAIL_CACHE_DIR=cache_dir)
    env.pop("TOKENTRAIL_PRICING", None)
    out = subprocess.run(
        [sys.executable, "-c", _COLD, which], env=env, capture_output=True, text=True, check=True
    ).stdout
    data: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return data


def _cold_start(quick: bool) -> list[dict[str, Any]]:
    runs = 2 if quick else 5
    with tempfile.TemporaryDirectory() as cache:
        compile_run = _cold_once("ours", cache)  # empty cache: compiles the YAML
        ours = [_cold_once("ours", cache) for _ in range(runs)]
        theirs = [_cold_once("genai", cache) for _ in range(runs)]

    def best(rows: list[dict[str, float]]) -> float:
        return min(r["import_ms"] + r["first_ms"] for r in rows)

    ours_ms, theirs_ms = best(ours), best(theirs)
    first_ms = min(r["first_ms"] for r in ours)
    return [
        {
            "name": "pricing: import tokentrail.pricing + first cost(), warm catalog cache",
            "value": round(ours_ms, 1),
            "unit": "ms",
            "baseline_name": "import genai_prices + first calc_price",
            "baseline_value": round(theirs_ms, 1),
            "ratio": round(ours_ms / theirs_ms, 2),
            "goal": "<= 100 ms (first cost() alone <= 30 ms)",
            "met": ours_ms <= 100 and first_ms <= 30,
        },
        {
            "name": "pricing: first cost() when the catalog cache is empty (compiles YAML)",
            "value": round(compile_run["import_ms"] + compile_run["first_ms"], 1),
            "unit": "ms",
            "baseline_name": "import genai_prices + first calc_price",
            "baseline_value": round(theirs_ms, 1),
            "ratio": round((compile_run["import_ms"] + compile_run["first_ms"]) / theirs_ms, 2),
            "goal": "once per catalog change; <= 2000 ms",
            "met": compile_run["import_ms"] + compile_run["first_ms"] <= 2000,
        },
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; each result compares tokentrail with genai-prices in the same run."""
    return [*_throughput(quick), _cached_lookup(quick), *_cold_start(quick)]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row, ensure_ascii=False))
