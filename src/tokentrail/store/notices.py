"""Warnings the store gives once per kind of problem (the app's log is not a stream of them)."""

from __future__ import annotations

import logging

__all__ = ["Notices"]

logger = logging.getLogger("tokentrail")


class Notices:
    """Log each kind of problem (``key``) once until it is cleared."""

    def __init__(self) -> None:
        self.given: set[str] = set()

    def once(self, key: str, message: str) -> None:
        """Log ``message`` as a warning unless ``key`` was warned about already."""
        if key not in self.given:
            self.given.add(key)
            logger.warning("tokentrail: %s", message)

    def clear(self, key: str) -> None:
        """The problem is gone: warn again if it comes back."""
        self.given.discard(key)
