"""Token estimation for pre-flight budget checks, offline and never raising.

OpenAI models are counted exactly with tiktoken and the encoding the model uses
(``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, chatgpt-4o and the o-series;
``cl100k_base`` for gpt-4, gpt-3.5 and the embedding models). tiktoken never touches the network
(``encodings``); when no local file is found the heuristic below is used.

Other families (Claude, Gemini, Llama, Mistral, ...) and OpenAI models without a
tokenizer file use a calibrated heuristic: word-like pieces, numbers, punctuation and
non-Latin characters are counted the way BPE tokenizers split them, then scaled by a
per-family factor; text that looks like code is counted with the code calibration.

Chat requests add the per-message overhead OpenAI's cookbook counts (3 tokens per message,
1 per ``name``, 3 to prime the reply) and the tool definitions (the cookbook's function
counting). Example::

    from tokentrail.estimate import count_message_tokens
    count_message_tokens([{"role": "user", "content": "Hello!"}], model="gpt-4o")  # 9

Modules: ``encodings`` (which tiktoken encoding, loaded offline), ``heuristic`` (counts
without a tokenizer), ``counting`` (texts, parts, messages, with a memo), ``tools`` (tool
definitions).
"""

from __future__ import annotations

from .counting import (
    IMAGE_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TOKENS_REPLY_PRIMING,
    clear_counts,
    count_text_tokens,
)
from .encodings import clear_encodings, encoding_for, encoding_name_for, is_exact
from .heuristic import family_of, heuristic_count, looks_like_code
from .messages import count_message_tokens, message_tokens
from .tools import count_tools_tokens

__all__ = [
    "IMAGE_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_REPLY_PRIMING",
    "clear_caches",
    "count_message_tokens",
    "count_text_tokens",
    "count_tools_tokens",
    "encoding_for",
    "encoding_name_for",
    "family_of",
    "heuristic_count",
    "is_exact",
    "looks_like_code",
    "message_tokens",
]


def clear_caches() -> None:
    """Forget loaded encodings and cached counts (tests, benchmarks)."""
    clear_encodings()
    clear_counts()
