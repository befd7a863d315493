"""Which model and provider a LlamaIndex call goes to, and its reply bound.

Read at the call's start from the event's ``model_dict`` (the LLM's serialized fields) and
the LLM instance whose method the call's span wraps: its endpoint tells an OpenAI client
pointed at DeepSeek from one pointed at OpenAI. The endpoint is read at every call (users
change ``api_base``); the provider inferred from (model, endpoint, class) is memoized, as a
process talks to few of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..providers import infer_provider

__all__ = ["base_url", "identify", "max_tokens", "model_name", "provider_of"]

_URL_NAMES = ("api_base", "base_url", "azure_endpoint", "endpoint")
_MAX_MEMO = 1024
_PROVIDERS: dict[tuple[str | None, str | None, str | None], str | None] = {}


def identify(instance: Any, model_dict: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(model name, provider id) of a call of ``instance`` (the LLM, ``None`` if unknown).

    Example::

        >>> identify(OpenAI(model="gpt-4o-mini"), {"model": "gpt-4o-mini"})
        ('gpt-4o-mini', 'openai')
    """
    model = model_name(model_dict)
    class_name = model_dict.get("class_name")
    return model, provider_of(
        model, base_url(instance), class_name if isinstance(class_name, str) else None
    )


def model_name(model_dict: Mapping[str, Any]) -> str | None:
    """The model named in ``model_dict`` (``model_name``, else ``model``; ``unknown`` is none)."""
    name = model_dict.get("model_name")
    if not (isinstance(name, str) and name):
        name = model_dict.get("model")
        if not (isinstance(name, str) and name):
            return None
    return None if name == "unknown" else name


def provider_of(model: str | None, url: str | None, class_name: str | None) -> str | None:
    """The provider id of a (model, endpoint, LLM class) triple (memoized)."""
    key = (model, url, class_name)
    if key in _PROVIDERS:
        return _PROVIDERS[key]
    found = infer_provider(model=model, base_url=url, class_name=class_name or None)
    if len(_PROVIDERS) < _MAX_MEMO:
        _PROVIDERS[key] = found
    return found


def base_url(instance: Any) -> str | None:
    """The endpoint an LLM object sends to (``api_base``, ``base_url``…), if it says.

    Read from the instance dictionaries first: a pydantic LLM without one of these fields
    would otherwise answer through ``__getattr__`` and an exception.
    """
    if instance is None:
        return None
    fields = getattr(instance, "__dict__", None) or {}
    extra = getattr(instance, "__pydantic_extra__", None) or {}
    pydantic = hasattr(type(instance), "__pydantic_extra__")  # a model, not a dataclass
    for name in _URL_NAMES:
        if name in fields:
            value = fields[name]
        elif pydantic:
            value = extra.get(name)
        else:
            value = getattr(instance, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def max_tokens(
    model_dict: Mapping[str, Any], kwargs: Mapping[str, Any] | None, instance: Any
) -> int | None:
    """The most tokens the call may generate (the budget reservation's reply bound)."""
    kwargs = kwargs or {}
    for value in (
        kwargs.get("max_tokens"),
        kwargs.get("max_completion_tokens"),
        getattr(instance, "max_tokens", None) if instance is not None else None,
        model_dict.get("num_output"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
