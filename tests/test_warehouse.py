"""The DuckDB executor: guard + sandbox, timeouts, row cap, error kinds, file untouched."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from bot import sqlpool, warehouse
from bot.config import UnavailableError
from bot.warehouse import DuckWarehouse, connect, open_warehouse, sandbox_config
from states.ports import Limits, QueryError
from tests.warehouse_fixture import HEAVY, TABLES, held_for_writing, make_db


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = make_db(tmp_path_factory.mktemp("wh") / "fund.duckdb")
    before = _sha256(path)
    yield {"path": path, "sha256": before}
    # every test of this module ran against the file: it must be byte-identical
    assert _sha256(path) == before


@pytest.fixture(scope="module")
def wh(db):
    w = DuckWarehouse(db["path"], Limits(query_timeout_s=10, max_rows=1000), docs={})
    yield w
    w.close()


def _small(db, **limits) -> DuckWarehouse:
    """A warehouse of its own for one test: one SQL worker unless the test needs more."""
    return DuckWarehouse(db["path"], Limits(**{"sql_workers": 1, **limits}), docs={})


# ---------------------------------------------------------------------- execute


def test_catalog_read_from_the_file(wh):
    assert set(wh.catalog.tables) == set(TABLES)
    assert "amount_usd" in wh.catalog.tables["investments"].columns
    assert wh.catalog.tables["investments"].columns["amount_usd"].type.startswith("DECIMAL")


def test_execute_returns_plain_python_values(wh):
    res = wh.execute("select company_id, investment_date, amount_usd from investments "
                     "where investment_id = 1")
    assert res.columns == ["company_id", "investment_date", "amount_usd"]
    assert res.rows == [(1, date(2014, 5, 1), Decimal("10000000.00"))]
    assert res.truncated is False
    assert res.elapsed_ms > 0


def test_row_cap_truncates_with_one_extra_row(db):
    with _small(db, max_rows=2) as w:
        res = w.execute("select investment_id from investments order by investment_id")
        assert [r[0] for r in res.rows] == [1, 2] and res.truncated is True
        res = w.execute("select investment_id from investments order by 1 limit 2")
        assert len(res.rows) == 2 and res.truncated is False
    with _small(db, max_rows=6) as w:
        res = w.execute("select investment_id from investments")
        assert len(res.rows) == 6 and res.truncated is False


def test_sandbox_fetches_at_most_cap_plus_one(db):
    # no LIMIT from the guard here: the fetch itself is bounded
    with _small(db, max_rows=3) as w:
        res = w.sandbox_execute("select * from investments")
        assert len(res.rows) == 3 and res.truncated is True


def test_refused_by_guard_keeps_the_sql(wh):
    with pytest.raises(QueryError) as info:
        wh.execute("drop table funds")
    assert info.value.kind == "refused"
    assert info.value.sql == "drop table funds"


# ------------------------------------------------------------------ error kinds


@pytest.mark.parametrize(("sql", "kind"), [
    ("select nope from funds", "binder"),
    ("select * from no_such_table", "binder"),
    ("selec 1", "parse"),
    ("select cast(company_name as integer) from companies", "runtime"),
])
def test_sandbox_error_kinds(wh, sql, kind):
    with pytest.raises(QueryError) as info:
        wh.sandbox_execute(sql)
    assert info.value.kind == kind
    assert "LINE 1" not in info.value.message
    assert info.value.sql == sql


def test_runtime_error_through_the_guard(wh):
    with pytest.raises(QueryError) as info:
        wh.execute("select cast(company_name as integer) from companies")
    assert info.value.kind == "runtime"
    assert "Conversion" in info.value.message


def test_parse_error_through_the_guard(wh):
    with pytest.raises(QueryError) as info:
        wh.execute("select (1")
    assert info.value.kind == "parse"


def test_messages_leak_no_host_paths(db, wh):
    folder = os.path.dirname(db["path"])
    for sql in (f"select * from read_csv('{folder}/secret.csv')",
                f"copy funds to '{folder}/out.csv'", "install httpfs"):
        with pytest.raises(QueryError) as info:
            wh.sandbox_execute(sql)
        assert folder not in info.value.message
        assert os.path.expanduser("~") not in info.value.message
        assert "<path>" in info.value.message


# ---------------------------------------------------------------------- sandbox


@pytest.mark.parametrize("sql", [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from read_blob('/etc/hostname')",
    "select * from glob('/etc/*')",
    "attach '/tmp/fundbot-sandbox-test.duckdb' as x",
    "install httpfs",
    "load httpfs",
])
def test_external_access_is_off(wh, sql):
    with pytest.raises(QueryError) as info:
        wh.sandbox_execute(sql)
    assert info.value.kind == "runtime"
    assert "disabled" in info.value.message


def test_copy_to_writes_nothing(db, wh, tmp_path):
    target = tmp_path / "leak.csv"
    with pytest.raises(QueryError) as info:
        wh.sandbox_execute(f"copy funds to '{target}'")
    assert "disabled by configuration" in info.value.message
    assert not target.exists()
    assert not Path("/tmp/fundbot-sandbox-test.duckdb").exists()


@pytest.mark.parametrize("sql", [
    "set memory_limit = '64GB'",
    "set enable_external_access = true",
    "set lock_configuration = false",
    "set threads = 64",
    "reset memory_limit",
    "set autoload_known_extensions = true",
])
def test_configuration_is_locked(wh, sql):
    with pytest.raises(QueryError) as info:
        wh.sandbox_execute(sql)
    assert "locked" in info.value.message


@pytest.mark.parametrize("sql", [
    "insert into funds values (9, 'x', 2020, 1, 'x', 'x')",
    "update funds set status = 'closed'",
    "delete from investments",
    "create table x (a int)",
    "drop table exits",
    "alter table funds add column x int",
])
def test_file_is_read_only(wh, sql):
    with pytest.raises(QueryError) as info:
        wh.sandbox_execute(sql)
    assert "read-only" in info.value.message
    assert wh.execute("select count(*) from investments").rows == [(6,)]


def _reported(con, names) -> dict[str, str]:
    rows = con.execute("select name, value from duckdb_settings() where name in "
                       f"({', '.join(repr(n) for n in names)})").fetchall()
    return dict(rows)


def test_every_sandbox_setting_is_in_force(tmp_path):
    # every key of sandbox_config(), not a fixed list: a setting added there is checked too.
    # What DuckDB reports for each value ('300MB' reads '286.1 MiB') comes from an in-memory
    # connection given that one setting; the limits differ from DuckDB's defaults, so they
    # cannot pass by being left alone.
    limits = Limits(memory_limit="300MB", threads=1, sql_workers=1)
    config = sandbox_config(limits)
    expected = {}
    for name, value in config.items():
        with duckdb.connect(config={name: value}) as ref:
            expected[name] = _reported(ref, [name])[name]
    with duckdb.connect() as plain:
        defaults = _reported(plain, config)
    assert all(expected[n] != defaults[n] for n in ("memory_limit", "threads"))
    # a file of its own: DuckDB keeps one instance per file in a process, with one config
    with DuckWarehouse(make_db(tmp_path / "fund.duckdb"), limits, docs={}) as w:
        got = dict(w.sandbox_execute(
            "select name, value from duckdb_settings() where name in "
            f"({', '.join(repr(n) for n in config)})").rows)
        locks = dict(w.sandbox_execute(
            "select name, value from duckdb_settings() where name in "
            "('lock_configuration', 'access_mode')").rows)
    assert got == expected
    assert locks == {"lock_configuration": "true", "access_mode": "read_only"}


def test_every_sandbox_setting_exists_in_this_duckdb():
    known = {r[0] for r in duckdb.connect().execute("select name from duckdb_settings()")
             .fetchall()}
    assert set(sandbox_config(Limits())) <= known


# The sandbox as reviewed: what each connection must report, whatever sandbox_config() says.
# Changing a line here is a security review, not a refactor.
REVIEWED_SANDBOX = {
    "enable_external_access": "false",  # no files, COPY, ATTACH, INSTALL/LOAD, http
    "autoload_known_extensions": "false",
    "autoinstall_known_extensions": "false",
    "allow_community_extensions": "false",
    "allow_unsigned_extensions": "false",
    "allow_persistent_secrets": "false",
    "python_enable_replacements": "false",  # no scans of Python variables by name
    "temp_directory": "",  # nothing spilled to disk
    "lock_configuration": "true",  # the SQL cannot SET any of the above back
    "access_mode": "read_only",
}


def test_a_connection_reports_the_reviewed_sandbox(tmp_path):
    con = connect(make_db(tmp_path / "fund.duckdb"), Limits())
    try:
        assert _reported(con, REVIEWED_SANDBOX) == REVIEWED_SANDBOX
    finally:
        con.close()
    # and the reviewed list covers every setting the sandbox makes, but the limits
    assert set(sandbox_config(Limits())) - {"memory_limit", "threads"} <= set(REVIEWED_SANDBOX)


@pytest.mark.parametrize("weakened", [
    {"allow_unsigned_extensions": True},
    {"allow_persistent_secrets": True, "temp_directory": "/tmp"},
    {"enable_external_access": True},
])
def test_a_sandbox_setting_not_in_force_refuses_the_connection(tmp_path, monkeypatch, weakened):
    # as if DuckDB ignored a setting: the check after opening is what catches it
    monkeypatch.setattr(warehouse, "sandbox_config",
                        lambda limits: {**sandbox_config(limits), **weakened})
    path = make_db(tmp_path / "fund.duckdb")
    with pytest.raises(RuntimeError) as info:
        connect(path, Limits())
    assert str(info.value) == f"the DuckDB sandbox is not in force ({', '.join(sorted(weakened))})"
    # and the refused connection is closed: the file opens again with another configuration
    duckdb.connect(path).close()


def test_a_file_locked_by_a_writer_names_the_process(tmp_path):
    path = make_db(tmp_path / "fund.duckdb")
    with held_for_writing(path) as pid, pytest.raises(UnavailableError) as info:
        connect(path, Limits())
    assert str(info.value) == (
        f"the warehouse {path} is locked by another process (PID {pid}) that has it open for "
        "writing; close that program and try again")


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    path = tmp_path / "fund.duckdb"
    path.write_text("name,amount\nStripe,1\n" * 200)
    with pytest.raises(UnavailableError) as info:
        connect(str(path), Limits())
    message = str(info.value)
    assert message.startswith(f"cannot read the warehouse {path}: IO Error: "), message
    assert "not a valid DuckDB database" in message and "\n" not in message


def test_a_file_open_in_this_process_with_other_settings_is_refused(tmp_path):
    path = make_db(tmp_path / "fund.duckdb")
    with duckdb.connect(path, read_only=True), pytest.raises(RuntimeError) as info:
        connect(path, Limits())
    assert str(info.value).startswith(
        "cannot open the warehouse read-only in the sandbox: Connection Error: ")


# ---------------------------------------------------------------------- timeout


def test_timeout_interrupts_a_heavy_query_and_the_worker_survives(db, monkeypatch):
    # DuckDB's interrupt stops HEAVY (minutes of work) at the limit and the warm worker serves
    # the next query. The pool's kill at the limit + GRACE_S is a second bound that would also
    # report a timeout, so the interrupt's own effect is what is checked: the same worker, not
    # replaced. The grace is widened so a loaded machine cannot make the kill win the race;
    # without the interrupt this fails after the 5.5 s kill, not after minutes.
    monkeypatch.setattr(sqlpool, "GRACE_S", 5.0)
    with _small(db, query_timeout_s=0.5, sql_workers=1) as w:
        pids = w.pool.pids()
        for run in (w.execute, w.sandbox_execute):
            with pytest.raises(QueryError) as info:
                run(HEAVY)
            assert info.value.kind == "timeout"
            assert "0.5 s" in info.value.message
            # the cursor is usable again after an interrupt, in the same process
            assert w.execute("select count(*) from funds").rows == [(3,)]
            assert w.pool.pids() == pids and w.pool.replaced == 0


def test_timeout_interrupts_only_the_thread_that_ran_over(db):
    with _small(db, query_timeout_s=0.5, sql_workers=2) as w:
        outcome: dict[str, object] = {}

        def heavy() -> None:
            try:
                w.execute(HEAVY)
                outcome["heavy"] = "finished"
            except QueryError as exc:
                outcome["heavy"] = exc.kind

        t = threading.Thread(target=heavy)
        t.start()
        quick = []
        while t.is_alive() or not quick:  # keep querying while the heavy one runs
            quick.append(w.execute("select count(*) from companies").rows[0][0])
        t.join()
        assert outcome["heavy"] == "timeout"
        assert quick and set(quick) == {4}


def test_concurrent_threads_get_their_own_cursors(wh):
    results: list[int] = []
    errors: list[Exception] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                res = wh.execute(f"select count(*) + {i} from investments")
                results.append(res.rows[0][0] - i)
        except Exception as exc:  # noqa: BLE001 - any failure is the test's finding
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [6] * 80


# -------------------------------------------------------------- open / resolve


def test_open_warehouse_missing_file(tmp_path):
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(FileNotFoundError) as info:
        open_warehouse(str(missing), Limits())
    assert str(info.value) == (f"no warehouse at {missing}: build the sample one with `fundbot "
                               "db init` (or point FUNDBOT_DB at an existing DuckDB file)")
    assert not missing.exists()


def test_open_warehouse_takes_the_docs_it_is_given(sample_copy):
    path = sample_copy
    question = "What did Adam Levin invest in Databricks?"
    with open_warehouse(str(path), Limits(sql_workers=1), docs={}) as own:
        assert own.resolve(question) == ([], [])  # only what the file says: no dictionaries
        assert own.catalog.rules == [] and own.catalog.audience == ""
    with open_warehouse(str(path), Limits(sql_workers=1)) as sample:  # the bundled catalogue
        entities, _ = sample.resolve(question)
        assert sample.catalog.rules and "general partners" in sample.catalog.audience
        assert {e.value for e in entities} >= {"Adam Levin", "Databricks, Inc."}


def test_open_warehouse_opens(db):
    w = open_warehouse(db["path"], Limits(sql_workers=1), docs={})
    try:
        assert w.path == db["path"]
        assert w.execute("select count(*) from exits").rows == [(1,)]
    finally:
        w.close()


def test_close_is_idempotent_and_final(db):
    w = _small(db)
    w.execute("select 1 from funds limit 1")
    w.close()
    w.close()
    with pytest.raises(QueryError):
        w.execute("select 1 from funds limit 1")


def test_resolve_uses_the_value_dictionaries(db):
    from schemas import dictionaries
    spec = [{"kind": "gp", "table": "general_partners", "key": "gp_id", "value": "full_name",
             "aliases": ["first_name", "last_name"]},
            {"kind": "company", "table": "companies", "key": "company_id",
             "value": "company_name"}]
    w = DuckWarehouse(db["path"], Limits(sql_workers=1), docs={"dictionaries": spec})
    try:
        reference = dictionaries.ValueDictionaries.from_connection(w._con, spec)
        for text in ("how much did we put into Stripe with Maria?", "what did Adam lead?"):
            assert w.resolve(text) == reference.resolve(text)
        entities, _ = w.resolve("how much did we put into Stripe?")
        assert "Stripe, Inc." in {e.value for e in entities}  # the spec reached the builder
        first = w._dictionaries
        w.resolve("Stripe")
        assert first is not None and w._dictionaries is first  # built once, then reused
    finally:
        w.close()


def test_file_is_byte_identical(db, wh):
    # the module fixture checks again after every test of this file has run
    wh.execute("select * from investments")
    assert _sha256(db["path"]) == db["sha256"]


def test_a_warehouse_without_value_dictionaries_resolves_nothing(wh):
    # the module's warehouse speaks only for itself (docs={}): no dictionaries to read names from
    assert wh.resolve("What did Adam Levin invest in Databricks?") == ([], [])
