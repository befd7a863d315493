"""The one entry for a provider's response object: the reader of its shape, or the generic one.

Frameworks hand over whatever the provider's client returned (LlamaIndex's
``response.raw``). :func:`read_response` asks the readers of the SDK objects it knows, each
of which declines any other shape at once, and reads anything else with the generic reader.
"""

from __future__ import annotations

import logging
from typing import Any

from .anthropic_sdk import read_anthropic_response
from .openai_sdk import read_openai_response
from .payload import read_payload
from .response_info import NOTHING, ResponseInfo

__all__ = ["ResponseInfo", "read_response"]

logger = logging.getLogger("tokentrail")


def read_response(
    raw: Any, *, provider: str | None = None, model: str | None = None
) -> ResponseInfo:
    """Model, response id, price variant and usage of a provider response; never raises.

    ``provider`` (a provider id such as ``"openai"``, ``"deepseek"``, ``"anthropic"``) and
    ``model`` (the model the caller asked for) help read the shapes that need them.

    Example::

        >>> info = read_response(completion, provider="openai")   # an openai ChatCompletion
        >>> info.model, info.usage.input_tokens
        ('gpt-4o-mini-2024-07-18', 1200)
    """
    if raw is None:
        return NOTHING
    try:
        found = read_openai_response(raw, provider=provider, model=model)
        if found is None:
            found = read_anthropic_response(raw)
        if found is None:
            found = read_payload(raw, provider=provider, model=model)
        return found
    except Exception:  # a response we cannot read is a response without information
        logger.warning("tokentrail: could not read a %s response", type(raw).__name__)
        return NOTHING
