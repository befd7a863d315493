"""The cost engine: match a model name, pick the prices in force, bill each leaf once."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import PricingError, UnknownModelError
from ..providers import normalize_provider, provider_from_model
from ..usage import MAX_TOKENS, Usage, plain_usage
from .catalog import Catalog, ModelEntry, ProviderModels, entry_from_spec
from .lazy import LazyCost, PendingPrice, lazy_cost, plain_figures, rate_cells
from .leaves import LEAVES, leaf_counts, leaf_prices, plain_leaf_counts
from .names import name_candidates
from .types import Cost, trusted_cost

__all__ = ["Pricer"]

logger = logging.getLogger("tokentrail")

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_CACHE_LIMIT = 20_000
_Resolved = tuple[Decimal | None, ...]
# An entry with one undated price: (entry, per-token prices, Cost fields after the figures,
# input tokens above which a long-context tier applies, spool cells or None).
_Plain = tuple[ModelEntry, _Resolved, tuple[Any, ...], int, tuple[str | None, ...] | None]
# What lazy_rates answers from: (tier limit, Cost fields after the figures, spool cells).
_Rates = tuple[int, tuple[Any, ...], tuple[str | None, ...]]


def _moment(at: datetime | date | str | None) -> tuple[date, time]:
    """The UTC day and time of a call (naive datetimes are UTC; a date is its midnight)."""
    if at is None:
        now = datetime.now(timezone.utc)
        return now.date(), now.time()
    if isinstance(at, str):
        at = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
    if isinstance(at, datetime):
        if at.tzinfo is not None:
            at = at.astimezone(timezone.utc)
        return at.date(), at.time().replace(tzinfo=None)
    if isinstance(at, date):
        return at, time(0)
    raise TypeError(f"at must be a datetime, a date or an ISO 8601 string, not {type(at).__name__}")


def _as_usage(usage: Usage | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> Usage:
    if isinstance(usage, Usage) and not fields:
        return usage
    if usage is None:
        fast = plain_usage(fields)  # plain, valid int counts; anything else is validated
        if fast is not None:
            return fast
    counts: dict[str, Any] = {}
    if isinstance(usage, Usage):
        counts.update(usage.as_dict())
    elif usage is not None:
        counts.update(usage)
    counts.update(fields)
    return Usage.from_counts(counts, source="cost()")


class Pricer:
    """A catalog plus the user's overrides, with the lookup caches.

    ``tokentrail.pricing`` keeps one process-wide instance; tests and tools can build their
    own over another catalog directory.
    """

    def __init__(self, catalog: Catalog | None = None, *, env: bool = True) -> None:
        self.catalog = catalog or Catalog()
        self._lock = threading.RLock()
        self._lookups: dict[tuple[str, str | None], ModelEntry | None] = {}
        self._resolved: dict[
            tuple[int, int, str | None, int | None, int | None], tuple[_Resolved, tuple[Any, ...]]
        ] = {}
        # id(entry) -> see _Plain and _plain_entry.
        self._plain: dict[int, _Plain] = {}
        # (model, provider) -> what lazy_rates needs (tier limit, Cost fields, spool cells),
        # or None when the model has no plain price (see lazy_rates).
        self._rates: dict[tuple[str, str | None], _Rates | None] = {}
        self._overrides: dict[str | None, ProviderModels] = {}
        self._override_specs: dict[tuple[str | None, str], dict[str, Any]] = {}
        self._warned: set[str] = set()
        self._env_pending = env

    # ------------------------------------------------------------------ overrides

    def register(
        self,
        model: str,
        *,
        provider: str | None = None,
        input: Decimal | float | str | None = None,
        output: Decimal | float | str | None = None,
        cache_read: Decimal | float | str | None = None,
        cache_write: Decimal | float | str | None = None,
        cache_write_1h: Decimal | float | str | None = None,
        reasoning: Decimal | float | str | None = None,
        input_audio: Decimal | float | str | None = None,
        output_audio: Decimal | float | str | None = None,
        tiers: list[Mapping[str, Any]] | None = None,
        match: list[Mapping[str, str]] | None = None,
        effective_from: date | str | None = None,
        variants: list[Mapping[str, Any]] | None = None,
        context_window: int | None = None,
        name: str | None = None,
    ) -> None:
        """Add or override a model's prices (USD per 1M tokens); see ``pricing.register``."""
        from pydantic import ValidationError

        from .schema import ModelSpec

        pid = normalize_provider(provider)
        given = {
            "input": input,
            "output": output,
            "cache_read": cache_read,
            "cache_write": cache_write,
            "cache_write_1h": cache_write_1h,
            "reasoning": reasoning,
            "input_audio": input_audio,
            "output_audio": output_audio,
        }
        prices: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if not prices:
            raise PricingError(f"register({model!r}): give at least one price, e.g. input=2.5")
        if tiers:
            prices["tiers"] = list(tiers)
        key = (pid, model.lower())
        with self._lock:
            previous = self._override_specs.get(key)
            periods = [
                p
                for p in (previous or {}).get("periods", [])
                if p.get("effective_from") != (str(effective_from) if effective_from else None)
            ]
            periods.append({"effective_from": effective_from, "prices": prices})
            periods.sort(key=lambda p: str(p.get("effective_from") or ""))
            raw: dict[str, Any] = {
                "id": model,
                "name": name,
                "match": match or [{"exact": model}],
                "context_window": context_window,
                "periods": periods,
                "variants": list(variants or ()),
            }
            try:
                spec = ModelSpec.model_validate(raw)
            except ValidationError as exc:
                raise PricingError(f"invalid price override for {model!r}:\n{exc}") from exc
            self._override_specs[key] = raw
            entry = entry_from_spec(
                spec.model_dump(mode="json", exclude_none=True),
                pid or "",
                catalog_version=None,
                source="override",
            )
            self._add_override(pid, entry)

    def load_file(self, path: str | os.PathLike[str]) -> int:
        """Load a user price file (catalog format); its models override the catalog.

        Returns the number of models loaded; raises ``PricingError`` when invalid.
        """
        from .catalog import compile_file

        data = compile_file(Path(path))
        provider = data.get("provider") or {}
        pid = normalize_provider(provider.get("id"))
        models = data.get("models", [])
        with self._lock:
            for spec in models:
                entry = entry_from_spec(
                    spec, pid or "", catalog_version=data["catalog_version"], source="override"
                )
                self._add_override(pid, entry)
        return len(models)

    def _add_override(self, pid: str | None, entry: ModelEntry) -> None:
        models = self._overrides.get(pid)
        if models is None:
            models = self._overrides[pid] = ProviderModels(pid or "", (), ())
        models.entries = [e for e in models.entries if e.id != entry.id]
        models.add(entry, first=True)
        self._lookups.clear()
        self._resolved.clear()
        self._plain.clear()
        self._rates.clear()

    def clear_overrides(self) -> None:
        """Forget every override (registered or loaded from a file)."""
        with self._lock:
            self._overrides.clear()
            self._override_specs.clear()
            self._lookups.clear()
            self._resolved.clear()
            self._plain.clear()
            self._rates.clear()

    def _load_env(self) -> None:
        self._env_pending = False
        value = os.environ.get("TOKENTRAIL_PRICING")
        if not value:
            return
        for part in value.split(os.pathsep):
            if not part.strip():
                continue
            try:
                self.load_file(part.strip())
            except Exception as exc:  # never break the app over a bad user file
                logger.warning("tokentrail: TOKENTRAIL_PRICING file ignored: %s", exc)

    # ------------------------------------------------------------------ lookup

    def find(self, model: str, provider: str | None = None) -> ModelEntry | None:
        """The catalog (or override) entry pricing ``model``, or ``None``. Cached."""
        key = (model, provider)
        try:
            return self._lookups[key]
        except KeyError:
            pass
        if self._env_pending:
            self._load_env()
        pid = normalize_provider(provider)
        entry = self._find(model, pid)
        if len(self._lookups) > _CACHE_LIMIT:
            self._lookups.clear()
        self._lookups[key] = entry
        return entry

    def _search_order(self, model: str, pid: str | None) -> list[str]:
        known = self.catalog.files
        inferred = provider_from_model(model)
        order: list[str] = []
        if pid is not None and pid in known:
            order.append(pid)
            if inferred and inferred != pid and inferred in known:
                order.append(inferred)
            return order
        if inferred and inferred in known:
            order.append(inferred)
        order.extend(p for p in self.catalog.provider_ids() if p not in order)
        return order

    def _find(self, model: str, pid: str | None) -> ModelEntry | None:
        candidates = name_candidates(model)
        for scope in (pid, None):
            overrides = self._overrides.get(scope)
            if overrides is not None:
                for name in candidates:
                    found = overrides.find(name)
                    if found is not None:
                        return found
        for provider_id in self._search_order(model, pid):
            models = self.catalog.provider(provider_id)
            if models is None:
                continue
            for name in candidates:
                found = models.find(name)
                if found is not None:
                    return found
            for fallback in models.fallback:
                other = self.catalog.provider(fallback)
                if other is None:
                    continue
                for name in candidates:
                    found = other.find(name)
                    if found is not None:
                        return found
        return None

    # ------------------------------------------------------------------ pricing

    def zero_cost(self, model: str | None, provider: str | None = None) -> Cost:
        """A $0 cost (local models, framework cache hits)."""
        return Cost(
            total=_ZERO,
            model=model,
            provider=normalize_provider(provider),
            catalog_version=self.catalog.version("local") or self.catalog.version(),
        )

    def cost(
        self,
        model: str | None,
        *,
        provider: str | None = None,
        at: datetime | date | str | None = None,
        usage: Usage | Mapping[str, Any] | None = None,
        variant: str | None = None,
        reported_cost: Decimal | float | str | None = None,
        strict: bool = False,
        **usage_fields: Any,
    ) -> Cost | None:
        """Price one call; see ``tokentrail.pricing.cost``."""
        try:
            return self._cost(
                model, provider, at, usage, variant, reported_cost, strict, usage_fields
            )
        except Exception as exc:
            if strict:
                if isinstance(exc, PricingError):
                    raise
                raise PricingError(f"cannot price {model!r}: {exc}") from exc
            logger.warning("tokentrail: cannot price model %r: %s", model, exc)
            return None

    def usage_cost(
        self,
        model: str,
        provider: str | None,
        usage: Usage,
        at: datetime | None = None,
        variant: str | None = None,
    ) -> Cost | None:
        """:meth:`cost` for a validated ``Usage`` and a provider id already normalized.

        The tracker's hot path: no argument coercion layers. Same results, never raises;
        for the usual call, a :class:`~tokentrail.pricing.lazy.LazyCost` (its figures are
        worked out by DuckDB when the row is stored, and by Python when first read).
        """
        try:
            if provider is not None and provider in self.catalog.local_providers():
                return self.zero_cost(model, provider)
            entry = self.find(model, provider) if model else None
            if entry is None:
                return self._cost(model, provider, at, usage, variant, None, False, {})
            if variant is None and entry.fixed:
                lazy = self._lazy_price(entry, usage)
                if lazy is not None:
                    return lazy
            return self._price(entry, usage, at, variant, False)[0]
        except Exception as exc:
            logger.warning("tokentrail: cannot price model %r: %s", model, exc)
            return None

    def lazy_rates(
        self, model: str, provider: str | None, usage: Usage
    ) -> tuple[tuple[Any, ...], tuple[str | None, ...]] | None:
        """What :meth:`usage_cost` puts in the :class:`~tokentrail.pricing.lazy.LazyCost`
        of the usual call (standard price), without building it: the ``Cost`` fields after
        the figures and the spool cells that let DuckDB price the row.

        ``None`` whenever :meth:`usage_cost` would not return a ``LazyCost`` (unknown model,
        local provider, dated or tiered prices, counts that do not split into leaves). For
        the store's one-step path; never raises.
        """
        key = (model, provider)
        try:
            rates = self._rates[key]
        except KeyError:
            rates = self._plain_rates(model, provider)
        except Exception:
            return None  # an unhashable provider: usage_cost decides on the general path
        if rates is None or usage.input_tokens > rates[0] or plain_leaf_counts(usage) is None:
            return None
        return rates[1], rates[2]

    def _plain_rates(self, model: str, provider: str | None) -> _Rates | None:
        try:
            if provider is not None and provider in self.catalog.local_providers():
                rates = None
            else:
                entry = self.find(model, provider)
                if entry is None or not entry.fixed:
                    rates = None
                else:
                    _, _, static, limit, cells = self._plain_entry(entry)
                    rates = None if cells is None else (limit, static, cells)
        except Exception:
            return None  # not remembered: usage_cost decides (and warns) on the general path
        if len(self._rates) > _CACHE_LIMIT:
            self._rates.clear()
        self._rates[(model, provider)] = rates
        return rates

    def _cost(
        self,
        model: str | None,
        provider: str | None,
        at: datetime | date | str | None,
        usage: Usage | Mapping[str, Any] | None,
        variant: str | None,
        reported_cost: Decimal | float | str | None,
        strict: bool,
        usage_fields: Mapping[str, Any],
    ) -> Cost | None:
        pid = normalize_provider(provider)
        if reported_cost is not None:
            return self._reported(model, pid, reported_cost)
        if pid is not None and pid in self.catalog.local_providers():
            return self.zero_cost(model, pid)
        entry = self.find(model, pid) if model else None
        if entry is None:
            if strict:
                raise UnknownModelError(str(model), pid)
            self._warn_once(
                f"model:{model}",
                "tokentrail: no price known for model %r (provider %r); its cost is left "
                "unknown. Add it with tokentrail.pricing.register(...) or a "
                "TOKENTRAIL_PRICING file.",
                model,
                pid,
            )
            return None
        counts = _as_usage(usage, usage_fields)
        return self._price(entry, counts, at, variant, strict)[0]

    def explain(
        self,
        model: str,
        *,
        provider: str | None = None,
        at: datetime | date | str | None = None,
        usage: Usage | Mapping[str, Any] | None = None,
        variant: str | None = None,
        **usage_fields: Any,
    ) -> tuple[Cost, list[tuple[str, int, Decimal | None, Decimal]]]:
        """The cost and its leaves: ``(leaf, tokens, USD per 1M tokens, cost)`` each.

        Strict: raises ``UnknownModelError`` or ``PricingError`` (for the CLI and tools).
        """
        pid = normalize_provider(provider)
        entry = self.find(model, pid)
        if entry is None:
            raise UnknownModelError(model, pid)
        cost, counts, prices = self._price(
            entry, _as_usage(usage, usage_fields), at, variant, strict=True
        )
        lines = [
            (leaf, n, None if p is None else p * _MILLION, _ZERO if p is None else p * n)
            for leaf, n, p in zip(LEAVES, counts, prices, strict=True)
        ]
        return cost, lines

    def _price(
        self,
        entry: ModelEntry,
        usage: Usage,
        at: datetime | date | str | None,
        variant: str | None,
        strict: bool,
    ) -> tuple[Cost, tuple[int, ...], _Resolved]:
        if variant is None and entry.fixed:
            plain = self._plain_price(entry, usage)
            if plain is not None:
                return plain
        return self._price_general(entry, usage, at, variant, strict)

    def _price_general(
        self,
        entry: ModelEntry,
        usage: Usage,
        at: datetime | date | str | None,
        variant: str | None,
        strict: bool,
    ) -> tuple[Cost, tuple[int, ...], _Resolved]:
        periods = entry.periods
        if variant is None and entry.fixed:
            index, period, day = 0, periods[0], None
        else:
            day, clock = _moment(at)
            found = entry.period_at(day, clock)
            # A call dated before the first known price: the earliest price is the best guess.
            index, period = found if found is not None else (0, periods[0])
        table = period.prices
        vtable = None
        if variant is not None:
            assert day is not None
            vtable = entry.variant_at(variant, day)
            if vtable is None:
                if strict:
                    raise PricingError(
                        f"model {entry.id!r} has no {variant!r} price on {day}; known variants: "
                        f"{sorted(entry.variants) or 'none'}"
                    )
                self._warn_once(
                    f"variant:{entry.id}:{variant}",
                    "tokentrail: model %r has no %r price; priced at the standard rate",
                    entry.id,
                    variant,
                )
        n_input = usage.input_tokens
        tier = vtier = None
        if table.tiers and n_input > table.tiers[0][0]:
            tier = max(t for t, _ in table.tiers if n_input > t)
        if vtable is not None and vtable.tiers and n_input > vtable.tiers[0][0]:
            vtier = max(t for t, _ in vtable.tiers if n_input > t)
        applied = variant if vtable is not None else None
        key = (id(entry), index, applied, tier, vtier)
        resolved = self._resolved.get(key)
        if resolved is None:
            merged = dict(table.at(n_input)[0])
            if vtable is not None:
                merged.update(vtable.at(n_input)[0])
            per_token = tuple(None if p is None else p / _MILLION for p in leaf_prices(merged))
            # Cost's fields after the leaves, positional (the hot path builds many Costs).
            static: tuple[Any, ...] = (
                "USD",
                entry.id,
                entry.provider or None,
                period.effective_from,
                entry.effective_to(index) if len(periods) > 1 else None,
                entry.catalog_version,
                "override" if entry.source == "override" else "catalog",
                applied,
                tier if tier is not None else vtier,
            )
            resolved = self._resolved[key] = (per_token, static)
        prices, static = resolved
        counts = leaf_counts(usage)
        leaf = [_ZERO if not n or p is None else p * n for n, p in zip(counts, prices, strict=True)]
        cost = trusted_cost(
            leaf[0] + leaf[1] + leaf[2] + leaf[3] + leaf[4] + leaf[5] + leaf[6] + leaf[7],
            leaf[0],
            leaf[1],
            leaf[2] + leaf[3],
            leaf[5],
            leaf[6],
            leaf[4] + leaf[7],
            *static,
        )
        return cost, counts, prices

    def _plain_entry(self, entry: ModelEntry) -> _Plain:
        """The per-token prices, ``Cost`` fields, tier limit and spool cells of an entry
        with one undated price (built by the general path when first needed)."""
        plain = self._plain.get(id(entry))
        if plain is None or plain[0] is not entry:
            tiers = entry.periods[0].prices.tiers
            _, _, per_token = self._price_general(entry, Usage(), None, None, False)
            static = self._resolved[(id(entry), 0, None, None, None)][1]
            limit = tiers[0][0] if tiers else MAX_TOKENS
            plain = self._plain[id(entry)] = (
                entry,
                per_token,
                static,
                limit,
                rate_cells(per_token),
            )
        return plain

    def _plain_price(
        self, entry: ModelEntry, usage: Usage
    ) -> tuple[Cost, tuple[int, ...], _Resolved] | None:
        """``_price`` for the usual call: one undated price, no variant, base tier.

        Same result as the general path (which builds it when first needed), without its
        per-call lookups; ``None`` when the call is in a long-context tier or its counts do
        not split into leaves (the general path then decides, raising where it must).
        """
        _, prices, static, limit, _ = self._plain_entry(entry)
        u = usage
        if u.input_tokens > limit:
            return None  # a long-context tier applies
        counts = plain_leaf_counts(u)
        if counts is None:
            return None
        return trusted_cost(*plain_figures(prices, counts), *static), counts, prices

    def _lazy_price(self, entry: ModelEntry, usage: Usage) -> LazyCost | None:
        """``_plain_price`` without the arithmetic: a :class:`LazyCost` that DuckDB prices
        at ingest (and Python when read); ``None`` when the plain path does not apply."""
        plain = self._lazy_entry(entry, usage)
        if plain is None:
            return None
        counts = plain_leaf_counts(usage)
        if counts is None:
            return None  # a negative leaf: the general path decides, and explains
        prices, static, cells = plain
        return lazy_cost(PendingPrice(prices, counts, static, cells))

    def _lazy_entry(
        self, entry: ModelEntry, usage: Usage
    ) -> tuple[_Resolved, tuple[Any, ...], tuple[str | None, ...]] | None:
        """The per-token prices, ``Cost`` fields and spool cells of ``entry`` when DuckDB
        can price ``usage`` at ingest (one undated price, cells that DuckDB reads exactly,
        no long-context tier), else ``None``."""
        plain = self._plain.get(id(entry))
        if plain is None or plain[0] is not entry:
            plain = self._plain_entry(entry)
        _, prices, static, limit, cells = plain
        if cells is None or usage.input_tokens > limit:
            return None
        return prices, static, cells

    def _reported(self, model: str | None, pid: str | None, reported: Any) -> Cost:
        try:
            total = Decimal(str(reported).strip())
        except (InvalidOperation, ValueError) as exc:
            raise PricingError(f"reported cost {reported!r} is not a number") from exc
        if not total.is_finite() or total < 0:
            raise PricingError(f"reported cost {reported!r} is not a finite amount >= 0")
        entry = self.find(model, pid) if model else None
        return Cost(
            total=total,
            model=entry.id if entry else model,
            provider=pid or (entry.provider if entry else None),
            catalog_version=entry.catalog_version if entry else None,
            source="provider",
        )

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning(message, *args)
