"""Long reliability runs, on demand: ``python -m pytest -m soak tests/soak``."""
