"""`fundbot eval`: run the cases against a model and write reports; `fundbot eval compare A B`.

Exit codes: 0 done; 1 a threshold was not met, or every turn failed; 2 bad usage or
configuration (a bad case file, a failing reference SQL, an unreachable endpoint or unknown
model, an unwritable --out); 130 interrupted (Ctrl-C: the partial report is written, marked
"interrupted": true).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from eval.cases import DEFAULT_CASES, DEFAULT_TODAY, CaseError, load_cases
from eval.runner import CLASSIFICATION, QUALITY

EXIT_OK, EXIT_BELOW, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
THRESHOLDS = (*QUALITY, *CLASSIFICATION, "pass_rate")


def _flag(metric: str) -> str:
    return "--min-" + metric.replace("_", "-").lower()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fundbot eval",
        description="Score a model on the evaluation cases and write report.json, report.md "
                    "and report.html. `fundbot eval compare A B` compares two runs.")
    p.add_argument("--model", help="model name for the configured OpenAI-compatible endpoint "
                   "(default FUNDBOT_MODEL), or 'gold' for the replay model that answers with "
                   "the reference SQL (replay:wrong-numbers, replay:hard-coded and "
                   "replay:wrong-20pct are gold with a known fault, for checking the harness)")
    p.add_argument("--cases", default=str(DEFAULT_CASES), help="cases file (JSON Lines)")
    p.add_argument("--out", default="eval-out", help="directory for the reports and the "
                   "run's conversation store (default eval-out)")
    p.add_argument("--concurrency", type=int, default=4, help="cases run at once (default 4)")
    p.add_argument("--today", type=date.fromisoformat, default=None,
                   help="pin 'today' (ISO date) for cases that do not pin their own; default "
                   "FUNDBOT_TODAY, else the warehouse's data date (the catalogue's rule)")
    p.add_argument("--tags", default="", help="only cases with these tags or ids "
                   "(comma-separated)")
    p.add_argument("--db", default=None, help="warehouse DuckDB file (default FUNDBOT_DB)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--variants", type=_count(0), default=0, metavar="K",
                   help="also run reference and predicted SQL on K seeded variants of the "
                   "sample warehouse (same names, other values); execution accuracy holds "
                   "only if it holds on all of them (test-suite accuracy)")
    p.add_argument("--repeat", type=_count(1), default=1, metavar="K",
                   help="run each case K times and report per-case flip rates")
    p.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="sampling temperature sent to the model (default: the server's)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="sampling seed sent to the model, for endpoints that accept one")
    g = p.add_argument_group("thresholds (exit 1 when a metric is below; off by default)")
    for metric in THRESHOLDS:
        flags = dict.fromkeys([_flag(metric), "--min-" + metric.replace("_", "-")])
        g.add_argument(*flags, dest=f"min_{metric}", type=_fraction, default=None,
                       metavar="X", help=f"minimum {metric} (0-1)")
    return p


def _count(least: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, not {v}")
        return v
    return parse


def _fraction(text: str) -> float:
    v = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return v


def check_thresholds(summary: dict[str, Any], mins: dict[str, float]) -> list[str]:
    """Human messages for every metric below its minimum (an unmeasured metric fails too)."""
    failures = []
    for metric, floor in mins.items():
        got = summary.get(metric)
        if got is None:
            failures.append(f"{metric}: not measured by these cases (minimum {floor:.3f})")
        elif got + 1e-12 < floor:
            failures.append(f"{metric}: {got:.3f} is below the minimum {floor:.3f}")
    return failures


def _git_commit() -> str:
    try:
        import subprocess

        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             check=False, text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip()
    except Exception:  # noqa: BLE001 - not a checkout: the report simply has no commit
        return ""


def _public_url(url: str) -> str:
    """The endpoint for the report, without credentials or query a URL might carry."""
    if not url:
        return "openai"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _fail(message: str) -> int:
    print(f"fundbot eval: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_config
    from bot.runtime import build_llm, build_warehouse
    from eval import report
    from eval.gold import GoldLLM
    from eval.preflight import PreflightError, check_endpoint, failing_references

    out = Path(args.out)
    try:
        report.prepare(out)  # writable, and no earlier run's report left looking current
    except OSError as exc:
        return _fail(f"cannot write reports to {out}: {exc.strerror or exc}")
    try:
        cases = load_cases(args.cases, [t for t in args.tags.split(",") if t.strip()])
    except (CaseError, OSError) as exc:
        return _fail(str(exc))
    if not cases:
        return _fail(f"no cases selected from {args.cases} (tags {args.tags!r})")
    try:
        config = load_config()
    except ConfigError as exc:
        return _fail(str(exc))
    gold = (args.model or "").lower() == "gold"
    replay = (args.model or "").lower().startswith("replay:")
    if args.model and not gold:
        config.model = args.model
    if gold:
        gold_llm = GoldLLM  # given the warehouse's dialect once it is open
    elif replay:
        from eval.scripted import REPLAYS

        name = args.model.split(":", 1)[1].lower()
        if name not in REPLAYS:
            return _fail(f"no replay model {name!r}; there are: {', '.join(REPLAYS)}")
        gold_llm = REPLAYS[name]
        gold = True  # a replay: no endpoint
    else:
        try:
            shared = build_llm(config)
            check_endpoint(config)  # one cheap call before any case spends tokens
        except (ConfigError, PreflightError) as exc:
            return _fail(str(exc))
        shared.temperature = args.temperature
        shared.seed = args.seed

        def llm_for(case: object) -> object:
            return shared  # one client serves every case
    if args.variants and config.warehouse_url:
        return _fail("--variants needs the DuckDB warehouse: it builds seeded variants of the "
                     "sample as DuckDB files and runs the predicted SQL on them, which on Spark "
                     "is Spark SQL; unset FUNDBOT_WAREHOUSE to use it")
    db = args.db or config.db_path
    try:
        warehouse = build_warehouse(config, db)
    except (FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc))
    if gold:
        dialect = warehouse.catalog.dialect

        def llm_for(case: object) -> object:
            # the reference SQL (written in DuckDB SQL) in the engine's dialect
            return gold_llm(case, dialect=dialect)
    variants = []
    try:
        broken = failing_references(cases, warehouse)
        if broken:
            for line in broken:
                print(f"fundbot eval: {line}", file=sys.stderr)
            return _fail(f"{len(broken)} reference SQL(s) fail; fix the cases before scoring")
        if args.variants:
            from eval.variants import open_variants

            variants = open_variants(args.variants, out / "variants", config.limits)
            broken = [f"variant {i + 1}: {b}" for i, wh in enumerate(variants)
                      for b in failing_references(cases, wh)]
            if broken:
                for line in broken:
                    print(f"fundbot eval: {line}", file=sys.stderr)
                return _fail("reference SQL fails on a seeded variant")
        return _run(args, cases, config, warehouse, variants, llm_for, gold, db, out)
    finally:
        for wh in (*variants, warehouse):
            wh.close()


def _run(args, cases, config, warehouse, variants, llm_for, gold, db, out) -> int:
    from bot.spark_warehouse import redact_url
    from bot.store import SqliteStore
    from eval import report
    from eval.progress import Progress
    from eval.runner import by_tag, run_cases, summarize

    state = out / "state.sqlite3"
    for suffix in ("", "-wal", "-shm"):  # every run starts from a fresh store
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    store = SqliteStore(state)
    as_of = warehouse.catalog.as_of
    today = args.today or config.today or (date.fromisoformat(as_of) if as_of
                                           else DEFAULT_TODAY)
    model = config.model if args.model and args.model.lower().startswith("replay:") else (
        "gold" if gold else config.model)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    progress = None if args.quiet else Progress(len(cases), label=f"eval {model}")
    interrupted: list[bool] = [False]
    try:
        records, wall = run_cases(cases, warehouse, store, llm_for, limits=config.limits,
                                  today=today, concurrency=args.concurrency, progress=progress,
                                  run_id=uuid.uuid4().hex[:8], variants=variants,
                                  repeat=args.repeat, interrupted=interrupted)
    finally:
        store.close()
    summary = summarize(records)
    meta = {
        "model": model, "endpoint": "" if gold else _public_url(config.openai_base_url),
        "cases_file": str(args.cases), "tags": args.tags, "today": today.isoformat(),
        "as_of": as_of, "engine": warehouse.catalog.dialect,
        "db": redact_url(config.warehouse_url) if config.warehouse_url else str(db),
        "concurrency": args.concurrency,
        "temperature": args.temperature, "seed": args.seed, "variants": len(variants),
        "repeat": args.repeat, "cases_selected": len(cases), "interrupted": interrupted[0],
        "started_at": started, "wall_seconds": round(wall, 3), "commit": _git_commit(),
        "python": platform.python_version(),
    }
    rep = report.build(meta, summary, by_tag(records), records)
    rep["interrupted"] = interrupted[0]
    mins = {m: getattr(args, f"min_{m}") for m in THRESHOLDS
            if getattr(args, f"min_{m}") is not None}
    failures = check_thresholds(summary, mins)
    rep["thresholds"] = {"minimums": mins, "failures": failures}
    try:
        paths = report.write(rep, out, failures)
    except OSError as exc:
        return _fail(f"cannot write reports to {out}: {exc.strerror or exc}")
    _print_summary(summary, model, wall, paths)
    if interrupted[0]:
        print(f"fundbot eval: interrupted; the report covers {len(records)} of {len(cases)} "
              "cases and is marked \"interrupted\": true", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary["stale_cases"]:
        print(f"warning: {summary['stale_cases']} case(s) are stale (their stored values no "
              "longer match the data); see report.md", file=sys.stderr)
    turns = sum(len(c["turns"]) for c in records)
    if turns and summary["failed_turns"] == turns:
        print("fundbot eval: every turn failed; see the errors in report.md", file=sys.stderr)
        return EXIT_BELOW
    for f in failures:
        print(f"below threshold: {f}", file=sys.stderr)
    return EXIT_BELOW if failures else EXIT_OK


def _print_summary(s: dict[str, Any], model: str, wall: float, paths: dict[str, Path]) -> None:
    from eval.report import LABELS, pct

    print(f"fundbot eval: {model}, {s['cases']} cases, {s['passed']} passed, {wall:.1f}s")
    ci = s.get("ci95", {})
    for key in ("pass_rate", "execution_accuracy", "answer_accuracy", "table_recall",
                "column_recall", "table_precision", "column_precision", "value_recall",
                "answer_value_recall", "rouge1", "rouge2", "rougeL", "outcome_accuracy",
                "clarification_recall", "refusal_recall"):
        interval = f"  95% CI {pct(ci[key][0])}-{pct(ci[key][1])}" if ci.get(key) else ""
        print(f"  {LABELS[key]:28} {pct(s.get(key)):>7}{interval}")
    if s.get("flip_rate") is not None:
        print(f"  {'Flip rate (repeats)':28} {pct(s['flip_rate']):>7}  "
              f"{s['flipped_cases']} case(s) flipped")
    print(f"  {'LLM calls / tokens':28} {s['llm_calls']} / "
          f"{s['prompt_tokens'] + s['completion_tokens']:,}")
    if s.get("verify_checked"):
        print(f"  {'Verify rejected / withheld':28} {pct(s['verify_rejected']):>7} / "
              f"{pct(s['verify_replaced'])} (replacements right: "
              f"{pct(s['verify_replacement_right'])})")
    print(f"reports: {paths['md']}  {paths['html']}  {paths['json']}")


def compare_main(argv: list[str]) -> int:
    from eval import report
    from eval.compare import compare, html_page, text

    p = argparse.ArgumentParser(prog="fundbot eval compare",
                                description="Compare two eval runs (directories or "
                                            "report.json files), B against A.")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (per "
                   "metric: difference, ci95 and p_value)")
    p.add_argument("--html", metavar="FILE", help="also write a side-by-side HTML page")
    args = p.parse_args(argv)
    try:
        ra, rb = report.load(args.a), report.load(args.b)
    except (OSError, ValueError, KeyError) as exc:
        print(f"fundbot eval compare: cannot read a report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    name_a, name_b = _run_name(args.a, "A"), _run_name(args.b, "B")
    if name_a == name_b:
        name_a, name_b = f"A {name_a}", f"B {name_b}"
    if args.html:
        try:
            report.write_atomic(Path(args.html), html_page(ra, rb, name_a, name_b))
        except OSError as exc:
            print(f"fundbot eval compare: cannot write {args.html}: {exc.strerror or exc}",
                  file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(json.dumps(compare(ra, rb), indent=2))
    else:
        sys.stdout.write(text(ra, rb, name_a, name_b))
        if args.html:
            print(f"side-by-side page: {args.html}")
    return EXIT_OK


def _run_name(path: str, default: str) -> str:
    p = Path(path)
    return (p.parent.name if p.name == "report.json" else p.name) or default


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        try:
            return compare_main(argv[1:])
        except SystemExit as exc:  # argparse: --help is 0, bad usage 2
            return int(exc.code or 0)
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.concurrency < 1:
        print("fundbot eval: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except KeyboardInterrupt:  # before any case ran (checks, variants): nothing to report
        print("fundbot eval: interrupted before the cases ran; no report written",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
