"""What a captured call says in OpenTelemetry: span name, span attributes, metric attributes.

Pure functions from a :class:`~tokentrail.records.UsageRecord` (or a refused
:class:`~tokentrail.budget.PreflightRequest`) to attribute mappings; :mod:`tokentrail.otel`
turns them into spans and measurements. No OpenTelemetry import here.

Names follow the OpenTelemetry GenAI semantic conventions as last released (semantic
conventions 1.3x, the ``opentelemetry-semantic-conventions`` 0.5x/0.6x Python names):
``gen_ai.operation.name``, ``gen_ai.provider.name`` (it replaced ``gen_ai.system``),
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.id``,
``gen_ai.usage.input_tokens`` / ``output_tokens`` / ``cache_read.input_tokens`` /
``cache_creation.input_tokens`` / ``reasoning.output_tokens``, ``error.type``, and the
general ``user.id`` and ``session.id``. What the conventions have no name for is
``tokentrail.<column>``, named after the ``usage`` table column it equals (money as a
double in USD: ``tokentrail.total_cost``, ``tokentrail.input_cost``...). The caller's
``metadata`` is not sent (free-form, may hold anything); prompt and response text never
reach a record in the first place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from .records import MONEY_FIELDS

if TYPE_CHECKING:
    from .budget import BudgetStatus, PreflightRequest
    from .errors import BudgetExceededError
    from .records import UsageRecord

__all__ = [
    "PROVIDER_NAMES",
    "budget_status_attributes",
    "call_attributes",
    "metric_attributes",
    "operation_name",
    "provider_name",
    "refusal_attributes",
    "refusal_request_attributes",
    "request_model",
    "span_name",
]

#: An attribute value as OpenTelemetry takes it.
Value: TypeAlias = str | bool | int | float | Sequence[str]
Attributes: TypeAlias = dict[str, Value]

#: tokentrail provider id -> the conventions' well-known ``gen_ai.provider.name`` value.
#: Ids not listed are sent as they are (the conventions allow other values).
PROVIDER_NAMES: Mapping[str, str] = {
    "google": "gcp.gen_ai",  # Gemini API or Vertex AI: tokentrail does not tell them apart
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}

#: Usage column -> attribute; the first five have GenAI names, the rest tokentrail's.
_COUNTS: tuple[tuple[str, str], ...] = (
    ("input_tokens", "gen_ai.usage.input_tokens"),
    ("output_tokens", "gen_ai.usage.output_tokens"),
    ("cache_read_tokens", "gen_ai.usage.cache_read.input_tokens"),
    ("cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
    ("cache_write_1h_tokens", "tokentrail.cache_write_1h_tokens"),
    ("input_audio_tokens", "tokentrail.input_audio_tokens"),
    ("output_audio_tokens", "tokentrail.output_audio_tokens"),
    ("input_image_tokens", "tokentrail.input_image_tokens"),
    ("output_image_tokens", "tokentrail.output_image_tokens"),
    ("cache_read_audio_tokens", "tokentrail.cache_read_audio_tokens"),
    ("input_video_tokens", "tokentrail.input_video_tokens"),
    ("web_search_requests", "tokentrail.web_search_requests"),
)


def provider_name(provider: str | None) -> str | None:
    """The ``gen_ai.provider.name`` of a tokentrail provider id (``None`` stays unknown)."""
    if provider is None:
        return None
    return PROVIDER_NAMES.get(provider, provider)


def operation_name(record: UsageRecord) -> str:
    """``gen_ai.operation.name``: ``embeddings``, ``text_completion`` or ``chat``.

    The integrations name the non-chat kinds in ``operation``: embedding batches
    (``embedding``) and text-completion calls (``text_completion``, unless the user's
    attribution set an operation of its own). Every other call is a chat model call.
    """
    operation = record.operation
    if operation == "embedding":
        return "embeddings"
    return "text_completion" if operation == "text_completion" else "chat"


def request_model(record: UsageRecord) -> str | None:
    """``gen_ai.request.model``: the model asked for, else (unknown) the one recorded."""
    return record.request_model or record.model


def span_name(operation: str, model: str | None) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, the operation alone without a model."""
    return f"{operation} {model}" if model else operation


def metric_attributes(record: UsageRecord) -> Attributes:
    """Operation, provider and model: the only attributes of the measurements (bounded
    cardinality; user and session ids never go on a metric)."""
    attrs: Attributes = {"gen_ai.operation.name": operation_name(record)}
    provider = provider_name(record.provider)
    if provider is not None:
        attrs["gen_ai.provider.name"] = provider
    model = request_model(record)
    if model:
        attrs["gen_ai.request.model"] = model
    return attrs


def call_attributes(record: UsageRecord) -> Attributes:
    """Every attribute of a call's span except those of :func:`metric_attributes`.

    ``record.model`` is the model the response named when it named one, else the one asked
    for: it is ``gen_ai.response.model`` when a response came (status ``ok``).
    """
    usage = record.usage
    attrs: Attributes = {attr: getattr(usage, name) for name, attr in _COUNTS}
    attrs["tokentrail.id"] = record.id
    attrs["tokentrail.framework"] = record.framework
    attrs["tokentrail.status"] = record.status
    attrs["tokentrail.estimated"] = usage.estimated
    attrs["tokentrail.streamed"] = record.streamed
    optional: tuple[tuple[str, Value | None], ...] = (
        ("user.id", record.user_id),
        ("session.id", record.session_id),
        ("tokentrail.operation", record.operation),
        ("tokentrail.tags", tuple(record.tags) or None),
    )
    attrs.update((k, v) for k, v in optional if v is not None)
    if record.status == "ok" and record.model:
        attrs["gen_ai.response.model"] = record.model
    if record.request_id:
        # A failed call's id is the request id its error carried, not a response's.
        key = "tokentrail.request_id" if record.status == "error" else "gen_ai.response.id"
        attrs[key] = record.request_id
    if record.status == "error":
        attrs["error.type"] = record.error_type or "_OTHER"
    cost = record.cost
    if cost is not None:
        # Doubles: exact to 15 significant digits, more than a call's cost has; the
        # store keeps the exact decimal.
        for column, field in MONEY_FIELDS:
            attrs[f"tokentrail.{column}"] = float(getattr(cost, field))
        attrs["tokentrail.currency"] = cost.currency
        attrs["tokentrail.cost_source"] = cost.source
        if cost.model:
            attrs["tokentrail.priced_model"] = cost.model
        if cost.catalog_version:
            attrs["tokentrail.catalog_version"] = cost.catalog_version
    return attrs


def refusal_request_attributes(request: PreflightRequest) -> Attributes:
    """Operation, provider and model of a call the budget refused (its metric attributes)."""
    chat = request.messages is not None or request.prompt is None
    attrs: Attributes = {"gen_ai.operation.name": "chat" if chat else "text_completion"}
    provider = provider_name(request.provider)
    if provider is not None:
        attrs["gen_ai.provider.name"] = provider
    if request.model:
        attrs["gen_ai.request.model"] = request.model
    return attrs


def refusal_attributes(error: BudgetExceededError) -> Attributes:
    """The refusing budget, for the ``tokentrail.budget.refused`` event."""
    attrs: Attributes = {
        "tokentrail.budget.scope": error.scope,
        "tokentrail.budget.window": error.window,
        "tokentrail.budget.unit": error.unit,
        "tokentrail.budget.limit": float(error.limit),
        "tokentrail.budget.spent": float(error.spent),
        "tokentrail.budget.reserved": float(error.reserved),
        "tokentrail.budget.estimate": float(error.estimate),
    }
    if error.key is not None:
        attrs["tokentrail.budget.key"] = error.key
    return attrs


def budget_status_attributes(status: BudgetStatus) -> Attributes:
    """A budget's state when a call crossed one of its ``warn_at`` thresholds."""
    attrs: Attributes = {
        "tokentrail.budget.scope": status.scope,
        "tokentrail.budget.window": status.window,
        "tokentrail.budget.unit": status.unit,
        "tokentrail.budget.limit": float(status.limit),
        "tokentrail.budget.spent": float(status.spent),
        "tokentrail.budget.percent": status.percent,
    }
    if status.key is not None:
        attrs["tokentrail.budget.key"] = status.key
    if status.name is not None:
        attrs["tokentrail.budget.name"] = status.name
    return attrs
