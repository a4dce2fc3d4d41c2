"""The Slack app end to end: signed events over real HTTP into the running app, the real core,
DuckDB and SQLite, the real openai client against a fake LLM server, and a Slack Web API
emulator that records what the bot did. Outcomes are awaited by polling the emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Config
from bot.runtime import build_deps
from bot.slack import HttpServer, create_app, render
from schemas.generate import build
from states.ports import Limits
from tests.fakes import fake_openai
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import BOT_ID, BOT_USER_ID, FakeSlack, SlackSender

SECRET = "test-signing-secret"
CHANNEL = "C0PARTNERS"
ALICE = "UALICE001"
BOB = "UBOB00002"

SQL_COUNT = "SELECT count(*) AS companies FROM companies"
SQL_MANY = "SELECT company_name FROM companies ORDER BY company_name LIMIT 15"
SQL_ADAM = ("SELECT sum(i.amount_usd) AS invested FROM investments i JOIN general_partners g "
            "ON g.gp_id = i.lead_gp_id WHERE g.full_name = 'Adam Levin'")


@pytest.fixture(scope="session")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("warehouse") / "fund.duckdb"
    build(path, scale=0.3)
    return str(path)


# ------------------------------------------------------------------ the fake model


@dataclass
class Rule:
    keyword: str
    sql: str
    answer: str
    delay: float = 0.0
    hold: Callable[[str], object] | None = None  # called with the keyword before a tool call


class Script:
    """Answers the fake LLM by the question's keyword, so concurrent turns get their own
    replies: a tool call for understand (tools offered), text for interpret."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str]] = []  # (phase, question) in arrival order
        self._lock = threading.Lock()

    def add(self, keyword: str, sql: str, answer: str, delay: float = 0.0,
            hold: Callable[[str], object] | None = None) -> Script:
        self.rules.append(Rule(keyword, sql, answer, delay, hold))
        return self

    def __call__(self, body: dict) -> fake_openai.Reply | None:
        last = body["messages"][-1]["content"]
        phase = "understand" if body.get("tools") else "interpret"
        question = last if phase == "understand" else last.split("\n", 1)[0]
        with self._lock:
            self.seen.append((phase, question))
        for rule in self.rules:
            if rule.keyword.lower() in question.lower():
                if phase == "understand":
                    if rule.hold:
                        rule.hold(rule.keyword)
                    return fake_openai.tool_call(rule.sql, delay=rule.delay)
                return fake_openai.text(rule.answer)
        return None  # the fake answers 500 "no scripted reply": a missing rule shows


# ------------------------------------------------------------------------ the bot


@dataclass
class Bot:
    slack: FakeSlack
    llm: FakeOpenAI
    script: Script
    sender: SlackSender
    server: HttpServer
    config: Config
    deps: object
    dispatcher: object
    app: object = None
    stopped: bool = False

    @property
    def store(self):
        return self.deps.store

    def stop(self) -> None:
        """Stop like a process would on SIGTERM; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        self.server.stop()
        self.dispatcher.shutdown(wait=True, timeout=10)

    def mention(self, text: str, *, user: str = ALICE, channel: str = CHANNEL,
                thread_ts: str | None = None, **kw):
        payload = self.sender.mention(channel, user, text, thread_ts=thread_ts, **kw)
        delivery = self.sender.post(payload)
        assert delivery.status == 200, delivery
        return payload["event"], delivery

    def answers(self, channel: str, thread_ts: str) -> list[dict]:
        """Bot messages in the thread that are finished: not placeholders, not still streaming."""
        return [m for m in self.slack.bot_replies(channel, thread_ts)
                if not m["text"].startswith(":hourglass") and not m.get("streaming")]

    def wait_answers(self, channel: str, thread_ts: str, n: int = 1,
                     timeout: float = 15.0) -> list[dict]:
        return self.slack.wait_for(
            lambda: (a := self.answers(channel, thread_ts)) and len(a) >= n and a, timeout)

    def settle(self) -> None:
        """Wait until every accepted job has finished."""
        assert self.dispatcher.join(15)


@pytest.fixture
def make_bot(tmp_path: Path, warehouse_path: str):
    """Start the app over HTTP on a free port; call again (same state file) to 'restart'."""
    slack = FakeSlack().start()
    script = Script()
    llm = FakeOpenAI(responder=script)
    bots: list[Bot] = []

    def start(**overrides) -> Bot:
        config = Config(
            openai_api_key="sk-test", openai_base_url=llm.base_url, model="fake-model",
            db_path=warehouse_path, state_path=str(tmp_path / "state.sqlite3"),
            slack_bot_token=slack.token, slack_signing_secret=SECRET,
            slack_api_url=slack.api_url, port=0, workers=4,
            limits=Limits(llm_retries=0, llm_timeout_s=10),
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        deps = build_deps(config)
        app, dispatcher = create_app(config, deps)
        server = HttpServer(app, host="127.0.0.1", port=0,
                            signing_secret=config.slack_signing_secret or None,
                            quiet=dispatcher.quiet).start()
        bot = Bot(slack, llm, script, SlackSender(server.url, SECRET), server, config, deps,
                  dispatcher, app)
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()
    llm.close()
    slack.stop()


@pytest.fixture
def bot(make_bot) -> Bot:
    return make_bot()


def _block_types(message: dict) -> list[str]:
    return [b["type"] for b in message.get("blocks", [])]


def _all_text(message: dict) -> str:
    return json.dumps(message.get("blocks", [])) + message.get("text", "")


# --------------------------------------------------------------------- scenarios


def test_mention_gets_a_threaded_answer(bot: Bot):
    model_may_answer = threading.Event()
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.",
                   hold=lambda _: model_may_answer.wait(30))
    event, delivery = bot.mention("how many companies are in the portfolio?")
    # Acknowledged before the work: the model has not answered yet, and nothing is posted.
    assert delivery.status == 200 and not bot.answers(CHANNEL, event["ts"])
    model_may_answer.set()

    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()  # the table follows the streamed text
    answer = bot.answers(CHANNEL, event["ts"])[0]
    assert answer["thread_ts"] == event["ts"]
    assert _block_types(answer) == ["markdown", "context", "section", "context_actions"]
    assert answer["blocks"][0]["text"] == "We have 120 portfolio companies."
    context = answer["blocks"][1]["elements"][0]["text"]
    as_of = bot.deps.warehouse.catalog.as_of
    # verify checked the figure against the data: the context line says so
    assert as_of and context.startswith(
        f"Data as of {as_of} · ✓ figures checked against the data · 1 row · ")
    assert context.endswith(" s")
    assert SQL_COUNT in answer["blocks"][2]["text"]["text"]
    table = answer["attachments"][0]["blocks"][0]
    assert table["rows"] == [[{"type": "raw_text", "text": "companies"}],
                             [{"type": "raw_number", "value": 120, "text": "120"}]]

    # No placeholder: the thread showed a status, then the answer was streamed into it with
    # the machine's steps as task cards.
    assert bot.slack.calls_to("chat.postMessage") == []
    status = bot.slack.calls_to("assistant.threads.setStatus")[0]
    assert (status.args["channel_id"], status.args["thread_ts"]) == (CHANNEL, event["ts"])
    (start,) = bot.slack.calls_to("chat.startStream")
    assert start.args["recipient_user_id"] == ALICE and start.args["thread_ts"] == event["ts"]
    assert [t for t, status in answer["task_log"] if status == "in_progress"] == [
        "understand", "execute", "interpret", "verify"]
    assert all(t["status"] == "complete" for t in answer["tasks"].values())
    assert bot.slack.calls_to("auth.test")  # the app learned who it is at start

    # The question reached the core without the mention, and the thread remembers it.
    assert bot.script.seen[0] == ("understand", "how many companies are in the portfolio?")
    conv = bot.store.load(f"{CHANNEL}:{event['ts']}")
    assert [t.question for t in conv.history] == ["how many companies are in the portfolio?"]


def test_large_result_is_attached_as_csv_in_the_thread(bot: Bot):
    bot.script.add("list companies", SQL_MANY, "Here are the first 15 companies.")
    event, _ = bot.mention("list companies alphabetically")
    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()
    answer = bot.answers(CHANNEL, event["ts"])[0]
    table = answer["attachments"][0]["blocks"][0]
    assert len(table["rows"]) == 1 + 10
    assert "Showing 10 of 15 rows" in _all_text(answer)

    complete = bot.slack.wait_calls("files.completeUploadExternal")[0]
    assert complete.args["channel_id"] == CHANNEL
    assert complete.args["thread_ts"] == event["ts"]
    methods = bot.slack.methods()
    steps = [m for m in methods if m in ("files.getUploadURLExternal", "upload",
                                         "files.completeUploadExternal")]
    assert steps == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    (record,) = bot.slack.files.values()
    lines = record["content"].decode().strip().splitlines()
    assert lines[0] == "company_name" and len(lines) == 16


def test_clarification_answered_by_a_plain_reply(bot: Bot):
    bot.script.add("adam", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    event, _ = bot.mention("how much did Adam invest?")
    root = event["ts"]
    question = bot.wait_answers(CHANNEL, root)[0]
    assert "Which Adam do you mean" in question["blocks"][0]["text"]
    buttons = question["blocks"][1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Adam Brooks", "Adam Levin"]
    assert bot.llm.requests == []  # the ambiguity was caught before any LLM call
    bot.settle()

    # A reply in the thread without a mention answers the question.
    reply = bot.sender.message(CHANNEL, ALICE, "Adam Levin", thread_ts=root)
    assert bot.sender.post(reply).status == 200
    answers = bot.wait_answers(CHANNEL, root, n=2)
    assert answers[1]["blocks"][0]["text"] == "Adam Levin led $883.5M of investments."
    assert SQL_ADAM in answers[1]["blocks"][2]["text"]["text"]
    understand = bot.llm.requests[0].messages[-1]["content"]
    assert "how much did Adam invest?" in understand and "Adam Levin" in understand


def test_clarification_answered_by_a_button(bot: Bot):
    bot.script.add("adam", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    event, _ = bot.mention("how much did Adam invest?")
    root = event["ts"]
    question = bot.wait_answers(CHANNEL, root)[0]
    bot.settle()
    levin = question["blocks"][1]["elements"][1]

    delivery = bot.sender.click(user=BOB, channel=CHANNEL, message=question, action=levin)
    assert delivery.status == 200
    answers = bot.wait_answers(CHANNEL, root, n=2)
    assert answers[1]["blocks"][0]["text"] == "Adam Levin led $883.5M of investments."
    # The clarification now shows the choice instead of the buttons.
    chosen = bot.slack.thread(CHANNEL, root)[0]
    assert "actions" not in _block_types(chosen)
    assert f"<@{BOB}> chose *Adam Levin*" in _all_text(chosen)
    assert "Adam Levin" in bot.llm.requests[0].messages[-1]["content"]

    # The same button again: the question is answered, so nothing is queried twice.
    bot.settle()
    calls = len(bot.llm.requests)
    assert bot.sender.click(user=BOB, channel=CHANNEL, message=question,
                            action=levin).status == 200
    ephemeral = bot.slack.wait_calls("chat.postEphemeral")[0]
    assert ephemeral.args["text"] == render.STALE_CHOICE
    bot.settle()
    assert len(bot.llm.requests) == calls


def test_follow_up_mention_sees_the_thread_history(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    bot.script.add("which of them", SQL_MANY, "Here they are.")
    event, _ = bot.mention("how many companies do we have?")
    root = event["ts"]
    bot.wait_answers(CHANNEL, root)
    bot.settle()

    bot.mention("and which of them come first alphabetically?", thread_ts=root)
    answers = bot.wait_answers(CHANNEL, root, n=2)
    assert answers[1]["blocks"][0]["text"] == "Here they are."
    follow_up = bot.llm.requests[2].messages
    history = " ".join(str(m.get("content")) for m in follow_up[1:-1])
    assert "how many companies do we have?" in history
    conv = bot.store.load(f"{CHANNEL}:{root}")
    assert len(conv.history) == 2


def test_plain_thread_reply_without_pending_clarification_is_ignored(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    event, _ = bot.mention("how many companies do we have?")
    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()
    chatter = bot.sender.message(CHANNEL, BOB, "nice, thanks", thread_ts=event["ts"])
    assert bot.sender.post(chatter).status == 200
    bot.settle()
    assert len(bot.llm.requests) == 2 and len(bot.answers(CHANNEL, event["ts"])) == 1


def test_direct_message(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    dm = bot.sender.message("D0ALICE01", ALICE, "how many companies do we have?",
                            channel_type="im")
    assert bot.sender.post(dm).status == 200
    answer = bot.wait_answers("D0ALICE01", dm["event"]["ts"])[0]
    assert answer["blocks"][0]["text"] == "We have 120 portfolio companies."


def test_assistant_panel_prompts_title_and_status(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    root = bot.sender.next_ts()
    started = bot.sender.event({
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": ALICE, "channel_id": "D0PANEL01", "thread_ts": root,
                             "context": {}},
        "event_ts": root,
    })
    assert bot.sender.post(started).status == 200
    prompts = bot.slack.wait_calls("assistant.threads.setSuggestedPrompts")[0]
    assert prompts.args["channel_id"] == "D0PANEL01"
    assert "Databricks" in json.dumps(prompts.args["prompts"])

    msg = bot.sender.message("D0PANEL01", ALICE, "how many companies do we have?",
                             thread_ts=root, channel_type="im")
    assert bot.sender.post(msg).status == 200
    answers = bot.slack.wait_for(lambda: [m for m in bot.answers("D0PANEL01", root)
                                          if "120" in m["text"]])
    assert answers[0]["thread_ts"] == root
    status = bot.slack.calls_to("assistant.threads.setStatus")
    assert status and status[0].args["thread_ts"] == root
    title = bot.slack.calls_to("assistant.threads.setTitle")[0]
    assert title.args["title"] == "how many companies do we have?"
    # With a status shown, no placeholder was needed: the answer is a fresh post.
    assert not [c for c in bot.slack.calls_to("chat.postMessage")
                if "Working on it" in c.args.get("text", "")]


def test_bad_signature_is_rejected(bot: Bot):
    payload = bot.sender.mention(CHANNEL, ALICE, "how many companies?")
    delivery = bot.sender.post(payload, signature="v0=" + "0" * 64)
    assert delivery.status == 401
    bot.settle()  # a wrongly accepted event would be a job by now (accepted before the ack)
    assert bot.slack.methods() == ["auth.test"] and bot.llm.requests == []


def test_stale_timestamp_is_rejected(bot: Bot):
    payload = bot.sender.mention(CHANNEL, ALICE, "how many companies?")
    # Correctly signed, but ten minutes old: a replayed request.
    delivery = bot.sender.post(payload, timestamp=int(time.time()) - 600)
    assert delivery.status == 401
    bot.settle()
    assert bot.slack.methods() == ["auth.test"] and bot.llm.requests == []


def test_bolt_alone_also_rejects_bad_and_stale_signatures(bot: Bot):
    # Without the signing secret the server hands every request to Bolt, which checks too.
    plain = HttpServer(bot.app, host="127.0.0.1", port=0).start()
    try:
        sender = SlackSender(plain.url, SECRET)
        payload = sender.mention(CHANNEL, ALICE, "how many companies?")
        assert sender.post(payload, signature="v0=" + "0" * 64).status == 401
        assert sender.post(payload, timestamp=int(time.time()) - 600).status == 401
        click = sender.post({"type": "block_actions", "actions": []}, form=True,
                            signature="v0=bad")
        assert click.status == 401
    finally:
        plain.stop()
    bot.settle()
    assert bot.slack.methods() == ["auth.test"] and bot.llm.requests == []


def test_url_verification_gets_its_challenge_back(bot: Bot):
    delivery = bot.sender.post({"type": "url_verification", "challenge": "c-123",
                                "token": "legacy-unused"})
    assert delivery.status == 200 and "c-123" in delivery.body


def test_same_event_three_times_gets_one_answer(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.",
                   delay=0.3)
    payload = bot.sender.mention(CHANNEL, ALICE, "how many companies do we have?")
    statuses = [bot.sender.post(payload).status,
                bot.sender.post(payload, retry_num=1).status,
                bot.sender.post(payload, retry_num=2).status]
    assert statuses == [200, 200, 200]
    bot.wait_answers(CHANNEL, payload["event"]["ts"])
    bot.settle()
    assert len(bot.answers(CHANNEL, payload["event"]["ts"])) == 1
    assert len(bot.slack.calls_to("chat.startStream")) == 1
    assert [p for p, _ in bot.script.seen] == ["understand", "interpret"]


def test_retry_after_restart_is_not_answered_again(make_bot):
    first = make_bot()
    first.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    payload = first.sender.mention(CHANNEL, ALICE, "how many companies do we have?")
    assert first.sender.post(payload).status == 200
    first.wait_answers(CHANNEL, payload["event"]["ts"])
    first.stop()

    second = make_bot()
    assert second.sender.post(payload, retry_num=1).status == 200
    second.settle()
    assert len(second.slack.calls_to("chat.startStream")) == 1
    assert len(second.script.seen) == 2


def test_two_messages_in_one_thread_are_answered_in_order(bot: Bot):
    bot.script.add("first", SQL_COUNT, "Answer to the first.", delay=0.6)
    bot.script.add("second", SQL_MANY, "Answer to the second.")
    event, _ = bot.mention("first: how many companies?")
    root = event["ts"]
    # The second arrives while the first is still with the (slow) model.
    bot.mention("second: list them", thread_ts=root)
    bot.wait_answers(CHANNEL, root, n=2)
    bot.settle()
    texts = [a["blocks"][0]["text"] for a in bot.answers(CHANNEL, root)]
    assert texts == ["Answer to the first.", "Answer to the second."]
    # The second question reached the model only after the first was fully answered.
    assert [p + ":" + q.split(":")[0] for p, q in bot.script.seen] == [
        "understand:first", "interpret:Question", "understand:second", "interpret:Question"]
    interprets = [q for p, q in bot.script.seen if p == "interpret"]
    assert "first" in interprets[0] and "second" in interprets[1]
    # Each answer is its own stream, the second started after the first stopped.
    streams = [c.args["thread_ts"] for c in bot.slack.calls_to("chat.startStream")]
    assert streams == [root, root]
    methods = [m for m in bot.slack.methods() if m in ("chat.startStream", "chat.stopStream")]
    assert methods == ["chat.startStream", "chat.stopStream"] * 2


def test_different_threads_run_in_parallel(bot: Bot):
    # Each thread's model call waits until all three threads are with the model at once;
    # turns run one after another never get there (the first call gives up after 5 s).
    names = ("alpha", "beta", "gamma")
    arrived: set[str] = set()
    met: list[bool] = []
    meeting = threading.Condition()

    def together(name: str) -> None:
        with meeting:
            arrived.add(name)
            meeting.notify_all()
            met.append(meeting.wait_for(lambda: arrived == set(names), timeout=5))

    for name in names:
        bot.script.add(name, SQL_COUNT, f"{name.title()}.", hold=together)
    roots = [bot.mention(f"{name}: how many companies?")[0]["ts"] for name in names]
    for root in roots:
        bot.wait_answers(CHANNEL, root, timeout=60)
    assert met == [True, True, True], "the three threads were never with the model at once"


def test_restart_while_clarification_pending_still_resolves(make_bot):
    first = make_bot()
    first.script.add("adam", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    event, _ = first.mention("how much did Adam invest?")
    root = event["ts"]
    first.wait_answers(CHANNEL, root)
    first.stop()  # the process goes away with the question pending

    second = make_bot()
    reply = second.sender.message(CHANNEL, ALICE, "the second one", thread_ts=root)
    assert second.sender.post(reply).status == 200
    answers = second.wait_answers(CHANNEL, root, n=2)
    assert answers[1]["blocks"][0]["text"] == "Adam Levin led $883.5M of investments."
    assert "Adam Levin" in second.llm.requests[0].messages[-1]["content"]


def test_feedback_is_stored_with_user_and_comment(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    event, _ = bot.mention("how many companies do we have?")
    answer = bot.wait_answers(CHANNEL, event["ts"])[0]
    bot.settle()
    buttons = answer["blocks"][-1]["elements"][0]
    trace_id = render.parse_feedback(buttons["positive_button"]["value"])[1]
    assert bot.store.get_trace(trace_id) is not None

    up = {"type": "feedback_buttons", "action_id": "feedback", "block_id": "fb",
          "value": buttons["positive_button"]["value"]}
    assert bot.sender.click(user=ALICE, channel=CHANNEL, message=answer, action=up).status == 200
    thanks = bot.slack.wait_calls("chat.postEphemeral")[0]
    assert thanks.args["user"] == ALICE
    (vote,) = bot.store.feedback_for(trace_id)
    assert vote["user"] == ALICE and vote["value"] == 1 and vote["at"]

    down = {**up, "value": buttons["negative_button"]["value"]}
    assert bot.sender.click(user=BOB, channel=CHANNEL, message=answer, action=down,
                            trigger_id="trig-bob").status == 200
    opened = bot.slack.wait_calls("views.open")[0]
    assert opened.args["trigger_id"] == "trig-bob"
    view = json.loads(opened.args["view"]) if isinstance(opened.args["view"], str) \
        else opened.args["view"]
    values = {"comment": {"text": {"type": "plain_text_input",
                                   "value": "It counted exited companies too."}}}
    assert bot.sender.submit_view(user=BOB, view=view, values=values).status == 200
    votes = {v["user"]: v for v in bot.store.feedback_for(trace_id)}
    assert votes[BOB]["value"] == -1
    assert votes[BOB]["comment"] == "It counted exited companies too."
    assert votes[ALICE]["value"] == 1


def test_user_not_on_the_allow_list_is_refused(make_bot):
    bot = make_bot(allowed_users={ALICE})
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    event, _ = bot.mention("how many companies do we have?", user=BOB)
    refusal = bot.slack.wait_calls("chat.postEphemeral")[0]
    assert refusal.args["user"] == BOB and refusal.args["thread_ts"] == event["ts"]
    assert "Sorry" in refusal.args["text"]
    bot.settle()
    assert bot.llm.requests == [] and bot.slack.calls_to("chat.postMessage") == []
    assert bot.store.load(f"{CHANNEL}:{event['ts']}").history == []

    # Alice, on the list, is answered.
    event, _ = bot.mention("how many companies do we have?", user=ALICE)
    assert bot.wait_answers(CHANNEL, event["ts"])


def test_channel_not_on_the_allow_list_is_refused(make_bot):
    bot = make_bot(allowed_channels={CHANNEL})
    bot.mention("how many companies do we have?", channel="C0RANDOM1")
    refusal = bot.slack.wait_calls("chat.postEphemeral")[0]
    assert refusal.args["channel"] == "C0RANDOM1"
    bot.settle()
    assert bot.llm.requests == []


def test_llm_down_gives_a_clear_message_in_the_thread(bot: Bot):
    bot.llm.enqueue_error(503, {"error": {"message": "upstream unavailable"}})
    event, _ = bot.mention("how many companies do we have?")
    answer = bot.wait_answers(CHANNEL, event["ts"])[0]
    assert answer["thread_ts"] == event["ts"]
    text = answer["blocks"][0]["text"]
    assert text.startswith(render.WARNING) and "language model" in text
    assert "try again" in text.lower()
    assert "sk-test" not in _all_text(answer)


def test_bot_and_edited_messages_are_ignored(bot: Bot):
    own = bot.sender.message(CHANNEL, BOT_USER_ID, "We have 120 companies.", bot_id=BOT_ID)
    edited = bot.sender.message(CHANNEL, ALICE, "", subtype="message_changed",
                                message={"text": "<@UBOT0001> how many?"})
    other_bot = bot.sender.message("D0ALICE01", "UOTHERBOT", "hello", channel_type="im",
                                   bot_id="BOTHER001")
    for payload in (own, edited, other_bot):
        assert bot.sender.post(payload).status == 200
    bot.settle()
    assert bot.slack.methods() == ["auth.test"] and bot.llm.requests == []


def test_socket_mode_skips_signatures_and_answers(make_bot):
    from slack_bolt.request import BoltRequest

    bot = make_bot(slack_app_token="xapp-test", slack_signing_secret="")
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    payload = bot.sender.mention(CHANNEL, ALICE, "how many companies do we have?")
    # What SocketModeHandler hands the app for each envelope: no HTTP, no signature.
    response = bot.app.dispatch(BoltRequest(body=payload, mode="socket_mode"))
    assert response.status == 200
    answer = bot.wait_answers(CHANNEL, payload["event"]["ts"])[0]
    assert answer["blocks"][0]["text"] == "We have 120 portfolio companies."
    # A retry arriving over the socket carries the same event_id: acknowledged, not answered.
    retry = BoltRequest(body=payload, mode="socket_mode", headers={"x-slack-retry-num": "1"})
    assert bot.app.dispatch(retry).status == 200
    bot.settle()
    assert len(bot.slack.calls_to("chat.startStream")) == 1


def test_health_endpoint(bot: Bot):
    import urllib.request

    url = bot.server.url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200 and resp.read() == b"ok"


def test_manifest_subscribes_to_what_the_app_handles():
    manifest = json.loads(Path(__file__).parent.parent.joinpath("manifest.json").read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.groups", "message.im",
            "assistant_thread_started"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "im:history", "channels:history",
            "assistant:write", "files:write"} <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert "agent_view" in manifest["features"]


SQL_BY_FUND = ("SELECT f.fund_name, SUM(i.amount_usd) AS invested FROM investments i "
               "JOIN funds f USING (fund_id) GROUP BY 1")


def test_a_result_that_reads_better_as_a_picture_gets_its_chart_in_the_thread(bot: Bot):
    bot.script.add("each fund", SQL_BY_FUND, "Here is what each fund has invested.")
    event, _ = bot.mention("how much has each fund invested?")
    bot.wait_answers(CHANNEL, event["ts"])
    complete = bot.slack.wait_calls("files.completeUploadExternal")[0]
    assert complete.args["channel_id"] == CHANNEL and complete.args["thread_ts"] == event["ts"]
    (record,) = bot.slack.files.values()
    assert record["content"].startswith(b"\x89PNG\r\n\x1a\n") and len(record["content"]) > 10_000
    assert record["alt_txt"].startswith("Horizontal bar chart of Invested by Fund name")
    assert "8 bars" in record["alt_txt"]


def test_a_one_number_answer_gets_no_chart(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We hold 400 companies.")
    event, _ = bot.mention("how many companies are in the portfolio?")
    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()
    assert "files.getUploadURLExternal" not in bot.slack.methods() and not bot.slack.files
