"""Registered prices: where they apply (issue 21 item 7).

"my-finetune" at input 3 / output 12 USD per 1M tokens is the issue's example; gpt-4o-mini's
catalog price is input 0.15 / output 0.60 (https://openai.com/api/pricing).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tokentrail import pricing


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    pricing.clear_overrides()
    yield
    pricing.clear_overrides()


def test_a_registered_model_is_priced_without_naming_its_provider() -> None:
    pricing.register("my-finetune", provider="openai", input="3", output="12")
    # 1,000 x 3 + 100 x 12 = 4,200 per 1M tokens
    for provider in (None, "openai"):
        c = pricing.cost("my-finetune", provider=provider, input_tokens=1000, output_tokens=100)
        assert c is not None and (c.total, c.source) == (Decimal("0.0042"), "override")


def test_a_provider_that_contradicts_the_registration_is_not_given_its_price() -> None:
    pricing.register("my-finetune", provider="openai", input="3", output="12")
    assert pricing.cost("my-finetune", provider="anthropic", input_tokens=1000) is None


def test_an_override_of_a_built_in_model_applies_when_no_provider_is_named() -> None:
    plain = pricing.cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert plain is not None and plain.total == Decimal("0.00021")  # 150 + 60 per 1M
    pricing.register("gpt-4o-mini", provider="openai", input="1", output="2")
    c = pricing.cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert c is not None and (c.total, c.source) == (Decimal("0.0012"), "override")
