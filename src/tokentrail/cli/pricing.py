"""``tokentrail price`` and ``tokentrail models``: the price catalog from the command line."""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import click

from ..pricing.leaves import FEE_LEAVES
from ._common import echo_json

__all__ = ["models", "price"]

_LEAF_LABELS = {
    "input": "input (uncached)",
    "cache_read": "cache read",
    "cache_write": "cache write 5m",
    "cache_write_1h": "cache write 1h",
    "input_audio": "input audio",
    "output": "output",
    "reasoning": "reasoning",
    "output_audio": "output audio",
    "input_image": "input image",
    "output_image": "output image",
    "cache_read_audio": "cache read audio",
    "input_video": "input video",
    "request": "request fee",
    "web_search": "web searches",
}
#: Leaves priced per 1K requests or searches, whatever ``--per`` says.
_FEES = frozenset(FEE_LEAVES)


def _money(value: Decimal) -> str:
    return f"${value:,.6f}"


def _rate(value: Decimal | None, per: str = "1m") -> str:
    return "—" if value is None else f"{_scaled(value, per).normalize():f}"


#: ``--per``: the token count a price is quoted for -> (divisor of the per-1M price, label).
_PER = {"1m": (Decimal(1), "1M"), "1k": (Decimal(1000), "1K")}


def _scaled(value: Decimal, per: str) -> Decimal:
    """A catalog price (USD per 1M tokens) quoted per ``per`` tokens instead."""
    return value / _PER[per][0]


def _per_key(per: str) -> str:
    return "per_mtok" if per == "1m" else "per_ktok"


_per_option = click.option(
    "--per",
    type=click.Choice(sorted(_PER), case_sensitive=False),
    default="1m",
    show_default=True,
    help="Quote prices per 1M or per 1K tokens.",
)


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def _suggestions(model: str, provider: str | None) -> list[str]:
    from ..pricing import default_pricer

    catalog = default_pricer().catalog
    names: set[str] = set()
    for entry in catalog.entries(provider if provider in catalog.files else None):
        names.add(entry.id.lower())
        names.update(r.value for r in entry.rules if r.kind == "exact")
    return difflib.get_close_matches(model.lower(), sorted(names), n=5, cutoff=0.6)


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; use YYYY-MM-DD or an ISO 8601 time", param_hint="--at"
        ) from None


_count = click.IntRange(min=0)


@click.command("price")
@click.argument("model")
@click.option(
    "--input", "input_tokens", type=_count, default=0, help="Prompt tokens (all of them)."
)
@click.option("--output", "output_tokens", type=_count, default=0, help="Generated tokens (all).")
@click.option("--cache-read", type=_count, default=0, help="Of the input: read from cache.")
@click.option("--cache-write", type=_count, default=0, help="Of the input: written to cache.")
@click.option("--cache-write-1h", type=_count, default=0, help="Of the cache writes: 1-hour TTL.")
@click.option("--input-audio", type=_count, default=0, help="Of the input: audio tokens.")
@click.option("--reasoning", type=_count, default=0, help="Of the output: reasoning tokens.")
@click.option("--output-audio", type=_count, default=0, help="Of the output: audio tokens.")
@click.option(
    "--web-searches", type=_count, default=0, help="Web searches the provider ran (per 1K)."
)
@click.option("--provider", default=None, help="Who served it: openai, bedrock, vertex_ai, ...")
@click.option("--at", "at", default=None, help="When the call was made (default now).")
@click.option("--variant", default=None, help="Price variant: batch, priority, flex, ...")
@_per_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def price(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write: int,
    cache_write_1h: int,
    input_audio: int,
    reasoning: int,
    output_audio: int,
    web_searches: int,
    provider: str | None,
    at: str | None,
    variant: str | None,
    per: str,
    as_json: bool,
) -> None:
    """Price one call of MODEL from its token counts (prices in USD per 1M tokens, or
    per 1K with --per 1k).

    Example: tokentrail price claude-sonnet-4-5 --input 12000 --cache-read 10000 --output 800
    """
    from ..errors import PricingError, UnknownModelError
    from ..pricing import default_pricer
    from ..pricing.leaves import LeafError, leaf_counts
    from ..usage import Usage

    when = _parse_at(at)
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=cache_write_1h,
        input_audio_tokens=input_audio,
        reasoning_tokens=reasoning,
        output_audio_tokens=output_audio,
        web_search_requests=web_searches,
    )
    try:
        leaf_counts(usage)  # the subset rule, stated once, in pricing.leaves
    except LeafError as exc:
        flags = re.sub(
            r"\b([a-z_0-9]+_tokens)=", lambda m: f"{_FLAGS.get(m.group(1), m.group(1))} ", str(exc)
        )
        raise click.UsageError(
            f"{flags}: --input and --output count all tokens, the others are parts of them"
        ) from None
    if _is_local(provider):
        _local_price(model, provider, usage, as_json)
        return
    pricer = default_pricer()
    try:
        cost, lines = pricer.explain(
            model, provider=provider, at=when, usage=usage, variant=variant
        )
    except UnknownModelError:
        close = _suggestions(model, provider)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise click.ClickException(
            f"no price known for {model!r}.{hint} List models with `tokentrail models "
            f"--search TEXT`; add your own with a TOKENTRAIL_PRICING file."
        ) from None
    except PricingError as exc:
        raise click.ClickException(str(exc)) from None

    if as_json:
        data: dict[str, Any] = {name: getattr(cost, name) for name in cost.__dataclass_fields__}
        data["query"] = {"model": model, "provider": provider, "at": at, "variant": variant}
        data["units"] = f"USD per {_PER[per][1]} tokens"
        data["leaves"] = [
            {"leaf": leaf, "count": n, "price_per_k": p, "cost": c}
            if leaf in _FEES
            else {
                "leaf": leaf,
                "tokens": n,
                f"price_{_per_key(per)}": None if p is None else _scaled(p, per),
                "cost": c,
            }
            for leaf, n, p, c in lines
        ]
        echo_json(data)
        return

    when_text = f"prices in force {when.date()}" if when else "current prices"
    extras = [f"variant {cost.variant}"] if cost.variant else []
    if cost.tier_threshold:
        extras.append(f"long-context tier: input > {cost.tier_threshold:,} tokens")
    click.echo(
        f"{cost.model} ({cost.provider}) — {when_text}, catalog {cost.catalog_version}, "
        f"source {cost.source}" + "".join(f"; {e}" for e in extras)
    )
    rows = [
        [_LEAF_LABELS[leaf], f"{n:,}", _rate(p, per), _money(c)]
        for leaf, n, p, c in lines
        if leaf not in _FEES and (n or leaf in ("input", "output"))
    ]
    # Fees are quoted per 1K requests or searches, whatever --per says.
    rows += [
        [_LEAF_LABELS[leaf], f"{n:,}", f"{p.normalize():f}/1K", _money(c)]
        for leaf, n, p, c in lines
        if leaf in _FEES and n and p is not None
    ]
    rows.append(["total", f"{usage.total_tokens:,}", "", _money(cost.total)])
    label = f"USD/{_PER[per][1]}"
    click.echo(_table(["leaf", "tokens", label, "cost"], rows, right={1, 2, 3}))


def _is_local(provider: str | None) -> bool:
    from ..providers import LOCAL_PROVIDERS, normalize_provider

    return normalize_provider(provider) in LOCAL_PROVIDERS


def _local_price(model: str, provider: str | None, usage: Any, as_json: bool) -> None:
    """A local model's price: $0 by rule, said as such (never "no price known")."""
    from ..providers import normalize_provider

    pid = normalize_provider(provider)
    if as_json:
        echo_json(
            {
                "model": model,
                "provider": pid,
                "total": Decimal(0),
                "total_tokens": usage.total_tokens,
                "source": "local",
                "note": "local providers cost $0 by rule",
            }
        )
        return
    click.echo(
        f"{model} ({pid}) runs on your own machine: $0 for {usage.total_tokens:,} tokens "
        "(local providers cost nothing by rule)."
    )


#: The command-line flag of each token count, for messages.
_FLAGS = {
    "input_tokens": "--input",
    "output_tokens": "--output",
    "cache_read_tokens": "--cache-read",
    "cache_write_tokens": "--cache-write",
    "cache_write_1h_tokens": "--cache-write-1h",
    "input_audio_tokens": "--input-audio",
    "reasoning_tokens": "--reasoning",
    "output_audio_tokens": "--output-audio",
}


@click.command("models")
@click.option("--provider", default=None, help="Only this provider (openai, bedrock, ...).")
@click.option("--search", default=None, help="Only models whose id or name contains TEXT.")
@_per_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(provider: str | None, search: str | None, per: str, as_json: bool) -> None:
    """List the models in the price catalog with their current prices (USD per 1M tokens,
    or per 1K with --per 1k)."""
    from ..pricing import default_pricer
    from ..providers import normalize_provider

    catalog = default_pricer().catalog
    pid = normalize_provider(provider)
    if _is_local(pid):
        note = f"Models served by {pid} run on your own machine and cost $0 by rule."
        if as_json:
            echo_json({"provider": pid, "local": True, "models": [], "note": note})
        else:
            click.echo(note)
        return
    if pid is not None and pid not in catalog.files:
        known = ", ".join(catalog.provider_ids())
        raise click.ClickException(f"no provider {provider!r} in the catalog; known: {known}")
    needle = search.lower() if search else None
    found = []
    for entry in catalog.entries(pid):
        if needle and needle not in entry.id.lower() and needle not in (entry.name or "").lower():
            continue
        found.append(entry)
    if not found:
        raise click.ClickException(
            f"no model matches {search!r}" + (f" for provider {pid}" if pid else "")
        )

    def price_of(entry: Any, key: str) -> Decimal | None:
        value: Decimal | None = entry.current_prices.base.get(key)
        return value

    if as_json:
        echo_json(
            [
                {
                    "provider": e.provider,
                    "model": e.id,
                    "name": e.name,
                    "context_window": e.context_window,
                    f"prices_{_per_key(per)}": {
                        k: _scaled(v, per)
                        for k, v in e.current_prices.base.items()
                        if k not in _FEES
                    },
                    "fees_per_k": {k: v for k, v in e.current_prices.base.items() if k in _FEES},
                    "units": f"USD per {_PER[per][1]} tokens",
                    "long_context_tiers": [t for t, _ in e.current_prices.tiers],
                    "variants": sorted(e.variants),
                    "deprecated": e.deprecated,
                    "note": e.note,
                    "catalog_version": e.catalog_version,
                }
                for e in found
            ]
        )
        return
    rows = []
    for e in found:
        rows.append(
            [
                e.provider,
                e.id,
                _rate(price_of(e, "input"), per),
                _rate(price_of(e, "cache_read"), per),
                _rate(price_of(e, "cache_write"), per),
                _rate(price_of(e, "output"), per),
                f"{e.context_window:,}" if e.context_window else "",
                ",".join(sorted(e.variants)),
            ]
        )
    headers = [
        "provider",
        "model",
        "input",
        "cache read",
        "cache write",
        "output",
        "context",
        "variants",
    ]
    click.echo(_table(headers, rows, right={2, 3, 4, 5, 6}))
    click.echo(
        f"{len(found)} models; prices in USD per {_PER[per][1]} tokens (current, base tier)."
    )
