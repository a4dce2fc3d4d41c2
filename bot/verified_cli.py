"""`fundbot verified list/show/verify/retire/add/check/reviews/export` (docs/VERIFIED.md)."""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from bot import library as lib

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


@contextmanager
def _open(need_warehouse: bool) -> Iterator[tuple[Any, Any]]:
    """(store, warehouse or None), both closed before the command returns."""
    from bot.config import load_config
    from bot.store import SqliteStore
    from bot.warehouse import open_warehouse

    config = load_config()
    with ExitStack() as stack:
        warehouse = (stack.enter_context(open_warehouse(config.db_path, config.limits))
                     if need_warehouse else None)
        yield stack.enter_context(SqliteStore(config.state_path)), warehouse


def _opening(need_warehouse: bool):
    """Run a command with (args, store, warehouse), closing both afterwards."""
    def wrap(fn):
        @functools.wraps(fn)
        def command(args: argparse.Namespace) -> int:
            with _open(need_warehouse) as (store, warehouse):
                return fn(args, store, warehouse)
        return command
    return wrap


def _reviewer(args: argparse.Namespace) -> str:
    return (args.by or getpass.getuser() or "").strip()


@_opening(False)
def cmd_list(args: argparse.Namespace, store: Any, _: Any) -> int:
    queries = store.list_verified(args.status)
    if args.json:
        print(lib.dumps([lib.summary(q) for q in queries]))
        return EXIT_OK
    if not queries:
        print("no verified queries" + (f" with status {args.status}" if args.status else ""))
    for q in queries:
        flag = f"  BROKEN: {q.broken}" if q.broken else ""
        print(f"#{q.id:<4} {q.status:<9} {q.question}{flag}")
    return EXIT_OK


@_opening(False)
def cmd_show(args: argparse.Namespace, store: Any, _: Any) -> int:
    from states.verified import describe

    q = store.get_verified(args.id)
    if q is None:
        print(f"fundbot verified: no verified query {args.id}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(lib.dumps(describe(q)))
        return EXIT_OK
    d = describe(q)
    print(f"#{q.id} {q.status}{' (BROKEN: ' + q.broken + ')' if q.broken else ''}")
    print(f"question:  {q.question}\nSQL:       {q.sql}")
    for s in q.slots:
        print(f"name:      {s.kind} {s.value!r} (key {s.key!r})"
              f"{' swappable' if s.swappable else ' fixed'}")
    print(f"intent:    {' '.join(d['intent'])}"
          f"{'' if d['reusable'] else '  (relative dates: examples only, never re-run)'}")
    print(f"proposed:  {q.proposed_at} by {q.proposed_by or '?'} ({q.source}, trace "
          f"{q.trace_id or '-'})")
    if q.verified_by:
        print(f"reviewed:  {q.verified_at} by {q.verified_by}")
    if q.retired_by:
        print(f"retired:   {q.retired_at} by {q.retired_by}")
    if q.answer:
        print(f"answer:    {q.answer}")
    return EXIT_OK


def _review(args: argparse.Namespace, action: str) -> int:
    by = _reviewer(args)
    if not by:
        print("fundbot verified: name the reviewer with --by", file=sys.stderr)
        return EXIT_REFUSED
    with _open(action == "verify") as (store, warehouse):
        try:
            q = (lib.verify(store, warehouse, args.id, by) if action == "verify"
                 else lib.retire(store, args.id, by))
        except lib.LibraryError as exc:
            print(f"fundbot verified: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"#{q.id} {q.status} by {by}: {q.question}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    return _review(args, "verify")


def cmd_retire(args: argparse.Namespace) -> int:
    return _review(args, "retire")


@_opening(True)
def cmd_add(args: argparse.Namespace, store: Any, warehouse: Any) -> int:
    by = _reviewer(args)
    try:
        q = lib.add(store, warehouse, args.question, args.sql, by)
    except lib.LibraryError as exc:
        print(f"fundbot verified: {exc}", file=sys.stderr)
        return EXIT_FAILED
    swappable = [f"{s.kind} {s.value!r}" for s in q.slots if s.swappable]
    print(f"#{q.id} verified by {by}: {q.question}"
          + (f" (swappable: {', '.join(swappable)})" if swappable else ""))
    return EXIT_OK


@_opening(True)
def cmd_check(args: argparse.Namespace, store: Any, warehouse: Any) -> int:
    flagged = lib.check_all(store, warehouse)
    for qid, reason in flagged:
        print(f"#{qid} flagged: {reason}")
    print(f"{len(store.list_verified('verified'))} verified, {len(flagged)} newly flagged")
    return EXIT_FAILED if flagged else EXIT_OK


@_opening(False)
def cmd_reviews(args: argparse.Namespace, store: Any, _: Any) -> int:
    items = store.disputed_answers()
    if args.json:
        print(lib.dumps(items))
        return EXIT_OK
    if not items:
        print("no answers are waiting for review")
    for it in items:
        via = f" (verified query #{it['verified_query']})" if it["verified_query"] else ""
        print(f"{it['at']} {it['user']} on trace {it['trace_id']}{via}: {it['question']!r}\n"
              f"    {it['comment']}")
    return EXIT_OK


@_opening(True)
def cmd_export(args: argparse.Namespace, store: Any, warehouse: Any) -> int:
    n = lib.export_cases(store, warehouse, args.out)
    print(f"wrote {n} case{'' if n == 1 else 's'} to {args.out} "
          f"(run them with: fundbot eval --cases {args.out})")
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("verified", help="the verified-query library (docs/VERIFIED.md)")
    vs = v.add_subparsers(dest="verified_command", required=True)
    ls = vs.add_parser("list", help="list queries")
    ls.add_argument("--status", choices=("proposed", "verified", "retired"))
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    sh = vs.add_parser("show", help="show one query")
    sh.add_argument("id", type=int)
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)
    for name, func, text in (("verify", cmd_verify, "verify a query (its SQL must run)"),
                             ("retire", cmd_retire, "take a query out of use")):
        p = vs.add_parser(name, help=text)
        p.add_argument("id", type=int)
        p.add_argument("--by", help="reviewer name (default: your login name)")
        p.set_defaults(func=func)
    a = vs.add_parser("add", help="add a verified query directly (you are the reviewer)")
    a.add_argument("--question", required=True)
    a.add_argument("--sql", required=True)
    a.add_argument("--by", help="reviewer name (default: your login name)")
    a.set_defaults(func=cmd_add)
    vs.add_parser("check", help="run every verified query; flag those that fail").set_defaults(
        func=cmd_check)
    r = vs.add_parser("reviews", help="thumbs-down answers with a comment, newest first")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_reviews)
    e = vs.add_parser("export", help="write the library as evaluation cases (JSON Lines)")
    e.add_argument("--out", required=True, help="cases file to write")
    e.set_defaults(func=cmd_export)
