"""Tokens that tool (function) definitions add to a request, by OpenAI's cookbook rules."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .counting import count_text_tokens, to_json
from .encodings import encoding_name_for

__all__ = ["count_tools_tokens"]

logger = logging.getLogger("tokentrail")

# Function-definition overhead, from OpenAI's cookbook ("counting tokens for chat API calls").
_FUNC_INIT_O200K, _FUNC_INIT_CL100K = 7, 10
_PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = 3, 3, -3, 3, 12


def _tool_spec(tool: Any) -> Mapping[str, Any] | None:
    """Normalize an OpenAI, Anthropic or LangChain-style tool to {name, description, params}."""
    spec: Any = tool
    if not isinstance(spec, Mapping):
        for attr in ("model_json_schema", "schema"):  # pydantic models / classes
            fn = getattr(spec, attr, None)
            if callable(fn):
                try:
                    schema = fn()
                except Exception:
                    continue
                if isinstance(schema, Mapping):
                    return {
                        "name": schema.get("title", getattr(spec, "__name__", "tool")),
                        "description": schema.get("description", ""),
                        "parameters": schema,
                    }
        name = getattr(spec, "name", None)
        if name is None:
            return None
        args = getattr(spec, "args", None)
        return {
            "name": name,
            "description": getattr(spec, "description", "") or "",
            "parameters": {"type": "object", "properties": args if isinstance(args, dict) else {}},
        }
    if isinstance(spec.get("function"), Mapping):
        spec = spec["function"]
    params = spec.get("parameters") or spec.get("input_schema") or {}
    return {
        "name": spec.get("name", ""),
        "description": spec.get("description", ""),
        "parameters": params,
    }


def count_tools_tokens(tools: Sequence[Any], model: str | None = None) -> int:
    """Tokens the tool (function) definitions add to a request (OpenAI cookbook rules)."""
    try:
        encoding = encoding_name_for(model)
        func_init = _FUNC_INIT_CL100K if encoding == "cl100k_base" else _FUNC_INIT_O200K
        total = 0
        for tool in tools:
            spec = _tool_spec(tool)
            if spec is None:
                total += count_text_tokens(to_json(tool), model)
                continue
            total += func_init
            desc = str(spec.get("description") or "").rstrip(".")
            total += count_text_tokens(f"{spec.get('name', '')}:{desc}", model)
            params = spec.get("parameters")
            props = params.get("properties") if isinstance(params, Mapping) else None
            if isinstance(props, Mapping) and props:
                total += _PROP_INIT
                for key, prop in props.items():
                    total += _PROP_KEY
                    prop = prop if isinstance(prop, Mapping) else {}
                    if "enum" in prop:
                        total += _ENUM_INIT
                        for item in prop["enum"] or ():
                            total += _ENUM_ITEM + count_text_tokens(str(item), model)
                    p_desc = str(prop.get("description") or "").rstrip(".")
                    total += count_text_tokens(f"{key}:{prop.get('type', '')}:{p_desc}", model)
                    # Nested schemas are not in the cookbook's rule; count their JSON.
                    for nested in ("properties", "items", "anyOf", "oneOf"):
                        if nested in prop:
                            total += count_text_tokens(to_json(prop[nested]), model)
        return total + (_FUNC_END if total else 0)
    except Exception:
        logger.warning("tokentrail: could not count tool definitions", exc_info=True)
        return sum(len(to_json(t)) // 3 for t in tools)
