"""The billing rule: split a call's token counts into leaves, each billed once.

``Usage`` counts overlap (cache reads are part of the input, reasoning is part of the
output). A provider bills each token once, at the most specific price it has for it:

=================  ==========================================  =========================
leaf               tokens                                       price (falls back to)
=================  ==========================================  =========================
input              input - cache read - cache write - audio     input
                   - image - video
cache_read         cache_read - cache_read_audio                cache_read → input
cache_write (5m)   cache_write - cache_write_1h                 cache_write → input
cache_write_1h     cache_write_1h                               cache_write_1h → cache_write → input
input_audio        input_audio                                  input_audio → input
output             output - reasoning - output audio - image    output
reasoning          reasoning                                    reasoning → output
output_audio       output_audio                                 output_audio → output
input_image        input_image                                  input_image → input
output_image       output_image                                 output_image → output
cache_read_audio   cache_read_audio                             cache_read_audio →
                                                                cache_read → input
input_video        input_video                                  input_video → input
request            1 (the call), 0 when it used nothing         request (per 1K)
web_search         web_search_requests                          web_search (per 1K)
=================  ==========================================  =========================

The last two are fees, not tokens: their prices are USD per 1K requests or searches
(:data:`LEAF_UNITS`). A call is one request, unless it used no token and no search (a
call that failed before the provider did anything is not billed a request fee).

Both functions here are pure: no catalog, no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..usage import Usage
from .schema import PRICE_KEYS

__all__ = ["FEE_LEAVES", "LEAF_UNITS", "LEAVES", "LeafError", "leaf_counts", "leaf_prices"]

#: Leaf names, in billing order (also the order of :func:`leaf_prices`' result): one leaf
#: per catalog price key.
LEAVES: tuple[str, ...] = PRICE_KEYS

#: The leaves billed per call, not per token: their prices are USD per 1K.
FEE_LEAVES: tuple[str, ...] = ("request", "web_search")

#: How many units each leaf's price is quoted for: 1M tokens, or 1K requests / searches.
LEAF_UNITS: tuple[int, ...] = tuple(1_000 if leaf in FEE_LEAVES else 1_000_000 for leaf in LEAVES)

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
    "input_image": ("input_image", "input"),
    "output_image": ("output_image", "output"),
    "cache_read_audio": ("cache_read_audio", "cache_read", "input"),
    "input_video": ("input_video", "input"),
    "request": ("request",),
    "web_search": ("web_search",),
}


class LeafError(ValueError):
    """Token counts that cannot be split into leaves (subsets larger than their parent)."""


def leaf_counts(usage: Usage) -> tuple[int, ...]:
    """The count of each leaf of :data:`LEAVES`, in order (tokens, then 1 request and
    the web searches).

    Raises :class:`LeafError`, naming the offending fields and values, when a leaf would
    be negative: the input's subsets (cache read, cache write, input audio, image, video)
    together, or the output's (reasoning, output audio and image), exceed it, or the
    1-hour writes exceed the writes.
    """
    u = usage
    text_in = (
        u.input_tokens
        - u.cache_read_tokens
        - u.cache_write_tokens
        - u.input_audio_tokens
        - u.input_image_tokens
        - u.input_video_tokens
    )
    cache_5m = u.cache_write_tokens - u.cache_write_1h_tokens
    cache_text = u.cache_read_tokens - u.cache_read_audio_tokens
    text_out = u.output_tokens - u.reasoning_tokens - u.output_audio_tokens - u.output_image_tokens
    if text_in >= 0 and cache_5m >= 0 and text_out >= 0 and cache_text >= 0:  # the usual case
        return (
            text_in,
            cache_text,
            cache_5m,
            u.cache_write_1h_tokens,
            u.input_audio_tokens,
            text_out,
            u.reasoning_tokens,
            u.output_audio_tokens,
            u.input_image_tokens,
            u.output_image_tokens,
            u.cache_read_audio_tokens,
            u.input_video_tokens,
            1 if u.input_tokens or u.output_tokens or u.web_search_requests else 0,
            u.web_search_requests,
        )
    if cache_text < 0:
        raise LeafError(
            f"cache_read_audio_tokens={u.cache_read_audio_tokens} exceeds "
            f"cache_read_tokens={u.cache_read_tokens}"
        )
    if cache_5m < 0:
        raise LeafError(
            f"cache_write_1h_tokens={u.cache_write_1h_tokens} exceeds "
            f"cache_write_tokens={u.cache_write_tokens}"
        )
    if text_in < 0:
        raise LeafError(
            f"cache_read_tokens={u.cache_read_tokens} + cache_write_tokens="
            f"{u.cache_write_tokens} + input_audio_tokens={u.input_audio_tokens} + "
            f"input_image_tokens={u.input_image_tokens} + input_video_tokens="
            f"{u.input_video_tokens} exceed input_tokens={u.input_tokens}"
        )
    raise LeafError(
        f"reasoning_tokens={u.reasoning_tokens} + output_audio_tokens="
        f"{u.output_audio_tokens} + output_image_tokens={u.output_image_tokens} "
        f"exceed output_tokens={u.output_tokens}"
    )


def leaf_prices(prices: Mapping[str, Decimal | None]) -> tuple[Decimal | None, ...]:
    """The price of each leaf of :data:`LEAVES` per :data:`LEAF_UNITS`, after fallbacks.

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
