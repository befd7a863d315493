"""The ``tokentrail`` command. Sub-commands load lazily so that ``--help`` starts fast."""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

import click

from ..errors import TokentrailError

__all__ = ["cli", "main"]

# command name -> ("module", "attribute", one-line help shown by --help without importing it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "tokentrail.cli.demo",
        "demo",
        "Run a LangChain chain and a LlamaIndex app, then report.",
    ),
    "report": ("tokentrail.cli.report", "report", "Spend and tokens, overall or by a dimension."),
    "usage": ("tokentrail.cli.report", "report", "Same as report: spend and tokens."),
    "top": ("tokentrail.cli.report", "top", "The biggest spenders by user, model or operation."),
    "history": ("tokentrail.cli.report", "history", "Recent calls."),
    "html": ("tokentrail.cli.report", "html", "Write a self-contained HTML dashboard."),
    "price": ("tokentrail.cli.pricing", "price", "Price one call from its token counts."),
    "models": ("tokentrail.cli.pricing", "models", "List the models in the price catalog."),
    "reprice": (
        "tokentrail.cli.reprice",
        "reprice",
        "Recompute stored costs after a catalog update or a new price.",
    ),
    "budget": ("tokentrail.cli.budget", "budget", "Budget windows: spend, limit, percent."),
    "export": ("tokentrail.cli.data", "export", "Export rows as CSV, Parquet or JSON lines."),
    "forget": ("tokentrail.cli.data", "forget", "Delete every row of one user."),
    "prune": ("tokentrail.cli.data", "prune", "Delete rows older than a retention period."),
    "path": ("tokentrail.cli.data", "path", "Print the database location."),
    "status": ("tokentrail.cli.data", "status", "Rows, size, spool backlog, schema version."),
    "serve": ("tokentrail.cli.serve", "serve", "Serve the HTTP API and the live dashboard."),
    "token": ("tokentrail.cli.serve", "token", "API tokens for serve: create, list, revoke."),
}


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        command: click.Command = getattr(module, spec[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec[2]) for name, spec in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tokentrail")
@click.option(
    "--db",
    "db",
    envvar="TOKENTRAIL_DB",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE|URL",
    help=(
        "DuckDB file or postgresql:// URL to use (default: $TOKENTRAIL_DB or the user "
        "data directory)."
    ),
)
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """tokentrail — what your LLM calls cost.

    Every command takes --json for machine-readable output.
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``tokentrail`` console script.

    Every failure ends in one line and a non-zero exit code, never a traceback (set
    ``TOKENTRAIL_DEBUG=1`` to see one); with ``--json`` the error is printed as JSON,
    ``{"error": "...", "exit_code": N}``, on standard output, where the data would be.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return cli.main(args=args, prog_name="tokentrail", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        _fail(exc, exc.exit_code, "--json" in args)
    except BrokenPipeError:  # output piped into `head`
        sys.exit(1)
    except TokentrailError as exc:  # worded for the user already: no class name
        _fail(click.ClickException(str(exc).splitlines()[0]), 1, "--json" in args)
    except Exception as exc:
        if os.environ.get("TOKENTRAIL_DEBUG") == "1":
            raise
        message = click.ClickException(f"{type(exc).__name__}: {exc}".splitlines()[0])
        _fail(message, 1, "--json" in args)


def _fail(exc: click.ClickException, code: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": exc.format_message(), "exit_code": code}))
    else:
        exc.show()
    sys.exit(code)
