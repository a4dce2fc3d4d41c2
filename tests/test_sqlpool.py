"""The process wall itself: warm workers with OS limits, killed with their process group."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest

from bot.sqlpool import _loads
from bot.sqlworker import HEADROOM, memory_bytes
from bot.warehouse import DuckWarehouse
from states.ports import Limits, QueryError


def _limit(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            return line[len(name):].split()[0]
    raise AssertionError(name)


def _descriptors(pid: int) -> dict[int, str]:
    """What each open descriptor of the process points at."""
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


@pytest.fixture
def wh(sample_copy):
    w = DuckWarehouse(str(sample_copy), Limits(memory_limit="200MB", query_timeout_s=3,
                                        sql_workers=1))
    yield w
    w.close()


def test_queries_run_in_a_worker_with_os_limits(wh):
    assert wh.sandbox_execute("SELECT 1").rows == [(1,)]  # waits for the worker to be ready
    (pid,) = wh.pool.pids()
    assert pid != os.getpid() and os.getpgid(pid) == pid  # its own process group
    address_space = int(_limit(pid, "Max address space"))
    assert memory_bytes("200MB") + HEADROOM < address_space < 8 * 2**30
    cpu = int(_limit(pid, "Max cpu time"))  # reset before every query
    assert cpu < 3600
    assert _limit(pid, "Max file size") == "0" and int(_limit(pid, "Max open files")) <= 64
    limits = {ln[:26].strip(): ln[26:].split()[:2]
              for ln in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]}
    assert limits["Max file size"] == ["0", "0"] and limits["Max core file size"] == ["0", "0"]
    # the guard runs in the worker for what the caller did not vouch for
    with pytest.raises(QueryError) as info:
        wh.execute("SELECT * FROM duckdb_settings()")
    assert info.value.kind == "refused"
    assert wh.sandbox_execute("SELECT count(*) FROM duckdb_settings()").rows[0][0] > 10


def test_sessions_do_not_leak_between_queries(wh):
    wh.sandbox_execute("CREATE TEMP TABLE mine AS SELECT 42 AS x")
    with pytest.raises(QueryError) as info:
        wh.sandbox_execute("SELECT x FROM mine")
    assert info.value.kind == "binder"


def test_close_kills_the_workers(wh):
    wh.execute("SELECT count(*) FROM funds")
    pids = wh.pool.pids()
    wh.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_reply_cannot_name_code():
    assert _loads(pickle.dumps(("ok", ["a"], [(1, "x")], False, 1.0)))[0] == "ok"
    with pytest.raises(pickle.UnpicklingError, match=r"may not hold (posix|os)\.system"):
        _loads(pickle.dumps(("ok", os.system)))


def test_a_worker_killed_from_outside_is_replaced_and_a_failed_start_is_one_line(wh):
    wh.execute("SELECT count(*) FROM funds")
    (pid,) = wh.pool.pids()
    os.kill(pid, signal.SIGKILL)  # what the kernel's OOM killer would do
    with pytest.raises(QueryError) as info:
        wh.execute("SELECT count(*) FROM funds")
    assert info.value.kind == "runtime" and "memory limit" in info.value.message
    Path(wh.path).rename(wh.path + ".gone")  # the replacement cannot open the file
    with pytest.raises(QueryError) as info:
        wh.execute("SELECT count(*) FROM funds")
    assert info.value.message == ("the SQL worker could not start; the query was not run "
                                  "(see the bot's log)")
    Path(wh.path + ".gone").rename(wh.path)
    assert wh.execute("SELECT count(*) FROM funds").rows == [(8,)]  # the next one starts
    assert wh.pool.replaced == 2  # the killed worker, then the one that could not start


def test_workers_inherit_no_secrets(sample_copy, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-worker-must-not-see-this")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-worker-must-not-see-this")
    with DuckWarehouse(str(sample_copy), Limits(sql_workers=1)) as w:
        w.execute("SELECT count(*) FROM funds")
        (pid,) = w.pool.pids()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"must-not-see-this" not in environ and b"PATH=" in environ


def test_fundbot_worker_env_passes_named_variables_but_never_secrets(monkeypatch):
    from bot.sqlpool import worker_environment

    # (not MUTANT_UNDER_TEST itself: mutation testing sets it, and a test must not change it)
    monkeypatch.setenv("COVERAGE_PROCESS_START", "/tmp/cov.ini")
    monkeypatch.setenv("PROBE_FOR_WORKERS", "probe")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("FUNDBOT_STATE", "postgresql://u:pw@h/db")
    monkeypatch.setenv("MY_DB_PASSWORD", "pw")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp")
    monkeypatch.setenv("UNNAMED", "not asked for")
    monkeypatch.delenv("FUNDBOT_WORKER_ENV", raising=False)
    assert "PROBE_FOR_WORKERS" not in worker_environment()  # only what is named passes
    monkeypatch.setenv("FUNDBOT_WORKER_ENV", " COVERAGE_PROCESS_START, PROBE_FOR_WORKERS,,"
                       "OPENAI_API_KEY,FUNDBOT_STATE,MY_DB_PASSWORD,github_token")
    env = worker_environment()
    assert env["COVERAGE_PROCESS_START"] == "/tmp/cov.ini" and env["PROBE_FOR_WORKERS"] == "probe"
    assert not {"OPENAI_API_KEY", "FUNDBOT_STATE", "MY_DB_PASSWORD", "GITHUB_TOKEN",
                "UNNAMED", "FUNDBOT_WORKER_ENV"} & set(env)
    assert env["PATH"] == os.environ["PATH"]
    monkeypatch.setenv("FUNDBOT_WORKER_ENV", "PROBE_FOR_WORKERS")  # one name, no comma
    assert worker_environment()["PROBE_FOR_WORKERS"] == "probe"


def test_a_worker_holds_only_its_socket_and_writes_nowhere_we_read(wh):
    wh.execute("SELECT count(*) FROM funds")
    (pid,) = wh.pool.pids()
    fds = _descriptors(pid)
    assert [fds[0], fds[1], fds[2]] == ["/dev/null"] * 3  # no terminal, no log of ours
    sockets = [t for t in fds.values() if t.startswith("socket:")]
    assert len(sockets) == 1  # its end of the pair; none of the bot's descriptors leaked in
    assert not [t for t in fds.values() if t.startswith("pipe:")]


def test_how_a_worker_died_is_told_to_the_user(wh, caplog):
    from bot.sqlpool import WorkerDied, memory_message, timeout_message

    pool, limits, sql = wh.pool, wh.limits, "SELECT 1"

    def told(died: WorkerDied) -> tuple:
        err = pool._died(died, sql)
        return err.kind, err.message, err.sql

    assert told(WorkerDied(-9, killed=True)) == ("timeout", timeout_message(limits), sql)
    assert told(WorkerDied(-signal.SIGXCPU, killed=False)) == (
        "timeout", timeout_message(limits), sql)
    assert told(WorkerDied(-signal.SIGKILL, killed=False)) == (
        "runtime", memory_message(limits), sql)
    assert told(WorkerDied(signal.SIGXCPU, killed=False)) == (
        "runtime", memory_message(limits), sql)
    assert told(WorkerDied(0, killed=False, bad_reply=True)) == (
        "runtime", "the result holds a value of a type fundbot does not pass on; cast that "
        "column to VARCHAR", sql)
    caplog.set_level("ERROR", logger="bot.sqlpool")
    assert told(WorkerDied(3, killed=False, starting=True)) == (
        "runtime", "the SQL worker could not start; the query was not run (see the bot's log)",
        sql)
    assert caplog.messages == ["an SQL worker could not start (exit status 3)"]
    pool.close()
    assert told(WorkerDied(-9, killed=True)) == ("runtime", "the warehouse is closed", sql)
    with pytest.raises(QueryError) as info:  # closed while a query waited for a worker
        pool.run(sql, guarded=True)
    assert (info.value.kind, info.value.message) == ("runtime", "the warehouse is closed")


def test_a_worker_past_its_cpu_limit_is_a_timeout_and_is_replaced(wh):
    wh.execute("SELECT count(*) FROM funds")
    (pid,) = wh.pool.pids()
    os.kill(pid, signal.SIGXCPU)  # what the kernel sends at RLIMIT_CPU
    with pytest.raises(QueryError) as info:
        wh.execute("SELECT count(*) FROM funds")
    assert info.value.kind == "timeout" and info.value.sql == "SELECT count(*) FROM funds"
    assert wh.execute("SELECT count(*) FROM funds").rows == [(8,)]


def test_a_closed_warehouse_and_sql_that_is_not_text_are_clear_errors(sample_copy):
    w = DuckWarehouse(str(sample_copy), Limits(sql_workers=1))
    with pytest.raises(QueryError) as info:
        w.execute(123)  # type: ignore[arg-type]
    assert (info.value.kind, info.value.message, info.value.sql) == (
        "parse", "the SQL must be text", "123")
    w.close()
    with pytest.raises(QueryError) as info:
        w.execute("SELECT 1")
    assert (info.value.kind, info.value.message, info.value.sql) == (
        "runtime", "the warehouse is closed", "SELECT 1")


def test_a_worker_that_dies_while_starting_is_one_line_and_logged(sample_copy, caplog):
    caplog.set_level("ERROR", logger="bot.sqlpool")
    with DuckWarehouse(str(sample_copy), Limits(sql_workers=1)) as w:
        (pid,) = w.pool.pids()
        os.kill(pid, signal.SIGKILL)  # before it could say it is ready
        with pytest.raises(QueryError) as info:
            w.execute("SELECT count(*) FROM funds")
        assert (info.value.kind, info.value.message) == (
            "runtime", "the SQL worker could not start; the query was not run (see the bot's "
            "log)")
        assert caplog.messages == ["an SQL worker could not start (exit status -9)"]
        assert w.execute("SELECT count(*) FROM funds").rows == [(8,)]  # a new one started


@pytest.mark.parametrize("folder", ["short", "w" * 230])
def test_a_worker_that_cannot_open_the_warehouse_says_why_in_the_log(sample_db, tmp_path, caplog,
                                                                     folder):
    import shutil

    path = tmp_path / folder / "fund.duckdb"
    path.parent.mkdir()
    shutil.copyfile(sample_db, path)
    caplog.set_level("ERROR", logger="bot.sqlpool")
    with DuckWarehouse(str(path), Limits(sql_workers=1)) as w:
        w.execute("SELECT 1")
        (pid,) = w.pool.pids()
        path.rename(path.with_name("moved.duckdb"))  # the replacement cannot open it
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(QueryError):
            w.execute("SELECT 1")  # the killed worker's query
        with pytest.raises(QueryError) as info:
            w.execute("SELECT 1")
        assert info.value.message.startswith("the SQL worker could not start")
    prefix = "an SQL worker could not open the warehouse: "
    (reason,) = [m.removeprefix(prefix) for m in caplog.messages if m.startswith(prefix)]
    # the exception's type and text, cut at 500 characters (the long folder's path is in the
    # message twice)
    assert reason.startswith(f"UnavailableError: cannot read the warehouse {path}: "), reason
    assert len(reason) == 500 if len(folder) > 200 else len(reason) < 500


def test_a_worker_that_does_not_answer_by_the_deadline_is_killed_as_a_timeout(sample_copy):
    from bot.sqlpool import timeout_message

    limits = Limits(sql_workers=1, query_timeout_s=0.5)
    with DuckWarehouse(str(sample_copy), limits) as w:
        w.execute("SELECT 1")
        (pid,) = w.pool.pids()
        assert w.pool.address_spaces() == [int(_limit(pid, "Max address space"))]
        os.kill(pid, signal.SIGSTOP)  # it can never answer now
        with pytest.raises(QueryError) as info:
            w.execute("SELECT count(*) FROM funds")
        assert (info.value.kind, info.value.message) == ("timeout", timeout_message(limits))
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed, with its process group
        assert w.execute("SELECT count(*) FROM funds").rows == [(8,)] and w.pool.replaced == 1


def _stand_in_worker():
    """The pool's Worker on a real socket pair and a real process that never answers: the test
    speaks for the worker on the other end (returned with it)."""
    import subprocess
    import sys
    from multiprocessing.connection import Pipe

    from bot.sqlpool import Worker

    ours, theirs = Pipe(duplex=True)
    worker = Worker.__new__(Worker)  # its real socket and process, not the SQL worker's
    worker.conn, worker.ready = ours, True
    worker.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                   start_new_session=True)
    return worker, theirs


@pytest.mark.parametrize("reply, reason", [
    (("ok", ["n"], [(1,)], False), "a reply of the wrong shape"),  # one field short
    (("done", 1, 2, 3, 4), "a reply of the wrong shape"),
    ((), "a reply of the wrong shape"),
    (["ok", ["n"], [(1,)], False, 1.0], "a reply of the wrong shape"),  # not a tuple
    (("ok", ["n"], [(os.system,)], False, 1.0), "a worker reply may not hold"),
])
def test_a_reply_that_is_not_one_we_accept_ends_the_worker(reply, reason, caplog):
    """The pool's end of the wire against a stand-in worker process that says the wrong thing."""
    from bot.sqlpool import WorkerDied

    worker, theirs = _stand_in_worker()
    theirs.send_bytes(pickle.dumps(reply))
    caplog.set_level("WARNING", logger="bot.sqlpool")
    with pytest.raises(WorkerDied) as info:
        worker._receive(30, 2**20)
    assert info.value.bad_reply is True and info.value.killed is False
    assert caplog.messages[0].startswith(f"an SQL worker's reply was refused: {reason}")
    assert info.value.returncode == worker.proc.returncode == -signal.SIGKILL  # killed


def test_a_reply_past_its_size_limit_or_a_silent_worker_ends_it(caplog):
    from bot.sqlpool import WorkerDied

    for send, timeout, killed in ((b"x" * 2048, 30, False), (None, 0.2, True)):
        worker, theirs = _stand_in_worker()
        if send is not None:
            theirs.send_bytes(send)
        with pytest.raises(WorkerDied) as info:
            worker._receive(timeout, 1024)
        assert (info.value.killed, info.value.bad_reply) == (killed, False)
        assert info.value.returncode == worker.proc.returncode == -signal.SIGKILL


def test_when_no_worker_can_be_started_the_query_says_so_and_the_pool_recovers(
        sample_copy, tmp_path, monkeypatch, caplog):
    import sys

    caplog.set_level("ERROR", logger="bot.sqlpool")
    with DuckWarehouse(str(sample_copy), Limits(sql_workers=1)) as w:
        w.execute("SELECT 1")
        (pid,) = w.pool.pids()
        # out of processes, as far as the pool can tell: no interpreter to start
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(QueryError):
            w.execute("SELECT 1")  # the killed worker's query; its replacement fails to start
        with pytest.raises(QueryError) as info:
            w.execute("SELECT 1")  # no worker left: one is started for it, and fails
        assert (info.value.kind, info.value.message) == (
            "runtime", "the SQL worker could not start; the query was not run (see the bot's "
            "log)")
        # once when the dead worker's replacement failed, once when this query's did
        missing = f"[Errno 2] No such file or directory: '{tmp_path / 'no-python'}'"
        assert caplog.messages == [f"cannot start an SQL worker: {missing}"] * 2
        monkeypatch.undo()
        assert w.execute("SELECT count(*) FROM funds").rows == [(8,)]  # started again
        assert len(w.pool.pids()) == 1


def test_a_worker_out_of_memory_is_replaced_before_the_next_query(sample_copy):
    # DuckDB's own memory limit stops the query; the worker is alive but its heap suspect
    from bot.sqlpool import memory_message

    limits = Limits(memory_limit="64MB", sql_workers=1)
    big = ("SELECT count(DISTINCT x) FROM (SELECT range::VARCHAR || 'abcdefghijabcdefghij' "
           "AS x FROM range(5000000))")
    with DuckWarehouse(str(sample_copy), limits) as w:
        w.execute("SELECT 1")
        for n in (1, 2):
            (before,) = w.pool.pids()
            with pytest.raises(QueryError) as info:
                w.sandbox_execute(big)
            assert (info.value.kind, info.value.message) == ("runtime", memory_message(limits))
            with pytest.raises(ProcessLookupError):
                os.kill(before, 0)
            assert w.pool.replaced == n
        assert w.execute("SELECT count(*) FROM funds").rows == [(8,)]


def test_the_pool_never_holds_more_workers_than_its_size(tmp_path):
    # three queries at once on a pool of one: two wait for the worker, none starts another
    import threading

    from bot.sqlpool import timeout_message
    from tests.warehouse_fixture import HEAVY, make_db

    limits = Limits(sql_workers=1, query_timeout_s=0.3)
    # the small file: on the sample warehouse HEAVY may fill the memory limit before 0.3 s
    with DuckWarehouse(make_db(tmp_path / "fund.duckdb"), limits, docs={}) as w:
        w.execute("SELECT 1")
        kinds: list[str] = []

        def one() -> None:
            try:
                w.sandbox_execute(HEAVY)
            except QueryError as exc:
                kinds.append(f"{exc.kind}: {exc.message}")

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert kinds == [f"timeout: {timeout_message(limits)}"] * 3, kinds
        assert len(w.pool.pids()) == 1


def test_a_worker_that_never_says_it_is_ready_is_killed_at_the_start_deadline(
        sample_copy, monkeypatch, caplog):
    from bot import sqlpool

    monkeypatch.setattr(sqlpool, "STARTUP_S", 0.5)  # not two minutes, for the test
    caplog.set_level("ERROR", logger="bot.sqlpool")
    with DuckWarehouse(str(sample_copy), Limits(sql_workers=1)) as w:
        (pid,) = w.pool.pids()
        os.kill(pid, signal.SIGSTOP)  # still starting: it will never answer
        with pytest.raises(QueryError) as info:
            w.execute("SELECT 1")
        assert info.value.message.startswith("the SQL worker could not start")
        assert caplog.messages == ["an SQL worker could not start (exit status -9)"]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("first, logged", [
    (("failed", "IOException: cannot open fund.duckdb"),
     ["an SQL worker could not open the warehouse: IOException: cannot open fund.duckdb"]),
    (("ok", ["n"], [(1,)], False, 1.0), []),  # an answer before it was asked: not ready
])
def test_a_worker_whose_first_word_is_not_ready_is_killed(first, logged, caplog):
    from bot.sqlpool import WorkerDied

    worker, theirs = _stand_in_worker()
    worker.ready = False
    theirs.send_bytes(pickle.dumps(first))
    caplog.set_level("WARNING", logger="bot.sqlpool")
    with pytest.raises(WorkerDied) as info:
        worker.request("SELECT 1", True, 30, 2**20)
    died = info.value
    assert (died.starting, died.killed, died.bad_reply) == (True, False, False)
    assert died.returncode == -signal.SIGKILL and str(died) == "worker ended (-9)"
    assert caplog.messages == logged and not worker.ready


def test_a_request_to_a_worker_that_has_gone_or_says_too_much_ends_it():
    from bot.sqlpool import WorkerDied

    worker, theirs = _stand_in_worker()
    theirs.close()  # its end of the socket is gone: the request cannot be sent
    with pytest.raises(WorkerDied) as info:
        worker.request("SELECT 1", True, 30, 2**20)
    assert (info.value.killed, info.value.bad_reply, info.value.returncode) == (
        False, False, -signal.SIGKILL)

    worker, theirs = _stand_in_worker()
    theirs.send_bytes(pickle.dumps(("ok", ["s"], [("x" * 2048,)], False, 1.0)))
    with pytest.raises(WorkerDied) as info:  # longer than the request's limit: not read
        worker.request("SELECT 1", True, 30, 1024)
    assert (info.value.killed, info.value.bad_reply) == (False, False)
    assert worker.proc.returncode == -signal.SIGKILL


def test_a_reply_may_take_four_times_the_result_limit_and_a_mebibyte():
    from bot.sqlpool import reply_limit

    assert reply_limit(Limits(max_result_bytes=1000)) == 4000 + 2**20
    assert reply_limit(Limits()) == 40_000_000 + 2**20


def test_a_worker_inherits_neither_the_bots_stdin_nor_its_inheritable_descriptors(sample_copy):
    # pytest gives the test process /dev/null as stdin; a bot started from a terminal or a
    # pipe has more, and an inheritable descriptor some library opened
    saved = os.dup(0)
    stdin_r, stdin_w = os.pipe()
    extra_r, extra_w = os.pipe()
    os.set_inheritable(extra_r, True)
    try:
        os.dup2(stdin_r, 0)
        with DuckWarehouse(str(sample_copy), Limits(sql_workers=1)) as w:
            w.execute("SELECT 1")
            (pid,) = w.pool.pids()
            fds = list(_descriptors(pid).values())
    finally:
        os.dup2(saved, 0)
        for fd in (saved, stdin_r, stdin_w, extra_r, extra_w):
            os.close(fd)
    assert fds.count("/dev/null") == 3
    assert not [t for t in fds if t.startswith("pipe:")], fds
