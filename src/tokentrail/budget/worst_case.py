"""A call's worst case before it is sent: prompt tokens counted, reply bounded, priced.

The prompt is counted with the model's tokenizer (:mod:`tokentrail.estimate`; heuristic
counts get a safety margin), the reply is bounded by ``max_tokens`` or else by the most
the model can return (the catalog's ``max_output_tokens``, else its context window, else
``GuardConfig.default_output_tokens``), and the sum is priced from the catalog.
:class:`RateCache` keeps a per-model price per token and reply bound so the common call
needs no catalog lookup.
"""

from __future__ import annotations

import logging
import math
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from .. import estimate as est
from .request import Estimate, GuardConfig, PreflightRequest

if TYPE_CHECKING:
    from ..usage import Usage

__all__ = ["RateCache", "estimate_call", "price_tokens", "price_usage", "reply_bound"]

logger = logging.getLogger("tokentrail")


def estimate_call(
    request: PreflightRequest, config: GuardConfig, rates: RateCache, variant: str | None
) -> Estimate:
    """The worst case of ``request``: counted prompt + reply bound, priced at ``variant``."""
    model = None if request.model is None else str(request.model)
    if request.messages:
        prompt = est.count_message_tokens(request.messages, model, request.tools)
    else:
        prompt = est.count_text_tokens(request.prompt, model)
        if request.tools:
            prompt += est.count_tools_tokens(request.tools, model)
    exact = est.is_exact(model)
    if not exact:
        prompt = math.ceil(prompt * config.heuristic_margin)
    output = request.max_tokens
    if output is None or isinstance(output, bool) or not isinstance(output, int) or output < 0:
        output = rates.reply_bound(model, request.provider, config.default_output_tokens)
    usd = rates.price(model, request.provider, prompt, output, variant)
    return Estimate(prompt, output, usd, exact)


class RateCache:
    """Pre-flight prices without a catalog lookup per call.

    Per (model, provider, variant) the input and output prices per token are taken from
    :func:`tokentrail.pricing.cost` once a minute; when the model has long-context tiers
    (the cost of a huge prompt is not proportional) every estimate is priced exactly.
    """

    TTL = 60.0
    PROBE = 1000
    BIG = 2_000_000

    def __init__(self) -> None:
        # (model, provider, variant) -> (when probed, (input, output) per token or None)
        self._rates: dict[
            tuple[str, str | None, str | None], tuple[float, tuple[Decimal, Decimal] | None]
        ] = {}
        self._bounds: dict[tuple[str | None, str | None], int | None] = {}

    def reply_bound(self, model: str | None, provider: str | None, default: int) -> int:
        """The most tokens ``model`` can return (memoized), ``default`` when unknown."""
        key = (model, provider)
        if key not in self._bounds:
            if len(self._bounds) > 4096:
                self._bounds.clear()
            self._bounds[key] = reply_bound(model, provider)
        found = self._bounds[key]
        return default if found is None else found

    def price(
        self,
        model: str | None,
        provider: str | None,
        prompt: int,
        output: int,
        variant: str | None = None,
    ) -> Decimal | None:
        """The cost of ``prompt`` input and ``output`` output tokens; ``None``: no price."""
        if not model:
            return None
        key = (model, provider, variant)
        entry = self._rates.get(key)
        if entry is None or time.monotonic() - entry[0] > self.TTL:
            entry = (time.monotonic(), self._probe(model, provider, variant))
            self._rates[key] = entry
        rates = entry[1]
        if rates is None:  # tiered or unknown: exact
            return price_tokens(model, provider, prompt, output, variant)
        return rates[0] * prompt + rates[1] * output

    def _probe(
        self, model: str, provider: str | None, variant: str | None
    ) -> tuple[Decimal, Decimal] | None:
        small_in = price_tokens(model, provider, self.PROBE, 0, variant)
        small_out = price_tokens(model, provider, 0, self.PROBE, variant)
        big_in = price_tokens(model, provider, self.BIG, 0, variant)
        if small_in is None or small_out is None or big_in is None:
            return None
        if big_in * self.PROBE != small_in * self.BIG:
            return None  # long-context tiers: not proportional
        return (small_in / self.PROBE, small_out / self.PROBE)


def price_tokens(
    model: str | None,
    provider: str | None,
    prompt: int,
    output: int,
    variant: str | None = None,
) -> Decimal | None:
    """The catalog cost of a call of ``prompt`` + ``output`` tokens; ``None``: no price."""
    if not model:
        return None
    try:
        from ..pricing import cost
        from ..usage import Usage

        priced = cost(
            model,
            provider=provider,
            usage=Usage(input_tokens=prompt, output_tokens=output),
            variant=variant,
        )
    except Exception:
        logger.warning("tokentrail: could not price a pre-flight estimate", exc_info=True)
        return None
    return None if priced is None else priced.total


def reply_bound(model: str | None, provider: str | None) -> int | None:
    """The catalog's ``max_output_tokens`` for ``model``, else its context window."""
    if not model:
        return None
    try:
        from ..pricing import find_model

        entry = find_model(model, provider)
    except Exception:
        logger.warning("tokentrail: could not look up %r in the catalog", model, exc_info=True)
        return None
    if entry is None:
        return None
    return entry.max_output_tokens or entry.context_window


def price_usage(model: str | None, provider: str | None, usage: Usage) -> Decimal | None:
    """The catalog cost of ``usage`` at ``model``'s price; ``None`` when it has none."""
    if not model:
        return None
    try:
        from ..pricing import cost

        priced = cost(model, provider=provider, usage=usage)
    except Exception:
        logger.warning("tokentrail: could not price a call at %r", model, exc_info=True)
        return None
    return None if priced is None else priced.total
