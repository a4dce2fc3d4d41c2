"""The SQL worker's logic in this process: the same Runner the worker process runs, driven
directly, so each reply's shape and every cap can be checked exactly (tests/test_sqlpool.py
checks the process around it: its OS limits, its death and replacement)."""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.sqlworker import (
    Runner,
    _cpu_seconds,
    _vm_size,
    cpu_limit,
    memory_bytes,
    portable,
    value_bytes,
)
from bot.warehouse import connect
from schemas.catalog import build_catalog, docs_for
from states.ports import Limits


@pytest.fixture(scope="module")
def db(sample_db, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("worker") / "fund.duckdb"
    path.write_bytes(Path(sample_db).read_bytes())
    return str(path)


@pytest.fixture(scope="module")
def catalog(db):
    con = connect(db, Limits())
    try:
        return build_catalog(con, docs_for(con))
    finally:
        con.close()


@pytest.fixture(autouse=True)
def cpu_limit_restored():
    """Runner.run caps this process's CPU time as it would the worker's: put it back."""
    before = resource.getrlimit(resource.RLIMIT_CPU)
    yield
    resource.setrlimit(resource.RLIMIT_CPU, before)


def runner(db, catalog, **limits) -> Runner:
    return Runner(db, Limits(**{"memory_limit": "500MB", **limits}), catalog)


# A query of a few hundred milliseconds on one thread (0.13 s per 10^8 rows here, unloaded).
SHORT = "SELECT sum(range) AS s FROM range(200000000)"
FOREVER = "SELECT count(*) FROM range(100000000000) a"


# --------------------------------------------------------------------- helpers


def _used_cpu() -> float:
    """This process's user and system CPU seconds, read here rather than by the worker."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_cpu_seconds_are_user_and_system_time_so_far():
    before = _used_cpu()
    now = _cpu_seconds()
    assert before <= now <= _used_cpu() and resource.getrusage(resource.RUSAGE_SELF).ru_stime > 0


def test_a_requests_cpu_limit_is_its_budget_from_now_within_the_hard_limit():
    # the hard limit is usually none (RLIM_INFINITY); under a tool that sets one (mutation
    # testing does), the soft limit never passes it
    assert resource.RLIM_INFINITY == -1
    assert cpu_limit(12.9, 16, resource.RLIM_INFINITY) == 28
    assert cpu_limit(12.9, 16, 100) == 28
    assert cpu_limit(12.9, 16, 20) == 20
    assert cpu_limit(0.2, 16, 0) == 0  # a hard limit of 0 is a limit, not "none"


def test_the_address_space_read_is_the_kernels_in_bytes():
    # /proc/self/statm counts the same size in pages: read on both sides of _vm_size, equal
    # unless this process mapped memory in between (then try again)
    page = os.sysconf("SC_PAGE_SIZE")
    for _ in range(20):
        before = int(Path("/proc/self/statm").read_text().split()[0]) * page
        size = _vm_size()
        if before == int(Path("/proc/self/statm").read_text().split()[0]) * page:
            assert size == before
            return
    pytest.fail("the address space kept changing")


@pytest.mark.parametrize("text, expected", [
    ("128MB", 128 * 10**6), ("1GiB", 2**30), ("1.5GB", 1_500_000_000), (" 2 kb ", 2000),
    ("100", 100), ("3b", 3), ("4KiB", 4096), ("2MiB", 2 * 2**20), ("1TB", 10**12),
    ("1tib", 2**40), ("5gib", 5 * 2**30), ("7mb", 7 * 10**6)])
def test_memory_sizes_read_in_duckdb_units(text, expected):
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1 parsec", "MB", "-1MB", "1e3MB"])
def test_a_memory_size_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="not a memory size"):
        memory_bytes(text)


def test_value_bytes_counts_what_goes_on_the_wire():
    assert value_bytes("abc") == 11 and value_bytes(b"ab") == 10
    assert value_bytes(bytearray(b"abcd")) == 12
    assert value_bytes(7) == 16 and value_bytes(None) == 16 and value_bytes(1.5) == 16
    assert value_bytes(Decimal("1.5")) == 24
    assert value_bytes(["ab", 1]) == 8 + 10 + 16
    assert value_bytes(("ab", ("c",))) == 8 + 10 + (8 + 9)
    assert value_bytes({"k": "vv"}) == 8 + 9 + 10


def test_portable_gives_zoned_times_a_fixed_offset_everywhere():
    zoned = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    fixed = portable(zoned)
    assert fixed == zoned and fixed.tzinfo == timezone(timedelta(hours=2))
    assert type(fixed.tzinfo) is timezone
    naive = datetime(2026, 1, 1)
    assert portable(naive) is naive
    nested = portable({zoned: [zoned, (zoned, 1)], "x": naive})
    (key,) = [k for k in nested if k != "x"]
    assert type(key.tzinfo) is timezone
    assert type(nested[key]) is list and type(nested[key][1]) is tuple
    assert all(type(v.tzinfo) is timezone for v in (nested[key][0], nested[key][1][0]))
    assert nested[key][1][1] == 1 and nested["x"] is naive


# ---------------------------------------------------------------------- Runner


def test_an_answer_has_columns_rows_truncation_and_time(db, catalog):
    r = runner(db, catalog)
    reply = r.run("SELECT fund_name FROM funds ORDER BY fund_name LIMIT 2", guarded=True)
    kind, columns, rows, truncated, elapsed_ms = reply
    assert (kind, columns, truncated) == ("ok", ["fund_name"], False)
    assert len(rows) == 2 and all(type(row) is tuple for row in rows)
    assert rows == sorted(rows) and 0 < elapsed_ms < 60_000


def test_the_guard_runs_in_the_worker_unless_the_caller_vouches(db, catalog):
    r = runner(db, catalog)
    refused = r.run("SELECT * FROM duckdb_settings()", guarded=True)
    assert refused[0] == "error" and refused[1] == "refused" and refused[3] is False
    trusted = r.run("SELECT count(*) AS n FROM duckdb_settings()", guarded=False)
    assert trusted[0] == "ok" and trusted[2][0][0] > 10


def test_the_guard_adds_the_row_cap(db, catalog):
    r = runner(db, catalog, max_rows=5)
    reply = r.run("SELECT company_id FROM companies", guarded=True)
    assert reply[0] == "ok" and len(reply[2]) == 5 and reply[3] is True


def test_rows_past_the_cap_are_cut_and_said(db, catalog):
    r = runner(db, catalog, max_rows=5)
    over = r.run("SELECT * FROM range(200) t(n)", guarded=False)
    assert over[0] == "ok" and over[2] == [(n,) for n in range(5)] and over[3] is True
    exact = r.run("SELECT * FROM range(5) t(n)", guarded=False)
    assert exact[2] == [(n,) for n in range(5)] and exact[3] is False
    one_more = r.run("SELECT * FROM range(6) t(n)", guarded=False)
    assert len(one_more[2]) == 5 and one_more[3] is True


def test_rows_are_fetched_past_one_chunk(db, catalog):
    r = runner(db, catalog, max_rows=1000)
    reply = r.run("SELECT * FROM range(300) t(n)", guarded=False)
    assert reply[2] == [(n,) for n in range(300)] and reply[3] is False


@pytest.mark.parametrize("cap", [64, 128])
def test_a_cap_on_a_chunk_boundary_still_sees_the_row_past_it(db, catalog, cap):
    # rows are fetched 64 at a time: at a cap of 64 or 128 the last full chunk ends on the
    # cap, and the one row more that says "cut" must still be read
    reply = runner(db, catalog, max_rows=cap).run("SELECT * FROM range(200) t(n)", guarded=False)
    assert reply[2] == [(n,) for n in range(cap)] and reply[3] is True


def test_the_time_is_the_querys_in_milliseconds(db, catalog):
    r = runner(db, catalog, threads=1)
    started = time.perf_counter()
    reply = r.run(SHORT, guarded=False)
    outside_ms = (time.perf_counter() - started) * 1000
    assert reply[0] == "ok" and outside_ms / 2 <= reply[4] <= outside_ms


def test_rows_past_the_byte_cap_are_cut_and_a_lone_huge_row_is_an_error(db, catalog):
    r = runner(db, catalog, max_result_bytes=1000)
    cut = r.run("SELECT repeat('x', 100) AS s FROM range(50)", guarded=False)
    # each row: a tuple (8) holding a 100-character string (108): 116 bytes, 8 fit in 1000
    assert cut[0] == "ok" and len(cut[2]) == 8 and cut[3] is True
    fits = r.run("SELECT repeat('x', 100) AS s FROM range(8)", guarded=False)
    assert len(fits[2]) == 8 and fits[3] is False
    # exactly at the cap: 8 rows of 116 bytes are 928 bytes, and 928 may pass, not 927
    exact = runner(db, catalog, max_result_bytes=928).run(
        "SELECT repeat('x', 100) AS s FROM range(9)", guarded=False)
    assert len(exact[2]) == 8 and exact[3] is True
    short = runner(db, catalog, max_result_bytes=927).run(
        "SELECT repeat('x', 100) AS s FROM range(9)", guarded=False)
    assert len(short[2]) == 7 and short[3] is True
    huge = r.run("SELECT repeat('x', 5000) AS s", guarded=False)
    assert huge[:2] == ("error", "runtime") and "1,000-byte" in huge[2] and huge[3] is False


def test_intervals_come_back_as_duckdb_text_and_zoned_times_portable(db, catalog):
    r = runner(db, catalog)
    reply = r.run("SELECT age(DATE '2026-09-30', DATE '2011-05-14') AS a, 1 AS n", guarded=False)
    assert reply[1] == ["a", "n"] and reply[2] == [("15 years 4 months 16 days", 1)]
    zoned = r.run("SELECT TIMESTAMPTZ '2026-01-01 10:00:00+00' AS t", guarded=False)
    (value,), = zoned[2]
    assert type(value.tzinfo) is timezone and value == datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_errors_are_typed_and_do_not_retire_the_worker(db, catalog):
    r = runner(db, catalog)
    binder = r.run("SELECT no_such_column FROM funds", guarded=False)
    assert binder[:2] == ("error", "binder") and binder[3] is False
    parse = r.run("SELEC 1", guarded=False)
    assert parse[:2] == ("error", "parse")
    runtime = r.run("SELECT 'x'::INTEGER", guarded=False)
    assert runtime[:2] == ("error", "runtime") and "x" in runtime[2]
    assert r.run("SELECT 1 AS one", guarded=False)[2] == [(1,)]  # and it goes on


def test_a_query_past_its_time_is_interrupted_and_the_runner_goes_on(db, catalog):
    r = runner(db, catalog, query_timeout_s=0.5, threads=1)
    reply = r.run("SELECT count(*) FROM range(100000000000) a", guarded=False)
    assert reply[:2] == ("error", "timeout") and "0.5 s" in reply[2] and reply[3] is False
    assert r.run("SELECT 2 AS two", guarded=False)[2] == [(2,)]


def test_a_time_limit_that_passes_before_the_query_starts_still_stops_it(db, catalog):
    # the first interrupt lands before DuckDB has started: it is sent again until it takes
    r = runner(db, catalog, query_timeout_s=0.000001, threads=1)
    reply = r.run(FOREVER, guarded=False)
    assert reply[:2] == ("error", "timeout")
    # at once, not after some minimum wait: a query of a few hundred ms is stopped too
    assert r.run(SHORT, guarded=False)[:2] == ("error", "timeout")


def test_the_query_timer_is_a_named_daemon_thread_that_ends_with_the_query(db, catalog):
    # named, to be told apart in a thread dump; a daemon, so it can never hold the worker open
    r = runner(db, catalog, query_timeout_s=0.5, threads=1)
    query = threading.Thread(target=r.run, args=(FOREVER, False))
    query.start()
    timers: list[threading.Thread] = []
    while query.is_alive() and not timers:
        timers = [t for t in threading.enumerate() if t.name == "fundbot-query-timer"]
    query.join(60)
    assert len(timers) == 1 and timers[0].daemon
    timers[0].join(10)
    assert not timers[0].is_alive()


def test_a_value_too_deeply_nested_to_measure_is_an_error_and_the_runner_goes_on(db, catalog):
    # (the guard refuses such nesting in a question's SQL; trusted SQL gets a clear error)
    r = runner(db, catalog)
    reply = r.run("SELECT " + "[" * 600 + "1" + "]" * 600 + " AS deep", guarded=False)
    assert reply[:2] == ("error", "runtime") and reply[3] is False
    assert reply[2].startswith("RecursionError: maximum recursion depth exceeded"), reply[2]
    assert r.run("SELECT 1 AS one", guarded=False)[2] == [(1,)]


class _Exhausted(dict):
    """A catalogue whose every lookup finds the process out of memory."""

    def _out(self, *args, **kwargs):
        raise MemoryError

    __getitem__ = __contains__ = __iter__ = __len__ = get = items = keys = values = _out


def test_running_out_of_memory_anywhere_in_a_request_retires_the_worker(db, catalog):
    from dataclasses import replace

    from bot.sqlpool import memory_message

    limits = Limits(memory_limit="500MB")
    r = Runner(db, limits, catalog)
    r.catalog = replace(catalog, tables=_Exhausted(catalog.tables))  # the guard runs out
    assert r.run("SELECT fund_name FROM funds", guarded=True) == (
        "error", "runtime", memory_message(limits), True)
    r.catalog = catalog
    assert r.run("SELECT count(*) AS n FROM funds", guarded=True)[0] == "ok"


def test_each_request_gets_a_fresh_session(db, catalog):
    r = runner(db, catalog)
    assert r.run("CREATE TEMP TABLE t AS SELECT 1 AS x", guarded=False)[0] == "ok"
    assert r.run("SELECT x FROM t", guarded=False)[:2] == ("error", "binder")


def test_each_request_caps_cpu_time_from_now(db, catalog):
    r = runner(db, catalog, query_timeout_s=3, threads=2)
    assert r.cpu_budget == math.ceil((3 + 2) * (2 + 1)) + 1 == 16
    used = _used_cpu()
    r.run("SELECT 1", guarded=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    assert int(used) + 16 <= soft <= int(used) + 16 + 2
    assert hard == resource.getrlimit(resource.RLIMIT_CPU)[1]


def test_warming_runs_the_guard_and_every_converter(db, catalog):
    r = runner(db, catalog)
    r.warm()
    assert r.run("SELECT fund_name FROM funds LIMIT 1", guarded=True)[0] == "ok"


def test_warming_a_worker_that_cannot_run_a_query_is_an_error(db, catalog):
    from dataclasses import replace

    table = "no_such_table_" + "x" * 60  # the message shows the first 60 characters
    broken = replace(catalog, tables={table: next(iter(catalog.tables.values()))})
    with pytest.raises(RuntimeError) as info:
        runner(db, broken).warm()
    shown = f"SELECT * FROM {table}"[:60]
    assert str(info.value).startswith(f"the worker could not run {shown!r}: Catalog Error: "
                                      f"Table with name {table} does not exist"), info.value
    runner(db, replace(catalog, tables={})).warm()  # no table: the converters only


# ------------------------------------------------------------- DuckDB's messages


@pytest.fixture
def errors(monkeypatch):
    from bot.warehouse import QueryErrors

    monkeypatch.setenv("HOME", "/home/gp")
    return QueryErrors("/srv/fund/data/fund.duckdb", Limits(max_result_bytes=1000))


def test_a_message_loses_the_caret_context_and_extra_space(errors):
    assert errors.clean("Binder Error: no x\n\nLINE 1: SELECT x\n  ^") == "Binder Error: no x"
    assert errors.clean("Parser Error: near y\nLINE 1: SELEC") == "Parser Error: near y"
    assert errors.clean("a \n  b\tc  ") == "a b c"


def test_a_message_names_no_host_path(errors):
    assert errors.clean("cannot open /srv/fund/data/fund.duckdb now") == "cannot open <path> now"
    assert errors.clean("no /srv/fund/data/other.csv") == "no <path>/other.csv"
    assert errors.clean("see /home/gp/notes") == "see <path>/notes"
    assert errors.clean('No file "/etc/x y" or \'C:\\\\t\'') == 'No file "<path>" or \'<path>\''


@pytest.mark.parametrize("home", ["/", "."])
def test_a_root_or_relative_home_does_not_blank_every_slash_or_dot(monkeypatch, home):
    from bot.warehouse import QueryErrors

    monkeypatch.setenv("HOME", home)
    assert QueryErrors("fund.duckdb", Limits()).clean("a/b and c.d") == "a/b and c.d"


def test_the_longest_path_is_hidden_first(monkeypatch):
    # HOME is inside the warehouse's path but not at its start: hidden first, it would cut
    # the path in two and leave the rest of it ('/data<path>/fund.duckdb') in the message
    from bot.warehouse import QueryErrors

    monkeypatch.setenv("HOME", "/srv")
    errors = QueryErrors("/data/srv/fund.duckdb", Limits())
    assert errors.clean("cannot open /data/srv/fund.duckdb now") == "cannot open <path> now"
    assert errors.clean("no /data/srv/x.csv, see /srv/notes") == "no <path>/x.csv, see <path>/notes"


def test_a_long_message_is_cut_to_600_characters(errors):
    assert errors.clean("x" * 600) == "x" * 600
    assert errors.clean("x" * 601) == "x" * 599 + "…"


def test_a_too_big_row_says_the_limit_and_what_to_do(errors):
    assert errors.too_big() == ("one row of the result is larger than the 1,000-byte limit on "
                                "results; select shorter values (substr, length) or aggregate")


def test_duckdbs_errors_become_kinds_a_user_can_act_on(errors):
    import duckdb

    from bot.sqlpool import memory_message, timeout_message

    limits = Limits(max_result_bytes=1000)
    assert timeout_message(limits) == ("the query ran longer than 10 s and was stopped; make it "
                                       "cheaper (filter early, avoid cross joins)")
    assert memory_message(limits) == ("the query needed more than the 1GB memory limit and was "
                                      "stopped; aggregate or filter earlier and avoid cross joins")
    cases = [
        (duckdb.InterruptException("INTERRUPT"), False, ("timeout", timeout_message(limits))),
        (duckdb.InvalidInputException("x"), True, ("timeout", timeout_message(limits))),
        (duckdb.OutOfMemoryException("Out of Memory Error: temp_directory"), False,
         ("runtime", memory_message(limits))),
        (duckdb.ParserException("Parser Error: syntax"), False, ("parse", "Parser Error: syntax")),
        (duckdb.CatalogException("Catalog Error: t"), False, ("binder", "Catalog Error: t")),
        (duckdb.BinderException("Binder Error: c"), False, ("binder", "Binder Error: c")),
        (duckdb.ConversionException("Conversion Error: v"), False,
         ("runtime", "Conversion Error: v")),
        (duckdb.InvalidInputException("Invalid Input Error: requires pytz"), False,
         ("runtime", "timestamps with time zone cannot be returned here; cast them to "
                     "TIMESTAMP or DATE (e.g. current_date instead of now())")),
    ]
    for exc, timed_out, expected in cases:
        assert errors.from_duckdb(exc, timed_out) == expected, exc


def test_a_trailing_semicolon_does_not_break_the_exact_interval_text(db, catalog):
    reply = runner(db, catalog).run("SELECT INTERVAL 1 DAY AS i;  ", guarded=False)
    assert reply[:3] == ("ok", ["i"], [("1 day",)])
    # only the semicolon goes: the statement's own last characters stay
    reply = runner(db, catalog).run("SELECT INTERVAL 1 DAY AS XX;", guarded=False)
    assert reply[:3] == ("ok", ["XX"], [("1 day",)])
