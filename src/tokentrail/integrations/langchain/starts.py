"""What a LangChain model start says: model, provider, attribution, metadata, budget request.

The start event carries the invocation parameters, LangChain's ``metadata`` (``ls_*``
keys, the user's keys) and ``tags``, and the serialized model. Everything here reads them
and never raises on odd values. What repeats on every call of one model (the serialized
dict, the metadata keys, the tags) is memoized; nothing is keyed on the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...context import Attribution, CallContext
from ...providers import infer_provider
from .messages import as_dicts

if TYPE_CHECKING:
    from ...budget import PreflightRequest

__all__ = [
    "NO_ATTRIBUTION",
    "attribution_from",
    "base_url_of",
    "first_text",
    "model_of",
    "preflight_request",
    "provider_of",
    "text",
    "user_metadata",
]

# Tags LangChain and LangGraph add on their own: step counters and tracing flags.
_NOISE_TAG = re.compile(r"^(seq:step:\d+|graph:step:\d+|langsmith:.*|map:key:.*)$")
# LangChain metadata keys that are plumbing, not the user's attribution.
_NOISE_META = re.compile(r"^(ls_|langgraph_(?!node$)|checkpoint_|__)")
_ATTRIBUTION_KEYS = ("user_id", "session_id", "operation")
_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "azure_deployment")
_BASE_URL_KEYS = ("base_url", "openai_api_base", "api_base", "anthropic_api_url", "endpoint")
_MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_predict")
# Each memo is cleared when full.
_MEMO_SIZE = 1024

#: The attribution of a call that sets nothing of its own.
NO_ATTRIBUTION = Attribution()


def text(value: Any) -> str | None:
    """``value`` as a non-empty string, or ``None``."""
    if value is None or value == "":
        return None
    return str(value)


def first_text(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """:func:`text` of the first of ``keys`` that gives a non-empty one."""
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            found = text(value)
            if found:
                return found
    return None


def model_of(params: Mapping[str, Any], meta: Mapping[str, Any]) -> str | None:
    """The model a call asks for: invocation params, else LangChain's ``ls_model_name``."""
    model = params.get("model")
    if type(model) is str and model:
        return model  # the usual case
    return first_text(params, _MODEL_KEYS) or text(meta.get("ls_model_name"))


def base_url_of(params: Mapping[str, Any]) -> str | None:
    """The endpoint the invocation params name, if any (it tells a provider apart)."""
    if type(params) is dict and params.keys().isdisjoint(_BASE_URL_KEYS):
        return None  # the usual case, decided in one C call
    for key in _BASE_URL_KEYS:
        found = params.get(key)
        if isinstance(found, str) and found:
            return found
    return None


# (id of the serialized model, ls_provider, model, base URL) -> (that dict, provider)
_PROVIDERS: dict[tuple[int, str | None, str | None, str | None], tuple[Any, str | None]] = {}


def provider_of(
    serialized: Mapping[str, Any] | None,
    meta: Mapping[str, Any],
    model: str | None,
    base_url: str | None,
) -> str | None:
    """The provider of a call, from LangChain's ``ls_provider``, the model, the endpoint
    and the model's class; memoized per serialized model (LangChain hands over the same
    dict for every call of one model object) and endpoint."""
    ls_provider = meta.get("ls_provider")
    if type(ls_provider) is not str or not ls_provider:
        ls_provider = text(ls_provider)
    key = (id(serialized), ls_provider, model, base_url)
    found = _PROVIDERS.get(key)
    # The entry holds the dict, so its id cannot be reused by another while it is there.
    if found is not None and found[0] is serialized:
        return found[1]
    provider = infer_provider(
        ls_provider=ls_provider,
        model=model,
        base_url=base_url or _serialized_base_url(serialized),
        class_name=_class_name(serialized),
    )
    if type(serialized) is dict:
        if len(_PROVIDERS) >= _MEMO_SIZE:
            _PROVIDERS.clear()
        _PROVIDERS[key] = (serialized, provider)
    return provider


def _class_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    ident = serialized.get("id")
    if isinstance(ident, Sequence) and ident and not isinstance(ident, str):
        return text(ident[-1])
    return text(serialized.get("name"))


def _serialized_base_url(serialized: Mapping[str, Any] | None) -> str | None:
    kwargs = (serialized or {}).get("kwargs")
    if isinstance(kwargs, Mapping):
        for key in _BASE_URL_KEYS:
            found = kwargs.get(key)
            if isinstance(found, str) and found:
                return found
    return None


def attribution_from(meta: Mapping[str, Any], tags: Sequence[str] | None) -> Attribution:
    """The attribution a call sets itself: ``user_id``/``session_id``/``operation``
    metadata keys and the user's tags (LangChain's own tags left out)."""
    clean = tuple(t for t in tags if _user_tag(t)) if tags else ()
    if not clean and "user_id" not in meta and "session_id" not in meta and "operation" not in meta:
        return NO_ATTRIBUTION  # the common case: nothing to build
    values = [text(meta.get(k)) for k in _ATTRIBUTION_KEYS]
    if not clean and not any(values):
        return NO_ATTRIBUTION
    return Attribution(values[0], values[1], values[2], clean)


_USER_TAG: dict[str, bool] = {}


def _user_tag(tag: str) -> bool:
    """Not one of the tags LangChain/LangGraph add on their own (memoized: tags repeat)."""
    keep = _USER_TAG.get(tag)
    if keep is None:
        keep = not _NOISE_TAG.match(tag)
        if len(_USER_TAG) >= _MEMO_SIZE:
            _USER_TAG.clear()
        _USER_TAG[tag] = keep
    return keep


_KEPT_KEYS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def user_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar metadata the user set (LangChain's and LangGraph's plumbing left out)."""
    # The same keys come on every call of a model or graph node: which of them are the
    # user's is decided once per set of keys.
    keys = tuple(meta)
    kept = _KEPT_KEYS.get(keys)
    if kept is None:
        kept = tuple(k for k in keys if k not in _ATTRIBUTION_KEYS and not _NOISE_META.match(k))
        if len(_KEPT_KEYS) >= _MEMO_SIZE:
            _KEPT_KEYS.clear()
        _KEPT_KEYS[keys] = kept
    out: dict[str, Any] = {}  # a new dict all the same: a record's metadata is the user's
    for key in kept:
        value = meta[key]
        if value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


def preflight_request(
    model: str | None,
    provider: str | None,
    messages: Any,
    chat: bool,
    params: Mapping[str, Any],
    context: CallContext,
    run_id: str,
) -> PreflightRequest:
    """What the budget guard needs to know about a call before it is sent."""
    from ...budget import PreflightRequest

    return PreflightRequest(
        model=model,
        provider=provider,
        messages=as_dicts(messages, chat) if chat else None,
        prompt=None if chat else "\n".join(str(p) for p in messages or ()),
        max_tokens=_max_tokens(params),
        tools=params.get("tools"),
        context=context,
        run_id=run_id,
    )


def _max_tokens(params: Mapping[str, Any]) -> int | None:
    for key in _MAX_TOKENS_KEYS:
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
