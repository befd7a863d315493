"""Write (and optionally execute) notebooks/usage_analysis.ipynb from the cells below.

python notebooks/build_notebook.py --execute     # refresh the committed outputs
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
TARGET = HERE / "usage_analysis.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# Where does the money go? — LLM usage analysis with tokentrail

This notebook starts from an empty directory, writes a realistic month of LLM usage with
tokentrail's demo data generator (the same path real calls take: priced by the catalog,
stored in DuckDB), and then answers the questions teams ask: what did we spend, on which
model, for which user and feature, is it growing, is caching paying off, where will the
month end, and are we inside budget.""",
    ),
    (
        "code",
        """%matplotlib inline
import logging
from pathlib import Path

import pandas as pd

import tokentrail
from tokentrail import demo_data, plots
from tokentrail.analytics import styled as show  # tokens as counts, money as $, shares as %
from tokentrail.display import SummaryView

logging.getLogger("tokentrail").setLevel(logging.ERROR)  # keep the notebook output clean

DB = Path("usage_demo.duckdb")
for leftover in (DB, DB.with_name(DB.name + ".wal")):
    leftover.unlink(missing_ok=True)  # start from nothing""",
    ),
    (
        "md",
        """## 1. A month of usage

`demo_data.generate` writes ~6,000 calls: nine models from five providers, a dozen users,
six operations (chat, RAG answers, embeddings, summaries, agent steps, classification),
prompt caching, reasoning tokens, quiet weekends, growth and one batch-job spike. Each call
goes through `Tracker.capture`, exactly like a call captured from LangChain or LlamaIndex.""",
    ),
    (
        "code",
        """tracker = tokentrail.Tracker(DB)
calls = demo_data.generate(tracker, days=30)
print(f"{calls:,} calls written to {DB}")
tracker""",
    ),
    ("md", "## 2. Summary"),
    (
        "code",
        """analytics = tracker.analytics
summary = analytics.summary()
SummaryView(summary)""",
    ),
    ("code", "show(summary.T)"),
    ("md", "## 3. Spend by model, user and operation"),
    ("code", "show(analytics.by_model())"),
    ("code", "plots.cost_by_model(tracker)"),
    ("code", """show(analytics.by_user(top=8)[["user_id", "calls", "total_tokens", "cost", "share"]])"""),
    (
        "code",
        """show(analytics.by_operation()[["operation", "calls", "input_tokens", "output_tokens", "cost", "share"]])""",
    ),
    ("code", "plots.usage_by_operation(tracker)"),
    (
        "md",
        """## 4. Spend over time

Days with no calls are present with zeros, so the series plots without gaps. `tz=` cuts
days in your time zone.""",
    ),
    (
        "code",
        """daily = analytics.over_time("day", by="model", top=5)
show(daily.pivot_table(index="period", columns="model", values="cost", aggfunc="sum").tail(7), unit="money")""",
    ),
    ("code", 'plots.cost_over_time(tracker, period="day")'),
    ("code", 'show(analytics.trend("week"))'),
    (
        "md",
        """## 5. Is caching paying off?

Cache savings = what the cached input tokens would have cost at the model's full input
price, minus what they did cost.""",
    ),
    ("code", "show(analytics.cache_savings())"),
    ("code", "plots.cache_hit_rate(tracker)"),
    ("code", "plots.token_mix(tracker)"),
    ("md", "## 6. Where will the month end?"),
    (
        "code",
        """forecast = analytics.forecast()
print(forecast.loc[0, "method"])
show(forecast.drop(columns="method"))""",
    ),
    ("md", "## 7. Latency and rate of consumption"),
    ("code", 'show(analytics.latency(by="model"))'),
    ("code", 'show(analytics.rate(since="24h"))'),
    (
        "md",
        """## 8. Budget status

A budget guard stops a call *before* it is sent when it could exceed a limit. Here: $25 a
day for the whole team and $6 a day per user; `budget_status()` shows each window.""",
    ),
    (
        "code",
        """tracker.budget(usd=25, per="day", scope="global")
tracker.budget(usd=6, per="day", scope="user")
tracker.record(model="gpt-4o-mini", usage={"input_tokens": 1200, "output_tokens": 150}, user_id="alice")
status = tracker.budget_status()
show(pd.DataFrame(
    [
        {"scope": s.scope, "key": s.key, "window": s.window, "spent": float(s.spent),
         "limit": float(s.limit), "percent": s.percent / 100, "message": s.message}
        for s in status
    ]
))""",
    ),
    ("md", "## 9. Your own SQL\n\nThe `usage` table is a contract: query it directly."),
    (
        "code",
        """analytics.sql(
    \"\"\"
    SELECT operation, model, count(*) AS calls,
           round(sum(total_cost), 4) AS cost,
           round(avg(latency_ms)) AS avg_latency_ms
    FROM usage
    WHERE ts >= now() - INTERVAL 7 DAY
    GROUP BY ALL ORDER BY cost DESC LIMIT 8
    \"\"\"
)""",
    ),
    ("code", "tracker.close()"),
    (
        "md",
        """## 10. Your own data

Everything above works on the database your application writes. `tokentrail path` prints
where it is; `Analytics()` with no argument opens it (or what `TOKENTRAIL_DB` names: a file
or a `postgresql://` URL).
Set `MINE` to your file, or leave it as it is to use the default.""",
    ),
    (
        "code",
        """from tokentrail.analytics import Analytics
from tokentrail.store.paths import PostgresUrl, resolve_db

MINE = resolve_db()  # TOKENTRAIL_DB (a file or a postgresql:// URL), else the default file
if isinstance(MINE, PostgresUrl) or MINE.exists():
    mine = Analytics(MINE)
    display(SummaryView(mine.summary(since="30d")), show(mine.by_model(since="30d")))
else:
    print(f"No database at {MINE} yet: run your app with a Tracker, or `tokentrail demo`.")""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell in ``workdir`` with the python3 kernel."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def execute_as_committed(nb: nbformat.NotebookNode, workdir: Path) -> nbformat.NotebookNode:
    """Run it the way its committed outputs were made: "your own data" is the demo's file."""
    import os

    os.environ["TOKENTRAIL_DB"] = str(workdir / "usage_demo.duckdb")
    return execute(nb, workdir)


if __name__ == "__main__":
    notebook = build()
    if "--execute" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            execute_as_committed(notebook, Path(tmp))
    nbformat.write(notebook, TARGET)
    print(f"wrote {TARGET}")
