"""The `fundbot` command: ask, chat, sql, db init, catalog init, diagram, trace, run, slack,
mcp, eval."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot import verified_cli
from bot.config import ConfigError, UnavailableError, load_config
from states.ports import QueryError, StoreError, TurnResult
from states.prompts import jsonable
from states.verify import MARKS

SLACK_HINT = ("Slack is not connected: put SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode) or "
              "SLACK_SIGNING_SECRET (HTTP) in .env to answer in Slack; see README "
              "'Connect to Slack'.")

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


def dump_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN/Infinity) for every value DuckDB can return."""
    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, indent=indent)


MAX_CELL = 40  # characters of a terminal cell; longer text is cut with "…"
_MONEY = re.compile(r"usd|amount|proceeds|capital|price|cost|revenue|invested|value|paid")


def text_table(columns: list[str], rows: list[tuple], limit: int = 20) -> str:
    """Rows as an aligned plain-text table: readable headers, numbers right-aligned, money
    columns (amount_usd, proceeds...) as money."""
    from states.prompts import fmt_money, fmt_value

    shown = rows[:limit]
    numeric = [all(_is_number(r[i]) or r[i] is None for r in shown) and
               any(_is_number(r[i]) for r in shown) for i in range(len(columns))]
    money = [num and bool(_MONEY.search(c.lower())) for c, num in zip(columns, numeric,
                                                                      strict=True)]
    cells = [[_cut((fmt_money if money[i] else fmt_value)(v)) for i, v in enumerate(r)]
             for r in shown]
    heads = [_cut(readable_header(c)) for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(heads)]

    def line(texts: list[str]) -> str:
        return "  ".join(t.rjust(w) if num else t.ljust(w)
                         for t, w, num in zip(texts, widths, numeric, strict=True)).rstrip()

    out = [line(heads), line(["-" * w for w in widths]), *[line(r) for r in cells]]
    if len(rows) > limit:
        out.append(f"… {len(rows) - limit} more rows")
    return "\n".join(out)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _cut(text: str) -> str:
    text = " ".join(text.split())  # a newline in a value must not break the table
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def readable_header(column: str) -> str:
    """total_invested_usd -> Total invested (USD)."""
    words = column.replace("_", " ").split()
    units = {"usd": "(USD)", "pct": "(%)", "eur": "(EUR)"}
    text = " ".join(units.get(w.lower(), w) for w in words) or column
    return text[:1].upper() + text[1:]


def pretty_sql(sql: str, dialect: str = "duckdb") -> str:
    """The SQL laid out on several lines (sqlglot, in the warehouse's `dialect`: what ran, not
    a translation), or as written when it will not parse."""
    import sqlglot

    try:
        return sqlglot.transpile(sql, read=dialect, write=dialect, pretty=True)[0]
    except (sqlglot.errors.SqlglotError, IndexError):
        return sql


def result_json(r: TurnResult) -> dict[str, Any]:
    return {
        "thread": r.thread_id, "state": r.state, "answer": r.answer, "sql": r.sql,
        "columns": r.columns, "rows": r.rows,
        "clarification": r.clarification, "options": r.options, "trace_id": r.trace_id,
        "llm_calls": r.llm_calls, "timings_ms": r.timings_ms, "error_kind": r.error_kind,
        "refused": r.refused, "truncated": r.truncated, "as_of": r.as_of,
        "verification": r.verification,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "verified_query": r.verified_query,
    }


def print_result(r: TurnResult, out=None, dialect: str = "duckdb") -> None:
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    for block in result_blocks(r, dialect):
        print(block, file=out)


def result_blocks(r: TurnResult, dialect: str = "duckdb") -> list[str]:
    """What the terminal shows for a turn, block by block; the last is the footer line."""
    if r.state == "clarify":
        options = [f"  {i}. {opt}" for i, opt in enumerate(r.options, 1)]
        return [r.clarification or "", *options, f"\n({_trace(r)})"]
    blocks = [r.answer or ""]
    if r.sql:
        blocks.append(f"\nSQL:\n{pretty_sql(r.sql, dialect)}")
    if r.columns and r.rows:
        blocks.append("\n" + text_table(r.columns, r.rows))
    facts = []
    if r.state == "answered" and r.sql:
        n = len(r.rows)
        facts += [f"data as of {r.as_of or 'unknown'}",
                  f"{n} row{'' if n == 1 else 's'}{' (truncated)' if r.truncated else ''}",
                  f"{r.timings_ms.get('total', 0) / 1000:.1f}s"]
        if r.verification in MARKS:
            facts.append(MARKS[r.verification])
        if r.verified_query:
            facts.append(f"verified query #{r.verified_query}")
    blocks.append(f"\n({'; '.join([*facts, _trace(r)])})")
    return blocks


def _trace(r: TurnResult) -> str:
    return f"trace {r.trace_id}" if r.trace_id else "no trace"


def exit_code(r: TurnResult) -> int:
    """The one rule (README "Exit codes"): 2 when refused, 1 when failed, else 0."""
    if r.refused:
        return EXIT_REFUSED
    return EXIT_FAILED if r.state == "failed" else EXIT_OK


# ---------------------------------------------------------------- commands


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.runtime import one_turn_at_a_time, opened
    from states.machine import run_turn

    thread = args.thread or f"cli-{uuid.uuid4().hex[:10]}"
    with opened(one_turn_at_a_time(load_config())) as deps:
        result = run_turn(deps, thread, args.question, user="cli")
    chart = save_chart(result, Path(args.chart)) if args.chart else None
    if args.json:
        print(dump_json({**result_json(result), **({"chart": chart} if args.chart else {})}))
    else:
        print_result(result, dialect=deps.warehouse.catalog.dialect)
        if args.chart:
            print(f"chart: {chart}" if chart else "chart: none (this result reads better as "
                  "text)")
        print(f"\nthread: {thread} (continue with: fundbot ask --thread {thread} \"...\")")
    return exit_code(result)


def save_chart(result: TurnResult, path: Path) -> str | None:
    """Draw the turn's chart into `path` (a PNG, with its alt text beside it as .txt)."""
    from bot.chart import chart_for_result

    chart = chart_for_result(result)
    if chart is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(chart.png)
        path.with_suffix(".txt").write_text(chart.alt + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"fundbot: could not save the chart to {path}: {exc.strerror or exc}",
              file=sys.stderr)
        return None
    return str(path)


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.runtime import one_turn_at_a_time, opened

    config = one_turn_at_a_time(load_config())
    with opened(config) as deps:
        return _chat(deps, Path(config.chart_dir))


CHAT_HELP = """Ask a question in plain words; answer a clarifying question with its number or name.
  /new    start a new thread (forget the conversation so far)
  /help   this help
  /quit   leave (or Ctrl-D); Ctrl-C cancels a running question or clears the line"""

_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)|[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(text: str) -> str:
    """A typed line without terminal escape sequences (arrow keys where line editing is
    unavailable) or control characters: they must not reach the model."""
    return _ESCAPES.sub("", text)


def _line_editing() -> None:
    """Arrow keys, history and Ctrl-A/E through readline, where Python has it."""
    try:
        import readline  # noqa: F401 - importing it is what turns line editing on for input()
    except ImportError:  # Windows without pyreadline: clean_line still drops escape codes
        pass


def _chat(deps, chart_dir: Path) -> int:
    from states.machine import run_turn

    _line_editing()
    thread = f"chat-{uuid.uuid4().hex[:10]}"
    print(f"fundbot: ask about the data (thread {thread}). /help lists the commands, "
          "/quit leaves.")
    while True:
        try:
            text = clean_line(input("\nyou> ")).strip()
        except EOFError:  # Ctrl-D
            print()
            return EXIT_OK
        except KeyboardInterrupt:  # Ctrl-C at the prompt: drop the line, ask again
            print("^C")
            continue
        if not text:
            continue
        if text in ("/quit", "/exit", "quit", "exit"):
            return EXIT_OK
        if text in ("/help", "help", "?"):
            print(CHAT_HELP)
            continue
        if text == "/new":
            thread = f"chat-{uuid.uuid4().hex[:10]}"
            print(f"(new thread {thread})")
            continue
        print()
        try:
            result = run_turn(deps, thread, text, user="chat")
        except KeyboardInterrupt:
            # Nothing of the turn was saved to the conversation (it is saved once, at the end),
            # so the thread is as it was before the question.
            print("(cancelled; the thread is as it was before this question)")
            continue
        print_result(result, dialect=deps.warehouse.catalog.dialect)
        chart = save_chart(result, chart_dir / f"{result.trace_id or thread}.png")
        if chart:
            print(f"(chart: {chart})")


def cmd_sql(args: argparse.Namespace) -> int:
    from bot.runtime import build_warehouse, one_turn_at_a_time

    config = one_turn_at_a_time(load_config())
    with build_warehouse(config) as wh:  # closed before we return
        try:
            res = wh.execute(args.sql)
        except QueryError as exc:
            refused = exc.kind == "refused"  # not a read-only query; parse/binder/... failed
            if args.json:
                print(dump_json({"error": {"kind": exc.kind, "message": exc.message},
                                 "refused": refused}))
            else:
                print(f"{exc.kind}: {exc.message}", file=sys.stderr)
            return EXIT_REFUSED if refused else EXIT_FAILED
    if args.json:
        print(dump_json({"columns": res.columns, "rows": res.rows, "truncated": res.truncated}))
    else:
        print(text_table(res.columns, res.rows, limit=200))
        if res.truncated:
            print(f"(truncated at {len(res.rows)} rows)")
    return EXIT_OK


def cmd_db_init(args: argparse.Namespace) -> int:
    import time

    from schemas.generate import DEFAULT_SEED, build

    if args.engine == "spark":
        return _db_init_spark(args)
    path = args.path or load_config().db_path
    t0 = time.perf_counter()
    seed = DEFAULT_SEED if args.seed is None else args.seed
    counts = build(path, scale=args.scale, seed=seed)
    summary = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    print(f"built {path} in {time.perf_counter() - t0:.1f}s: {summary}")
    return EXIT_OK


def cmd_catalog_init(args: argparse.Namespace) -> int:
    from bot.warehouse import open_warehouse
    from schemas.catalog import starter_docs

    config = load_config()
    db = args.db or config.db_path
    out = args.out
    if os.path.exists(out) and not args.force:
        print(f"fundbot: {out} exists; choose another --out or add --force", file=sys.stderr)
        return EXIT_REFUSED
    with open_warehouse(db, config.limits, docs={}) as wh:  # only what the file says
        docs = starter_docs(wh.catalog)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(docs, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}: {len(docs['tables'])} tables, {len(docs['dictionaries'])} value "
          f"dictionaries guessed from {db}. Edit it (descriptions, keywords, rules, audience), "
          f"then set FUNDBOT_CATALOG={out}")
    return EXIT_OK


def cmd_db_migrate_state(args: argparse.Namespace) -> int:
    from bot.store import copy_state, open_store

    with open_store(args.source) as source, open_store(args.target) as target:
        added = copy_state(source, target)
    print(f"copied {source.where} -> {target.where}: "
          + ", ".join(f"{table} {n:,}" for table, n in added.items()))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot.doctor import run_checks

    ok = True
    for name, good, line in run_checks(load_config()):
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {name:<9} {line}", flush=True)
    return EXIT_OK if ok else EXIT_FAILED


def _db_init_spark(args: argparse.Namespace) -> int:
    """The same sample data written as tables through Spark Connect (FUNDBOT_WAREHOUSE)."""
    import time

    from bot.spark_warehouse import connect, dialect_for, redact_url
    from schemas.spark_load import build_on_spark

    config = load_config()
    if not config.warehouse_url:
        raise ConfigError("--engine spark writes to the Spark Connect server in "
                          "FUNDBOT_WAREHOUSE; set it to sc://host:port")
    t0 = time.perf_counter()
    spark = connect(config.warehouse_url, config.warehouse_schema)
    try:
        counts = build_on_spark(spark, scale=args.scale, seed=args.seed,
                                dialect=dialect_for(config.warehouse_url))
    finally:
        spark.stop()
    summary = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    print(f"wrote the sample warehouse to {redact_url(config.warehouse_url)} in "
          f"{time.perf_counter() - t0:.1f}s: {summary}")
    return EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    from states.machine import mermaid

    print(mermaid())
    return EXIT_OK


def cmd_trace(args: argparse.Namespace) -> int:
    from bot.store import open_store

    store = open_store(load_config().state_path)
    trace = store.get_trace(args.trace_id)
    if trace is None:
        print(f"no trace {args.trace_id!r}", file=sys.stderr)
        return EXIT_FAILED
    print(dump_json(trace.to_dict(), indent=2))
    return EXIT_OK


def cmd_slack(args: argparse.Namespace) -> int:
    from bot.runtime import opened
    from bot.slack.app import serve

    config = load_config()
    if not config.slack_configured:
        print(SLACK_HINT, file=sys.stderr)
        return EXIT_REFUSED
    with opened(config) as deps:
        serve(config, deps)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config()
    if config.slack_configured:
        return cmd_slack(args)
    print(SLACK_HINT)
    return cmd_chat(args)


def cmd_mcp(args: argparse.Namespace) -> int:
    from bot.mcp_server import serve
    from bot.runtime import build_deps

    config = load_config()
    serve(config, build_deps(config), http=args.http, host=args.host, port=args.port,
          allowed_hosts=[h.strip() for h in args.allowed_hosts.split(",") if h.strip()])
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fundbot", description=__doc__)
    p.add_argument("--version", action="version", version=f"fundbot {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("ask", help="ask one question")
    a.add_argument("question")
    a.add_argument("--thread", help="continue this conversation (follow-up or clarification)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--chart", metavar="FILE", help="save a chart of the answer as PNG, when the "
                   "result deserves one (a trend, a comparison of up to 20 things, shares)")
    a.set_defaults(func=cmd_ask)
    sub.add_parser("chat", help="terminal chat").set_defaults(func=cmd_chat)
    s = sub.add_parser("sql", help="run SQL through the same guard and sandbox")
    s.add_argument("sql")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sql)
    db = sub.add_parser("db", help="the warehouse").add_subparsers(dest="db_command", required=True)
    init = db.add_parser("init", help="build the sample warehouse")
    init.add_argument("--path", help="DuckDB file (default: FUNDBOT_DB or data/fund.duckdb)")
    init.add_argument("--scale", type=float, default=1.0, help="multiply the row counts")
    init.add_argument("--seed", type=int, default=None, help="another seed builds a variant: "
                      "same schema, names and rules, different values")
    init.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                      help="duckdb: a file (default); spark: tables through the Spark Connect "
                           "server in FUNDBOT_WAREHOUSE (the same generated values)")
    init.set_defaults(func=cmd_db_init)
    mig = db.add_parser("migrate-state", help="copy every conversation, trace, event id and "
                        "feedback row from one state store to another (SQLite path or "
                        "postgresql:// URL); rows the target has are kept")
    mig.add_argument("--from", dest="source", required=True)
    mig.add_argument("--to", dest="target", required=True)
    mig.set_defaults(func=cmd_db_migrate_state)
    cat = sub.add_parser("catalog", help="the catalogue (table docs, rules, dictionaries)")
    cat_init = cat.add_subparsers(dest="catalog_command", required=True).add_parser(
        "init", help="write a starter catalogue from a DuckDB file, to edit")
    cat_init.add_argument("--db", help="DuckDB file (default: FUNDBOT_DB)")
    cat_init.add_argument("--out", default="catalog.json", help="where to write it")
    cat_init.add_argument("--force", action="store_true", help="overwrite --out")
    cat_init.set_defaults(func=cmd_catalog_init)
    sub.add_parser("diagram", help="print the state machine as Mermaid").set_defaults(
        func=cmd_diagram)
    t = sub.add_parser("trace", help="print a turn's trace")
    t.add_argument("trace_id")
    t.set_defaults(func=cmd_trace)
    sub.add_parser("doctor", help="check the store, warehouse, LLM endpoint and Slack tokens"
                   ).set_defaults(func=cmd_doctor)
    sub.add_parser("slack", help="start the Slack app").set_defaults(func=cmd_slack)
    sub.add_parser("run", help="Slack when tokens are set, else the terminal chat").set_defaults(
        func=cmd_run)
    m = sub.add_parser("mcp", help="serve other agents over MCP: stdio, or --http (docs/MCP.md)")
    m.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    m.add_argument("--host", default="127.0.0.1", help="HTTP address (default: loopback)")
    m.add_argument("--port", type=int, default=8765, help="HTTP port (default: 8765)")
    m.add_argument("--allowed-hosts", default="", help="Host names beyond loopback (a,b)")
    m.set_defaults(func=cmd_mcp)
    sub.add_parser("eval", help="run the evaluation suite (see fundbot eval --help)",
                   add_help=False)
    verified_cli.add_parser(sub)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fundbot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:
        from eval.cli import main as eval_main

        return eval_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is seen below
        return code
    except KeyboardInterrupt:  # Ctrl-C in `ask`/`sql`: one line, the shell's code for SIGINT
        print("fundbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader left (`fundbot sql ... | head`): stop quietly, as other tools do; stdout
        # goes to /dev/null so the interpreter's own final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except (ConfigError, FileNotFoundError, UnavailableError, StoreError) as exc:
        print(f"fundbot: {exc}", file=sys.stderr)
        return EXIT_REFUSED if isinstance(exc, ConfigError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
