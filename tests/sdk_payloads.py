"""Provider response payloads as the vendors' API references document them (for tests).

Build the SDK's real objects from them (``ChatCompletion.model_validate(chat_completion(...))``,
``anthropic.types.Message.model_validate(anthropic_message(...))``).
"""

from __future__ import annotations

from typing import Any


def chat_completion(usage: dict[str, Any] | None, **top: Any) -> dict[str, Any]:
    """The Chat Completions object of OpenAI's API reference, with ``usage`` and ``top``."""
    body: dict[str, Any] = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I assist you today?",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
        "service_tier": "default",
    }
    body.update(top)
    return body


def anthropic_message(**usage: Any) -> dict[str, Any]:
    """The Messages response of Anthropic's API reference, with ``usage``."""
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 2095, "output_tokens": 503},
    }
