"""Reading a field of a payload object: what ``get`` finds on pydantic SDK models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic.dataclasses import dataclass

from tokentrail.extract._access import get


class _Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    details: dict[str, int] | None = None
    _secret: str = PrivateAttr(default="private")

    @property
    def doubled(self) -> int:
        return self.prompt_tokens * 2


class _Strict(BaseModel):
    prompt_tokens: int = 0


class _Required(BaseModel):
    prompt_tokens: int


class _Lazy(BaseModel):
    """A model that answers unknown names itself (as some SDK wrappers do)."""

    prompt_tokens: int = 0

    def __getattr__(self, name: str) -> Any:
        if name == "computed_tokens":
            return 7
        return super().__getattr__(name)  # type: ignore[misc]


def test_a_declared_field_is_read() -> None:
    assert get(_Usage(prompt_tokens=12), "prompt_tokens") == 12


def test_an_extra_key_is_read() -> None:
    assert get(_Usage(search_context_size="high"), "search_context_size") == "high"


def test_a_missing_field_is_none_with_or_without_extras() -> None:
    assert get(_Usage(other=1), "search_context_size") is None
    assert get(_Usage(), "search_context_size") is None
    assert get(_Strict(), "search_context_size") is None


def test_a_model_built_without_its_fields_reads_them_as_none() -> None:
    assert get(_Required.model_construct(), "prompt_tokens") is None


def test_a_property_of_the_model_is_read() -> None:
    assert get(_Usage(prompt_tokens=5), "doubled") == 10


def test_a_method_named_like_a_field_is_not_data() -> None:
    assert get(_Usage(), "model_dump") is None


def test_a_private_attribute_is_read_through_the_model() -> None:
    assert get(_Usage(), "_secret") == "private"


def test_a_model_with_its_own_getattr_is_asked() -> None:
    assert get(_Lazy(), "computed_tokens") == 7
    assert get(_Lazy(), "missing_tokens") is None


def test_the_same_name_on_different_models_is_decided_per_class() -> None:
    assert get(_Strict(), "doubled") is None
    assert get(_Usage(prompt_tokens=1), "doubled") == 2


@dataclass(slots=True)
class _Slotted:
    prompt_tokens: int = 3


def test_a_pydantic_dataclass_without_dict_is_read_as_an_object() -> None:
    assert get(_Slotted(), "prompt_tokens") == 3
    assert get(_Slotted(), "missing_tokens") is None
