"""Loading the price catalog: find the files, compile them once, build the lookup tables.

The catalog is a directory of YAML files, one per provider (``openai.yaml``...). Parsing
and validating YAML is slow, so each file is compiled once into JSON under the user cache
directory, keyed by the file's path, size and modification time; later processes read the
JSON (a few ms). Providers load lazily: pricing an OpenAI call never reads ``openrouter.yaml``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from .leaves import LEAVES

__all__ = [
    "Catalog",
    "ModelEntry",
    "PriceTable",
    "Rule",
    "catalog_dir",
    "compile_file",
    "entry_from_spec",
]

logger = logging.getLogger("tokentrail")

# Bump when the compiled JSON layout changes, so that stale caches are ignored.
_COMPILED_FORMAT = 1
_PROVIDER_ORDER = (
    "openai",
    "anthropic",
    "google",
    "xai",
    "mistral",
    "deepseek",
    "cohere",
    "bedrock",
    "azure",
    "groq",
    "together",
    "fireworks",
    "cerebras",
    "perplexity",
    "openrouter",
)


def catalog_dir() -> Path:
    """The directory of the shipped catalog: ``tokentrail/_catalog`` in a wheel, else the
    repository's ``pricing/`` (editable installs)."""
    from importlib import resources  # lazy: it pulls in tempfile, shutil, lzma

    try:
        shipped = resources.files("tokentrail") / "_catalog"
        if shipped.is_dir():
            return Path(str(shipped))
    except (ModuleNotFoundError, OSError, TypeError):  # pragma: no cover - odd loaders
        pass
    return Path(__file__).resolve().parents[3] / "pricing"


def _cache_dir() -> Path | None:
    override = os.environ.get("TOKENTRAIL_CACHE_DIR")
    if override:
        return Path(override)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("tokentrail", appauthor=False))
    except Exception:  # pragma: no cover - no home directory
        return None


# --------------------------------------------------------------------------- runtime types


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices (USD per 1M tokens) given for some keys, plus long-context tiers."""

    base: Mapping[str, Decimal]
    #: (threshold, prices replacing the base when total input > threshold), ascending.
    tiers: tuple[tuple[int, Mapping[str, Decimal]], ...] = ()

    def at(self, input_tokens: int) -> tuple[Mapping[str, Decimal], int | None]:
        """The prices for a request with ``input_tokens`` of input, and the tier applied."""
        if not self.tiers or input_tokens <= self.tiers[0][0]:
            return self.base, None
        merged = dict(self.base)
        applied = None
        for threshold, prices in self.tiers:
            if input_tokens > threshold:
                merged.update(prices)
                applied = threshold
        return merged, applied


@dataclass(frozen=True, slots=True)
class Period:
    """Prices in force from ``effective_from`` (``None``: always), optionally in a daily
    UTC window."""

    effective_from: date | None
    hours: tuple[time, time] | None
    prices: PriceTable

    def active(self, day: date, clock: time) -> bool:
        """Whether this period applies to a call made on ``day`` at ``clock`` (UTC)."""
        if self.effective_from is not None and day < self.effective_from:
            return False
        if self.hours is None:
            return True
        start, end = self.hours
        if start <= end:
            return start <= clock < end
        return clock >= start or clock < end


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled match rule: ``kind`` is ``exact``, ``prefix`` or ``regex``."""

    kind: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, name: str) -> bool:
        """Whether the (lowercase) ``name`` matches this rule."""
        if self.kind == "exact":
            return name == self.value
        if self.kind == "prefix":
            return name.startswith(self.value)
        assert self.pattern is not None
        return self.pattern.search(name) is not None


@dataclass(frozen=True, eq=False, slots=True)
class ModelEntry:
    """One priced model, ready for the cost engine."""

    id: str
    provider: str
    periods: tuple[Period, ...]
    #: variant name -> its price history, ascending ``effective_from`` (None first).
    variants: Mapping[str, tuple[tuple[date | None, PriceTable], ...]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    name: str | None = None
    context_window: int | None = None
    #: The most tokens one reply can have; ``None`` when the catalog does not say.
    max_output_tokens: int | None = None
    deprecated: bool = False
    note: str | None = None
    catalog_version: str | None = None
    source: str = "catalog"
    #: One undated, all-day period: the price never depends on when the call was made.
    fixed: bool = False

    def period_at(self, day: date, clock: time) -> tuple[int, Period] | None:
        """The period in force (the last active one), with its index."""
        for index in range(len(self.periods) - 1, -1, -1):
            period = self.periods[index]
            if period.active(day, clock):
                return index, period
        return None

    def effective_to(self, index: int) -> date | None:
        """When the dated period ``index`` stops applying (the next dated period's start)."""
        start = self.periods[index].effective_from
        later = [
            p.effective_from
            for p in self.periods[index + 1 :]
            if p.effective_from is not None
            and p.hours is None
            and (start is None or p.effective_from > start)
        ]
        return min(later) if later else None

    def variant_at(self, name: str, day: date) -> PriceTable | None:
        """The prices of variant ``name`` in force on ``day``, if any."""
        best = None
        for start, table in self.variants.get(name, ()):
            if start is None or start <= day:
                best = table
        return best

    @property
    def current_prices(self) -> PriceTable:
        """The base prices of the latest undated-window period (for listings)."""
        for period in reversed(self.periods):
            if period.hours is None:
                return period.prices
        return self.periods[-1].prices


# --------------------------------------------------------------------------- compiling


def compile_file(path: Path) -> dict[str, Any]:
    """Parse and validate one catalog file; returns its JSON-ready form.

    Raises ``tokentrail.PricingError`` naming the file and the problem.
    """
    import yaml
    from pydantic import ValidationError

    from ..errors import PricingError
    from .schema import CatalogFile

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(path, encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=loader)
        spec = CatalogFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise PricingError(f"cannot read price file {path}: {exc}") from exc
    except ValidationError as exc:
        raise PricingError(f"invalid price file {path}:\n{exc}") from exc
    data: dict[str, Any] = spec.model_dump(mode="json", exclude_none=True)
    return data


def _compiled(path: Path, cache_dir: Path | None) -> dict[str, Any]:
    """``compile_file(path)``, through the on-disk cache when one is usable."""
    if cache_dir is None:
        return compile_file(path)
    import hashlib

    stat = path.stat()
    key = f"{_COMPILED_FORMAT}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]
    cached = cache_dir / f"catalog-{path.stem}-{digest}.json"
    try:
        with open(cached, encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
        return data
    except (OSError, ValueError):
        pass
    data = compile_file(path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, cached)
        for stale in cache_dir.glob(f"catalog-{path.stem}-*.json"):
            if stale != cached:
                stale.unlink(missing_ok=True)
    except OSError as exc:  # a read-only home: compile every time, still correct
        logger.debug("tokentrail: cannot cache compiled catalog %s: %s", path, exc)
    return data


def _decimals(prices: Mapping[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in prices.items() if k in LEAVES and v is not None}


def _table(data: Mapping[str, Any]) -> PriceTable:
    tiers = tuple((int(t["above"]), _decimals(t)) for t in data.get("tiers", ()))
    return PriceTable(_decimals(data), tiers)


def _rule(data: Mapping[str, str]) -> Rule:
    if "exact" in data:
        return Rule("exact", data["exact"].lower())
    if "prefix" in data:
        return Rule("prefix", data["prefix"].lower())
    return Rule("regex", data["regex"], re.compile(data["regex"]))


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value).rstrip("Z"))


def entry_from_spec(
    spec: Mapping[str, Any],
    provider: str,
    *,
    catalog_version: str | None,
    source: str = "catalog",
) -> ModelEntry:
    """Build a :class:`ModelEntry` from a model's JSON form (see ``schema.ModelSpec``)."""
    if spec.get("periods"):
        periods = tuple(
            Period(
                _date(p.get("effective_from")),
                (_time(p["utc_hours"][0]), _time(p["utc_hours"][1]))
                if p.get("utc_hours")
                else None,
                _table(p["prices"]),
            )
            for p in spec["periods"]
        )
    else:
        periods = (Period(None, None, _table(spec["prices"])),)
    variants: dict[str, list[tuple[date | None, PriceTable]]] = {}
    for v in spec.get("variants", ()):
        variants.setdefault(v["name"], []).append(
            (_date(v.get("effective_from")), _table(v["prices"]))
        )
    ordered = {
        name: tuple(sorted(hist, key=lambda item: item[0] or date.min))
        for name, hist in variants.items()
    }
    rules = tuple(_rule(r) for r in spec.get("match", ())) or (Rule("exact", spec["id"].lower()),)
    return ModelEntry(
        id=spec["id"],
        provider=provider,
        periods=periods,
        variants=ordered,
        rules=rules,
        name=spec.get("name"),
        context_window=spec.get("context_window"),
        max_output_tokens=spec.get("max_output_tokens"),
        deprecated=bool(spec.get("deprecated", False)),
        note=spec.get("note"),
        catalog_version=catalog_version,
        source=source,
        fixed=len(periods) == 1 and periods[0].effective_from is None and periods[0].hours is None,
    )


# --------------------------------------------------------------------------- lookup


class ProviderModels:
    """The models of one provider and their match rules.

    An ``exact`` rule wins over ``prefix`` and ``regex`` rules; among those, the first in
    file order wins (so a file lists specific models before general ones).
    """

    def __init__(self, provider: str, entries: Iterable[ModelEntry], fallback: Iterable[str]):
        self.provider = provider
        self.entries: list[ModelEntry] = []
        self.fallback = tuple(fallback)
        self._exact: dict[str, ModelEntry] = {}
        self._patterns: list[tuple[Rule, ModelEntry]] = []
        for entry in entries:
            self.add(entry)

    def add(self, entry: ModelEntry, *, first: bool = False) -> None:
        """Add a model; with ``first`` its rules take precedence over those already there."""
        if first:
            self.entries.insert(0, entry)
        else:
            self.entries.append(entry)
        patterns = []
        for rule in entry.rules:
            if rule.kind == "exact":
                if first or rule.value not in self._exact:
                    self._exact[rule.value] = entry
            else:
                patterns.append((rule, entry))
        self._patterns = patterns + self._patterns if first else self._patterns + patterns

    def find(self, name: str) -> ModelEntry | None:
        """The model matching the lowercase ``name``, if any."""
        entry = self._exact.get(name)
        if entry is not None:
            return entry
        for rule, candidate in self._patterns:
            if rule.matches(name):
                return candidate
        return None


class Catalog:
    """The shipped catalog (or any directory in the same format), loaded lazily per provider."""

    def __init__(self, directory: Path | None = None, *, cache_dir: Path | bool | None = True):
        self.directory = directory or catalog_dir()
        if cache_dir is True:
            self.cache_dir = _cache_dir()
        elif cache_dir is False:
            self.cache_dir = None
        else:
            self.cache_dir = cache_dir
        self._lock = threading.RLock()
        self._providers: dict[str, ProviderModels] = {}
        self._names: dict[str, str] = {}
        self._versions: dict[str, str] = {}
        self._files: dict[str, Path] | None = None
        self._local: frozenset[str] | None = None

    @property
    def files(self) -> dict[str, Path]:
        """Provider id -> catalog file (the file stem is the provider id)."""
        if self._files is None:
            found = {}
            if self.directory.is_dir():
                for path in sorted(self.directory.glob("*.yaml")):
                    if path.stem != "local":
                        found[path.stem] = path
            self._files = found
        return self._files

    def provider_ids(self) -> list[str]:
        """Providers in the catalog, first-party before resellers, OpenRouter last."""
        ids = list(self.files)
        rank = {p: i for i, p in enumerate(_PROVIDER_ORDER)}
        return sorted(ids, key=lambda p: (rank.get(p, len(rank)), p))

    def local_providers(self) -> frozenset[str]:
        """Providers priced at 0 by rule (``local.yaml``, else tokentrail's own list)."""
        if self._local is None:
            from ..providers import LOCAL_PROVIDERS

            path = self.directory / "local.yaml"
            local = set(LOCAL_PROVIDERS)
            if path.is_file():
                data = _compiled(path, self.cache_dir)
                local = set(data.get("local_providers", ())) or local
                self._versions.setdefault("local", data["catalog_version"])
            self._local = frozenset(local)
        return self._local

    def provider(self, provider_id: str) -> ProviderModels | None:
        """The models of one provider (loaded on first use), or ``None`` if not in the catalog."""
        models = self._providers.get(provider_id)
        if models is not None:
            return models
        path = self.files.get(provider_id)
        if path is None:
            return None
        with self._lock:
            if provider_id not in self._providers:
                self._providers[provider_id] = self._load(provider_id, path)
        return self._providers[provider_id]

    def _load(self, provider_id: str, path: Path) -> ProviderModels:
        data = _compiled(path, self.cache_dir)
        version = data["catalog_version"]
        provider = data.get("provider") or {"id": provider_id, "name": provider_id}
        if provider["id"] != provider_id:
            from ..errors import PricingError

            raise PricingError(
                f"{path}: provider id {provider['id']!r} differs from the file name "
                f"{provider_id!r}; rename the file or fix the id"
            )
        self._names[provider_id] = provider.get("name", provider_id)
        self._versions[provider_id] = version
        entries = [
            entry_from_spec(m, provider_id, catalog_version=version) for m in data.get("models", ())
        ]
        return ProviderModels(provider_id, entries, provider.get("fallback", ()))

    def provider_name(self, provider_id: str) -> str:
        """The provider's display name."""
        self.provider(provider_id)
        return self._names.get(provider_id, provider_id)

    def version(self, provider_id: str | None = None) -> str | None:
        """The ``catalog_version`` of one provider's file, or the latest of all loaded."""
        if provider_id is not None:
            self.provider(provider_id)
            return self._versions.get(provider_id)
        if not self._versions and self.files:
            self.provider(next(iter(self.files)))
        return max(self._versions.values()) if self._versions else None

    def entries(self, provider_id: str | None = None) -> Iterator[ModelEntry]:
        """Every model, or those of one provider."""
        ids = [provider_id] if provider_id else self.provider_ids()
        for pid in ids:
            models = self.provider(pid)
            if models is not None:
                yield from models.entries
