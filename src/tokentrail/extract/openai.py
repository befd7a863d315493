"""OpenAI Chat Completions and Responses usage, and OpenAI streams.

Chat Completions ``usage``::

    prompt_tokens                              -> input_tokens (includes cached and audio)
    prompt_tokens_details.cached_tokens        -> cache_read_tokens
    prompt_tokens_details.cache_write_tokens   -> cache_write_tokens
    prompt_tokens_details.audio_tokens         -> input_audio_tokens
    completion_tokens                          -> output_tokens (includes reasoning, audio)
    completion_tokens_details.reasoning_tokens -> reasoning_tokens
    completion_tokens_details.audio_tokens     -> output_audio_tokens

Dropped on purpose: ``total_tokens`` (always recomputed as input + output) and
``accepted/rejected_prediction_tokens`` (already counted in ``completion_tokens``).

Responses ``usage``: ``input_tokens``, ``input_tokens_details.cached_tokens`` /
``cache_write_tokens``, ``output_tokens``, ``output_tokens_details.reasoning_tokens``.

Realtime ``response.done`` ``usage`` names its details in the singular
(``input_token_details`` / ``output_token_details``) and splits the cached tokens by
modality (``cached_tokens_details.audio_tokens``). Its ``audio_tokens`` include the cached
audio, which is billed once, at the cache rate: ``input_audio_tokens`` is the uncached
audio only, the cached audio is ``cache_read_audio_tokens`` (gpt-realtime bills cached
text and cached audio alike, $0.40 per 1M); uncached ``image_tokens`` likewise.

A whole Responses object lists the web searches it ran as ``output`` items of type
``web_search_call``: their number is ``web_search_requests`` (billed per call).

Image models (``gpt-image-1``) report ``input_tokens_details.image_tokens`` (and newer ones
``output_tokens_details.image_tokens``): ``input_image_tokens`` / ``output_image_tokens``.

A response with ``n > 1`` choices carries ONE ``usage`` for all of them: it is read once,
never multiplied by the number of choices. Streams: see :mod:`.openai_stream`.
"""

from __future__ import annotations

from typing import Any

from ..usage import Usage
from ._access import first, get, has_any, is_record
from ._build import Tally, logger, never_raises

__all__ = [
    "from_openai_chat",
    "from_openai_responses",
    "openai_chat_counts",
    "usage_object",
]

_CHAT_KEYS = ("prompt_tokens", "completion_tokens")
_RESPONSES_KEYS = ("input_tokens", "output_tokens")


def usage_object(payload: Any, markers: tuple[str, ...], source: str) -> Any:
    """The usage record in ``payload``: itself when it carries ``markers``, else ``.usage``.

    ``None`` when there is none (nothing to report); a warning when ``usage`` is present
    but is not a record (a string, a number, a list).
    """
    if not is_record(payload):
        if payload is not None:
            logger.warning(
                "tokentrail: %s usage payload is a %s, not a record; usage dropped",
                source,
                type(payload).__name__,
            )
        return None
    if has_any(payload, *markers):
        return payload
    usage = get(payload, "usage")
    if usage is None:
        return None
    if not is_record(usage):
        logger.warning(
            "tokentrail: %s usage is a %s, not a record; usage dropped",
            source,
            type(usage).__name__,
        )
        return None
    return usage


def openai_chat_counts(usage: Any, tally: Tally) -> dict[str, int]:
    """The canonical counts of a Chat Completions ``usage`` record (no quirks applied)."""
    prompt_details = get(usage, "prompt_tokens_details")
    completion_details = get(usage, "completion_tokens_details")
    return {
        "input_tokens": tally.count(get(usage, "prompt_tokens"), "prompt_tokens"),
        "output_tokens": tally.count(get(usage, "completion_tokens"), "completion_tokens"),
        "cache_read_tokens": tally.count(get(prompt_details, "cached_tokens"), "cached_tokens"),
        "cache_write_tokens": tally.count(
            get(prompt_details, "cache_write_tokens"), "cache_write_tokens"
        ),
        "input_audio_tokens": tally.count(get(prompt_details, "audio_tokens"), "audio_tokens"),
        "reasoning_tokens": tally.count(
            get(completion_details, "reasoning_tokens"), "reasoning_tokens"
        ),
        "output_audio_tokens": tally.count(get(completion_details, "audio_tokens"), "audio_tokens"),
    }


@never_raises("OpenAI chat")
def from_openai_chat(payload: Any) -> Usage | None:
    """Usage of an OpenAI Chat Completions response, chunk, or its ``usage`` record.

    Accepts ``openai.types.chat.ChatCompletion``, ``CompletionUsage``, or the same as dicts.
    Returns ``None`` when the payload carries no usage (e.g. a stream chunk before the last).

    Example::

        >>> from_openai_chat({"usage": {"prompt_tokens": 10, "completion_tokens": 3}})
        Usage(input_tokens=10, output_tokens=3, ...)
    """
    usage = usage_object(payload, _CHAT_KEYS, "OpenAI chat")
    if usage is None:
        return None
    if not has_any(usage, *_CHAT_KEYS) and has_any(usage, *_RESPONSES_KEYS):
        return from_openai_responses(usage)  # a Responses API payload given to the chat reader
    tally = Tally("OpenAI chat")
    return tally.usage(**openai_chat_counts(usage, tally))


@never_raises("OpenAI responses")
def from_openai_responses(payload: Any) -> Usage | None:
    """Usage of an OpenAI Responses API response (or its ``usage``, or a completed event).

    Accepts ``openai.types.responses.Response``, ``ResponseUsage``, a
    ``response.completed`` stream event, or the same as dicts.
    """
    if get(payload, "response") is not None and not has_any(payload, *_RESPONSES_KEYS):
        payload = get(payload, "response")  # response.completed / response.done events
    usage = usage_object(payload, _RESPONSES_KEYS, "OpenAI responses")
    if usage is None:
        return None
    tally = Tally("OpenAI responses")
    input_details = first(usage, "input_tokens_details", "input_token_details")
    output_details = first(usage, "output_tokens_details", "output_token_details")
    cached_details = get(input_details, "cached_tokens_details")
    audio_in = tally.count(get(input_details, "audio_tokens"), "audio_tokens")
    cached_audio = tally.count(get(cached_details, "audio_tokens"), "cached audio_tokens")
    image_in = tally.count(get(input_details, "image_tokens"), "image_tokens")
    cached_image = tally.count(get(cached_details, "image_tokens"), "cached image_tokens")
    return tally.usage(
        input_tokens=tally.count(get(usage, "input_tokens"), "input_tokens"),
        output_tokens=tally.count(get(usage, "output_tokens"), "output_tokens"),
        cache_read_tokens=tally.count(get(input_details, "cached_tokens"), "cached_tokens"),
        cache_write_tokens=tally.count(
            get(input_details, "cache_write_tokens"), "cache_write_tokens"
        ),
        input_audio_tokens=max(audio_in - cached_audio, 0),
        reasoning_tokens=tally.count(get(output_details, "reasoning_tokens"), "reasoning_tokens"),
        output_audio_tokens=tally.count(get(output_details, "audio_tokens"), "audio_tokens"),
        input_image_tokens=max(image_in - cached_image, 0),
        cache_read_audio_tokens=cached_audio,
        output_image_tokens=tally.count(get(output_details, "image_tokens"), "image_tokens"),
        web_search_requests=_web_search_calls(payload),
    )


def _web_search_calls(response: Any) -> int:
    """How many ``web_search_call`` items a Responses object's ``output`` lists."""
    items = get(response, "output")
    if not isinstance(items, (list, tuple)):
        return 0
    return sum(1 for item in items if get(item, "type") == "web_search_call")
