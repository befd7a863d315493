"""Google Gemini ``usageMetadata`` (REST camelCase) and ``usage_metadata`` (SDK snake_case).

Mapping::

    input_tokens   = promptTokenCount + toolUsePromptTokenCount
    cache_read     = cachedContentTokenCount          (already inside promptTokenCount)
    input_audio    = AUDIO entries of promptTokensDetails + toolUsePromptTokensDetails
                     - AUDIO entries of cacheTokensDetails    (the uncached audio)
    cache_read_audio = AUDIO entries of cacheTokensDetails       (part of cache_read)
    output_tokens  = candidatesTokenCount + thoughtsTokenCount
    reasoning      = thoughtsTokenCount
    output_audio   = AUDIO entries of candidatesTokensDetails (responseTokensDetails, Live)
    input_image    = IMAGE entries of promptTokensDetails - IMAGE entries of cacheTokensDetails
    output_image   = IMAGE entries of candidatesTokensDetails (image models bill them at
                     their own rate: gemini-2.5-flash-image $30 per 1M against $2.50 text)
    input_video    = VIDEO entries of promptTokensDetails - VIDEO entries of cacheTokensDetails

``toolUsePromptTokenCount`` (tokens of tool results Google inserts, e.g. search grounding
and code execution) is billed as input and is counted in ``totalTokenCount`` but not in
``promptTokenCount``, so it is added to input (genai-prices does the same). The Live API's
``responseTokenCount`` stands in for ``candidatesTokenCount`` when the latter is absent.
``candidatesTokenCount`` already totals every candidate: ``candidateCount > 1`` is never
multiplied.

The per-modality ``promptTokensDetails`` include the cached tokens, and
``cacheTokensDetails`` says which modality was cached. Cached audio, images and
video are already in ``cachedContentTokenCount``, so they are taken out of
``input_audio``, ``input_image`` and ``input_video``: each cached token is billed once, cached audio at the model's
``cache_read_audio`` price (gemini-2.5-flash: $0.10 per 1M against $0.03 cached text),
cached images and video at the cache rate.

Dropped on purpose: ``totalTokenCount`` (recomputed), TEXT and DOCUMENT modality splits
(billed like text), ``trafficType``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..usage import Usage
from ._access import first, get, is_record, items
from ._build import Tally, logger, never_raises

__all__ = ["from_gemini", "from_gemini_stream"]

_MARKERS = (
    "promptTokenCount",
    "prompt_token_count",
    "candidatesTokenCount",
    "candidates_token_count",
    "totalTokenCount",
    "total_token_count",
)


def _field(obj: Any, camel: str) -> Any:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return first(obj, camel, snake)


def _usage_metadata(payload: Any) -> Any:
    if not is_record(payload):
        return None
    if first(payload, *_MARKERS) is not None:
        return payload
    usage = first(payload, "usageMetadata", "usage_metadata")
    if usage is not None and not is_record(usage):
        logger.warning("tokentrail: Gemini usageMetadata is a %s; dropped", type(usage).__name__)
        return None
    return usage


def _modality(details: Any, tally: Tally, label: str, kind: str = "AUDIO") -> int:
    """The tokens of the ``kind`` entries (``AUDIO``, ``IMAGE``, ``VIDEO``) of a details list."""
    total = 0
    for entry in items(details):
        modality = get(entry, "modality")
        # Enum members (MediaModality.AUDIO), their values ("AUDIO") and protobuf names.
        name = str(getattr(modality, "name", modality) or "").upper()
        if name.endswith(kind):
            total += tally.count(_field(entry, "tokenCount"), label)
    return total


@never_raises("Gemini")
def from_gemini(payload: Any) -> Usage | None:
    """Usage of a Gemini ``GenerateContentResponse`` or its usage metadata, any casing.

    Accepts REST JSON (``usageMetadata``/``promptTokenCount``), ``google-genai`` pydantic
    objects and older protobuf objects (``usage_metadata``/``prompt_token_count``).
    """
    usage = _usage_metadata(payload)
    if usage is None:
        return None
    tally = Tally("Gemini")
    prompt = tally.count(_field(usage, "promptTokenCount"), "promptTokenCount")
    tool_prompt = tally.count(_field(usage, "toolUsePromptTokenCount"), "toolUsePromptTokenCount")
    candidates_value = _field(usage, "candidatesTokenCount")
    if candidates_value is None:
        candidates_value = _field(usage, "responseTokenCount")
    candidates = tally.count(candidates_value, "candidatesTokenCount")
    thoughts = tally.count(_field(usage, "thoughtsTokenCount"), "thoughtsTokenCount")
    output_details = _field(usage, "candidatesTokensDetails")
    if output_details is None:
        output_details = _field(usage, "responseTokensDetails")
    prompt_details = _field(usage, "promptTokensDetails")
    cache_details = _field(usage, "cacheTokensDetails")
    audio_in = _modality(prompt_details, tally, "prompt audio") + _modality(
        _field(usage, "toolUsePromptTokensDetails"), tally, "tool prompt audio"
    )
    cached_audio = _modality(cache_details, tally, "cached audio")
    image_in = _modality(prompt_details, tally, "prompt image", "IMAGE")
    cached_image = _modality(cache_details, tally, "cached image", "IMAGE")
    video_in = _modality(prompt_details, tally, "prompt video", "VIDEO")
    cached_video = _modality(cache_details, tally, "cached video", "VIDEO")
    return tally.usage(
        input_tokens=prompt + tool_prompt,
        cache_read_tokens=tally.count(
            _field(usage, "cachedContentTokenCount"), "cachedContentTokenCount"
        ),
        input_audio_tokens=max(audio_in - cached_audio, 0),
        output_tokens=candidates + thoughts,
        reasoning_tokens=thoughts,
        output_audio_tokens=_modality(output_details, tally, "output audio"),
        input_image_tokens=max(image_in - cached_image, 0),
        cache_read_audio_tokens=cached_audio,
        output_image_tokens=_modality(output_details, tally, "output image", "IMAGE"),
        input_video_tokens=max(video_in - cached_video, 0),
    )


@never_raises("Gemini stream")
def from_gemini_stream(chunks: Iterable[Any]) -> Usage | None:
    """Usage of a streamed Gemini response: each chunk's metadata is cumulative, the last wins."""
    last: Any = None
    for chunk in chunks:
        usage = _usage_metadata(chunk)
        if usage is not None:
            last = usage
    return None if last is None else from_gemini(last)
