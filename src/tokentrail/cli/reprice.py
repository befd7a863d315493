"""``tokentrail reprice``: recompute stored costs after a catalog update or a new price."""

from __future__ import annotations

import click

from ..display import money
from ._common import database, echo_json, store_action, time_bounds

__all__ = ["reprice"]


@click.command("reprice")
@click.option(
    "--all", "all_rows", is_flag=True, help="Reprice priced rows too (default: unpriced)."
)
@click.option("--since", default=None, help='Start: "7d", "this-month", "2026-11-01", ISO.')
@click.option("--until", default=None, help="End (exclusive), same forms as --since.")
@click.option("--dry-run", is_flag=True, help="Print the before/after totals; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reprice(
    ctx: click.Context,
    all_rows: bool,
    since: str | None,
    until: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Price stored rows again with the current catalog and your registered prices
    (TOKENTRAIL_PRICING). Old figures are kept in the tokentrail_repriced table."""
    from ..store.reprice import reprice as store_reprice

    bounds = time_bounds(since, until)
    db = database(ctx)
    result = store_action(lambda: store_reprice(db, all_rows=all_rows, dry_run=dry_run, **bounds))
    if as_json:
        echo_json(result)
        return
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"{result['rows']:,} rows examined, {verb} {result['changed']:,}; "
        f"{result['still_unpriced']:,} still without a price"
    )
    if not result["models"]:
        return
    width = max(len(name) for name in result["models"])
    click.echo(f"{'model'.ljust(width)}  {'rows':>6}  {'before':>12}  {'after':>12}")
    for name, entry in result["models"].items():
        unknown = (
            f"  ({entry['unpriced_before']} unpriced before)" if entry["unpriced_before"] else ""
        )
        click.echo(
            f"{name.ljust(width)}  {entry['rows']:>6,}  {money(entry['before']):>12}  "
            f"{money(entry['after']):>12}{unknown}"
        )
