"""The `fundbot` command: ask, chat, sql, db init, diagram, trace, run, slack, eval."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bot.config import ConfigError, load_config
from states.ports import QueryError, TurnResult

SLACK_HINT = ("Slack is not connected: put SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode) or "
              "SLACK_SIGNING_SECRET (HTTP) in .env to answer in Slack; see README "
              "'Connect to Slack'.")

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def jsonable(v: Any) -> Any:
    """A database value as JSON: exact integers, floats for decimals, ISO dates."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return v


def text_table(columns: list[str], rows: list[tuple], limit: int = 20) -> str:
    """Rows as an aligned plain-text table for the terminal."""
    from states.prompts import fmt_value

    shown = [[fmt_value(v) for v in r] for r in rows[:limit]]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    widths = [min(w, 40) for w in widths]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths, strict=True))

    out = [line(columns), line(["-" * w for w in widths]), *[line(r) for r in shown]]
    if len(rows) > limit:
        out.append(f"… {len(rows) - limit} more rows")
    return "\n".join(out)


def result_json(r: TurnResult) -> dict[str, Any]:
    return {
        "thread": r.thread_id, "state": r.state, "answer": r.answer, "sql": r.sql,
        "columns": r.columns, "rows": [jsonable(list(row)) for row in r.rows],
        "clarification": r.clarification, "options": r.options, "trace_id": r.trace_id,
        "llm_calls": r.llm_calls, "timings_ms": r.timings_ms, "error_kind": r.error_kind,
        "refused": r.refused, "truncated": r.truncated, "as_of": r.as_of,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
    }


def print_result(r: TurnResult, out=sys.stdout) -> None:
    if r.state == "clarify":
        print(r.clarification, file=out)
        for i, opt in enumerate(r.options, 1):
            print(f"  {i}. {opt}", file=out)
        return
    print(r.answer, file=out)
    if r.sql:
        print(f"\nSQL:\n{r.sql}", file=out)
    if r.columns and r.rows:
        print("\n" + text_table(r.columns, r.rows), file=out)
    if r.state == "answered" and r.sql:
        secs = r.timings_ms.get("total", 0) / 1000
        n = len(r.rows)
        print(f"\n(data as of {r.as_of or 'unknown'}; {n} row{'' if n == 1 else 's'}"
              f"{' (truncated)' if r.truncated else ''}; {secs:.1f}s)", file=out)


def exit_code(r: TurnResult) -> int:
    if r.state == "failed":
        return EXIT_REFUSED if r.error_kind == "refused" else EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------- commands


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.runtime import build_deps
    from states.machine import run_turn

    deps = build_deps(load_config())
    thread = args.thread or f"cli-{uuid.uuid4().hex[:10]}"
    result = run_turn(deps, thread, args.question, user="cli")
    if args.json:
        print(json.dumps(result_json(result), ensure_ascii=False))
    else:
        print_result(result)
        print(f"\nthread: {thread} (continue with: fundbot ask --thread {thread} \"...\")")
    return exit_code(result)


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.runtime import build_deps
    from states.machine import run_turn

    deps = build_deps(load_config())
    thread = f"chat-{uuid.uuid4().hex[:10]}"
    print("fundbot: ask about the fund's data. /new starts a new thread, /quit leaves.")
    while True:
        try:
            text = input("\nyou> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return EXIT_OK
        if text.strip() in ("/quit", "/exit", "quit", "exit"):
            return EXIT_OK
        if text.strip() == "/new":
            thread = f"chat-{uuid.uuid4().hex[:10]}"
            print("(new thread)")
            continue
        print()
        print_result(run_turn(deps, thread, text, user="chat"))


def cmd_sql(args: argparse.Namespace) -> int:
    from bot.runtime import build_warehouse

    config = load_config()
    wh = build_warehouse(config)
    try:
        res = wh.execute(args.sql)
    except QueryError as exc:
        if args.json:
            print(json.dumps({"error": {"kind": exc.kind, "message": exc.message}}))
        else:
            print(f"{exc.kind}: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED if exc.kind == "refused" else EXIT_FAILED
    if args.json:
        print(json.dumps({"columns": res.columns, "rows": [jsonable(list(r)) for r in res.rows],
                          "truncated": res.truncated}, ensure_ascii=False))
    else:
        print(text_table(res.columns, res.rows, limit=200))
        if res.truncated:
            print(f"(truncated at {len(res.rows)} rows)")
    return EXIT_OK


def cmd_db_init(args: argparse.Namespace) -> int:
    import time

    from schemas.generate import build

    if args.engine == "spark":
        return _db_init_spark(args)
    path = args.path or load_config().db_path
    t0 = time.perf_counter()
    counts = build(path, scale=args.scale)
    summary = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    print(f"built {path} in {time.perf_counter() - t0:.1f}s: {summary}")
    return EXIT_OK


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
        counts = build_on_spark(spark, scale=args.scale,
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
    from bot.store import SqliteStore

    store = SqliteStore(load_config().state_path)
    trace = store.get_trace(args.trace_id)
    if trace is None:
        print(f"no trace {args.trace_id!r}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(jsonable(trace.to_dict()), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_slack(args: argparse.Namespace) -> int:
    from bot.runtime import build_deps
    from bot.slack.app import serve

    config = load_config()
    if not config.slack_configured:
        print(SLACK_HINT, file=sys.stderr)
        return EXIT_REFUSED
    serve(config, build_deps(config))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config()
    if config.slack_configured:
        return cmd_slack(args)
    print(SLACK_HINT)
    return cmd_chat(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fundbot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("ask", help="ask one question")
    a.add_argument("question")
    a.add_argument("--thread", help="continue this conversation (follow-up or clarification)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
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
    init.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                      help="duckdb: a file (default); spark: tables through the Spark Connect "
                           "server in FUNDBOT_WAREHOUSE (the same generated values)")
    init.set_defaults(func=cmd_db_init)
    sub.add_parser("diagram", help="print the state machine as Mermaid").set_defaults(
        func=cmd_diagram)
    t = sub.add_parser("trace", help="print a turn's trace")
    t.add_argument("trace_id")
    t.set_defaults(func=cmd_trace)
    sub.add_parser("slack", help="start the Slack app").set_defaults(func=cmd_slack)
    sub.add_parser("run", help="Slack when tokens are set, else the terminal chat").set_defaults(
        func=cmd_run)
    sub.add_parser("eval", help="run the evaluation suite (see fundbot eval --help)",
                   add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:
        from eval.cli import main as eval_main

        return eval_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"fundbot: {exc}", file=sys.stderr)
        return EXIT_REFUSED if isinstance(exc, ConfigError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
