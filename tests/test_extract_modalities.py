"""Modality splits that overlap the cache: Gemini cached audio and OpenAI Realtime details.

Prices are the catalog's (USD per 1M tokens), hand-multiplied below.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail import Usage
from tokentrail.extract import extract_usage, from_gemini, from_openai_responses
from tokentrail.pricing.catalog import Catalog, catalog_dir
from tokentrail.pricing.engine import Pricer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def pricer(tmp_path_factory: pytest.TempPathFactory) -> Pricer:
    cache: Path = tmp_path_factory.mktemp("catalog-cache")
    return Pricer(Catalog(catalog_dir(), cache_dir=cache), env=False)


# Shape of Gemini's UsageMetadata (ai.google.dev/api/generate-content#UsageMetadata):
# promptTokensDetails lists every prompt token by modality, cached ones included;
# cacheTokensDetails lists the cached ones by modality.
GEMINI_CACHED_AUDIO = {
    "usageMetadata": {
        "promptTokenCount": 10_000,
        "cachedContentTokenCount": 8_000,
        "candidatesTokenCount": 200,
        "totalTokenCount": 10_200,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 1_000},
            {"modality": "AUDIO", "tokenCount": 9_000},
        ],
        "cacheTokensDetails": [
            {"modality": "TEXT", "tokenCount": 500},
            {"modality": "AUDIO", "tokenCount": 7_500},
        ],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 200}],
    }
}


def test_gemini_cached_audio_is_not_counted_twice() -> None:
    """Cached audio (7,500) is inside cachedContentTokenCount: input audio is the rest."""
    usage = from_gemini(GEMINI_CACHED_AUDIO)
    assert usage == Usage(
        input_tokens=10_000,
        cache_read_tokens=8_000,
        cache_read_audio_tokens=7_500,
        input_audio_tokens=1_500,
        output_tokens=200,
    )
    assert not usage.issues
    assert extract_usage(GEMINI_CACHED_AUDIO) == usage


def test_gemini_mostly_cached_audio_is_priced(pricer: Pricer) -> None:
    """Before, audio 9,000 + cached 8,000 > prompt 10,000 and the call had no price.

    gemini-2.5-flash (ai.google.dev/gemini-api/docs/pricing; catalog): text input $0.30,
    audio input $1.00, cached text $0.03, cached audio $0.10, output $2.50 per 1M.
    uncached text 500 * 0.30 + cached text 500 * 0.03 + cached audio 7,500 * 0.10
    + uncached audio 1,500 * 1.00 + output 200 * 2.50
    = 150 + 15 + 750 + 1,500 + 500 = 2,915 per 1M = $0.002915.
    """
    usage = from_gemini(GEMINI_CACHED_AUDIO)
    assert usage is not None
    cost = pricer.cost("gemini-2.5-flash", usage=usage, at=NOW, strict=True)
    assert cost is not None
    assert cost.total == Decimal("0.002915")
    assert cost.cache_read_cost == Decimal("0.000765")


def test_gemini_uncached_audio_unchanged() -> None:
    """Without cacheTokensDetails every AUDIO prompt token is uncached input audio."""
    payload = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 5,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 60}],
    }
    assert from_gemini(payload) == Usage(input_tokens=100, input_audio_tokens=60, output_tokens=5)


# A Realtime ``response.done`` event, shaped as in OpenAI's API reference
# (platform.openai.com/docs/api-reference/realtime-server-events/response/done):
# usage.input_token_details / output_token_details, singular.
REALTIME_DONE = {
    "type": "response.done",
    "event_id": "event_3132",
    "response": {
        "object": "realtime.response",
        "status": "completed",
        "usage": {
            "total_tokens": 1_300,
            "input_tokens": 1_000,
            "output_tokens": 300,
            "input_token_details": {
                "text_tokens": 200,
                "audio_tokens": 800,
                "image_tokens": 0,
                "cached_tokens": 500,
                "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 400},
            },
            "output_token_details": {"text_tokens": 60, "audio_tokens": 240},
        },
    },
}


def test_realtime_singular_details_are_read() -> None:
    """Cached 500 (of which audio 400) and audio 800: uncached audio is 400."""
    usage = extract_usage(REALTIME_DONE)
    assert usage == Usage(
        input_tokens=1_000,
        cache_read_tokens=500,
        cache_read_audio_tokens=400,
        input_audio_tokens=400,
        output_tokens=300,
        output_audio_tokens=240,
    )
    assert from_openai_responses(REALTIME_DONE["response"]) == usage
    # The bare usage record is recognised too (not taken for LangChain's usage_metadata).
    assert extract_usage(REALTIME_DONE["response"]["usage"]) == usage  # type: ignore[index]


def test_realtime_call_priced_with_cache_and_audio(pricer: Pricer) -> None:
    """gpt-realtime (openai.com/api/pricing; catalog): text in $4, cached $0.40 (text and
    audio alike), audio in $32, text out $16, audio out $64 per 1M.

    uncached text 100 * 4 + cached 500 * 0.4 + uncached audio 400 * 32
    + text out 60 * 16 + audio out 240 * 64
    = 400 + 200 + 12,800 + 960 + 15,360 = 29,720 per 1M = $0.02972.
    Reading only the plural keys priced it as 1,000 * 4 + 300 * 16 = $0.0088.
    """
    usage = extract_usage(REALTIME_DONE)
    cost = pricer.cost("gpt-realtime", usage=usage, at=NOW, strict=True)
    assert cost is not None
    assert cost.total == Decimal("0.02972")


# A gemini-2.5-flash-image response generating one 1024x1024 image: 1,290 output tokens,
# all IMAGE (ai.google.dev/gemini-api/docs/pricing: "images up to 1024x1024px consume
# 1290 tokens", $30 per 1M output image tokens, i.e. $0.039 per image; text output $2.50).
GEMINI_IMAGE_OUT = {
    "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1302,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
    }
}


def test_gemini_output_image_tokens_priced_at_the_image_rate(pricer: Pricer) -> None:
    """12 * 0.30 + 1,290 * 30 = 3.6 + 38,700 = 38,703.6 per 1M = $0.0387036
    (as text output it was 1,290 * 2.50: $0.003225, 12x too low)."""
    usage = extract_usage(GEMINI_IMAGE_OUT)
    assert usage == Usage(input_tokens=12, output_tokens=1290, output_image_tokens=1290)
    cost = pricer.cost("gemini-2.5-flash-image", usage=usage, at=NOW, strict=True)
    assert cost is not None
    assert cost.total == Decimal("0.0387036")
    assert cost.output_cost == Decimal("0.0387")  # images have no money column of their own


def test_gemini_cached_image_is_not_counted_twice() -> None:
    payload = {
        "promptTokenCount": 3_000,
        "cachedContentTokenCount": 2_000,
        "candidatesTokenCount": 10,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 500},
            {"modality": "IMAGE", "tokenCount": 2_500},
        ],
        "cacheTokensDetails": [{"modality": "IMAGE", "tokenCount": 2_000}],
    }
    assert from_gemini(payload) == Usage(
        input_tokens=3_000, cache_read_tokens=2_000, input_image_tokens=500, output_tokens=10
    )


# gpt-image-1 Images API usage (platform.openai.com/docs/api-reference/images/object):
# input_tokens_details splits text and image input; output tokens are image tokens.
GPT_IMAGE_USAGE = {
    "created": 1713833628,
    "data": [{"b64_json": "..."}],
    "usage": {
        "total_tokens": 4_410,
        "input_tokens": 250,
        "output_tokens": 4_160,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 200},
    },
}


def test_gpt_image_1_input_image_tokens_priced(pricer: Pricer) -> None:
    """gpt-image-1 (openai.com/api/pricing): text in $5, image in $10, image out $40 per 1M.
    50 * 5 + 200 * 10 + 4,160 * 40 = 250 + 2,000 + 166,400 = 168,650 per 1M = $0.16865."""
    usage = from_openai_responses(GPT_IMAGE_USAGE)
    assert usage == Usage(input_tokens=250, input_image_tokens=200, output_tokens=4_160)
    cost = pricer.cost("gpt-image-1", usage=usage, at=NOW, strict=True)
    assert cost is not None
    assert cost.total == Decimal("0.16865")


# Vertex AI pricing (https://cloud.google.com/vertex-ai/generative-ai/pricing, Gemini 2.5
# Flash Live API): input text $0.50, video $3 per 1M; output text $2 per 1M.
def _video_call(cached: int) -> dict[str, object]:
    meta: dict[str, object] = {
        "promptTokenCount": 5360,
        "candidatesTokenCount": 100,
        "totalTokenCount": 5460,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 200},
            {"modality": "VIDEO", "tokenCount": 5160},
        ],
    }
    if cached:
        meta["cachedContentTokenCount"] = cached
        meta["cacheTokensDetails"] = [{"modality": "VIDEO", "tokenCount": cached}]
    return {"usageMetadata": meta}


def test_gemini_video_tokens_are_billed_at_the_video_rate(pricer: Pricer) -> None:
    """A 20 s clip (258 tokens/s = 5,160 video tokens) and 200 text tokens:
    200 x 0.5 + 5,160 x 3 + 100 x 2 = 100 + 15,480 + 200 = 15,780 per 1M = $0.01578.
    Billed as text it was 5,360 x 0.5 + 200 = 2,880 per 1M = $0.00288."""
    usage = from_gemini(_video_call(0))
    assert usage == Usage(input_tokens=5360, input_video_tokens=5160, output_tokens=100)
    cost = pricer.cost("gemini-live-2.5-flash", provider="google", usage=usage)
    assert cost is not None and cost.total == Decimal("0.01578")
    assert cost.input_cost == Decimal("0.01558")


def test_gemini_cached_video_is_counted_once() -> None:
    """4,000 of the 5,160 video tokens were cached: they are cache reads, not video."""
    usage = from_gemini(_video_call(4000))
    assert usage == Usage(
        input_tokens=5360, cache_read_tokens=4000, input_video_tokens=1160, output_tokens=100
    )


def test_gemini_3_pro_image_bills_its_images(pricer: Pricer) -> None:
    """gemini-3-pro-image-preview: input $2, output text $12, output images $120 per 1M
    ("$0.134 per 1K/2K image" of 1,120 tokens; https://ai.google.dev/gemini-api/docs/pricing).
    100 x 2 + 1,120 x 120 = 200 + 134,400 = 134,600 per 1M = $0.1346; billed as text it was
    200 + 1,120 x 12 = 13,640 per 1M = $0.01364."""
    usage = from_gemini(
        {
            "usageMetadata": {
                "promptTokenCount": 100,
                "candidatesTokenCount": 1120,
                "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
            }
        }
    )
    assert usage is not None and usage.output_image_tokens == 1120
    cost = pricer.cost("gemini-3-pro-image-preview", provider="google", usage=usage, at=NOW)
    assert cost is not None and cost.total == Decimal("0.1346")
