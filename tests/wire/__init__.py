"""A loopback HTTP server that answers like OpenAI and Anthropic, for integration tests.

Real SDK clients (``openai``, ``anthropic``, ``langchain-openai``, ``langchain-anthropic``,
``llama-index-llms-openai``/``-anthropic``) talk to it over 127.0.0.1; nothing is mocked
inside the client. Use the ``wire_server`` fixture from ``tests/conftest.py`` (a fresh
server per test) or ``WireServer()`` directly (a context manager).

Endpoints (paths may carry any prefix, e.g. ``/v1``):

* ``POST /v1/chat/completions`` — OpenAI Chat Completions, JSON or SSE (``"stream": true``):
  ``data: {chunk}`` lines then ``data: [DONE]``; with ``stream_options.include_usage`` every
  chunk has ``"usage": null`` and a final chunk with ``"choices": []`` carries the usage.
  Usage has ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details.reasoning_tokens``. ``n > 1`` gives ``n`` choices, usage once.
* ``POST /v1/completions`` — OpenAI's legacy Completions API, JSON or SSE, usage as in Chat
  Completions without the details (``tests/wire/completions.py``).
* ``POST /v1/messages`` — Anthropic Messages, JSON or SSE (``message_start``,
  ``content_block_start``, ``ping``, ``content_block_delta``, ``content_block_stop``,
  ``message_delta`` with the cumulative usage, ``message_stop``). Usage has raw
  ``input_tokens`` (excluding cache), ``cache_creation_input_tokens``,
  ``cache_read_input_tokens`` and ``cache_creation.{ephemeral_5m,ephemeral_1h}_input_tokens``
  (like the real API, ``message_delta`` has no TTL split). ``/v1/messages/count_tokens`` too.
* ``POST /v1/embeddings`` — OpenAI embeddings (float lists, or base64 float32 when the request
  says ``encoding_format: "base64"``, as the ``openai`` SDK does by default).
* ``POST /v1/responses`` — OpenAI Responses API, JSON or SSE (``response.created`` …
  ``response.completed`` with usage).
* Errors (``Reply(status=429)``…) use each provider's error JSON and send
  ``x-should-retry: false`` so the SDKs do not retry: one scripted error = one request.
  Every response has ``x-request-id`` and ``request-id`` headers.

Scripting (``server`` is a :class:`WireServer`):

* ``server.enqueue(Reply(...), ...)`` or ``server.enqueue(output_tokens=3)`` — replies for the
  next requests in order; ``server.set_default(Reply(...))`` / ``server.default`` — the reply
  when the queue is empty; ``server.responder = fn(received) -> Reply | None`` — decide per
  request (``None`` falls through to the queue).
* :class:`Reply` fields: ``text``, ``input_tokens`` (ALL prompt tokens, canonical meaning, for
  every wire), ``output_tokens``, ``cached_tokens`` (cache reads), ``cache_write_5m``,
  ``cache_write_1h``, ``reasoning_tokens`` (part of output), ``model`` (None echoes the
  request), ``status``/``error_message``/``error_type``, ``delay`` (seconds before answering),
  ``chunk_delay`` (seconds between stream chunks), ``chunks`` (explicit stream pieces),
  ``stream_usage`` (force the OpenAI usage chunk on/off), ``raw_usage`` (send this usage object
  verbatim), ``service_tier``, ``tool_calls`` (``[{"name", "arguments"}]``), ``headers``,
  ``request_id``.
* Inspecting: ``server.request_count``, ``server.count("/v1/messages")``,
  ``server.requests`` (:class:`Received`: ``method, path, headers, body, model, stream``),
  ``server.bodies(path)``, ``server.max_in_flight`` (peak concurrent requests),
  ``server.disconnects`` (clients that hung up mid-response), ``server.reset()``.
* Addresses: ``server.openai_base_url`` (``http://127.0.0.1:PORT/v1``) for OpenAI clients,
  ``server.anthropic_base_url`` / ``server.base_url`` (no ``/v1``) for Anthropic clients.
"""

from .formats import Reply
from .server import Received, WireServer

__all__ = ["Received", "Reply", "WireServer"]
