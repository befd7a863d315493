"""The cost engine: match a model name, pick the prices in force, bill each leaf once."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import PricingError, UnknownModelError
from ..formatting import shown
from ..providers import normalize_provider, provider_from_model
from ..usage import Usage
from .catalog import Catalog, ModelEntry, PriceTable, ProviderModels, entry_from_spec
from .leaves import LEAF_UNITS, LEAVES, leaf_counts, leaf_prices
from .names import name_candidates
from .types import Cost

__all__ = ["Pricer"]

logger = logging.getLogger("tokentrail")

_ZERO = Decimal(0)
_CACHE_LIMIT = 20_000
# Distinct pricing warnings logged per process (model names can be generated per call).
_MAX_WARNINGS = 1000
_HASHABLE = (str, type(None))
# Each leaf's price per token (None: no price along its fallback chain).
_Resolved = tuple[Decimal | None, ...]
# (id of the entry, price period index, variant applied, tier, variant tier): what decides
# the rates of a call; calls repeat a few models, so the rates are worked out once per key.
_RatesKey = tuple[int, int, str | None, int | None, int | None]


# The money columns of a ``Cost`` in its field order, and the column each leaf of
# ``LEAVES`` is billed in: images and video have no column of their own (they are input
# and output), audio in and out share one, the fees share one.
_MONEY_ORDER = ("input", "cache_read", "cache_write", "output", "reasoning", "audio", "fee")
_LEAF_MONEY = {
    "cache_write_1h": "cache_write",
    "input_audio": "audio",
    "output_audio": "audio",
    "input_image": "input",
    "output_image": "output",
    "cache_read_audio": "cache_read",
    "input_video": "input",
    "request": "fee",
    "web_search": "fee",
}
_LEAF_COLUMNS: tuple[int, ...] = tuple(
    _MONEY_ORDER.index(_LEAF_MONEY.get(leaf, leaf)) for leaf in LEAVES
)
# A ``Cost`` is built from positions (cheaper than names): the total, the money columns,
# then the fields a call's rates decide (memoized with them, in this order).
_COST_FIELDS = tuple(f.name for f in fields(Cost))
assert _COST_FIELDS[: 1 + len(_MONEY_ORDER)] == ("total", *(f"{m}_cost" for m in _MONEY_ORDER))
_STATIC_FIELDS = _COST_FIELDS[1 + len(_MONEY_ORDER) :]


def _first_match(models: ProviderModels | None, names: Sequence[str]) -> ModelEntry | None:
    """The entry of ``models`` matching the first of ``names`` that matches one."""
    if models is not None:
        for name in names:
            found = models.find(name)
            if found is not None:
                return found
    return None


def _tier(table: PriceTable, n_input: int) -> int | None:
    """The long-context tier (its input threshold) a call of ``n_input`` tokens is in."""
    if table.tiers and n_input > table.tiers[0][0]:
        return max(t for t, _ in table.tiers if n_input > t)
    return None


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
        return Usage.from_counts(dict(fields), source="cost()")
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
        self._matches: dict[tuple[Any, Any], tuple[str | None, bool, ModelEntry | None]] = {}
        # see _RatesKey -> (per-token prices, the Cost fields that are not money)
        self._resolved: dict[_RatesKey, tuple[_Resolved, tuple[Any, ...]]] = {}
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
        request: Decimal | float | str | None = None,
        web_search: Decimal | float | str | None = None,
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
            "request": request,
            "web_search": web_search,
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
        self._forget_memos()

    def clear_overrides(self) -> None:
        """Forget every override (registered or loaded from a file)."""
        with self._lock:
            self._overrides.clear()
            self._override_specs.clear()
            self._forget_memos()

    def _forget_memos(self) -> None:
        """Drop every memoized lookup and rate: the overrides they were made from changed."""
        self._lookups.clear()
        self._matches.clear()
        self._resolved.clear()

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
        """Overrides first (the provider's, then provider-less ones), then the catalog
        in :meth:`_search_order`, each provider's fallback providers after it."""
        candidates = name_candidates(model)
        # A registered price applies wherever its name is seen, unless the call names
        # another provider: with no provider, every provider's overrides are searched.
        scopes = (pid, None) if pid is not None else (None, *self._overrides)
        for scope in scopes:
            found = _first_match(self._overrides.get(scope), candidates)
            if found is not None:
                return found
        for provider_id in self._search_order(model, pid):
            found = self._find_in(provider_id, candidates)
            if found is not None:
                return found
        return None

    def _find_in(self, provider_id: str, candidates: Sequence[str]) -> ModelEntry | None:
        """The catalog entry of ``provider_id`` (or of its fallback providers) matching."""
        models = self.catalog.provider(provider_id)
        if models is None:
            return None
        found = _first_match(models, candidates)
        for fallback in models.fallback:
            if found is not None:
                break
            found = _first_match(self.catalog.provider(fallback), candidates)
        return found

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
            logger.warning("tokentrail: cannot price model %s: %s", shown(model), exc)
            return None

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
        pid, local, entry = self._match(model, provider)
        if reported_cost is not None:
            return self._reported(model, pid, reported_cost)
        if local:
            return self.zero_cost(model, pid)
        if entry is None:
            if strict:
                raise UnknownModelError(str(model), pid)
            self._warn_once(
                f"model:{model}",
                "tokentrail: no price known for model %s (provider %s); its cost is left "
                "unknown. Add it with tokentrail.pricing.register(...) or a "
                "TOKENTRAIL_PRICING file.",
                shown(model),
                shown(pid),
            )
            return None
        counts = _as_usage(usage, usage_fields)
        return self._price(entry, counts, at, variant, strict)[0]

    def _match(
        self, model: str | None, provider: str | None
    ) -> tuple[str | None, bool, ModelEntry | None]:
        """The provider id, whether it is priced at 0 (local) and the entry pricing ``model``."""
        try:  # memoized per argument pair (cleared with the overrides): calls repeat a few
            return self._matches[(model, provider)]
        except (KeyError, TypeError):  # TypeError: an unhashable argument, not memoized
            pass
        pid = normalize_provider(provider)
        local = pid is not None and pid in self.catalog.local_providers()
        entry = self.find(model, pid) if model and not local else None
        match = (pid, local, entry)
        if type(provider) in _HASHABLE and type(model) in _HASHABLE:
            if len(self._matches) > _CACHE_LIMIT:
                self._matches.clear()
            self._matches[(model, provider)] = match
        return match

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
        """The cost and its leaves: ``(leaf, count, price, cost)`` each.

        The price is USD per 1M tokens, or per 1K for the ``request`` and ``web_search``
        fees (:data:`~tokentrail.pricing.leaves.LEAF_UNITS`).

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
            (leaf, n, None if p is None else p * unit, _ZERO if p is None else p * n)
            for leaf, n, p, unit in zip(LEAVES, counts, prices, LEAF_UNITS, strict=True)
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
        """Bill each leaf of ``usage`` once at ``entry``'s prices in force ``at``."""
        counts = leaf_counts(usage)
        prices, static = self._rates(entry, usage.input_tokens, at, variant, strict)
        # Most leaves of a call are zero (no images, audio, fees...): only the others are
        # billed and added, into their money column and the total (exact: Decimal sums).
        money = [_ZERO] * len(_MONEY_ORDER)
        total = _ZERO
        for n, p, column in zip(counts, prices, _LEAF_COLUMNS, strict=True):
            if n and p is not None:
                billed = p * n
                money[column] = billed if money[column] is _ZERO else money[column] + billed
                total = billed if total is _ZERO else total + billed
        input_cost, read, write, output, reasoning, audio, fee = money
        cost = Cost(total, input_cost, read, write, output, reasoning, audio, fee, *static)
        return cost, counts, prices

    def _rates(
        self,
        entry: ModelEntry,
        n_input: int,
        at: datetime | date | str | None,
        variant: str | None,
        strict: bool,
    ) -> tuple[_Resolved, tuple[Any, ...]]:
        """The per-token price of each leaf and the ``Cost`` fields that are not money
        (in ``_STATIC_FIELDS`` order).

        Memoized per entry, period, variant and tier: most calls repeat a few models.
        """
        periods = entry.periods
        if variant is None and entry.fixed:
            index, period, day = 0, periods[0], None  # one price for all time: no clock read
        else:
            day, clock = _moment(at)
            found = entry.period_at(day, clock)
            # A call dated before the first known price: the earliest price is the best guess.
            index, period = found if found is not None else (0, periods[0])
        table = period.prices
        vtable = None if variant is None else self._variant(entry, variant, day, strict)
        tier = _tier(table, n_input)
        vtier = None if vtable is None else _tier(vtable, n_input)
        applied = variant if vtable is not None else None
        key = (id(entry), index, applied, tier, vtier)
        resolved = self._resolved.get(key)
        if resolved is not None:
            return resolved
        merged = dict(table.at(n_input)[0])
        if vtable is not None:
            merged.update(vtable.at(n_input)[0])
        per_token = tuple(
            None if p is None else p / unit
            for p, unit in zip(leaf_prices(merged), LEAF_UNITS, strict=True)
        )
        static: dict[str, Any] = {
            "currency": "USD",
            "model": entry.id,
            "provider": entry.provider or None,
            "effective_from": period.effective_from,
            "effective_to": entry.effective_to(index) if len(periods) > 1 else None,
            "catalog_version": entry.catalog_version,
            "source": "override" if entry.source == "override" else "catalog",
            "variant": applied,
            "tier_threshold": tier if tier is not None else vtier,
        }
        if len(self._resolved) > _CACHE_LIMIT:
            self._resolved.clear()
        resolved = self._resolved[key] = (per_token, tuple(static[f] for f in _STATIC_FIELDS))
        return resolved

    def _variant(
        self, entry: ModelEntry, variant: str, day: date | None, strict: bool
    ) -> PriceTable | None:
        """The price table of ``variant`` on ``day``; ``None`` (logged once) when unknown."""
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
                "tokentrail: model %r has no %s price; priced at the standard rate",
                entry.id,
                shown(variant),
            )
        return vtable

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
        if key in self._warned or len(self._warned) > _MAX_WARNINGS:
            return
        self._warned.add(key)
        logger.warning(message, *args)
        if len(self._warned) > _MAX_WARNINGS:
            logger.warning(
                "tokentrail: %d different pricing warnings so far; no more are logged "
                "(costs stay unknown where they were not priced)",
                len(self._warned),
            )
