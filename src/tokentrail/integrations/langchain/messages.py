"""LangChain messages as the plain ``{"role", "content"}`` dicts the token counters read.

Used for the budget pre-flight and for estimating a stream that reported no usage; the
text is counted in memory and never stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["as_dicts", "content_text"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def content_text(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or ():
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping):
            text = part.get("text")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)


def as_dicts(messages: Any, chat: bool) -> list[dict[str, Any]]:
    """LangChain messages (or prompt strings when not ``chat``) as role/content dicts."""
    if not chat:
        return [{"role": "user", "content": str(p)} for p in messages or ()]
    out: list[dict[str, Any]] = []
    for m in messages or ():
        role = _ROLES.get(getattr(m, "type", ""), getattr(m, "type", "user"))
        if role == "chat":
            role = getattr(m, "role", "user")
        item: dict[str, Any] = {"role": role, "content": getattr(m, "content", "")}
        tool_calls = getattr(m, "tool_calls", None)
        if tool_calls:
            extra = json.dumps(
                [{"name": t.get("name"), "args": t.get("args")} for t in tool_calls], default=str
            )
            item["content"] = content_text(item["content"]) + extra
        name = getattr(m, "name", None)
        if name:
            item["name"] = name
        out.append(item)
    return out
