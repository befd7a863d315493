"""Budget scopes: which calls share one budget bucket. Pure functions, no state.

``global`` (every call), ``user``, ``session``, ``operation``, ``model`` (one bucket per
value; calls without a value share the ``None`` bucket) and ``tag:<name>`` (only calls
carrying that tag).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Attribution

__all__ = ["SCOPE_KINDS", "Scope", "parse_scope"]

SCOPE_KINDS = ("global", "user", "session", "operation", "model", "tag")

#: Sentinel meaning "the budget does not apply to this call".
NOT_APPLICABLE = object()


@dataclass(frozen=True, slots=True)
class Scope:
    """A parsed ``scope=`` value; ``tag`` is the tag name for ``tag:<name>`` scopes."""

    kind: str
    tag: str | None = None

    @property
    def name(self) -> str:
        """The scope as written: ``user``, ``tag:beta``..."""
        return f"tag:{self.tag}" if self.kind == "tag" else self.kind

    def key_for(self, attribution: Attribution, model: str | None) -> str | object | None:
        """The bucket key of a call, or :data:`NOT_APPLICABLE`."""
        kind = self.kind
        if kind == "global":
            return None
        if kind == "user":
            return attribution.user_id
        if kind == "session":
            return attribution.session_id
        if kind == "operation":
            return attribution.operation
        if kind == "model":
            return model
        return self.tag if self.tag in attribution.tags else NOT_APPLICABLE

    def sql_filter(self, key: str | None) -> tuple[str, list[object]]:
        """A SQL condition on the ``usage`` table selecting this scope's rows for ``key``."""
        if self.kind == "global":
            return "TRUE", []
        if self.kind == "tag":
            return "list_contains(tags, ?)", [self.tag]
        column = {"user": "user_id", "session": "session_id", "operation": "operation"}.get(
            self.kind
        )
        if column is not None:
            return f"{column} IS NOT DISTINCT FROM ?", [key]
        # model: the request names "gpt-4o-mini", the response "gpt-4o-mini-2024-07-18".
        if key is None:
            return "model IS NULL", []
        return "(model = ? OR starts_with(model, ?))", [key, f"{key}-"]


def parse_scope(scope: str) -> Scope:
    """Parse ``scope``: one of :data:`SCOPE_KINDS` or ``tag:<name>``."""
    text = str(scope).strip()
    if text.lower().startswith("tag:"):
        tag = text[4:].strip()
        if not tag:
            raise ValueError("scope 'tag:' needs a tag name, e.g. scope='tag:beta'")
        return Scope("tag", tag)
    kind = text.lower()
    if kind not in SCOPE_KINDS or kind == "tag":
        raise ValueError(
            f"unknown budget scope {scope!r}: use global, user, session, operation, model "
            "or tag:<name>"
        )
    return Scope(kind)
