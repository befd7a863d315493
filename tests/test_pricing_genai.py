"""Every model the catalog shares with genai-prices costs the same on a grid of usages.

genai-prices is the catalog's primary source, so a disagreement is either a conversion bug
or a decision taken on purpose; the latter must carry its justification in the catalog
(the model's ``note:``). Agreement below 98% of the shared models fails the test.

The genai-prices side is recorded in ``fixtures/genai_prices_grid.json`` from the release
the catalog was built from (see ``pricing/DISCREPANCIES.md``). With that release installed
the figures are computed live and must equal the recording; with another release (Python
3.10 only gets genai-prices 0.1.x) the recording is the reference. Re-record after a catalog
rebuild with ``python -m tests.test_pricing_genai``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from datetime import datetime, timezone
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

genai_prices = pytest.importorskip("genai_prices")

from genai_prices.data import providers as genai_providers  # noqa: E402

from tokentrail.pricing.catalog import Catalog, catalog_dir  # noqa: E402
from tokentrail.pricing.engine import Pricer  # noqa: E402
from tokentrail.usage import Usage  # noqa: E402

AT = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
FIXTURE = Path(__file__).parent / "fixtures" / "genai_prices_grid.json"


def _importer() -> Any:
    """``pricing/import_catalog.py``, the script that built the catalog (not a package)."""
    path = Path(__file__).resolve().parents[1] / "pricing" / "import_catalog.py"
    spec = importlib.util.spec_from_file_location("tokentrail_import_catalog", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# genai-prices provider id -> tokentrail provider id, as the importer maps them
PROVIDERS: dict[str, str] = _importer().GENAI_PROVIDERS

GRID: tuple[dict[str, int], ...] = (
    {"input_tokens": 1_000, "output_tokens": 200},
    {"input_tokens": 50_000, "cache_read_tokens": 40_000, "output_tokens": 1_000},
    {"input_tokens": 10_000, "cache_write_tokens": 2_000, "output_tokens": 500},
    {
        "input_tokens": 20_000,
        "cache_write_tokens": 6_000,
        "cache_write_1h_tokens": 4_000,
        "cache_read_tokens": 5_000,
        "output_tokens": 700,
    },
    {"input_tokens": 250_000, "cache_read_tokens": 100_000, "output_tokens": 5_000},
    {"input_tokens": 3_000, "output_tokens": 3_000, "reasoning_tokens": 2_000},
    {"input_tokens": 4_000, "input_audio_tokens": 1_000, "output_tokens": 900},
)

_GENAI_KEYS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "cache_write_1h_tokens": "cache_write_1h_tokens",
    "input_audio_tokens": "input_audio_tokens",
    "reasoning_tokens": "output_reasoning_tokens",
}


def _genai_total(model_ref: str, provider_id: str, counts: dict[str, int]) -> Decimal:
    usage = genai_prices.Usage(**{_GENAI_KEYS[k]: v for k, v in counts.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = genai_prices.calc_price(
            usage, model_ref, provider_id=provider_id, genai_request_timestamp=AT
        )
    return Decimal(result.total_price)


def _ref_for(model, provider) -> str | None:
    """A name genai-prices itself resolves to ``model`` (its id, or one of its exact names)."""
    from genai_prices.data_snapshot import get_snapshot

    names = [model.id] + [
        getattr(c, "equals", None) for c in getattr(model.match, "or_", [model.match])
    ]
    for name in names:
        if not name:
            continue
        try:
            _, found = get_snapshot().find_provider_model(name, None, provider.id, None)
        except LookupError:
            continue
        if found is model:
            return name
    return None


def _live_rows() -> list[dict[str, object]]:
    """genai-prices' totals on the grid for every model of the providers we cover."""
    rows: list[dict[str, object]] = []
    for provider in genai_providers:
        if provider.id not in PROVIDERS:
            continue
        for model in provider.models:
            ref = _ref_for(model, provider)
            if ref is None:
                continue
            totals: list[str | None] = []
            for counts in GRID:
                try:
                    totals.append(str(_genai_total(ref, provider.id, counts)))
                except (ValueError, LookupError):
                    totals.append(None)  # genai-prices cannot price this usage shape
            rows.append({"provider": provider.id, "model": model.id, "ref": ref, "totals": totals})
    return rows


def _reference_rows() -> list[dict[str, object]]:
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    if version("genai-prices") != recorded["genai_prices"]:
        rows: list[dict[str, object]] = recorded["rows"]
        return rows
    live = _live_rows()
    assert live == recorded["rows"], (
        "tests/fixtures/genai_prices_grid.json is stale: python -m tests.test_pricing_genai"
    )
    return live


def _compare() -> tuple[int, list[str]]:
    pricer = Pricer(Catalog(catalog_dir()), env=False)
    shared = 0
    disagreements: list[str] = []
    for row in _reference_rows():
        provider_id, model_id, ref = str(row["provider"]), str(row["model"]), str(row["ref"])
        ours_id = PROVIDERS[provider_id]
        entry = pricer.find(ref, ours_id)
        if entry is None:
            continue
        shared += 1
        problems = []
        for counts, total in zip(GRID, row["totals"], strict=True):  # type: ignore[call-overload]
            if total is None:
                continue
            theirs = Decimal(total)
            ours = pricer.cost(ref, provider=ours_id, at=AT, usage=Usage(**counts), strict=True)
            assert ours is not None
            if abs(ours.total - theirs) > Decimal("1e-9") * max(theirs, Decimal(1)):
                problems.append(f"{counts}: ours {ours.total} vs genai-prices {theirs}")
        if problems:
            note = entry.note or "NO JUSTIFICATION IN THE CATALOG"
            disagreements.append(
                f"{provider_id}/{model_id} -> {entry.provider}/{entry.id}: "
                f"{problems[0]} ({len(problems)} usages) | note: {note}"
            )
    return shared, disagreements


def test_catalog_agrees_with_genai_prices_on_shared_models() -> None:
    shared, disagreements = _compare()
    assert shared > 1000, f"only {shared} models shared with genai-prices"
    agreement = 1 - len(disagreements) / shared
    report = "\n".join(disagreements)
    print(f"\n{shared} shared models, agreement {agreement:.2%}\n{report}")
    assert agreement >= 0.98, f"agreement {agreement:.2%} < 98%:\n{report}"
    unjustified = [d for d in disagreements if "NO JUSTIFICATION" in d]
    assert not unjustified, "disagreements without a note in the catalog:\n" + "\n".join(
        unjustified
    )


def test_catalog_files_are_the_shipped_ones() -> None:
    assert (catalog_dir() / "openai.yaml").is_file()
    assert Path(catalog_dir()).name in {"pricing", "_catalog"}


if __name__ == "__main__":  # record the genai-prices side (run after a catalog rebuild)
    data = {"genai_prices": version("genai-prices"), "at": AT.isoformat(), "rows": _live_rows()}
    FIXTURE.write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE} ({len(data['rows'])} models)", file=sys.stderr)
