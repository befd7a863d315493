"""OpenAI's legacy Completions API (``POST /v1/completions``) in its exact wire format.

As documented at https://platform.openai.com/docs/api-reference/completions: an object
``text_completion`` with ``choices[].text`` and ``usage`` (``prompt_tokens``,
``completion_tokens``, ``total_tokens``); streamed, the same object per chunk with the next
piece of text, ``data: [DONE]`` last, and with ``stream_options.include_usage`` a final chunk
with empty ``choices`` carrying the usage (``"usage": null`` on the others).
"""

from __future__ import annotations

import time
from typing import Any

from .formats import Reply, split_text

__all__ = ["openai_completion", "openai_completion_chunks"]


def _usage(reply: Reply) -> dict[str, Any]:
    if reply.raw_usage is not None:
        return reply.raw_usage
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.total_tokens,
    }


def _choices(body: dict[str, Any]) -> int:
    """Choices per request: ``n`` per prompt (``prompt`` may be a list of prompts)."""
    prompt = body.get("prompt")
    prompts = (
        len(prompt) if isinstance(prompt, list) and prompt and isinstance(prompt[0], str) else 1
    )
    return prompts * int(body.get("n") or 1)


def _base(reply: Reply, body: dict[str, Any], completion_id: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": reply.model or str(body.get("model") or "gpt-3.5-turbo-instruct"),
        "system_fingerprint": "fp_loopback",
    }


def openai_completion(reply: Reply, body: dict[str, Any], completion_id: str) -> dict[str, Any]:
    """A non-streaming ``text_completion`` object (one choice per prompt and ``n``)."""
    choices = [
        {"text": reply.text, "index": i, "logprobs": None, "finish_reason": "stop"}
        for i in range(_choices(body))
    ]
    return {**_base(reply, body, completion_id), "choices": choices, "usage": _usage(reply)}


def openai_completion_chunks(
    reply: Reply, body: dict[str, Any], completion_id: str
) -> list[dict[str, Any]]:
    """The chunks of a streamed completion (before ``data: [DONE]``)."""
    include = reply.stream_usage
    if include is None:
        include = bool((body.get("stream_options") or {}).get("include_usage"))
    base = _base(reply, body, completion_id)
    extra: dict[str, Any] = {"usage": None} if include else {}
    out: list[dict[str, Any]] = []
    pieces = split_text(reply)
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        for i in range(_choices(body)):
            choice = {
                "text": piece,
                "index": i,
                "logprobs": None,
                "finish_reason": "stop" if last else None,
            }
            out.append({**base, "choices": [choice], **extra})
    if include:
        out.append({**base, "choices": [], "usage": _usage(reply)})
    return out
