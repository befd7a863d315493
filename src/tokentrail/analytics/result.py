"""``Result``: rows and column names from one analytics query, without needing pandas.

The CLI prints results as tables with nothing but the standard library; notebooks get a
pandas DataFrame through :meth:`Result.to_frame` (pandas is imported only then).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["Result", "require_pandas"]


def require_pandas() -> Any:
    """Import pandas, or say how to install it."""
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is in the test environment
        raise ImportError(
            "tokentrail analytics return pandas DataFrames: pip install 'tokentrail[notebook]'"
        ) from None
    return pandas


@dataclass
class Result:
    """Column names, rows (tuples) and notes such as the forecast method."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    #: Extra facts about the result (window bounds, method...), copied to ``DataFrame.attrs``.
    attrs: dict[str, Any] = field(default_factory=dict)
    #: Columns holding naive UTC timestamps, made timezone-aware in DataFrames.
    utc_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            yield dict(zip(self.columns, row, strict=True))

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts."""
        return list(self)

    def column(self, name: str) -> list[Any]:
        """The values of one column."""
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def first(self) -> dict[str, Any]:
        """The first row as a dict (``{}`` when empty)."""
        return dict(zip(self.columns, self.rows[0], strict=True)) if self.rows else {}

    def to_json_records(self) -> list[dict[str, Any]]:
        """Rows as dicts of JSON-friendly values (Decimal -> str, datetimes -> ISO 8601)."""
        out = []
        for row in self:
            item = {k: _jsonable(v) for k, v in row.items()}
            for name in self.utc_columns:  # stored as naive UTC: say so
                value = row.get(name)
                if isinstance(value, datetime) and value.tzinfo is None:
                    item[name] = value.isoformat() + "+00:00"
            out.append(item)
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame (money as float USD, timestamps in UTC where stored as UTC)."""
        pd = require_pandas()
        data = {name: [_plain(row[i]) for row in self.rows] for i, name in enumerate(self.columns)}
        frame = pd.DataFrame(data, columns=self.columns)
        for name in self.utc_columns:
            if name in frame.columns:
                frame[name] = pd.to_datetime(frame[name]).dt.tz_localize("UTC")
        frame.attrs.update(self.attrs)
        return frame


def _plain(value: Any) -> Any:
    # DataFrames hold money as float: exact Decimals would make object columns nobody can plot.
    if isinstance(value, Decimal):
        return float(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def rows_of(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Result:
    """A :class:`Result` from any sequence of rows."""
    return Result(list(columns), [tuple(r) for r in rows])
