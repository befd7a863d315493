"""The importer owns all of ``pricing/DISCREPANCIES.md`` and maps genai-prices' fees.

The deliberate differences (price decisions and payload readings) live in
``pricing/sources/decisions.yaml``; the importer writes them into the report, so a
regenerated report keeps them. Perplexity's request fees per 1K requests by search context
size (low / medium / high): sonar $5 / $8 / $12, sonar-pro $6 / $10 / $14
(https://docs.perplexity.ai/getting-started/pricing); genai-prices keeps only the high one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PRICING = Path(__file__).resolve().parents[1] / "pricing"


@pytest.fixture(scope="module")
def importer() -> Any:
    path = PRICING / "import_catalog.py"
    spec = importlib.util.spec_from_file_location("tokentrail_import_catalog_d", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _decisions() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PRICING / "sources" / "decisions.yaml").read_text())
    return data


def test_a_regenerated_report_keeps_every_deliberate_entry(importer: Any, tmp_path: Path) -> None:
    importer.write_report(tmp_path, [], {"perplexity": 1}, {}, {"genai-prices": "test"})
    text = (tmp_path / "DISCREPANCIES.md").read_text(encoding="utf-8")
    data = _decisions()
    assert len(data["decisions"]) >= 9 and len(data["readings"]) >= 6
    for decision in data["decisions"]:
        assert " ".join(decision["note"].split()) in text
    for reading in data["readings"]:
        assert f"- **{reading['title']}**" in text
        assert " ".join(reading["text"].split()) in text
    assert "Request and web-search fees" in text


def test_the_shipped_report_is_what_the_importer_writes(importer: Any) -> None:
    """The deliberate part of the committed report equals the importer's rendering of it
    (an entry added by hand to DISCREPANCIES.md would be lost at the next import)."""
    shipped = (PRICING / "DISCREPANCIES.md").read_text(encoding="utf-8")
    assert "\n".join(importer.deliberate_sections()) in shipped
    assert "kept by hand" not in shipped


def test_genai_fees_become_prices_not_notes(importer: Any) -> None:
    pytest.importorskip("genai_prices")
    _, models = importer.genai_catalog()
    by_id = {m["id"]: m for m in models["perplexity"]}
    deep = by_id["sonar-deep-research"]
    assert deep["prices"]["web_search"] == "5"
    assert "web_searches_kcount" not in deep.get("note", "")
    assert by_id["sonar"]["prices"]["request"] == "12"  # genai-prices' figure: high context
    claude = {m["id"]: m for m in models["anthropic"]}["claude-sonnet-4-5"]
    assert claude["prices"]["web_search"] == "10"


def test_decisions_set_perplexitys_low_context_fee_and_variants(importer: Any) -> None:
    pytest.importorskip("genai_prices")
    _, models = importer.genai_catalog()
    importer.apply_decisions(models)
    by_id = {m["id"]: m for m in models["perplexity"]}
    for model, low, medium, high in (("sonar", "5", "8", "12"), ("sonar-pro", "6", "10", "14")):
        spec = by_id[model]
        assert spec["prices"]["request"] == low
        variants = {v["name"]: v["prices"] for v in spec["variants"]}
        assert variants == {"search_medium": {"request": medium}, "search_high": {"request": high}}
        assert "search context size" in spec["note"]


def test_the_shipped_catalog_carries_the_decisions() -> None:
    from tokentrail.pricing.catalog import Catalog, catalog_dir

    entry = Catalog(catalog_dir()).provider("perplexity")
    assert entry is not None
    sonar = entry.find("sonar")
    assert sonar is not None
    assert sonar.current_prices.base["request"] == 5
    assert set(sonar.variants) == {"search_medium", "search_high"}


_MAPPED = (
    "input_image",
    "output_image",
    "cache_read_audio",
    "input_video",
    "request",
    "web_search",
)


def _price_sets(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sets = {"base": spec["prices"]} if "prices" in spec else {}
    for i, period in enumerate(spec.get("periods", [])):
        sets[f"period {i}"] = period["prices"]
    for variant in spec.get("variants", []):
        sets[f"variant {variant['name']} {variant.get('effective_from')}"] = variant["prices"]
    return sets


def test_a_reimport_reproduces_the_shipped_fee_image_and_video_prices(importer: Any) -> None:
    """Every request, web-search, image, cached-audio and video price in the shipped
    catalog for a genai-prices model is what the importer writes (genai-prices' figure, or
    a decision): regenerating the catalog loses none of them."""
    pytest.importorskip("genai_prices")
    _, models = importer.genai_catalog()
    importer.apply_decisions(models)
    checked = 0
    for path in sorted(PRICING.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "provider" not in data:
            continue
        imported = {m["id"]: m for m in models.get(data["provider"]["id"], [])}
        for spec in data["models"]:
            if spec["id"] not in imported:
                continue
            theirs = _price_sets(imported[spec["id"]])
            for where, prices in _price_sets(spec).items():
                for key in _MAPPED:
                    if key in prices:
                        checked += 1
                        got = theirs.get(where, {}).get(key)
                        assert str(got) == str(prices[key]), (spec["id"], where, key)
    assert checked > 150
