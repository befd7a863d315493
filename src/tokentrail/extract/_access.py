"""Read fields of provider payloads whatever their type.

Payloads arrive as plain dicts (decoded JSON), SDK pydantic models (``openai``,
``anthropic``, ``google-genai``), protobuf messages, LangChain ``TypedDict``\\ s or
``AIMessage`` objects. :func:`get` reads a key of a mapping or an attribute of anything
else, and never raises: a missing field, a property that raises, or an object that is not
a container at all all read as ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["first", "get", "has_any", "is_record", "items", "path"]

# Values that hold no fields: reading an attribute of them would find methods
# (``"abc".count``, ``[].index``) rather than data.
_SCALARS = (str, bytes, bytearray, int, float, complex, bool, list, tuple, set, frozenset)

#: At most this many elements are read from a sequence inside a payload (modality lists,
#: cache details). Streams of chunks are not limited by it.
MAX_ITEMS = 1000


def is_record(obj: Any) -> bool:
    """True when ``obj`` can hold named fields (a mapping or an object), not a scalar."""
    return obj is not None and not isinstance(obj, _SCALARS) and not callable(obj)


#: Per (class, name): can ``name`` of an instance only be a pydantic field or extra key?
#: (Classes and names are few; the bound guards against generated ones.)
_FIELD_ONLY: dict[tuple[type, str], bool] = {}
_MAX_FIELD_ONLY = 4096


def _field_only(cls: type, name: str) -> bool:
    """True for a pydantic model whose class defines no ``name`` and no ``__getattr__`` of
    its own: the attribute is then in the instance dictionaries or nowhere.

    Pydantic dataclasses (which may have no ``__dict__``) are not models: read as objects.
    """
    key = (cls, name)
    found = _FIELD_ONLY.get(key)
    if found is None:
        hook = next((k for k in cls.__mro__ if "__getattr__" in vars(k)), None)
        found = (
            hasattr(cls, "__pydantic_fields__")
            and hasattr(cls, "__pydantic_extra__")  # a BaseModel, not a pydantic dataclass
            and not name.startswith("_")  # private attributes live elsewhere
            and not issubclass(cls, Mapping)
            and not hasattr(cls, name)
            and (hook is None or hook.__module__ == "pydantic.main")
        )
        if len(_FIELD_ONLY) < _MAX_FIELD_ONLY:
            _FIELD_ONLY[key] = found
    return found


def get(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; ``None`` when absent or unreadable."""
    if type(obj) is dict:  # decoded JSON and TypedDicts: the common case, kept fast
        return obj.get(name)
    if obj is None or isinstance(obj, _SCALARS):
        return None
    if _field_only(type(obj), name):
        # An SDK model: a field or extra key, read without the ``__getattr__`` that raises
        # (and is caught) for every field the response does not carry.
        fields = obj.__dict__
        if name in fields:
            value = fields[name]
        else:
            extra = getattr(obj, "__pydantic_extra__", None)
            value = extra.get(name) if extra else None
        return None if callable(value) else value
    try:
        if isinstance(obj, Mapping):
            return obj.get(name)
        value = getattr(obj, name, None)
    except Exception:  # properties, __getattr__ and broken mappings may raise anything
        return None
    # A bound method found by name is not data (e.g. a field named like a method).
    if callable(value):
        return None
    return value


def path(obj: Any, *names: str) -> Any:
    """``get`` along a path of names: ``path(resp, "usage", "prompt_tokens_details")``."""
    for name in names:
        obj = get(obj, name)
        if obj is None:
            return None
    return obj


def first(obj: Any, *names: str) -> Any:
    """The first of ``names`` present (not ``None``) on ``obj``: camelCase or snake_case."""
    for name in names:
        value = get(obj, name)
        if value is not None:
            return value
    return None


def has_any(obj: Any, *names: str) -> bool:
    """True when at least one of ``names`` is present (not ``None``) on ``obj``."""
    return first(obj, *names) is not None


def items(obj: Any, limit: int = MAX_ITEMS) -> Iterator[Any]:
    """The elements of a list-like field, at most ``limit``; nothing for anything else.

    Mappings and strings are not lists of elements here; iteration errors end the list.
    """
    if obj is None or isinstance(obj, (str, bytes, bytearray, Mapping)):
        return
    if not isinstance(obj, Iterable):
        return
    try:
        for index, element in enumerate(obj):
            if index >= limit:
                return
            yield element
    except Exception:
        return
