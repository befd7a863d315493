"""tokentrail: what your LLM calls cost.

Attach one callback to a LangChain chain or a LlamaIndex app and every model call is
captured, normalized, priced and stored in an embedded DuckDB file; analyse it from a
notebook or the CLI; guard it with budgets that stop a call before it overspends.

Example::

    import tokentrail
    tracker = tokentrail.Tracker()
    chain.invoke(inputs, config={"callbacks": [tracker.langchain(user_id="u1")]})
    tokentrail.cost("gpt-4o", input_tokens=1_000, output_tokens=200)

Importing ``tokentrail`` is cheap: frameworks, pandas and matplotlib load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BudgetExceededError,
    BudgetWarning,
    PricingError,
    StoreError,
    TokentrailError,
    UnknownModelError,
)
from .usage import Usage

if TYPE_CHECKING:
    from . import analytics as analytics
    from . import estimate as estimate
    from . import pricing as pricing
    from .budget import fit_messages as fit_messages
    from .extract import extract_usage as extract_usage
    from .pricing import cost as cost
    from .pricing.types import Cost as Cost
    from .records import UsageRecord as UsageRecord
    from .tracker import Tracker as Tracker

__version__ = "0.1.0"

__all__ = [
    "BudgetExceededError",
    "BudgetWarning",
    "Cost",
    "PricingError",
    "StoreError",
    "TokentrailError",
    "Tracker",
    "UnknownModelError",
    "Usage",
    "UsageRecord",
    "__version__",
    "analytics",
    "cost",
    "estimate",
    "extract_usage",
    "fit_messages",
    "pricing",
]

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "Tracker": (".tracker", "Tracker"),
    "UsageRecord": (".records", "UsageRecord"),
    "Cost": (".pricing.types", "Cost"),
    "cost": (".pricing", "cost"),
    "pricing": (".pricing", None),
    "extract_usage": (".extract", "extract_usage"),
    "fit_messages": (".budget", "fit_messages"),
    "estimate": (".estimate", None),
    "analytics": (".analytics", None),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'tokentrail' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
