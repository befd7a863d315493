"""Cohere usage: v2 chat (``usage``), embed / rerank / classify (``meta``), v1 ``meta``.

Cohere bills the ``billed_units``, not the ``tokens``: ``tokens`` also count the prompt
template Cohere wraps around the messages, which is not charged
(docs.cohere.com/reference/chat, ``Usage``; docs.cohere.com/docs/how-does-cohere-pricing-work).

Mapping::

    billed_units.input_tokens   -> input_tokens
    billed_units.output_tokens  -> output_tokens
    tokens.input/output_tokens  -> the same, only when ``billed_units`` is absent

Where the record sits: ``usage`` (v2 chat), ``meta.billed_units`` (v2 embed, rerank,
classify and every v1 response), ``delta.usage`` of a v2 stream's ``message-end`` event,
or the usage record itself.

Dropped on purpose: ``search_units`` (rerank, billed per 1K searches) and
``classifications`` (billed per classification); the catalog prices tokens only, so these
calls are stored with their token counts and the per-unit fees are not in the cost.
"""

from __future__ import annotations

from typing import Any

from ..usage import Usage
from ._access import get, has_any, is_record, path
from ._build import Tally, logger, never_raises

__all__ = ["from_cohere"]

_UNITS = ("billed_units", "tokens")


def _usage_record(payload: Any) -> Any:
    if has_any(payload, *_UNITS):
        return payload
    for candidate in (get(payload, "usage"), get(payload, "meta"), path(payload, "delta", "usage")):
        if has_any(candidate, *_UNITS):
            return candidate
    return None


@never_raises("Cohere")
def from_cohere(payload: Any) -> Usage | None:
    """Usage of a Cohere response (``cohere`` SDK object or dict), billed units first.

    Example::

        >>> from_cohere({"usage": {"billed_units": {"input_tokens": 5, "output_tokens": 9},
        ...                        "tokens": {"input_tokens": 71, "output_tokens": 9}}})
        Usage(input_tokens=5, output_tokens=9, ...)
    """
    if not is_record(payload):
        if payload is not None:
            logger.warning("tokentrail: Cohere payload is a %s; dropped", type(payload).__name__)
        return None
    record = _usage_record(payload)
    if record is None:
        return None
    units = get(record, "billed_units")
    if not has_any(units, "input_tokens", "output_tokens"):
        units = get(record, "tokens")
    if not has_any(units, "input_tokens", "output_tokens"):
        return None  # e.g. a rerank response: search units only, no tokens
    tally = Tally("Cohere")
    return tally.usage(
        input_tokens=tally.count(get(units, "input_tokens"), "input_tokens"),
        output_tokens=tally.count(get(units, "output_tokens"), "output_tokens"),
    )
