"""The ``usage`` table and the numbered migrations that build it.

Migrations are applied in order and recorded in ``tokentrail_migrations``; a database
written by an older version opens in a newer one. Never edit a released migration:
append a new one.

``usage.id`` is unique by construction (UUIDv7) but has no PRIMARY KEY: an index would
slow bulk inserts and cost memory in every writer; exactly-once ingestion is guaranteed by
the ``tokentrail_ingested`` ledger instead.
"""

from __future__ import annotations

__all__ = ["COST_TYPE", "MIGRATIONS", "SCHEMA_VERSION"]

#: Money columns: USD with 12 decimal places (one token at $0.01875 per 1M is exact) and
#: 26 digits before the point: any real cost fits (migration 3 widened the first type,
#: whose $1M ceiling made larger figures NULL and vanish from sums).
COST_TYPE = "DECIMAL(38, 12)"
# The money type of migration 1, as released (a released migration is never edited).
_V1_COST = "DECIMAL(18, 12)"

_V1_USAGE = f"""
CREATE TABLE IF NOT EXISTS usage (
    id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    latency_ms DOUBLE,
    framework VARCHAR NOT NULL,
    provider VARCHAR,
    model VARCHAR,
    priced_model VARCHAR,
    user_id VARCHAR,
    session_id VARCHAR,
    operation VARCHAR,
    run_id VARCHAR,
    parent_run_id VARCHAR,
    trace_id VARCHAR,
    tags VARCHAR[],
    metadata JSON,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    input_audio_tokens BIGINT NOT NULL DEFAULT 0,
    output_audio_tokens BIGINT NOT NULL DEFAULT 0,
    input_cost {_V1_COST},
    cache_read_cost {_V1_COST},
    cache_write_cost {_V1_COST},
    output_cost {_V1_COST},
    reasoning_cost {_V1_COST},
    audio_cost {_V1_COST},
    total_cost {_V1_COST},
    currency VARCHAR,
    cost_source VARCHAR,
    catalog_version VARCHAR,
    estimated BOOLEAN NOT NULL DEFAULT FALSE,
    streamed BOOLEAN NOT NULL DEFAULT FALSE,
    status VARCHAR NOT NULL DEFAULT 'ok',
    error_type VARCHAR,
    request_id VARCHAR
)
"""

# Spool segments already copied into ``usage``: a segment is inserted and recorded here in
# one transaction, so a crash between that commit and deleting the file never duplicates it.
_V2_INGESTED = """
CREATE TABLE IF NOT EXISTS tokentrail_ingested (
    segment VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
)
"""

_MONEY = (
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "reasoning_cost",
    "audio_cost",
    "total_cost",
)
_V3_WIDE_MONEY = tuple(f"ALTER TABLE usage ALTER COLUMN {name} TYPE {COST_TYPE}" for name in _MONEY)

# Image tokens and cached audio (issue 21): counts of their own, appended like every column. Migrations
# may run again on a file that already has them; DuckDB cannot add a NOT NULL column
# with IF NOT EXISTS, so these two are nullable (every writer gives them a value).
_V4_IMAGE_TOKENS = tuple(
    f"ALTER TABLE usage ADD COLUMN IF NOT EXISTS {name} BIGINT DEFAULT 0"
    for name in ("input_image_tokens", "output_image_tokens", "cache_read_audio_tokens")
)

# Fees billed per call, not per token (issue 21): the web searches a provider ran and the
# money of the request and search fees; and the uncached video tokens of the input. ``fee_cost`` is a money column of its own, like
# every part of ``total_cost``: folded into ``input_cost`` it would make a search-heavy
# call look like expensive input. Nullable for the same reason as migration 4's counts.
_V5_FEES = (
    "ALTER TABLE usage ADD COLUMN IF NOT EXISTS web_search_requests BIGINT DEFAULT 0",
    "ALTER TABLE usage ADD COLUMN IF NOT EXISTS input_video_tokens BIGINT DEFAULT 0",
    f"ALTER TABLE usage ADD COLUMN IF NOT EXISTS fee_cost {COST_TYPE}",
)

#: (version, name, statements), applied in order.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "create usage table", (_V1_USAGE,)),
    (2, "spool ingest ledger", (_V2_INGESTED,)),
    (3, "money columns hold any real cost", _V3_WIDE_MONEY),
    (4, "image and cached-audio token counts", _V4_IMAGE_TOKENS),
    (5, "web searches, per-call fees and video tokens", _V5_FEES),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]
