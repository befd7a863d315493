"""The canonical token counts of one model call.

Every provider dialect is converted into :class:`Usage` (see ``tokentrail.extract``):

* ``input_tokens`` counts *every* prompt token; ``cache_read_tokens``, ``cache_write_tokens``
  (of which ``cache_write_1h_tokens`` is the 1-hour TTL part), ``input_audio_tokens``,
  ``input_image_tokens`` and ``input_video_tokens`` are subsets of it. The audio, image
  and video counts are the *uncached* ones: a cached token is counted once, in ``cache_read_tokens``, of which
  ``cache_read_audio_tokens`` are the cached audio (billed at a cached-audio rate).
* ``output_tokens`` counts every generated token; ``reasoning_tokens``,
  ``output_audio_tokens`` and ``output_image_tokens`` are subsets of it.
* ``web_search_requests`` counts the web searches the provider ran for the call (billed
  per search, not per token): it is no part of any token count and no subset rule
  applies to it.

Construction through :meth:`Usage.from_counts` never raises: bad values are coerced or
clamped, a warning is logged and the problem is kept in :attr:`Usage.issues`.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .frozen_init import dict_init

__all__ = ["COUNT_FIELDS", "MAX_TOKENS", "Usage", "coerce_count", "subsets_fit"]

logger = logging.getLogger("tokentrail")

#: Count field names (the token counts, then the web searches), in table order.
COUNT_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "reasoning_tokens",
    "output_audio_tokens",
    "input_image_tokens",
    "output_image_tokens",
    "cache_read_audio_tokens",
    "web_search_requests",
    "input_video_tokens",
)

#: Largest count accepted (the table stores BIGINT; no real call comes near this).
MAX_TOKENS = 2**53


def coerce_count(value: Any) -> tuple[int, str | None]:
    """Turn one reported count into a non-negative ``int``.

    Returns the count and, when the value had to be changed, a short description of the
    problem. ``None`` and missing values are 0 without a problem.
    """
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # the common case, kept fast
        return value, None
    if value is None:
        return 0, None
    if isinstance(value, bool):
        return 0, f"boolean {value!r} is not a count"
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return 0, f"{value!r} is not a count"
        n = round(value)
        if n != value:
            return _bounded(n, f"fractional count {value!r} rounded to {_show(n)}")
    elif isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        try:
            n = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                return 0, f"{value[:40]!r} is not a count"
            return coerce_count(as_float)
    else:
        try:
            # numpy integers and the like convert exactly; Decimal and numpy floats go
            # through float so that a fraction is flagged instead of silently truncated.
            return coerce_count(operator.index(value))
        except Exception:
            pass
        try:
            as_float = float(value)
        except Exception:
            return 0, f"{_short_type(value)} is not a count"
        return coerce_count(as_float)
    return _bounded(n, None)


def _short_type(value: Any) -> str:
    # repr() of foreign objects may be huge, slow or raise: name the type only.
    try:
        return type(value).__name__
    except Exception:  # pragma: no cover - type() of anything has a name
        return "object"


def _show(n: int) -> str:
    # str() of an int over 4300 digits raises ValueError on Python 3.11+.
    return str(n) if -(10**30) < n < 10**30 else ("-huge" if n < 0 else "huge")


def _bounded(n: int, problem: str | None) -> tuple[int, str | None]:
    if n < 0:
        return 0, f"negative count {_show(n)} set to 0"
    if n > MAX_TOKENS:
        return MAX_TOKENS, f"count {_show(n)} clamped to {MAX_TOKENS}"
    return n, problem


# (subset fields, parent field): the subsets together may not exceed the parent.
# The 1-hour rule comes after the input rule, which may lower cache_write_tokens.
# The input's parts are disjoint (audio, image and video are the uncached ones), so they
# share one rule: two separate rules let 800 cached + 800 audio of 1,000 input through,
# which no price split can bill.
_SUBSET_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (
            "cache_read_tokens",
            "cache_write_tokens",
            "input_audio_tokens",
            "input_image_tokens",
            "input_video_tokens",
        ),
        "input_tokens",
    ),
    (("cache_write_1h_tokens",), "cache_write_tokens"),
    (("cache_read_audio_tokens",), "cache_read_tokens"),
    (("reasoning_tokens", "output_audio_tokens", "output_image_tokens"), "output_tokens"),
)


@dict_init
@dataclass(frozen=True)
class Usage:
    """Canonical token counts of one model call (or a sum of calls).

    Example::

        >>> u = Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=300)
        >>> u.total_tokens
        1500
        >>> (u + u).input_tokens
        2400
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    reasoning_tokens: int = 0
    output_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    cache_read_audio_tokens: int = 0
    #: Web searches the provider ran (and bills per search): not tokens.
    web_search_requests: int = 0
    input_video_tokens: int = 0
    #: True when the counts were estimated locally, not reported by the provider.
    estimated: bool = False
    #: Problems found while validating the counts (values clamped, coerced or dropped).
    issues: tuple[str, ...] = ()

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, Any] | None = None,
        /,
        *,
        estimated: bool = False,
        source: str = "usage",
        issues: tuple[str, ...] | list[str] = (),
        **kwargs: Any,
    ) -> Usage:
        """Build a valid ``Usage`` from loosely typed counts; never raises.

        Accepts a mapping and/or keyword arguments with the field names. ``None`` is 0;
        strings of digits and integral floats are accepted; negative, NaN, non-numeric
        values become 0; a subset larger than its parent is clamped to it. Each change is
        logged once as a warning and recorded in :attr:`issues`. ``total_tokens`` given in
        the input is ignored (it is always ``input + output``); unknown keys are reported.
        ``issues`` are problems the caller already found (e.g. while reading a provider
        payload); they are kept first and reported in the same single warning.
        """
        if not kwargs and not issues and type(counts) is dict and _valid_as_given(counts):
            return cls(**counts, estimated=bool(estimated))  # the usual case: nothing to fix
        problems: list[str] = [str(p) for p in issues]
        try:
            values = _validated(counts, kwargs, problems)
        except Exception as exc:  # a hostile mapping must not break the caller
            problems.append(f"counts could not be read ({type(exc).__name__})")
            values = {}
        if problems:
            logger.warning("tokentrail: invalid %s counts fixed: %s", source, "; ".join(problems))
        return cls(**values, estimated=bool(estimated), issues=tuple(problems))

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens

    @property
    def cache_write_5m_tokens(self) -> int:
        """The 5-minute TTL part of the cache writes."""
        return self.cache_write_tokens - self.cache_write_1h_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens neither read from nor written to a cache."""
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens

    @property
    def is_empty(self) -> bool:
        """True when every count (searches included) is 0."""
        return all(getattr(self, name) == 0 for name in COUNT_FIELDS)

    def __add__(self, other: object) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        # Two valid usages add up to a valid one: each subset sum stays within its parent's.
        return Usage(
            **{n: getattr(self, n) + getattr(other, n) for n in COUNT_FIELDS},
            estimated=self.estimated or other.estimated,
            issues=self.issues + other.issues,
        )

    def replace(self, **changes: Any) -> Usage:
        """A copy with some fields changed (validated again)."""
        counts = {n: getattr(self, n) for n in COUNT_FIELDS}
        flags = {"estimated": changes.pop("estimated", self.estimated)}
        counts.update(changes)
        fixed = Usage.from_counts(counts, **flags)
        return replace(fixed, issues=self.issues + fixed.issues)

    def as_dict(self) -> dict[str, int]:
        """The counts plus ``total_tokens``, as a plain dict."""
        out = {n: getattr(self, n) for n in COUNT_FIELDS}
        out["total_tokens"] = self.total_tokens
        return out


_FIELD_SET = frozenset(COUNT_FIELDS)
assert {f.name for f in fields(Usage)} >= _FIELD_SET


def subsets_fit(counts: Mapping[str, int]) -> bool:
    """True when no subset exceeds its parent (``cache_read + cache_write <= input``...).

    ``counts`` maps field names to non-negative ints; absent fields are 0. The rule itself
    is :data:`_SUBSET_RULES`; :meth:`Usage.from_counts` clamps what breaks it.
    """
    get = counts.get
    for subset, parent in _SUBSET_RULES:
        total = 0
        for name in subset:
            total += get(name, 0)
        if total > get(parent, 0):
            return False
    return True


_INT_ONLY = frozenset((int,))


def _valid_as_given(counts: dict[Any, Any]) -> bool:
    """Known field names, exact ints in range, subsets within their parents: valid as is."""
    if not counts.keys() <= _FIELD_SET:
        return False
    if not counts:
        return True
    values = counts.values()
    # Bulk checks (C loops): every value an exact int (no bool, no float), all in range.
    if not _INT_ONLY.issuperset(map(type, values)):
        return False
    return min(values) >= 0 and max(values) <= MAX_TOKENS and subsets_fit(counts)


def _validated(
    counts: Mapping[str, Any] | None, kwargs: dict[str, Any], problems: list[str]
) -> dict[str, int]:
    merged: dict[str, Any] = {}
    if counts is not None:
        try:
            merged.update(counts)
        except Exception:
            problems.append(f"{_short_type(counts)} is not a mapping of counts")
            merged = {}
    merged.update(kwargs)
    merged.pop("total_tokens", None)
    values: dict[str, int] = {}
    for key, raw in merged.items():
        if key not in _FIELD_SET:
            problems.append(f"unknown usage field {str(key)[:40]!r} ignored")
            continue
        n, problem = coerce_count(raw)
        if problem:
            problems.append(f"{key}: {problem}")
        values[key] = n
    values, clamp_problems = _clamp_subsets(values)
    problems.extend(clamp_problems)
    return values


def _clamp_subsets(values: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    problems: list[str] = []
    for subset_names, parent in _SUBSET_RULES:
        parent_value = values.get(parent, 0)
        total = sum(values.get(n, 0) for n in subset_names)
        if total <= parent_value:
            continue
        problems.append(f"{' + '.join(subset_names)} = {total} exceeds {parent} = {parent_value}")
        remaining = parent_value
        for name in subset_names:
            clamped = min(values.get(name, 0), remaining)
            values[name] = clamped
            remaining -= clamped
    return values, problems
