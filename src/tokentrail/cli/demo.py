"""``tokentrail demo``: see tokentrail work end to end in a few seconds, offline.

Runs a small LangChain chain and a LlamaIndex query engine through the real integrations
against in-process models that report realistic usage (prompt caching included), shows a
budget guard refusing a call before it is sent, optionally writes ``--days`` days of
history, then prints the report.

The demo writes into a database of its own (``demo.duckdb`` beside the default database),
made anew on every run, so that it never mixes made-up calls or its budget into your
real usage and runs the same way every time. ``tokentrail --db X demo`` writes into ``X``
instead, when you ask for it.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ._common import database, db_path, echo_json

__all__ = ["demo", "run_demo"]

_SYSTEM = (
    "You are the support assistant of a software company. Answer in three sentences or "
    "fewer, cite the relevant policy by number, and never invent features. "
    + " ".join(
        f"Policy {i}: {topic} questions are answered from the documentation; escalate "
        "billing disputes to a human and keep the tone friendly and precise."
        for i, topic in enumerate(
            ["Export", "Billing", "Budget", "Privacy", "Caching", "Models", "Retention"] * 12
        )
    )
)

_QUESTIONS = (
    ("alice", "How do I export my usage as Parquet?"),
    ("alice", "Why did my bill go up last week?"),
    ("bob", "Can I cap spend per user?"),
    ("bob", "Are prompts stored anywhere?"),
    ("alice", "Which model is cheapest for classification?"),
)

_DOCS = (
    "tokentrail stores one row per model call in an embedded DuckDB file: the model, the "
    "provider, the user, the session, the operation, the token counts and the cost in USD. "
    "Prompt and response text are never stored. ",
    "Budgets are checked before a request leaves the process: the guard estimates the "
    "worst-case cost from the prompt and max_tokens and raises BudgetExceededError when a "
    "daily, weekly or monthly limit would be exceeded. ",
    "Prompt caching lowers the price of repeated prompt prefixes: cached input tokens are "
    "billed at a fraction of the input price, and tokentrail reports the savings. ",
)

_INTERN_BUDGET = "0.002"

_QUERIES = (
    "Where is usage stored?",
    "How does the budget guard decide to refuse a call?",
    "Where is usage stored?",
)


def _say(quiet: bool, message: str = "") -> None:
    if not quiet:
        click.echo(message)


def run_demo(path: Path, days: int = 0, *, quiet: bool = False, seed: int = 7) -> dict[str, Any]:
    """Run the demo into the database ``path``; returns what happened (for ``--json``)."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from llama_index.core import Document, VectorStoreIndex

    from ..errors import BudgetExceededError
    from ..integrations.demo_models import DemoChatModel, DemoEmbedding, DemoLLM
    from ..tracker import Tracker

    outcome: dict[str, Any] = {"database": str(path), "history_calls": 0}
    with Tracker(path, tags=["demo"]) as tracker:
        if days > 0:
            outcome["history_calls"] = _history(tracker, days, seed, quiet)

        # 1. A LangChain chain, its calls attributed by a handler and a track() block.
        _say(quiet, "\n▶ LangChain: a support chain (prompt | chat model | parser)")
        prompt = ChatPromptTemplate.from_messages([("system", _SYSTEM), ("human", "{question}")])
        chain = prompt | DemoChatModel(model_name="gpt-4o-mini") | StrOutputParser()
        with tracker.track(session_id=f"demo-{datetime.now(timezone.utc):%H%M%S}") as run:
            for user, question in _QUESTIONS:
                handler = tracker.langchain(user_id=user, operation="support-chat")
                answer = chain.invoke({"question": question}, config={"callbacks": [handler]})
                _say(quiet, f"  {user:>6} asked {question!r} → {answer[:48]}…")
        _say(quiet, f"  {run.summary()}")
        outcome["langchain"] = str(run.summary())

        # 2. A LlamaIndex query engine, instrumented globally while the handle is attached.
        _say(quiet, "\n▶ LlamaIndex: a query engine over three documents")
        handle = tracker.llamaindex(user_id="carol", operation="docs-qa")
        try:
            embed = DemoEmbedding()
            docs = [Document(text=text * 12) for text in _DOCS]
            index = VectorStoreIndex.from_documents(docs, embed_model=embed)
            engine = index.as_query_engine(llm=DemoLLM(), similarity_top_k=2)
            with tracker.track(operation="docs-qa") as run:
                for query in _QUERIES:
                    answer = str(engine.query(query))
                    _say(quiet, f"  carol asked {query!r} → {answer[:48]}…")
            _say(quiet, f"  {run.summary()}")
            outcome["llamaindex"] = str(run.summary())
        finally:
            handle.detach()

        # 3. A budget guard: the intern has a tiny daily budget; the guard refuses the call
        #    that would go over *before* it is sent.
        _say(quiet, f"\n▶ Budget guard: user 'intern' may spend ${_INTERN_BUDGET} per day")
        tracker.budget(usd=_INTERN_BUDGET, per="day", scope="user", user_id="intern", warn_at=())
        handler = tracker.langchain(user_id="intern", operation="support-chat")
        refused = None
        sent = 0
        for i in range(20):
            try:
                chain.invoke(
                    {"question": f"Summarize policy {i}"},
                    config={"callbacks": [handler]},
                )
                sent += 1
            except BudgetExceededError as exc:
                refused = str(exc)
                break
        _say(quiet, f"  {sent} calls went through; then the guard refused the next one:")
        _say(quiet, f"  BudgetExceededError: {refused}")
        outcome["budget"] = {"sent": sent, "refused": refused}
        tracker.flush()
    return outcome


def _history(tracker: Any, days: int, seed: int, quiet: bool) -> int:
    """Write generated history, with a progress bar unless quiet."""
    from .. import demo_data

    if quiet:
        return demo_data.generate(tracker, days, seed=seed)
    with click.progressbar(length=1, label=f"Writing {days} days of history", show_pos=True) as bar:
        done_so_far = [0]

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - done_so_far[0])
            done_so_far[0] = done

        return demo_data.generate(tracker, days, seed=seed, progress=progress)


@click.command()
@click.option(
    "--days",
    default=0,
    show_default=True,
    type=click.IntRange(0, 3650),
    help="Also write N days of realistic history.",
)
@click.option(
    "--db",
    "db",
    default=None,
    type=click.Path(dir_okay=False),
    help="Database to write (default: a demo database of its own, made anew each run).",
)
@click.option("--seed", default=7, show_default=True, help="Seed of the generated history.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the outcome as JSON instead of the report."
)
@click.pass_context
def demo(ctx: click.Context, /, days: int, db: str | None, seed: int, as_json: bool) -> None:  # fmt: skip
    """Run a LangChain chain and a LlamaIndex app, then report."""
    try:
        import langchain_core  # noqa: F401
        import llama_index.core  # noqa: F401
    except ImportError:
        click.echo(
            "Error: the demo runs LangChain and LlamaIndex.\n"
            "Install them with: pip install 'tokentrail[all]'",
            err=True,
        )
        ctx.exit(1)
    path = _demo_database(ctx, db)
    _say(as_json, f"tokentrail demo → {path}")
    # The demo's own output says what happens; library warnings would only add noise.
    # Levels are restored afterwards.
    quiet_loggers = [logging.getLogger("tokentrail")]
    levels = [lg.level for lg in quiet_loggers]
    for lg in quiet_loggers:
        lg.setLevel(logging.ERROR)
    try:
        outcome = run_demo(path, days, quiet=as_json, seed=seed)
    finally:
        for lg, level in zip(quiet_loggers, levels, strict=True):
            lg.setLevel(level)
    if as_json:
        echo_json(outcome)
        return
    from ..analytics.connection import connect
    from .report import print_report

    click.echo("")
    with connect(path) as con:
        print_report(con, path)
    on = f"--db {_quoted(path)} "
    click.echo(
        f"Next: `tokentrail {on}html -o report.html` for a dashboard, "
        f"`tokentrail {on}history` for the latest calls, or open "
        "notebooks/usage_analysis.ipynb (pip install 'tokentrail[jupyter]' brings Jupyter)."
    )


def default_demo_path() -> Path:
    """The demo's own database: ``demo.duckdb`` in the user data directory."""
    import platformdirs

    return Path(platformdirs.user_data_path("tokentrail")) / "demo.duckdb"


def _demo_database(ctx: click.Context, db: str | None) -> Path:
    """The database the demo writes: one named with ``--db``, else its own, made anew.

    Never a PostgreSQL database: that one is shared by a team, and the demo's made-up
    calls and saved budget would show in every host's reports and budgets."""
    from ..store import resolve_db_path
    from ..store.paths import PostgresUrl, resolve_db

    root = ctx.find_root()
    named = root.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE
    target = resolve_db(db) if db else database(ctx) if named else None
    if isinstance(target, PostgresUrl):
        raise click.ClickException(
            f"the demo does not write into a PostgreSQL database ({target}): its made-up "
            "calls and budget would show in every host's reports and budgets. Run "
            "`tokentrail demo` (a DuckDB file of its own), or `--db demo.duckdb`."
        )
    if db:
        return resolve_db_path(db)
    if named:
        return db_path(ctx)
    path = default_demo_path()
    _remove_database(path)
    return path


def _remove_database(path: Path) -> None:
    """Delete a database and everything beside it named after it (WAL, spool, budgets)."""
    if not path.parent.is_dir():
        return
    for item in path.parent.glob(path.name + "*"):
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def _quoted(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
