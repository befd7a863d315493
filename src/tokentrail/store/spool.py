"""The append-only spool: every record reaches the kernel before ``submit()`` returns.

The spool is four small modules, read in this order:

* ``framing`` — one record per line: the row (:func:`~tokentrail.records.encode_row`) as
  a line of JSON;
* ``segments`` — this process's segment files, written through a memory map;
* ``locks`` — the ``flock`` that tells a live writer's segments from a dead one's;
* ``recovery`` — claiming a dead writer's segments and cutting a torn last record.

DuckDB reads the segments with its bulk JSON reader (see ``ingest``), so storing a batch
costs no Python per row. This module gathers the names the store and tests use.
"""

from __future__ import annotations

from ..records import encode_row
from .framing import frame
from .recovery import Claim, claim_orphans, cut_torn_tail
from .segments import (
    LOCK_SUFFIX,
    SEGMENT_SUFFIX,
    SpoolWriter,
    read_segment,
    segment_rows_estimate,
)

__all__ = [
    "LOCK_SUFFIX",
    "SEGMENT_SUFFIX",
    "Claim",
    "SpoolWriter",
    "claim_orphans",
    "cut_torn_tail",
    "encode",
    "frame",
    "read_segment",
    "segment_rows_estimate",
]

#: The one row encoder, under the name other modules' tests still import (to be removed
#: once they import :func:`~tokentrail.records.encode_row`).
encode = encode_row
