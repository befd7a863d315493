"""Response bodies in the providers' exact wire formats (OpenAI and Anthropic).

Pure functions: a :class:`~tests.wire.Reply` plus the parsed request body in, a JSON-able
dict (or a list of SSE events) out. The server in ``server.py`` only does the HTTP part.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Reply",
    "anthropic_error",
    "anthropic_message",
    "anthropic_stream_events",
    "openai_chat",
    "openai_chat_chunks",
    "openai_embeddings",
    "openai_error",
    "openai_responses",
    "openai_responses_events",
    "split_text",
]

# OpenAI's `type` for an HTTP status; Anthropic's error types by status.
_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """What the server answers to one request.

    Token counts use tokentrail's canonical meaning whatever the wire: ``input_tokens`` is
    *every* prompt token, ``cached_tokens`` (cache reads) and ``cache_write_5m`` /
    ``cache_write_1h`` are parts of it, ``reasoning_tokens`` is part of ``output_tokens``.
    The server converts to each dialect (Anthropic's raw ``input_tokens`` excludes cache
    reads and writes). ``raw_usage`` replaces the generated usage object verbatim.
    """

    text: str = "Hello from the loopback wire."
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    reasoning_tokens: int = 0
    #: Model name in the response; ``None`` echoes the request's model.
    model: str | None = None
    #: HTTP status; >= 400 answers with the provider's error JSON.
    status: int = 200
    error_message: str = "scripted error"
    #: Overrides the error ``type`` derived from the status.
    error_type: str | None = None
    #: Seconds to wait before answering (and between stream chunks: ``chunk_delay``).
    delay: float = 0.0
    chunk_delay: float = 0.0
    #: Stream chunks of the text; ``None`` splits it into words.
    chunks: list[str] | None = None
    #: For OpenAI streams: force the usage chunk on (True) or off (False); ``None`` follows
    #: the request's ``stream_options.include_usage``.
    stream_usage: bool | None = None
    #: Replaces the whole usage object (sent as is).
    raw_usage: dict[str, Any] | None = None
    #: OpenAI ``service_tier`` / Anthropic ``usage.service_tier``.
    service_tier: str = "default"
    #: Tool calls to return (OpenAI: ``[{"name": ..., "arguments": {...}}]``).
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: Extra response headers.
    headers: dict[str, str] = field(default_factory=dict)
    #: Request id sent as ``x-request-id`` (OpenAI) / ``request-id`` (Anthropic).
    request_id: str | None = None

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens


def split_text(reply: Reply) -> list[str]:
    """The stream chunks of ``reply.text`` (words with their trailing space)."""
    if reply.chunks is not None:
        return list(reply.chunks)
    words = reply.text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _model(reply: Reply, body: dict[str, Any], fallback: str) -> str:
    return reply.model or str(body.get("model") or fallback)


# ---------------------------------------------------------------- OpenAI Chat Completions
def openai_usage(reply: Reply) -> dict[str, Any]:
    """The ``usage`` object of a Chat Completions response."""
    if reply.raw_usage is not None:
        return reply.raw_usage
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.total_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    import json

    return [
        {
            "id": f"call_{i}_{uuid.uuid4().hex[:8]}",
            "type": "function",
            "function": {"name": t["name"], "arguments": json.dumps(t.get("arguments", {}))},
        }
        for i, t in enumerate(reply.tool_calls)
    ]


def openai_chat(reply: Reply, body: dict[str, Any], completion_id: str) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object (``n`` choices, usage once)."""
    n = int(body.get("n") or 1)
    tool_calls = _openai_tool_calls(reply)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if tool_calls else reply.text,
        "refusal": None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(reply, body, "gpt-4o-mini"),
        "choices": [
            {
                "index": i,
                "message": dict(message),
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
            for i in range(n)
        ],
        "usage": openai_usage(reply),
        "service_tier": reply.service_tier,
        "system_fingerprint": "fp_loopback",
    }


def openai_chat_chunks(
    reply: Reply, body: dict[str, Any], completion_id: str
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a stream (before ``data: [DONE]``).

    With usage on, every chunk carries ``"usage": null`` and a last chunk with empty
    ``choices`` carries the usage — exactly as OpenAI sends it.
    """
    n = int(body.get("n") or 1)
    include = reply.stream_usage
    if include is None:
        include = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(reply, body, "gpt-4o-mini"),
        "service_tier": reply.service_tier,
        "system_fingerprint": "fp_loopback",
    }

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        out = {**base, "choices": choices, **extra}
        if include and "usage" not in out:
            out["usage"] = None
        return out

    out: list[dict[str, Any]] = []
    for i in range(n):
        delta = {"role": "assistant", "content": "", "refusal": None}
        out.append(chunk([{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}]))
    pieces = split_text(reply) if not reply.tool_calls else []
    for piece in pieces:
        for i in range(n):
            out.append(
                chunk(
                    [
                        {
                            "index": i,
                            "delta": {"content": piece},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
            )
    for i, call in enumerate(_openai_tool_calls(reply)):
        tc = {"index": i, **call}
        out.append(
            chunk(
                [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [tc]},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        )
    finish = "tool_calls" if reply.tool_calls else "stop"
    for i in range(n):
        out.append(chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish}]))
    if include:
        out.append(chunk([], usage=openai_usage(reply)))
    return out


def openai_error(status: int, reply: Reply) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    etype, code = _OPENAI_ERROR_TYPES.get(status, ("invalid_request_error", None))
    return {
        "error": {
            "message": reply.error_message,
            "type": reply.error_type or etype,
            "param": None,
            "code": code,
        }
    }


# ---------------------------------------------------------------- OpenAI embeddings
def openai_embeddings(reply: Reply, body: dict[str, Any], dims: int = 8) -> dict[str, Any]:
    """An embeddings ``list``; base64 float32 vectors when the request asks for them."""
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i, _ in enumerate(items):
        vector = [((i + 1) * (k + 1)) % 7 / 7.0 for k in range(dims)]
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    usage = reply.raw_usage or {
        "prompt_tokens": reply.input_tokens,
        "total_tokens": reply.input_tokens,
    }
    return {
        "object": "list",
        "data": data,
        "model": _model(reply, body, "text-embedding-3-small"),
        "usage": usage,
    }


# ---------------------------------------------------------------- OpenAI Responses API
def _responses_usage(reply: Reply) -> dict[str, Any]:
    if reply.raw_usage is not None:
        return reply.raw_usage
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.total_tokens,
    }


def openai_responses(
    reply: Reply, body: dict[str, Any], response_id: str, *, status: str = "completed"
) -> dict[str, Any]:
    """A Responses API ``response`` object with one output message."""
    done = status == "completed"
    output = (
        [
            {
                "type": "message",
                "id": f"msg_{response_id[5:]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        ]
        if done
        else []
    )
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": _model(reply, body, "gpt-4o-mini"),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": reply.service_tier,
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _responses_usage(reply) if done else None,
        "user": None,
        "metadata": {},
    }


def openai_responses_events(
    reply: Reply, body: dict[str, Any], response_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """The ``(event, data)`` pairs of a streamed Responses API call."""
    msg_id = f"msg_{response_id[5:]}"
    events: list[tuple[str, dict[str, Any]]] = []
    start = openai_responses(reply, body, response_id, status="in_progress")
    events.append(("response.created", {"type": "response.created", "response": start}))
    events.append(("response.in_progress", {"type": "response.in_progress", "response": start}))
    item = {"type": "message", "id": msg_id, "status": "in_progress", "role": "assistant"}
    events.append(
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "content": []},
            },
        )
    )
    part = {"type": "output_text", "text": "", "annotations": []}
    common = {"item_id": msg_id, "output_index": 0, "content_index": 0}
    events.append(
        (
            "response.content_part.added",
            {"type": "response.content_part.added", **common, "part": part},
        )
    )
    for piece in split_text(reply):
        events.append(
            (
                "response.output_text.delta",
                {"type": "response.output_text.delta", **common, "delta": piece, "logprobs": []},
            )
        )
    events.append(
        (
            "response.output_text.done",
            {"type": "response.output_text.done", **common, "text": reply.text, "logprobs": []},
        )
    )
    full_part = {**part, "text": reply.text}
    events.append(
        (
            "response.content_part.done",
            {"type": "response.content_part.done", **common, "part": full_part},
        )
    )
    final = openai_responses(reply, body, response_id)
    events.append(
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": final["output"][0]},
        )
    )
    events.append(("response.completed", {"type": "response.completed", "response": final}))
    for seq, (_, data) in enumerate(events):
        data["sequence_number"] = seq
    return events


# ---------------------------------------------------------------- Anthropic Messages
def anthropic_usage(reply: Reply, *, output_tokens: int | None = None) -> dict[str, Any]:
    """Anthropic's ``usage``: raw ``input_tokens`` excludes cache reads and writes."""
    if reply.raw_usage is not None:
        return reply.raw_usage
    writes = reply.cache_write_5m + reply.cache_write_1h
    usage: dict[str, Any] = {
        "input_tokens": max(reply.input_tokens - reply.cached_tokens - writes, 0),
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": reply.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": reply.cache_write_5m,
            "ephemeral_1h_input_tokens": reply.cache_write_1h,
        },
        "output_tokens": reply.output_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard" if reply.service_tier == "default" else reply.service_tier,
    }
    if reply.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
    return usage


def _anthropic_content(reply: Reply) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if reply.text and not reply.tool_calls:
        content.append({"type": "text", "text": reply.text})
    for i, t in enumerate(reply.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{i}_{uuid.uuid4().hex[:8]}",
                "name": t["name"],
                "input": t.get("arguments", {}),
            }
        )
    return content


def anthropic_message(reply: Reply, body: dict[str, Any], message_id: str) -> dict[str, Any]:
    """A non-streaming Messages API ``message``."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": _model(reply, body, "claude-haiku-4-5"),
        "content": _anthropic_content(reply),
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(reply),
    }


def anthropic_stream_events(
    reply: Reply, body: dict[str, Any], message_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """The ``(event, data)`` pairs of a streamed Messages call.

    ``message_start`` carries the input usage with ``output_tokens`` 1; ``message_delta``
    carries the final cumulative usage (input, cache and output), as the API does today.
    """
    start = anthropic_message(reply, body, message_id)
    start.update(content=[], stop_reason=None)
    start["usage"] = anthropic_usage(reply, output_tokens=1)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    index = 0
    if reply.text and not reply.tool_calls:
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        events.append(("ping", {"type": "ping"}))
        for piece in split_text(reply):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    import json

    for block in _anthropic_content(reply):
        if block["type"] != "tool_use":
            continue
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                },
            )
        )
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(block["input"]),
                    },
                },
            )
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    usage = dict(anthropic_usage(reply))
    if reply.raw_usage is None:
        # message_delta's usage (MessageDeltaUsage) has no service tier and no TTL split.
        usage.pop("service_tier", None)
        usage.pop("cache_creation", None)
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_error(status: int, reply: Reply) -> dict[str, Any]:
    """Anthropic's error body: ``{"type": "error", "error": {"type", "message"}}``."""
    etype = reply.error_type or _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": etype, "message": reply.error_message}}
