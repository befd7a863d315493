"""Turn raw reported numbers into a validated :class:`~tokentrail.usage.Usage`.

Extractors do a little arithmetic on provider counts (Anthropic's input excludes cache
tokens, Gemini's output excludes thoughts), so each raw value is coerced first with
:func:`~tokentrail.usage.coerce_count`; the problems found are handed to
:meth:`Usage.from_counts`, which adds its own checks and logs them all in one warning.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from ..usage import Usage, coerce_count

__all__ = ["Tally", "logger", "never_raises"]

logger = logging.getLogger("tokentrail")

P = ParamSpec("P")
R = TypeVar("R")


class Tally:
    """Collects coerced counts and the problems met on the way, for one payload."""

    __slots__ = ("problems", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def count(self, value: Any, label: str) -> int:
        """``value`` as a non-negative int (``None`` is 0); a problem is noted under ``label``."""
        n, problem = coerce_count(value)
        if problem:
            self.problems.append(f"{label}: {problem}")
        return n

    def maybe(self, value: Any, label: str) -> int | None:
        """Like :meth:`count` but ``None`` stays ``None`` (to tell "absent" from 0)."""
        return None if value is None else self.count(value, label)

    def note(self, problem: str) -> None:
        """Record a problem that is not about one count."""
        self.problems.append(problem)

    def usage(self, **counts: int) -> Usage:
        """The validated ``Usage``; logs one warning when anything was fixed."""
        return Usage.from_counts(counts, source=self.source, issues=self.problems)


def never_raises(source: str) -> Callable[[Callable[P, R | None]], Callable[P, R | None]]:
    """Decorate an extractor so that any exception becomes ``None`` and one warning."""

    def decorate(fn: Callable[P, R | None]) -> Callable[P, R | None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # tracking must never break the user's call
                logger.warning(
                    "tokentrail: could not read %s usage (%s); usage dropped",
                    source,
                    type(exc).__name__,
                )
                return None

        return wrapper

    return decorate
