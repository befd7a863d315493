"""The public surface: what ``import tokentrail`` offers, and what it must not import."""

from __future__ import annotations

import subprocess
import sys

import tokentrail

PUBLIC = {
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
}


def test_the_public_names_are_exactly_these() -> None:
    """Adding or removing a public name is a decision: change this list with it."""
    assert set(tokentrail.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(tokentrail, name) is not None, name


def test_every_error_is_a_tokentrail_error() -> None:
    for name in ("BudgetExceededError", "PricingError", "StoreError", "UnknownModelError"):
        assert issubclass(getattr(tokentrail, name), tokentrail.TokentrailError)


def test_importing_tokentrail_imports_no_framework_nor_heavy_library() -> None:
    code = (
        "import sys, tokentrail\n"
        "heavy = ('langchain_core', 'llama_index', 'pandas', 'matplotlib', 'opentelemetry',"
        " 'fastapi', 'psycopg')\n"
        "print([m for m in sys.modules if m.split('.')[0] in heavy])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
