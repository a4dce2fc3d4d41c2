"""`fundbot eval`: run the cases against a model and write reports; `fundbot eval compare A B`.

Exit codes: 0 done, 1 a threshold was not met (or the run could not be scored),
2 bad usage or configuration.
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

EXIT_OK, EXIT_BELOW, EXIT_USAGE = 0, 1, 2
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
                   "the reference SQL")
    p.add_argument("--cases", default=str(DEFAULT_CASES), help="cases file (JSON Lines)")
    p.add_argument("--out", default="eval-out", help="directory for the reports and the "
                   "run's conversation store (default eval-out)")
    p.add_argument("--concurrency", type=int, default=4, help="cases run at once (default 4)")
    p.add_argument("--today", type=date.fromisoformat, default=None,
                   help="pin 'today' (ISO date) for cases that do not pin their own; default "
                   f"FUNDBOT_TODAY, else {DEFAULT_TODAY}")
    p.add_argument("--tags", default="", help="only cases with these tags or ids "
                   "(comma-separated)")
    p.add_argument("--db", default=None, help="warehouse DuckDB file (default FUNDBOT_DB)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("thresholds (exit 1 when a metric is below; off by default)")
    for metric in THRESHOLDS:
        flags = dict.fromkeys([_flag(metric), "--min-" + metric.replace("_", "-")])
        g.add_argument(*flags, dest=f"min_{metric}", type=_fraction, default=None,
                       metavar="X", help=f"minimum {metric} (0-1)")
    return p


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


def run(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_config
    from bot.runtime import build_llm, build_warehouse
    from bot.spark_warehouse import redact_url
    from bot.store import SqliteStore
    from eval import report
    from eval.gold import GoldLLM
    from eval.progress import Progress
    from eval.runner import by_tag, run_cases, summarize

    try:
        cases = load_cases(args.cases, [t for t in args.tags.split(",") if t.strip()])
    except (CaseError, OSError) as exc:
        print(f"fundbot eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not cases:
        print(f"fundbot eval: no cases selected from {args.cases} (tags {args.tags!r})",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"fundbot eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    gold = (args.model or "").lower() == "gold"
    if args.model and not gold:
        config.model = args.model
    if gold:
        llm_for = None  # set once the warehouse, and so its dialect, is known
    else:
        try:
            shared = build_llm(config)
        except ConfigError as exc:
            print(f"fundbot eval: {exc}", file=sys.stderr)
            return EXIT_USAGE
        def llm_for(case: object) -> object:
            return shared  # one client serves every case
    db = args.db or config.db_path
    try:
        warehouse = build_warehouse(config, db)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"fundbot eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if gold:
        dialect = warehouse.catalog.dialect
        def llm_for(case: object) -> object:
            return GoldLLM(case, dialect=dialect)  # the reference SQL in the engine's dialect
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state = out / "state.sqlite3"
    for suffix in ("", "-wal", "-shm"):  # every run starts from a fresh store
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    store = SqliteStore(state)
    today = args.today or config.today or DEFAULT_TODAY
    model = "gold" if gold else config.model
    started = datetime.now(UTC).isoformat(timespec="seconds")
    as_of = warehouse.catalog.as_of
    progress = None if args.quiet else Progress(len(cases), label=f"eval {model}")
    try:
        records, wall = run_cases(cases, warehouse, store, llm_for, limits=config.limits,
                                  today=today, concurrency=args.concurrency, progress=progress,
                                  run_id=uuid.uuid4().hex[:8])
    finally:
        store.close()
        warehouse.close()
    summary = summarize(records)
    meta = {
        "model": model, "endpoint": "" if gold else _public_url(config.openai_base_url),
        "cases_file": str(args.cases), "tags": args.tags, "today": today.isoformat(),
        "as_of": as_of, "engine": warehouse.catalog.dialect,
        "db": redact_url(config.warehouse_url) if config.warehouse_url else str(db),
        "concurrency": args.concurrency,
        "started_at": started, "wall_seconds": round(wall, 3), "commit": _git_commit(),
        "python": platform.python_version(),
    }
    rep = report.build(meta, summary, by_tag(records), records)
    mins = {m: getattr(args, f"min_{m}") for m in THRESHOLDS
            if getattr(args, f"min_{m}") is not None}
    failures = check_thresholds(summary, mins)
    rep["thresholds"] = {"minimums": mins, "failures": failures}
    paths = report.write(rep, out, failures)
    _print_summary(summary, model, wall, paths)
    if summary["stale_cases"]:
        print(f"warning: {summary['stale_cases']} case(s) are stale (their stored values no "
              "longer match the data); see report.md", file=sys.stderr)
    for f in failures:
        print(f"below threshold: {f}", file=sys.stderr)
    return EXIT_BELOW if failures else EXIT_OK


def _print_summary(s: dict[str, Any], model: str, wall: float, paths: dict[str, Path]) -> None:
    from eval.report import LABELS, pct

    print(f"fundbot eval: {model}, {s['cases']} cases, {s['passed']} passed, {wall:.1f}s")
    for key in ("execution_accuracy", "table_recall", "column_recall", "value_recall",
                "rouge1", "rouge2", "rougeL", "outcome_accuracy", "clarification_recall",
                "refusal_recall"):
        print(f"  {LABELS[key]:28} {pct(s.get(key)):>7}")
    print(f"  {'LLM calls / tokens':28} {s['llm_calls']} / "
          f"{s['prompt_tokens'] + s['completion_tokens']:,}")
    print(f"reports: {paths['md']}  {paths['html']}  {paths['json']}")


def compare_main(argv: list[str]) -> int:
    from eval import report
    from eval.compare import compare, text

    p = argparse.ArgumentParser(prog="fundbot eval compare",
                                description="Compare two eval runs (directories or "
                                            "report.json files), B against A.")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = p.parse_args(argv)
    try:
        ra, rb = report.load(args.a), report.load(args.b)
    except (OSError, ValueError) as exc:
        print(f"fundbot eval compare: cannot read a report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(compare(ra, rb), indent=2))
    else:
        sys.stdout.write(text(ra, rb, Path(args.a).name or "A", Path(args.b).name or "B"))
    return EXIT_OK


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
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
