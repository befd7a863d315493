"""``tokentrail budget status``: every budget window's spend, limit and percent.

Budgets come from ``<database>.budgets.json`` (a PostgreSQL store: its ``tokentrail_budgets``
table), which ``tracker.budget(...)`` keeps up to date, and from ``--usd/--tokens --per --scope [--key]`` for an ad-hoc look (for example
``tokentrail budget status --usd 5 --per day --scope user``). Spend is read from the
database and from the budget ledger beside it (``<database>.ledger.sqlite``), which also
holds what calls in flight in every process have reserved (the ``held`` column).
"""

from __future__ import annotations

from typing import Any

import click

from ._common import database, echo_json, store_action

__all__ = ["budget"]


@click.group("budget")
def budget() -> None:
    """Budget windows: spend, limit, percent."""


@budget.command("status")
@click.option("--usd", type=str, default=None, help="Ad-hoc budget in USD (instead of saved).")
@click.option("--tokens", type=int, default=None, help="Ad-hoc budget in tokens.")
@click.option("--per", default="day", show_default=True, help="Window: day, week, month, 24h...")
@click.option("--scope", default="user", show_default=True, help="global, user, model, tag:<t>...")
@click.option("--key", default=None, help="Only this user (or other scope value).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of calendar windows.")
@click.option("--top", type=int, default=50, show_default=True, help="Show at most N rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(
    ctx: click.Context,
    usd: str | None,
    tokens: int | None,
    per: str,
    scope: str,
    key: str | None,
    tz: str,
    top: int,
    as_json: bool,
) -> None:
    """Spend of every budget window (saved budgets, or the one given by the options)."""
    from ..budget.offline import status_from_store
    from ..budget.persist import load_budget_specs

    db = database(ctx)
    specs: list[dict[str, Any]]
    if usd is not None or tokens is not None:
        specs = []
        for unit, limit in (("usd", usd), ("tokens", tokens)):
            if limit is not None:
                specs.append(
                    {"unit": unit, "limit": limit, "per": per, "scope": scope, "key": key, "tz": tz}
                )
    else:
        specs = store_action(lambda: load_budget_specs(db))
        if key is not None:
            specs = [s for s in specs if s.get("key") in (None, key)]
    try:
        rows = store_action(lambda: status_from_store(db, specs))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if key is not None:
        rows = [r for r in rows if r.key == key or r.scope == "global"]
    rows = rows[: max(0, top)]
    if as_json:
        echo_json({"database": str(db), "budgets": [r.as_dict() for r in rows]})
        return
    if not specs:
        click.echo(
            f"No budgets saved for {db}.\n"
            "Declare one in code with tracker.budget(...), or pass --usd/--tokens --per --scope."
        )
        return
    if not rows:
        click.echo("No spend yet in any budget window.")
        return
    click.echo(status_table(rows))


def status_table(rows: list[Any]) -> str:
    """Budget windows as an aligned table: amounts with their unit, remaining, reset time.

    Each USD column has one precision (its smallest non-zero amount decides);
    token amounts say ``tokens``; a calendar window says when it starts anew.
    """
    from ..formatting import money, money_digits
    from .report import format_table

    amounts = [(r.spent, r.reserved, max(r.remaining, 0), r.limit) for r in rows]
    usd = [a for a, r in zip(amounts, rows, strict=True) if r.unit == "usd"]
    digits = [money_digits(column) for column in zip(*usd, strict=True)] or [2] * 4

    def cells(values: tuple[Any, ...], unit: str) -> list[str]:
        if unit != "usd":
            return [f"{int(v):,} tokens" for v in values]
        return [money(v, d) for v, d in zip(values, digits, strict=True)]

    table = []
    for r, values in zip(rows, amounts, strict=True):
        flag = " ⚠" if r.percent >= 80 else ""
        used = f"{r.percent:.0f}%{flag}"
        table.append(
            [r.scope, r.key or "(all)", r.window, *cells(values, r.unit), used, _resets(r)]
        )
    headers = ["scope", "key", "window", "spent", "held", "remaining", "limit", "used", "resets"]
    numeric = [False, False, False, True, True, True, True, True, False]
    return format_table(headers, table, numeric)


def _resets(row: Any) -> str:
    end = getattr(row, "window_end", None)
    if end is None:
        return "rolling" if row.window[:1].isdigit() else "—"
    return f"{end:%Y-%m-%d %H:%M %Z}".strip()
