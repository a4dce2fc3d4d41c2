"""Crashes: a process killed (SIGKILL) in the middle of execute, debug or interpret, and two
processes answering at once on one store file.

Each turn runs in a real child process (bot.runtime.build_deps from the environment, the real
OpenAIChat against FakeOpenAI in this process, DuckDB, SqliteStore). After the kill a new
process on the same files answers the next message in the thread; stored turns and feedback
are intact, the SQLite file passes its integrity check, and the partial trace says where the
turn stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.store import SqliteStore, open_store
from states.machine import TRANSITIONS
from tests.fakes import fake_openai as fo
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import FakeSlack, SlackSender
from tests.replica import Replica

ROOT = Path(__file__).resolve().parent.parent
GOOD_SQL = "SELECT count(*) AS companies FROM companies"
NEXT_SQL = "SELECT count(*) AS funds FROM funds"
SLOW_SQL = "SELECT count(*) AS n FROM valuations a, valuations b, valuations c"  # minutes
BAD_SQL = "SELECT nope FROM companies"  # refused: the turn goes to debug

# One child script, three modes: one turn; the next message in several threads; a busy worker.
CHILD = r"""
import json, sys
from bot.config import load_config
from bot.runtime import build_deps
from states.machine import run_turn

mode, args = sys.argv[1], sys.argv[2:]
deps = build_deps(load_config(dotenv=False))
if mode == "turn":
    thread, text = args
    r = run_turn(deps, thread, text, user="U1")
    print(json.dumps({"thread": thread, "state": r.state, "trace_id": r.trace_id}), flush=True)
elif mode == "next":
    for thread in args:
        r = run_turn(deps, thread, "And how many funds are there?", user="U1")
        print(json.dumps({"thread": thread, "state": r.state, "answer": r.answer,
                          "rows": [list(x) for x in r.rows]}), flush=True)
elif mode == "busy":
    prefix, turns = args[0], int(args[1])
    for i in range(turns):
        thread = f"{prefix}-{i % 5}"
        r = run_turn(deps, thread, f"How many portfolio companies do we have? ({i})", user="U1")
        deps.store.save_feedback(r.trace_id, "U1", 1)
        won = deps.store.claim_event(f"ev-{i}")
        print(json.dumps({"thread": thread, "state": r.state, "trace_id": r.trace_id,
                          "won": won}), flush=True)
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def env(sample_db, tmp_path) -> Iterator[dict]:
    """Files and a fake endpoint shared by this test's processes."""
    db = tmp_path / "fund.duckdb"
    shutil.copyfile(sample_db, db)
    with FakeOpenAI() as fake:
        yield {
            "fake": fake, "db": db, "state": tmp_path / "state.sqlite3",
            "vars": {**{k: v for k, v in os.environ.items()
                        if not k.startswith(("FUNDBOT_", "OPENAI_", "SLACK_"))},
                     "PYTHONPATH": str(ROOT), "FUNDBOT_DB": str(db),
                     "FUNDBOT_STATE": str(tmp_path / "state.sqlite3"),
                     "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-crash-test-key",
                     "FUNDBOT_MODEL": "fake-model", "FUNDBOT_TODAY": "2026-10-15",
                     "FUNDBOT_LLM_RETRIES": "0", "FUNDBOT_LLM_TIMEOUT_S": "60",
                     "FUNDBOT_QUERY_TIMEOUT_S": "120"},
        }


def child(env: dict, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, *argv], cwd=ROOT, env=env["vars"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 60) -> list[dict]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended early: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, "the child never reached the point to kill it at"
        time.sleep(0.02)


def read_db(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def partial_trace_steps(path: Path, thread: str) -> list[dict] | None:
    """The steps of the thread's unfinished trace, as another process sees them."""
    for (data,) in read_db(path, "SELECT data FROM traces WHERE thread_id = "
                                 f"'{thread}' ORDER BY created_at"):
        trace = json.loads(data)
        if not trace["final_state"]:
            return trace["steps"]
    return None


def stopped_in(steps: list[dict]) -> str:
    """The state the machine was in: the destination of the last recorded step's event."""
    last = steps[-1]
    return next(dst.value for trig, src, dst, _ in TRANSITIONS
                if trig == last["event"] and src.value == last["state"])


# Where to kill, and how the fake model keeps the child there.
STAGES = {
    # a query that runs for minutes; the step of understand is saved when execute starts
    "execute": ([fo.tool_call(SLOW_SQL)], lambda requests, steps: bool(steps)),
    # the model takes its time repairing a refused query
    "debug": ([fo.tool_call(BAD_SQL), fo.text("late", delay=60)],
              lambda requests, steps: len(requests) >= 2),
    # the model takes its time summarising
    "interpret": ([fo.tool_call(GOOD_SQL), fo.text("late", delay=60)],
                  lambda requests, steps: len(requests) >= 2),
}


def test_sigkill_in_execute_debug_interpret_then_restart(env):
    fake, state = env["fake"], env["state"]
    warehouse_sha = sha256(env["db"])
    # earlier turns and feedback in each thread, stored before anything crashes
    threads = {stage: f"C1:crash-{stage}" for stage in STAGES}
    for _ in threads.values():
        fake.enqueue(fo.tool_call(GOOD_SQL)).enqueue(fo.text("We hold 400 companies."))
    first = finish(child(env, "next", *threads.values()))  # plain turns, one per thread
    assert [r["state"] for r in first] == ["answered"] * 3
    store = SqliteStore(state)
    for r in first:
        trace_id = store.load(r["thread"]).history[-1].trace_id
        store.save_feedback(trace_id, "U7", "up", comment=f"good {r['thread']}")
    store.close()
    before_conv = read_db(state, "SELECT thread_id, data, version FROM conversations ORDER BY 1")
    before_feedback = read_db(state, "SELECT trace_id, user, value, comment FROM feedback "
                                     "ORDER BY 1")

    for stage, (replies, reached) in STAGES.items():
        thread = threads[stage]
        served = len(fake.chat_requests)
        for reply in replies:
            fake.enqueue(reply)
        proc = child(env, "turn", thread, "How many portfolio companies do we have?")
        wait_for(lambda reached=reached, thread=thread, served=served: reached(
            fake.chat_requests[served:], partial_trace_steps(state, thread) or []), proc)
        # inside the slow step now: the request that takes minutes has reached the model
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        steps = partial_trace_steps(state, thread)
        assert steps, f"no partial trace after a kill in {stage}"
        assert stopped_in(steps) == stage, steps
        assert fake.pending == 0

    # after the crashes: nothing lost, nothing half-written
    assert read_db(state, "PRAGMA integrity_check") == [("ok",)]
    assert read_db(state, "SELECT thread_id, data, version FROM conversations ORDER BY 1") \
        == before_conv
    assert read_db(state, "SELECT trace_id, user, value, comment FROM feedback ORDER BY 1") \
        == before_feedback
    assert sha256(env["db"]) == warehouse_sha
    store = SqliteStore(state)
    for thread in threads.values():
        conv = store.load(thread)
        assert conv.status == "idle" and conv.pending is None  # not stuck
        assert len(conv.history) == 1 and conv.history[0].state == "answered"
    store.close()

    # a new process answers the next message in every thread
    for _ in threads:
        fake.enqueue(fo.tool_call(NEXT_SQL)).enqueue(fo.text("There are 8 funds."))
    after = finish(child(env, "next", *threads.values()))
    assert [(r["state"], r["answer"], r["rows"]) for r in after] == \
        [("answered", "There are 8 funds.", [[8]])] * 3
    store = SqliteStore(state)
    for thread in threads.values():
        conv = store.load(thread)
        assert [t.state for t in conv.history] == ["answered", "answered"]
        finals = [t.final_state for t in store.traces_for(thread)]
        assert sorted(finals) == ["", "answered", "answered"]  # the crashed turn's trail kept
    store.close()
    assert read_db(state, "PRAGMA integrity_check") == [("ok",)]


def answer_everything(body: dict) -> fo.Reply:
    """The fake model for concurrent processes: a query when offered the tool, else prose."""
    if body.get("tools"):
        return fo.tool_call(GOOD_SQL)
    return fo.text("We hold 400 companies.")


def test_two_processes_answering_at_once_share_one_store(env):
    fake, state = env["fake"], env["state"]
    fake.responder = answer_everything
    SqliteStore(state).close()  # the schema exists before the race, as in production
    turns = 12
    procs = [child(env, "busy", f"C{n}:t", str(turns)) for n in (1, 2)]
    results = [finish(p, timeout=120) for p in procs]
    assert all(len(r) == turns for r in results)
    assert all(x["state"] == "answered" for r in results for x in r)
    assert read_db(state, "PRAGMA integrity_check") == [("ok",)]
    assert read_db(state, "SELECT count(*) FROM traces") == [(2 * turns,)]
    assert read_db(state, "SELECT count(*) FROM feedback") == [(2 * turns,)]
    # each event id claimed by exactly one of the two processes
    won = [x for r in results for x in r if x["won"]]
    assert len(won) == turns and read_db(state, "SELECT count(*) FROM events") == [(turns,)]
    store = SqliteStore(state)
    for n in (1, 2):
        for i in range(5):
            conv = store.load(f"C{n}:t-{i}")
            expected = len(range(i, turns, 5))
            assert conv.status == "idle" and len(conv.history) == expected
    store.close()


WRITER = r"""
import sys
from bot.store import SqliteStore
from states.ports import Conversation, Trace, Turn
store = SqliteStore(sys.argv[1])
print("go", flush=True)
i = 0
while True:
    conv = store.load(f"w-{i % 7}")
    conv.history.append(Turn(question="q" * 2000, state="answered", answer="a" * 4000))
    store.save(conv)
    store.save_trace(Trace(trace_id=f"t{i}", thread_id=f"w-{i % 7}", question="q",
                           started_at="2026-01-01T00:00:00", final_state="answered"))
    i += 1
"""


def test_sigkill_while_writing_leaves_no_half_written_row(tmp_path):
    path = tmp_path / "state.sqlite3"
    SqliteStore(path).close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    # killed with writes in flight: once a few dozen conversations are stored
    wait_for(lambda: len(read_db(path, "SELECT thread_id FROM conversations")) >= 7
             and read_db(path, "SELECT count(*) FROM traces")[0][0] >= 50, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert read_db(path, "PRAGMA integrity_check") == [("ok",)]
    store = SqliteStore(path)
    try:
        rows = read_db(path, "SELECT thread_id, version FROM conversations")
        assert rows, "the writer wrote nothing before it was killed"
        for thread, version in rows:  # every row parses, and holds every turn it counted
            conv = store.load(thread)
            assert len(conv.history) == version and conv.version == version
        assert store.traces_for("w-0")
    finally:
        store.close()


def answer_slowly(body: dict) -> fo.Reply:
    """As answer_everything, with a pause: two processes' turns of one thread overlap."""
    if body.get("tools"):
        return fo.tool_call(GOOD_SQL, delay=0.05)
    return fo.text("We hold 400 companies.", delay=0.05)


def test_two_processes_answering_in_the_same_threads_keep_every_turn(env):
    """Issue 10: the later save used to win a thread's history (a turn lost in 20 of 20
    rounds). The store's turn lock now holds each thread from load to final save."""
    fake, state = env["fake"], env["state"]
    fake.responder = answer_slowly
    SqliteStore(state).close()
    turns = 10  # per process, over 5 threads both processes share
    procs = [child(env, "busy", "C0:shared", str(turns)) for _ in (1, 2)]
    results = [finish(p, timeout=120) for p in procs]
    assert all(x["state"] == "answered" for r in results for x in r)
    store = SqliteStore(state)
    try:
        for i in range(5):
            history = store.load(f"C0:shared-{i}").history
            assert len(history) == 2 * len(range(i, turns, 5)), f"thread {i} lost a turn"
            assert len({t.trace_id for t in history}) == len(history)
    finally:
        store.close()


# ------------------------------------------- several `fundbot slack` processes, one store

BOT_TOKEN, SECRET = "xoxb-replica-test", "replica-test-signing-secret"
TAG = re.compile(r"Q\d{3}")


def tagged_answers(body: dict, delay: float = 0.0) -> fo.Reply:
    """The fake model for the replica tests: the answer names the question it answers."""
    if body.get("tools"):
        return fo.tool_call(GOOD_SQL)
    first_line = body["messages"][-1]["content"].split("\n", 1)[0]
    match = TAG.search(first_line)
    return fo.text(f"Answer to {match.group(0) if match else 'nothing'}.", delay=delay)


@pytest.fixture
def replicas_env(sample_db, pg_url, tmp_path) -> Iterator[dict]:
    with FakeSlack(token=BOT_TOKEN) as slack:
        yield {
            "slack": slack, "store": pg_url,
            "vars": {**{k: v for k, v in os.environ.items()
                        if not k.startswith(("FUNDBOT_", "OPENAI_", "SLACK_"))},
                     "FUNDBOT_ENV_FILE": str(tmp_path / "none.env"), "FUNDBOT_DB": sample_db,
                     "FUNDBOT_STATE": pg_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
                     "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
                     "OPENAI_API_KEY": "sk-replica-test", "FUNDBOT_MODEL": "fake-model",
                     "FUNDBOT_TODAY": "2026-10-15", "FUNDBOT_LLM_RETRIES": "0",
                     "FUNDBOT_WORKERS": "4", "FUNDBOT_INBOX_LEASE_S": "3"},
        }


def deliver_load(replicas: list[Replica], rounds: int = 5, threads: int = 20,
                 between: Callable[[int], None] = lambda n: None) -> dict[str, list[str]]:
    """`threads` new threads, then `rounds - 1` follow-ups in each, every delivery signed and
    posted to a live replica chosen at random (another one if it is down, as a load balancer
    would); every tenth is also retried to the other replicas, as Slack retries. Returns each
    thread root's question tags in delivery order."""
    rng = random.Random(14)
    order: dict[str, list[str]] = {}
    roots: list[str] = []
    n = 0
    for r in range(rounds):
        for t in range(threads):
            tag = f"Q{n:03d}"
            sender_for = [x for x in replicas if x.alive]
            rng.shuffle(sender_for)
            thread_ts = roots[t] if r else None
            payload = None
            for replica in sender_for:
                sender = SlackSender(f"http://127.0.0.1:{replica.port}/slack/events", SECRET)
                payload = payload or sender.mention("C1", "U1", f"{tag}: how many companies?",
                                                    ts=f"{1_800_000_000 + n}.000100",
                                                    thread_ts=thread_ts)
                try:
                    if sender.post(payload).status == 200:
                        break
                except OSError:
                    continue  # that replica just died: the next one gets it
            else:
                raise AssertionError(f"no replica acknowledged {tag}")
            if n % 10 == 3:  # Slack retries some deliveries, and they reach another replica
                for other in [x for x in replicas if x.alive and x is not replica]:
                    other_url = f"http://127.0.0.1:{other.port}/slack/events"
                    try:
                        SlackSender(other_url, SECRET).post(payload, retry_num=1)
                    except OSError:
                        pass  # down just now: Slack would try again later
            if not r:
                roots.append(payload["event"]["ts"])
            order.setdefault(roots[t], []).append(tag)
            between(n)
            n += 1
    return order


def check_answered_once_in_order(slack: FakeSlack, store_url: str,
                                 order: dict[str, list[str]], timeout: float = 180) -> None:
    def answered() -> dict[str, int]:
        counts: dict[str, int] = {}
        for root in order:
            for message in slack.bot_replies("C1", root):
                for tag in set(TAG.findall(json.dumps(message.get("blocks")) + message["text"])):
                    counts[tag] = counts.get(tag, 0) + 1
        return counts
    everything = {tag for tags in order.values() for tag in tags}
    try:
        slack.wait_for(lambda: set(answered()) >= everything, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"never answered: {sorted(everything - set(answered()))}"
                             ) from None
    # every delivery finished in the durable inbox: no process will post for it again
    probe = open_store(store_url)
    try:
        slack.wait_for(lambda: probe.inbox_counts() == {"queued": 0, "leased": 0},
                       timeout=timeout)
    finally:
        probe.close()
    counts = answered()
    twice = {tag: n for tag, n in counts.items() if n != 1}
    assert twice == {}, f"answered more than once: {twice}"
    store = open_store(store_url)
    try:
        for root, tags in order.items():
            history = [TAG.search(t.question).group(0) for t in store.load(f"C1:{root}").history]
            assert history == tags, f"thread {root}: turns out of delivery order"
            left = [m["text"] for m in slack.bot_replies("C1", root)
                    if m["text"].startswith(":hourglass")]
            assert left == [], "a placeholder was left behind"
        assert store.inbox_counts() == {"queued": 0, "leased": 0}
    finally:
        store.close()


def test_two_replicas_on_one_postgres_answer_100_mentions_once_in_order(replicas_env):
    slack = replicas_env["slack"]
    with FakeOpenAI(responder=tagged_answers) as llm:
        replicas = [Replica(replicas_env["vars"], llm.base_url).start() for _ in (1, 2)]
        try:
            order = deliver_load(replicas)
            check_answered_once_in_order(slack, replicas_env["store"], order)
        finally:
            errors = [r.stop() for r in replicas]
        assert all(r.proc.returncode == 0 for r in replicas), errors
        assert all("Traceback" not in e for e in errors), errors
    # both replicas worked: each posted placeholders (the emulator cannot tell them apart, so
    # the fake model's connections tell: two processes called it)
    assert len(llm.requests) == 200


def test_sigkill_after_ack_mid_turn_and_mid_post_loses_nothing(replicas_env):
    """One replica is killed three times during the load, restarted after each kill: right
    after acknowledging a delivery, while a turn waits for the model, and just as the model's
    answer comes back (the post in flight). The survivor and the restarted process finish
    every question exactly once, in each thread's order, and leave no placeholder behind."""
    slack = replicas_env["slack"]
    in_interpret, answer_sent = threading.Event(), threading.Event()

    def victim_model(body: dict) -> fo.Reply:
        if body.get("tools"):
            return tagged_answers(body)
        in_interpret.set()
        time.sleep(0.3)  # the model thinks; the victim waits for it mid-turn
        answer_sent.set()  # the answer goes back now: the victim is about to post it
        return tagged_answers(body)

    with FakeOpenAI(responder=tagged_answers) as steady, \
            FakeOpenAI(responder=victim_model) as shaky:
        survivor = Replica(replicas_env["vars"], steady.base_url).start()
        victim = Replica(replicas_env["vars"], shaky.base_url).start()
        kills: list[str] = []
        killer: list[threading.Thread] = []

        def kill_and_restart(mode: str) -> None:
            if mode != "after ack":
                in_interpret.clear()  # the next question the victim takes to the model
                answer_sent.clear()
                moment = in_interpret if mode == "mid-turn" else answer_sent
                assert moment.wait(60), f"the victim never reached the {mode} moment"
            victim.kill()
            kills.append(mode)
            victim.start()  # a restart on the same host and port

        def between(n: int) -> None:
            """The load goes on while the victim is killed: a kill waits for its moment (and
            the restart for /healthz) on its own thread; deliveries meanwhile go to whichever
            replica answers."""
            mode = {20: "after ack", 50: "mid-turn", 80: "mid-post"}.get(n)
            if mode is None:
                return
            for thread in killer:
                thread.join(timeout=120)
            if mode == "after ack":
                victim.kill()  # the delivery just acknowledged may have been its own
                kills.append(mode)
                mode = "restart only"
            thread = threading.Thread(target=kill_and_restart if mode != "restart only"
                                      else lambda _m: victim.start(), args=(mode,))
            thread.start()
            killer.append(thread)
        try:
            order = deliver_load([survivor, victim], between=between)
            for thread in killer:
                thread.join(timeout=120)
            check_answered_once_in_order(slack, replicas_env["store"], order)
        finally:
            survivor.stop()
            victim.stop()
        assert kills == ["after ack", "mid-turn", "mid-post"]


# ------------------------------------- what a dead process left: finished or told honestly


def _left_by_a_dead_process(store, slack: FakeSlack, attempts: int) -> tuple[str, str]:
    """A delivery leased by a process that died after posting its placeholder: the inbox row
    says so (lease expired), the placeholder sits in the thread."""
    from slack_sdk import WebClient

    payload = SlackSender("http://unused", SECRET).mention(
        "C1", "U1", "Q900: how many companies?", ts="1800009000.000100")
    store.inbox_put(payload["event_id"], "C1:1800009000.000100", json.dumps(payload))
    for _ in range(attempts):  # each attempt's process died: its lease ran out
        assert store.inbox_lease("dead-process", 10, lease_s=0.1)
        time.sleep(0.15)
    placeholder = WebClient(token=BOT_TOKEN, base_url=slack.api_url).chat_postMessage(
        channel="C1", thread_ts="1800009000.000100", text=":hourglass: Working on it…")["ts"]
    store.inbox_note(payload["event_id"], placeholder=placeholder)
    return payload["event_id"], placeholder


@pytest.mark.parametrize("attempts", [1, 3])
def test_on_start_a_dead_process_answer_is_finished_or_its_placeholder_replaced(
        sample_db, tmp_path, attempts):
    """Issue 13 item 8: a crash mid-answer left the placeholder forever and the retried event
    was skipped. Now a new process takes the item over when its lease expires: it answers into
    the same placeholder, or after repeated failures replaces it with an honest message."""
    from bot.config import Config
    from bot.runtime import build_deps, close_deps
    from bot.slack import create_app
    from bot.slack.inbox import GAVE_UP
    from states.ports import Limits

    with FakeSlack(token=BOT_TOKEN) as slack, FakeOpenAI(responder=tagged_answers) as llm:
        config = Config(openai_api_key="sk-test", openai_base_url=llm.base_url,
                        db_path=sample_db, state_path=str(tmp_path / "state.sqlite3"),
                        slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET,
                        slack_api_url=slack.api_url, workers=2, inbox_lease_s=1.0,
                        limits=Limits(llm_retries=0))
        deps = build_deps(config)
        event_id, placeholder = _left_by_a_dead_process(deps.store, slack, attempts)
        _, dispatcher = create_app(config, deps)  # starting is all it takes
        try:
            expected = "Answer to Q900." if attempts == 1 else GAVE_UP
            slack.wait_for(lambda: [m for m in slack.bot_replies("C1", "1800009000.000100")
                                    if m["text"] == expected], timeout=30)
            replies = slack.bot_replies("C1", "1800009000.000100")
            assert [m["ts"] for m in replies] == [placeholder]  # replaced, nothing new posted
            slack.wait_for(lambda: deps.store.inbox_counts() == {"queued": 0, "leased": 0})
        finally:
            dispatcher.shutdown(wait=True, timeout=10)
            # the warehouse's sandboxed connection to sample_db must not outlive the test: a
            # later plain connection to the same file in this process would be refused
            close_deps(deps)
