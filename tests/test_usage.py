"""Usage: the canonical counts, their validation, clamping and addition."""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentrail.pricing.leaves import leaf_counts
from tokentrail.usage import COUNT_FIELDS, MAX_TOKENS, Usage, coerce_count, subsets_fit


def repr_short(value: Any) -> str:
    # str() of a 5000-digit int raises on Python 3.11+: name huge ids by their type.
    if isinstance(value, int) and abs(value) > 10**30:
        return "huge-int" if value > 0 else "huge-negative-int"
    if type(value) is object:
        return "bare-object"  # its repr holds an address, which differs between xdist workers
    return repr(value)[:30]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="tokentrail")
    return caplog


def test_total_and_derived_counts() -> None:
    u = Usage(
        input_tokens=1200,
        cache_read_tokens=800,
        cache_write_tokens=300,
        cache_write_1h_tokens=100,
        output_tokens=500,
        reasoning_tokens=200,
    )
    assert u.total_tokens == 1700
    assert u.cache_write_5m_tokens == 200
    assert u.uncached_input_tokens == 100
    assert not u.is_empty
    assert Usage().is_empty


def test_addition_sums_every_count_and_keeps_flags_and_issues() -> None:
    a = Usage(input_tokens=10, output_tokens=2, cache_read_tokens=4, issues=("a",))
    b = Usage(
        input_tokens=5, output_tokens=1, reasoning_tokens=1, web_search_requests=3, estimated=True
    )
    total = a + b
    assert total.as_dict() == {
        "input_tokens": 15,
        "output_tokens": 3,
        "cache_read_tokens": 4,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "input_audio_tokens": 0,
        "reasoning_tokens": 1,
        "output_audio_tokens": 0,
        "input_image_tokens": 0,
        "output_image_tokens": 0,
        "cache_read_audio_tokens": 0,
        "web_search_requests": 3,
        "input_video_tokens": 0,
        "total_tokens": 18,
    }
    assert total.estimated and total.issues == ("a",)
    assert sum([a, b], Usage()) == total


def test_addition_with_something_else_is_not_supported() -> None:
    with pytest.raises(TypeError):
        Usage() + 1  # type: ignore[operator]


def test_from_counts_accepts_a_mapping_and_keywords(logged: pytest.LogCaptureFixture) -> None:
    u = Usage.from_counts({"input_tokens": 10}, output_tokens=3, total_tokens=999)
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (10, 3, 13)
    assert u.issues == () and logged.records == []


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (None, 0),
        (7, 7),
        ("1200", 1200),
        (" 1_200 ", 1200),
        ("1,200", 1200),
        (12.0, 12),
        ("12.0", 12),
        (Decimal(30), 30),
    ],
)
def test_values_accepted_without_a_problem(value: Any, count: int) -> None:
    assert coerce_count(value) == (count, None)


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (-5, 0),
        (math.nan, 0),
        (math.inf, 0),
        (-math.inf, 0),
        ("abc", 0),
        ("", 0),
        (True, 0),
        (2.5, 2),
        (Decimal("1.5"), 2),
        (Fraction(7, 2), 4),
        (Decimal("NaN"), 0),
        ([1], 0),
        ({"a": 1}, 0),
        (object(), 0),
        (10**100, MAX_TOKENS),
        (-(10**5000), 0),
        (10**5000, MAX_TOKENS),
        ("9" * 5000, 0),
    ],
    ids=repr_short,
)
def test_bad_values_are_coerced_with_a_problem(value: Any, count: int) -> None:
    n, problem = coerce_count(value)
    assert n == count
    assert problem


def test_from_counts_flags_each_fix_and_warns_once(logged: pytest.LogCaptureFixture) -> None:
    u = Usage.from_counts(
        {"input_tokens": "12", "output_tokens": -1, "reasoning_tokens": math.nan, "bogus": 3}
    )
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens) == (12, 0, 0)
    assert len(u.issues) == 3
    assert len(logged.records) == 1
    assert "bogus" in logged.records[0].getMessage()


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            {"input_tokens": 100, "cache_read_tokens": 80, "cache_write_tokens": 50},
            {"input_tokens": 100, "cache_read_tokens": 80, "cache_write_tokens": 20},
        ),
        (
            {"input_tokens": 100, "cache_write_tokens": 40, "cache_write_1h_tokens": 60},
            {"input_tokens": 100, "cache_write_tokens": 40, "cache_write_1h_tokens": 40},
        ),
        (
            {"input_tokens": 10, "cache_write_tokens": 40, "cache_write_1h_tokens": 40},
            {"input_tokens": 10, "cache_write_tokens": 10, "cache_write_1h_tokens": 10},
        ),
        (
            {"input_tokens": 5, "input_audio_tokens": 9},
            {"input_tokens": 5, "input_audio_tokens": 5},
        ),
        (
            {"output_tokens": 10, "reasoning_tokens": 8, "output_audio_tokens": 8},
            {"output_tokens": 10, "reasoning_tokens": 8, "output_audio_tokens": 2},
        ),
    ],
)
def test_subsets_larger_than_their_parent_are_clamped_and_flagged(
    counts: dict[str, int], expected: dict[str, int], logged: pytest.LogCaptureFixture
) -> None:
    u = Usage.from_counts(counts)
    assert {k: getattr(u, k) for k in COUNT_FIELDS if getattr(u, k)} == expected
    assert any("exceeds" in issue for issue in u.issues)
    assert len(logged.records) == 1


def test_prior_issues_are_kept_first_in_the_same_warning(logged: pytest.LogCaptureFixture) -> None:
    u = Usage.from_counts({"input_tokens": 1, "cache_read_tokens": 2}, issues=["payload odd"])
    assert u.issues[0] == "payload odd" and len(u.issues) == 2
    assert len(logged.records) == 1


class Hostile(dict[str, Any]):
    def __iter__(self) -> Any:
        raise RuntimeError("no")

    def keys(self) -> Any:
        raise RuntimeError("no")


@pytest.mark.parametrize("counts", ["input_tokens", 42, [("input_tokens", "x", 3)], Hostile(a=1)])
def test_from_counts_never_raises_on_garbage(counts: Any) -> None:
    u = Usage.from_counts(counts)
    assert isinstance(u, Usage)
    assert u.issues


def test_from_counts_keeps_the_estimated_flag() -> None:
    assert Usage.from_counts({"input_tokens": 3}, estimated=True).estimated


def test_replace_validates_again_and_accumulates_issues() -> None:
    u = Usage(input_tokens=10, cache_read_tokens=5, issues=("old",))
    changed = u.replace(input_tokens=2)
    assert changed.input_tokens == 2 and changed.cache_read_tokens == 2
    assert changed.issues[0] == "old" and len(changed.issues) == 2
    assert u.replace(estimated=True).estimated


def test_usage_is_frozen_and_hashable() -> None:
    u = Usage(input_tokens=1)
    with pytest.raises(AttributeError):
        u.input_tokens = 2  # type: ignore[misc]
    assert len({u, Usage(input_tokens=1)}) == 1


def _obeys_subset_rule(c: dict[str, object]) -> bool:
    """The subset rule of DESIGN.md, written out by hand (absent fields are 0)."""

    def n(name: str) -> int:
        value = c.get(name, 0)
        assert type(value) is int
        return value

    # The input's parts are disjoint (audio, image and video are the uncached ones).
    input_parts = ("cache_read_tokens", "cache_write_tokens", "input_audio_tokens")
    input_parts += ("input_image_tokens", "input_video_tokens")
    return (
        sum(n(part) for part in input_parts) <= n("input_tokens")
        and n("cache_write_1h_tokens") <= n("cache_write_tokens")
        and n("cache_read_audio_tokens") <= n("cache_read_tokens")
        and n("reasoning_tokens") + n("output_audio_tokens") + n("output_image_tokens")
        <= n("output_tokens")
    )


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(
        st.sampled_from([*COUNT_FIELDS, "total_tokens"]),
        st.one_of(st.integers(min_value=-5, max_value=10_000), st.booleans(), st.floats()),
        max_size=6,
    ),
    estimated=st.booleans(),
)
def test_from_counts_always_obeys_the_subset_rule_and_keeps_valid_counts_as_given(
    counts: dict[str, object], estimated: bool
):
    u = Usage.from_counts(counts, estimated=estimated)
    values: dict[str, object] = {name: getattr(u, name) for name in COUNT_FIELDS}
    assert all(type(v) is int and v >= 0 for v in values.values())
    assert _obeys_subset_rule(values)
    assert subsets_fit(values)  # type: ignore[arg-type]
    leaf_counts(u)  # every valid Usage splits into leaves a price can bill (raises if not)
    assert u.estimated is estimated
    given_counts = {k: v for k, v in counts.items() if k != "total_tokens"}
    if all(type(v) is int and v >= 0 for v in given_counts.values()):
        if _obeys_subset_rule(given_counts):
            assert u.issues == ()
            assert {k: v for k, v in values.items() if v or k in given_counts} == given_counts
        else:
            assert any("exceeds" in issue for issue in u.issues)
    if any(type(v) is int and v < 0 for v in given_counts.values()):
        assert any("negative" in issue for issue in u.issues)


def test_cached_and_uncached_audio_share_the_input() -> None:
    """800 cached + 800 (uncached) audio tokens cannot both be parts of 1,000 input tokens:
    clamped and flagged, so the call can still be priced (two separate rules once let it
    through, and the pricer then refused the call: its cost was stored as unknown)."""
    from tokentrail import cost

    u = Usage.from_counts(
        {"input_tokens": 1000, "cache_read_tokens": 800, "input_audio_tokens": 800}
    )
    assert (u.cache_read_tokens, u.input_audio_tokens) == (800, 200)
    assert u.issues and "exceeds input_tokens = 1000" in u.issues[0]
    assert cost("gpt-4o-audio-preview", usage=u) is not None
