"""The ``usage`` table in PostgreSQL and the numbered migrations that build it.

The same column contract as DuckDB's (``schema``): money as ``NUMERIC(38, 12)``, ``ts`` as
``TIMESTAMPTZ``, ``tags`` as ``TEXT[]``, ``metadata`` as ``JSONB``. Migrations are applied
in order and recorded in ``tokentrail_migrations``; several processes starting at once
take turns through an advisory lock. Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Any

from ..errors import StoreError

__all__ = ["PG_MIGRATIONS", "PG_SCHEMA_VERSION", "migrate_postgres"]

_COST = "NUMERIC(38, 12)"

_V1_USAGE = f"""
CREATE TABLE IF NOT EXISTS usage (
    id TEXT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    latency_ms DOUBLE PRECISION,
    framework TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    priced_model TEXT,
    user_id TEXT,
    session_id TEXT,
    operation TEXT,
    run_id TEXT,
    parent_run_id TEXT,
    trace_id TEXT,
    tags TEXT[],
    metadata JSONB,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    input_audio_tokens BIGINT NOT NULL DEFAULT 0,
    output_audio_tokens BIGINT NOT NULL DEFAULT 0,
    input_cost {_COST},
    cache_read_cost {_COST},
    cache_write_cost {_COST},
    output_cost {_COST},
    reasoning_cost {_COST},
    audio_cost {_COST},
    total_cost {_COST},
    currency TEXT,
    cost_source TEXT,
    catalog_version TEXT,
    estimated BOOLEAN NOT NULL DEFAULT FALSE,
    streamed BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'ok',
    error_type TEXT,
    request_id TEXT
)
"""

# Spool segments already copied into ``usage`` (see ``ingest``: exactly once). Segment
# names carry a random writer token, so names from every host are distinct.
_V2_INGESTED = """
CREATE TABLE IF NOT EXISTS tokentrail_ingested (
    segment TEXT PRIMARY KEY,
    row_count BIGINT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# Time ranges are in every query; a B-tree on ts keeps them from reading the whole table.
_V3_TS_INDEX = "CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts)"

# The shared budget ledger (``budget.ledger_postgres``): same tables as the SQLite ledger.
_V4_LEDGER = (
    """
    CREATE TABLE IF NOT EXISTS tokentrail_budget_buckets (
        name TEXT PRIMARY KEY,
        warned DOUBLE PRECISION NOT NULL DEFAULT 0,
        synced DOUBLE PRECISION NOT NULL DEFAULT 0,
        expires DOUBLE PRECISION
    )""",
    """
    CREATE TABLE IF NOT EXISTS tokentrail_budget_spend (
        name TEXT NOT NULL,
        slot BIGINT NOT NULL,
        amount BIGINT NOT NULL,
        PRIMARY KEY (name, slot)
    )""",
    """
    CREATE TABLE IF NOT EXISTS tokentrail_budget_holds (
        name TEXT NOT NULL,
        reservation TEXT NOT NULL,
        amount BIGINT NOT NULL,
        expires DOUBLE PRECISION NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        PRIMARY KEY (name, reservation)
    )""",
)

# DuckDB's names for two functions, so that SQL written against the DuckDB store (the
# budget's stored-spend queries, SQL in users' notebooks) runs here too.
_V5_DUCKDB_NAMES = (
    """
    CREATE OR REPLACE FUNCTION epoch(t TIMESTAMPTZ) RETURNS DOUBLE PRECISION
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS 'SELECT extract(epoch FROM t)::DOUBLE PRECISION'
    """,
    """
    CREATE OR REPLACE FUNCTION list_contains(items ANYARRAY, item ANYELEMENT) RETURNS BOOLEAN
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS 'SELECT item = ANY(items)'
    """,
)

# Budget definitions saved by ``tracker.budget`` (``budget.persist``): what the
# ``<db>.budgets.json`` sidecar holds for a DuckDB file, one row per scope, key, window, unit.
_V6_BUDGETS = """
CREATE TABLE IF NOT EXISTS tokentrail_budgets (
    identity TEXT PRIMARY KEY,
    spec JSONB NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# Image tokens and cached audio (issue 21): counts of their own, appended like every column.
_V7_IMAGE_TOKENS = tuple(
    f"ALTER TABLE usage ADD COLUMN IF NOT EXISTS {name} BIGINT NOT NULL DEFAULT 0"
    for name in ("input_image_tokens", "output_image_tokens", "cache_read_audio_tokens")
)

# Fees billed per call, not per token (issue 21): web searches and the request and search
# fees' money, and the input's video tokens (see the DuckDB migration 5 for why ``fee_cost`` is a column of its own).
_V8_FEES = (
    "ALTER TABLE usage ADD COLUMN IF NOT EXISTS web_search_requests BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE usage ADD COLUMN IF NOT EXISTS input_video_tokens BIGINT NOT NULL DEFAULT 0",
    f"ALTER TABLE usage ADD COLUMN IF NOT EXISTS fee_cost {_COST}",
)

# One reservation in one statement (``budget.ledger_postgres``): drop expired holds when
# asked, create missing bucket rows, lock the buckets in name order (two reservations over
# the same buckets queue, never deadlock), read each one's settled spend and live holds,
# then hold the amounts in all of them. The caller runs it alone, so it commits at once:
# the buckets stay locked for microseconds instead of a client round trip. The caller
# decides on what was read and, when the call does not fit, deletes the holds again.
# (Version 8 is another branch's; numbers only need to grow.)
_V9_HOLD_FUNCTION = """
CREATE OR REPLACE FUNCTION tokentrail_hold(
    p_reservation TEXT, p_names TEXT[], p_cutoffs BIGINT[], p_amounts BIGINT[],
    p_bucket_expires FLOAT8[], p_expires FLOAT8, p_now FLOAT8, p_sweep BOOLEAN,
    p_host TEXT, p_pid INTEGER
) RETURNS TABLE (seen_spent BIGINT, seen_held BIGINT, seen_warned FLOAT8, swept INTEGER)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n_swept INTEGER := 0;
BEGIN
    IF p_sweep THEN
        DELETE FROM tokentrail_budget_holds h WHERE h.expires <= p_now;
        GET DIAGNOSTICS n_swept = ROW_COUNT;
    END IF;
    INSERT INTO tokentrail_budget_buckets (name, expires)
    SELECT c.n, c.e FROM unnest(p_names, p_bucket_expires) AS c(n, e) ORDER BY c.n
    ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM tokentrail_budget_buckets b
    WHERE b.name = ANY(p_names) ORDER BY b.name FOR UPDATE;
    -- A new snapshot: every reservation committed before the lock was granted is seen.
    RETURN QUERY
    SELECT
        (SELECT coalesce(sum(s.amount), 0) FROM tokentrail_budget_spend s
         WHERE s.name = c.n AND s.slot >= c.cutoff)::BIGINT,
        (SELECT coalesce(sum(h.amount), 0) FROM tokentrail_budget_holds h
         WHERE h.name = c.n AND h.expires > p_now)::BIGINT,
        coalesce((SELECT b.warned FROM tokentrail_budget_buckets b WHERE b.name = c.n), 0),
        n_swept
    FROM unnest(p_names, p_cutoffs) WITH ORDINALITY AS c(n, cutoff, i)
    ORDER BY c.i;
    INSERT INTO tokentrail_budget_holds AS h (name, reservation, amount, expires, host, pid)
    SELECT c.n, p_reservation, c.a, p_expires, p_host, p_pid
    FROM unnest(p_names, p_amounts) AS c(n, a)
    ON CONFLICT (name, reservation) DO UPDATE
    SET amount = excluded.amount, expires = excluded.expires;
END
$fn$
"""

# Cache savings (``analytics.savings``) read only the rows with cache reads: this index
# holds just those rows and the columns that query reads, so it is answered by an
# index-only scan instead of a second full scan of ``usage`` (1M rows, 29% with cache
# reads: 376 -> 109 ms; the index is 19 MB beside a 300 MB table). Its predicate is the
# query's, word for word (``savings.CACHE_SAVED_ROWS``), or PostgreSQL will not use it.
_V9_CACHE_READS_INDEX = (
    "CREATE INDEX IF NOT EXISTS usage_cache_reads ON usage (ts) "
    "INCLUDE (priced_model, provider, cache_read_tokens, cache_read_cost) "
    "WHERE cache_read_tokens > 0 AND total_cost IS NOT NULL "
    "AND coalesce(cost_source, '') <> 'provider'"
)

# Reservations without scanning holds (``budget.ledger_postgres``). Each bucket keeps the
# sum of its holds in ``held``: a reservation reads and raises it under the bucket's row
# lock instead of summing the holds table, whose index fills with the entries of deleted
# holds (one per call) until vacuum: at 1,000 calls/s that sum cost 0.15-0.6 ms a call.
# ``held`` may be higher than the live holds (expired ones count until swept; a sweep, a
# dead process's cleanup or an older client deletes rows without lowering it), never
# lower: it drops only by holds the same transaction deleted, or is recounted from the
# holds under the lock. A reservation that only holds refuse recounts it
# (``tokentrail_release``) and tries again, so a stale ``held`` never refuses a call.
# Lock order, so nothing deadlocks: a transaction deletes its own holds before it locks
# any bucket; buckets are locked in name order; a sweep skips hold rows another
# transaction has locked. ``plan_cache_mode``: PostgreSQL re-planned the statements over
# array parameters on every call (about 0.1 ms). Buckets the caller has seen are not
# created again (NULL expiries); one dropped meanwhile makes the reservation fail with
# ``no_data_found``, and the caller creates it.
_V10_HELD = (
    "ALTER TABLE tokentrail_budget_buckets ADD COLUMN IF NOT EXISTS held NUMERIC NOT NULL "
    "DEFAULT 0",
    """
    UPDATE tokentrail_budget_buckets b SET held = coalesce(
        (SELECT sum(h.amount) FROM tokentrail_budget_holds h WHERE h.name = b.name), 0)
    """,
    """
CREATE OR REPLACE FUNCTION tokentrail_hold(
    p_reservation TEXT, p_names TEXT[], p_cutoffs BIGINT[], p_amounts BIGINT[],
    p_bucket_expires FLOAT8[], p_expires FLOAT8, p_now FLOAT8, p_sweep BOOLEAN,
    p_host TEXT, p_pid INTEGER
) RETURNS TABLE (seen_spent BIGINT, seen_held BIGINT, seen_warned FLOAT8, swept INTEGER)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    n_swept INTEGER := 0;
    n_locked INTEGER;
BEGIN
    IF p_sweep THEN
        DELETE FROM tokentrail_budget_holds h WHERE h.ctid = ANY(ARRAY(
            SELECT x.ctid FROM tokentrail_budget_holds x WHERE x.expires <= p_now
            FOR UPDATE SKIP LOCKED));
        GET DIAGNOSTICS n_swept = ROW_COUNT;
    END IF;
    IF p_bucket_expires IS NOT NULL THEN  -- NULL: the caller knows every bucket exists
        INSERT INTO tokentrail_budget_buckets (name, expires)
        SELECT c.n, c.e FROM unnest(p_names, p_bucket_expires) AS c(n, e) ORDER BY c.n
        ON CONFLICT (name) DO NOTHING;
    END IF;
    PERFORM 1 FROM tokentrail_budget_buckets b
    WHERE b.name = ANY(p_names) ORDER BY b.name FOR UPDATE;
    GET DIAGNOSTICS n_locked = ROW_COUNT;
    IF n_locked < cardinality(p_names) THEN  -- dropped since the caller saw it: call again
        RAISE EXCEPTION 'tokentrail: a budget bucket is missing' USING ERRCODE = 'no_data_found';
    END IF;
    IF p_sweep THEN  -- recount: the sweep deleted rows without lowering ``held``
        UPDATE tokentrail_budget_buckets b SET held = coalesce((SELECT sum(h.amount)
            FROM tokentrail_budget_holds h WHERE h.name = b.name), 0)
        WHERE b.name = ANY(p_names);
    END IF;
    -- A new snapshot: every settlement committed before the lock was granted is seen.
    -- ``held`` as it was before this reservation (which may replace its own earlier hold).
    RETURN QUERY
    WITH c AS (
        SELECT c.n, c.cutoff, c.a, c.i, coalesce((SELECT h.amount FROM tokentrail_budget_holds h
            WHERE h.name = c.n AND h.reservation = p_reservation), 0) AS old
        FROM unnest(p_names, p_cutoffs, p_amounts) WITH ORDINALITY AS c(n, cutoff, a, i)
    ), u AS (
        UPDATE tokentrail_budget_buckets b SET held = b.held + c.a - c.old
        FROM c WHERE b.name = c.n
        RETURNING b.name, b.held, b.warned
    )
    SELECT
        (SELECT coalesce(sum(s.amount), 0) FROM tokentrail_budget_spend s
         WHERE s.name = c.n AND s.slot >= c.cutoff)::BIGINT,
        least(u.held - c.a + c.old, 4611686018427387904)::BIGINT,
        u.warned,
        n_swept
    FROM c JOIN u ON u.name = c.n
    ORDER BY c.i;
    INSERT INTO tokentrail_budget_holds AS h (name, reservation, amount, expires, host, pid)
    SELECT c.n, p_reservation, c.a, p_expires, p_host, p_pid
    FROM unnest(p_names, p_amounts) AS c(n, a)
    ON CONFLICT (name, reservation) DO UPDATE
    SET amount = excluded.amount, expires = excluded.expires;
END
$fn$
""",
    """
CREATE OR REPLACE FUNCTION tokentrail_settle(
    p_reservation TEXT, p_names TEXT[], p_slots BIGINT[], p_amounts BIGINT[],
    p_cutoffs BIGINT[], p_new TEXT[], p_new_expires FLOAT8[], p_cap BIGINT, p_all BIGINT
) RETURNS TABLE (bucket TEXT, spent BIGINT)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    g_names TEXT[];
    g_amounts BIGINT[];
BEGIN
    WITH gone AS (
        DELETE FROM tokentrail_budget_holds h
        WHERE h.reservation = p_reservation AND h.name = ANY(p_names)
        RETURNING h.name, h.amount
    ) SELECT array_agg(gone.name), array_agg(gone.amount) INTO g_names, g_amounts FROM gone;
    IF cardinality(p_new) > 0 THEN
        INSERT INTO tokentrail_budget_buckets (name, expires)
        SELECT c.n, c.e FROM unnest(p_new, p_new_expires) AS c(n, e) ORDER BY c.n
        ON CONFLICT (name) DO NOTHING;
    END IF;
    IF g_names IS NOT NULL THEN
        PERFORM 1 FROM tokentrail_budget_buckets b
        WHERE b.name = ANY(g_names) ORDER BY b.name FOR UPDATE;
        UPDATE tokentrail_budget_buckets b SET held = b.held - g.a
        FROM unnest(g_names, g_amounts) AS g(n, a) WHERE b.name = g.n;
    END IF;
    -- The window's other minutes of a rolling bucket are read from this statement's
    -- snapshot (spend only grows: a lower bound, as the SQLite ledger's read after its
    -- insert is).
    RETURN QUERY
    WITH c AS (
        SELECT * FROM unnest(p_names, p_slots, p_amounts, p_cutoffs)
        AS c(n, slot, amount, cutoff)
    ), added AS (
        INSERT INTO tokentrail_budget_spend AS s (name, slot, amount)
        SELECT c.n, c.slot, c.amount FROM c ORDER BY c.n
        ON CONFLICT (name, slot) DO UPDATE SET amount = least(s.amount + excluded.amount, p_cap)
        RETURNING s.name, s.slot, s.amount
    )
    SELECT a.name, (a.amount + CASE WHEN c.cutoff = p_all THEN 0 ELSE coalesce((
        SELECT sum(x.amount) FROM tokentrail_budget_spend x
        WHERE x.name = a.name AND x.slot >= c.cutoff AND x.slot <> a.slot), 0) END)::BIGINT
    FROM added a JOIN c ON c.n = a.name;
END
$fn$
""",
    """
CREATE OR REPLACE FUNCTION tokentrail_release(
    p_reservation TEXT, p_names TEXT[], p_cutoffs BIGINT[], p_now FLOAT8, p_recount BOOLEAN
) RETURNS TABLE (seen_spent BIGINT, seen_held BIGINT, seen_warned FLOAT8)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    g_names TEXT[];
    g_amounts BIGINT[];
BEGIN
    WITH gone AS (
        DELETE FROM tokentrail_budget_holds h
        WHERE h.reservation = p_reservation AND h.name = ANY(p_names)
        RETURNING h.name, h.amount
    ) SELECT array_agg(gone.name), array_agg(gone.amount) INTO g_names, g_amounts FROM gone;
    PERFORM 1 FROM tokentrail_budget_buckets b
    WHERE b.name = ANY(p_names) ORDER BY b.name FOR UPDATE;
    IF p_recount THEN  -- expired holds go, and ``held`` becomes the holds' sum again
        DELETE FROM tokentrail_budget_holds h WHERE h.ctid = ANY(ARRAY(
            SELECT x.ctid FROM tokentrail_budget_holds x
            WHERE x.name = ANY(p_names) AND x.expires <= p_now FOR UPDATE SKIP LOCKED));
        UPDATE tokentrail_budget_buckets b SET held = coalesce((SELECT sum(h.amount)
            FROM tokentrail_budget_holds h WHERE h.name = b.name), 0)
        WHERE b.name = ANY(p_names);
    ELSIF g_names IS NOT NULL THEN
        UPDATE tokentrail_budget_buckets b SET held = b.held - g.a
        FROM unnest(g_names, g_amounts) AS g(n, a) WHERE b.name = g.n;
    END IF;
    RETURN QUERY
    SELECT
        (SELECT coalesce(sum(s.amount), 0) FROM tokentrail_budget_spend s
         WHERE s.name = c.n AND s.slot >= c.cutoff)::BIGINT,
        coalesce((SELECT least(b.held, 4611686018427387904)::BIGINT
            FROM tokentrail_budget_buckets b WHERE b.name = c.n), 0),
        coalesce((SELECT b.warned FROM tokentrail_budget_buckets b WHERE b.name = c.n), 0)
    FROM unnest(p_names, p_cutoffs) WITH ORDINALITY AS c(n, cutoff, i)
    ORDER BY c.i;
END
$fn$
""",
)

#: (version, name, statements), applied in order.
PG_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "create usage table", (_V1_USAGE,)),
    (2, "spool ingest ledger", (_V2_INGESTED,)),
    (3, "index on ts", (_V3_TS_INDEX,)),
    (4, "budget ledger", _V4_LEDGER),
    (5, "duckdb function names", _V5_DUCKDB_NAMES),
    (6, "budget definitions", (_V6_BUDGETS,)),
    (7, "image and cached-audio token counts", _V7_IMAGE_TOKENS),
    (8, "web searches, per-call fees and video tokens", _V8_FEES),
    (
        9,
        "one-statement budget reservation, cache-read index",
        (_V9_HOLD_FUNCTION, _V9_CACHE_READS_INDEX),
    ),
    (10, "held sums on budget buckets, one-statement settle and release", _V10_HELD),
)

PG_SCHEMA_VERSION = PG_MIGRATIONS[-1][0]

_CREATE = """
CREATE TABLE IF NOT EXISTS tokentrail_migrations (
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
# Any constant: migrating processes queue on it (held until their transaction ends).
_LOCK_ID = 0x70C3_7A11


def _version(con: Any) -> int:
    exists = con.execute("SELECT to_regclass('tokentrail_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM tokentrail_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate_postgres(con: Any, where: str = "the database") -> int:
    """Apply every missing migration in one transaction (a psycopg connection, autocommit
    off); returns the schema version. Raises :class:`StoreError` for a newer schema."""
    with con.transaction():
        current = _version(con)
        if current == PG_SCHEMA_VERSION:
            return current  # the usual case: no lock taken
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        con.execute(_CREATE)
        current = _version(con)  # another process may have migrated meanwhile
        if current > PG_SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema version {current}, newer than this tokentrail supports "
                f"({PG_SCHEMA_VERSION}); upgrade tokentrail to use it"
            )
        for version, name, statements in PG_MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO tokentrail_migrations (version, name) VALUES (%s, %s)",
                [version, name],
            )
    return PG_SCHEMA_VERSION
