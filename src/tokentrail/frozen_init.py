"""A cheaper ``__init__`` for the frozen dataclasses every captured call builds.

The ``__init__`` a frozen dataclass generates sets each field with
``object.__setattr__``, one call per field; :class:`~tokentrail.Usage` (15 fields) and
:class:`~tokentrail.pricing.Cost` (17) are built on every captured call, where that was
the dearest step of reading a usage and of pricing it (about 2x the one-update version,
``benchmarks/bench_langchain.py``). :func:`dict_init` replaces it with one that puts every
field into the instance's ``__dict__`` in one ``update``: the same parameters and
defaults, derived from the fields, so adding a field still touches only its declaration.
The class stays frozen (assignment raises), hashable and comparable; type checkers see
the dataclass's own signature.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

__all__ = ["dict_init"]

T = TypeVar("T")


def dict_init(cls: type[T]) -> type[T]:
    """Give the frozen dataclass ``cls`` an ``__init__`` that sets its fields in one update.

    Apply it above ``@dataclass(frozen=True)``. Fields with a ``default_factory`` are not
    supported (no such field is needed on the hot path).
    """
    params, assigns, defaults = [], [], {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default_factory is not MISSING:
            raise TypeError(f"dict_init: {cls.__name__}.{f.name} has a default_factory")
        if f.default is MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        assigns.append(f"{f.name}={f.name}")
    source = (
        f"def __init__(self, {', '.join(params)}):\n"
        f"    self.__dict__.update({', '.join(assigns)})\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, defaults, namespace)  # how dataclasses builds its own __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010 (mypy forbids assigning to __init__)
    return cls
