"""The billing rule: split a call's token counts into leaves, each billed once.

``Usage`` counts overlap (cache reads are part of the input, reasoning is part of the
output). A provider bills each token once, at the most specific price it has for it:

=================  ==========================================  =========================
leaf               tokens                                       price (falls back to)
=================  ==========================================  =========================
input              input - cache read - cache write - audio     input
cache_read         cache_read                                   cache_read → input
cache_write (5m)   cache_write - cache_write_1h                 cache_write → input
cache_write_1h     cache_write_1h                               cache_write_1h → cache_write → input
input_audio        input_audio                                  input_audio → input
output             output - reasoning - output audio            output
reasoning          reasoning                                    reasoning → output
output_audio       output_audio                                 output_audio → output
=================  ==========================================  =========================

Both functions here are pure: no catalog, no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..usage import Usage

__all__ = ["LEAVES", "LeafError", "leaf_counts", "leaf_prices", "plain_leaf_counts"]

#: Leaf names, in billing order (also the order of :func:`leaf_prices`' result).
LEAVES: tuple[str, ...] = (
    "input",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "input_audio",
    "output",
    "reasoning",
    "output_audio",
)

# leaf -> its price keys, most specific first
_FALLBACK: dict[str, tuple[str, ...]] = {
    "input": ("input",),
    "cache_read": ("cache_read", "input"),
    "cache_write": ("cache_write", "input"),
    "cache_write_1h": ("cache_write_1h", "cache_write", "input"),
    "input_audio": ("input_audio", "input"),
    "output": ("output",),
    "reasoning": ("reasoning", "output"),
    "output_audio": ("output_audio", "output"),
}


class LeafError(ValueError):
    """Token counts that cannot be split into leaves (subsets larger than their parent)."""


def leaf_counts(usage: Usage) -> tuple[int, ...]:
    """The token count of each leaf of :data:`LEAVES`, in order.

    Raises :class:`LeafError`, naming the offending fields and values, when the subsets of
    the input (or output) add up to more than it.
    """
    counts = plain_leaf_counts(usage)
    if counts is not None:
        return counts
    if usage.cache_write_1h_tokens > usage.cache_write_tokens:
        raise LeafError(
            f"cache_write_1h_tokens={usage.cache_write_1h_tokens} exceeds "
            f"cache_write_tokens={usage.cache_write_tokens}"
        )
    if usage.input_tokens < (
        usage.cache_read_tokens + usage.cache_write_tokens + usage.input_audio_tokens
    ):
        raise LeafError(
            f"cache_read_tokens={usage.cache_read_tokens} + cache_write_tokens="
            f"{usage.cache_write_tokens} + input_audio_tokens={usage.input_audio_tokens} "
            f"exceed input_tokens={usage.input_tokens}"
        )
    raise LeafError(
        f"reasoning_tokens={usage.reasoning_tokens} + output_audio_tokens="
        f"{usage.output_audio_tokens} exceed output_tokens={usage.output_tokens}"
    )


def plain_leaf_counts(usage: Usage) -> tuple[int, ...] | None:
    """:func:`leaf_counts` for the hot paths: ``None`` instead of an error when a leaf
    would be negative."""
    u = usage
    cache_read = u.cache_read_tokens
    cache_write = u.cache_write_tokens
    cache_1h = u.cache_write_1h_tokens
    audio_in = u.input_audio_tokens
    reasoning = u.reasoning_tokens
    audio_out = u.output_audio_tokens
    text_in = u.input_tokens - cache_read - cache_write - audio_in
    text_out = u.output_tokens - reasoning - audio_out
    cache_5m = cache_write - cache_1h
    if text_in < 0 or text_out < 0 or cache_5m < 0:
        return None
    return (text_in, cache_read, cache_5m, cache_1h, audio_in, text_out, reasoning, audio_out)


def leaf_prices(prices: Mapping[str, Decimal | None]) -> tuple[Decimal | None, ...]:
    """The price per 1M tokens of each leaf of :data:`LEAVES`, after fallbacks.

    ``None`` means no price at all along the chain (e.g. ``output`` of an embedding model).
    Unknown keys raise :class:`LeafError` naming them, so a typo never silently bills 0.
    """
    unknown = set(prices) - set(LEAVES)
    if unknown:
        raise LeafError(f"unknown price keys {sorted(unknown)}; expected some of {list(LEAVES)}")
    out: list[Decimal | None] = []
    for leaf in LEAVES:
        price = None
        for key in _FALLBACK[leaf]:
            price = prices.get(key)
            if price is not None:
                break
        out.append(price)
    return tuple(out)
